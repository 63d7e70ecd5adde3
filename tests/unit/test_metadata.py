"""pixi-pack.json (pixi-unpack's strict reading) and pixi-pack-src.json (provenance)."""

from __future__ import annotations

import json
import random
from dataclasses import replace

import pytest

from pixi_pack_src.archive.metadata import (
    PIXI_PACK_COMPAT_VERSION,
    ArtifactProvenance,
    GeneratedFile,
    LockInfo,
    PackMetadata,
    PlatformInfo,
    Provenance,
    ToolInfo,
    check_platform,
    pixi_pack_json,
    read_pixi_pack_json,
    read_provenance,
    uncovered,
)
from pixi_pack_src.errors import PackFormatError

SRC = "environment.tar"


def _read(doc: object) -> PackMetadata:
    return read_pixi_pack_json(json.dumps(doc).encode(), source=SRC)


# -- pixi-pack.json ------------------------------------------------------------------------


def test_pixi_pack_json_exact_bytes() -> None:
    assert PIXI_PACK_COMPAT_VERSION == "0.7.10"
    assert pixi_pack_json("linux-64") == (
        b'{\n  "version": "1",\n  "pixi-pack-version": "0.7.10",\n  "platform": "linux-64"\n}\n'
    )


def test_pixi_pack_json_round_trip() -> None:
    meta = read_pixi_pack_json(pixi_pack_json("osx-arm64"), source=SRC)
    assert meta == PackMetadata(version="1", platform="osx-arm64", pixi_pack_version="0.7.10")


def test_pixi_pack_json_refuses_a_bad_subdir_on_write() -> None:
    with pytest.raises(ValueError, match="linux64"):
        pixi_pack_json("linux64")


def test_missing_tool_version_is_accepted() -> None:
    assert _read({"version": "1", "platform": "linux-64"}) == PackMetadata(
        version="1", platform="linux-64", pixi_pack_version=None
    )


def test_unknown_keys_are_ignored() -> None:
    assert _read({"version": "1", "platform": "win-64", "x": 1}).platform == "win-64"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "pixi-pack.json in environment.tar is empty"),
        (b"   \n", "pixi-pack.json in environment.tar is empty"),
        (
            b"{",
            "pixi-pack.json in environment.tar is not valid JSON: Expecting property name "
            "enclosed in double quotes: line 1 column 2 (char 1)",
        ),
        (
            b"\xff\xfe",
            "pixi-pack.json in environment.tar is not valid JSON: 'utf-8' codec can't decode "
            "byte 0xff in position 0: invalid start byte",
        ),
        (b"[]", "pixi-pack.json in environment.tar is not a JSON object"),
        (b'{"platform": "linux-64"}', "pixi-pack.json in environment.tar has no `version`"),
        (
            b'{"version": 1, "platform": "linux-64"}',
            "pixi-pack.json in environment.tar: `version` must be a string, got 1",
        ),
        (
            b'{"version": 1.0, "platform": "linux-64"}',
            "pixi-pack.json in environment.tar: `version` must be a string, got 1.0",
        ),
        (b'{"version": "v0", "platform": "linux-64"}', "Unsupported pixi-pack version: v0"),
        (b'{"version": "2", "platform": "linux-64"}', "Unsupported pixi-pack version: 2"),
        (
            b'{"version": "1", "platform": "linux64"}',
            "pixi-pack.json in environment.tar: `platform` 'linux64' is not a conda subdir",
        ),
        (b'{"version": "1"}', "pixi-pack.json in environment.tar has no `platform` string"),
        (
            b'{"version": "1", "platform": "linux-64", "pixi-pack-version": 7}',
            "pixi-pack.json in environment.tar: `pixi-pack-version` must be a string, got 7",
        ),
    ],
)
def test_rejections(data: bytes, message: str) -> None:
    with pytest.raises(PackFormatError) as info:
        read_pixi_pack_json(data, source=SRC)
    assert str(info.value) == message
    assert info.value.hint is not None
    assert SRC in info.value.hint


