"""A conda package, given as a byte range of an open file, extracted into one directory of
py-rattler's package-cache layout (the package's files and its ``info/``), which
:func:`pixi_pack_src.install.conda.install_records` then only links from.

The range is read where it is (a member of the pack's tar, or a package file): no copy of the
package file is written first. ``.conda`` is a zip (read with :mod:`zipfile` through a window
on the range) holding ``info-*.tar.zst`` and ``pkg-*.tar.zst`` (:mod:`zstandard`);
``.tar.bz2`` is read with :mod:`tarfile` as a stream. Without :mod:`zstandard` (the
self-extracting unpacker), a ``.conda`` is written to a temporary file and extracted by
py-rattler's extractor instead.

Packages are untrusted (a lock may pin a hostile one), so every inner member is checked before
it is written: only regular files, directories, symbolic links and hard links; names that are
plain relative paths (:func:`pixi_pack_src.safepath.path_problem`, colons allowed as in perl's
man pages); each name once; nothing written through or below a symbolic link of the package (a
link's target is not restricted: it is never followed); a hard link only to an earlier regular
file of the same package; the declared sizes within the limits (a per-package compression
ratio and a total, :class:`Budget`) before a byte is written. Files are created with
``O_EXCL | O_NOFOLLOW``; modes keep only the owner's executable bit (as 0o755/0o644).
"""

from __future__ import annotations

import importlib
import io
import os
import posixpath
import tarfile
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import IO, Any, BinaryIO, cast

from pixi_pack_src.errors import ArchiveError
from pixi_pack_src.layout import TAMPERED
from pixi_pack_src.limits import max_compression_ratio, max_unpacked_bytes
from pixi_pack_src.safepath import path_problem

CHUNK = 1 << 20
MAX_MEMBERS = 1_000_000  # inner members of one package
MAX_HEADER_BYTES = 1 << 20  # one PAX / GNU long-name header
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
_FLAGS |= getattr(os, "O_NOFOLLOW", 0)

try:  # a dependency of pixi-pack-src; absent in the self-extracting unpacker's bundle
    zstandard: ModuleType | None = importlib.import_module("zstandard")
except ImportError:  # pragma: no cover - exercised by the self-extracting script
    zstandard = None


def is_package(name: str) -> bool:
    return name.endswith((".conda", ".tar.bz2"))


@dataclass
class Budget:
    """The bounds on what packages unpack to: ``ratio`` times each package's own size, and
    ``total`` bytes for all of them (shared by the threads extracting them)."""

    ratio: int = field(default_factory=max_compression_ratio)
    total: int = field(default_factory=max_unpacked_bytes)
    used: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def take(self, nbytes: int, *, package: int, packed: int, what: str) -> None:
        """Account ``nbytes`` more; ``package`` is what this package declared so far."""
        if package > max(packed, 1) * self.ratio:
            raise ArchiveError(
                f"refusing {what}: it unpacks to {package} bytes, {package // max(packed, 1)} "
                f"times its {packed} bytes (the limit is {self.ratio}: "
                "PIXI_PACK_SRC_MAX_COMPRESSION_RATIO)",
                hint="the package is a decompression bomb or damaged; raise the limit only for "
                "a package you trust",
            )
        with self._lock:
            self.used += nbytes
            over = self.used > self.total
        if over:
            raise ArchiveError(
                f"refusing {what}: the packages unpack to more than {self.total} bytes "
                "(PIXI_PACK_SRC_MAX_UNPACKED_BYTES)",
                hint="raise the limit if the environment is really that large",
            )


class _Window(io.RawIOBase):
    """``size`` bytes of the file open as ``fd`` from ``offset``, readable and seekable
    (``os.pread``: windows on one descriptor can be read from several threads)."""

    def __init__(self, fd: int, offset: int, size: int) -> None:
        super().__init__()
        self._fd, self._offset, self._size, self._pos = fd, offset, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        n = min(len(view), self._size - self._pos)
        if n <= 0:
            return 0
        got = os.preadv(self._fd, [view[:n]], self._offset + self._pos)
        self._pos += got
        return got


