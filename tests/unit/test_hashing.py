"""hashing.py and aio.py: the one file digest and the one sync-to-async bridge."""

from __future__ import annotations

import asyncio
import hashlib
import io
import threading
from pathlib import Path

from pixi_pack_src.aio import run_sync
from pixi_pack_src.hashing import CHUNK, file_sha256, hash_file, hash_stream


def test_digests_of_a_multi_chunk_file(tmp_path: Path) -> None:
    data = bytes(range(256)) * (CHUNK // 256 * 2 + 3)  # two chunks and a bit
    path = tmp_path / "blob"
    path.write_bytes(data)
    sha, md5 = hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest()
    assert hash_file(path) == (sha, md5, len(data))
    assert hash_file(path, md5=False) == (sha, None, len(data))
    assert file_sha256(path) == sha
    stream = io.BytesIO(data)
    stream.read(10)  # what is left to read
    assert hash_stream(stream, md5=False) == (
        hashlib.sha256(data[10:]).hexdigest(),
        None,
        len(data) - 10,
    )


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    assert hash_file(tmp_path / "empty") == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "d41d8cd98f00b204e9800998ecf8427e",
        0,
    )


async def _thread_name() -> str:
    return threading.current_thread().name


def test_run_sync_without_a_loop_runs_here() -> None:
    assert run_sync(_thread_name()) == threading.current_thread().name


def test_run_sync_inside_a_running_loop_uses_a_worker_thread() -> None:
    async def main() -> str:
        return run_sync(_thread_name())

    assert asyncio.run(main()) != threading.current_thread().name


def test_run_sync_from_a_worker_runs_on_the_given_loop() -> None:
    async def main() -> tuple[str, str]:
        loop = asyncio.get_running_loop()
        here = threading.current_thread().name
        there = await asyncio.to_thread(run_sync, _thread_name(), loop)
        return here, there

    here, there = asyncio.run(main())
    assert here == there


def test_file_identity_racy_only_for_whole_second_timestamps() -> None:
    from pixi_pack_src.hashing import FileIdentity

    second = 1_000_000_000
    coarse = FileIdentity(1, 100 * second, 100 * second, 1, 1)
    assert coarse.racy(101 * second)
    assert not coarse.racy(102 * second)
    fine = FileIdentity(1, 100 * second + 5, 100 * second + 7, 1, 1)
    assert not fine.racy(100 * second + 8)
    assert FileIdentity.from_json(fine.to_json()) == fine
    assert FileIdentity.from_json({"size": 1}) is None
    assert FileIdentity.from_json({**fine.to_json(), "ino": True}) is None
    assert FileIdentity.from_json([1, 2]) is None
