"""Locks written by the world: real solves, and py-rattler reads every one back."""

from __future__ import annotations

import pytest
import yaml
from rattler import CondaLockedBinaryPackage, CondaLockedSourcePackage, LockFile, PypiLockedPackage
from rattler.package import IndexJson
from testworld.catalog import PORTABLE_SPECS
from testworld.fixtures import LockFactory, WorkspaceFactory
from testworld.layout import World
from testworld.locks import Env, Plat, PypiEntry, SourceEntry, solve
from testworld.server import WorldServer

pytestmark = pytest.mark.integration


def test_solve_picks_the_chain(world: World) -> None:
    records = solve(world.channel_dir, ["chain-a"], "linux-64")
    assert {r.name.normalized: str(r.version) for r in records} == {
        "chain-a": "1.0.0",
        "chain-b": "1.2.0",
        "chain-c": "1.5.0",
    }
    newest = solve(world.channel_dir, ["chain-c"], "linux-64")
    assert [str(r.version) for r in newest] == ["2.0.0"]
    assert [str(r.build) for r in solve(world.channel_dir, ["multibuild"], "win-64")] == [
        world.package("multibuild", "win-64").build
    ]


def test_portable_specs_solve_on_every_platform(world: World) -> None:
    for subdir in ("linux-64", "linux-aarch64", "osx-64", "osx-arm64", "win-64"):
        names = {r.name.normalized for r in solve(world.channel_dir, PORTABLE_SPECS, subdir)}
        assert names == {
            "python",
            "chain-a",
            "chain-b",
            "chain-c",
            "libzed",
            "sysdep",
            "worldcli",
            "pyworld",
        }, subdir


def test_lock_with_environments_and_custom_platforms(
    lock_factory: LockFactory, channel_server: WorldServer
) -> None:
    lock = lock_factory(
        {"default": ["python", "chain-a"], "prod": Env(conda=("libgreet",), platforms=("lx",))},
        platforms=[Plat("linux-64"), Plat("lx", subdir="linux-64"), Plat("win-64")],
    )
    lf = LockFile.from_path(lock.path)
    plats = {p.name: p for p in lf.platforms()}
    assert sorted(plats) == ["linux-64", "lx", "win-64"]
    assert str(plats["lx"].subdir) == "linux-64"
    assert lock.names("default", "win-64") == ["chain-a", "chain-b", "chain-c", "python"]
    assert lock.names("prod", "lx") == ["libgreet"]
    envs = dict(lf.environments())
    by_plat = {p.name: pkgs for p, pkgs in envs["prod"].packages_by_platform().items()}
    assert list(by_plat) == ["lx"]
    (greet,) = by_plat["lx"]
    assert isinstance(greet, CondaLockedBinaryPackage)
    record = greet.repo_data_record()
    assert record.url == f"{channel_server.url}/channel/linux-64/{record.file_name}"
    assert record.file_name == "libgreet-2.1.0-hb0f4dca_0.tar.bz2"


def test_repodata_patch_lives_in_the_lock_only(lock_factory: LockFactory, world: World) -> None:
    lock = lock_factory({"default": ["patchme"]}, patches={"patchme": ["libzed >=1.3,<2"]})
    env = dict(lock.load().environments())["default"]
    (pkgs,) = env.packages_by_platform().values()
    patched = next(p for p in pkgs if p.name == "patchme")
    assert isinstance(patched, CondaLockedBinaryPackage)
    assert patched.repo_data_record().depends == ["libzed >=1.3,<2"]
    index = IndexJson.from_package_archive(world.archive_path(world.package("patchme")))
    assert index.depends == ["libzed"]


def test_relative_and_file_conda_locations(lock_factory: LockFactory, world: World) -> None:
    lock = lock_factory(
        {"default": ["chain-a"]},
        conda_locations={"chain-b": "relative", "chain-c": "file"},
    )
    doc = yaml.safe_load(lock.text())
    locations = sorted(
        sel["conda"] for sel in doc["environments"]["default"]["packages"]["linux-64"]
    )
    chain_b, chain_c = world.package("chain-b"), world.package("chain-c", version="1.5.0")
    assert f"./conda-pkgs/{chain_b.file_name}" in locations
    assert world.archive_path(chain_c).resolve().as_uri() in locations
    assert (lock.path.parent / "conda-pkgs" / chain_b.file_name).is_file()
    lf = LockFile.from_path(lock.path)
    assert {p.name for p in lf.environments()[0][1].packages_by_platform().popitem()[1]} == {
        "chain-a",
        "chain-b",
        "chain-c",
    }


