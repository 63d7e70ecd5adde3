"""Issue 14: waiting is visible. A server that accepts connections and never answers: the
user sees which file waits within a second or two, then the retry, then exit 3 once the
documented budget, (--retries + 1) x --timeout plus the backoff, is spent."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from testworld.layout import World
from testworld.locks import Env
from testworld.workspace import write_workspace

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


class SilentServer:
    """Accepts every connection, reads what comes, never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = int(self.sock.getsockname()[1])
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


def test_a_server_that_never_answers(world: World, silent: SilentServer, tmp_path: Path) -> None:
    """`pixi-pack-src pack WS -o env.tar --timeout 3 --retries 1`, stderr read as it comes."""
    ws = write_workspace(
        tmp_path / "ws",
        world,
        {"default": Env(conda=("python",))},
        channel_url=f"http://127.0.0.1:{silent.port}/channel",
    )
    argv = [sys.executable, "-m", "pixi_pack_src", "pack", str(ws.root)]
    argv += ["-o", str(tmp_path / "env.tar"), "--timeout", "3", "--retries", "1"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "PIXI_PACK_SRC_CONCURRENT_DOWNLOADS": "2"}
    start = time.monotonic()
    lines: list[tuple[float, str]] = []
    with subprocess.Popen(
        argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env
    ) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append((time.monotonic() - start, line.rstrip("\n")))
        code = proc.wait(timeout=120)
    took = time.monotonic() - start
    text = "\n".join(line for _, line in lines)
    assert code == 3, text

    waiting = [(t, line) for t, line in lines if line.startswith("⏳ waiting for ")]
    retrying = [(t, line) for t, line in lines if line.startswith("↻ ")]
    assert waiting, text
    assert retrying, text
    first_wait, wait_line = waiting[0]
    assert re.fullmatch(
        r"⏳ waiting for \S+\.(conda|tar\.bz2): nothing received for 1 s", wait_line
    )
    # the file is shown waiting before the read timeout (3 s) fails its first attempt
    assert first_wait < retrying[0][0]
    assert re.fullmatch(
        r"↻ \S+: nothing received for 3 s \(--timeout\); retry in 0\.\d s", retrying[0][1]
    )
    assert len(waiting) == 2  # each attempt's silence is shown
    # one retry each, then the error: (1 + 1) x 3 s at least
    assert took >= 6.0
    errors = [line for _, line in lines if line.startswith("error: ")]
    assert len(errors) == 1, text
    assert "nothing received for 3 s (--timeout) (after 1 retry)" in errors[0]
    assert "(after 1 retry)" in errors[0]
    help_lines = [line for _, line in lines if line.startswith("help: ")]
    assert help_lines
    assert "--timeout SECONDS" in help_lines[0]
    assert not (tmp_path / "env.tar").exists()


def test_connection_refused_is_named_and_not_waited_for(world: World, tmp_path: Path) -> None:
    """`pixi-pack-src pack WS` whose channel port is closed: one retry, a hint about the
    config, not about patience."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    ws = write_workspace(
        tmp_path / "ws",
        world,
        {"default": Env(conda=("python",))},
        channel_url=f"http://127.0.0.1:{port}/channel",
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pixi_pack_src",
            "pack",
            str(ws.root),
            "-o",
            str(tmp_path / "e.tar"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 3, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, proc.stderr
    assert f"connection refused by 127.0.0.1:{port} (after 1 retry)" in errors[0]
    assert "help: waiting longer will not help: check the channel URL, the [mirrors]" in (
        proc.stderr
    )
