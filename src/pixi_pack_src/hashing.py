"""File digests: the one chunked reader behind every sha256 (and md5) of a file."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import BinaryIO, Literal, overload

CHUNK = 1 << 20


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
