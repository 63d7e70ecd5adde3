"""The content-addressed cache: layout, verified hits, corruption, indexes, two processes."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

import pytest

from pixi_pack_src.fetch.cache import (
    CACHEDIR_TAG,
    STALE_TMP_SECONDS,
    CacheDirError,
    CacheEntry,
    ContentCache,
    verify_cache,
)
from pixi_pack_src.lock.model import Hashes

DATA = b"conda package bytes\n" * 5000


def _put(cache: ContentCache, data: bytes = DATA, **kw: object) -> Path:
    tmp = cache.new_tmp_path("x.conda")
    tmp.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    return cache.store_entry(tmp, sha, **kw).path  # type: ignore[arg-type]


def test_layout_and_cachedir_tag(tmp_path: Path) -> None:
    cache = ContentCache(tmp_path / "c")
    sha = hashlib.sha256(DATA).hexdigest()
    assert not (tmp_path / "c").exists()  # nothing is written before first use
    path = _put(cache, md5=hashlib.md5(DATA).hexdigest(), size=len(DATA))
    assert path == tmp_path / "c" / "pkgs" / "sha256" / sha[:2] / sha
    assert path == cache.path_for(sha.upper())
    assert path.read_bytes() == DATA
    assert (tmp_path / "c" / "CACHEDIR.TAG").read_text(encoding="utf-8") == (
        "Signature: 8a477f597d28d172789f06886806bc55\n"
        "# This file is a cache directory tag created by pixi-pack-src.\n"
        "# For information about cache directory tags see https://bford.info/cachedir/\n"
    )
    assert CACHEDIR_TAG.startswith("Signature: 8a477f597d28d172789f06886806bc55\n")
    assert list((tmp_path / "c" / "tmp").iterdir()) == []
    md5 = hashlib.md5(DATA).hexdigest()
    assert (tmp_path / "c" / "pkgs" / "md5" / md5[:2] / md5).read_text() == sha


def test_hit_is_rehashed_and_corruption_removed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = ContentCache(tmp_path)
    path = _put(cache)
    sha = hashlib.sha256(DATA).hexdigest()
    assert cache.lookup(sha, size=len(DATA)) == path
    assert cache.lookup(sha, size=None) == path
    # same size, one byte flipped: only a re-hash can tell
    corrupt = bytearray(DATA)
    corrupt[1234] ^= 1
    path.write_bytes(bytes(corrupt))
    assert cache.lookup(sha, size=len(DATA)) is None
    assert not path.exists()
    assert "is corrupt (sha256 mismatch); removing it" in caplog.text
    assert cache.lookup(sha, size=len(DATA)) is None


def test_size_disagreement_is_a_miss_but_keeps_the_entry(tmp_path: Path) -> None:
    cache = ContentCache(tmp_path)
    path = _put(cache)
    sha = hashlib.sha256(DATA).hexdigest()
    assert cache.lookup(sha, size=len(DATA) + 1) is None
    assert path.exists()


def test_find_by_sha256_md5_and_url(tmp_path: Path) -> None:
    cache = ContentCache(tmp_path)
    sha, md5 = hashlib.sha256(DATA).hexdigest(), hashlib.md5(DATA).hexdigest()
    path = _put(cache, md5=md5, size=len(DATA), url="https://h.test/x-1-0.conda")
    want = CacheEntry(path, sha, md5, len(DATA))
    assert cache.find(Hashes(sha256=sha, size=len(DATA))) == want
    assert cache.find(Hashes(md5=md5.upper(), size=len(DATA))) == want
    assert cache.find(Hashes(), url="https://h.test/x-1-0.conda") == want
    assert cache.find(Hashes(), url="https://h.test/other.conda") is None
    assert cache.find(Hashes()) is None
    assert cache.find(Hashes(md5="0" * 32)) is None
    # an md5 pointer that lies is caught by re-hashing md5 through the entry
    other = b"other bytes"
    other_sha = hashlib.sha256(other).hexdigest()
    _put(cache, other)
    bad_md5 = "1" * 32
    pointer = tmp_path / "pkgs" / "md5" / bad_md5[:2] / bad_md5
    pointer.parent.mkdir(parents=True)
    pointer.write_text(other_sha)
    assert cache.find(Hashes(md5=bad_md5)) is None


def test_md5_of_a_hit_sidecar_lock_or_computed(tmp_path: Path) -> None:
    cache = ContentCache(tmp_path)
    sha, md5 = hashlib.sha256(DATA).hexdigest(), hashlib.md5(DATA).hexdigest()
    path = _put(cache)  # no md5 given: the record has none
    sidecar = path.with_name(path.name + ".json")
    assert "md5" not in json.loads(sidecar.read_text())
    entry = cache.find(Hashes(sha256=sha, md5="a" * 32))
    assert entry is not None
    assert entry.md5 == "a" * 32  # sha256 proved the bytes; the lock's md5 is reported
    assert "md5" not in json.loads(sidecar.read_text())
    entry = cache.find(Hashes(sha256=sha))
    assert entry is not None
    assert entry.md5 == md5  # computed, and remembered
    record = json.loads(sidecar.read_text())
    assert record["md5"] == md5
    assert record["size"] == len(DATA)
    assert record["file"] == {
        "size": len(DATA),
        "mtime_ns": path.stat().st_mtime_ns,
        "ctime_ns": path.stat().st_ctime_ns,
        "ino": path.stat().st_ino,
        "dev": path.stat().st_dev,
    }
    entry = cache.find(Hashes(sha256=sha, md5="a" * 32))
    assert entry is not None
    assert entry.md5 == md5


def test_removal_spares_an_entry_replaced_meanwhile(tmp_path: Path) -> None:
    """Another process may store a good entry between our hash and our removal."""
    cache = ContentCache(tmp_path)
    path = _put(cache)
    path.write_bytes(b"corrupt")
    stale = path.stat()
    _put(cache)  # a good copy lands (a new inode)
    cache._remove_if_same(path, stale)
    assert path.read_bytes() == DATA


def test_stale_partial_files_are_cleaned(tmp_path: Path) -> None:
    ContentCache(tmp_path).ensure()  # a cache this tool made (CACHEDIR.TAG)
    old, fresh = tmp_path / "tmp" / "old.part", tmp_path / "tmp" / "fresh.part"
    old.write_bytes(b"x")
    fresh.write_bytes(b"y")
    long_ago = time.time() - STALE_TMP_SECONDS - 60
    os.utime(old, (long_ago, long_ago))
    ContentCache(tmp_path).ensure()
    assert sorted(p.name for p in (tmp_path / "tmp").iterdir()) == ["fresh.part"]


def _hammer(root: str, data: bytes, rounds: int, start: multiprocessing.synchronize.Event) -> None:
    cache = ContentCache(Path(root))
    sha = hashlib.sha256(data).hexdigest()
    md5 = hashlib.md5(data).hexdigest()
    start.wait()
    for _ in range(rounds):
        tmp = cache.new_tmp_path("x.conda")
        tmp.write_bytes(data)
        path = cache.store_entry(tmp, sha, md5=md5, size=len(data)).path
        entry = cache.find(Hashes(sha256=sha, size=len(data)))
        if entry is None or entry.path != path or entry.md5 != md5:
            raise SystemExit(f"inconsistent cache: {entry}")


def test_two_processes_store_the_same_entry_at_once(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    data = os.urandom(2 << 20)
    procs = [ctx.Process(target=_hammer, args=(str(tmp_path), data, 25, start)) for _ in range(2)]
    for proc in procs:
        proc.start()
    start.set()
    for proc in procs:
        proc.join(60)
    assert [proc.exitcode for proc in procs] == [0, 0]
    cache = ContentCache(tmp_path)
    sha = hashlib.sha256(data).hexdigest()
    assert cache.lookup(sha, size=len(data)) == cache.path_for(sha)
    assert list((tmp_path / "tmp").iterdir()) == []
    assert sorted(p.name for p in cache.path_for(sha).parent.iterdir()) == [
        sha,
        f"{sha}.json",
        f"{sha}.lock",
    ]


class _CountingHash:
    """Counts the cache's hash passes (monkeypatched over ``hash_stream``)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from pixi_pack_src import hashing
        from pixi_pack_src.fetch import cache as cache_module

        self.calls = 0
        real = hashing.hash_stream

        def counting(fh: Any, *, md5: bool = True) -> tuple[str, str | None, int]:
            self.calls += 1
            return real(fh, md5=md5)

        monkeypatch.setattr(cache_module, "hash_stream", counting)


