"""``archive.atomic_file``: the output has no name until it is complete (kill -9 safe)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pixi_pack_src.archive import atomic as archive
from pixi_pack_src.archive.atomic import atomic_file
from pixi_pack_src.errors import ArchiveError


@pytest.fixture(params=["anonymous", "named"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways: O_TMPFILE (Linux), and the named temporary file used elsewhere."""
    if request.param == "named":
        monkeypatch.setattr(archive, "_anonymous_file", lambda directory: None)
    return str(request.param)


def test_nothing_has_a_name_until_the_end(mode: str, tmp_path: Path) -> None:
    target = tmp_path / "environment.tar"
    with atomic_file(target) as fh:
        fh.write(b"x" * 100_000)
        fh.flush()
        names = sorted(p.name for p in tmp_path.iterdir())
        if mode == "anonymous":
            assert names == []
            # the open file lives in the directory, nameless
            link = Path(f"/proc/self/fd/{fh.fileno()}").readlink()
            assert link.parent == tmp_path
            assert link.name.startswith("#")  # "#<inode> (deleted)"
        else:
            assert len(names) == 1
            assert names[0].startswith(".environment.tar.")
            assert names[0].endswith(".tmp")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["environment.tar"]
    assert target.read_bytes() == b"x" * 100_000
    assert target.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def test_a_failure_leaves_nothing_and_the_old_file_intact(mode: str, tmp_path: Path) -> None:
    target = tmp_path / "environment.tar"
    target.write_bytes(b"old")

    def write_then_interrupt() -> None:
        with atomic_file(target) as fh:
            fh.write(b"new, half written")
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_then_interrupt()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["environment.tar"]
    assert target.read_bytes() == b"old"


def test_an_existing_file_is_replaced(mode: str, tmp_path: Path) -> None:
    target = tmp_path / "environment.tar"
    target.write_bytes(b"old")
    with atomic_file(target) as fh:
        fh.write(b"new")
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["environment.tar"]


def test_a_directory_that_is_not_a_pack_is_never_replaced(mode: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "notes.txt").write_text("keep me")
    with (
        pytest.raises(ArchiveError, match="non-empty directory that is not a pack"),
        atomic_file(home),
    ):
        raise AssertionError("not reached")
    assert (home / "notes.txt").read_text() == "keep me"


def test_a_missing_directory_is_a_clear_error(mode: str, tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="does not exist"), atomic_file(tmp_path / "no" / "x"):
        raise AssertionError("not reached")
