"""Hardening, hostile archives: every crafted pack goes through the real ``unpack`` CLI.

For each one: exit code 1, one ``error:`` line naming the offending member (and a ``help:``
line), no traceback, and not one byte written anywhere -- the whole temporary tree, the
would-be output directory included, is unchanged afterwards.

Routes (:data:`ROUTES`): an archive file, the same bytes on standard input, and the same tar
wrapped in a self-extracting script (``pack --create-executable``'s writer) run with bash.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import io
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from testworld import hostile
from testworld.chaos import (
    add_package_to_pack,
    hardlink_entry,
    hostile_conda_package,
    many_members_tar,
    snapshot,
)
from testworld.hostile import TAR_CASES, HostileTar
from testworld.layout import World
from testworld.locks import Env
from testworld.pypi import index_entry
from testworld.server import WorldServer
from testworld.workspace import write_workspace

from pixi_pack_src.cli import run
from pixi_pack_src.host import host_subdir
from pixi_pack_src.selfextract import Bundle, build_bundle, write_script

pytestmark = pytest.mark.integration

ROUTES = ("file", "stdin", "script")
STDIN_LABEL = "the archive on standard input"
ABSOLUTE_TARGET = Path("/tmp/pixi-pack-src-hostile-absolute")
# Cases whose limit is lowered in the unit tests (ExtractLimits): the CLI keeps its defaults,
# so the member-count attack is rebuilt at full size below, and there is no default cap on
# the total size (an archive that large has already taken its disk space).
LIMITED = {"too-many-members", "oversized-total"}
CLI_TAR_CASES = [c for c in TAR_CASES if c.id not in LIMITED]


def _unpack_via(
    route: str,
    archive: Path,
    out: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *extra: str,
) -> tuple[int, list[str]]:
    """Run ``pixi-pack-src unpack`` in-process; return the exit code and stderr lines."""
    capsys.readouterr()
    if route == "file":
        code = run(["unpack", str(archive), "-o", str(out), *extra])
    elif route == "stdin":

        class _Stdin:
            buffer = io.BytesIO(archive.read_bytes())

        monkeypatch.setattr("sys.stdin", _Stdin())
        code = run(["unpack", "-", "-o", str(out), *extra])
    elif route == "script":
        script = archive.parent / "hostile.sh"
        with script.open("wb") as fh:
            write_script(
                fh, pack=archive, bundle=_host_bundle(), subdir=host_subdir(), name=script.name
            )
        proc = subprocess.run(
            ["bash", str(script), "-o", str(out), *extra], capture_output=True, text=True
        )
        script.unlink()
        return proc.returncode, proc.stderr.splitlines()
    else:  # pragma: no cover
        raise AssertionError(f"unknown route {route}")
    return code, capsys.readouterr().err.splitlines()


@functools.cache
def _host_bundle() -> Bundle:
    """An unpacker bundle for this machine without a bundled python (the host's python3 runs
    it), built once per session."""
    work = Path(tempfile.mkdtemp(prefix="hostile-bundle-"))
    atexit.register(shutil.rmtree, work, True)
    return build_bundle(subdir=host_subdir(), conda=[], work_dir=work)


def _refused(code: int, err: list[str], *fragments: str) -> str:
    """Exit code 1 and exactly one error line (+ at most one help line) holding
    ``fragments``; returns the error line."""
    assert code == 1, err
    assert not any(line.startswith(("Traceback", "  File ")) for line in err), err
    errors = [line for line in err if line.startswith("error:")]
    assert len(errors) == 1, err
    assert len([line for line in err if line.startswith("help:")]) <= 1
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    assert "internal error" not in errors[0]
    return errors[0]


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Path]:
    """A directory whose whole tree must be unchanged by a refused unpack."""
    box = tmp_path / "box"
    box.mkdir()
    yield box
    assert not ABSOLUTE_TARGET.exists()


# -- tar-level attacks ---------------------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("case", CLI_TAR_CASES, ids=lambda c: c.id)
def test_crafted_tar_is_refused_by_the_cli(
    case: HostileTar,
    route: str,
    sandbox: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if route == "stdin" and case.id == "oversized-metadata":
        return  # a 100 MiB sparse claim: spooled from stdin it would be written for real
    (sandbox / "in").mkdir()
    archive = case.build(sandbox / "in")
    before = snapshot(sandbox.parent)
    code, err = _unpack_via(route, archive, sandbox / "out" / "deeper", monkeypatch, capsys)
    label = str(archive) if route == "file" else STDIN_LABEL  # the script pipes it to stdin
    fragment = repr(case.member) if case.in_member_name else case.member
    _refused(code, err, label, fragment)
    assert snapshot(sandbox.parent) == before


@pytest.mark.slow
def test_two_hundred_thousand_and_one_members(
    sandbox: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = many_members_tar(sandbox / "many.tar", 200_001)
    before = snapshot(sandbox.parent)
    code, err = _unpack_via("file", archive, sandbox / "out", monkeypatch, capsys)
    _refused(code, err, "'pypi/f00199999.whl' exceeds the limit of 200000 members")
    assert snapshot(sandbox.parent) == before


# -- pack-level attacks on a real pack -----------------------------------------------------------


@pytest.fixture(scope="module")
def real_pack(
    world: World, world_server: WorldServer, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A pack written by ``pack --directory-only``: python, a dependency chain, a package
    needing __glibc, a noarch python package with an entry point, and a wheel."""
    root = tmp_path_factory.mktemp("real-pack")
    ws = write_workspace(
        root / "ws",
        world,
        {
            "default": Env(
                conda=("python", "chain-a", "sysdep", "worldcli"),
                pypi=(index_entry(world, "worldpkg-a", world_server.url),),
            )
        },
        channel_url=world_server.url + "/channel",
    )
    out = root / "pack"
    assert run(["-q", "pack", str(ws.root), "--directory-only", "-o", str(out)]) == 0
    return out


