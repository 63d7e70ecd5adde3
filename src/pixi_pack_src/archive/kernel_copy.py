"""Copying one file's bytes into the output, for the tar and the directory writer
(:mod:`.tar`); the extractor (:mod:`.reader`) shares the hashing thread and the descriptor
writes.

A file verified earlier (``Entry.verified``) that still has the identity it had then is copied
between descriptors without passing through Python and without hashing it again
(:class:`KernelCopy`: ``copy_file_range``, a reflink where the file system can, else
``sendfile``, also into pipes; :func:`clone`: ``FICLONE`` for a whole file); its identity is
checked again after the copy, so a file that changed during it is an error. Any other file
(:class:`_Source`) is read in :data:`~.members.CHUNK` pieces and hashed on a helper thread
(:func:`hashing_thread`) while the same piece is written, so memory stays flat and the caller
can compare each written sha256 with what it verified earlier. :class:`Opened` chooses between
the two for one entry.
"""

from __future__ import annotations

import concurrent.futures
import errno
import hashlib
import io
import os
import stat
from collections.abc import Callable
from pathlib import Path

from pixi_pack_src.archive.members import CHUNK, Entry, WrittenEntry
from pixi_pack_src.errors import ArchiveError


def hashing_thread() -> concurrent.futures.ThreadPoolExecutor:
    """The one helper thread that hashes file content while it is written."""
    return concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="pixi-pack-src-sha256")


class _Source:
    """An open entry source: its size now, and a chunked, hashing reader."""

    def __init__(self, entry: Entry) -> None:
        self.entry = entry
        self.label = "generated content" if isinstance(entry.source, bytes) else str(entry.source)
        self._fh: io.BufferedIOBase
        if isinstance(entry.source, bytes):
            self._fh = io.BytesIO(entry.source)
            self.size = len(entry.source)
        else:
            try:
                # Check before opening: opening a fifo would block.
                if not stat.S_ISREG(entry.source.stat().st_mode):
                    raise ArchiveError(
                        f"{entry.source} (for {entry.arcname}) is not a regular file"
                    )
                self._fh = entry.source.open("rb")
            except OSError as exc:
                raise ArchiveError(
                    f"cannot read {entry.source} for {entry.arcname}: {exc.strerror or exc}"
                ) from exc
            st = os.fstat(self._fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                self._fh.close()
                raise ArchiveError(f"{entry.source} (for {entry.arcname}) is not a regular file")
            self.size = st.st_size

    def close(self) -> None:
        self._fh.close()

    def copy_to(
        self,
        write: Callable[[memoryview], None],
        on_bytes: Callable[[int], None] | None,
        hasher: concurrent.futures.Executor | None = None,
    ) -> str:
        """Copy exactly ``size`` bytes; return their sha256. A shrunk file is an error.

        With a ``hasher`` (one worker thread), a file of several chunks is hashed there while
        this thread writes the same chunk and reads the next into a second buffer: hashlib
        releases the GIL, so with a core to spare the sha256 costs no wall time. The hash is
        still of exactly the bytes written (a buffer is reused only once its hash is done).
        """
        digest = hashlib.sha256()
        size = min(CHUNK, max(self.size, 1))
        if self.size <= CHUNK:
            hasher = None
        buffers = [memoryview(bytearray(size)) for _ in range(1 if hasher is None else 2)]
        pending: concurrent.futures.Future[None] | None = None
        remaining = self.size
        turn = 0
        try:
            while remaining:
                view = buffers[turn]
                turn = (turn + 1) % len(buffers)
                n = self._fh.readinto(view[: min(size, remaining)])
                if not n:
                    raise ArchiveError(
                        f"{self.label} changed while being archived as {self.entry.arcname} "
                        f"(expected {self.size} bytes, got {self.size - remaining})",
                        hint="do not modify the cache or inputs while packing",
                    )
                chunk = view[:n]
                if pending is not None:
                    pending.result()  # the previous chunk is hashed: its buffer is free
                    pending = None
                if hasher is None:
                    digest.update(chunk)
                else:
                    pending = hasher.submit(digest.update, chunk)
                write(chunk)
                remaining -= n
                if on_bytes is not None:
                    on_bytes(n)
            if pending is not None:
                pending.result()
        except BaseException:
            if pending is not None:
                concurrent.futures.wait([pending])
            raise
        return digest.hexdigest()


# Files below this are read into the output buffer: one kernel copy call costs more than that.
SMALL = 64 * 1024
_KERNEL_CHUNK = 64 * 1024 * 1024  # per copy call: progress and Ctrl-C stay responsive
# errno values meaning "this kind of copy is not possible between these two files"
_UNSUPPORTED = {
    getattr(errno, name)
    for name in ("EXDEV", "EINVAL", "ENOSYS", "EOPNOTSUPP", "ENOTSUP", "EBADF", "ETXTBSY", "EPERM")
    if hasattr(errno, name)
}
FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int)
_fcntl: object | None
try:  # POSIX
    import fcntl as _fcntl
except ImportError:  # pragma: no cover - Windows
    _fcntl = None


def fileno(out: object) -> int | None:
    """The descriptor behind ``out`` when writing to it directly is equivalent: a plain
    binary file or pipe (``io.FileIO`` and its buffered writers). Not a wrapper that sees or
    transforms the bytes, even one offering ``fileno()`` (``gzip.GzipFile`` returns its
    underlying file's)."""
    if not isinstance(out, io.FileIO | io.BufferedWriter | io.BufferedRandom):
        return None
    try:
        fd = out.fileno()
    except (OSError, ValueError, io.UnsupportedOperation):
        return None
    return fd if fd >= 0 else None


