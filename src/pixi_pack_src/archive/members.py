"""The archive's members and their encoding: what the writers are given (:class:`Entry`)
and give back (:class:`WrittenEntry`, :class:`WrittenArchive`), the I/O protocols, the rules
for member names and the archive order, and the PAX header of one member.

(The writers: :mod:`.tar`; copying a file's bytes: :mod:`.kernel_copy`; the tar output:
:mod:`.sink`; the safe reader: :mod:`.reader`.)

One module for what the writers and the reader must agree on: the reader checks each member's
name with the same :func:`name_problem` and finds clashes with the same :func:`fold` the
writers plan with, and both move content in :data:`CHUNK` pieces. The order and the headers
are docs/archive-format.md, "Determinism": entries sorted by name at each directory level,
parents (synthesised directory entries) before children; PAX headers with mtime =
``SOURCE_DATE_EPOCH`` or a fixed non-zero constant, uid/gid 0, empty uname/gname, mode 0644
(0755 for directories and executables).
"""

from __future__ import annotations

import os
import tarfile
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pixi_pack_src.errors import ArchiveError, UsageError
from pixi_pack_src.hashing import Verified
from pixi_pack_src.safepath import path_problem

# pixi-pack's Rust writer (tar's deterministic header mode) uses this non-zero time.
DEFAULT_MTIME = 1153704088
CHUNK = 1 << 20
BLOCK = tarfile.BLOCKSIZE
RECORD = tarfile.RECORDSIZE
MAX_USTAR_NUMBER = 8**11  # 11 octal digits: larger values need a PAX record


class BinaryReader(Protocol):
    """What :func:`~.reader.read_stream` needs from its input: a file, a pipe, stdin, a wrapper."""

    def read(self, size: int = -1, /) -> bytes: ...


class BinaryWriter(Protocol):
    """What :func:`~.tar.write_tar` needs from its output: a file, a pipe, stdout, a wrapper."""

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
    """:func:`~.tar.write_tar`'s files in archive order, ``size``: the archive's bytes, ``sha256``:
    its hash (when asked)."""

    size: int = 0
    sha256: str | None = None


def fixed_mtime() -> int:
    """``SOURCE_DATE_EPOCH`` if set, else :data:`DEFAULT_MTIME`."""
    raw = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not raw:
        return DEFAULT_MTIME
    if not raw.isdigit() or int(raw) >= MAX_USTAR_NUMBER:
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


def fold(name: str) -> str:
    return unicodedata.normalize("NFC", name).casefold()


def _tree_key(name: str) -> list[str]:
    # Sorting by components gives "sorted at each level, parents before children".
    return name.split("/")


def plan(entries: Iterable[Entry]) -> list[tuple[str, Entry | None]]:
    """Validate names; return (name, entry) in archive order, ``None`` for directories."""
    files: dict[str, Entry] = {}
    folded: dict[str, str] = {}
    dirs: set[str] = set()
    for entry in entries:
        name = entry.arcname
        problem = name_problem(name)
        if problem:
            raise ArchiveError(f"cannot archive {name!r}: it {problem}")
        key = fold(name)
        if key in folded:
            raise ArchiveError(f"cannot archive {name!r} twice (clashes with {folded[key]!r})")
        folded[key] = name
        files[name] = entry
        parts = name.split("/")
        dirs.update("/".join(parts[:i]) for i in range(1, len(parts)))
    folded_dirs: dict[str, str] = {}
    for d in sorted(dirs):
        key = fold(d)
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


def write_all(out: BinaryWriter, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data)
    while view:
        n = out.write(view)
        if n is None:  # a non-blocking raw stream that is full
            raise ArchiveError("the output stream does not accept data (non-blocking?)")
        view = view[n:]


def header(name: str, *, size: int, mtime: int, directory: bool, executable: bool) -> bytes:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.size = 0 if directory else size
    info.mode = 0o755 if (directory or executable) else 0o644
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info.tobuf(tarfile.PAX_FORMAT, encoding="utf-8", errors="strict")
