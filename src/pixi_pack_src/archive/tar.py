"""The deterministic tar writer, the directory writer, atomic outputs and the safe reader.

Writing (docs/archive-format.md, "Determinism"): entries sorted by name at each directory level, parents
(synthesised directory entries) before children; PAX headers with mtime =
``SOURCE_DATE_EPOCH`` or a fixed non-zero constant, uid/gid 0, empty uname/gname, mode 0644
(0755 for directories and executables); no per-entry times besides mtime and no global header.
File content is streamed in chunks and hashed on the way (on a helper thread, overlapping the
writes), so memory stays flat and the caller can compare each written sha256 with what it
verified earlier (a file changed underneath is caught). The output may be a pipe.

Reading (:func:`safe_extract`): every member is checked before anything is written. Format 1
packs hold only regular files and directories, so **every** link (symbolic or hard, escaping or
not), device, fifo and sparse member is refused, as are absolute names, ``..`` and ``.``
components, empty components, backslashes, colons, control characters, duplicate names
(compared case-insensitively after NFC normalisation, so a case-insensitive file system cannot
be tricked into overwriting), a file whose path is also used as a directory, members over the
limits, truncated archives and trailing garbage. Extraction then runs with tarfile's ``data``
filter as a second line of defence. On failure nothing is left in the destination.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import errno
import hashlib
import io
import logging
import os
import secrets
import shutil
import stat
import sys
import tarfile
import tempfile
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO, Protocol, cast

from pixi_pack_src.archive.metadata import PIXI_PACK_JSON
from pixi_pack_src.errors import ArchiveError, UsageError
from pixi_pack_src.hashing import FileIdentity, Verified
from pixi_pack_src.limits import max_metadata_bytes
from pixi_pack_src.safepath import path_problem

logger = logging.getLogger(__name__)

# pixi-pack's Rust writer (tar's deterministic header mode) uses this non-zero time.
DEFAULT_MTIME = 1153704088
CHUNK = 1 << 20
BLOCK = tarfile.BLOCKSIZE
RECORD = tarfile.RECORDSIZE
_MAX_USTAR_NUMBER = 8**11  # 11 octal digits: larger values need a PAX record
# The data filter exists from 3.11.4, but the first releases mishandled links; pypa/build
# uses the same cut-off (src/build/_compat/tarfile.py).
_HAS_DATA_FILTER = sys.version_info >= (3, 11, 5) and hasattr(tarfile, "data_filter")


class BinaryReader(Protocol):
    """What :func:`read_stream` needs from its input: a file, a pipe, stdin, a wrapper."""

    def read(self, size: int = -1, /) -> bytes: ...


class BinaryWriter(Protocol):
    """What :func:`write_tar` needs from its output: a file, a pipe, stdout, a wrapper."""

    def write(self, data: bytes | memoryview, /) -> int | None: ...

    def flush(self) -> None: ...


@dataclass(frozen=True)
class Entry:
    """A regular file to put in the archive; directories are synthesised from the names.

    ``verified``: the file's bytes were hashed earlier (a download of this run, a cache entry
    trusted by its record): while the file still has that identity it is copied in the kernel
    without hashing again, and a file that changes during the copy is an error.
    """

    arcname: str
    source: Path | bytes
    executable: bool = False
    verified: Verified | None = None


@dataclass(frozen=True)
class WrittenEntry:
    """What was actually written for one file: the bytes' sha256 and size.

    ``hashed`` False: the sha256 is the one verified earlier (``Entry.verified``), and the file
    kept the identity it had then from before the copy to after it.
    """

    arcname: str
    sha256: str
    size: int
    hashed: bool = True


class WrittenArchive(list[WrittenEntry]):
    """:func:`write_tar`'s files in archive order, ``size``: the archive's bytes, ``sha256``:
    its hash (when asked)."""

    size: int = 0
    sha256: str | None = None


def fixed_mtime() -> int:
    """``SOURCE_DATE_EPOCH`` if set, else :data:`DEFAULT_MTIME`."""
    raw = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not raw:
        return DEFAULT_MTIME
    if not raw.isdigit() or int(raw) >= _MAX_USTAR_NUMBER:
        raise UsageError(
            f"SOURCE_DATE_EPOCH={raw!r} is not a valid timestamp",
            hint="set it to a non-negative whole number of seconds since 1970, or unset it",
        )
    return int(raw)


# -- names ------------------------------------------------------------------------------------


def name_problem(name: str) -> str | None:
    """Why ``name`` is not a safe relative archive path (``None`` if it is): the one path
    check (:func:`pixi_pack_src.safepath.path_problem`), plus no colon anywhere (a pack's
    members must be portable to Windows)."""
    problem = path_problem(name)
    if problem:
        return problem
    if ":" in name:
        return "has a colon (drive letter or stream) in its name"
    return None


def _fold(name: str) -> str:
    return unicodedata.normalize("NFC", name).casefold()


def _tree_key(name: str) -> list[str]:
    # Sorting by components gives "sorted at each level, parents before children".
    return name.split("/")


def _plan(entries: Iterable[Entry]) -> list[tuple[str, Entry | None]]:
    """Validate names; return (name, entry) in archive order, ``None`` for directories."""
    files: dict[str, Entry] = {}
    folded: dict[str, str] = {}
    dirs: set[str] = set()
    for entry in entries:
        name = entry.arcname
        problem = name_problem(name)
        if problem:
            raise ArchiveError(f"cannot archive {name!r}: it {problem}")
        key = _fold(name)
        if key in folded:
            raise ArchiveError(f"cannot archive {name!r} twice (clashes with {folded[key]!r})")
        folded[key] = name
        files[name] = entry
        parts = name.split("/")
        dirs.update("/".join(parts[:i]) for i in range(1, len(parts)))
    folded_dirs: dict[str, str] = {}
    for d in sorted(dirs):
        key = _fold(d)
        if key in folded:
            raise ArchiveError(f"cannot archive {folded[key]!r}: it is also a directory")
        if key in folded_dirs:
            raise ArchiveError(f"directories {folded_dirs[key]!r} and {d!r} differ only in case")
        folded_dirs[key] = d
    plan: list[tuple[str, Entry | None]] = [(d, None) for d in dirs]
    plan += list(files.items())
    plan.sort(key=lambda item: _tree_key(item[0]))
    return plan


# -- writing ----------------------------------------------------------------------------------


def _write_all(out: BinaryWriter, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data)
    while view:
        n = out.write(view)
        if n is None:  # a non-blocking raw stream that is full
            raise ArchiveError("the output stream does not accept data (non-blocking?)")
        view = view[n:]


def _header(name: str, *, size: int, mtime: int, directory: bool, executable: bool) -> bytes:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.size = 0 if directory else size
    info.mode = 0o755 if (directory or executable) else 0o644
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info.tobuf(tarfile.PAX_FORMAT, encoding="utf-8", errors="strict")


def _hasher() -> concurrent.futures.ThreadPoolExecutor:
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


def _fileno(out: object) -> int | None:
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


def _write_fd(fd: int, data: bytes | bytearray | memoryview) -> None:
    with memoryview(data) as view:
        while view:
            n = os.write(fd, view)
            view = view[n:]


class _KernelCopy:
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


class _ArchiveHash:
    """The archive's own sha256, computed on a helper thread in archive order, so that the
    bytes can still be copied in the kernel: headers and buffered data are handed over as
    copies, a kernel-copied file is read again by the helper through its own descriptor (the
    writer checks the file's identity after the copy, so both read the same bytes). At most
    :data:`_HASH_BACKLOG` bytes of copies wait for the helper."""

    def __init__(self) -> None:
        self.sha = hashlib.sha256()
        self.pool = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="pixi-pack-src-archive-sha256"
        )
        self.pending: collections.deque[tuple[concurrent.futures.Future[None], int]] = (
            collections.deque()
        )
        self.backlog = 0

    def data(self, data: bytes | bytearray | memoryview) -> None:
        blob = bytes(data)
        self._submit(self.pool.submit(self.sha.update, blob), len(blob))

    def file(self, fd: int, size: int) -> None:
        identity = FileIdentity.of(os.fstat(fd))
        self._submit(self.pool.submit(_hash_fd, self.sha, os.dup(fd), size, identity), 0)

    def _submit(self, future: concurrent.futures.Future[None], cost: int) -> None:
        self.pending.append((future, cost))
        self.backlog += cost
        while self.backlog > _HASH_BACKLOG or (self.pending and self.pending[0][0].done()):
            done, cost = self.pending.popleft()
            done.result()
            self.backlog -= cost

    def digest(self) -> str:
        while self.pending:
            self.pending.popleft()[0].result()
        self.backlog = 0
        return self.sha.hexdigest()

    def close(self) -> None:
        for future, _ in self.pending:
            future.cancel()
        self.pool.shutdown(wait=True)


_HASH_BACKLOG = 64 * 1024 * 1024


def _hash_fd(sha: hashlib._Hash, fd: int, size: int, identity: FileIdentity) -> None:
    """Feed ``size`` bytes of ``fd`` from its start into ``sha``; close ``fd``. The file must
    keep ``identity`` (what it had when it was copied) until then."""
    try:
        buffer = memoryview(bytearray(min(CHUNK, max(size, 1))))
        offset = 0
        while offset < size:
            n = os.preadv(fd, [buffer[: min(len(buffer), size - offset)]], offset)
            if not n:
                raise ArchiveError(
                    f"a file shrank while being archived (expected {size} bytes, got {offset})",
                    hint="do not modify the cache or inputs while packing",
                )
            sha.update(buffer[:n])
            offset += n
        if FileIdentity.of(os.fstat(fd)) != identity:
            raise ArchiveError(
                "a file changed while being archived (after its copy, before its hash)",
                hint="do not modify the cache or inputs while packing",
            )
    finally:
        os.close(fd)


class _Sink:
    """The tar output: our own buffer for headers, padding and small files, written straight
    to the descriptor; large verified files are copied in the kernel between two writes.
    With ``sha256``, the archive's own hash on the way (:class:`_ArchiveHash`)."""

    def __init__(self, out: BinaryWriter, *, kernel: bool, sha256: bool = False) -> None:
        self.out = out
        self.fd = _fileno(out) if kernel else None
        if self.fd is not None:
            out.flush()  # what the caller wrote before us goes first
        self.kernel = _KernelCopy(self.fd is not None)
        self.buffer = bytearray()
        self.offset = 0
        self.hash = _ArchiveHash() if sha256 else None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.offset += len(data)
        if self.fd is None:
            _write_all(self.out, data)
            if self.hash is not None:
                self.hash.data(data)
        elif len(data) >= SMALL:
            self.drain()
            _write_fd(self.fd, data)
            if self.hash is not None:
                self.hash.data(data)
        else:
            self.buffer += data
            if len(self.buffer) >= CHUNK:
                self.drain()

    def drain(self) -> None:
        if self.fd is not None and self.buffer:
            _write_fd(self.fd, self.buffer)
            if self.hash is not None:
                self.hash.data(self.buffer)
            self.buffer.clear()

    def copy_from(self, src: int, size: int, on_bytes: Callable[[int], None] | None) -> int:
        """Kernel-copy up to ``size`` bytes of ``src``; 0 when not possible here."""
        if self.fd is None or size < SMALL:
            return 0
        self.drain()
        done = self.kernel.copy(src, self.fd, size, on_bytes)
        self.offset += done
        if done and self.hash is not None:
            self.hash.file(src, done)
        return done

    def finish(self) -> str | None:
        """Write what is buffered, flush; the archive's sha256 if asked."""
        self.drain()
        self.out.flush()
        return self.hash.digest() if self.hash is not None else None

    def close(self) -> None:
        if self.hash is not None:
            self.hash.close()


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


class _Opened:
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


def write_tar(
    entries: Iterable[Entry],
    out: BinaryWriter,
    *,
    mtime: int | None = None,
    on_bytes: Callable[[int], None] | None = None,
    kernel_copy: bool = True,
    sha256: bool = False,
) -> WrittenArchive:
    """Write a deterministic, uncompressed tar of ``entries`` to ``out`` (may be a pipe).

    Returns one :class:`WrittenEntry` per file, in archive order, and the archive's size.
    ``on_bytes`` is called with the number of content bytes after each chunk (progress).
    ``out`` is flushed, not closed.

    When ``out`` has a descriptor (a file, a pipe) we write the headers and padding to it
    ourselves and copy large verified files in the kernel (``kernel_copy`` False: never); an
    ``out`` without one (a wrapper) gets every byte through ``write``. The bytes are the same
    either way. ``sha256``: also compute the archive's own hash, on a helper thread.
    """
    when = fixed_mtime() if mtime is None else mtime
    if not 0 <= when < _MAX_USTAR_NUMBER:
        raise ArchiveError(f"mtime {when} does not fit in a tar header")
    written = WrittenArchive()
    sink = _Sink(out, kernel=kernel_copy, sha256=sha256)
    try:
        with _hasher() as hasher:
            for name, entry in _plan(entries):
                if entry is None:
                    sink.write(_header(name, size=0, mtime=when, directory=True, executable=False))
                    continue
                opened = _Opened(entry)
                try:
                    sink.write(
                        _header(
                            name,
                            size=opened.size,
                            mtime=when,
                            directory=False,
                            executable=entry.executable,
                        )
                    )
                    written.append(opened.write(sink.write, sink.copy_from, on_bytes, hasher))
                finally:
                    opened.close()
                if opened.size % BLOCK:
                    sink.write(bytes(BLOCK - opened.size % BLOCK))
        # End of archive: two zero blocks, then padding to a whole record (as tar does).
        sink.write(bytes(2 * BLOCK))
        if sink.offset % RECORD:
            sink.write(bytes(RECORD - sink.offset % RECORD))
        written.sha256 = sink.finish()
    finally:
        sink.close()
    written.size = sink.offset
    return written


def _clone(src: int, dst: int) -> bool:
    """A reflink of the whole file (``FICLONE``: btrfs, xfs, bcachefs...); False if not here."""
    ioctl = getattr(_fcntl, "ioctl", None) if _fcntl is not None else None
    if ioctl is None:
        return False
    try:
        ioctl(dst, FICLONE, src)
    except OSError:
        return False
    return True


def write_directory(
    entries: Iterable[Entry], dest: Path, *, kernel_copy: bool = True
) -> list[WrittenEntry]:
    """Write ``entries`` as a plain folder (``--directory-only``): copies, modes 0644/0755.

    ``dest`` must not exist or be empty. Returns the written files in archive order. Verified
    files are reflinked where the file system can, else copied in the kernel
    (``kernel_copy`` False: read and written); others are hashed while they are copied.
    """
    plan = _plan(entries)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ArchiveError(f"{dest} already exists and is not an empty directory")
    dest.mkdir(parents=True, exist_ok=True)
    dest.chmod(0o755)
    written: list[WrittenEntry] = []
    kernel = _KernelCopy(kernel_copy)
    with _hasher() as hasher:
        for name, entry in plan:
            target = dest.joinpath(*name.split("/"))
            if entry is None:
                target.mkdir()
                target.chmod(0o755)
                continue
            opened = _Opened(entry)
            try:
                with target.open("xb") as fh:
                    out = fh.fileno()

                    def write(chunk: bytes | bytearray | memoryview, out: int = out) -> None:
                        _write_fd(out, chunk)

                    def copy(
                        src: int,
                        size: int,
                        on_bytes: Callable[[int], None] | None,
                        out: int = out,
                    ) -> int:
                        if kernel_copy and _clone(src, out):
                            os.lseek(src, size, os.SEEK_SET)
                            return size
                        return kernel.copy(src, out, size, on_bytes)

                    written.append(opened.write(write, copy, None, hasher))
            finally:
                opened.close()
            target.chmod(0o755 if entry.executable else 0o644)
    return written


def _remove(path: Path) -> None:
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
        _remove(old)
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
        _remove(tmp)
        raise


def _anonymous_file(directory: Path) -> int | None:
    """A descriptor of a nameless new file in ``directory`` (Linux ``O_TMPFILE``), or
    ``None`` where the OS or the file system cannot make one."""
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None or not Path("/proc/self/fd").is_dir():
        return None
    try:
        return os.open(directory, flag | os.O_WRONLY, 0o666)
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
        with atomic_output(path) as tmp, tmp.open("wb") as fh:
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
            _remove(tmp)
            raise
        finally:
            os.close(dir_fd)


# -- reading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExtractLimits:
    """Bounds for untrusted archives.

    ``max_metadata_bytes`` applies to members we parse into memory (top-level files and any
    ``.json``/``.yml``/``.yaml``); ``max_header_bytes`` to a single PAX/GNU extended header;
    ``max_total_bytes`` (if set) to the sum of all member sizes.
    """

    max_members: int = 200_000
    # PIXI_PACK_SRC_MAX_METADATA_BYTES (pixi_pack_src.limits), 16 MiB by default
    max_metadata_bytes: int = field(default_factory=max_metadata_bytes)
    max_total_bytes: int | None = None
    max_header_bytes: int = 1024 * 1024


def is_metadata_member(name: str) -> bool:
    """Members a reader loads into memory: top-level files and JSON/YAML documents."""
    return "/" not in name or name.endswith((".json", ".yml", ".yaml"))


class _CappedReader(io.RawIOBase):
    """A read-only file wrapper refusing single reads above ``cap`` bytes (huge headers)."""

    def __init__(self, fh: BinaryIO, cap: int, label: str) -> None:
        super().__init__()
        self._fh = fh
        self.cap: int | None = cap
        self._label = label
        self.name = label

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.cap is not None and (size < 0 or size > self.cap):
            raise ArchiveError(
                f"refusing {self._label}: an extended header at offset {self._fh.tell()} is "
                f"larger than {self.cap} bytes",
                hint="the archive is corrupt or malicious; do not install it",
            )
        return self._fh.read(size)

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._fh.seek(offset, whence)

    def tell(self) -> int:
        return self._fh.tell()


def _refuse(label: str, member: str, why: str) -> ArchiveError:
    return ArchiveError(
        f"refusing {label}: member {member!r} {why}",
        hint="the archive is corrupt or malicious; do not install it",
    )


class MemberChecker:
    """The checks every member of an untrusted pack passes, shared by :func:`safe_extract`
    (which raises on the first problem) and ``verify`` (which lists them all).

    :meth:`check` raises :class:`ArchiveError` naming the archive and the member; it keeps
    the state that duplicate names, file/directory clashes and the limits need.
    """

    def __init__(self, label: str, limits: ExtractLimits) -> None:
        self.label = label
        self.limits = limits
        self.count = 0
        self.total = 0
        self._seen: dict[str, str] = {}
        self._file_keys: set[str] = set()
        self._dir_keys: set[str] = set()

    def check(self, member: tarfile.TarInfo, file_size: int | None = None) -> None:
        """Refuse ``member`` unless it is a safe regular file or directory.

        ``file_size`` (the archive's size, when known) catches a member the archive ends in;
        a stream finds that out when the member is read.
        """
        label, limits, name = self.label, self.limits, member.name
        self.count += 1
        if self.count > limits.max_members:
            raise _refuse(label, name, f"exceeds the limit of {limits.max_members} members")
        problem = name_problem(name)
        if problem:
            raise _refuse(label, name, problem)
        if member.issym():
            raise _refuse(label, name, f"is a symbolic link (to {member.linkname!r})")
        if member.islnk():
            raise _refuse(label, name, f"is a hard link (to {member.linkname!r})")
        if member.ischr() or member.isblk():
            raise _refuse(label, name, "is a device")
        if member.isfifo():
            raise _refuse(label, name, "is a fifo")
        if member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE):
            raise _refuse(label, name, f"has an unsupported type {member.type!r}")
        if member.size < 0:
            raise _refuse(label, name, "has a negative size")
        if member.isreg():
            if file_size is not None and member.offset_data + member.size > file_size:
                raise _refuse(label, name, "is truncated (the archive ends inside it)")
            if is_metadata_member(name) and member.size > limits.max_metadata_bytes:
                raise _refuse(
                    label,
                    name,
                    f"is {member.size} bytes, over the {limits.max_metadata_bytes}-byte limit "
                    "for metadata",
                )
            self.total += member.size
            if limits.max_total_bytes is not None and self.total > limits.max_total_bytes:
                raise _refuse(
                    label, name, f"takes the total over the {limits.max_total_bytes}-byte limit"
                )
        key = _fold(name)
        if key in self._seen:
            raise _refuse(label, name, f"appears twice (also as {self._seen[key]!r})")
        self._seen[key] = name
        parts = key.split("/")
        parents = ["/".join(parts[:i]) for i in range(1, len(parts))]
        if any(p in self._file_keys for p in parents):
            raise _refuse(label, name, "is inside a path that is a file")
        if member.isreg():
            if key in self._dir_keys:
                raise _refuse(label, name, "is a file where a directory is also needed")
            self._file_keys.add(key)
        else:
            self._dir_keys.add(key)
        self._dir_keys.update(parents)


