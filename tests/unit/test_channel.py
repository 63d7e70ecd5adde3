"""repodata.json from locked records, record_from_archive, validate_records, environment.yml."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rattler import PackageRecord, RepoDataRecord
from rattler.package import BuildString
from testworld.packages import PackageSpec, assemble

from pixi_pack_src.archive.channel import (
    channel_files,
    environment_yml,
    record_from_archive,
    repodata_json,
    validate_records,
)
from pixi_pack_src.errors import ArchiveError, PixiPackSrcError
from pixi_pack_src.hashing import hash_file

CF = "https://conda.anaconda.org/conda-forge/"
# pixi-pack's test_includes_repodata_patches: upstream patched this pin in repodata; the
# package's own info/index.json still says `libzlib >=1.2.13,<1.3.0a0`.
PATCHED = "libzlib >=1.2.13,<2.0.0a0"


def _record(
    name: str,
    version: str,
    build: str,
    subdir: str,
    *,
    ext: str = ".conda",
    depends: list[str] | None = None,
    constrains: list[str] | None = None,
    timestamp: datetime | None = None,
) -> RepoDataRecord:
    rec = PackageRecord(
        name=name,
        version=version,
        build=BuildString(build),
        build_number=0,
        subdir=subdir,
        depends=depends,
        constrains=constrains,
        sha256=bytes.fromhex("ab" * 32),
        md5=bytes.fromhex("cd" * 16),
        size=1234,
        license="MIT",
    )
    file_name = f"{name}-{version}-{build}{ext}"
    record = RepoDataRecord(rec, file_name=file_name, url=f"{CF}{subdir}/{file_name}", channel=CF)
    if timestamp is not None:
        record.timestamp = timestamp
    return record


PYTHON = _record(
    "python",
    "3.12.3",
    "h2628c8c_0_cpython",
    "win-64",
    depends=["bzip2 >=1.0.8,<2.0a0", PATCHED, "ucrt >=10.0.20348.0"],
    timestamp=datetime(2024, 4, 9, 20, 45, 23, 123000, tzinfo=UTC),
)
BZIP2 = _record("bzip2", "1.0.8", "hcfcfb64_5", "win-64", ext=".tar.bz2")
TZDATA = _record("tzdata", "2024a", "h0c530f3_0", "noarch")


def test_patched_depends_survive() -> None:
    doc = json.loads(repodata_json("win-64", [PYTHON, BZIP2]))
    record = doc["packages.conda"]["python-3.12.3-h2628c8c_0_cpython.conda"]
    assert record["depends"] == ["bzip2 >=1.0.8,<2.0a0", PATCHED, "ucrt >=10.0.20348.0"]
    assert record["timestamp"] == 1712695523123


def test_conda_and_tar_bz2_split_and_location_fields_dropped() -> None:
    doc = json.loads(repodata_json("win-64", [PYTHON, BZIP2]))
    assert doc["info"] == {"subdir": "win-64"}
    assert doc["repodata_version"] == 2
    assert list(doc["packages"]) == ["bzip2-1.0.8-hcfcfb64_5.tar.bz2"]
    assert list(doc["packages.conda"]) == ["python-3.12.3-h2628c8c_0_cpython.conda"]
    assert doc["packages"]["bzip2-1.0.8-hcfcfb64_5.tar.bz2"] == {
        "arch": "x86_64",
        "build": "hcfcfb64_5",
        "build_number": 0,
        "depends": [],
        "license": "MIT",
        "md5": "cd" * 16,
        "name": "bzip2",
        "platform": "win",
        "sha256": "ab" * 32,
        "size": 1234,
        "subdir": "win-64",
        "version": "1.0.8",
    }


def test_missing_timestamp_stays_missing() -> None:
    doc = json.loads(repodata_json("win-64", [BZIP2]))
    assert "timestamp" not in doc["packages"]["bzip2-1.0.8-hcfcfb64_5.tar.bz2"]


def test_exact_bytes_for_a_small_channel() -> None:
    assert repodata_json("noarch", [TZDATA]) == (
        b"{\n"
        b'  "info": {\n'
        b'    "subdir": "noarch"\n'
        b"  },\n"
        b'  "packages": {},\n'
        b'  "packages.conda": {\n'
        b'    "tzdata-2024a-h0c530f3_0.conda": {\n'
        b'      "build": "h0c530f3_0",\n'
        b'      "build_number": 0,\n'
        b'      "depends": [],\n'
        b'      "license": "MIT",\n'
        b'      "md5": "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd",\n'
        b'      "name": "tzdata",\n'
        b'      "sha256": "abababababababababababababababababababababababababababababababab",\n'
        b'      "size": 1234,\n'
        b'      "subdir": "noarch",\n'
        b'      "version": "2024a"\n'
        b"    }\n"
        b"  },\n"
        b'  "repodata_version": 2\n'
        b"}\n"
    )


def test_input_order_does_not_matter() -> None:
    assert repodata_json("win-64", [PYTHON, BZIP2]) == repodata_json("win-64", [BZIP2, PYTHON])


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ([TZDATA], "is for subdir noarch, not win-64"),
        ([PYTHON, PYTHON], "appears twice"),
    ],
)
def test_inconsistent_input_is_refused(records: list[RepoDataRecord], message: str) -> None:
    with pytest.raises(ArchiveError, match=message):
        repodata_json("win-64", records)


def test_channel_files_always_include_noarch() -> None:
    files = channel_files({"win-64": [PYTHON, BZIP2]})
    assert list(files) == ["channel/noarch/repodata.json", "channel/win-64/repodata.json"]
    assert json.loads(files["channel/noarch/repodata.json"]) == {
        "info": {"subdir": "noarch"},
        "packages": {},
        "packages.conda": {},
        "repodata_version": 2,
    }
    files = channel_files({"noarch": [TZDATA]}, extra_subdirs=("noarch", "linux-64"))
    assert list(files) == ["channel/linux-64/repodata.json", "channel/noarch/repodata.json"]


# -- record_from_archive -------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("pkgs")
    conda = assemble(
        PackageSpec(
            name="mytool",
            version="0.1.0",
            subdir="linux-64",
            build="h1234567_0",
            depends=("zlib >=1.3",),
            files={"share/mytool/x": b"x"},
        ),
        out,
    )
    bz2 = assemble(
        PackageSpec(
            name="mydata",
            version="2.0",
            subdir="noarch",
            build="h7654321_0",
            archive="tar.bz2",
            files={"share/mydata/y": b"y"},
        ),
        out,
    )
    return conda, bz2


def test_record_from_a_conda_archive(built: tuple[Path, Path]) -> None:
    conda, _ = built
    record = record_from_archive(conda, subdir_hint="linux-64")
    sha, md5, size = hash_file(conda)
    assert record.sha256 is not None
    assert record.md5 is not None
    assert (record.sha256.hex(), record.md5.hex(), record.size) == (sha, md5, size)
    assert (record.name.normalized, str(record.version), str(record.build)) == (
        "mytool",
        "0.1.0",
        "h1234567_0",
    )
    assert (record.subdir, record.depends, record.file_name) == (
        "linux-64",
        ["zlib >=1.3"],
        "mytool-0.1.0-h1234567_0.conda",
    )
    doc = json.loads(repodata_json("linux-64", [record]))
    entry = doc["packages.conda"]["mytool-0.1.0-h1234567_0.conda"]
    assert entry["md5"] == md5
    assert entry["timestamp"] == 1_704_067_200_000  # from index.json, kept


def test_record_from_a_tar_bz2_archive(built: tuple[Path, Path]) -> None:
    _, bz2 = built
    record = record_from_archive(bz2)
    assert (record.subdir, record.noarch.generic, record.size) == (
        "noarch",
        True,
        bz2.stat().st_size,
    )
    assert list(json.loads(repodata_json("noarch", [record]))["packages"]) == [bz2.name]


def test_record_from_archive_inside_an_event_loop(built: tuple[Path, Path]) -> None:
    conda, _ = built

    async def main() -> RepoDataRecord:
        return record_from_archive(conda)

    assert asyncio.run(main()).name.normalized == "mytool"


def test_record_from_archive_subdir_mismatch(built: tuple[Path, Path]) -> None:
    conda, _ = built
    with pytest.raises(ArchiveError, match="is a package for linux-64, expected osx-arm64"):
        record_from_archive(conda, subdir_hint="osx-arm64")


def test_record_from_a_broken_archive(tmp_path: Path) -> None:
    broken = tmp_path / "broken-1.0-h0_0.conda"
    broken.write_bytes(b"not a zip")
    with pytest.raises(ArchiveError, match=r"cannot read the package metadata .*broken-1.0-h0_0"):
        record_from_archive(broken)
    with pytest.raises(ArchiveError, match="not a conda package file"):
        record_from_archive(tmp_path / "thing.whl")


# -- validate_records ----------------------------------------------------------------------


def test_validate_names_the_missing_dependency() -> None:
    broken = _record(
        "my-webserver-broken", "0.1.0", "pyh4616a5c_0", "noarch", depends=["fastapi >=0.112"]
    )
    with pytest.raises(PixiPackSrcError) as info:
        validate_records([TZDATA, broken])
    assert str(info.value) == (
        "`fastapi >=0.112` is not in the environment "
        "(required by my-webserver-broken=0.1.0=pyh4616a5c_0)"
    )
    assert info.value.hint is not None


def test_validate_names_a_violated_constraint() -> None:
    a = _record("a", "1.0", "h0", "noarch", constrains=["tzdata <2000"])
    with pytest.raises(PixiPackSrcError) as info:
        validate_records([a, TZDATA])
    assert str(info.value) == (
        "`tzdata=2024a=h0c530f3_0` violates the constraint `tzdata <2000` of a=1.0=h0"
    )


def test_validate_accepts_a_consistent_set_and_skips_virtual_packages() -> None:
    app = _record("app", "1", "h0", "linux-64", depends=["tzdata >=2023", "__glibc >=2.17"])
    validate_records([app, TZDATA])


# -- environment.yml -----------------------------------------------------------------------

LIBZLIB = _record("libzlib", "1.3.1", "hb9d3cd8_2", "linux-64")
PY = _record("python", "3.12.3", "hab00c5b_0_cpython", "linux-64")
PIP = _record("pip", "24.0", "pyhd8ed1ab_0", "noarch")


def test_environment_yml_without_wheels() -> None:
    assert environment_yml([PY, LIBZLIB], []) == (
        b"channels:\n"
        b"- ./channel\n"
        b"- nodefaults\n"
        b"dependencies:\n"
        b"- libzlib=1.3.1=hb9d3cd8_2\n"
        b"- python=3.12.3=hab00c5b_0_cpython\n"
    )


def test_environment_yml_with_wheels(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        data = environment_yml([PY, PIP, LIBZLIB], [("ordered_enum", "0.0.9"), ("Attrs", "23.2.0")])
    assert data == (
        b"channels:\n"
        b"- ./channel\n"
        b"- nodefaults\n"
        b"dependencies:\n"
        b"- libzlib=1.3.1=hb9d3cd8_2\n"
        b"- pip=24.0=pyhd8ed1ab_0\n"
        b"- python=3.12.3=hab00c5b_0_cpython\n"
        b"- pip:\n"
        b"  - --no-index\n"
        b"  - --find-links ./pypi\n"
        b"  - attrs==23.2.0\n"
        b"  - ordered-enum==0.0.9\n"
    )
    assert caplog.records == []


def test_environment_yml_warns_without_pip(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        environment_yml([PY], [("ordered-enum", "0.0.9")])
    assert [r.getMessage() for r in caplog.records] == [
        "the pack has PyPI wheels but no `pip` package: installing environment.yml with conda "
        "or micromamba will not install the wheels"
    ]
