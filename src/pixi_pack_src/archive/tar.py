"""The deterministic tar writer and the directory writer.

(Atomic outputs: :mod:`.atomic`; the safe reader: :mod:`.reader`.)

Writing (docs/archive-format.md, "Determinism"): entries sorted by name at each directory level, parents
(synthesised directory entries) before children; PAX headers with mtime =
``SOURCE_DATE_EPOCH`` or a fixed non-zero constant, uid/gid 0, empty uname/gname, mode 0644
(0755 for directories and executables); no per-entry times besides mtime and no global header.
File content is streamed in chunks and hashed on the way (on a helper thread, overlapping the
writes), so memory stays flat and the caller can compare each written sha256 with what it
verified earlier (a file changed underneath is caught). The output may be a pipe.
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
import stat
import tarfile
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pixi_pack_src.errors import ArchiveError, UsageError
from pixi_pack_src.hashing import FileIdentity, Verified
from pixi_pack_src.safepath import path_problem

logger = logging.getLogger(__name__)

# pixi-pack's Rust writer (tar's deterministic header mode) uses this non-zero time.
DEFAULT_MTIME = 1153704088
CHUNK = 1 << 20
BLOCK = tarfile.BLOCKSIZE
RECORD = tarfile.RECORDSIZE
_MAX_USTAR_NUMBER = 8**11  # 11 octal digits: larger values need a PAX record


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


def _hash_range(fd: int, size: int) -> str:
    """The sha256 of the first ``size`` bytes of ``fd`` (read with ``pread``)."""
    sha = hashlib.sha256()
    buffer = memoryview(bytearray(CHUNK))
    offset = 0
    while offset < size:
        n = os.preadv(fd, [buffer[: min(CHUNK, size - offset)]], offset)
        if not n:
            raise ArchiveError(f"the archive shrank while being written ({offset} of {size})")
        sha.update(buffer[:n])
        offset += n
    return sha.hexdigest()


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
        self.rehash = False  # rewound with a hash on the way: hash the finished file instead

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

    def rewind(self, offset: int) -> None:
        """Cut the output back to ``offset``: what followed is written again. Only for a
        regular file written through our own descriptor. The archive's hash, if asked, is
        then taken from the finished file (one more read, only on this rare path: the file
        must be open for reading too, as :func:`~.atomic.atomic_file` opens it)."""
        if self.fd is None or not stat.S_ISREG(os.fstat(self.fd).st_mode):
            raise ArchiveError("cannot rewind an archive that is not written to a file")
        self.drain()
        os.ftruncate(self.fd, offset)
        os.lseek(self.fd, offset, os.SEEK_SET)
        self.offset = offset
        if self.hash is not None:
            with contextlib.suppress(Exception):  # let its pending reads end (they own fds)
                self.hash.digest()
            self.hash.close()
            self.hash = None
            self.rehash = True

    def finish(self) -> str | None:
        """Write what is buffered, flush; the archive's sha256 if asked."""
        self.drain()
        self.out.flush()
        if self.rehash:
            assert self.fd is not None
            return _hash_range(self.fd, self.offset)
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


@dataclass(frozen=True)
class WrittenItem:
    """One item :class:`TarWriter` wrote: a directory (``entry`` None) or a file, where its
    header starts in the output, and (files) what was written."""

    name: str
    entry: Entry | None
    start: int
    written: WrittenEntry | None


class TarWriter:
    """The deterministic tar writer, one item at a time, in the order :func:`archive_order`
    gives: :func:`write_tar` runs it over every item at once; a caller that gets its files
    one by one can write each as soon as it and all before it are there, and
    :meth:`rewind` to a point where the items it wrote turn out not to be the final ones
    (a regular-file output only). See :func:`write_tar` for the output and ``sha256``.

    ``on_bytes`` may be changed between items (the progress callback; it may raise to stop).
    """

    def __init__(
        self,
        out: BinaryWriter,
        *,
        mtime: int | None = None,
        on_bytes: Callable[[int], None] | None = None,
        kernel_copy: bool = True,
        sha256: bool = False,
    ) -> None:
        when = fixed_mtime() if mtime is None else mtime
        if not 0 <= when < _MAX_USTAR_NUMBER:
            raise ArchiveError(f"mtime {when} does not fit in a tar header")
        self.mtime = when
        self.on_bytes = on_bytes
        self.items: list[WrittenItem] = []
        self._sink = _Sink(out, kernel=kernel_copy, sha256=sha256)
        self._hasher = _hasher()
        self._end = 0  # the output's size after the last complete item

    @property
    def content_bytes(self) -> int:
        """File content written so far (what progress counts)."""
        return sum(i.written.size for i in self.items if i.written is not None)

    def add(self, name: str, entry: Entry | None) -> None:
        """Write the next item of :func:`archive_order` (``entry`` None: a directory)."""
        start = self._sink.offset
        if start != self._end:  # a failed item left a part behind
            raise ArchiveError(f"cannot add {name!r}: the previous item was not complete")
        if entry is None:
            self._sink.write(
                _header(name, size=0, mtime=self.mtime, directory=True, executable=False)
            )
            self._done(WrittenItem(name, None, start, None))
            return
        opened = _Opened(entry)
        try:
            self._sink.write(
                _header(
                    name,
                    size=opened.size,
                    mtime=self.mtime,
                    directory=False,
                    executable=entry.executable,
                )
            )
            written = opened.write(
                self._sink.write, self._sink.copy_from, self.on_bytes, self._hasher
            )
        finally:
            opened.close()
        if opened.size % BLOCK:
            self._sink.write(bytes(BLOCK - opened.size % BLOCK))
        self._done(WrittenItem(name, entry, start, written))

    def _done(self, item: WrittenItem) -> None:
        self.items.append(item)
        self._end = self._sink.offset

    def rewind(self, count: int) -> None:
        """Keep the first ``count`` items written (and nothing of an item that failed)."""
        if count > len(self.items):
            raise ValueError(f"only {len(self.items)} items were written")
        offset = self.items[count].start if count < len(self.items) else self._end
        if offset != self._sink.offset:
            self._sink.rewind(offset)
        del self.items[count:]
        self._end = offset

    def finish(self) -> WrittenArchive:
        """End the archive (two zero blocks, padding to a whole record), flush; the files
        written, in order, with the archive's size and (if asked) sha256."""
        if self._sink.offset != self._end:
            self.rewind(len(self.items))
        self._sink.write(bytes(2 * BLOCK))
        if self._sink.offset % RECORD:
            self._sink.write(bytes(RECORD - self._sink.offset % RECORD))
        written = WrittenArchive(i.written for i in self.items if i.written is not None)
        written.sha256 = self._sink.finish()
        written.size = self._sink.offset
        return written

    def close(self) -> None:
        """Stop the helper threads (after :meth:`finish`, or to abandon the archive)."""
        self._hasher.shutdown(wait=True)
        self._sink.close()


def archive_order(entries: Iterable[Entry]) -> list[tuple[str, Entry | None]]:
    """The names validated, and every item in archive order: ``(name, entry)``, with the
    synthesised directories as ``(name, None)``."""
    return _plan(entries)


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
    writer = TarWriter(out, mtime=mtime, on_bytes=on_bytes, kernel_copy=kernel_copy, sha256=sha256)
    try:
        for name, entry in _plan(entries):
            writer.add(name, entry)
        return writer.finish()
    finally:
        writer.close()


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
