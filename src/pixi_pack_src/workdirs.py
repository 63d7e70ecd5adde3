"""Private work directories that a later run can recognise as abandoned.

A run that is killed (``kill -9``, the OOM killer, a cancelled CI job) cannot clean up: its
work directory -- downloads without a cache, an extracted pack -- stays behind, and can be
large. So every work directory holds a lock file that its run keeps locked (``flock``) for
as long as it lives (:func:`claim`); :func:`sweep` removes the directories with the same
name prefix whose lock can be taken, i.e. whose run has died. A directory without a lock
file (being created at this moment, kept on purpose with its logs, or made by something
else) is never touched, nor is one that cannot be opened (another user's). Where ``fcntl``
is missing (Windows) nothing is swept.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

LOCK_NAME = ".pixi-pack-src.lock"

try:  # POSIX
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True

except ImportError:  # pragma: no cover - Windows

    def _try_lock(fd: int) -> bool:
        return False


class Claim:
    """This process's hold on a work directory (see :func:`claim`)."""

    def __init__(self, directory: Path, fd: int | None) -> None:
        self.directory = directory
        self._fd = fd

    def release(self, *, keep: bool = False) -> None:
        """Let go. ``keep``: the directory stays on purpose (e.g. build logs an error points
        at), so its lock file goes and no sweep will ever remove it."""
        if keep:
            with contextlib.suppress(OSError):
                (self.directory / LOCK_NAME).unlink()
        if self._fd is not None:
            os.close(self._fd)  # releases the lock
            self._fd = None


def claim(directory: Path) -> Claim:
    """Lock ``directory`` (a fresh work directory) for the life of this process."""
    try:
        fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        log.debug("cannot create a lock file in %s: %s", directory, exc)
        return Claim(directory, None)
    if not _try_lock(fd):
        os.close(fd)
        return Claim(directory, None)
    return Claim(directory, fd)


def sweep(parent: Path, prefix: str) -> list[Path]:
    """Remove the abandoned work directories ``parent/<prefix>*``; return them."""
    removed: list[Path] = []
    try:
        candidates = [p for p in parent.iterdir() if p.name.startswith(prefix)]
    except OSError:
        return removed
    for directory in candidates:
        try:
            fd = os.open(directory / LOCK_NAME, os.O_RDWR)
        except OSError:
            continue  # no lock file (new, kept or foreign) or not ours to open
        try:
            if not _try_lock(fd):
                continue  # its run is alive
            log.info("removing %s, left behind by a run that was killed", directory)
            # the lock file goes last: an interrupted sweep can be finished by the next one
            for child in directory.iterdir():
                if child.name == LOCK_NAME:
                    continue
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        child.unlink()
            with contextlib.suppress(OSError):
                (directory / LOCK_NAME).unlink()
                directory.rmdir()
            removed.append(directory)
        except OSError:
            continue
        finally:
            os.close(fd)
    return removed
