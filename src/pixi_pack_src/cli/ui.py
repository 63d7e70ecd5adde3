"""The one rich console (stderr), the colour policy and the rich Reporter."""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Literal, TextIO, cast

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.progress import Task as RichTask
from rich.text import Text

from pixi_pack_src.redact import RedactingStream
from pixi_pack_src.reporter import Outcome

ColorChoice = Literal["auto", "always", "never"]

_OUTCOME_MARK = {
    "downloaded": "✅",
    "cached": "✅",
    "copied": "✅",
    "built": "✅",
    "reused": "✅",
    "installed": "✅",
    "written": "✅",
    "verified": "✅",
    "skipped": "⏭",
    "failed": "❌",
}


_TRAILING_SPACES = re.compile(r" +((?:\x1b\[[0-9;]*m)*)$", re.MULTILINE)


class _TrimmedStream:
    """Drops the spaces rich pads table cells with at the end of a line (stdout only:
    a result may be saved, diffed or pasted)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(_TRAILING_SPACES.sub(r"\1", text))
        return len(text)

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)


def resolve_color(choice: str | None) -> ColorChoice:
    """``--color`` (or PIXI_PACK_SRC_COLOR), else pixi's PIXI_COLOR, else auto."""
    value = (choice or os.environ.get("PIXI_COLOR") or "auto").lower()
    if value not in ("auto", "always", "never"):
        value = "auto"
    return value  # type: ignore[return-value]


def make_console(color: ColorChoice, *, stdout: bool = False) -> Console:
    """The stderr console (or, for a command's result, the stdout one).

    NO_COLOR/FORCE_COLOR are honoured by rich unless told explicitly. Without a terminal
    (a pipe, a CI log) rich uses $COLUMNS, else 80 columns, and no colour."""
    kwargs: dict[str, object] = {}
    if "NO_COLOR" not in os.environ and "FORCE_COLOR" not in os.environ:
        if color == "always":
            kwargs["force_terminal"] = True
        elif color == "never":
            kwargs["no_color"] = True
    return Console(
        file=cast(
            "TextIO",
            RedactingStream(_TrimmedStream(sys.stdout) if stdout else sys.stderr),  # type: ignore[arg-type]
        ),  # no URL credentials on screen
        markup=False,
        emoji=False,
        highlight=False,
        **kwargs,  # type: ignore[arg-type]
    )


# A transfer that has received nothing for this long is shown as waiting (on a terminal in
# its progress line; otherwise as one line in the log, once per attempt).
WAIT_NOTICE = 1.0
_TICK = 0.25


@dataclass
class _Task:
    label: str
    total: int | None
    network: bool  # a transfer (started in the download stage): it can wait for a server
    done: int = 0
    started: float = field(default_factory=time.monotonic)
    last: float = field(default_factory=time.monotonic)  # the last byte (or the attempt's start)
    retry_at: float | None = None
    reason: str = ""
    wait_shown: bool = False
    progress_id: TaskID | None = None

    def state(self, now: float) -> str:
        """``retry in 3 s (HTTP 503)``, ``waiting 4 s``, or nothing."""
        if self.retry_at is not None and now < self.retry_at:
            return f"retry in {self.retry_at - now:.0f} s ({self.reason})"
        if self.network and now - self.last >= WAIT_NOTICE:
            return f"waiting {now - self.last:.0f} s"
        return ""


class _StateColumn(ProgressColumn):
    """The waiting state of a transfer: the countdown to its retry, or how long it waits."""

    def __init__(self, tasks: dict[TaskID, _Task]) -> None:
        super().__init__()
        self._tasks = tasks

    def render(self, task: RichTask) -> Text:
        ours = self._tasks.get(task.id)
        return Text(ours.state(time.monotonic()) if ours is not None else "", style="yellow")


