"""A real lock from the world, fetched through the fetch layer under random faults, and two
processes filling one cache at the same time."""

from __future__ import annotations

import asyncio
import hashlib
import multiprocessing
from multiprocessing.synchronize import Event
from pathlib import Path

import pytest
from testworld.fixtures import LockFactory
from testworld.server import WorldServer

from pixi_pack_src.fetch.auth import AuthStore
from pixi_pack_src.fetch.cache import ContentCache
from pixi_pack_src.fetch.config import FetchConfig
from pixi_pack_src.fetch.download import Artifact, DownloadSettings, Fetched, fetch_all
from pixi_pack_src.fetch.http import RetryPolicy
from pixi_pack_src.lock.lockfile import load_lock
from pixi_pack_src.reporter import NullReporter

pytestmark = pytest.mark.integration

SPECS = ("python", "chain-a", "libzed", "sysdep", "worldcli", "pyworld", "bigdata", "withlinks")


async def _no_sleep(_seconds: float) -> None:
    return None


def _artifacts(lock_path: Path) -> list[Artifact]:
    env = load_lock(lock_path).select("default", "linux-64")
    return [Artifact.from_conda(b, FetchConfig()) for b in env.conda]


def _fetch(
    artifacts: list[Artifact], cache: ContentCache | None, work: Path, *, retries: int = 10
) -> dict[str, Fetched]:
    return asyncio.run(
        fetch_all(
            artifacts,
            work_dir=work,
            cache=cache,
            settings=DownloadSettings(
                concurrency=8,
                timeout=0.5,
                policy=RetryPolicy(retries=retries, backoff_base=0.01, backoff_max=0.05),
            ),
            auth=AuthStore(),
            reporter=NullReporter(),
            sleep=_no_sleep,
        )
    )


def test_a_world_lock_survives_random_faults(
    lock_factory: LockFactory, channel_server: WorldServer, tmp_path: Path
) -> None:
    lock = lock_factory({"default": list(SPECS)})
    artifacts = _artifacts(lock.path)
    assert len(artifacts) >= 10
    # 30 % of requests fail: 5xx, 429, resets, truncated bodies, stalls past the 0.5 s timeout
    channel_server.random_faults(0.3, seed=7, stall_delay=2.0, paths="/channel/*")
    cache = ContentCache(tmp_path / "cache")
    got = _fetch(artifacts, cache, tmp_path / "work")
    records = {r.url: r for r in lock.records[("default", "linux-64")]}
    for art in artifacts:
        f = got[art.key]
        assert f.origin == "download"
        assert f.verified_against == "lock-sha256"
        assert f.sha256 == hashlib.sha256(f.path.read_bytes()).hexdigest()
        assert bytes.fromhex(f.sha256) == records[art.lock_url].sha256
    faulted = sum(1 for r in channel_server.requests if r.fault is not None)
    assert sum(f.retries for f in got.values()) == faulted > 0
    channel_server.clear_faults()
    channel_server.reset_log()
    again = _fetch(artifacts, ContentCache(tmp_path / "cache"), tmp_path / "work")
    assert channel_server.hits() == 0
    assert {f.origin for f in again.values()} == {"cache"}


def _pack_in_process(urls: list[tuple[str, str, str, int]], cache: str, start: Event) -> None:
    from pixi_pack_src.lock.model import Hashes

    artifacts = [
        Artifact.for_url(url, file_name=name, hashes=Hashes(sha256=sha, size=size), kind="conda")
        for url, name, sha, size in urls
    ]
    start.wait()
    got = _fetch(artifacts, ContentCache(Path(cache)), Path(cache).parent / "unused", retries=3)
    if len(got) != len(artifacts):
        raise SystemExit("missing artifacts")


def test_two_processes_fill_one_cache_at_once(
    lock_factory: LockFactory, channel_server: WorldServer, tmp_path: Path
) -> None:
    lock = lock_factory({"default": list(SPECS)})
    artifacts = _artifacts(lock.path)
    rows = [(a.lock_url, a.file_name, a.hashes.sha256 or "", a.hashes.size or 0) for a in artifacts]
    channel_server.latency = 0.02  # both processes are mid-download at the same time
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    cache_dir = tmp_path / "cache"
    procs = [
        ctx.Process(target=_pack_in_process, args=(rows, str(cache_dir), start)) for _ in range(2)
    ]
    for proc in procs:
        proc.start()
    start.set()
    for proc in procs:
        proc.join(120)
    assert [proc.exitcode for proc in procs] == [0, 0]
    cache = ContentCache(cache_dir)
    for _url, _name, sha, size in rows:
        assert cache.lookup(sha, size=size) == cache.path_for(sha)
    assert list((cache_dir / "tmp").iterdir()) == []
    assert (cache_dir / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d1")
    # each process downloaded each file once (neither saw the other's entry before starting)
    assert set(channel_server.counts().values()) <= {1, 2}
