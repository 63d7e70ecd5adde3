"""The conda package extractor (install/extract.py) on hostile ``.tar.bz2``/``.conda`` members:
each is refused before anything is written outside the destination."""

from __future__ import annotations

import bz2
import io
import os
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import zstandard

from pixi_pack_src.errors import ArchiveError
from pixi_pack_src.install.extract import Budget, extract_package

Member = tuple[str, str, bytes | str]  # (name, kind: file/dir/sym/lnk, data or link target)


def _tar(members: list[Member]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tf:
        for name, kind, data in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                assert isinstance(data, bytes)
                info.size = len(data)
                info.mode = 0o755 if name.startswith("bin/") else 0o644
                tf.addfile(info, io.BytesIO(data))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "lnk": tarfile.LNKTYPE}[
                kind
            ]
            info.linkname = str(data)
            tf.addfile(info)
    return buffer.getvalue()


def _extract(tmp_path: Path, file_name: str, data: bytes, budget: Budget | None = None) -> Path:
    source = tmp_path / file_name
    source.write_bytes(b"junk before" + data + b"junk after")  # a range of a bigger file
    dest = tmp_path / "box" / "pkg"
    dest.parent.mkdir()
    fd = os.open(source, os.O_RDONLY)
    try:
        extract_package(
            fd, 11, len(data), dest, file_name=file_name, what="pkg", budget=budget or Budget()
        )
    finally:
        os.close(fd)
    return dest


def _bz2(members: list[Member]) -> bytes:
    return bz2.compress(_tar(members))


def _conda(info: list[Member], pkg: list[Member], *, extra: str | None = None) -> bytes:
    zst = zstandard.ZstdCompressor()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("metadata.json", b'{"conda_pkg_format_version": 2}')
        zf.writestr("pkg-x-1-0.tar.zst", zst.compress(_tar(pkg)))
        zf.writestr("info-x-1-0.tar.zst", zst.compress(_tar(info)))
        if extra:
            zf.writestr(extra, zst.compress(_tar(pkg)))
    return buffer.getvalue()


GOOD: list[Member] = [
    ("bin/tool", "file", b"#!/bin/sh\n"),
    ("lib/libx.so.1", "file", b"\x7fELF"),
    ("lib/libx.so", "sym", "libx.so.1"),
    ("lib/libx-copy.so", "lnk", "lib/libx.so.1"),
]
INFO: list[Member] = [("info/paths.json", "file", b'{"paths": [], "paths_version": 1}')]


@pytest.mark.parametrize("kind", ["tar.bz2", "conda"])
def test_a_good_package(kind: str, tmp_path: Path) -> None:
    data = _bz2(INFO + GOOD) if kind == "tar.bz2" else _conda(INFO, GOOD)
    dest = _extract(tmp_path, f"x-1-0.{kind}", data)
    assert (dest / "bin/tool").read_bytes() == b"#!/bin/sh\n"
    assert (dest / "bin/tool").stat().st_mode & 0o777 == 0o755
    assert (dest / "lib/libx.so.1").stat().st_mode & 0o777 == 0o644
    assert (dest / "lib/libx.so").readlink() == Path("libx.so.1")
    assert (dest / "lib/libx-copy.so").stat().st_ino == (dest / "lib/libx.so.1").stat().st_ino
    assert (dest / "info/paths.json").is_file()


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([("../evil", "file", b"x")], "'..' component"),
        ([("/tmp/evil", "file", b"x")], "is absolute"),
        ([("a", "sym", "/tmp"), ("a/evil", "file", b"x")], "which is not a directory"),
        ([("a", "sym", "../.."), ("a/b/evil", "file", b"x")], "which is not a directory"),
        ([("a", "file", b"1"), ("a", "file", b"2")], "appears twice in the archive"),
        ([("a", "lnk", "/etc/passwd")], "not an earlier file"),
        ([("a", "sym", "x"), ("b", "lnk", "a")], "not an earlier file"),
        ([("a", "file", b"1"), ("a/b", "file", b"2")], "which is not a directory"),
        ([("a\\b", "file", b"1")], "backslash"),
    ],
)
def test_hostile_members_are_refused(members: list[Member], message: str, tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match=message) as caught:
        _extract(tmp_path, "x-1-0.tar.bz2", _bz2(members))
    assert "pkg" in caught.value.message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["box", "x-1-0.tar.bz2"]
    assert not (tmp_path / "evil").exists()


def test_a_device_is_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tf:
        info = tarfile.TarInfo("dev/null")
        info.type = tarfile.CHRTYPE
        tf.addfile(info)
    with pytest.raises(ArchiveError, match="unsupported type"):
        _extract(tmp_path, "x-1-0.tar.bz2", bz2.compress(buffer.getvalue()))


def test_a_bomb_is_refused_before_it_is_written(tmp_path: Path) -> None:
    zeros = bytes(4 * 1024 * 1024)
    data = _bz2([("share/zeros", "file", zeros)])
    with pytest.raises(ArchiveError, match=r"it unpacks to \d+ bytes.*COMPRESSION_RATIO"):
        _extract(tmp_path, "x-1-0.tar.bz2", data, Budget(ratio=100, total=1 << 40))
    assert not (tmp_path / "box" / "pkg" / "share" / "zeros").exists()


def test_the_total_is_shared(tmp_path: Path) -> None:
    budget = Budget(ratio=1000, total=10)
    with pytest.raises(ArchiveError, match="MAX_UNPACKED_BYTES"):
        _extract(tmp_path, "x-1-0.tar.bz2", _bz2([("a", "file", b"0123456789a")]), budget)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: _conda(INFO, [("info/paths.json", "file", b"{}")]), "appears twice"),
        (lambda: _conda(INFO, GOOD, extra="pkg-y-1-0.tar.zst"), "one info and one pkg tar"),
        (lambda: b"PK\x03\x04 not a zip", "cannot extract"),
    ],
)
def test_hostile_conda_files_are_refused(
    make: Callable[[], bytes], message: str, tmp_path: Path
) -> None:
    with pytest.raises(ArchiveError, match=message):
        _extract(tmp_path, "x-1-0.conda", make())
