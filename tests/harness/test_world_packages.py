"""The world's conda packages and channel are real: py-rattler reads them back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rattler.package import IndexJson, PathsJson
from rattler.package_streaming import PackageArchive
from testworld.catalog import default_specs
from testworld.channel import archive_names, channel_records, run
from testworld.layout import World
from testworld.packages import PackageSpec, assemble, describe

pytestmark = pytest.mark.integration


def test_default_world_has_the_promised_content(world: World) -> None:
    linux = world.in_subdir("linux-64") + world.in_subdir("noarch")
    assert len(linux) >= 22
    assert {p.archive for p in linux} == {"conda", "tar.bz2"}
    names = {p.name for p in linux}
    assert {"python", "relocme", "libgreet", "chain-a", "chain-b", "chain-c", "worldcli"} <= names
    assert {p.name for p in world.in_subdir("noarch") if p.noarch == "python"} == {
        "pip",
        "pyworld",
        "pyworld-plugins",
        "worldcli",
    }
    arch_names = {p.name for p in world.in_subdir("linux-64")}
    assert {p.name for p in world.in_subdir("osx-arm64")} == arch_names
    assert {p.name for p in world.in_subdir("win-64")} == arch_names
    assert {p.name for p in world.in_subdir("linux-aarch64")} == {
        "python",
        "chain-a",
        "chain-b",
        "chain-c",
        "libzed",
        "sysdep",
    }
    assert world.subdirs() == [
        "linux-64",
        "linux-aarch64",
        "noarch",
        "osx-64",
        "osx-arm64",
        "win-64",
    ]


@pytest.mark.parametrize(
    ("name", "subdir", "file_name"),
    [
        ("libgreet", "linux-64", "libgreet-2.1.0-hb0f4dca_0.tar.bz2"),
        ("chain-b", "win-64", None),
        ("pyworld", "noarch", None),
        ("worldcli", "noarch", "worldcli-1.0.0-pyh4616a5c_0.conda"),
    ],
)
def test_archive_metadata_matches_its_subdir(
    world: World, name: str, subdir: str, file_name: str | None
) -> None:
    pkg = world.package(name, subdir)
    if file_name is not None:
        assert pkg.file_name == file_name
    index = IndexJson.from_package_archive(world.archive_path(pkg))
    assert index.name.normalized == name
    assert index.subdir == subdir
    if subdir == "noarch":
        assert index.noarch.python if name in ("pyworld", "worldcli") else index.noarch.generic
    else:
        assert index.noarch.none
    paths = PathsJson.from_package_archive(world.archive_path(pkg))
    assert len(paths.paths) >= 1


def test_relocation_package_records_text_and_binary_placeholders(world: World) -> None:
    archive = world.archive_path(world.package("relocme", "linux-64"))
    paths = {p.relative_path: p for p in PathsJson.from_package_archive(archive).paths}
    binary = paths[Path("bin/relocme")].prefix_placeholder
    text = paths[Path("etc/relocme.conf")].prefix_placeholder
    assert binary is not None
    assert binary.file_mode.binary
    assert text is not None
    assert text.file_mode.text
    assert binary.placeholder == text.placeholder
    assert "placehold" in binary.placeholder


def test_python_package_is_the_real_interpreter(world: World) -> None:
    py = world.package("python", "linux-64")
    assert py.version.startswith("3.11.")
    assert py.size > 5_000_000
    osx = world.package("python", "osx-arm64")
    assert (osx.version, osx.build) == (py.version, py.build)
    assert osx.size < 10_000


def test_worldcli_declares_its_entry_point(world: World) -> None:
    pa = run(PackageArchive.from_path(world.archive_path(world.package("worldcli"))))
    link = run(pa.read_file("info/link.json"))
    assert link is not None
    assert json.loads(link)["noarch"]["entry_points"] == ["worldcli = worldcli:main"]


def test_repodata_lists_every_archive(world: World) -> None:
    for subdir in world.subdirs():
        on_disk = {p.name for p in (world.channel_dir / subdir).iterdir()} - {"repodata.json"}
        assert archive_names(world.channel_dir, subdir) == on_disk
    doc = json.loads((world.channel_dir / "linux-64" / "repodata.json").read_text())
    chain_b = doc["packages"]["chain-b-1.2.0-" + world.package("chain-b").build + ".tar.bz2"]
    assert chain_b["depends"] == ["chain-c >=1.0,<2"]
    assert "indexed_timestamp" not in chain_b
    records = channel_records(world.channel_dir, ["linux-64"])
    assert sorted(str(r.version) for r in records if r.name.normalized == "chain-c") == [
        "1.5.0",
        "2.0.0",
    ]


def test_assemble_is_deterministic(tmp_path: Path) -> None:
    spec = next(s for s in default_specs() if s.name == "chain-a" and s.subdir == "win-64")
    first = describe(assemble(spec, tmp_path / "one"))
    second = describe(assemble(spec, tmp_path / "two"))
    assert first.sha256 == second.sha256
    assert first.file_name == second.file_name == spec.file_name
    bz2 = PackageSpec("x", "1.0", "osx-64", files={"a": b"a"}, archive="tar.bz2")
    assert describe(assemble(bz2, tmp_path / "bz")).file_name == bz2.file_name
