"""Hardening, network: a 200-package pack through a server that fails 30 % of its answers,
a file that always comes back wrong, and mirrors that are dead, missing or lying.

The retry *policy* keeps its real shape (attempts, Retry-After, mirror order); only the
backoff sleeps are shortened (:func:`fast_backoff`), so the suite stays fast and the random
parts are seeded (the server's fault sequence) and bounded (each test has a time budget).
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from testworld.bulk import MIB, bulk_world
from testworld.chaos import listing, litter, run_cli, valid_cache_entries
from testworld.layout import World
from testworld.locks import Env
from testworld.server import WorldServer
from testworld.workspace import Workspace, write_workspace

from pixi_pack_src.cli import run
from pixi_pack_src.fetch.http import RetryPolicy

pytestmark = pytest.mark.integration

BULK_COUNT = 200
BULK_BYTES = 20 * MIB


@pytest.fixture(scope="module")
def bulk() -> World:
    """200 packages (+ ``bulk-all``), 20 MiB in all, .conda and .tar.bz2 (disk-cached)."""
    return bulk_world(count=BULK_COUNT, total_bytes=BULK_BYTES, max_size=4 * MIB)


@pytest.fixture(scope="module")
def bulk_server(bulk: World) -> Iterator[WorldServer]:
    with WorldServer(bulk.root) as server:
        yield server


@pytest.fixture
def flaky(bulk_server: WorldServer) -> Iterator[WorldServer]:
    bulk_server.clear_faults()
    bulk_server.reset_log()
    yield bulk_server
    bulk_server.clear_faults()
    bulk_server.reset_log()


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Backoff delays of 1-4 ms instead of 0.5-30 s (Retry-After is still honoured)."""

    def backoff(self: RetryPolicy, attempt: int, *, rand: float | None = None) -> float:
        return 0.001 * min(attempt + 1, 4)

    monkeypatch.setattr(RetryPolicy, "backoff", backoff)


def _bulk_workspace(bulk: World, root: Path, channel: str) -> Workspace:
    return write_workspace(root, bulk, {"default": Env(conda=("bulk-all",))}, channel_url=channel)


def _members(tar: Path) -> dict[str, bytes]:
    with tarfile.open(tar) as tf:
        out: dict[str, bytes] = {}
        for m in tf.getmembers():
            fh = tf.extractfile(m) if m.isfile() else None
            if fh is not None:
                out[m.name] = fh.read()
        return out


def _world_hashes(world: World) -> dict[str, str]:
    """Archive path -> sha256, for every package of the world."""
    return {f"channel/{p.subdir}/{p.file_name}": p.sha256 for p in world}