def _validate(
    tf: tarfile.TarFile, reader: _CappedReader, label: str, limits: ExtractLimits, file_size: int
) -> list[tarfile.TarInfo]:
    members: list[tarfile.TarInfo] = []
    checker = MemberChecker(label, limits)
    while True:
        try:
            member = tf.next()
        except tarfile.TarError as exc:
            raise ArchiveError(
                f"{label} is not a valid tar archive: {exc}",
                hint="the archive is truncated or damaged; copy it again",
            ) from None
        if member is None:
            break
        checker.check(member, file_size)
        members.append(member)
    _check_trailer(reader, tf.offset, file_size, label)
    return members


def _not_a_tar(label: str, exc: tarfile.TarError) -> ArchiveError:
    """The error for a file whose first tar header cannot be read: cut short (an empty file,
    a partial first header) is said like every other truncation; anything else is not a tar."""
    reason = str(exc)
    if reason in ("empty file", "truncated header"):
        what = "empty" if reason == "empty file" else "truncated: it ends inside its first header"
        return ArchiveError(
            f"{label} is {what}", hint="the archive was cut short; copy or download it again"
        )
    return ArchiveError(
        f"{label} is not a tar archive: {exc}",
        hint="pass an environment.tar written by pixi-pack or pixi-pack-src",
    )