def write_fd(fd: int, data: bytes | bytearray | memoryview) -> None:
    with memoryview(data) as view:
        while view:
            n = os.write(fd, view)
            view = view[n:]


class KernelCopy:
    """Copies between two descriptors without passing the bytes through Python:
    ``copy_file_range`` (file to file, a reflink where the file system can), else ``sendfile``
    (also into pipes), else nothing (the caller reads and writes). Remembers what worked."""

    def __init__(self, enabled: bool = True) -> None:
        self.methods: list[str] = (
            [m for m in ("copy_file_range", "sendfile") if hasattr(os, m)] if enabled else []
        )
        self.used: set[str] = set()

    def copy(self, src: int, dst: int, size: int, on_bytes: Callable[[int], None] | None) -> int:
        """Copy up to ``size`` bytes from ``src``'s position to ``dst``'s; return how many
        were copied (0 when no method works here: nothing was copied, positions unchanged).
        Fewer than ``size`` means the source ended early."""
        while self.methods:
            method = self.methods[0]
            try:
                done = self._run(method, src, dst, size, on_bytes)
            except OSError as exc:
                if exc.errno in _UNSUPPORTED and getattr(exc, "copied", 0) == 0:
                    self.methods.pop(0)
                    continue
                raise
            self.used.add(method)
            return done
        return 0

    @staticmethod
    def _run(
        method: str, src: int, dst: int, size: int, on_bytes: Callable[[int], None] | None
    ) -> int:
        done = 0
        while done < size:
            count = min(_KERNEL_CHUNK, size - done)
            try:
                if method == "copy_file_range":
                    n = os.copy_file_range(src, dst, count)
                else:
                    n = os.sendfile(dst, src, None, count)
            except OSError as exc:
                exc.copied = done  # type: ignore[attr-defined]
                raise
            if n == 0:
                break
            done += n
            if on_bytes is not None:
                on_bytes(n)
        return done


def clone(src: int, dst: int) -> bool:
    """A reflink of the whole file (``FICLONE``: btrfs, xfs, bcachefs...); False if not here."""
    ioctl = getattr(_fcntl, "ioctl", None) if _fcntl is not None else None
    if ioctl is None:
        return False
    try:
        ioctl(dst, FICLONE, src)
    except OSError:
        return False
    return True


def _changed(entry: Entry, why: str) -> ArchiveError:
    label = entry.source if isinstance(entry.source, Path) else "generated content"
    return ArchiveError(
        f"{label} changed while being archived as {entry.arcname} ({why})",
        hint="do not modify the cache or inputs while packing",
    )


def _copy_verified(
    entry: Entry,
    fd: int,
    size: int,
    write: Callable[[bytes | bytearray | memoryview], None],
    kernel_copy: Callable[[int, int, Callable[[int], None] | None], int],
    on_bytes: Callable[[int], None] | None,
) -> None:
    """Copy ``size`` bytes of a verified file: in the kernel when possible, else read and
    written (never hashed). The caller checks the file's identity before and after."""
    done = kernel_copy(fd, size, on_bytes)
    if done < size and done:
        raise _changed(entry, f"expected {size} bytes, got {done}")
    if done == size:
        return
    buffer = memoryview(bytearray(min(CHUNK, size)))
    remaining = size
    while remaining:
        n = os.readv(fd, [buffer[: min(len(buffer), remaining)]])
        if not n:
            raise _changed(entry, f"expected {size} bytes, got {size - remaining}")
        write(buffer[:n])
        remaining -= n
        if on_bytes is not None:
            on_bytes(n)


class Opened:
    """A file entry opened for writing: its size now; whether its verified record holds."""

    def __init__(self, entry: Entry) -> None:
        self.entry = entry
        self.source: _Source | None = None
        self.fd: int | None = None
        if isinstance(entry.source, Path) and entry.verified is not None:
            try:
                fd = os.open(entry.source, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            except OSError as exc:
                raise ArchiveError(
                    f"cannot read {entry.source} for {entry.arcname}: {exc.strerror or exc}"
                ) from exc
            st = os.fstat(fd)
            if stat.S_ISREG(st.st_mode) and entry.verified.still(st):
                self.fd, self.size = fd, st.st_size
                return
            os.close(fd)  # not the file that was verified: hash it while it is written
        self.source = _Source(entry)
        self.size = self.source.size

    def close(self) -> None:
        if self.source is not None:
            self.source.close()
        if self.fd is not None:
            os.close(self.fd)

    def write(
        self,
        write: Callable[[bytes | bytearray | memoryview], None],
        kernel_copy: Callable[[int, int, Callable[[int], None] | None], int],
        on_bytes: Callable[[int], None] | None,
        hasher: concurrent.futures.Executor,
    ) -> WrittenEntry:
        entry = self.entry
        if self.source is not None:
            sha = self.source.copy_to(write, on_bytes, hasher)
            return WrittenEntry(entry.arcname, sha, self.size)
        assert self.fd is not None
        assert entry.verified is not None
        _copy_verified(entry, self.fd, self.size, write, kernel_copy, on_bytes)
        if not entry.verified.still(os.fstat(self.fd)):
            raise _changed(entry, "its size, times or inode moved during the copy")
        return WrittenEntry(entry.arcname, entry.verified.sha256, self.size, hashed=False)
