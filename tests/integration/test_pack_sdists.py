"""``pack`` with PyPI sdists, a local source tree, a git source and build overrides."""

from __future__ import annotations

import hashlib
import json
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
from testworld import pypi
from testworld.cli import inspect_json, run_json
from testworld.fixtures import WorkspaceFactory
from testworld.layout import World
from testworld.locks import Env
from testworld.scenarios import SDIST_GREETINGS, SDIST_MODULES, sdist_workspace
from testworld.server import WorldServer

from pixi_pack_src.cli import run

pytestmark = pytest.mark.integration

WHEELS = [
    "pypi/worldpkg_a-1.0.0-py3-none-any.whl",
    "pypi/worldpkg_c-0.5.0-py3-none-any.whl",
    "pypi/worldpkg_flavor-1.0.0-py3-none-any.whl",
    "pypi/worldpkg_local-0.9.0-py3-none-any.whl",
]


def pack(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any], str]:
    return run_json(capsys, "pack", *argv)


def inspect_wheels(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    """``inspect --json``: the ``wheel-build`` of every PyPI package a pack would build."""
    (plan,) = inspect_json(capsys, *argv)["platforms"]
    return {i["name"]: i["wheel-build"] for i in plan["items"] if i["action"] == "build-wheel"}


def provenance(tar: Path) -> dict[str, Any]:
    with tarfile.open(tar) as tf:
        fh = tf.extractfile("pixi-pack-src.json")
        assert fh is not None
        doc: dict[str, Any] = json.load(fh)
    return doc


def test_sdists_trees_and_git_become_wheels_and_are_cached(
    world: World,
    channel_server: WorldServer,
    workspace_factory: WorkspaceFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ws = sdist_workspace(world, workspace_factory, channel_server.url, tmp_path)
    cache, out = tmp_path / "cache", tmp_path / "env.tar"
    before = inspect_wheels(capsys, str(ws.root), "--use-cache", str(cache))
    assert {n: (w["build"], w["cached"]) for n, w in before.items()} == {
        "worldpkg-a": ("sdist -> wheel", False),
        "worldpkg-c": ("git -> wheel", False),
        "worldpkg-flavor": ("sdist -> wheel", False),
        "worldpkg-local": ("source-tree -> wheel", False),
    }
    assert before["worldpkg-flavor"]["overrides"] == {
        "env": ["WORLDPKG_FLAVOR"],
        "patches": ["patches/worldpkg-flavor-fix-package-name.patch"],
        "config-settings": [],
    }
    assert "overrides" not in before["worldpkg-a"]
    code, doc, err = pack(capsys, str(ws.root), "-o", str(out), "--use-cache", str(cache))
    assert code == 0, err
    assert doc["stats"]["built"] == 4
    after = inspect_wheels(capsys, str(ws.root), "--use-cache", str(cache))
    assert {n: w["cached"] for n, w in after.items()} == dict.fromkeys(before, True)
    wheels = sorted(a["path"] for a in doc["platforms"][0]["artifacts"] if a["kind"] == "wheel")
    assert wheels == WHEELS
    prov = {a["name"]: a for a in provenance(out)["artifacts"] if a["kind"] == "wheel"}
    sdist = world.dist("worldpkg-a", "sdist")
    assert prov["worldpkg-a"]["origin"] == {
        "sha256": sdist.sha256,
        "type": "sdist",
        "url": f"{channel_server.url}/{sdist.rel_path}",
    }
    assert prov["worldpkg-c"]["origin"]["type"] == "pypi-git"
    assert len(prov["worldpkg-c"]["origin"]["rev"]) == 40
    assert prov["worldpkg-local"]["origin"]["type"] == "pypi-source-tree"
    assert len(prov["worldpkg-local"]["origin"]["source-tree-sha256"]) == 64
    flavor = prov["worldpkg-flavor"]["builder"]
    assert flavor["overrides"]["env"] == {"WORLDPKG_FLAVOR": "vanilla"}
    assert [p["name"] for p in flavor["overrides"]["patches"]] == [
        "patches/worldpkg-flavor-fix-package-name.patch"
    ]
    assert flavor["python"] == "3.11.7"
    assert flavor["isolated"] is True
    # unpack installs them all as wheels; python imports them and sees the override
    target = tmp_path / "target"
    assert run(["-q", "unpack", str(out), "-o", str(target)]) == 0
    python = target / "env" / "bin" / "python"
    shown = subprocess.run(
        [
            str(python),
            "-c",
            f"import {', '.join(SDIST_MODULES)}; "
            + "; ".join(f"print({m}.hello())" for m in SDIST_MODULES),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert shown[:3] == list(SDIST_GREETINGS)
    assert shown[3] == "hello from worldpkg-local 0.9.0"
    # a second pack builds nothing and writes the same bytes
    first = hashlib.sha256(out.read_bytes()).hexdigest()
    code, doc, err = pack(capsys, str(ws.root), "-o", str(out), "--use-cache", str(cache))
    assert code == 0, err
    assert doc["stats"]["built"] == 0
    assert doc["stats"]["builds_from_cache"] == 4
    assert hashlib.sha256(out.read_bytes()).hexdigest() == first


def test_missing_override_fails_the_build_with_its_log(
    world: World,
    channel_server: WorldServer,
    workspace_factory: WorkspaceFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ws = sdist_workspace(world, workspace_factory, channel_server.url, tmp_path, overrides=False)
    out = tmp_path / "env.tar"
    code, _, err = pack(capsys, str(ws.root), "-o", str(out))
    assert code == 4
    assert "worldpkg-flavor" in err
    assert "package directory 'worldpkg_flavour' not found" in err  # the unpatched bug
    log_file = Path(err.split("  log: ", 1)[1].splitlines()[0])
    assert "RuntimeError: worldpkg-flavor" in log_file.read_text()
    assert not out.exists()


def test_cross_platform_pure_sdist(
    world: World,
    channel_server: WorldServer,
    workspace_factory: WorkspaceFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sdist = pypi.index_entry(world, "worldpkg-b", channel_server.url, kind="sdist")
    ws = workspace_factory(
        {"default": Env(conda=("python", "pip"), pypi=(sdist,))},
        platforms=("linux-64", "osx-arm64"),
    )
    out = tmp_path / "env-{platform}.tar"
    code, doc, err = pack(capsys, str(ws.root), "-p", "osx-arm64", "-o", str(out))
    assert code == 0, err
    (artifact,) = [a for a in doc["platforms"][0]["artifacts"] if a["kind"] == "wheel"]
    assert artifact["path"] == "pypi/worldpkg_b-2.0.1-py3-none-any.whl"
    assert artifact["origin"] == "built"
