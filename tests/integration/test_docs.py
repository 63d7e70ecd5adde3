"""Every command in the README's shell blocks runs (against the offline world)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from testworld import pypi
from testworld.fixtures import WorkspaceFactory
from testworld.layout import World
from testworld.locks import Env
from testworld.server import WorldServer

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"


def readme_commands() -> list[str]:
    """The command lines of the README's ```bash blocks (comments stripped)."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.DOTALL)
    lines = [line.split("#", 1)[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line]


def test_setup_commands_are_the_two_scripts() -> None:
    commands = readme_commands()
    assert commands[:2] == ["./scripts/demo", "./scripts/test"]
    for script in ("demo", "test"):
        path = REPO / "scripts" / script
        assert os.access(path, os.X_OK)
    assert "exec ./scripts/test" in (REPO / ".ci" / "run").read_text()
    # ./scripts/test installs and runs this very suite (running it here would recurse);
    # ./scripts/demo installs, then execs the demo module, which runs here:
    assert "exec .venv/bin/python -m testworld.demo" in (REPO / "scripts" / "demo").read_text()


def test_demo_runs_to_the_end(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "testworld.demo", "--dir", str(tmp_path / "demo")],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    env = tmp_path / "demo" / "target" / "env"
    assert f"the environment is in {env}" in proc.stdout
    assert "hello from worldpkg-a 1.0.0" in proc.stdout


def test_every_other_readme_command_runs(
    workspace_factory: WorkspaceFactory,
    world: World,
    channel_server: WorldServer,
    tmp_path: Path,
) -> None:
    wheel = pypi.index_entry(world, "worldpkg-a", channel_server.url)
    ws = workspace_factory({"default": Env(conda=("python", "pip", "worldcli"), pypi=(wheel,))})
    opt = tmp_path / "opt"
    ran = []
    for line in readme_commands()[2:]:
        line = line.replace("/opt/", f"{opt}/")
        argv = shlex.split(line)
        if argv[0] == "pixi-pack-src":
            argv = [sys.executable, "-m", "pixi_pack_src", *argv[1:]]
        elif argv[0] == "source":
            argv = ["bash", "-c", f"{line} && echo $CONDA_PREFIX"]
        elif argv[0] != "bash":
            raise AssertionError(f"README command not covered by this test: {line}")
        proc = subprocess.run(argv, cwd=ws.root, capture_output=True, text=True)
        assert proc.returncode == 0, f"{line}\n{proc.stderr[-2000:]}"
        ran.append(line)
    assert len(ran) >= 6
    assert (opt / "myenv" / "env" / "bin" / "worldcli").exists()  # the tour
    assert (opt / "envs" / "env" / "bin" / "python").exists()  # the self-extracting script