def test_a_hit_whose_record_matches_is_not_rehashed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = ContentCache(tmp_path)
    sha, md5 = hashlib.sha256(DATA).hexdigest(), hashlib.md5(DATA).hexdigest()
    path = _put(cache, md5=md5, size=len(DATA))
    hashes = _CountingHash(monkeypatch)
    for _ in range(3):
        entry = cache.find(Hashes(sha256=sha, size=len(DATA)))
        assert entry == CacheEntry(path, sha, md5, len(DATA))
        assert entry is not None
        assert entry.rehashed is False
        assert entry.verified is not None
        assert entry.verified.sha256 == sha
        assert entry.verified.still(path.stat())
    assert cache.find(Hashes(md5=md5)) == CacheEntry(path, sha, md5, len(DATA))
    assert hashes.calls == 0


def test_same_size_new_bytes_mtime_restored_is_rehashed_and_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cache = ContentCache(tmp_path)
    sha = hashlib.sha256(DATA).hexdigest()
    path = _put(cache, md5=hashlib.md5(DATA).hexdigest(), size=len(DATA))
    before = path.stat()
    corrupt = bytearray(DATA)
    corrupt[777] ^= 0x20
    time.sleep(0.01)  # past the file system's timestamp granularity
    with path.open("r+b") as fh:  # the same inode, the same size
        fh.write(bytes(corrupt))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # mtime set back
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (
        before.st_size,
        before.st_mtime_ns,
        before.st_ino,
    )
    assert after.st_ctime_ns != before.st_ctime_ns  # ctime cannot be set back
    hashes = _CountingHash(monkeypatch)
    assert cache.find(Hashes(sha256=sha, size=len(DATA))) is None
    assert hashes.calls == 1
    assert not path.exists()  # evicted
    assert "is corrupt (sha256 mismatch); removing it" in caplog.text


