"""A build refusal before any build (an unpinned backend) leaves no work directory behind;
one whose error points at a build log in it keeps it (issue 18 item 11)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from pixi_pack_src.errors import BuildError
from pixi_pack_src.pack.run import WORK_PREFIX, _work_dir


def _ours(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.iterdir() if p.name.startswith(WORK_PREFIX))


def test_a_refusal_without_logs_removes_the_work_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def refuse() -> None:
        with _work_dir(None):
            raise BuildError("the build backend of x is not pinned")

    with pytest.raises(BuildError):
        refuse()
    assert _ours(tmp_path) == []


def test_a_build_failure_keeps_its_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def fail() -> None:
        with _work_dir(None) as work:
            log = work / "build.log"
            log.write_text("failed")
            raise BuildError("the build failed", log_file=log)

    with pytest.raises(BuildError):
        fail()
    kept = _ours(tmp_path)
    assert len(kept) == 1
    assert (tmp_path / kept[0] / "build.log").read_text() == "failed"
