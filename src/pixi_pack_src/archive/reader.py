"""The safe tar reader and extractor for untrusted archives.

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

import concurrent.futures
import contextlib
import hashlib
import io
import logging
import os
import shutil
import stat
import sys
import tarfile
import tempfile
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO, cast

from pixi_pack_src.archive.atomic import remove_path
from pixi_pack_src.archive.kernel_copy import hashing_thread, write_fd
from pixi_pack_src.archive.members import BLOCK, CHUNK, BinaryReader, fold, name_problem
from pixi_pack_src.errors import ArchiveError
from pixi_pack_src.limits import max_metadata_bytes

logger = logging.getLogger(__name__)

# The data filter exists from 3.11.4, but the first releases mishandled links; pypa/build
# uses the same cut-off (src/build/_compat/tarfile.py).
_HAS_DATA_FILTER = sys.version_info >= (3, 11, 5) and hasattr(tarfile, "data_filter")


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
        key = fold(name)
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
    while (member := _next_member(tf, label)) is not None:
        checker.check(member, file_size)
        members.append(member)
    _check_trailer(reader, tf.offset, file_size, label)
    return members


def _next_member(tf: tarfile.TarFile, label: str) -> tarfile.TarInfo | None:
    """The next member's header (``None`` at the end); a damaged one is an ArchiveError."""
    try:
        return tf.next()
    except tarfile.TarError as exc:
        raise ArchiveError(
            f"{label} is not a valid tar archive: {exc}",
            hint="the archive is truncated or damaged; copy it again",
        ) from None


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
        while (member := _next_member(tf, label)) is not None:
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
        remove_path(child)


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
            write_fd(dst, chunk)
            done += n
        if pending is not None:
            pending.result()
            pending = None
    except BaseException:
        if pending is not None:
            concurrent.futures.wait([pending])
        raise
    return digest.hexdigest()


@dataclass(frozen=True)
class Diversion:
    """Members :func:`safe_extract` does not write under its destination: ``select`` picks
    them from the validated names (in archive order), and ``start(fd, name, offset, size)``
    is handed each one as a byte range of the open archive. It returns a future of the
    member's sha256 and size, awaited before the archive is closed."""

    select: Callable[[Sequence[str]], Collection[str]]
    start: Callable[[int, str, int, int], concurrent.futures.Future[tuple[str, int]]]


def _extract_hashing(
    src: int, members: list[tarfile.TarInfo], dest: Path, skip: Collection[str] = ()
) -> dict[str, tuple[str, int]]:
    """Write the validated ``members`` of the tar open as ``src`` under ``dest``, hashing each
    file on the way. tarfile's ``data`` filter, where sound, still vets every member first."""
    digests: dict[str, tuple[str, int]] = {}
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_NOFOLLOW", 0)
    with hashing_thread() as hasher:
        for member in members:
            if _HAS_DATA_FILTER:
                tarfile.data_filter(member, str(dest))  # raises tarfile.FilterError
            target = dest.joinpath(*member.name.split("/"))
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            if member.name in skip:
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
    source: Path | BinaryIO,
    dest: Path,
    *,
    limits: ExtractLimits = ExtractLimits(),
    divert: Diversion | None = None,
) -> Extracted:
    """Check every member of the tar ``source``, then extract it into ``dest``.

    ``source`` is a path or a binary stream (stdin), which is first spooled to a temporary
    file next to ``dest``. ``dest`` must not exist or be empty. Returns the names of the
    regular files, in archive order, with the sha256 and size of each as written (the
    archive is read once). Raises :class:`ArchiveError` naming the archive and the member; on
    failure ``dest`` is left as it was (absent or empty). ``divert`` hands some members to
    another reader instead of writing them (:class:`Diversion`): they are listed, with the
    digests its futures return, but are not under ``dest``.
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
        names = [m.name for m in members if m.isreg()]
        diverted = set(divert.select(names)) if divert is not None else set()
        futures: dict[str, concurrent.futures.Future[tuple[str, int]]] = {}
        try:
            if divert is not None:
                for member in members:
                    if member.name in diverted:
                        futures[member.name] = divert.start(
                            fh.fileno(), member.name, member.offset_data, member.size
                        )
            digests = _extract_hashing(fh.fileno(), members, dest, diverted)
            for name, future in futures.items():
                digests[name] = future.result()
        except BaseException as exc:
            for future in futures.values():
                future.cancel()
            concurrent.futures.wait(futures.values())
            _clear(dest, created=created)
            if isinstance(exc, (tarfile.TarError, OSError)):
                raise ArchiveError(f"cannot extract {label} into {dest}: {exc}") from exc
            raise
    return Extracted(names, digests)
