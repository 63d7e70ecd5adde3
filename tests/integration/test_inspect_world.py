"""`inspect` on workspaces written by the world (real solves, real package files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from testworld.cli import inspect_json
from testworld.fixtures import WorkspaceFactory
from testworld.layout import World
from testworld.locks import Env, Plat, SourceEntry
from testworld.pixi_standin.workspaces import write_package
from testworld.pypi import index_entry, local_entry, tree_entry
from testworld.server import WorldServer

from pixi_pack_src.lock.lockfile import load_lock

pytestmark = pytest.mark.integration


def _inspect(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict[str, Any]:
    return inspect_json(capsys, *argv)


def test_inspect_world_workspace(
    world: World,
    channel_server: WorldServer,
    workspace_factory: WorkspaceFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wheel_a = index_entry(world, "worldpkg-a", channel_server.url)
    sdist_b = index_entry(world, "worldpkg-b", channel_server.url, kind="sdist")
    local_c, local_paths = local_entry(world, "worldpkg-c")
    tree, tree_paths = tree_entry(world)
    # The world pins every package's backend; this one is written unpinned on purpose.
    native = write_package(
        tmp_path / "native", "native", noarch=False, run=("chain-a",), backend_version="*"
    )
    env = Env(
        conda=("python", "chain-a"),
        pypi=(wheel_a, sdist_b, local_c, tree),
        sources=(
            SourceEntry("shared", "src/shared", noarch=True),
            SourceEntry("native", "src/native", depends=("chain-a",)),
        ),
    )
    ws = workspace_factory(
        {"default": env},
        platforms=[Plat("linux-64"), Plat("lx", subdir="linux-64"), Plat("win-64")],
        local_paths={**local_paths, **tree_paths, "src/native": native},
    )
    doc = _inspect(capsys, [str(ws.root), "--all-platforms"])
    unpinned = (
        "the build backend pixi-build-rattler-build of native (src/native) is not pinned "
        f"(version '*') in {ws.root / 'src' / 'native' / 'pixi.toml'}, line 6"
    )
    assert doc["environment"] == "default"
    assert doc["lock"]["sha256"] == load_lock(ws.lock_path).sha256
    plans = {p["platform"]["name"]: p for p in doc["platforms"]}
    assert list(plans) == ["linux-64", "lx", "win-64"]
    assert plans["lx"]["platform"]["subdir"] == "linux-64"

    for name, plan in plans.items():
        conda = [i for i in plan["items"] if i["kind"] == "conda"]
        records = ws.lock.records[("default", name)]
        assert sorted(i["source"] for i in conda) == ws.lock.urls("default", name)
        by_url = {r.url: r for r in records}
        for item in conda:
            record = by_url[item["source"]]
            assert item["action"] == "download"
            assert record.sha256 is not None
            assert item["sha256"] == record.sha256.hex()
            assert item["size"] == record.size
            assert item["archive-path"] == f"channel/{record.subdir}/{record.file_name}"
        assert plan["totals"]["download-bytes"] == sum(r.size or 0 for r in records)
        pypi = {i["name"]: (i["action"], i["kind"]) for i in plan["items"] if "index" in i}
        assert pypi == {
            "worldpkg-a": ("download", "wheel"),
            "worldpkg-b": ("build-wheel", "sdist"),
            "worldpkg-c": ("copy", "local-wheel"),
            "worldpkg-local": ("build-wheel", "source-tree"),
        }
        wheel = next(i for i in plan["items"] if i["name"] == "worldpkg-a")
        assert wheel["sha256"] == wheel_a.sha256
        assert wheel["archive-path"] == f"pypi/{world.dist('worldpkg-a', 'wheel').file_name}"
        assert plan["problems"] == [unpinned]

    # One invocation per location and target: the noarch package once for all three platforms,
    # the native one once per subdir (linux-64 and lx share it).
    builds = {b["key"]: b for b in doc["builds"]}
    assert sorted(builds) == [
        "path:src/native|linux-64",
        "path:src/native|win-64",
        "path:src/shared|noarch",
    ]
    assert builds["path:src/shared|noarch"]["platforms"] == ["linux-64", "lx", "win-64"]
    shared = env.sources[0]
    assert builds["path:src/shared|noarch"]["lock-ids"] == [shared.lock_id(Plat("linux-64"))]
    assert builds["path:src/native|linux-64"]["platforms"] == ["linux-64", "lx"]
    backend = builds["path:src/native|win-64"]["backend"]
    assert backend["name"] == "pixi-build-rattler-build"
    assert backend["version"] == "*"
    assert backend["pinned"] is False
    assert backend["manifest"] == str(ws.root / "src" / "native" / "pixi.toml")
    assert builds["path:src/shared|noarch"]["backend"]["pinned"] is True
    assert doc["problems"] == [unpinned]  # a pack refuses it (without --allow-unpinned-backends)
    again = _inspect(capsys, [str(ws.root), "-p", "win-64", "--allow-unpinned-backends"])
    assert again["problems"] == []
    assert f"{unpinned}; the built package may differ from what was locked" in again["warnings"]
    assert "pip" not in ws.lock.names("default", "linux-64")
    assert (
        "PyPI packages are locked but pip is not: conda and micromamba cannot install the "
        "archive's environment.yml (pixi-unpack can); add pip to the environment"
    ) in doc["warnings"]


def test_inspect_world_local_conda_files(
    world: World, workspace_factory: WorkspaceFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = workspace_factory(
        {"default": ["chain-a"]}, conda_locations={"chain-b": "relative", "chain-c": "file"}
    )
    doc = _inspect(capsys, [str(ws.manifest), "-p", "linux-64"])
    (plan,) = doc["platforms"]
    items = {i["name"]: i for i in plan["items"]}
    chain_b, chain_c = world.package("chain-b"), world.package("chain-c", version="1.5.0")
    assert items["chain-a"]["action"] == "download"
    assert (items["chain-b"]["action"], items["chain-b"]["source"]) == (
        "copy",
        str(ws.root / "conda-pkgs" / chain_b.file_name),
    )
    assert (items["chain-c"]["action"], items["chain-c"]["source"]) == (
        "copy",
        str(world.archive_path(chain_c).resolve()),
    )
    assert items["chain-b"]["archive-path"] == f"channel/linux-64/{chain_b.file_name}"
    sizes = {r.name.normalized: r.size or 0 for r in ws.lock.records[("default", "linux-64")]}
    assert plan["totals"]["copy-bytes"] == sizes["chain-b"] + sizes["chain-c"]
    assert plan["totals"]["download-bytes"] == sizes["chain-a"]
