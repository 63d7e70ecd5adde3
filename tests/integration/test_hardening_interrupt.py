"""Hardening, interruptions: ``kill -9`` and Ctrl-C at chosen moments of real CLI runs.

Every run is a subprocess of ``python -m pixi_pack_src`` with its own ``TMPDIR``; it is
stopped when something observable happens (the server answered N requests, a temporary file
appeared or grew: :mod:`testworld.chaos`), at points drawn from a seeded generator. After
a kill nothing may be half-written next to the output, and the next run must take what the
cache holds only after verifying it; after Ctrl-C the exit code is 130, ``Interrupted`` is
printed and no temporary file is left anywhere (output directory, ``$TMPDIR``, cache).
"""

from __future__ import annotations

import hashlib
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from testworld import pypi
from testworld.bulk import MIB, bulk_world
from testworld.chaos import (
    CliRun,
    Finished,
    file_appears,
    interrupt_when,
    kill_when,
    listing,
    litter,
    run_cli,
    server_saw,
    start_cli,
    valid_cache_entries,
    writing_in,
)
from testworld.layout import World
from testworld.locks import Env, SourceEntry
from testworld.pixi_standin import StandIn
from testworld.pixi_standin.workspaces import write_package
from testworld.server import WorldServer
from testworld.workspace import Workspace, write_workspace

pytestmark = pytest.mark.integration

SEED = 20261123
BULK_COUNT = 200


@pytest.fixture(scope="module")
def bulk() -> World:
    return bulk_world(count=BULK_COUNT, total_bytes=20 * MIB, max_size=4 * MIB)


@pytest.fixture(scope="module")
def bulk_server(bulk: World) -> Iterator[WorldServer]:
    with WorldServer(bulk.root) as server:
        yield server


@pytest.fixture
def server(bulk_server: WorldServer) -> Iterator[WorldServer]:
    bulk_server.clear_faults()
    bulk_server.reset_log()
    bulk_server.latency = 0.0
    yield bulk_server
    bulk_server.clear_faults()
    bulk_server.reset_log()
    bulk_server.latency = 0.0