def _refuse(what: str, member: str, problem: str) -> ArchiveError:
    return ArchiveError(f"refusing {what}: {member} {problem}", hint=TAMPERED)


def _member_problem(name: str) -> str | None:
    if name.startswith("/"):
        return "is absolute"
    if ".." in name.split("/"):
        return "has a '..' component (it would be written outside the environment)"
    return path_problem(name)


class _Writer:
    """Writes the checked members of a package's tars under ``dest`` (see the module doc)."""

    def __init__(self, dest: Path, *, what: str, packed: int, budget: Budget) -> None:
        self.dest, self.what, self.packed, self.budget = dest, what, packed, budget
        self.declared = 0
        self.count = 0
        self.files: set[str] = set()
        self.links: set[str] = set()
        self.seen: set[str] = set()
        self.dirs: set[str] = {""}
        self._buffer = memoryview(bytearray(CHUNK))

    def tar(self, tf: tarfile.TarFile) -> None:
        while True:
            try:
                member = tf.next()
            except tarfile.TarError as exc:
                raise _refuse(self.what, "its archive", f"is damaged ({exc})") from None
            if member is None:
                return
            self.member(tf, member)

    def _parent(self, name: str, member: str) -> None:
        parent = posixpath.dirname(name)
        parts = parent.split("/") if parent else []
        for i in range(1, len(parts) + 1):
            sub = "/".join(parts[:i])
            if sub in self.links or sub in self.files:
                raise _refuse(
                    self.what, repr(member), f"is inside {sub!r}, which is not a directory"
                )
            if sub not in self.dirs:
                (self.dest / sub).mkdir(exist_ok=True)
                self.dirs.add(sub)

    def member(self, tf: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        what, name = self.what, member.name.rstrip("/")
        self.count += 1
        if self.count > MAX_MEMBERS:
            raise _refuse(what, "its archive", f"has more than {MAX_MEMBERS} members")
        problem = _member_problem(name)
        if problem:
            raise _refuse(what, repr(member.name), problem)
        if name in self.seen:
            raise _refuse(
                what,
                name,
                "appears twice in the archive (the copy that would be checked is not the one "
                "that would be installed)",
            )
        self.seen.add(name)
        if member.isdir():
            self._parent(name, name)
            if name in self.links or name in self.files:  # pragma: no cover - seen above
                raise _refuse(what, repr(name), "is a directory and a file")
            (self.dest / name).mkdir(exist_ok=True)
            self.dirs.add(name)
            return
        if name in self.dirs:
            raise _refuse(what, repr(name), "is a file where a directory is also needed")
        self._parent(name, name)
        target = self.dest / name
        if member.issym():
            # a link may point anywhere (as py-rattler extracts it): nothing is ever written
            # through one, here or when linked (conda.extract_and_check)
            link = member.linkname
            if not link or "\x00" in link:
                raise _refuse(what, repr(name), "is a symbolic link without a target")
            target.symlink_to(link)
            self.links.add(name)
            return
        if member.islnk():
            source = member.linkname.rstrip("/")
            if source not in self.files:
                raise _refuse(
                    what, repr(name), f"is a hard link to {source!r}, not an earlier file"
                )
            os.link(self.dest / source, target, follow_symlinks=False)
            self.files.add(name)
            return
        if member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE):
            raise _refuse(what, repr(name), f"has an unsupported type {member.type!r}")
        self.declared += member.size
        self.budget.take(member.size, package=self.declared, packed=self.packed, what=what)
        source_fh = tf.extractfile(member)
        if source_fh is None:  # pragma: no cover - regular members always have one
            raise _refuse(what, repr(name), "cannot be read")
        fd = os.open(target, _FLAGS, 0o755 if member.mode & 0o100 else 0o644)
        try:
            self._copy(source_fh, fd, member.size, name)
        finally:
            os.close(fd)
        self.files.add(name)

    def _copy(self, source: IO[bytes], fd: int, size: int, name: str) -> None:
        view, left = self._buffer, size
        while left:
            try:
                n = source.readinto(view[: min(CHUNK, left)])  # type: ignore[attr-defined]
            except (tarfile.TarError, OSError, EOFError) as exc:
                raise _refuse(self.what, repr(name), f"cannot be read ({exc})") from None
            if not n:
                raise _refuse(self.what, repr(name), "is truncated")
            chunk = view[:n]
            while chunk:
                chunk = chunk[os.write(fd, chunk) :]
            left -= n


