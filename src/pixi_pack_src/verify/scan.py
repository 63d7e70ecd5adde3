"""Read a pack once, in a stream: every member checked, hashed, the small documents kept.

:func:`scan` takes a tar file, a self-extracting script (the pack is the payload after the
header and the unpacker bundle), standard input, or a directory pack, and returns a
:class:`~pixi_pack_src.verify.model.PackContents`. A tar is read with
:func:`pixi_pack_src.archive.reader.read_stream` -- the member checks of ``unpack`` -- without
seeking or spooling, in 1 MiB chunks: memory does not grow with the archive. Only the
documents (``pixi-pack.json``, ``pixi-pack-src.json``, ``environment.yml``, ``sbom.cdx.json``,
``channel/*/repodata.json``, each under the metadata limit) are held in memory; a wheel is
spooled to a temporary file only when its METADATA is asked for (the SBOM).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from pixi_pack_src.archive.members import CHUNK, BinaryReader
from pixi_pack_src.archive.metadata import PIXI_PACK_JSON, PROVENANCE_JSON, SBOM_JSON
from pixi_pack_src.archive.reader import (
    ExtractLimits,
    MemberChecker,
    is_metadata_member,
    read_stream,
)
from pixi_pack_src.errors import ArchiveError, UsageError
from pixi_pack_src.verify.model import Finding, MemberDigest, PackContents, WheelDetails
from pixi_pack_src.wheels import metadata_headers

ENVIRONMENT_YML = "environment.yml"
STDIN_LABEL = "the archive on standard input"
_DOCUMENTS = frozenset({PIXI_PACK_JSON, PROVENANCE_JSON, ENVIRONMENT_YML, SBOM_JSON})
_SCRIPT_HEAD = 64 * 1024
_PACK_OFFSET = re.compile(rb"\bPACK_OFFSET=(\d{1,19})\b")
_PACK_LENGTH = re.compile(rb"\bPACK_LENGTH=(\d{1,19})\b")
_WHEEL_SPOOL = 16 * 1024 * 1024


def is_document(name: str) -> bool:
    """The members whose bytes the checks read: metadata and each subdir's repodata.json."""
    if name in _DOCUMENTS:
        return True
    parts = name.split("/")
    return len(parts) == 3 and parts[0] == "channel" and parts[2] == "repodata.json"


def _is_conda_package(name: str) -> bool:
    return name.startswith("channel/") and name.endswith((".conda", ".tar.bz2"))


def _is_wheel(name: str) -> bool:
    return name.startswith("pypi/") and name.endswith(".whl")


def scan(
    source: Path | BinaryIO,
    *,
    label: str | None = None,
    wheel_details: bool = False,
    limits: ExtractLimits | None = None,
) -> PackContents:
    """Read the pack at ``source`` (a path, or a binary stream such as stdin).

    Damaged tars and unsafe members become findings in ``refused`` (reading stops at a
    damaged tar; an unsafe member is skipped and reading goes on). A source that does not
    exist or cannot be opened raises :class:`UsageError`/:class:`ArchiveError`.
    """
    if isinstance(source, Path):
        shown = label or str(source)
        if not source.exists():
            raise UsageError(
                f"{source} does not exist",
                hint="pass an archive, a self-extracting script, a directory pack, or - "
                "for standard input",
            )
        if source.is_dir():
            return scan_directory(source, label=shown, wheel_details=wheel_details)
        try:
            fh = source.open("rb")
        except OSError as exc:
            raise ArchiveError(f"cannot read {source}: {exc.strerror or exc}") from exc
        with fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise ArchiveError(f"{source} is not a file")
            return scan_stream(fh, label=shown, wheel_details=wheel_details, limits=limits)
    return scan_stream(
        source, label=label or STDIN_LABEL, wheel_details=wheel_details, limits=limits
    )


class _Prefixed:
    """``head`` (already read) followed by the rest of ``fh``, optionally cut at ``limit``."""

    def __init__(self, head: bytes, fh: BinaryReader, limit: int | None = None) -> None:
        self._head = head
        self._fh = fh
        self._left = limit

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            size = CHUNK
        if self._left is not None:
            size = min(size, self._left)
            if size == 0:
                return b""
        if self._head:
            data, self._head = self._head[:size], self._head[size:]
        else:
            data = self._fh.read(size)
        if self._left is not None:
            self._left -= len(data)
        return data


def _read_exactly(fh: BinaryReader, size: int) -> bytes:
    parts: list[bytes] = []
    while size > 0:
        data = fh.read(min(size, CHUNK))
        if not data:
            break
        parts.append(data)
        size -= len(data)
    return b"".join(parts)


def _skip(fh: BinaryReader, size: int, label: str) -> None:
    while size > 0:
        data = fh.read(min(size, CHUNK))
        if not data:
            raise ArchiveError(
                f"{label} is truncated: it ends before the pack it carries",
                hint="copy the file again",
            )
        size -= len(data)


def _unwrap_script(fh: BinaryReader, label: str) -> BinaryReader:
    """The tar inside a self-extracting script, or the stream itself for a plain tar."""
    head = _read_exactly(fh, 512)
    if not (head.startswith(b"#!") or head.lower().startswith(b"@echo off")):
        return _Prefixed(head, fh)
    head += _read_exactly(fh, _SCRIPT_HEAD - len(head))
    offset, length = _PACK_OFFSET.search(head), _PACK_LENGTH.search(head)
    if offset is None or length is None:
        raise ArchiveError(
            f"{label} is a script, but not a pixi-pack-src self-extracting one",
            hint="pass an archive, a script written by `pack --create-executable`, or a "
            "directory pack",
        )
    start, size = int(offset[1]), int(length[1])
    if start < len(head):
        return _Prefixed(head[start:], fh, size)
    _skip(fh, start - len(head), label)
    return _Prefixed(b"", fh, size)


