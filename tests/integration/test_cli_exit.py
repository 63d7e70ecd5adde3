"""The CLI as a subprocess never dies from a signal at exit (py-rattler's exit-time crash)."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from testworld.fixtures import WorkspaceFactory

pytestmark = pytest.mark.integration


def _cli(*argv: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "pixi_pack_src", *argv], capture_output=True, check=False
    )


def test_fifty_runs_in_a_row_exit_cleanly(
    workspace_factory: WorkspaceFactory, tmp_path: Path
) -> None:
    ws = workspace_factory({"default": ["python", "chain-a", "worldcli"]})
    runs: list[tuple[str, ...]] = [("inspect", str(ws.root), "--json")] * 40
    runs += [("-q", "pack", str(ws.root), "-o", str(tmp_path / f"env-{i}.tar")) for i in range(8)]
    runs += [("inspect", str(ws.root), "-e", "missing"), ("unpack", str(tmp_path / "nope.tar"))]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda argv: _cli(*argv), runs))
    codes = [r.returncode for r in results]
    assert len(codes) == 50
    assert all(code >= 0 for code in codes), codes  # negative = killed by a signal
    assert codes[:48] == [0] * 48, [r.stderr.decode()[-500:] for r in results if r.returncode]
    assert codes[48] == 2  # unknown environment: a usage error
    assert codes[49] == 2  # missing archive: a usage error
    assert not any(b"Traceback" in r.stderr for r in results)
