"""Hardening, credentials: secrets reach only their own host and appear nowhere else.

Nowhere means: stderr at the highest verbosity, stdout (``--json``), ``--report`` files
(JSON and Markdown), the archive's bytes (provenance included), ``inspect`` output, error
messages and build logs. A URL's own ``user:password@`` and conda ``/t/<token>/`` are
redacted in everything shown or written.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from testworld.chaos import RedirectServer, run_cli
from testworld.layout import World
from testworld.locks import Env, PypiEntry
from testworld.server import WorldServer
from testworld.workspace import write_workspace

from pixi_pack_src.cli import run

pytestmark = pytest.mark.integration

SPECS = ("python", "chain-a", "worldcli")
BEARER = "br-5ecret-7oken"
PASSWORD = "hunter2-pa55word"
TOKEN = "tk-c0nda-70ken"
SECRETS = (BEARER, PASSWORD, TOKEN)


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _no_secret(*blobs: bytes | str) -> None:
    for blob in blobs:
        data = blob.encode() if isinstance(blob, str) else blob
        for secret in SECRETS:
            assert secret.encode() not in data, secret
            assert base64.b64encode(secret.encode())[:12] not in data, secret


def _everything(tmp_path: Path) -> list[bytes]:
    """The bytes of every file below ``tmp_path`` except the inputs that hold the secrets."""
    return [
        p.read_bytes()
        for p in sorted(tmp_path.rglob("*"))
        if p.is_file() and p.name not in ("pixi.lock", "auth.json")
    ]


def test_credentials_go_only_to_their_host_across_a_redirect(
    world: World, channel_server: WorldServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The lock names ``localhost:R``, which redirects to ``127.0.0.1:W``. Each host has its
    own credentials; neither ever receives the other's."""
    with RedirectServer(channel_server.url) as redirect:
        lock_channel = f"http://localhost:{redirect.port}/channel"
        ws = write_workspace(
            tmp_path / "ws", world, {"default": Env(conda=SPECS)}, channel_url=lock_channel
        )
        auth = tmp_path / "auth.json"
        auth.write_text(
            json.dumps(
                {
                    "localhost": {"BearerToken": BEARER},
                    f"127.0.0.1:{channel_server.port}": {
                        "BasicHTTP": {"username": "alice", "password": PASSWORD}
                    },
                }
            )
        )
        channel_server.require_auth("/channel/", _basic("alice", PASSWORD))
        out = tmp_path / "out" / "environment.tar"
        out.parent.mkdir()
        report = tmp_path / "out" / "report.json"
        argv = ["-vv", "pack", str(ws.root), "--auth-file", str(auth), "-o", str(out)]
        code = run([*argv, "--json", "--report", str(report)])
        captured = capsys.readouterr()
        assert code == 0, captured.err[-3000:]
        seen = redirect.seen
    assert len(seen) >= 5
    assert {r.headers.get("authorization") for r in seen} == {f"Bearer {BEARER}"}
    served = [r for r in channel_server.requests if r.path.startswith("/channel/")]
    assert len(served) == len(seen)
    assert {r.headers.get("authorization") for r in served} == {_basic("alice", PASSWORD)}
    _no_secret(captured.out, captured.err, *_everything(tmp_path / "out"))
    assert all(
        a["source"].startswith(lock_channel)
        for a in json.loads(captured.out)["platforms"][0]["artifacts"]
    )


def test_user_password_and_token_urls_are_redacted_everywhere(
    world: World, channel_server: WorldServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = channel_server.url.replace("http://", f"http://alice:{PASSWORD}@")
    ws = write_workspace(
        tmp_path / "ws", world, {"default": Env(conda=SPECS)}, channel_url=f"{base}/channel"
    )
    lock_text = ws.lock_path.read_text()
    assert f"alice:{PASSWORD}@" in lock_text  # the secret is in the input
    channel_server.require_auth("/channel/", _basic("alice", PASSWORD))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    argv = ["pack", str(ws.root), "-o", str(out_dir / "environment.tar")]
    argv += ["--report", str(out_dir / "report.md")]
    code = run(["-vv", *argv, "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err[-3000:]
    assert "alice:********@" in captured.out
    # inspect, human and JSON
    assert run(["-vv", "inspect", str(ws.root)]) == 0
    human = capsys.readouterr()
    assert run(["inspect", str(ws.root), "--json"]) == 0
    inspected = capsys.readouterr()
    _no_secret(captured.out, captured.err, human.out, human.err, inspected.out, inspected.err)
    _no_secret(*_everything(out_dir))

    # failures: a missing file, and a conda token in the URL
    ws.lock_path.write_text(lock_text.replace("/channel/", f"/t/{TOKEN}/channel/"))
    failed = run_cli(["-vv", *argv], logs=tmp_path / "logs", tmpdir=tmp_path / "tmp")
    assert failed.code == 3
    assert "/t/********/channel/" in failed.stderr
    assert "alice:********@" in failed.stderr
    _no_secret(failed.stdout, failed.stderr, *_everything(out_dir))


def test_git_credentials_in_a_pypi_source_are_never_shown(
    world: World, channel_server: WorldServer, tmp_path: Path
) -> None:
    """A git source with ``user:password@`` that cannot be fetched: the build error, the
    debug log of the command line and the kept build log all show the URL redacted."""
    sha = "0123456789abcdef0123456789abcdef01234567"
    entry = PypiEntry(
        name="worldpkg-c",
        location=f"git+http://bob:{PASSWORD}@127.0.0.1:9/worldpkg-c.git#{sha}",
        version="0.5.0",
    )
    ws = write_workspace(
        tmp_path / "ws",
        world,
        {"default": Env(conda=("python",), pypi=(entry,))},
        channel_url=channel_server.url + "/channel",
    )
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    tmp = tmp_path / "tmp"
    argv = ["-vv", "pack", str(ws.root), "-o", str(out_dir / "environment.tar")]
    failed = run_cli(argv, logs=tmp_path / "logs", tmpdir=tmp)
    assert failed.code == 4, failed.stderr[-3000:]
    assert "bob:********@127.0.0.1:9" in failed.stderr
    _no_secret(failed.stdout, failed.stderr)
    _no_secret(*[p.read_bytes() for p in tmp.rglob("*") if p.is_file()])
    inspect = run_cli(["inspect", str(ws.root), "--json"], logs=tmp_path / "logs")
    assert inspect.code == 0, inspect.stderr[-3000:]
    _no_secret(inspect.stdout, inspect.stderr)