def _check_trailer(reader: _CappedReader, offset: int, file_size: int, label: str) -> None:
    """After the last member there must be an end-of-archive block and nothing but zeros."""
    if offset + BLOCK > file_size:
        raise ArchiveError(
            f"{label} is truncated: it has no end-of-archive marker",
            hint="the archive was cut short; copy or download it again",
        )
    reader.cap = None
    reader.seek(offset)
    while chunk := reader.read(CHUNK):
        if chunk.count(0) != len(chunk):
            raise ArchiveError(
                f"{label} has unexpected data after its end-of-archive marker "
                f"(near offset {offset})",
                hint="the archive is corrupt or was concatenated with something else",
            )
        offset += len(chunk)


class _TrailerWatch(io.RawIOBase):
    """A read-only stream wrapper that counts bytes and remembers where the last non-zero
    byte was: after the end-of-archive marker only zeros may follow, and a stream cannot seek
    back to check (tarfile's stream mode reads ahead in records)."""

    def __init__(self, fh: BinaryReader) -> None:
        super().__init__()
        self._fh = fh
        self.consumed = 0
        self.last_nonzero = -1  # offset of the last non-zero byte read

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._fh.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        if n:
            stripped = len(data.rstrip(b"\0"))
            if stripped:
                self.last_nonzero = self.consumed + stripped - 1
            self.consumed += n
        return n

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            size = CHUNK
        buffer = bytearray(size)
        n = self.readinto(buffer)
        return bytes(buffer[:n])

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


