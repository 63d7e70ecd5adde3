"""Atomic outputs: a file or directory appears under its name only when complete.

Existing outputs are replaced only when that is safe (a file, an empty directory, or a previous
pack), and failures, Ctrl-C and (for files, on Linux) ``kill -9`` leave nothing behind.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from pixi_pack_src.archive.metadata import PIXI_PACK_JSON
from pixi_pack_src.errors import ArchiveError

logger = logging.getLogger(__name__)


def remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _check_output(path: Path) -> None:
    parent = path.parent
    if not parent.is_dir():
        raise ArchiveError(
            f"cannot write {path}: directory {parent} does not exist",
            hint="create the directory first or choose another output path",
        )
    if path.is_dir() and any(path.iterdir()) and not (path / PIXI_PACK_JSON).is_file():
        raise ArchiveError(
            f"{path} is a non-empty directory that is not a pack; refusing to replace it",
            hint="choose another output path or remove the directory",
        )


def _tmp_name(path: Path, suffix: str) -> Path:
    return path.parent / f".{path.name}.{secrets.token_hex(6)}.{suffix}"


def _move_into_place(tmp: Path, path: Path) -> None:
    """Rename ``tmp`` to ``path``, replacing a file or (via a ``.old`` name) a directory."""
    if path.is_dir() or (path.exists() and tmp.is_dir()):
        old = _tmp_name(path, "old")
        path.rename(old)
        try:
            tmp.rename(path)
        except BaseException:
            old.rename(path)
            raise
        remove_path(old)
    else:
        tmp.replace(path)


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a fresh temporary path next to ``path``; rename it to ``path`` on success.

    The yielded path does not exist: create a file or a directory there. On any exception
    (Ctrl-C included) it is removed and ``path`` is left as it was. An existing file is
    replaced; an existing directory only if it is empty or holds a ``pixi-pack.json`` (a
    previous pack), so ``-o ~`` can never wipe a home directory. (A process killed with
    SIGKILL leaves the temporary name behind: for files, prefer :func:`atomic_file`.)
    """
    path = path.absolute()
    _check_output(path)
    tmp = _tmp_name(path, "tmp")
    try:
        yield tmp
        if not tmp.exists():
            raise ArchiveError(f"nothing was written to {path}")
        _move_into_place(tmp, path)
    except BaseException:
        remove_path(tmp)
        raise


def _anonymous_file(directory: Path) -> int | None:
    """A descriptor of a nameless new file in ``directory`` (Linux ``O_TMPFILE``), or
    ``None`` where the OS or the file system cannot make one."""
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None or not Path("/proc/self/fd").is_dir():
        return None
    try:
        return os.open(directory, flag | os.O_RDWR, 0o666)  # readable: TarWriter.rewind
    except OSError:
        return None


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """Yield a binary file that becomes ``path`` when the block ends without an exception.

    Where the OS allows (Linux ``O_TMPFILE``), the data goes to a file without a name in
    ``path``'s directory, which gets its name only when complete: a failure, Ctrl-C and even
    ``kill -9`` leave nothing behind. Elsewhere this is :func:`atomic_output` with a file.
    The same rules as :func:`atomic_output` apply to an existing ``path``.
    """
    path = path.absolute()
    _check_output(path)
    fd = _anonymous_file(path.parent)
    if fd is None:
        with atomic_output(path) as tmp, tmp.open("w+b") as fh:
            yield fh
        return
    with os.fdopen(fd, "wb") as fh:
        yield fh
        fh.flush()
        tmp = _tmp_name(path, "tmp")
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            # linkat(AT_SYMLINK_FOLLOW) of /proc/self/fd/N names the anonymous file (a dir fd
            # makes Python call linkat rather than link, which would not follow the link)
            os.link(f"/proc/self/fd/{fd}", tmp.name, dst_dir_fd=dir_fd, follow_symlinks=True)
            _move_into_place(tmp, path)
        except BaseException:
            remove_path(tmp)
            raise
        finally:
            os.close(dir_fd)
