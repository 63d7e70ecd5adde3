"""``workdirs``: a work directory is swept only once the process holding it has died."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pixi_pack_src import workdirs
from pixi_pack_src.workdirs import LOCK_NAME, claim, sweep

HOLDER = """
import sys, time
from pathlib import Path
from pixi_pack_src.workdirs import claim
held = claim(Path(sys.argv[1]))
print("held", flush=True)
time.sleep(600)
"""


def _work(parent: Path, name: str) -> Path:
    path = parent / name
    path.mkdir()
    (path / "downloads").mkdir()
    (path / "downloads" / "big.conda").write_bytes(b"x" * 1000)
    return path


def test_a_live_holder_protects_its_directory_and_a_dead_one_does_not(tmp_path: Path) -> None:
    work = _work(tmp_path, "pixi-pack-src-abc")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(work)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        assert sweep(tmp_path, "pixi-pack-src-") == []
        assert (work / "downloads" / "big.conda").is_file()
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # as a killed run
        holder.communicate()
    assert sweep(tmp_path, "pixi-pack-src-") == [work]
    assert not work.exists()


def test_what_has_no_lock_file_or_another_prefix_is_never_touched(tmp_path: Path) -> None:
    new = _work(tmp_path, "pixi-pack-src-new")  # being created: no lock file yet
    other = _work(tmp_path, "other-dead")
    (other / LOCK_NAME).write_text("")
    kept = _work(tmp_path, "pixi-pack-src-kept")
    claim(kept).release(keep=True)  # kept on purpose (build logs)
    assert sweep(tmp_path, "pixi-pack-src-") == []
    assert new.is_dir()
    assert other.is_dir()
    assert kept.is_dir()
    assert not (kept / LOCK_NAME).exists()


def test_own_claim_is_not_swept_and_release_lets_a_later_sweep_remove_it(
    tmp_path: Path,
) -> None:
    work = _work(tmp_path, "pixi-pack-src-mine")
    held = claim(work)
    assert sweep(tmp_path, "pixi-pack-src-") == []  # another open of the lock file is refused
    held.release()
    assert sweep(tmp_path, "pixi-pack-src-") == [work]


def test_without_flock_nothing_is_swept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = _work(tmp_path, "pixi-pack-src-x")
    (work / LOCK_NAME).write_text("")
    monkeypatch.setattr(workdirs, "_try_lock", lambda fd: False)
    assert sweep(tmp_path, "pixi-pack-src-") == []
    assert work.is_dir()
