"""The one subprocess wrapper: logs the command, keeps the output, raises CommandError."""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pixi_pack_src.errors import CommandError
from pixi_pack_src.redact import redact_text

log = logging.getLogger(__name__)

TAIL_LINES = 40
_CANCEL_POLL = 0.05  # seconds between checks of a ``cancel`` event while waiting


@dataclass(frozen=True)
class RunResult:
    argv: list[str]
    returncode: int
    output_tail: str
    log_file: Path | None
    stdout: str


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    env_overlay: Mapping[str, str] | None = None,
    log_file: Path | None = None,
    timeout: float | None = None,
    stream: bool = False,
    capture_stdout: bool = False,
    check: bool = True,
    what: str | None = None,
    cancel: threading.Event | None = None,
) -> RunResult:
    """Run ``argv`` (never through a shell).

    stderr (and stdout unless ``capture_stdout``) goes line by line to ``log_file`` when given,
    to the DEBUG log when ``stream`` is set, and the last lines are kept for error messages.
    ``env_overlay`` is applied on top of ``env`` (default: ``os.environ``) and logged.
    ``cancel``: when this event is set (from another thread, e.g. on Ctrl-C) the process is
    killed and :class:`CommandError` raised, so that a worker thread never outlives the job.
    """
    args = [os.fspath(a) for a in argv]
    full_env = dict(os.environ if env is None else env)
    if env_overlay:
        full_env.update(env_overlay)
        log.debug("env: %s", " ".join(f"{k}={shlex.quote(v)}" for k, v in env_overlay.items()))
    log.debug("run: %s%s", shlex.join(args), f"  (in {cwd})" if cwd else "")
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    lock = threading.Lock()
    sink: IO[str] | None = None
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        sink = log_file.open("w", encoding="utf-8", errors="replace")
        sink.write(redact_text(f"$ {shlex.join(args)}\n"))
    stdout_chunks: list[str] = []
    proc: subprocess.Popen[str] | None = None

    def pump(stream_: IO[str], keep: bool) -> None:
        for raw in stream_:
            if keep:
                stdout_chunks.append(raw)
                continue
            line = redact_text(raw)  # build logs and tails may be shown or kept
            with lock:
                tail.append(line.rstrip("\n"))
                if sink is not None:
                    sink.write(line)
                    sink.flush()
            if stream:
                log.info("  %s", line.rstrip("\n"))

    try:
        try:
            proc = subprocess.Popen(
                args,
                cwd=cwd,
                env=full_env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE if capture_stdout else subprocess.STDOUT,
                text=True,
                encoding="utf-8",
                errors="replace",
            )
        except OSError as exc:
            raise CommandError(
                f"cannot run {args[0]}: {exc.strerror or exc}",
                argv=args,
                returncode=127,
                log_file=log_file,
            ) from exc
        assert proc.stdout is not None
        threads = [threading.Thread(target=pump, args=(proc.stdout, capture_stdout), daemon=True)]
        if capture_stdout:
            assert proc.stderr is not None
            threads.append(threading.Thread(target=pump, args=(proc.stderr, False), daemon=True))
        for t in threads:
            t.start()
        try:
            returncode = _wait(proc, timeout, cancel)
        except _CancelledError:
            proc.kill()
            proc.wait()
            for t in threads:
                t.join()
            raise CommandError(
                f"{what or args[0]} was cancelled",
                argv=args,
                returncode=-9,
                output_tail="\n".join(tail),
                log_file=log_file,
            ) from None
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            for t in threads:
                t.join()
            raise CommandError(
                f"{what or args[0]} timed out after {timeout:g} s",
                argv=args,
                returncode=-9,
                output_tail="\n".join(tail),
                log_file=log_file,
            ) from None
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        for t in threads:
            t.join()
    finally:
        if proc is not None:
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
        if sink is not None:
            sink.close()
    result = RunResult(args, returncode, "\n".join(tail), log_file, "".join(stdout_chunks))
    if check and returncode != 0:
        raise CommandError(
            f"{what or args[0]} failed with exit code {returncode}",
            argv=args,
            returncode=returncode,
            output_tail=result.output_tail,
            log_file=log_file,
        )
    return result


class _CancelledError(Exception):
    pass


def _wait(
    proc: subprocess.Popen[str], timeout: float | None, cancel: threading.Event | None
) -> int:
    """``proc.wait(timeout)``, checking ``cancel`` every few milliseconds when given."""
    if cancel is None:
        return proc.wait(timeout=timeout)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        if cancel.is_set():
            raise _CancelledError
        step = _CANCEL_POLL
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(proc.args, timeout or 0.0)
            step = min(step, left)
        try:
            return proc.wait(timeout=step)
        except subprocess.TimeoutExpired:
            continue
