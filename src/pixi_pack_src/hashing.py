"""File digests: the one chunked reader behind every sha256 (and md5) of a file."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal, overload

CHUNK = 1 << 20
# File systems with whole-second timestamps (FAT has two-second ones): a record taken less
# than this after the file's last change proves nothing (see FileIdentity.racy).
RACY_NS = 2_000_000_000
_SECOND_NS = 1_000_000_000


@overload
def hash_stream(fh: BinaryIO, *, md5: Literal[True] = ...) -> tuple[str, str, int]: ...
@overload
def hash_stream(fh: BinaryIO, *, md5: bool) -> tuple[str, str | None, int]: ...
def hash_stream(fh: BinaryIO, *, md5: bool = True) -> tuple[str, str | None, int]:
    """``(sha256, md5 or None, size)`` of what is left to read in ``fh``, in 1 MiB chunks."""
    sha = hashlib.sha256()
    mdh = hashlib.md5(usedforsecurity=False) if md5 else None  # conda records carry md5
    size = 0
    while chunk := fh.read(CHUNK):
        sha.update(chunk)
        if mdh is not None:
            mdh.update(chunk)
        size += len(chunk)
    return sha.hexdigest(), (mdh.hexdigest() if mdh is not None else None), size


@overload
def hash_file(path: Path, *, md5: Literal[True] = ...) -> tuple[str, str, int]: ...
@overload
def hash_file(path: Path, *, md5: bool) -> tuple[str, str | None, int]: ...
def hash_file(path: Path, *, md5: bool = True) -> tuple[str, str | None, int]:
    """``(sha256, md5 or None, size)`` of the file at ``path``."""
    with Path(path).open("rb") as fh:
        return hash_stream(fh, md5=md5)


def file_sha256(path: Path) -> str:
    """The hex sha256 of the file at ``path``."""
    return hash_file(path, md5=False)[0]


@dataclass(frozen=True)
class FileIdentity:
    """What identifies one exact file on disk, as git's index and ccache record it.

    Any write to the file through the file system moves ``ctime`` (which, unlike ``mtime``,
    cannot be set back by a user), a replacement changes ``ino``; so a file whose identity still
    matches the one recorded right after hashing it holds the bytes that were hashed. (Not
    caught: media corruption below the file system, and anyone able to rewrite the record
    itself; ``--verify-cache`` re-hashes for those.)
    """

    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int
    dev: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileIdentity:
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)

    @classmethod
    def of_path(cls, path: Path) -> FileIdentity:
        return cls.of(Path(path).stat())

    def racy(self, recorded_ns: int) -> bool:
        """Whether a write after ``recorded_ns`` could have left these timestamps unchanged
        (git's "racily clean" entries): on a file system with whole-second timestamps, a
        record taken within two seconds of the last change proves nothing. Sub-second
        timestamps (ext4, xfs, btrfs, tmpfs, APFS, NTFS) move with every later write."""
        coarse = self.mtime_ns % _SECOND_NS == 0 and self.ctime_ns % _SECOND_NS == 0
        return coarse and recorded_ns - max(self.mtime_ns, self.ctime_ns) < RACY_NS

    def to_json(self) -> dict[str, int]:
        return {
            "size": self.size,
            "mtime_ns": self.mtime_ns,
            "ctime_ns": self.ctime_ns,
            "ino": self.ino,
            "dev": self.dev,
        }

    @classmethod
    def from_json(cls, data: object) -> FileIdentity | None:
        """The identity in ``data`` (as :meth:`to_json` wrote it), or ``None`` if malformed."""
        if not isinstance(data, dict):
            return None
        values: list[int] = []
        for name in ("size", "mtime_ns", "ctime_ns", "ino", "dev"):
            value = data.get(name)
            if not isinstance(value, int) or isinstance(value, bool):
                return None
            values.append(value)
        size, mtime_ns, ctime_ns, ino, dev = values
        return cls(size, mtime_ns, ctime_ns, ino, dev)


@dataclass(frozen=True)
class Verified:
    """A file whose bytes were hashed to ``sha256`` while it had ``identity``."""

    sha256: str
    identity: FileIdentity

    def still(self, st: os.stat_result) -> bool:
        """Whether a file with stat ``st`` is still that very file, unchanged."""
        return FileIdentity.of(st) == self.identity
