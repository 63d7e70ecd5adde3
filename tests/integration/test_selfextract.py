"""``pack --create-executable``: a script that installs the environment offline by itself."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from testworld import pypi
from testworld.fixtures import WorkspaceFactory
from testworld.layout import World
from testworld.locks import Env
from testworld.server import WorldServer
from testworld.workspace import Workspace

from pixi_pack_src.cli import run
from pixi_pack_src.selfextract import header

pytestmark = pytest.mark.integration

SPECS = ("python", "pip", "chain-a", "worldcli", "relocme")


@pytest.fixture
def workspace(
    workspace_factory: WorkspaceFactory, world: World, channel_server: WorldServer
) -> Workspace:
    wheel = pypi.index_entry(world, "worldpkg-a", channel_server.url)
    return workspace_factory({"default": Env(conda=SPECS, pypi=(wheel,))})


def _pack_script(ws: Workspace, out: Path, *extra: str) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)  # -o never makes missing directories
    assert run(["-q", "pack", str(ws.root), "--create-executable", "-o", str(out), *extra]) == 0
    script = out.with_suffix(".sh")
    assert script.exists()
    return script


HOST_TOOLS = ("bash", "env", "tail", "head", "tar", "gzip", "mktemp", "uname", "rm", "mkdir", "cat")


def _clean_env(tmp: Path) -> dict[str, str]:
    """Only the host tools the script documents: no python, no pixi-pack-src on PATH."""
    bin_dir = tmp.parent / "host-bin"
    if not bin_dir.exists():
        bin_dir.mkdir()
        for tool in HOST_TOOLS:
            found = shutil.which(tool)
            assert found is not None, tool
            (bin_dir / tool).symlink_to(found)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["TMPDIR"] = str(tmp)
    env["PATH"] = str(bin_dir)
    return env


def test_script_installs_a_working_environment(workspace: Workspace, tmp_path: Path) -> None:
    script = _pack_script(workspace, tmp_path / "environment.tar")
    assert script.name == "environment.sh"
    assert script.stat().st_mode & 0o777 == 0o755
    assert script.read_bytes().startswith(b"#!/usr/bin/env bash\n")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    proc = subprocess.run(
        ["bash", str(script), "-o", str(fresh / "out"), "-e", "myenv", "-s", "bash"],
        cwd=fresh,
        env=_clean_env(scratch),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    env = fresh / "out" / "myenv"
    check = subprocess.run(
        [str(env / "bin" / "python"), "-c", "import worldpkg_a; print(worldpkg_a.hello())"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert check.stdout == "hello from worldpkg-a 1.0.0\n"
    assert (
        subprocess.run([str(env / "bin" / "relocme")], capture_output=True, text=True).stdout
        == f"{env}\n"
    )
    assert (fresh / "out" / "activate.sh").is_file()
    assert list(scratch.iterdir()) == []  # the temporary directory is gone
    # run directly too
    direct = subprocess.run(
        [str(script), "-o", str(fresh / "again")],
        cwd=fresh,
        env=_clean_env(scratch),
        capture_output=True,
        text=True,
    )
    assert direct.returncode == 0, direct.stderr
    assert (fresh / "again" / "env" / "bin" / "worldcli").exists()


def test_script_is_reproducible_and_help_is_exact(workspace: Workspace, tmp_path: Path) -> None:
    first = _pack_script(workspace, tmp_path / "a" / "env.sh")
    second = _pack_script(workspace, tmp_path / "b" / "env.sh")
    assert (
        hashlib.sha256(first.read_bytes()).hexdigest()
        == hashlib.sha256(second.read_bytes()).hexdigest()
    )
    proc = subprocess.run(["bash", str(first), "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert proc.stdout.startswith("Usage: bash env.sh [OPTIONS]\n")
    assert (
        "  -o, --output-directory DIR   where DIR/ENV_NAME and DIR/activate.<ext> go [default: .]\n"
        in proc.stdout
    )
    assert (
        "  -e, --env-name ENV_NAME      the environment's directory name [default: env]\n"
        in proc.stdout
    )


def test_truncated_script_fails_cleanly(workspace: Workspace, tmp_path: Path) -> None:
    script = _pack_script(workspace, tmp_path / "env.sh")
    broken = tmp_path / "broken.sh"
    broken.write_bytes(script.read_bytes()[: script.stat().st_size // 3])
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    proc = subprocess.run(
        ["bash", str(broken), "-o", str(tmp_path / "out")],
        env=_clean_env(scratch),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert "is damaged" in proc.stderr
    assert list(scratch.iterdir()) == []
    assert not (tmp_path / "out").exists()


def test_windows_target_gets_a_cmd_script_with_crlf_header(
    workspace_factory: WorkspaceFactory, tmp_path: Path
) -> None:
    ws = workspace_factory({"default": ["python", "chain-a"]}, platforms=("linux-64", "win-64"))
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    # a stand-in for py-rattler's win-64 wheel (the real one comes from PyPI)
    import zipfile

    from pixi_pack_src.selfextract.bundle import _rattler_version

    wheel = wheels / f"py_rattler-{_rattler_version()}-cp38-abi3-win_amd64.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("rattler/__init__.py", "WINDOWS = True\n")
        zf.writestr("rattler/rattler.pyd", b"MZ fake")
    code = run(
        [
            "-q",
            "pack",
            str(ws.root),
            "-p",
            "win-64",
            "--create-executable",
            "-o",
            str(tmp_path / "env.tar"),
            "--unpacker-wheels",
            str(wheels),
        ]
    )
    assert code == 0
    script = tmp_path / "env.cmd"
    data = script.read_bytes()
    head_len = len(
        header(
            subdir="win-64",
            name="env.cmd",
            python="python/python.exe",
            bundle_length=0,
            pack_length=0,
        )
    )
    head = data[:head_len]
    assert head.startswith(b"@echo off\r\n")
    assert b"\n" not in head.replace(b"\r\n", b"")
    text = head.decode()
    values = {
        k: int(text.split(f'set "{k}=')[1].split('"')[0])
        for k in ("BUNDLE_OFFSET", "BUNDLE_LENGTH", "PACK_OFFSET", "PACK_LENGTH")
    }
    assert values["BUNDLE_OFFSET"] == head_len
    assert values["PACK_OFFSET"] + values["PACK_LENGTH"] == len(data)
    pack = data[values["PACK_OFFSET"] :]
    assert pack[257:262] == b"ustar"  # a tar
    bundle = tmp_path / "bundle.tgz"
    bundle.write_bytes(data[values["BUNDLE_OFFSET"] : values["PACK_OFFSET"]])
    listing = subprocess.run(
        ["tar", "-tzf", str(bundle)], capture_output=True, text=True, check=True
    )
    names = listing.stdout.splitlines()
    assert "site/rattler/rattler.pyd" in names
    assert "python/python.exe" in names or any(n.startswith("python/") for n in names)
    assert "run.py" in names


def test_options_that_exclude_each_other(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["pack", str(workspace.root), "--create-executable", "--directory-only"]) == 2
    assert run(["pack", str(workspace.root), "--create-executable", "-o", "-"]) == 2
    err = capsys.readouterr().err
    assert "--create-executable and --directory-only exclude each other" in err
    assert "--create-executable cannot write to stdout" in err


def test_no_tools_message(workspace: Workspace, tmp_path: Path) -> None:
    script = _pack_script(workspace, tmp_path / "env.sh")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("tail", "head", "tar", "mktemp", "uname"):  # no gzip
        found = shutil.which(tool)
        assert found is not None
        (bin_dir / tool).symlink_to(found)
    proc = subprocess.run(
        [shutil.which("bash") or "bash", str(script)],
        env={"PATH": str(bin_dir)},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: this script needs 'gzip', which is not on PATH\n")


@pytest.mark.slow
def test_large_payload_streams_in_bounded_memory(workspace: Workspace, tmp_path: Path) -> None:
    """A >= 500 MB payload: every process of the script stays under 100 MB of resident memory."""
    from testworld.bulk import MIB, bulk_world

    big_world = bulk_world(1, 520 * MIB, min_size=520 * MIB, max_size=520 * MIB, seed=7)
    (big,) = [p for p in big_world.packages if p.name.startswith("bulk-0")]
    big_file = big_world.archive_path(big)
    script = _pack_script(workspace, tmp_path / "env.sh", "-i", str(big_file))
    assert script.stat().st_size > 500 * MIB
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    time_bin = shutil.which("time") or "/usr/bin/time"
    proc = subprocess.run(
        [time_bin, "-v", "bash", str(script), "-o", str(tmp_path / "out")],
        env=_clean_env(scratch),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    peak_kib = int(proc.stderr.split("Maximum resident set size (kbytes): ")[1].split()[0])
    print(f"peak RSS of the script and its children: {peak_kib / 1024:.1f} MiB")
    assert peak_kib < 100 * 1024
    payload = tmp_path / "out" / "env" / "share" / big.name / "payload.bin"
    assert payload.stat().st_size == 520 * MIB
    assert list(scratch.iterdir()) == []
