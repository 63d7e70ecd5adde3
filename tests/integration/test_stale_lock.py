"""A manifest edited without re-locking: caught before anything is fetched; --frozen packs the
lock as it is."""

from __future__ import annotations

from pathlib import Path

import pytest
from testworld.fixtures import WorkspaceFactory
from testworld.server import WorldServer

from pixi_pack_src.cli import run

pytestmark = pytest.mark.integration

HINT = "help: run `pixi lock` to update it, or pass --frozen to pack the lock as it is"


def test_stale_lock_is_refused_before_any_request(
    workspace_factory: WorkspaceFactory,
    channel_server: WorldServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ws = workspace_factory({"default": ["chain-a"], "tools": ["libzed"]})
    manifest = ws.root / "pixi.toml"
    manifest.write_text(
        manifest.read_text() + '\n[feature.tools.target.linux-64.dependencies]\nnumpy = "*"\n'
    )
    channel_server.reset_log()
    out = tmp_path / "env.tar"
    # the default environment does not use the feature: it is still current
    assert run(["pack", str(ws.root), "-o", str(out)]) == 0
    capsys.readouterr()
    channel_server.reset_log()
    code = run(["pack", str(ws.root), "-e", "tools", "-o", str(tmp_path / "tools.tar")])
    err = capsys.readouterr().err
    assert code == 1
    assert (
        "error: pixi.lock is out of date: pixi.toml asks for what environment 'tools' on "
        "linux-64 does not lock: numpy ([feature.tools.target.linux-64.dependencies]: not locked)"
    ) in err
    assert HINT in err
    assert channel_server.requests == []
    assert not (tmp_path / "tools.tar").exists()
    # inspect refuses the same way
    assert run(["inspect", str(ws.root), "-e", "tools"]) == 1
    assert "pixi.lock is out of date" in capsys.readouterr().err
    # --frozen packs the lock as it is
    code = run(["pack", str(ws.root), "-e", "tools", "--frozen", "-o", str(tmp_path / "t.tar")])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "t.tar").is_file()
