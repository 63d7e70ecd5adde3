"""The CLI root: version, verbosity, colour, and the error funnel (messages and exit codes)."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

import pixi_pack_src.cli.pack as cli_pack
from pixi_pack_src import __version__
from pixi_pack_src.cli import STATE, run
from pixi_pack_src.cli.log import level_for
from pixi_pack_src.cli.ui import make_console, resolve_color
from pixi_pack_src.errors import (
    EXIT_BUILD,
    EXIT_DOWNLOAD,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    BuildError,
    ChecksumMismatchError,
    LockfileError,
    PixiPackSrcError,
    SelectionError,
    exit_code_for,
)
from pixi_pack_src.units import human_bytes


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--version"]) == 0
    assert capsys.readouterr().out == f"pixi-pack-src {__version__}\n"


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("pack", "unpack", "inspect"):
        assert command in out


def test_unknown_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--bogus"]) == EXIT_USAGE
    assert "No such option: --bogus" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "verbosity"),
    [([], 0), (["-v"], 1), (["-vv"], 2), (["-vvv"], 3), (["-q"], -1), (["-qq"], -2), (["-vq"], 0)],
)
def test_verbosity_counts(argv: list[str], verbosity: int, tmp_path: Path) -> None:
    run([*argv, "inspect", str(tmp_path / "nothing-here")])
    assert STATE.verbosity == verbosity


def test_levels() -> None:
    assert level_for(-2) == logging.ERROR
    assert level_for(0) == logging.WARNING
    assert level_for(1) == logging.INFO
    assert level_for(2) == logging.DEBUG
    assert level_for(5) == logging.DEBUG


def test_colour_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("PIXI_COLOR", raising=False)
    assert resolve_color(None) == "auto"
    monkeypatch.setenv("PIXI_COLOR", "never")
    assert resolve_color(None) == "never"
    assert resolve_color("always") == "always"
    assert make_console("always").is_terminal
    assert make_console("never").no_color
    monkeypatch.setenv("NO_COLOR", "1")  # NO_COLOR wins over --color always
    assert make_console("always").no_color


def test_human_bytes() -> None:
    assert human_bytes(None) == "?"
    assert human_bytes(512) == "512 B"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(3 * 1024**3) == "3.0 GiB"


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (PixiPackSrcError("x"), EXIT_ERROR),
        (LockfileError("x"), EXIT_ERROR),
        (SelectionError("x"), EXIT_USAGE),
        (
            ChecksumMismatchError(
                what="a", source="u", algorithm="sha256", expected="1", actual="2"
            ),
            EXIT_DOWNLOAD,
        ),
        (BuildError("x"), EXIT_BUILD),
        (KeyboardInterrupt(), EXIT_INTERRUPTED),
        (RuntimeError("x"), EXIT_ERROR),
    ],
)
def test_exit_codes(exc: BaseException, code: int) -> None:
    assert exit_code_for(exc) == code


def _failing_pack(exc: BaseException, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise exc

    monkeypatch.setattr(cli_pack, "pack", fail)


def test_error_is_one_line_plus_help(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _failing_pack(LockfileError("pixi.lock is broken", hint="run `pixi lock`"), monkeypatch)
    assert run(["pack"]) == EXIT_ERROR
    assert capsys.readouterr().err == "error: pixi.lock is broken\nhelp: run `pixi lock`\n"


def test_build_error_shows_tail_and_log(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    error = BuildError(
        "pixi build failed", log_file=tmp_path / "b.log", output_tail="one\ntwo", hint="fix it"
    )
    _failing_pack(error, monkeypatch)
    assert run(["pack"]) == EXIT_BUILD
    assert capsys.readouterr().err == (
        "error: pixi build failed\n"
        "  last lines of the output:\n"
        "  | one\n"
        "  | two\n"
        f"  log: {tmp_path / 'b.log'}\n"
        "help: fix it\n"
    )


def test_traceback_only_with_vv(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _failing_pack(PixiPackSrcError("boom"), monkeypatch)
    run(["pack"])
    assert "Traceback" not in capsys.readouterr().err
    run(["-vv", "pack"])
    assert "Traceback" in capsys.readouterr().err


def test_internal_error_is_reported_as_a_bug(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _failing_pack(ZeroDivisionError("division by zero"), monkeypatch)
    assert run(["pack"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("error: internal error: ZeroDivisionError: division by zero\n")
    assert "re-run with -vv and report it" in err


def test_interrupt_exits_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _failing_pack(KeyboardInterrupt(), monkeypatch)
    assert run(["pack"]) == EXIT_INTERRUPTED
    assert capsys.readouterr().err == "Interrupted\n"


def test_module_entry_point() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pixi_pack_src", "--version"], capture_output=True, text=True
    )
    assert proc.returncode == 0
    assert proc.stdout == f"pixi-pack-src {__version__}\n"
    assert proc.stderr == ""
