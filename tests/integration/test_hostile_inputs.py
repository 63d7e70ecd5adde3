"""The hostile-input suite (issue 18): crafted locks, packages, caches and servers.

Each test is one reproduction from the issue, crafted here or by the test world and served
on 127.0.0.1. Each ends in a refusal: a one-line ``error:`` with exit code 1 (never
"internal error"), nothing written outside the places the command owns, nothing executed,
nothing sent. ``docs/security.md`` describes the threat model these tests stand for.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from testworld.chaos import run_cli
from testworld.layout import World
from testworld.locks import Env, PypiEntry
from testworld.server import WorldServer
from testworld.workspace import write_workspace

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