def test_platform_check() -> None:
    meta = PackMetadata(version="1", platform="linux-64", pixi_pack_version=None)
    check_platform(meta, "linux-64")
    with pytest.raises(PackFormatError) as info:
        check_platform(meta, "osx-arm64")
    assert str(info.value) == "The pack was created for a different platform"
    assert info.value.hint == (
        "the pack is for linux-64, this machine is osx-arm64; unpack it on a linux-64 machine"
    )
    with pytest.raises(PackFormatError) as info:
        check_platform(PackMetadata("1", "osx-arm64", None), "linux-64")
    assert info.value.hint is not None
    assert info.value.hint.endswith("unpack it on an osx-arm64 machine")


# -- pixi-pack-src.json --------------------------------------------------------------------

ZLIB = ArtifactProvenance(
    path="channel/linux-64/zlib-1.3.1-hb9d3cd8_2.conda",
    kind="conda",
    name="zlib",
    version="1.3.1",
    build="hb9d3cd8_2",
    sha256="aa" * 32,
    size=92286,
    origin={
        "type": "download",
        "url": "https://conda.anaconda.org/conda-forge/linux-64/zlib-1.3.1-hb9d3cd8_2.conda",
        "verified-against": "lock-sha256",
    },
)
FOO = ArtifactProvenance(
    path="pypi/foo-1.0-py3-none-any.whl",
    kind="wheel",
    name="foo",
    version="1.0",
    sha256="bb" * 32,
    size=10240,
    origin={"type": "sdist", "url": "https://files.example.test/foo-1.0.tar.gz", "sha256": "cc"},
    builder={
        "frontend": "pypa/build 1.3.0",
        "build-requires": ["setuptools==80.9.0", "wheel==0.45.1"],
        "isolated": True,
    },
)
PROV = Provenance(
    tool=ToolInfo(name="pixi-pack-src", version="0.1.0"),
    lock=LockInfo(file="pixi.lock", format=7, sha256="dd" * 32),
    environment="default",
    platform=PlatformInfo(
        name="linux-64", subdir="linux-64", virtual_packages=("__unix=0=0", "__glibc=2.28")
    ),
    artifacts=(FOO, ZLIB),
    generated=(
        GeneratedFile(path="pixi-pack.json", sha256="ee" * 32, size=80),
        GeneratedFile(path="environment.yml", sha256="ff" * 32),
    ),
)


def test_provenance_exact_bytes() -> None:
    doc = json.loads(PROV.to_json())
    assert doc == {
        "schema": 1,
        "tool": {"name": "pixi-pack-src", "version": "0.1.0"},
        "lock": {"file": "pixi.lock", "format": 7, "sha256": "dd" * 32},
        "environment": "default",
        "platform": {
            "name": "linux-64",
            "subdir": "linux-64",
            "virtual-packages": ["__glibc=2.28", "__unix=0=0"],
        },
        "artifacts": [
            {
                "path": "channel/linux-64/zlib-1.3.1-hb9d3cd8_2.conda",
                "kind": "conda",
                "name": "zlib",
                "version": "1.3.1",
                "build": "hb9d3cd8_2",
                "sha256": "aa" * 32,
                "size": 92286,
                "origin": {
                    "type": "download",
                    "url": "https://conda.anaconda.org/conda-forge/linux-64/zlib-1.3.1-hb9d3cd8_2.conda",
                    "verified-against": "lock-sha256",
                },
            },
            {
                "path": "pypi/foo-1.0-py3-none-any.whl",
                "kind": "wheel",
                "name": "foo",
                "version": "1.0",
                "sha256": "bb" * 32,
                "size": 10240,
                "origin": {
                    "type": "sdist",
                    "url": "https://files.example.test/foo-1.0.tar.gz",
                    "sha256": "cc",
                },
                "builder": {
                    "frontend": "pypa/build 1.3.0",
                    "build-requires": ["setuptools==80.9.0", "wheel==0.45.1"],
                    "isolated": True,
                },
            },
        ],
        "generated": [
            {"path": "environment.yml", "sha256": "ff" * 32},
            {"path": "pixi-pack.json", "sha256": "ee" * 32, "size": 80},
        ],
    }
    data = PROV.to_json()
    assert data.endswith(b"}\n")
    assert data.startswith(b'{\n  "artifacts": [\n    {\n      "build": "hb9d3cd8_2",\n')


def test_provenance_is_deterministic() -> None:
    artifacts = [FOO, ZLIB]
    random.Random(3).shuffle(artifacts)
    shuffled = replace(
        PROV,
        artifacts=tuple(reversed(artifacts)),
        generated=tuple(reversed(PROV.generated)),
        platform=replace(PROV.platform, virtual_packages=("__glibc=2.28", "__unix=0=0")),
    )
    assert shuffled.to_json() == PROV.to_json()