def _bounded_tarinfo(label: str, max_header_bytes: int) -> type[tarfile.TarInfo]:
    """A TarInfo class refusing extended (PAX/GNU long name) headers over the limit before
    tarfile reads them: a stream cannot be capped by read size as a file is."""
    extended = (
        tarfile.XHDTYPE,
        tarfile.XGLTYPE,
        tarfile.SOLARIS_XHDTYPE,
        tarfile.GNUTYPE_LONGNAME,
        tarfile.GNUTYPE_LONGLINK,
    )

    class _Bounded(tarfile.TarInfo):
        @classmethod
        def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> _Bounded:
            info = super().frombuf(buf, encoding, errors)
            if info.type in extended and info.size > max_header_bytes:
                raise ArchiveError(
                    f"refusing {label}: an extended header is larger than {max_header_bytes} bytes",
                    hint="the archive is corrupt or malicious; do not install it",
                )
            return info

    return _Bounded


@dataclass(frozen=True)
class StreamMember:
    """A regular file of a tar read as a stream: read ``reader`` before the next member."""

    name: str
    size: int
    mtime: int
    reader: BinaryIO


def read_stream(
    stream: BinaryReader,
    *,
    label: str,
    limits: ExtractLimits = ExtractLimits(),
    on_refused: Callable[[str, ArchiveError], None] | None = None,
) -> Iterator[StreamMember]:
    """The regular files of the tar ``stream``, one at a time, never seeking.

    Every member passes :class:`MemberChecker` (the checks of :func:`safe_extract`). A refused
    member raises, or with ``on_refused`` is reported there and skipped (its data is never
    handed out). A damaged tar, trailing data or a missing end-of-archive marker raise
    :class:`ArchiveError`. Memory stays flat: content is read through in chunks.
    """
    watch = _TrailerWatch(stream)
    checker = MemberChecker(label, limits)
    try:
        tf = tarfile.open(  # type: ignore[call-overload]  # noqa: SIM115 - the with below
            fileobj=watch,
            mode="r|",
            tarinfo=_bounded_tarinfo(label, limits.max_header_bytes),
            copybufsize=CHUNK,
        )
    except tarfile.TarError as exc:
        raise _not_a_tar(label, exc) from None
    with tf:
        while True:
            try:
                member = tf.next()
            except tarfile.TarError as exc:
                raise ArchiveError(
                    f"{label} is not a valid tar archive: {exc}",
                    hint="the archive is truncated or damaged; copy it again",
                ) from None
            if member is None:
                break
            try:
                checker.check(member)
            except ArchiveError as exc:
                if on_refused is None:
                    raise
                on_refused(member.name, exc)
                continue
            if not member.isreg():
                continue
            fh = tf.extractfile(member)
            if fh is None:  # pragma: no cover - regular members always have a file object
                raise ArchiveError(f"cannot read member {member.name!r} of {label}")
            try:
                yield StreamMember(
                    member.name,
                    member.size,
                    int(member.mtime),
                    cast("BinaryIO", _Guarded(fh, label, member.name)),
                )
            finally:
                fh.close()
        end = tf.offset
    watch.drain()
    if watch.consumed < end + BLOCK:
        raise ArchiveError(
            f"{label} is truncated: it has no end-of-archive marker",
            hint="the archive was cut short; copy or download it again",
        )
    if watch.last_nonzero >= end:
        raise ArchiveError(
            f"{label} has unexpected data after its end-of-archive marker "
            f"(near offset {watch.last_nonzero})",
            hint="the archive is corrupt or was concatenated with something else",
        )