def scan_stream(
    fh: BinaryReader,
    *,
    label: str,
    wheel_details: bool = False,
    limits: ExtractLimits | None = None,
) -> PackContents:
    """:func:`scan` of a tar or self-extracting script read from ``fh`` (never seeks)."""
    contents = PackContents(label=label)
    limits = limits or ExtractLimits()

    def refused(name: str, exc: ArchiveError) -> None:
        contents.refused.append(Finding("unsafe-member", name, exc.message, exc.hint))

    try:
        stream = _unwrap_script(fh, label)
        for member in read_stream(stream, label=label, limits=limits, on_refused=refused):
            if contents.mtime is None:
                contents.mtime = member.mtime
            _take(contents, member.name, member.reader, wheel_details=wheel_details)
    except ArchiveError as exc:
        contents.refused.append(Finding("unreadable", None, exc.message, exc.hint))
    return contents


def _take(contents: PackContents, name: str, reader: BinaryIO, *, wheel_details: bool) -> None:
    """Hash one member (md5 too for conda packages: repodata may record only md5); keep a
    document's bytes; read a wheel's METADATA when asked."""
    sha = hashlib.sha256()
    md5 = hashlib.md5(usedforsecurity=False) if _is_conda_package(name) else None
    keep = is_document(name) and is_metadata_member(name)
    kept: list[bytes] = []
    size = 0
    with contextlib.ExitStack() as stack:
        spool = None
        if wheel_details and _is_wheel(name):
            spool = stack.enter_context(tempfile.SpooledTemporaryFile(_WHEEL_SPOOL))
        while chunk := reader.read(CHUNK):
            sha.update(chunk)
            if md5 is not None:
                md5.update(chunk)
            if keep:
                kept.append(chunk)
            if spool is not None:
                spool.write(chunk)
            size += len(chunk)
        if spool is not None:
            spool.seek(0)
            contents.wheels[name] = wheel_info(spool)  # type: ignore[arg-type]
    contents.files[name] = MemberDigest(
        sha.hexdigest(), size, md5.hexdigest() if md5 is not None else None
    )
    if keep:
        contents.documents[name] = b"".join(kept)


def wheel_info(fh: BinaryIO) -> WheelDetails:
    """License fields and requirements from a wheel's METADATA (empty for a broken wheel)."""
    try:
        with zipfile.ZipFile(fh) as zf:
            headers = metadata_headers(zf, limit=None)
    except (OSError, zipfile.BadZipFile, ValueError):
        return WheelDetails()
    if headers is None:
        return WheelDetails()
    classifiers = tuple(
        c.strip() for c in headers.get_all("Classifier", []) if c.startswith("License ::")
    )
    license_text = headers.get("License")
    return WheelDetails(
        license_expression=(headers.get("License-Expression") or "").strip() or None,
        license=license_text.strip().splitlines()[0] if license_text else None,
        classifiers=classifiers,
        requires_dist=tuple(r.strip() for r in headers.get_all("Requires-Dist", [])),
    )


def scan_directory(root: Path, *, label: str, wheel_details: bool = False) -> PackContents:
    """:func:`scan` of a directory pack: regular files and directories only (never links)."""
    contents = PackContents(label=label)
    for name, path in walk_pack_dir(root, label, contents.refused.append):
        try:
            with path.open("rb") as fh:
                _take(contents, name, fh, wheel_details=wheel_details)
        except OSError as exc:
            contents.refused.append(
                Finding("unreadable", name, f"cannot read {name} in {label}: {exc.strerror}")
            )
    return contents


def walk_pack_dir(
    root: Path, label: str, refuse: Callable[[Finding], None]
) -> Iterator[tuple[str, Path]]:
    """The regular files of a directory pack, directory by directory: ``(relative name,
    path)``. A symbolic link or anything else that is not a regular file or a directory is
    handed to ``refuse`` (which may raise) and skipped; links are never followed."""
    hint = "a pack holds only regular files and directories"
    for directory, dirnames, filenames in os.walk(root):
        dirnames.sort()
        here = Path(directory)
        for entry in sorted([*dirnames, *filenames]):
            path = here / entry
            rel = path.relative_to(root).as_posix()
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                refuse(
                    Finding(
                        "unsafe-member",
                        rel,
                        f"refusing the directory pack {label}: {rel} is a symbolic link",
                        hint,
                    )
                )
            elif stat.S_ISREG(mode):
                yield rel, path
            elif not stat.S_ISDIR(mode):
                refuse(
                    Finding(
                        "unsafe-member",
                        rel,
                        f"refusing the directory pack {label}: {rel} is not a regular file",
                        hint,
                    )
                )
        dirnames[:] = [d for d in dirnames if not (here / d).is_symlink()]


def scan_extracted(
    root: Path, files: list[str], digests: dict[str, MemberDigest], *, label: str
) -> PackContents:
    """The contents of a pack ``unpack`` already extracted and hashed (``digests``)."""
    contents = PackContents(label=label, files=dict(digests))
    for name in files:
        if is_document(name):
            contents.documents[name] = (root / name).read_bytes()
    return contents


__all__ = [
    "ENVIRONMENT_YML",
    "SBOM_JSON",
    "STDIN_LABEL",
    "MemberChecker",
    "is_document",
    "scan",
    "scan_directory",
    "scan_extracted",
    "scan_stream",
    "walk_pack_dir",
    "wheel_info",
]
