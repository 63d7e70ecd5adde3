"""examples/ci: the matrix workflow is valid (actionlint) and covers the four platforms."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

WORKFLOW = Path(__file__).resolve().parents[2] / "examples" / "ci" / "github-actions.yml"


def _actionlint() -> str | None:
    local = Path(sys.executable).parent / "actionlint"
    return str(local) if local.exists() else shutil.which("actionlint")


@pytest.mark.skipif(
    _actionlint() is None,
    reason="actionlint is installed with the test extra on linux x86_64 only",
)
def test_actionlint_accepts_the_workflow() -> None:
    exe = _actionlint()
    assert exe is not None
    proc = subprocess.run(
        [exe, "-no-color", str(WORKFLOW)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_matrix_packs_and_tests_every_platform_on_its_own_runner() -> None:
    doc = yaml.safe_load(WORKFLOW.read_text())
    for job in ("pack", "test"):
        include = doc["jobs"][job]["strategy"]["matrix"]["include"]
        assert {(i["platform"], i["runner"]) for i in include} == {
            ("linux-64", "ubuntu-latest"),
            ("linux-aarch64", "ubuntu-24.04-arm"),
            ("osx-arm64", "macos-14"),
            ("win-64", "windows-latest"),
        }
    pack_steps = " ".join(str(s.get("run", "")) for s in doc["jobs"]["pack"]["steps"])
    assert "pixi-pack-src pack" in pack_steps
    assert "--report" in pack_steps
    test_steps = " ".join(str(s.get("run", "")) for s in doc["jobs"]["test"]["steps"])
    assert "pixi-pack-src unpack" in test_steps
    assert doc["jobs"]["test"]["needs"] == "pack"