class _Guarded(io.RawIOBase):
    """A member's reader whose tar errors (a truncated stream) become :class:`ArchiveError`."""

    def __init__(self, fh: IO[bytes], label: str, name: str) -> None:
        super().__init__()
        self._fh = fh
        self._label = label
        self._name = name

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        try:
            return self._fh.read(size)
        except tarfile.TarError:
            raise _refuse(
                self._label, self._name, "is truncated (the archive ends inside it)"
            ) from None

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _spool(stream: BinaryIO, into: BinaryIO, limits: ExtractLimits) -> None:
    cap = None if limits.max_total_bytes is None else limits.max_total_bytes + 16 * 1024 * 1024
    copied = 0
    while chunk := stream.read(CHUNK):
        copied += len(chunk)
        if cap is not None and copied > cap:
            raise ArchiveError(
                f"refusing the archive on standard input: it is larger than {cap} bytes"
            )
        into.write(chunk)
    into.flush()


def _clear(dest: Path, *, created: bool) -> None:
    if created:
        shutil.rmtree(dest, ignore_errors=True)
        return
    for child in dest.iterdir():
        _remove(child)


class Extracted(list[str]):
    """:func:`safe_extract`'s regular files in archive order, and ``digests``: the sha256 and
    size of each, computed while it was written (one read of the archive)."""

    digests: dict[str, tuple[str, int]]

    def __init__(self, names: Iterable[str], digests: dict[str, tuple[str, int]]) -> None:
        super().__init__(names)
        self.digests = digests