def test_a_touched_but_intact_entry_is_rehashed_once_and_recorded_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = ContentCache(tmp_path)
    sha = hashlib.sha256(DATA).hexdigest()
    path = _put(cache, md5=hashlib.md5(DATA).hexdigest(), size=len(DATA))
    os.utime(path, ns=(1, 1))
    hashes = _CountingHash(monkeypatch)
    first = cache.find(Hashes(sha256=sha))
    assert first is not None
    assert first.rehashed is True
    assert hashes.calls == 1
    second = cache.find(Hashes(sha256=sha))
    assert second is not None
    assert second.rehashed is False
    assert hashes.calls == 1  # the fresh record vouches for it


def test_verify_mode_rehashes_every_hit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _put(ContentCache(tmp_path), md5=hashlib.md5(DATA).hexdigest(), size=len(DATA))
    sha = hashlib.sha256(DATA).hexdigest()
    cache = ContentCache(tmp_path, verify=True)
    hashes = _CountingHash(monkeypatch)
    for _ in range(3):
        entry = cache.find(Hashes(sha256=sha))
        assert entry is not None
        assert entry.rehashed is True
    assert hashes.calls == 3


def test_verify_cache_rehashes_everything_and_removes_corrupt_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = ContentCache(tmp_path)
    blobs = [DATA, b"second entry", b"third entry" * 100]
    paths = [_put(cache, blob, md5=hashlib.md5(blob).hexdigest(), size=len(blob)) for blob in blobs]
    with paths[1].open("r+b") as fh:
        fh.write(b"S")  # same size, new bytes
    hashes = _CountingHash(monkeypatch)
    seen: list[str] = []
    check = verify_cache(tmp_path, on_entry=seen.append)
    assert hashes.calls == 3
    assert sorted(seen) == sorted(p.name for p in paths)
    assert check.checked == 2
    assert check.size == len(DATA) + len(blobs[2])
    assert check.removed == (paths[1].name,)
    assert not paths[1].exists()
    assert check.to_json() == {
        "cache": str(tmp_path),
        "checked": 2,
        "bytes": len(DATA) + len(blobs[2]),
        "removed": [paths[1].name],
    }
    assert verify_cache(tmp_path / "nothing-here").checked == 0


