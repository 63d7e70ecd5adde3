"""The hostile-input suite (issue 18): crafted locks, packages, caches and servers.

Each test is one reproduction from the issue, crafted here or by the test world and served
on 127.0.0.1. Each ends in a refusal: a one-line ``error:`` with exit code 1 (never
"internal error"), nothing written outside the places the command owns, nothing executed,
nothing sent. ``docs/security.md`` describes the threat model these tests stand for.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from testworld import hostile
from testworld.chaos import (
    RedirectServer,
    _wait_for,
    add_package_to_pack,
    file_appears,
    hardlink_entry,
    hostile_conda_package,
    listing,
    litter,
    run_cli,
    start_cli,
)
from testworld.layout import World
from testworld.locks import Env, PypiEntry
from testworld.pypi import index_entry
from testworld.server import WorldServer
from testworld.workspace import write_workspace

from pixi_pack_src import unpack as unpack_module
from pixi_pack_src.cli import run as cli_run
from pixi_pack_src.install.conda import extract_and_check
from pixi_pack_src.reporter import NullReporter
from pixi_pack_src.unpack import steps as unpack_steps

pytestmark = pytest.mark.integration


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _refused(stderr: str) -> list[str]:
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, stderr[-3000:]
    assert "internal error" not in stderr, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    return lines


@pytest.mark.parametrize("suffix", [".whl", ".tar.gz", ".zip", ".tar.bz2"])
def test_1_a_percent_encoded_file_name_cannot_leave_the_work_directory(
    world: World, channel_server: WorldServer, tmp_path: Path, suffix: str
) -> None:
    """``..%2F`` in a PyPI URL decodes to ``../``: refused when the lock is read, before any
    request, directory or file; ``inspect`` refuses it the same way."""
    name = "..%2F" * 8 + "escaped%2Fpwned-1.0" + ("-py3-none-any" if suffix == ".whl" else "")
    entry = PypiEntry(
        name="pwned",
        location=f"{channel_server.url}/p/{name}{suffix}",
        version="1.0",
        sha256="0" * 64,
    )
    ws = write_workspace(
        tmp_path / "ws",
        world,
        {"default": Env(conda=("python",), pypi=(entry,))},
        channel_url=channel_server.url + "/channel",
    )
    before = _files(tmp_path)
    cache = tmp_path / "cache"
    for argv in (
        ["pack", str(ws.root), "-o", str(tmp_path / "out.tar")],
        ["pack", str(ws.root), "-o", str(tmp_path / "out.tar"), "--use-cache", str(cache)],
        ["inspect", str(ws.root)],
    ):
        done = run_cli(argv, logs=tmp_path.parent / f"{tmp_path.name}-logs", tmpdir=tmp_path / "t")
        assert done.code == 1, done.stderr[-3000:]
        (line,) = _refused(done.stderr)
        assert "is not a plain file name" in line
        assert "pixi.lock" in line
    assert not any(r.path.startswith("/p/") for r in channel_server.requests)
    after = _files(tmp_path) - {"t"}
    assert after == before
    assert not (tmp_path / "escaped").exists()


def test_9_signed_url_secrets_stay_out_of_the_archive_and_json(
    world: World, channel_server: WorldServer, tmp_path: Path
) -> None:
    """Lock URLs signed like an Azure SAS (``sig``) with an ``auth`` parameter: the pack
    downloads them, and neither secret is in the archive, ``--json`` or stderr."""
    ws = write_workspace(
        tmp_path / "ws",
        world,
        {"default": Env(conda=("python",))},
        channel_url=channel_server.url + "/channel",
    )
    text = ws.lock_path.read_text()
    signed = "?sv=2022-11-02&se=2030-01-01&sp=r&sig=SECRET1x&auth=SECRET2x"
    text = re.sub(r"(conda: http://\S+?\.(?:conda|tar\.bz2))$", rf"\1{signed}", text, flags=re.M)
    assert text.count("SECRET1x") >= 2
    ws.lock_path.write_text(text)
    out = tmp_path / "out.tar"
    done = run_cli(
        ["-vv", "pack", str(ws.root), "-o", str(out), "--json"],
        logs=tmp_path / "logs",
        tmpdir=tmp_path / "t",
    )
    assert done.code == 0, done.stderr[-3000:]
    assert any(r.path.endswith(".conda") for r in channel_server.requests)
    for blob in (out.read_bytes(), done.stdout, done.stderr.encode()):
        assert b"SECRET1x" not in blob
        assert b"SECRET2x" not in blob
    assert b"sig=********" in out.read_bytes()


def _python_ws(world: World, server: WorldServer, root: Path, channel: str | None = None) -> Path:
    ws = write_workspace(
        root,
        world,
        {"default": Env(conda=("python",))},
        channel_url=channel or server.url + "/channel",
    )
    return ws.root


def test_7_credentials_do_not_follow_a_redirect_to_another_port(
    world: World, channel_server: WorldServer, tmp_path: Path
) -> None:
    """An entry for host ``127.0.0.1`` (every port, as pixi's store matches): the lock's
    server at port R gets the token; its redirect to port W of the same host does not."""
    with RedirectServer(channel_server.url) as redirect:
        root = _python_ws(
            world, channel_server, tmp_path / "ws", f"http://127.0.0.1:{redirect.port}/channel"
        )
        auth = tmp_path / "auth.json"
        auth.write_text(json.dumps({"127.0.0.1": {"BearerToken": "tk-SECRET"}}))
        done = run_cli(
            ["pack", str(root), "--auth-file", str(auth), "-o", str(tmp_path / "o.tar")],
            logs=tmp_path / "logs",
            tmpdir=tmp_path / "t",
        )
        seen = redirect.seen
    assert done.code == 0, done.stderr[-3000:]
    assert seen
    assert {r.headers.get("authorization") for r in seen} == {"Bearer tk-SECRET"}
    served = [r for r in channel_server.requests if r.path.startswith("/channel/")]
    assert served
    assert {r.headers.get("authorization") for r in served} == {None}


def _one_conda(channel_server: WorldServer, root: Path) -> tuple[str, int]:
    """The URL path and locked size of the biggest conda file of the lock at ``root``."""
    lock = yaml.safe_load((root / "pixi.lock").read_text())
    entries = [p for p in lock["packages"] if "conda" in p and "size" in p]
    biggest = max(entries, key=lambda p: int(p["size"]))
    return urlsplit(biggest["conda"]).path, int(biggest["size"])


def test_8_an_endless_body_stops_at_the_locked_size(
    world: World, channel_server: WorldServer, tmp_path: Path
) -> None:
    root = _python_ws(world, channel_server, tmp_path / "ws")
    path, size = _one_conda(channel_server, root)
    channel_server.add_fault(path, "endless", times=None)
    done = run_cli(
        ["pack", str(root), "-o", str(tmp_path / "o.tar"), "--retries", "0"],
        logs=tmp_path / "logs",
        tmpdir=tmp_path / "t",
        timeout=60,
    )
    assert done.code == 3, done.stderr[-3000:]
    (line,) = _refused(done.stderr)
    assert f"larger than the {size} bytes the lock records" in line
    assert litter(tmp_path) == []
    assert not (tmp_path / "o.tar").exists()


def test_8_a_dripping_body_meets_the_total_deadline(
    world: World, channel_server: WorldServer, tmp_path: Path
) -> None:
    root = _python_ws(world, channel_server, tmp_path / "ws")
    path, _size = _one_conda(channel_server, root)
    channel_server.add_fault(path, "drip", times=None, delay=0.3)
    started = time.monotonic()
    done = run_cli(
        ["pack", str(root), "-o", str(tmp_path / "o.tar"), "--timeout", "5"],
        logs=tmp_path / "logs",
        tmpdir=tmp_path / "t",
        env={"PIXI_PACK_SRC_DOWNLOAD_DEADLINE": "2"},
        timeout=60,
    )
    assert done.code == 3, done.stderr[-3000:]
    (line,) = _refused(done.stderr)
    assert "took longer than 2 s in all" in line
    assert time.monotonic() - started < 30
    assert litter(tmp_path) == []


def test_8_sigterm_mid_download_leaves_no_partial_file(
    world: World, channel_server: WorldServer, tmp_path: Path
) -> None:
    root = _python_ws(world, channel_server, tmp_path / "ws")
    path, _size = _one_conda(channel_server, root)
    channel_server.add_fault(path, "drip", times=None, delay=0.05)
    cache, tmp = tmp_path / "cache", tmp_path / "t"
    run = start_cli(
        ["pack", str(root), "-o", str(tmp_path / "o.tar"), "--use-cache", str(cache)],
        logs=tmp_path / "logs",
        tmpdir=tmp,
    )
    assert _wait_for(run, file_appears(cache / "tmp", "*.part"), timeout=60, poll=0.01)
    os.kill(run.pid, signal.SIGTERM)
    result = run.wait(60)
    assert result.code == 130, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert litter(tmp_path) == []
    assert listing(cache / "tmp") == []
    assert not (tmp_path / "o.tar").exists()


# -- hostile packages in a pack (hashes consistent: the attacker controls the pack) --------------


@pytest.fixture(scope="module")
def pack_tree(
    world: World, world_server: WorldServer, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A real pack directory: python, a dependency chain, a noarch python package, a wheel."""
    root = tmp_path_factory.mktemp("hostile-pack")
    ws = write_workspace(
        root / "ws",
        world,
        {
            "default": Env(
                conda=("python", "chain-a", "worldcli"),
                pypi=(index_entry(world, "worldpkg-a", world_server.url),),
            )
        },
        channel_url=world_server.url + "/channel",
    )
    out = root / "pack"
    assert cli_run(["-q", "pack", str(ws.root), "--directory-only", "-o", str(out)]) == 0
    return out


def _pack_with(pack_tree: Path, work: Path, packages: list[Path]) -> Path:
    tree = work / "tree"
    shutil.copytree(pack_tree, tree)
    for package in packages:
        add_package_to_pack(tree, package)
    tar = hostile.repack(tree, work / "evil.tar")
    shutil.rmtree(tree)
    return tar


def _env_vars_package(build: Path, name: str, variables: dict[str, str]) -> Path:
    data = json.dumps(variables).encode()
    member = f"etc/conda/env_vars.d/{name}.json"
    return hostile_conda_package(
        build, name=name, paths=[hardlink_entry(member, data)], members={member: data}
    )


SHELL_RUNS = {
    "bash": ("activate.sh", ["bash", "-c", 'source "$1" && printf %s "$FOO"', "x"]),
    "zsh": ("activate.sh", ["zsh", "-c", 'source "$1" && printf %s "$FOO"', "x"]),
    "fish": ("activate.fish", ["fish", "-c", 'source $argv[1]; and printf %s "$FOO"']),
}


@pytest.mark.parametrize("shell", sorted(SHELL_RUNS))
def test_4_env_vars_values_stay_data_in_activation_scripts(
    shell: str, pack_tree: Path, tmp_path: Path
) -> None:
    script_name, argv = SHELL_RUNS[shell]
    if shutil.which(argv[0]) is None:
        pytest.skip(f"{argv[0]} is not installed (scripts/test installs it)")
    marker = tmp_path / "p1"
    build = tmp_path / "build"
    build.mkdir()
    value = f"$(touch {marker})`touch {marker}`; touch {marker} 'q' \"d\" \\ %PATH% $HOME"
    tar = _pack_with(pack_tree, tmp_path, [_env_vars_package(build, "envpkg", {"FOO": value})])
    out = tmp_path / "out"
    done = run_cli(
        ["unpack", str(tar), "-o", str(out), "-s", shell], logs=tmp_path / "logs", timeout=300
    )
    assert done.code == 0, done.stderr[-3000:]
    script = out / script_name
    proc = subprocess.run(
        [*argv, str(script)], capture_output=True, text=True, check=False, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == value
    assert not marker.exists()


def test_4_an_env_var_name_that_is_not_an_identifier_is_refused(
    pack_tree: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "p2"
    build = tmp_path / "build"
    build.mkdir()
    pkg = _env_vars_package(build, "envpkg", {f"BAR;touch {marker};X": "y"})
    tar = _pack_with(pack_tree, tmp_path, [pkg])
    out = tmp_path / "out"
    out.mkdir()
    done = run_cli(["unpack", str(tar), "-o", str(out)], logs=tmp_path / "logs", timeout=300)
    assert done.code == 1, done.stderr[-3000:]
    (line,) = _refused(done.stderr)
    assert "is not a valid identifier" in line
    assert listing(out) == []
    assert not marker.exists()


def _edit_python_record(tree: Path, **changes: object) -> None:
    """Change the python record in the pack's repodata; provenance made consistent."""
    repodata_path = tree / "channel" / "linux-64" / "repodata.json"
    repodata = json.loads(repodata_path.read_bytes())
    found = ""
    for table in ("packages", "packages.conda"):
        for file_name, record in repodata.get(table, {}).items():
            if record["name"] == "python":
                record.update(changes)
                found = file_name
    assert found
    data = (json.dumps(repodata, indent=2, sort_keys=True) + "\n").encode()
    repodata_path.write_bytes(data)
    prov_path = tree / "pixi-pack-src.json"
    prov = json.loads(prov_path.read_bytes())
    for entry in prov["generated"]:
        if entry["path"] == "channel/linux-64/repodata.json":
            entry.update(sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    prov_path.write_text(json.dumps(prov, indent=2, sort_keys=True) + "\n")


def test_2_python_site_packages_path_cannot_leave_the_prefix(
    pack_tree: Path, tmp_path: Path
) -> None:
    """The python record's ``python_site_packages_path`` (where noarch python files and
    wheels go) pointing out of the prefix: refused before anything is installed."""
    escape = tmp_path / "sp_escape"
    tree = tmp_path / "tree"
    shutil.copytree(pack_tree, tree)
    depth = "../" * 12
    _edit_python_record(tree, python_site_packages_path=f"{depth}{str(escape).lstrip('/')}")
    tar = hostile.repack(tree, tmp_path / "evil.tar")
    out = tmp_path / "out"
    out.mkdir()
    done = run_cli(["unpack", str(tar), "-o", str(out)], logs=tmp_path / "logs", timeout=300)
    assert done.code == 1, done.stderr[-3000:]
    (line,) = _refused(done.stderr)
    assert "python_site_packages_path" in line
    assert "'..' component" in line
    assert listing(out) == []
    assert not escape.exists()


def test_2_unpack_runs_no_code_of_the_pack(
    pack_tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The environment's python is never run to place wheels (the README: unpack runs no
    package code). Its binary is swapped, right after the checked extraction, for a script
    that leaves a mark when run: the unpack succeeds, wheels included, and leaves none."""
    marker = tmp_path / "python-ran"
    original = extract_and_check

    def extract_then_swap(packages: Any, *, cache_dir: Path, **kwargs: Any) -> None:
        original(packages, cache_dir=cache_dir, **kwargs)
        for python in cache_dir.glob("python-3*/bin/python3*"):
            if not python.is_symlink():
                python.unlink()
                python.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
                python.chmod(0o755)

    monkeypatch.setattr(unpack_steps, "extract_and_check", extract_then_swap)
    result = unpack_module.unpack(
        unpack_module.UnpackOptions(pack=pack_tree, output_dir=tmp_path / "out"),
        reporter=NullReporter(),
    )
    assert result.wheels == 1
    env = result.environment
    assert list(env.glob("lib/python3.11/site-packages/worldpkg_a*"))
    assert (env / "bin" / "python3.11").read_text().startswith("#!/bin/sh")  # the swapped one
    assert not marker.exists()


DROPPED = b"#!/bin/sh\necho dropped\n"


@pytest.mark.parametrize("kind", ["tar.bz2", "conda"])
def test_5_the_file_list_checked_is_the_one_installed(
    kind: str, pack_tree: Path, tmp_path: Path
) -> None:
    """A package with two ``info/paths.json``: the first is harmless, the one an extractor
    keeps names ``../../pack/dropped.sh``. Refused; nothing is written next to the prefix."""
    build = tmp_path / "build"
    build.mkdir()
    members = {"payload.sh": DROPPED}
    first = [hardlink_entry("share/payload.sh", DROPPED)]
    second = [hardlink_entry("../../pack/dropped.sh", DROPPED)]
    maker = (
        hostile.duplicate_metadata_tar_bz2
        if kind == "tar.bz2"
        else hostile.conda_with_metadata_in_its_data
    )
    pkg = maker(build, name="twofaced", first=first, second=second, members=members)
    tar = _pack_with(pack_tree, tmp_path, [pkg])
    out = tmp_path / "out"
    out.mkdir()
    done = run_cli(["unpack", str(tar), "-o", str(out)], logs=tmp_path / "logs", timeout=300)
    assert done.code == 1, done.stderr[-3000:]
    (line,) = _refused(done.stderr)
    assert "twofaced" in line
    assert (
        "info/paths.json appears twice in the archive" in line
        or "'../../pack/dropped.sh' has a '..' component" in line
    ), line
    assert listing(out) == []
    assert not list(tmp_path.rglob("dropped.sh"))


# -- 11: bounds, and hostile input reported as such (never as our bug) ---------------------------

ZEROS = 20 * 1024 * 1024


@pytest.mark.parametrize("honest", [True, False], ids=["declared", "understated"])
def test_11_a_decompression_bomb_is_refused(honest: bool, pack_tree: Path, tmp_path: Path) -> None:
    """20 MiB of zeros in a package of a few KiB: refused from its file list before it is
    extracted, or, when the list understates it, from what was extracted; nothing stays."""
    build = tmp_path / "build"
    build.mkdir()
    zeros = bytes(ZEROS)
    entry = hardlink_entry("share/zeros", zeros if honest else b"x")
    pkg = hostile_conda_package(build, name="bomb", paths=[entry], members={"share/zeros": zeros})
    assert pkg.stat().st_size < 64 * 1024
    tar = _pack_with(pack_tree, tmp_path, [pkg])
    out = tmp_path / "out"
    out.mkdir()
    done = run_cli(["unpack", str(tar), "-o", str(out)], logs=tmp_path / "logs", timeout=300)
    assert done.code == 1, done.stderr[-3000:]
    (line,) = _refused(done.stderr)
    match = re.search(r"it unpacks to (\d+) bytes", line)
    assert match is not None, line
    assert int(match[1]) >= ZEROS
    assert "PIXI_PACK_SRC_MAX_COMPRESSION_RATIO" in line
    assert listing(out) == []
    assert litter(tmp_path) == []


def test_11_metadata_over_its_cap_is_refused_before_it_is_read(
    pack_tree: Path, tmp_path: Path
) -> None:
    tar = hostile.repack(pack_tree, tmp_path / "pack.tar")
    out = tmp_path / "out"
    done = run_cli(
        ["unpack", str(tar), "-o", str(out)],
        logs=tmp_path / "logs",
        env={"PIXI_PACK_SRC_MAX_METADATA_BYTES": "200"},
        timeout=300,
    )
    assert done.code == 1, done.stderr[-3000:]
    (line,) = _refused(done.stderr)
    assert "over the 200-byte limit for metadata" in line
    assert not out.exists()


def test_11_deeply_nested_json_is_malformed_input(pack_tree: Path, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(pack_tree, tree)
    (tree / "pixi-pack-src.json").write_text("[" * 100_000 + "]" * 100_000)
    tar = hostile.repack(tree, tmp_path / "deep.tar")
    done = run_cli(["unpack", str(tar), "-o", str(tmp_path / "out")], logs=tmp_path / "logs")
    assert done.code == 1, done.stderr[-3000:]
    (line,) = _refused(done.stderr)
    assert "pixi-pack-src.json" in line


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("a%00b-1.0-py3-none-any.whl", "has a NUL byte"),
        ("a%5Cb-1.0-py3-none-any.whl", "has a backslash"),
        ("a%0Ab-1.0-py3-none-any.whl", "has a control character"),
        ("x" * 300 + "-1.0-py3-none-any.whl", "has a component longer than 255 bytes"),
    ],
)
def test_11_hostile_file_names_in_a_lock(
    name: str, problem: str, world: World, channel_server: WorldServer, tmp_path: Path
) -> None:
    """NUL, backslash, control characters, over-long names: one error naming the lock."""
    entry = PypiEntry(
        name="a", location=f"{channel_server.url}/p/{name}", version="1.0", sha256="0" * 64
    )
    ws = write_workspace(
        tmp_path / "ws",
        world,
        {"default": Env(conda=("python",), pypi=(entry,))},
        channel_url=channel_server.url + "/channel",
    )
    for argv in (["inspect", str(ws.root)], ["pack", str(ws.root), "-o", str(tmp_path / "o")]):
        done = run_cli(argv, logs=tmp_path / "logs", tmpdir=tmp_path / "t")
        assert done.code == 1, done.stderr[-3000:]
        (line,) = _refused(done.stderr)
        assert "pixi.lock" in line
        assert problem in line
    assert not (tmp_path / "o").exists()
    assert not any(r.path.startswith("/p/") for r in channel_server.requests)


def test_11_a_subdir_that_is_a_path_is_refused(
    world: World, channel_server: WorldServer, tmp_path: Path
) -> None:
    root = _python_ws(world, channel_server, tmp_path / "ws")
    text = (root / "pixi.lock").read_text()
    text, n = re.subn(r"^(- conda: \S+python\S+\.conda)$", r"\1\n  subdir: ../..", text, flags=re.M)
    assert n >= 1
    (root / "pixi.lock").write_text(text)
    done = run_cli(["pack", str(root), "-o", str(tmp_path / "o.tar")], logs=tmp_path / "logs")
    assert done.code in (1, 2), done.stderr[-3000:]
    (line,) = _refused(done.stderr)
    assert "pixi.lock" in line


def test_11_a_local_wheel_outside_the_workspace_is_named(
    world: World, channel_server: WorldServer, tmp_path: Path
) -> None:
    """pixi installs ``pypi: ../outside/x.whl`` as it is; pack does too, but says so in
    ``inspect`` and ``pack`` (a lock from someone else can name any file of this machine)."""
    d = world.dist("worldpkg-a", "wheel")
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copyfile(world.root / d.rel_path, outside / d.file_name)
    entry = PypiEntry(
        name=d.name, location=f"../outside/{d.file_name}", version=d.version, sha256=d.sha256
    )
    ws = write_workspace(
        tmp_path / "ws",
        world,
        {"default": Env(conda=("python",), pypi=(entry,))},
        channel_url=channel_server.url + "/channel",
    )
    done = run_cli(["inspect", str(ws.root)], logs=tmp_path / "logs")
    assert done.code == 0, done.stderr[-3000:]
    text = done.stdout.decode() + done.stderr
    assert f"../outside/{d.file_name} is outside the workspace" in text