def test_pypi_and_source_entries_parse(
    lock_factory: LockFactory, channel_server: WorldServer
) -> None:
    sha = "ab" * 32
    env = Env(
        conda=("python",),
        pypi=(
            PypiEntry(
                "worldpkg-a",
                "http://127.0.0.1:1/pypi/files/worldpkg_a-1.0.0-py3-none-any.whl",
                "1.0.0",
                sha256=sha,
                requires_dist=("worldpkg-c>=0.5",),
                requires_python=">=3.8",
            ),
            PypiEntry("local-pkg", "./local-pkg"),
        ),
        sources=(
            SourceEntry("root", "src/root", depends=("python",), host_packages=("python",)),
            SourceEntry(
                "pinned",
                "git+https://example.invalid/r?tag=v1#" + "a" * 40,
                version="1.2.0",
                noarch=True,
                build_packages=("source:root",),
                host_packages=("pip",),  # not in the environment: the world's newest pip
            ),
        ),
    )
    lock = lock_factory({"default": env})
    (pkgs,) = dict(lock.load().environments())["default"].packages_by_platform().values()
    kinds = {p.name: type(p) for p in pkgs}
    assert kinds["root"] is CondaLockedSourcePackage
    assert kinds["worldpkg-a"] is PypiLockedPackage
    wheel = next(p for p in pkgs if p.name == "worldpkg-a")
    assert isinstance(wheel, PypiLockedPackage)
    assert wheel.requires_dist == ["worldpkg-c>=0.5"]
    assert wheel.requires_python == ">=3.8"
    raw = wheel._package.hashes
    assert raw is not None
    assert raw.sha256.hex() == sha
    tree = next(p for p in pkgs if p.name == "local-pkg")
    assert isinstance(tree, PypiLockedPackage)
    assert tree.version == "<dynamic>"
    pinned = next(p for p in pkgs if p.name == "pinned")
    assert isinstance(pinned, CondaLockedSourcePackage)
    assert pinned.package_record is not None
    root = next(p for p in pkgs if p.name == "root")
    assert isinstance(root, CondaLockedSourcePackage)
    assert root.package_record is None  # a partial record, as pixi writes for path sources
    doc = yaml.safe_load(lock.text())
    entry = next(e for e in doc["packages"] if str(e.get("conda_source", "")).startswith("root["))
    assert entry["variants"] == {"target_platform": "linux-64"}
    assert entry["host_packages"][0]["conda"].endswith(".conda")
    pinned_entry = next(
        e for e in doc["packages"] if str(e.get("conda_source", "")).startswith("pinned[")
    )
    assert pinned_entry["build_packages"] == [{"conda_source": entry["conda_source"]}]
    assert pinned_entry["host_packages"][0]["conda"].startswith(
        f"{channel_server.url}/channel/noarch/pip-"
    )
    assert (pinned_entry["version"], pinned_entry["subdir"]) == ("1.2.0", "noarch")


def test_workspace_factory_writes_manifest_lock_and_packages(
    workspace_factory: WorkspaceFactory, channel_server: WorldServer
) -> None:
    ws = workspace_factory(
        {
            "default": Env(
                conda=("python", "chain-a >=1.0"),
                sources=(SourceEntry("mypkg", "src/mypkg", depends=("chain-a",)),),
            ),
            "test": ["pyworld"],
        },
        platforms=["linux-64", "osx-arm64"],
    )
    manifest = ws.manifest.read_text()
    assert f'channels = ["{channel_server.url}/channel"]' in manifest
    assert 'platforms = ["linux-64", "osx-arm64"]' in manifest
    assert 'chain-a = ">=1.0"' in manifest
    assert 'mypkg = { path = "src/mypkg" }' in manifest
    assert "[feature.test.dependencies]" in manifest
    assert (ws.root / "src" / "mypkg" / "recipe.yaml").is_file()
    assert ws.lock_path == ws.root / "pixi.lock"
    assert ws.lock.names("test", "osx-arm64") == ["python", "pyworld"]
    assert sorted(name for name, _ in LockFile.from_path(ws.lock_path).environments()) == [
        "default",
        "test",
    ]


def test_same_inputs_write_the_same_lock(lock_factory: LockFactory, world: World) -> None:
    envs = {"default": Env(conda=("python", "worldcli", "zed-tools"))}
    plats = [Plat("linux-64"), Plat("osx-arm64")]
    first = lock_factory(envs, platforms=plats, served=False)
    second = lock_factory(envs, platforms=plats, served=False)
    assert first.text() == second.text()
    assert f"- url: {world.channel_url()}/\n" in first.text()
    assert first.versions("default", "osx-arm64") == {
        "libzed": "1.3.1",
        "python": world.package("python").version,
        "worldcli": "1.0.0",
        "zed-tools": "1.3.1",
    }