def _copy(pack: Path, dest: Path) -> Path:
    shutil.copytree(pack, dest)
    return dest


def _check_pack_refusal(
    archive: Path,
    sandbox: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *fragments: str,
) -> str:
    before = snapshot(sandbox.parent)
    code, err = _unpack_via("file", archive, sandbox / "out", monkeypatch, capsys)
    line = _refused(code, err, *fragments)
    assert snapshot(sandbox.parent) == before
    return line


def test_tampered_package(
    real_pack: Path,
    sandbox: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tar, member = hostile.tampered_package(real_pack, sandbox / "t.tar")
    _check_pack_refusal(tar, sandbox, monkeypatch, capsys, f"sha256 mismatch for {member}")
    forged, member = hostile.tampered_package(real_pack, sandbox / "f.tar", update_provenance=True)
    _check_pack_refusal(
        forged, sandbox, monkeypatch, capsys, f"sha256 mismatch for {member}", "repodata.json"
    )


def test_repodata_names_a_file_not_in_the_archive(
    real_pack: Path,
    sandbox: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tar, ghost = hostile.ghost_repodata_record(real_pack, sandbox / "g.tar")
    _check_pack_refusal(tar, sandbox, monkeypatch, capsys, f"the archive has no {ghost}")
    tar, victim = hostile.missing_package_file(real_pack, sandbox / "m.tar")
    _check_pack_refusal(tar, sandbox, monkeypatch, capsys, f"the archive has no {victim}")


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"version": "2"}, "Unsupported pixi-pack version: 2"),
        ({"version": "1.0"}, "Unsupported pixi-pack version: 1.0"),
        ({"version": 1}, "`version` must be a string, got 1"),
        ({"version": None}, "pixi-pack.json"),
        ({"platform": "win-64"}, "The pack was created for a different platform"),
        ({"platform": "linux64"}, "'linux64' is not a conda"),
    ],
    ids=["v2", "v1.0", "number", "missing", "win-64", "bad-subdir"],
)
def test_wrong_format_version_or_platform(
    fields: dict[str, Any],
    fragment: str,
    real_pack: Path,
    sandbox: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tar = hostile.with_metadata(real_pack, sandbox / "w.tar", **fields)
    _check_pack_refusal(tar, sandbox, monkeypatch, capsys, fragment)


@pytest.mark.parametrize(
    "escape", ["../../../escaped_by_wheel.py", "/tmp/pixi-pack-src-hostile-absolute"]
)
def test_wheel_whose_record_escapes_the_prefix(
    escape: str,
    real_pack: Path,
    sandbox: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tree = _copy(real_pack, sandbox / "tree")
    wheel = hostile.escaping_wheel(tree / "pypi", escape=escape)
    _sync_wheel(tree, wheel.name)
    tar = hostile.repack(tree, sandbox / "escape.tar")
    shutil.rmtree(tree)
    _check_pack_refusal(tar, sandbox, monkeypatch, capsys, wheel.name, repr(escape))
    assert not list(sandbox.parent.parent.glob("**/escaped_by_wheel.py"))


def _sync_wheel(tree: Path, wheel_name: str) -> None:
    """Record an added wheel in environment.yml and pixi-pack-src.json (an attacker can)."""
    prov_path = tree / "pixi-pack-src.json"
    prov = json.loads(prov_path.read_bytes())
    for changed in hostile.pin_wheels(tree):
        data = (tree / changed).read_bytes()
        for entry in prov["generated"]:
            if entry["path"] == changed:
                entry["sha256"], entry["size"] = hashlib.sha256(data).hexdigest(), len(data)
    data = (tree / "pypi" / wheel_name).read_bytes()
    prov["artifacts"].append(
        {
            "path": f"pypi/{wheel_name}",
            "kind": "wheel",
            "name": "evil",
            "version": "1.0",
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
            "origin": {"type": "injected"},
        }
    )
    prov_path.write_text(json.dumps(prov, indent=2, sort_keys=True) + "\n")


def test_an_unlisted_file_is_refused(
    real_pack: Path,
    sandbox: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tree = _copy(real_pack, sandbox / "tree")
    (tree / "channel" / "linux-64" / "install.sh").write_text("#!/bin/sh\nrm -rf ~\n")
    tar = hostile.repack(tree, sandbox / "u.tar")
    shutil.rmtree(tree)
    _check_pack_refusal(tar, sandbox, monkeypatch, capsys, "channel/linux-64/install.sh")


# -- hostile conda packages (hashes consistent: the attacker controls the pack) -------------------


PAYLOAD = b"pwned\n"


@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        # found: py-rattler linked this to <output>/cache/evilpkg-1.0-0/payload, outside
        # the environment, and a deeper one reaches beyond the output directory
        ("dotdot", "'../../cache/evilpkg-1.0-0/payload' has a '..' component"),
        ("absolute", "'/tmp/pixi-pack-src-hostile-absolute' is absolute"),
        ("through-symlink", "'etc/evil/payload' is inside 'etc/evil'"),
        ("entry-point", "entry point '../../evil' is not a plain file name"),
    ],
)
def test_conda_package_writing_outside_the_prefix(
    case: str,
    fragment: str,
    real_pack: Path,
    sandbox: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tree = _copy(real_pack, sandbox / "tree")
    build = sandbox / "build"
    build.mkdir()
    members = {"payload": PAYLOAD}
    if case == "dotdot":
        pkgs = [
            hostile_conda_package(
                build,
                name="evilpkg",
                paths=[hardlink_entry("../../cache/evilpkg-1.0-0/payload", PAYLOAD)],
                members=members,
            )
        ]
    elif case == "absolute":
        pkgs = [
            hostile_conda_package(
                build,
                name="evilpkg",
                paths=[hardlink_entry(str(ABSOLUTE_TARGET), PAYLOAD)],
                members=members,
            )
        ]
    elif case == "through-symlink":
        outside = sandbox / "outside"
        pkgs = [
            hostile_conda_package(
                build,
                name="evillink",
                paths=[{"_path": "etc/evil", "path_type": "softlink"}],
                symlinks={"etc/evil": str(outside)},
            ),
            hostile_conda_package(
                build,
                name="evilfile",
                paths=[hardlink_entry("etc/evil/payload", PAYLOAD)],
                members={"etc/evil/payload": PAYLOAD},
            ),
        ]
    else:
        pkgs = [
            hostile_conda_package(
                build,
                name="evilpkg",
                subdir="noarch",
                paths=[hardlink_entry("site-packages/evil/__init__.py", b"")],
                members={"site-packages/evil/__init__.py": b""},
                link_json={
                    "noarch": {"type": "python", "entry_points": ["../../evil = evil:main"]}
                },
            )
        ]
    arcnames = [add_package_to_pack(tree, pkg) for pkg in pkgs]
    shutil.rmtree(build)
    tar = hostile.repack(tree, sandbox / "evil.tar")
    shutil.rmtree(tree)
    line = _check_pack_refusal(tar, sandbox, monkeypatch, capsys, fragment)
    assert any(a in line for a in arcnames)
    assert not list(sandbox.parent.rglob("payload"))


# -- directory packs and targets -----------------------------------------------------------------


def test_directory_pack_with_a_symlink_or_a_fifo(
    real_pack: Path,
    sandbox: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tree = _copy(real_pack, sandbox / "dirpack")
    (tree / "channel" / "noarch" / "passwd").symlink_to("/etc/passwd")
    before = snapshot(sandbox.parent)
    code, err = _unpack_via("file", tree, sandbox / "out", monkeypatch, capsys)
    _refused(code, err, "channel/noarch/passwd is a symbolic link")
    assert snapshot(sandbox.parent) == before
    (tree / "channel" / "noarch" / "passwd").unlink()
    os.mkfifo(tree / "pipe")
    before = snapshot(sandbox.parent)
    code, err = _unpack_via("file", tree, sandbox / "out", monkeypatch, capsys)
    _refused(code, err, "pipe is not a regular file")
    assert snapshot(sandbox.parent) == before


def test_a_target_environment_that_is_a_symlink_out(
    real_pack: Path,
    sandbox: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    outside = sandbox / "outside"
    outside.mkdir()
    out = sandbox / "out"
    out.mkdir()
    (out / "env").symlink_to(outside)
    tar = hostile.repack(real_pack, sandbox / "good.tar")
    before = snapshot(sandbox.parent)
    code, err = _unpack_via("file", tar, out, monkeypatch, capsys, "--force")
    _refused(code, err, f"{out / 'env'} exists and is not a directory")
    assert snapshot(sandbox.parent) == before
    code, err = _unpack_via("file", tar, out, monkeypatch, capsys, "-e", "../escape")
    assert code == 2
    assert [line for line in err if line.startswith("error:")] == [
        "error: invalid environment name '../escape'"
    ]
    assert snapshot(sandbox.parent) == before
