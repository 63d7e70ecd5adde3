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
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

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


@dataclass
class _Task:
    label: str
    total: int | None
    done: int = 0
    started: float = field(default_factory=time.monotonic)
    progress_id: TaskID | None = None


class RichReporter:
    """Live bars on a terminal; one plain line per finished task otherwise."""

    def __init__(self, console: Console, *, live: bool, quiet: bool) -> None:
        self.console = console
        self.live = live and not quiet
        self.quiet = quiet
        self._lock = threading.Lock()
        self._tasks: dict[str, _Task] = {}
        self._stage_id: TaskID | None = None
        self._progress: Progress | None = None
        if self.live:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            )

    # -- stages
    def stage_started(self, stage: str, *, items: int, total_bytes: int | None = None) -> None:
        with self._lock:
            if self._progress is not None:
                self._progress.start()
                self._stage_id = self._progress.add_task(f"{stage} ({items})", total=total_bytes)

    def stage_finished(self, stage: str) -> None:
        with self._lock:
            if self._progress is not None:
                if self._stage_id is not None:
                    self._progress.remove_task(self._stage_id)
                    self._stage_id = None
                self._progress.stop()

    # -- tasks
    def task_started(self, key: str, *, label: str, total_bytes: int | None = None) -> None:
        with self._lock:
            task = _Task(label, total_bytes)
            if self._progress is not None:
                task.progress_id = self._progress.add_task(label, total=total_bytes)
            self._tasks[key] = task

    def task_advanced(self, key: str, nbytes: int) -> None:
        with self._lock:
            task = self._tasks.get(key)
            if task is not None:
                task.done += nbytes
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

    def task_finished(self, key: str, *, outcome: Outcome, detail: str = "") -> None:
        with self._lock:
            task = self._tasks.pop(key, None)
            if task is None:
                return
            if self._progress is not None and task.progress_id is not None:
                self._progress.remove_task(task.progress_id)
            if self.quiet:
                return
            note = f" ({detail})" if detail else ""
            line = f"{_OUTCOME_MARK.get(outcome, '-')} {outcome} {task.label}{note}"
            if self._progress is not None:
                self._progress.console.print(line, soft_wrap=True)
            else:
                self.console.print(line, soft_wrap=True)

    def status(self, message: str) -> None:
        if self.quiet:
            return
        with self._lock:
            self.console.print(message, soft_wrap=True)
