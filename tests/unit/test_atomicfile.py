"""write_atomically: the one helper for small files written all at once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pixi_pack_src.atomicfile import write_atomically


def test_the_file_appears_whole_and_replaces_the_old_one(tmp_path: Path) -> None:
    target = tmp_path / "record.json"
    target.write_bytes(b"old")
    write_atomically(target, b'{"new": 1}\n')
    assert target.read_bytes() == b'{"new": 1}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["record.json"]


def test_permissions_follow_the_umask_or_the_mode(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_atomically(tmp_path / "a", b"a")
        write_atomically(tmp_path / "b", b"b", mode=0o600)
    finally:
        os.umask(old)
    assert (tmp_path / "a").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b").stat().st_mode & 0o777 == 0o600


def test_a_failure_leaves_neither_a_temporary_name_nor_a_changed_target(tmp_path: Path) -> None:
    target, scratch = tmp_path / "out" / "x.txt", tmp_path / "scratch"
    target.parent.mkdir()
    scratch.mkdir()
    target.write_bytes(b"kept")
    with pytest.raises(IsADirectoryError):
        write_atomically(tmp_path / "out", b"data", tmp_dir=scratch)  # a directory: no replace
    assert target.read_bytes() == b"kept"
    assert list(scratch.iterdir()) == []
