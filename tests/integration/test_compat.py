"""Our archives install with Quantco's pixi-unpack, conda and micromamba (docs/archive-format.md, "Checking a pack").

These tools are not on the development machines: each test runs when its tool is on PATH and
is reported as skipped otherwise.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from testworld import pypi
from testworld.fixtures import WorkspaceFactory
from testworld.layout import World
from testworld.locks import Env
from testworld.server import WorldServer

from pixi_pack_src.cli import run

pytestmark = pytest.mark.integration

SPECS = ("python", "pip", "chain-a", "worldcli")


def _needs(name: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(shutil.which(name) is None, reason=f"{name} not on PATH")


@pytest.fixture
def extracted(
    workspace_factory: WorkspaceFactory,
    world: World,
    channel_server: WorldServer,
    tmp_path: Path,
) -> Path:
    wheel = pypi.index_entry(world, "worldpkg-a", channel_server.url)
    ws = workspace_factory({"default": Env(conda=SPECS, pypi=(wheel,))})
    archive = tmp_path / "environment.tar"
    assert run(["-q", "pack", str(ws.root), "-o", str(archive)]) == 0
    folder = tmp_path / "extracted"
    with tarfile.open(archive) as tf:
        tf.extractall(folder, filter="data")
    return folder


@pytest.mark.parametrize(
    "tool",
    [
        pytest.param("conda", marks=_needs("conda")),
        pytest.param("micromamba", marks=_needs("micromamba")),
    ],
)
def test_environment_yml_installs_with(tool: str, extracted: Path, tmp_path: Path) -> None:
    exe = shutil.which(tool) or tool
    prefix = tmp_path / f"{tool}-env"
    subprocess.run(
        [exe, "env", "create", "-y", "-p", str(prefix), "-f", "environment.yml"],
        cwd=extracted,
        check=True,
    )
    out = subprocess.run(
        [str(prefix / "bin" / "python"), "-c", "import worldpkg_a; print(worldpkg_a.hello())"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout == "hello from worldpkg-a 1.0.0\n"


@_needs("pixi-unpack")
def test_quantco_pixi_unpack_installs_our_archive(extracted: Path, tmp_path: Path) -> None:
    exe = shutil.which("pixi-unpack") or "pixi-unpack"
    archive = tmp_path / "environment.tar"
    subprocess.run([exe, str(archive), "-o", str(tmp_path / "pu")], check=True)
    assert (tmp_path / "pu" / "env" / "bin" / "worldcli").exists()
