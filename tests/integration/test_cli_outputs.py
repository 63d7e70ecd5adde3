"""Issue 14, the exact commands: where `pack -o` writes, what goes to stdout and stderr."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from testworld.fixtures import WorkspaceFactory
from testworld.server import WorldServer

from pixi_pack_src.cli import run

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def test_pack_into_an_existing_directory(
    workspace_factory: WorkspaceFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`mkdir out; pixi-pack-src pack . -o out`: out/environment.tar, out stays a directory."""
    ws = workspace_factory({"default": ["python", "chain-a"]})
    out = tmp_path / "out"
    out.mkdir()
    assert run(["pack", str(ws.root), "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert out.is_dir()
    assert [p.name for p in out.iterdir()] == ["environment.tar"]
    with tarfile.open(out / "environment.tar") as tf:
        assert "pixi-pack.json" in tf.getnames()
    assert f"✅ packed default for linux-64 into {out / 'environment.tar'}\n" in captured.out
    assert "packed" not in captured.err


def test_pack_several_platforms_into_a_directory(
    workspace_factory: WorkspaceFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`pixi-pack-src pack . --all-platforms -o out`: one environment-{platform}.tar each."""
    ws = workspace_factory({"default": ["python"]}, platforms=("linux-64", "win-64"))
    out = tmp_path / "out"
    out.mkdir()
    assert run(["pack", str(ws.root), "--all-platforms", "-o", str(out)]) == 0, (
        capsys.readouterr().err
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "environment-linux-64.tar",
        "environment-win-64.tar",
    ]


def test_missing_output_directory_is_a_usage_error(
    workspace_factory: WorkspaceFactory,
    channel_server: WorldServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`pixi-pack-src pack . -o /missing/dir/e.tar`: exit 2 naming the directory, nothing
    created, nothing downloaded."""
    ws = workspace_factory({"default": ["python", "chain-a"]})
    channel_server.reset_log()
    target = tmp_path / "missing" / "dir" / "e.tar"
    assert run(["pack", str(ws.root), "-o", str(target)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert f"error: cannot write {target}: the directory {target.parent} does not exist\n" in err
    assert f"help: create it first (mkdir -p {target.parent})" in err
    assert not (tmp_path / "missing").exists()
    assert channel_server.hits() == 0


def test_missing_manifest_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`pixi-pack-src pack /no/such/workspace` and `inspect`: exit 2 as the README says."""
    missing = tmp_path / "no" / "such" / "workspace"
    for command in ("pack", "inspect"):
        assert run([command, str(missing)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {missing} does not exist\nhelp: ")


def test_quiet_pack_prints_nothing(
    workspace_factory: WorkspaceFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`pixi-pack-src pack . -q -o e.tar`."""
    ws = workspace_factory({"default": ["python"]})
    assert run(["pack", str(ws.root), "-q", "-o", str(tmp_path / "e.tar")]) == 0
    assert capsys.readouterr() == ("", "")


def test_archive_on_stdout_keeps_the_summary_on_stderr(
    workspace_factory: WorkspaceFactory, tmp_path: Path
) -> None:
    """`pixi-pack-src pack . -o - > e.tar`: stdout is the archive alone."""
    ws = workspace_factory({"default": ["python"]})
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    with (tmp_path / "e.tar").open("wb") as fh:
        proc = subprocess.run(
            [sys.executable, "-m", "pixi_pack_src", "pack", str(ws.root), "-o", "-"],
            stdout=fh,
            stderr=subprocess.PIPE,
            text=False,
            env=env,
            timeout=300,
            check=False,
        )
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    with tarfile.open(tmp_path / "e.tar") as tf:
        assert "pixi-pack.json" in tf.getnames()
    assert "✅ packed default for linux-64 into stdout" in err


def test_report_into_a_missing_directory_fails_before_the_work(
    workspace_factory: WorkspaceFactory,
    channel_server: WorldServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`pixi-pack-src pack . --report /missing/r.json`: exit 2, nothing downloaded."""
    ws = workspace_factory({"default": ["python"]})
    channel_server.reset_log()
    report = tmp_path / "missing" / "r.json"
    code = run(["pack", str(ws.root), "-o", str(tmp_path / "e.tar"), "--report", str(report)])
    assert code == 2
    assert f"the directory {report.parent} does not exist" in capsys.readouterr().err
    assert channel_server.hits() == 0
    assert not (tmp_path / "e.tar").exists()