def _copy_range_hashing(
    src: int, offset: int, size: int, dst: int, hasher: concurrent.futures.Executor
) -> str:
    """Copy ``size`` bytes of ``src`` at ``offset`` to ``dst``; return their sha256, hashed on
    ``hasher`` while the next chunk is read (two buffers; a buffer is reused once hashed)."""
    digest = hashlib.sha256()
    buffers = [memoryview(bytearray(min(CHUNK, max(size, 1)))) for _ in range(2)]
    pending: concurrent.futures.Future[None] | None = None
    done, turn = 0, 0
    try:
        while done < size:
            view = buffers[turn]
            turn ^= 1
            n = os.preadv(src, [view[: min(len(view), size - done)]], offset + done)
            if not n:
                raise ArchiveError("the archive ended inside a member (truncated)")
            chunk = view[:n]
            if pending is not None:
                pending.result()
            pending = hasher.submit(digest.update, chunk)
            _write_fd(dst, chunk)
            done += n
        if pending is not None:
            pending.result()
            pending = None
    except BaseException:
        if pending is not None:
            concurrent.futures.wait([pending])
        raise
    return digest.hexdigest()


def _extract_hashing(
    src: int, members: list[tarfile.TarInfo], dest: Path
) -> dict[str, tuple[str, int]]:
    """Write the validated ``members`` of the tar open as ``src`` under ``dest``, hashing each
    file on the way. tarfile's ``data`` filter, where sound, still vets every member first."""
    digests: dict[str, tuple[str, int]] = {}
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_NOFOLLOW", 0)
    with _hasher() as hasher:
        for member in members:
            if _HAS_DATA_FILTER:
                tarfile.data_filter(member, str(dest))  # raises tarfile.FilterError
            target = dest.joinpath(*member.name.split("/"))
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            mode = 0o755 if member.mode & 0o100 else 0o644
            fd = os.open(target, flags, mode)
            try:
                sha = _copy_range_hashing(src, member.offset_data, member.size, fd, hasher)
                os.fchmod(fd, mode)
            finally:
                os.close(fd)
            digests[member.name] = (sha, member.size)
    return digests