class RichReporter:
    """Live bars on a terminal; one plain line per finished task otherwise.

    Waiting is visible either way: a transfer that receives nothing for :data:`WAIT_NOTICE`
    seconds shows ``waiting N s`` in its bar (or one ``⏳ waiting for FILE`` line in a log),
    and a retry shows its reason and a countdown (or one ``↻`` line)."""

    def __init__(self, console: Console, *, live: bool, quiet: bool) -> None:
        self.console = console
        self.live = live and not quiet
        self.quiet = quiet
        self._lock = threading.Lock()
        self._tasks: dict[str, _Task] = {}
        self._by_id: dict[TaskID, _Task] = {}
        self._stage = ""
        self._stage_id: TaskID | None = None
        self._progress: Progress | None = None
        self._ticker: threading.Thread | None = None
        if self.live:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeElapsedColumn(),
                _StateColumn(self._by_id),
                console=console,
                transient=True,
            )

    def _say(self, line: str) -> None:
        """One line above the bars (or in the log); the caller holds the lock."""
        if self.quiet:
            return
        if self._progress is not None:
            self._progress.console.print(line, soft_wrap=True)
        else:
            self.console.print(line, soft_wrap=True)

    # -- stages
    def stage_started(self, stage: str, *, items: int, total_bytes: int | None = None) -> None:
        with self._lock:
            self._stage = stage
            if self._progress is not None:
                self._progress.start()
                self._stage_id = self._progress.add_task(f"{stage} ({items})", total=total_bytes)

    def stage_finished(self, stage: str) -> None:
        with self._lock:
            if self._stage == stage:
                self._stage = ""
            if stage == "download":  # transfers left unfinished (cancelled) wait no more
                for task in self._tasks.values():
                    task.network = False
            if self._progress is not None:
                if self._stage_id is not None:
                    self._progress.remove_task(self._stage_id)
                    self._stage_id = None
                self._progress.stop()

    # -- tasks
    def task_started(self, key: str, *, label: str, total_bytes: int | None = None) -> None:
        with self._lock:
            task = _Task(label, total_bytes, network=self._stage == "download")
            if self._progress is not None:
                task.progress_id = self._progress.add_task(label, total=total_bytes)
                self._by_id[task.progress_id] = task
            self._tasks[key] = task
            if task.network and self._progress is None and not self.quiet:
                self._start_ticker()

    def task_advanced(self, key: str, nbytes: int) -> None:
        with self._lock:
            task = self._tasks.get(key)
            if task is not None:
                task.done += nbytes
                task.last = time.monotonic()
                task.retry_at = None
            if self._progress is not None and task is not None and task.progress_id is not None:
                self._progress.advance(task.progress_id, nbytes)
                if self._stage_id is not None:
                    self._progress.advance(self._stage_id, nbytes)

    def task_reset(self, key: str) -> None:
        with self._lock:
            task = self._tasks.get(key)
            if self._progress is not None and task is not None and task.progress_id is not None:
                self._progress.reset(task.progress_id)
                if self._stage_id is not None:  # the overall bar forgets the retried bytes
                    self._progress.advance(self._stage_id, -task.done)
            if task is not None:
                task.done = 0
                task.last = time.monotonic()
                task.wait_shown = False

    def task_waiting(self, key: str, *, reason: str, retry_in: float | None = None) -> None:
        with self._lock:
            task = self._tasks.get(key)
            if task is None:
                return
            now = time.monotonic()
            task.reason = reason
            task.retry_at = now + retry_in if retry_in is not None else None
            # the wait for the retry is not the server's silence
            task.last = task.retry_at if task.retry_at is not None else now
            when = f"; retry in {retry_in:.1f} s" if retry_in is not None else ""
            self._say(f"↻ {task.label}: {reason}{when}")

    def task_finished(self, key: str, *, outcome: Outcome, detail: str = "") -> None:
        with self._lock:
            task = self._tasks.pop(key, None)
            if task is None:
                return
            if self._progress is not None and task.progress_id is not None:
                self._progress.remove_task(task.progress_id)
                self._by_id.pop(task.progress_id, None)
            note = ""
            if detail and detail != outcome:
                note = f": {detail}" if outcome == "failed" else f" ({detail})"
            self._say(f"{_OUTCOME_MARK.get(outcome, '-')} {outcome} {task.label}{note}")

    def status(self, message: str) -> None:
        if self.quiet:
            return
        with self._lock:
            self.console.print(message, soft_wrap=True)

    # -- waiting, without a terminal: one line per silent attempt
    def _start_ticker(self) -> None:
        if self._ticker is not None and self._ticker.is_alive():
            return
        self._ticker = threading.Thread(target=self._tick, name="pixi-pack-src-wait", daemon=True)
        self._ticker.start()

    def _tick(self) -> None:
        while True:
            time.sleep(_TICK)
            with self._lock:
                if not any(t.network for t in self._tasks.values()):
                    self._ticker = None
                    return
                try:
                    self._tick_once()
                except (OSError, ValueError):  # the stream went away (the process ends)
                    self._ticker = None
                    return

    def _tick_once(self) -> None:
        """The caller holds the lock."""
        now = time.monotonic()
        for task in self._tasks.values():
            if task.retry_at is not None and now < task.retry_at:
                continue  # the pause before a retry: its line is out already
            if task.wait_shown or not task.network:
                continue
            if now - task.last >= WAIT_NOTICE:
                task.wait_shown = True
                self._say(
                    f"⏳ waiting for {task.label}: nothing received for {now - task.last:.0f} s"
                )
