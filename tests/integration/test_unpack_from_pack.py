"""The real thing: ``pixi-pack-src pack -o - | pixi-pack-src unpack -`` on a world workspace."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from testworld import pypi
from testworld.fixtures import WorkspaceFactory
from testworld.install import run_in
from testworld.layout import World
from testworld.locks import Env
from testworld.server import WorldServer

pytestmark = pytest.mark.integration

SPECS = ("python", "relocme", "libgreet", "worldcli", "pyworld-plugins", "patchme", "sysdep")


def _cli() -> list[str]:
    exe = Path(sys.executable).with_name("pixi-pack-src")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "pixi_pack_src"]


def test_pack_to_stdout_then_unpack_from_stdin(
    workspace_factory: WorkspaceFactory, world: World, channel_server: WorldServer, tmp_path: Path
) -> None:
    wheels = tuple(
        pypi.index_entry(world, n, channel_server.url) for n in ("worldpkg-a", "worldpkg-b")
    )
    workspace = workspace_factory(
        {"default": Env(conda=SPECS, pypi=wheels)},
        patches={"patchme": ["libzed >=1.3,<2"]},
    )
    out = tmp_path / "out"
    cli = shlex.join(_cli())
    line = (
        f"set -o pipefail; {cli} -q pack {shlex.quote(str(workspace.root))} -p linux-64 -o - "
        f"| {cli} unpack - -o {shlex.quote(str(out))} --json"
    )
    proc = subprocess.run(["bash", "-c", line], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    env = out / "env"
    assert doc["environment"] == str(env)
    assert doc["wheels"] == 2
    assert doc["conda_packages"] == len(SPECS) + 2  # + pyworld and libzed
    assert doc["verified"] == doc["conda_packages"] + doc["wheels"]
    assert doc["verified_against"] == "pixi-pack-src.json"
    assert doc["warnings"] == []

    code = "import worldpkg_b, pyworld_plugins; print(worldpkg_b.hello())"
    assert run_in(env, [str(env / "bin" / "python"), "-c", code]).stdout == (
        "hello from worldpkg-b 2.0.1 with hello from worldpkg-a 1.0.0\n"
    )
    assert run_in(env, [str(env / "bin" / "relocme")]).stdout == f"{env}\n"
    assert run_in(env, [str(env / "bin" / "worldpkg-a")]).stdout == "hello from worldpkg-a 1.0.0\n"
    # The lock's repodata patch reaches the installed environment's metadata.
    (patchme,) = (env / "conda-meta").glob("patchme-1.0.0-*.json")
    assert json.loads(patchme.read_text())["depends"] == ["libzed >=1.3,<2"]
    assert len(list((env / "conda-meta").glob("*.json"))) == doc["conda_packages"]
    assert sorted(p.name for p in out.iterdir()) == ["activate.sh", "env"]
