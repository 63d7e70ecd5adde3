"""The stream reader of ``verify``: every hostile archive is a finding, from a file and from a
stream alike; self-extracting scripts are unwrapped; the checks on small hand-made packs."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from testworld.hostile import TAR_CASES, HostileTar

from pixi_pack_src.archive.members import Entry
from pixi_pack_src.archive.metadata import pixi_pack_json
from pixi_pack_src.archive.reader import ExtractLimits
from pixi_pack_src.archive.tar import write_tar
from pixi_pack_src.selfextract import header
from pixi_pack_src.verify.checks import check_pack
from pixi_pack_src.verify.model import PackContents
from pixi_pack_src.verify.scan import scan, scan_stream


def _limits(case: HostileTar) -> ExtractLimits:
    return ExtractLimits(**case.limits)


@pytest.mark.parametrize("case", TAR_CASES, ids=lambda c: c.id)
def test_every_hostile_archive_is_a_finding(case: HostileTar, tmp_path: Path) -> None:
    archive = case.build(tmp_path)
    from_file = scan(archive, limits=_limits(case))
    with archive.open("rb") as fh:
        streamed = scan_stream(_Pipe(fh.read()), label=str(archive), limits=_limits(case))
    for contents in (from_file, streamed):
        result = check_pack(contents)
        assert result.findings, case.id
        first = result.findings[0]
        assert first.code in ("unsafe-member", "unreadable")
        if case.in_member_name:
            assert repr(case.member) in first.message
        else:
            assert case.member in first.message
    assert [f.message for f in check_pack(from_file).findings] == [
        f.message for f in check_pack(streamed).findings
    ]


class _Pipe(io.RawIOBase):
    """A non-seekable stream (like stdin from a pipe), in small reads."""

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self._data = memoryview(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), len(self._data), 7777)
        buffer[:n] = self._data[:n]
        self._data = self._data[n:]
        return n


def _repodata(subdir: str, packages: dict[str, dict[str, object]]) -> bytes:
    doc = {"info": {"subdir": subdir}, "packages": {}, "packages.conda": packages}
    return json.dumps(doc).encode()


def _pack_tar(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    write_tar([Entry(name, data) for name, data in files.items()], out)
    return out.getvalue()


def _small_pack() -> dict[str, bytes]:
    data = b"package bytes"
    import hashlib

    record = {
        "name": "a",
        "version": "1.0",
        "build": "h0_0",
        "build_number": 0,
        "subdir": "noarch",
        "depends": ["b >=2"],
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
    }
    return {
        "pixi-pack.json": pixi_pack_json("linux-64"),
        "environment.yml": b"channels:\n- ./channel\n- nodefaults\ndependencies:\n- a=1.0=h0_0\n",
        "channel/noarch/repodata.json": _repodata("noarch", {"a-1.0-h0_0.conda": record}),
        "channel/noarch/a-1.0-h0_0.conda": data,
        "channel/linux-64/repodata.json": _repodata("linux-64", {}),
    }


def test_a_self_extracting_script_is_unwrapped() -> None:
    pack = _pack_tar(_small_pack())
    bundle = b"\x1f\x8b" + b"bundle" * 100
    head = header(
        subdir="linux-64",
        name="environment.sh",
        python="",
        bundle_length=len(bundle),
        pack_length=len(pack),
    )
    script = head + bundle + pack
    contents = scan_stream(_Pipe(script), label="environment.sh")
    assert sorted(contents.files) == sorted(_small_pack())
    result = check_pack(contents)
    # the one problem of this pack: a's dependency b is not in it
    assert [(f.code, f.path) for f in result.findings] == [
        ("dependency", "channel/noarch/a-1.0-h0_0.conda")
    ]
    assert "its dependency `b >=2` is not in environment.sh" in result.findings[0].message
    assert result.verified_against == "repodata.json"
    assert result.verified == 1


def test_a_script_of_another_kind_is_refused() -> None:
    contents = scan_stream(io.BytesIO(b"#!/bin/sh\necho hi\n"), label="x.sh")
    assert [f.code for f in contents.refused] == ["unreadable"]
    assert "not a pixi-pack-src self-extracting one" in contents.refused[0].message


@pytest.mark.parametrize(
    ("change", "code", "path"),
    [
        (
            {"environment.yml": b"dependencies:\n- a=1.0=h0_0\n- ghost=1=0\n"},
            "environment-yml",
            "environment.yml",
        ),
        ({"pypi/notes.txt": b"x"}, "layout", "pypi/notes.txt"),
        (
            {"channel/noarch/a-1.0-h0_0.conda": b"other bytes!!"},
            "mismatch",
            "channel/noarch/a-1.0-h0_0.conda",
        ),
        ({"channel/noarch/stray.conda": b"x"}, "not-listed", "channel/noarch/stray.conda"),
        (
            {"channel/win-64/repodata.json": _repodata("win-64", {})},
            "layout",
            "channel/win-64/repodata.json",
        ),
    ],
)
def test_one_change_one_finding(change: dict[str, bytes], code: str, path: str) -> None:
    files = _small_pack()
    files["channel/noarch/repodata.json"] = files["channel/noarch/repodata.json"].replace(
        b'"b >=2"', b'"__glibc >=2.17"'
    )
    assert check_pack(scan_stream(io.BytesIO(_pack_tar(files)), label="p")).findings == []
    files.update(change)
    contents = scan_stream(io.BytesIO(_pack_tar(files)), label="p")
    assert [(f.code, f.path) for f in check_pack(contents).findings] == [(code, path)]


def test_no_pixi_pack_json_is_a_metadata_finding() -> None:
    result = check_pack(PackContents(label="p"))
    assert [(f.code, f.message) for f in result.findings] == [
        ("metadata", "p is not a pixi-pack archive: it has no pixi-pack.json")
    ]
