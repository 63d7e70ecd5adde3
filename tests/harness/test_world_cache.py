"""The world's disk cache and its small pure helpers."""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from testworld.bulk import KIB, MIB, bulk_sizes, bulk_specs
from testworld.cache import cache_root, cached_dir, input_key


def _slow_build(tmp: Path) -> None:
    (tmp / "pid").write_text(str(os.getpid()))
    time.sleep(0.3)  # make two builders overlap
    (tmp / "done").write_text("yes")


def _build_in_process(root: str) -> str:
    return str(cached_dir("things", "k1", _slow_build, root=Path(root)))


def test_cache_root_follows_the_env_var(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WORLD_CACHE_DIR", str(tmp_path / "c"))
    assert cache_root() == (tmp_path / "c").resolve()
    assert cache_root().is_dir()


def test_input_key_depends_on_every_part() -> None:
    assert input_key("a", 1) == input_key("a", 1)
    assert len({input_key("a", 1), input_key("a", 2), input_key("b", 1)}) == 3


def test_cached_dir_builds_once(tmp_path: Path) -> None:
    calls: list[Path] = []

    def build(tmp: Path) -> None:
        calls.append(tmp)
        (tmp / "x").write_text("1")

    first = cached_dir("k", "abc", build, root=tmp_path)
    second = cached_dir("k", "abc", build, root=tmp_path)
    assert first == second == tmp_path / "k" / "abc"
    assert len(calls) == 1
    assert (first / "x").read_text() == "1"
    assert sorted(p.name for p in (tmp_path / "k").iterdir()) == ["abc"]


def test_failed_build_leaves_nothing(tmp_path: Path) -> None:
    def build(tmp: Path) -> None:
        (tmp / "half").write_text("x")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        cached_dir("k", "abc", build, root=tmp_path)
    assert list((tmp_path / "k").iterdir()) == []


def test_two_processes_building_at_once_agree(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(2, mp_context=ctx) as pool:
        results = list(pool.map(_build_in_process, [str(tmp_path)] * 2))
    assert results == [str(tmp_path / "things" / "k1")] * 2
    assert (tmp_path / "things" / "k1" / "done").read_text() == "yes"
    assert sorted(p.name for p in (tmp_path / "things").iterdir()) == ["k1"]


def test_bulk_sizes_are_seeded_bounded_and_add_up() -> None:
    sizes = bulk_sizes(200, 1024 * MIB, seed=3)
    assert sizes == bulk_sizes(200, 1024 * MIB, seed=3)
    assert sizes != bulk_sizes(200, 1024 * MIB, seed=4)
    assert min(sizes) >= KIB
    assert max(sizes) <= 50 * MIB
    assert abs(sum(sizes) - 1024 * MIB) < 11 * MIB


def test_bulk_specs_form_a_dag_with_a_meta_package() -> None:
    specs = bulk_specs(30, 10 * MIB, seed=1)
    names = [s.name for s in specs]
    assert names[-1] == "bulk-all"
    assert specs[-1].depends == tuple(names[:-1])
    for i, spec in enumerate(specs[:-1]):
        assert all(names.index(d) > i for d in spec.depends)
        ((size, _seed),) = spec.random_files.values()
        assert spec.archive == ("tar.bz2" if size < MIB else "conda")