@pytest.fixture
def bulk_ws(bulk: World, server: WorldServer, tmp_path: Path) -> Workspace:
    return write_workspace(
        tmp_path / "ws",
        bulk,
        {"default": Env(conda=("bulk-all",))},
        channel_url=server.url + "/channel",
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _interrupted_cleanly(result: Finished) -> None:
    assert result.code == 130, result.stderr[-3000:]
    assert result.stderr.splitlines()[-1] == "Interrupted"
    assert "Traceback" not in result.stderr


# -- kill -9 --------------------------------------------------------------------------------------


def test_kill_9_at_seeded_points_then_the_cache_is_verified_and_reused(
    bulk: World, server: WorldServer, bulk_ws: Workspace, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    out_dir, cache, tmp, logs = (tmp_path / d for d in ("out", "cache", "tmp", "logs"))
    out_dir.mkdir()
    out = out_dir / "environment.tar"
    argv = ["-q", "pack", str(bulk_ws.root), "-o", str(out), "--use-cache", str(cache)]
    # four downloads at a time, 20 ms per answer: the download phase lasts about a second
    slow = [*argv, "--concurrent-downloads", "4"]
    server.latency = 0.02
    total = BULK_COUNT + 1

    # 1-2: during the downloads, after a seeded number of answers
    for _ in range(2):
        before = len(valid_cache_entries(cache))
        after = rng.randint(before + 10, min(before + 60, total - 20))
        run = start_cli(slow, logs=logs, tmpdir=tmp)
        assert kill_when(run, server_saw(server, after, "/channel/*"))
        assert listing(out_dir) == []  # no environment.tar, no temporary name either
    # 3: while the tar is written, at a seeded size: the archive is written while the
    # downloads run (pack/early.py), so this kill lands in both; this run downloads only what
    # the killed runs had not completed (their verified entries are reused)
    partial = valid_cache_entries(cache)
    assert total - 20 > len(partial) >= 20
    server.latency = 0.0
    server.reset_log()
    run = start_cli(argv, logs=logs, tmpdir=tmp)
    at = rng.randint(0, 2 * MIB)  # early in the ~20 MiB write: a window that cannot be missed
    assert kill_when(run, writing_in(run, out_dir, min_size=at))
    assert listing(out_dir) == []
    # only files whose verified entries were missing (a killed run's last requests may
    # still be answered after the kill: they are for missing files too)
    by_sha = {p.sha256: f"/channel/{p.subdir}/{p.file_name}" for p in bulk}
    assert set(server.counts()) <= {path for sha, path in by_sha.items() if sha not in partial}
    # what the kills leave: partial downloads in the cache's tmp/ (removed by a later run
    # after a day) and pack's work directory in $TMPDIR -- nothing next to the output
    assert [n for n in listing(tmp) if not n.startswith("pixi-pack-src-")] == []

    # the next run verifies every cache entry it uses: corrupt one on purpose
    valid = valid_cache_entries(cache)
    assert len(valid) >= len(partial)
    missing = {path for sha, path in by_sha.items() if sha not in valid}
    victim = cache / "pkgs" / "sha256" / valid[0][:2] / valid[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 3] ^= 0x01
    victim.write_bytes(bytes(data))
    stale = cache / "tmp" / "0123456789abcdef-stale.conda.part"
    stale.write_bytes(b"partial")
    day_ago = time.time() - 2 * 24 * 3600
    os.utime(stale, (day_ago, day_ago))
    server.reset_log()

    assert [n for n in listing(tmp) if n.startswith("pixi-pack-src-")]  # left by the kills
    done = run_cli(argv, logs=logs, tmpdir=tmp)
    assert done.code == 0, done.stderr[-3000:]
    # only the corrupted entry, and what the killed runs had not completed
    assert server.counts() == dict.fromkeys({by_sha[valid[0]], *missing}, 1)
    assert "is corrupt (sha256 mismatch); removing it" in done.stderr
    assert listing(out_dir) == ["environment.tar"]
    assert not stale.exists()
    assert listing(tmp) == []  # found: work directories of killed runs stayed forever
    # and the archive is the one a clean run writes
    server.reset_log()
    clean = run_cli(
        ["-q", "pack", str(bulk_ws.root), "-o", str(tmp_path / "clean.tar")],
        logs=logs,
        tmpdir=tmp / "clean",
    )
    assert clean.code == 0, clean.stderr[-3000:]
    assert _sha256(out) == _sha256(tmp_path / "clean.tar")


def test_kill_9_during_a_wheel_build_then_resume(
    world: World, channel_server: WorldServer, tmp_path: Path
) -> None:
    ws = write_workspace(
        tmp_path / "ws",
        world,
        {
            "default": Env(
                conda=("python",),
                pypi=(pypi.index_entry(world, "worldpkg-a", channel_server.url, kind="sdist"),),
            )
        },
        channel_url=channel_server.url + "/channel",
    )
    out_dir, cache, tmp, logs = (tmp_path / d for d in ("out", "cache", "tmp", "logs"))
    out_dir.mkdir()
    out = out_dir / "environment.tar"
    argv = ["-q", "pack", str(ws.root), "-o", str(out), "--use-cache", str(cache)]
    run = start_cli(argv, logs=logs, tmpdir=tmp)
    assert kill_when(run, file_appears(tmp, "pixi-pack-src-*/wheel-builds/wheel-builds/*/src"))
    assert listing(out_dir) == []
    assert not list(cache.rglob("*.whl"))  # no wheel reached the build cache

    done = run_cli(argv, logs=logs, tmpdir=tmp)
    assert done.code == 0, done.stderr[-3000:]
    assert listing(out_dir) == ["environment.tar"]
    assert listing(tmp) == []  # the killed run's work directory was swept
    # the downloads of the killed run were verified and reused
    assert channel_server.hits("/channel/*") == 1
    assert channel_server.hits("/pypi/*") == 1


def test_three_packs_share_one_cache_while_one_is_killed(
    bulk: World, server: WorldServer, bulk_ws: Workspace, tmp_path: Path
) -> None:
    """Two packs fill one cache while a third, on the same cache, dies by kill -9 mid-way;
    the server drops 10 % of the answers. Both survivors succeed with the same archive."""
    cache, logs = tmp_path / "cache", tmp_path / "logs"
    server.latency = 0.01
    server.random_faults(0.1, seed=SEED, kinds=("status", "reset", "truncate"))

    def start(name: str) -> CliRun:
        out = tmp_path / name / "environment.tar"
        out.parent.mkdir()
        argv = ["-q", "pack", str(bulk_ws.root), "-o", str(out), "--use-cache", str(cache)]
        return start_cli(
            [*argv, "--concurrent-downloads", "8"], logs=logs, tmpdir=tmp_path / f"t-{name}"
        )

    victim = start("victim")
    runs = [start("a"), start("b")]
    assert kill_when(victim, server_saw(server, 80, "/channel/*"))
    results = [r.wait(120) for r in runs]
    assert [r.code for r in results] == [0, 0], [r.stderr[-2000:] for r in results]
    assert _sha256(tmp_path / "a" / "environment.tar") == _sha256(
        tmp_path / "b" / "environment.tar"
    )
    assert listing(tmp_path / "victim") == []
    assert listing(tmp_path / "t-a") == listing(tmp_path / "t-b") == []
    assert len(valid_cache_entries(cache)) == BULK_COUNT + 1


def test_kill_9_during_unpack_then_unpack_again(
    world: World, channel_server: WorldServer, tmp_path: Path
) -> None:
    ws = write_workspace(
        tmp_path / "ws",
        world,
        {"default": Env(conda=("python", "chain-a", "worldcli"))},
        channel_url=channel_server.url + "/channel",
    )
    logs = tmp_path / "logs"
    tar = tmp_path / "environment.tar"
    assert run_cli(["-q", "pack", str(ws.root), "-o", str(tar)], logs=logs).code == 0
    out = tmp_path / "target"
    argv = ["-q", "unpack", str(tar), "-o", str(out)]
    run = start_cli(argv, logs=logs, tmpdir=tmp_path / "tmp")
    assert kill_when(run, file_appears(out, ".pixi-pack-src-unpack-*/env/conda-meta"))
    assert "env" not in listing(out)  # no half-made environment at the target
    assert [n for n in listing(out) if n.startswith(".pixi-pack-src-unpack-")]
    done = run_cli(argv, logs=logs, tmpdir=tmp_path / "tmp")
    assert done.code == 0, done.stderr[-3000:]
    # found: the killed run's work directory (the whole extracted pack) stayed forever
    assert listing(out) == ["activate.sh", "env"]
    assert listing(tmp_path / "tmp") == []


# -- Ctrl-C ---------------------------------------------------------------------------------------


def test_ctrl_c_mid_download(
    bulk: World, server: WorldServer, bulk_ws: Workspace, tmp_path: Path
) -> None:
    biggest = max(bulk, key=lambda p: p.size)
    assert biggest.size > 512 * 1024
    # 64 KiB every 0.2 s: the body takes seconds
    path = f"/channel/{biggest.subdir}/{biggest.file_name}"
    server.add_fault(path, "slow", times=None, delay=0.2)
    out_dir, cache, tmp = tmp_path / "out", tmp_path / "cache", tmp_path / "tmp"
    out_dir.mkdir()
    argv = ["pack", str(bulk_ws.root), "-o", str(out_dir / "environment.tar")]
    run = start_cli([*argv, "--use-cache", str(cache)], logs=tmp_path / "logs", tmpdir=tmp)
    # the slow body is on its way into the cache's tmp/
    assert interrupt_when(run, file_appears(cache / "tmp", ".*.part", min_size=128 * 1024))
    result = run.wait(60)
    _interrupted_cleanly(result)
    assert listing(out_dir) == []
    assert listing(tmp) == []
    assert listing(cache / "tmp") == []
    assert litter(tmp_path) == []


def test_ctrl_c_during_a_wheel_build(
    world: World, channel_server: WorldServer, tmp_path: Path
) -> None:
    """Found: Ctrl-C while the build python was being prepared deadlocked (the worker waited
    for the event loop, which waited for the worker); a running build hook now stops too."""
    ws = write_workspace(
        tmp_path / "ws",
        world,
        {
            "default": Env(
                conda=("python",),
                pypi=(pypi.index_entry(world, "worldpkg-a", channel_server.url, kind="sdist"),),
            )
        },
        channel_url=channel_server.url + "/channel",
    )
    out_dir, cache, tmp, logs = (tmp_path / d for d in ("out", "cache", "tmp", "logs"))
    out_dir.mkdir()
    argv = ["pack", str(ws.root), "-o", str(out_dir / "environment.tar"), "--use-cache", str(cache)]
    # while the build python is prepared; while a build hook runs (its log appeared)
    for point in (
        "pixi-pack-src-*/wheel-builds",
        "pixi-pack-src-*/wheel-builds/wheel-builds/*/hook-*.log",
    ):
        run = start_cli(argv, logs=logs, tmpdir=tmp)
        assert interrupt_when(run, file_appears(tmp, point))
        _interrupted_cleanly(run.wait(60))
        assert listing(out_dir) == []
        assert listing(tmp) == []
        assert litter(tmp_path) == []
    done = run_cli(argv, logs=logs, tmpdir=tmp)
    assert done.code == 0, done.stderr[-3000:]
    assert listing(out_dir) == ["environment.tar"]


def test_ctrl_c_while_the_archive_is_written(
    bulk: World, server: WorldServer, bulk_ws: Workspace, tmp_path: Path
) -> None:
    """Found: Ctrl-C during the tar writing let the archive complete and be renamed into
    place, then exited 130 -- an 'interrupted' run that left an environment.tar."""
    out_dir, cache, logs = tmp_path / "out", tmp_path / "cache", tmp_path / "logs"
    out_dir.mkdir()
    argv = ["pack", str(bulk_ws.root), "-o", str(out_dir / "environment.tar")]
    argv += ["--use-cache", str(cache)]
    assert run_cli(["-q", *argv, "-o", str(tmp_path / "warm.tar")], logs=logs).code == 0
    run = start_cli(argv, logs=logs, tmpdir=tmp_path / "tmp")
    assert interrupt_when(run, writing_in(run, out_dir))  # as soon as the tar is open
    _interrupted_cleanly(run.wait(60))
    assert listing(out_dir) == []
    assert listing(tmp_path / "tmp") == []


def test_ctrl_c_during_unpack(
    bulk: World, server: WorldServer, bulk_ws: Workspace, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    tar = tmp_path / "environment.tar"
    assert run_cli(["-q", "pack", str(bulk_ws.root), "-o", str(tar)], logs=logs).code == 0
    target = tmp_path / "target" / "deeper"
    run = start_cli(["unpack", str(tar), "-o", str(target)], logs=logs, tmpdir=tmp_path / "tmp")
    assert interrupt_when(run, file_appears(target, ".pixi-pack-src-unpack-*/pack/channel"))
    _interrupted_cleanly(run.wait(60))
    assert not (tmp_path / "target").exists()  # the directories it created are gone again
    assert listing(tmp_path / "tmp") == []


# -- conda source builds (the stand-in pixi) ------------------------------------------------------


def _source_workspace(world: World, server: WorldServer, root: Path) -> Workspace:
    write_package(root / "src" / "pkg2", "pkg2", files={"share/pkg2/hello.txt": "hello"})
    return write_workspace(
        root,
        world,
        {
            "default": Env(
                conda=("chain-a",), sources=(SourceEntry("pkg2", "src/pkg2", noarch=True),)
            )
        },
        channel_url=server.url + "/channel",
    )


def test_ctrl_c_during_a_conda_source_build(
    fake_pixi: StandIn, world: World, channel_server: WorldServer, tmp_path: Path
) -> None:
    """Found: Ctrl-C during ``pixi build`` waited for the whole build (the worker thread was
    not told), and the build went on writing. Now the build is killed at once: the stand-in
    sleeps 600 s before building, so only a kill lets this test end."""
    ws = _source_workspace(world, channel_server, tmp_path / "ws")
    fake_pixi.fail("pkg2", "slow:600")
    out_dir, tmp, logs = tmp_path / "out", tmp_path / "tmp", tmp_path / "logs"
    out_dir.mkdir()
    argv = ["pack", str(ws.root), "-o", str(out_dir / "environment.tar")]
    run = start_cli(argv, logs=logs, tmpdir=tmp)

    def building() -> bool:  # the stand-in says so in the build log before sleeping
        return any(
            b"building pkg2 (slow)" in p.read_bytes() for p in tmp.rglob("*.log") if p.is_file()
        )

    assert interrupt_when(run, building)
    _interrupted_cleanly(run.wait(120))
    assert listing(out_dir) == []
    assert listing(tmp) == []
    assert fake_pixi.builds() == []  # the build never finished: it records itself at exit


def test_a_conda_source_build_leaves_no_temporary_directory(
    fake_pixi: StandIn, world: World, channel_server: WorldServer, tmp_path: Path
) -> None:
    """Found: every pack with a source build and no cache left an empty
    ``pixi-pack-src-build-logs-*`` directory in $TMPDIR."""
    ws = _source_workspace(world, channel_server, tmp_path / "ws")
    out = tmp_path / "environment.tar"
    tmp = tmp_path / "tmp"
    done = run_cli(["-q", "pack", str(ws.root), "-o", str(out)], logs=tmp_path / "logs", tmpdir=tmp)
    assert done.code == 0, done.stderr[-3000:]
    assert [c.command for c in fake_pixi.builds()] == ["build"]
    assert listing(tmp) == []
