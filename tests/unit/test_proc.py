"""The one subprocess wrapper."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from pixi_pack_src.errors import CommandError
from pixi_pack_src.proc import run


def test_output_goes_to_the_log_file_and_the_tail(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "x.log"
    code = "import sys\nfor i in range(60): print('line', i)\nprint('err', file=sys.stderr)"
    result = run([sys.executable, "-c", code], log_file=log)
    assert result.returncode == 0
    text = log.read_text()
    assert text.startswith(f"$ {sys.executable} -c ")
    assert "line 0\n" in text
    assert "err\n" in text
    tail = result.output_tail.splitlines()
    assert len(tail) == 40
    assert tail[-1] == "err"


def test_failure_raises_with_the_tail(tmp_path: Path) -> None:
    with pytest.raises(CommandError) as info:
        run(
            [sys.executable, "-c", "print('about to fail'); raise SystemExit(3)"],
            what="the thing",
        )
    assert str(info.value) == "the thing failed with exit code 3"
    assert info.value.returncode == 3
    assert info.value.output_tail == "about to fail"


def test_check_false_returns_the_code() -> None:
    result = run([sys.executable, "-c", "raise SystemExit(5)"], check=False)
    assert result.returncode == 5


def test_missing_executable(tmp_path: Path) -> None:
    with pytest.raises(CommandError) as info:
        run([tmp_path / "no-such-tool"])
    assert info.value.returncode == 127
    assert str(info.value).startswith(f"cannot run {tmp_path / 'no-such-tool'}")


def test_timeout_kills_the_process() -> None:
    with pytest.raises(CommandError) as info:
        run([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5, what="sleeper")
    assert str(info.value) == "sleeper timed out after 0.5 s"


def test_stdout_captured_separately_and_env_overlay_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="pixi_pack_src")
    result = run(
        [
            sys.executable,
            "-c",
            "import os, sys; print(os.environ['X']); print('e', file=sys.stderr)",
        ],
        env_overlay={"X": "hello world"},
        capture_stdout=True,
    )
    assert result.stdout == "hello world\n"
    assert result.output_tail == "e"
    assert "env: X='hello world'" in caplog.text
    assert "run: " in caplog.text