def test_6_a_planted_tmp_symlink_is_refused_and_nothing_is_deleted(tmp_path: Path) -> None:
    """Issue 18 item 6: ``ln -s /some/dir cache/tmp`` used to delete old files there."""
    ContentCache(tmp_path / "cache").ensure()
    victim = tmp_path / "victim"
    victim.mkdir()
    old = victim / "precious.txt"
    old.write_text("keep me")
    long_ago = time.time() - STALE_TMP_SECONDS - 60
    os.utime(old, (long_ago, long_ago))
    (tmp_path / "cache" / "tmp").rmdir()
    (tmp_path / "cache" / "tmp").symlink_to(victim)
    with pytest.raises(CacheDirError, match=r"tmp/ is a symbolic link"):
        ContentCache(tmp_path / "cache").ensure()
    assert old.read_text() == "keep me"


def test_6_a_directory_that_is_not_a_cache_is_neither_cleaned_nor_used(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "tmp").mkdir(parents=True)
    (home / ".bashrc").write_text("")
    old = home / "tmp" / "notes.txt"
    old.write_text("keep me")
    long_ago = time.time() - STALE_TMP_SECONDS - 60
    os.utime(old, (long_ago, long_ago))
    with pytest.raises(CacheDirError, match=r"not empty and has no CACHEDIR\.TAG"):
        ContentCache(home).ensure()
    assert old.read_text() == "keep me"
    assert sorted(p.name for p in home.iterdir()) == [".bashrc", "tmp"]
    (home / ".bashrc").unlink()
    ContentCache(home).ensure()  # only tmp/: usable, but not cleaned (no tag before)
    assert old.read_text() == "keep me"
    ContentCache(tmp_path / "new").ensure()  # an absent or empty directory becomes a cache
    assert (tmp_path / "new" / "CACHEDIR.TAG").is_file()


def test_a_second_store_of_the_same_bytes_keeps_the_first_file(tmp_path: Path) -> None:
    """Two packs sharing a cache download the same file: the second keeps the first's entry
    (which the first may be archiving right now) instead of replacing it under it."""
    cache = ContentCache(tmp_path)
    first = _put(cache)
    inode = first.stat().st_ino
    tmp = cache.new_tmp_path("x.conda")
    tmp.write_bytes(DATA)
    entry = cache.store_entry(tmp, hashlib.sha256(DATA).hexdigest(), size=len(DATA))
    assert entry.path == first
    assert first.stat().st_ino == inode
    assert not tmp.exists()
    assert entry.size == len(DATA)
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_store_over_an_entry_without_a_matching_record_replaces_it(tmp_path: Path) -> None:
    cache = ContentCache(tmp_path)
    first = _put(cache)
    first.with_name(first.name + ".json").unlink()
    inode = first.stat().st_ino
    second = _put(cache)
    assert second == first
    assert first.stat().st_ino != inode
    assert first.read_bytes() == DATA