def test_a_200_package_pack_survives_30_percent_faults(
    bulk: World,
    flaky: WorldServer,
    fast_backoff: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ws = _bulk_workspace(bulk, tmp_path / "ws", flaky.url + "/channel")
    # 500/502/503, 429 + Retry-After, resets, truncated bodies and bodies that stall for 1 s,
    # past the 0.3 s read timeout: 30 % of all answers, in a seeded order.
    flaky.random_faults(0.3, seed=2026, stall_delay=1.0)
    out = tmp_path / "out" / "environment.tar"
    out.parent.mkdir()
    code = run(
        [
            "pack",
            str(ws.root),
            "-o",
            str(out),
            "--use-cache",
            str(tmp_path / "cache"),
            "--retries",
            "12",
            "--timeout",
            "0.3",
            "--json",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err[-3000:]
    doc = json.loads(captured.out)

    faults = [r for r in flaky.requests if r.fault is not None]
    kinds = {r.fault for r in faults}
    assert kinds == {"status", "retry_after", "reset", "truncate", "stall"}
    assert len(faults) >= 0.2 * BULK_COUNT
    # every fault cost exactly one retry, and nothing else did
    assert doc["stats"]["retries"] == len(faults)
    assert doc["stats"]["downloaded"] == BULK_COUNT + 1

    # every artifact in the archive is the world's file, verified against the lock
    files = _members(out)
    expected = _world_hashes(bulk)
    packages = {n: d for n, d in files.items() if n.startswith("channel/") and "repodata" not in n}
    assert set(packages) == set(expected)
    for name, data in packages.items():
        assert hashlib.sha256(data).hexdigest() == expected[name], name
    prov = json.loads(files["pixi-pack-src.json"])
    assert len(prov["artifacts"]) == BULK_COUNT + 1
    assert {a["origin"]["verified-against"] for a in prov["artifacts"]} == {"lock-sha256"}
    assert {a["path"]: a["sha256"] for a in prov["artifacts"]} == expected
    # nothing half-written anywhere
    assert listing(out.parent) == ["environment.tar"]
    assert litter(tmp_path) == []
    assert listing(tmp_path / "cache" / "tmp") == []


def test_always_wrong_bytes_for_one_file_is_a_clean_failure_naming_it(
    bulk: World,
    flaky: WorldServer,
    fast_backoff: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ws = _bulk_workspace(bulk, tmp_path / "ws", flaky.url + "/channel")
    victim = bulk.package("bulk-0042")
    path = f"/channel/{victim.subdir}/{victim.file_name}"
    flaky.add_fault(path, "wrong_bytes", times=None)
    flaky.random_faults(0.1, seed=7, kinds=("status", "reset", "truncate"))
    out = tmp_path / "out" / "environment.tar"
    out.parent.mkdir()
    cache = tmp_path / "cache"
    argv = ["pack", str(ws.root), "-o", str(out), "--use-cache", str(cache), "--retries", "12"]
    # a subprocess of the real CLI (its stderr is not mixed with the test server's)
    failed = run_cli(argv, logs=tmp_path / "logs", tmpdir=tmp_path / "tmp")
    wrong = hashlib.sha256(bytes(b ^ 0x5A for b in bulk.archive_path(victim).read_bytes()))
    assert failed.code == 3
    assert failed.error_lines == [
        f"error: sha256 mismatch for {victim.file_name} from {flaky.url}{path}: "
        f"expected {victim.sha256}, got {wrong.hexdigest()}",
        "help: the server sent the same wrong bytes twice: the lock may be stale (run `pixi "
        "lock`), or a mirror or proxy serves other content",
    ]
    # the server was asked twice for the bad file: the first answer and one fresh try
    assert sum(1 for r in flaky.requests if r.path == path and r.fault == "wrong_bytes") == 2
    assert listing(out.parent) == []
    assert litter(tmp_path) == []
    assert listing(cache / "tmp") == []
    assert listing(tmp_path / "tmp") == []
    # the wrong bytes never reached the cache, under any name
    assert not list(cache.rglob(wrong.hexdigest() + "*"))
    assert not list(cache.rglob(victim.sha256 + "*"))

    # once the server is fixed, the next run takes everything else from the cache
    flaky.clear_faults()
    flaky.reset_log()
    cached = valid_cache_entries(cache)
    assert run(["-q", *argv]) == 0
    counts = flaky.counts()
    assert counts[path] == 1
    assert set(counts.values()) == {1}
    assert len(counts) == BULK_COUNT + 1 - len(cached)
    assert listing(out.parent) == ["environment.tar"]


def test_mirrors_dead_missing_and_lying_fall_back_to_a_good_one(
    world: World,
    channel_server: WorldServer,
    fast_backoff: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Mirror 1 refuses connections, mirror 2 has no files (404), mirror 3 sends wrong bytes
    for everything, mirror 4 (the lock's own server) is flaky: the pack succeeds from 4."""
    dead = "http://127.0.0.1:9/channel"
    with WorldServer(world.root) as empty, WorldServer(world.root) as liar:
        empty.add_fault("/channel/*", "status", times=None, status=404)
        liar.add_fault("/channel/*", "wrong_bytes", times=None)
        channel_server.random_faults(0.3, seed=11, kinds=("status", "reset"))
        lock_channel = "http://127.0.0.1:1/world"  # never asked: the mirrors replace it
        ws = write_workspace(
            tmp_path / "ws",
            world,
            {"default": Env(conda=("python", "chain-a", "libzed", "worldcli"))},
            channel_url=lock_channel,
        )
        config = tmp_path / "config.toml"
        mirrors = [
            dead,
            f"{empty.url}/channel",
            f"{liar.url}/channel",
            f"{channel_server.url}/channel",
        ]
        config.write_text(f'[mirrors]\n"{lock_channel}" = {json.dumps(mirrors)}\n')
        out = tmp_path / "environment.tar"
        code = run(
            ["pack", str(ws.root), "-c", str(config), "-o", str(out), "--retries", "8", "--json"]
        )
        captured = capsys.readouterr()
        assert code == 0, captured.err[-3000:]
        doc = json.loads(captured.out)
        artifacts = doc["platforms"][0]["artifacts"]
        n = len(artifacts)
        assert n >= 5
        # each file: one 404 from the empty mirror, one wrong answer from the liar
        assert empty.hits("/channel/*") == n
        assert liar.hits("/channel/*") == n
        good = [r for r in channel_server.requests if r.status == 200 and r.fault is None]
        assert sorted({r.path for r in good}) == sorted(
            "/channel/" + a["path"].split("/", 1)[1] for a in artifacts
        )
        # the archive records the lock's URLs (not the mirror that served them)
        assert {a["source"].rsplit("/", 1)[0] for a in artifacts} == {
            f"{lock_channel}/linux-64",
            f"{lock_channel}/noarch",
        }
        assert "sha256 mismatch" in captured.err  # the liar is reported, not trusted
