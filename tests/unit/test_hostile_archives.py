"""Every crafted archive in testworld/hostile.py is refused, and nothing is written anywhere."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest
from testworld import hostile
from testworld.hostile import TAR_CASES, HostileTar

from pixi_pack_src.archive.members import Entry
from pixi_pack_src.archive.reader import ExtractLimits, safe_extract
from pixi_pack_src.archive.tar import write_directory
from pixi_pack_src.errors import ArchiveError

ABSOLUTE_TARGET = Path("/tmp/pixi-pack-src-hostile-absolute")


def _tree(root: Path) -> dict[str, tuple[int, int] | None]:
    """Every path under ``root`` with (size, mtime) for files: any write shows up."""
    return {
        p.relative_to(root).as_posix(): (
            (p.lstat().st_size, p.lstat().st_mtime_ns) if not p.is_dir() else None
        )
        for p in sorted(root.rglob("*"))
    }


def _check_refusal(case: HostileTar, exc: ArchiveError, label: str) -> None:
    message = str(exc)
    assert label in message
    if case.in_member_name:
        assert repr(case.member) in message
    else:
        assert case.member in message
    assert exc.hint is not None or "not a tar archive" in message


def test_there_are_enough_cases() -> None:
    assert len(TAR_CASES) >= 30
    assert len({c.id for c in TAR_CASES}) == len(TAR_CASES)


@pytest.mark.parametrize("case", TAR_CASES, ids=lambda c: c.id)
def test_refused_from_a_file(case: HostileTar, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "work").mkdir()
    archive_path = case.build(tmp_path / "in")
    before = _tree(tmp_path)
    with pytest.raises(ArchiveError) as info:
        safe_extract(archive_path, tmp_path / "work" / "dest", limits=ExtractLimits(**case.limits))
    _check_refusal(case, info.value, str(archive_path))
    assert _tree(tmp_path) == before  # nothing inside dest (it does not exist), nothing outside
    assert not ABSOLUTE_TARGET.exists()


@pytest.mark.parametrize(
    "case", [c for c in TAR_CASES if c.id != "oversized-metadata"], ids=lambda c: c.id
)
def test_refused_from_a_stream(case: HostileTar, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "work").mkdir()
    archive_path = case.build(tmp_path / "in")
    before = _tree(tmp_path)
    with archive_path.open("rb") as stdin, pytest.raises(ArchiveError) as info:
        safe_extract(stdin, tmp_path / "work" / "dest", limits=ExtractLimits(**case.limits))
    _check_refusal(case, info.value, "standard input")
    assert _tree(tmp_path) == before  # the spool file is gone too


def test_an_existing_empty_destination_stays_empty(tmp_path: Path) -> None:
    case = next(c for c in TAR_CASES if c.id == "symlink-then-file")
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(ArchiveError):
        safe_extract(case.build(tmp_path), dest)
    assert list(dest.iterdir()) == []


def test_a_stream_over_the_total_limit_is_not_spooled_forever(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="larger than"):
        safe_extract(
            io.BytesIO(bytes(20 * 1024 * 1024)),
            tmp_path / "dest",
            limits=ExtractLimits(max_total_bytes=1024),
        )
    assert list(tmp_path.iterdir()) == []


# -- pack-level builders (used by the unpack tests) ----------------------------------------


@pytest.fixture
def good_pack(tmp_path: Path) -> Path:
    pack = tmp_path / "good"
    repodata = {
        "info": {"subdir": "noarch"},
        "packages": {},
        "packages.conda": {"zlib-1.0-h0_0.conda": {"name": "zlib", "sha256": "0" * 64}},
        "repodata_version": 2,
    }
    prov = {
        "schema": 1,
        "artifacts": [
            {
                "path": "channel/noarch/zlib-1.0-h0_0.conda",
                "sha256": "x",
                "size": 4,
                "kind": "conda",
            }
        ],
        "generated": [{"path": "channel/noarch/repodata.json", "sha256": "y"}],
    }
    write_directory(
        [
            Entry("pixi-pack.json", b'{"version": "1", "platform": "linux-64"}\n'),
            Entry("channel/noarch/zlib-1.0-h0_0.conda", b"ZLIB"),
            Entry("channel/noarch/repodata.json", json.dumps(repodata).encode()),
            Entry("pixi-pack-src.json", json.dumps(prov).encode()),
        ],
        pack,
    )
    return pack


def _extract(tar: Path, dest: Path) -> Path:
    safe_extract(tar, dest)  # the tampering is at the pack level: the tar itself is safe
    return dest


def test_tampered_package(good_pack: Path, tmp_path: Path) -> None:
    tar, member = hostile.tampered_package(good_pack, tmp_path / "t.tar")
    assert member == "channel/noarch/zlib-1.0-h0_0.conda"
    out = _extract(tar, tmp_path / "t")
    assert (out / member).read_bytes() == b"ZL\xb6B"
    prov = json.loads((out / "pixi-pack-src.json").read_bytes())
    assert prov["artifacts"][0]["sha256"] == "x"  # stale on purpose
    tar2, _ = hostile.tampered_package(good_pack, tmp_path / "t2.tar", update_provenance=True)
    prov2 = json.loads((_extract(tar2, tmp_path / "t2") / "pixi-pack-src.json").read_bytes())
    assert prov2["artifacts"][0]["sha256"] == (
        "671cbd5b4edd14df788d31ba00400dc66a52a5444795c869a8d9cd9e0b14c392"
    )
    assert (good_pack / member).read_bytes() == b"ZLIB"  # the input is untouched


def test_ghost_repodata_record(good_pack: Path, tmp_path: Path) -> None:
    tar, ghost = hostile.ghost_repodata_record(good_pack, tmp_path / "g.tar")
    out = _extract(tar, tmp_path / "g")
    assert ghost == "channel/noarch/ghost-1.0-h0000000_0.conda"
    assert not (out / ghost).exists()
    repodata = json.loads((out / "channel/noarch/repodata.json").read_bytes())
    assert sorted(repodata["packages.conda"]) == [
        "ghost-1.0-h0000000_0.conda",
        "zlib-1.0-h0_0.conda",
    ]


def test_missing_package_file(good_pack: Path, tmp_path: Path) -> None:
    tar, victim = hostile.missing_package_file(good_pack, tmp_path / "m.tar")
    out = _extract(tar, tmp_path / "m")
    assert not (out / victim).exists()
    assert json.loads((out / "pixi-pack-src.json").read_bytes())["artifacts"] == []


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"version": "2"}, {"version": "2", "platform": "linux-64"}),
        ({"version": 1}, {"version": 1, "platform": "linux-64"}),
        ({"platform": "win-64"}, {"version": "1", "platform": "win-64"}),
        ({"version": None}, {"platform": "linux-64"}),
    ],
)
def test_with_metadata(
    good_pack: Path, tmp_path: Path, fields: dict[str, Any], expected: dict[str, object]
) -> None:
    tar = hostile.with_metadata(good_pack, tmp_path / "w.tar", **fields)
    out = _extract(tar, tmp_path / "w")
    assert json.loads((out / "pixi-pack.json").read_bytes()) == expected


def test_with_escaping_wheel(good_pack: Path, tmp_path: Path) -> None:
    tar, arcname = hostile.with_escaping_wheel(good_pack, tmp_path / "e.tar")
    out = _extract(tar, tmp_path / "e")
    assert arcname == "pypi/evil-1.0-py3-none-any.whl"
    with zipfile.ZipFile(out / arcname) as zf:
        record = zf.read("evil-1.0.dist-info/RECORD").decode()
    assert "../../../escaped_by_wheel.py,," in record.splitlines()
    prov = json.loads((out / "pixi-pack-src.json").read_bytes())
    assert [a["path"] for a in prov["artifacts"]] == [
        "channel/noarch/zlib-1.0-h0_0.conda",
        arcname,
    ]


def test_repack_is_a_plain_sorted_tar(good_pack: Path, tmp_path: Path) -> None:
    tar = hostile.repack(good_pack, tmp_path / "r.tar")
    with tarfile.open(tar) as tf:
        assert tf.getnames() == [
            "channel",
            "channel/noarch",
            "channel/noarch/repodata.json",
            "channel/noarch/zlib-1.0-h0_0.conda",
            "pixi-pack-src.json",
            "pixi-pack.json",
        ]