def safe_extract(
    source: Path | BinaryIO, dest: Path, *, limits: ExtractLimits = ExtractLimits()
) -> Extracted:
    """Check every member of the tar ``source``, then extract it into ``dest``.

    ``source`` is a path or a binary stream (stdin), which is first spooled to a temporary
    file next to ``dest``. ``dest`` must not exist or be empty. Returns the names of the
    regular files, in archive order, with the sha256 and size of each as written (the
    archive is read once). Raises :class:`ArchiveError` naming the archive and the member; on
    failure ``dest`` is left as it was (absent or empty).
    """
    label = str(source) if isinstance(source, Path) else "the archive on standard input"
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ArchiveError(f"cannot extract {label}: {dest} exists and is not an empty directory")
    if not dest.parent.is_dir():
        raise ArchiveError(f"cannot extract {label}: directory {dest.parent} does not exist")
    with contextlib.ExitStack() as stack:
        if isinstance(source, Path):
            try:
                fh: BinaryIO = stack.enter_context(source.open("rb"))
            except OSError as exc:
                raise ArchiveError(f"cannot read {source}: {exc.strerror or exc}") from exc
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise ArchiveError(f"{source} is not a file")
        else:
            fh = stack.enter_context(
                tempfile.TemporaryFile(dir=dest.parent, prefix=".pixi-pack-src-stdin-")
            )
            _spool(source, fh, limits)
            fh.seek(0)
        file_size = os.fstat(fh.fileno()).st_size
        reader = _CappedReader(fh, limits.max_header_bytes, label)
        try:
            tf = stack.enter_context(
                tarfile.open(fileobj=reader, mode="r:", copybufsize=CHUNK)  # type: ignore[call-overload]
            )
        except tarfile.TarError as exc:
            raise _not_a_tar(label, exc) from None
        members = _validate(tf, reader, label, limits, file_size)
        created = not dest.exists()
        dest.mkdir(exist_ok=True)
        try:
            digests = _extract_hashing(fh.fileno(), members, dest)
        except BaseException as exc:
            _clear(dest, created=created)
            if isinstance(exc, (tarfile.TarError, OSError)):
                raise ArchiveError(f"cannot extract {label} into {dest}: {exc}") from exc
            raise
    return Extracted([m.name for m in members if m.isreg()], digests)