_EXTENDED = (
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
)


class _BoundedInfo(tarfile.TarInfo):
    @classmethod
    def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> _BoundedInfo:
        info = super().frombuf(buf, encoding, errors)
        if info.type in _EXTENDED and info.size > MAX_HEADER_BYTES:
            raise tarfile.HeaderError(f"an extended header of {info.size} bytes")
        return info


@contextmanager
def _stream(fileobj: BinaryIO, mode: str, what: str) -> Iterator[tarfile.TarFile]:
    try:
        tf = tarfile.open(  # type: ignore[call-overload]  # noqa: SIM115 - the with below
            fileobj=fileobj, mode=mode, tarinfo=_BoundedInfo, copybufsize=CHUNK
        )
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise _refuse(what, "its archive", f"cannot be read ({exc})") from None
    with tf:
        yield tf


def extract_package(
    fd: int, offset: int, size: int, dest: Path, *, file_name: str, what: str, budget: Budget
) -> None:
    """Extract the package ``file_name`` (``size`` bytes of ``fd`` at ``offset``) into the new
    directory ``dest``; raises :class:`ArchiveError` naming ``what``. ``dest`` is left
    partly written on failure (the caller's work directory goes)."""
    dest.mkdir()
    writer = _Writer(dest, what=what, packed=size, budget=budget)
    window = _Window(fd, offset, size)
    try:
        if file_name.endswith(".tar.bz2"):
            buffered = cast("BinaryIO", io.BufferedReader(window, CHUNK))
            with _stream(buffered, "r|bz2", what) as tf:
                writer.tar(tf)
        elif zstandard is None:  # pragma: no cover - the self-extracting unpacker
            _extract_with_rattler(window, dest, what=what)
        else:
            _extract_conda(window, writer, what)
    except (OSError, EOFError, zipfile.BadZipFile, ValueError) as exc:
        if isinstance(exc, ArchiveError):
            raise
        raise ArchiveError(f"cannot extract {what}: {exc}", hint=TAMPERED) from exc


def _extract_conda(window: _Window, writer: _Writer, what: str) -> None:
    assert zstandard is not None
    with zipfile.ZipFile(cast("IO[bytes]", window)) as zf:
        inner = [i for i in zf.infolist() if i.filename.endswith(".tar.zst")]
        kinds = sorted(i.filename.split("-", 1)[0] for i in inner)
        if kinds != ["info", "pkg"]:
            raise _refuse(what, "its archive", "does not hold one info and one pkg tar")
        for info in sorted(inner, key=lambda i: i.header_offset):
            with zf.open(info) as raw:
                decompressor = zstandard.ZstdDecompressor()
                reader = decompressor.stream_reader(raw, read_size=CHUNK)
                try:
                    with _stream(cast("BinaryIO", reader), "r|", what) as tf:
                        writer.tar(tf)
                except zstandard.ZstdError as exc:
                    raise _refuse(what, info.filename, f"cannot be decompressed ({exc})") from None


def _extract_with_rattler(window: _Window, dest: Path, *, what: str) -> None:  # pragma: no cover
    from rattler.package_streaming import extract

    with tempfile.NamedTemporaryFile(dir=dest.parent, suffix=".conda") as tmp:
        while chunk := window.read(CHUNK):
            tmp.write(chunk)
        tmp.flush()
        try:
            extract(Path(tmp.name), dest)
        except Exception as exc:  # py-rattler raises many unrelated types
            raise ArchiveError(f"cannot extract {what}: {exc}", hint=TAMPERED) from exc