def test_provenance_round_trip() -> None:
    back = read_provenance(PROV.to_json())
    assert back.to_json() == PROV.to_json()
    assert back.expected() == {
        "channel/linux-64/zlib-1.3.1-hb9d3cd8_2.conda": ("aa" * 32, 92286),
        "pypi/foo-1.0-py3-none-any.whl": ("bb" * 32, 10240),
        "pixi-pack.json": ("ee" * 32, 80),
        "environment.yml": ("ff" * 32, None),
    }


def test_provenance_reader_ignores_unknown_keys() -> None:
    doc = json.loads(PROV.to_json())
    doc["future"] = {"x": 1}
    doc["artifacts"][0]["signature"] = "zz"
    doc["tool"]["commit"] = "abc"
    back = read_provenance(json.dumps(doc).encode())
    assert back.to_json() == PROV.to_json()


def test_provenance_reader_refuses_a_newer_schema() -> None:
    doc = json.loads(PROV.to_json())
    doc["schema"] = 2
    with pytest.raises(PackFormatError) as info:
        read_provenance(json.dumps(doc).encode(), source=SRC)
    assert str(info.value) == (
        "pixi-pack-src.json in environment.tar has schema 2, newer than this tool reads (1)"
    )
    assert info.value.hint == "upgrade pixi-pack-src to verify this archive"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("schema"), "`schema` must be an integer"),
        (lambda d: d.update(schema="1"), "`schema` must be an integer"),
        (lambda d: d["artifacts"][0].pop("origin"), "artifacts[0].`origin` must be an object"),
        (lambda d: d["artifacts"][0]["origin"].pop("type"), "with a string `type`"),
        (lambda d: d["artifacts"][1].update(kind="rpm"), "artifacts[1].`kind` 'rpm'"),
        (lambda d: d["artifacts"][0].update(size="9"), "artifacts[0].`size` must be an integer"),
        (
            lambda d: d["generated"][0].update(path="../../etc/passwd"),
            "generated[0].`path` '../../etc/passwd' is not a relative archive path",
        ),
        (lambda d: d.update(lock=[]), "`lock` must be an object"),
    ],
)
def test_provenance_reader_rejects_bad_documents(mutate: object, message: str) -> None:
    doc = json.loads(PROV.to_json())
    mutate(doc)  # type: ignore[operator]
    with pytest.raises(
        PackFormatError, match=r"invalid pixi-pack-src\.json in environment\.tar"
    ) as info:
        read_provenance(json.dumps(doc).encode(), source=SRC)
    assert message in str(info.value)


@pytest.mark.parametrize("data", [b"", b"{", b"[1]"])
def test_provenance_reader_rejects_non_objects(data: bytes) -> None:
    with pytest.raises(PackFormatError, match=r"pixi-pack-src.json in environment.tar is not"):
        read_provenance(data, source=SRC)


@pytest.mark.parametrize(
    "path", ["/abs/x.conda", "../x.conda", "channel//x.conda", "C:/x.conda", "a\\b", "./x"]
)
def test_provenance_refuses_non_relative_paths(path: str) -> None:
    with pytest.raises(ValueError, match="not a relative archive path"):
        replace(PROV, artifacts=(replace(ZLIB, path=path),)).to_json()


def test_provenance_refuses_duplicates_and_itself() -> None:
    with pytest.raises(ValueError, match="listed twice"):
        replace(PROV, artifacts=(ZLIB, ZLIB)).to_json()
    with pytest.raises(ValueError, match="cannot list itself"):
        replace(PROV, generated=(GeneratedFile("pixi-pack-src.json", "00"),)).to_json()


def test_uncovered() -> None:
    files = [
        "pixi-pack.json",
        "environment.yml",
        "pixi-pack-src.json",
        "channel/linux-64/zlib-1.3.1-hb9d3cd8_2.conda",
        "pypi/foo-1.0-py3-none-any.whl",
        "pypi/smuggled-1.0-py3-none-any.whl",
        "channel/linux-64/repodata.json",
    ]
    assert uncovered(PROV, files) == [
        "channel/linux-64/repodata.json",
        "pypi/smuggled-1.0-py3-none-any.whl",
    ]
