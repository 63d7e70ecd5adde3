"""Issue 14: the command line a pixi user expects (output streams, layout, options, help).

Each test names the exact command it runs.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

import pixi_pack_src.cli.pack as cli_pack
from pixi_pack_src import errors
from pixi_pack_src.cli import STATE, run
from pixi_pack_src.cli.inspect_view import shorten
from pixi_pack_src.cli.ui import RichReporter, _Task
from pixi_pack_src.errors import PixiPackSrcError

DATA = Path(__file__).resolve().parent.parent / "data"
SAMPLES = DATA / "lock-samples"
REPO = Path(__file__).resolve().parents[2]
PIXI_TOML = '[workspace]\nname = "sample"\nchannels = ["conda-forge"]\nplatforms = []\n'
BIG = "v7-pixi-real-cpp-git-source.lock"  # 57 items on linux-64 (56 downloads, 1 build)
PYPI = "v7-pypi-wheel-and-local-path.yml"  # two wheels from a custom index, one path entry
LOCAL_PKG = '[project]\nname = "local-pkg"\nversion = "0.1"\n[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
LONG_CHANNEL = "https://artifactory.corp.example.com/artifactory/api/conda/conda-forge-remote"


@pytest.fixture(autouse=True)
def _no_pixi(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIXI_PACK_SRC_PIXI", "/nonexistent/pixi")
    monkeypatch.delenv("COLUMNS", raising=False)


def _workspace(tmp_path: Path, sample: str, *, channel: str | None = None) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    text = (SAMPLES / sample).read_text()
    if channel is not None:
        text = text.replace("https://prefix.dev/conda-forge", channel)
    (root / "pixi.lock").write_text(text)
    (root / "pixi.toml").write_text(PIXI_TOML)
    if sample == PYPI:  # its path entry, so that a pack of it would not fail
        (root / "local-pkg").mkdir()
        (root / "local-pkg" / "pyproject.toml").write_text(LOCAL_PKG)
    return root


def _plan_section(out: str) -> list[str]:
    """The lines of the per-platform part (before the pixi build invocations)."""
    lines = out.splitlines()
    end = next(i for i, line in enumerate(lines) if "pixi build invocation(s) in all" in line)
    start = next(i for i, line in enumerate(lines) if line.startswith("default on "))
    return lines[start:end]


# -- 1. results on stdout, everything else on stderr


def test_inspect_redirected_keeps_the_plan(tmp_path: Path) -> None:
    """`pixi-pack-src inspect . > plan.txt`: the plan is in the file, not on the terminal."""
    root = _workspace(tmp_path, BIG)
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    env["PYTHONPATH"] = str(REPO / "src")
    env["PIXI_PACK_SRC_PIXI"] = "/nonexistent/pixi"
    with (tmp_path / "plan.txt").open("w") as fh:
        proc = subprocess.run(
            [sys.executable, "-m", "pixi_pack_src", "inspect", ".", "-p", "linux-64"],
            cwd=root,
            stdout=fh,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
    assert proc.returncode in (0, 1), proc.stderr  # 1 once inspect fails like pack would
    plan_text = (tmp_path / "plan.txt").read_text()
    assert "default on linux-64\n" in plan_text
    assert "     libvulkan-loader    1.4.341.0   195.1 KiB\n" in plan_text
    assert "default on linux-64" not in proc.stderr
    assert "cannot tell which build backend sdl_example" in proc.stderr
    # COLUMNS unset and not a terminal: 80 columns, and no line of the plan is longer
    assert all(len(line) <= 80 for line in _plan_section(plan_text))
    assert "\x1b[" not in plan_text  # no colour in a file
    assert not any(line.endswith(" ") for line in plan_text.splitlines())


# -- 2. the inspect layout


@pytest.mark.parametrize("width", [80, 120, 200])
def test_inspect_layout_at_width(
    width: int, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`COLUMNS=<width> pixi-pack-src inspect . -p linux-64` on a 57-item real lock: one line
    per download, the origin once per group, nothing folded, nothing dropped."""
    monkeypatch.setenv("COLUMNS", str(width))
    root = _workspace(tmp_path, BIG)
    run(["inspect", str(root), "-p", "linux-64"])
    out = capsys.readouterr().out
    section = _plan_section(out)
    assert all(len(line) <= width for line in section), [s for s in section if len(s) > width]
    assert section[:3] == [
        "default on linux-64",
        "  57 items: 56 download (38.1 MiB), 1 build (pixi); 1 pixi build invocation(s)",
        "  download from prefix.dev/conda-forge/linux-64 (56 items, 38.1 MiB)",
    ]
    assert out.count("prefix.dev/conda-forge/linux-64") == 1  # once, in the heading
    assert "https://" not in "\n".join(section)
    # every item is whole on its line: name, version, size (no column dropped or folded)
    doc_items = _json_items(root, capsys)
    for name, version, size in doc_items:
        if size is not None:
            assert re.search(
                rf"^     {re.escape(name)} +{re.escape(version)} +[0-9.]+ \S+$", out, re.M
            )
    # a 57-item plan in at most ~2 lines an item (headings and totals included)
    assert len(section) <= 2 * 57
    assert len(section) <= 57 + 8  # in fact: one line a download, 3 for the build
    assert out.index("A pack would fail") < out.index("default on linux-64")  # problems first


def _json_items(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> list[tuple[str, str, int | None]]:
    run(["inspect", str(root), "-p", "linux-64", "--json"])
    doc = json.loads(capsys.readouterr().out)
    return [(i["name"], i["version"], i["size"]) for i in doc["platforms"][0]["items"]]


def test_inspect_long_channel_url_is_shortened_not_folded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`COLUMNS=80 pixi-pack-src inspect .` with a long mirror URL: `host/…/subdir` in the
    heading, the full URL in `--json`."""
    monkeypatch.setenv("COLUMNS", "80")
    root = _workspace(tmp_path, BIG, channel=LONG_CHANNEL)
    run(["inspect", str(root), "-p", "linux-64"])
    out = capsys.readouterr().out
    assert "  download from artifactory.corp.example.com/…/linux-64 (56 items, 38.1 MiB)\n" in out
    assert all(len(line) <= 80 for line in _plan_section(out))
    run(["inspect", str(root), "-p", "linux-64", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert doc["platforms"][0]["items"][0]["source"].startswith(LONG_CHANNEL + "/linux-64/")


def test_shorten() -> None:
    assert shorten("prefix.dev/conda-forge/linux-64", 80) == "prefix.dev/conda-forge/linux-64"
    origin = "artifactory.corp.example.com/artifactory/api/conda/conda-forge-remote/linux-64"
    assert shorten(origin, 60) == "artifactory.corp.example.com/…/conda-forge-remote/linux-64"
    assert shorten(origin, 40) == "artifactory.corp.example.com/…/linux-64"
    assert shorten("a-very-long-host-name-without-any-slash.example.com", 20) == (
        "a-very-long-host-na…"
    )
    assert all(len(shorten(origin, n)) <= n for n in range(8, 90))


def test_inspect_pypi_groups_by_index(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`COLUMNS=80 pixi-pack-src inspect . -p linux-64` on wheels from a custom index."""
    monkeypatch.setenv("COLUMNS", "80")
    root = _workspace(tmp_path, PYPI)
    assert run(["inspect", str(root), "-p", "linux-64"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[:8] == [
        "default on linux-64",
        "  3 items: 2 download (size unknown), 1 build wheel; 2 of unknown size",
        "  download from my-custom-index.example.com/simple (2 items, size unknown)",
        "     numpy      1.26.0           ?",
        "     requests   2.31.0           ?",
        "  build wheel (1 item)",
        "     local-pkg  source-tree ./local-pkg [source-tree -> wheel]",
        "",
    ]


# -- 3. global options before or after the sub-command


@pytest.mark.parametrize(
    ("argv", "verbosity"),
    [
        (["inspect", "{root}", "-v"], 1),
        (["inspect", "-q", "{root}"], -1),
        (["-v", "inspect", "{root}", "-v"], 2),
        (["-q", "inspect", "{root}", "-vvv"], 2),
    ],
)
def test_global_verbosity_after_the_command(
    argv: list[str], verbosity: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`pixi-pack-src inspect . -v`, `inspect -q .`: no `No such option`."""
    root = _workspace(tmp_path, PYPI)
    code = run([a.replace("{root}", str(root)) for a in argv] + ["-p", "linux-64"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert STATE.verbosity == verbosity


def test_global_options_after_pack_and_unpack(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`pixi-pack-src pack . --no-progress --color never`, `unpack x.tar --no-progress`."""
    STATE.no_progress = False
    code = run(["pack", str(tmp_path / "missing"), "--no-progress", "--color", "never"])
    err = capsys.readouterr().err
    assert "No such option" not in err
    assert code == 2
    assert (STATE.no_progress, STATE.color) == (True, "never")
    code = run(["unpack", str(tmp_path / "x.tar"), "--color", "always", "-qq"])
    assert "No such option" not in capsys.readouterr().err
    assert (STATE.color, STATE.verbosity) == ("always", -2)


def test_global_option_from_the_environment_is_read_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`PIXI_PACK_SRC_COLOR=always pixi-pack-src inspect --json .`: the root reads it."""
    monkeypatch.setenv("PIXI_PACK_SRC_COLOR", "always")
    root = _workspace(tmp_path, PYPI)
    assert run(["inspect", str(root), "-p", "linux-64", "--json"]) == 0
    assert STATE.color == "always"
    json.loads(capsys.readouterr().out)


# -- 4. help and completion

COMMANDS = ("pack", "unpack", "inspect", "completion")
PYTHON_TYPES = re.compile(r"<(int|float|str|path|list|text|file|directory)\b[^>]*>")


@pytest.mark.parametrize("command", COMMANDS)
def test_help_metavars_name_what_is_expected(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`pixi-pack-src <command> --help`: FILE, DIR, SECONDS, N, PLATFORM, ENV; no Python types."""
    assert run([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert not PYTHON_TYPES.search(out), PYTHON_TYPES.findall(out)
    assert "-v, --verbose" in out  # global options, here too
    assert "--no-progress" in out


def test_pack_help_metavars(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`COLUMNS=200 pixi-pack-src pack --help`."""
    monkeypatch.setenv("COLUMNS", "200")
    assert run(["pack", "--help"]) == 0
    out = capsys.readouterr().out
    for shown in (
        "-o, --output-file FILE",
        "--use-cache, --cache-dir DIR",
        "--timeout SECONDS",
        "--retries N",
        "--concurrent-downloads N",
        "-i, --inject FILE",
        "-p, --platform PLATFORM",
        "-e, --environment ENV",
        "--build-timeout SECONDS",
        "--report FILE",
        "  MANIFEST_PATH  ",
    ):
        assert shown in out, shown


def test_root_help_has_whole_descriptions(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`COLUMNS=80 pixi-pack-src --help`: one whole line per command, never cut with `...`."""
    monkeypatch.setenv("COLUMNS", "80")
    assert run(["--help"]) == 0
    out = capsys.readouterr().out
    commands = [c for c in out.split("Commands:\n", 1)[1].splitlines() if c.strip()]
    assert not any("..." in c for c in commands)
    # one line per command (a wrapped description would continue on an indented line)
    assert all(re.match(r"^  [a-z-]+ +[A-Z]", c) for c in commands), commands
    for name in COMMANDS:
        (line,) = [c for c in commands if c.startswith(f"  {name} ")]
        assert len(line) <= 80


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish", "powershell"])
def test_completion_script(shell: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`pixi-pack-src completion --shell <shell>`: a script on stdout."""
    assert run(["completion", "--shell", shell]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "_PIXI_PACK_SRC_COMPLETE" in out
    assert f"complete_{shell}" in out
    assert "pixi-pack-src" in out


def test_completion_unknown_shell_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """`pixi-pack-src completion --shell tcsh`."""
    assert run(["completion", "--shell", "tcsh"]) == 2
    assert "tcsh" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completes_commands_and_options(tmp_path: Path) -> None:
    """`eval "$(pixi-pack-src completion --shell bash)"`, then `pixi-pack-src pa<TAB>` and
    `pixi-pack-src pack --no-p<TAB>` (the answer the script asks the program for)."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    program = [sys.executable, "-m", "pixi_pack_src"]

    def complete(words: str, cword: int) -> list[str]:
        proc = subprocess.run(
            program,
            env={
                **env,
                "_PIXI_PACK_SRC_COMPLETE": "complete_bash",
                "COMP_WORDS": words,
                "COMP_CWORD": str(cword),
            },
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.split()

    assert complete("pixi-pack-src pa", 1) == ["pack"]
    assert complete("pixi-pack-src pack --no-p", 2) == ["--no-progress"]
    assert "bash" in complete("pixi-pack-src completion --shell ", 3)


# -- 6. waiting is visible (the reporter; the end-to-end run is in test_cli_waiting.py)


def _reporter(*, live: bool = False) -> tuple[RichReporter, io.StringIO]:
    buf = io.StringIO()
    console = Console(file=buf, width=120, no_color=True, markup=False, emoji=False)
    return RichReporter(console, live=live, quiet=False), buf


def test_a_silent_transfer_is_shown_waiting_in_a_log() -> None:
    reporter, buf = _reporter()
    reporter.stage_started("download", items=1)
    reporter.task_started("k", label="a-1.0-0.conda", total_bytes=10)
    deadline = time.monotonic() + 20  # the notice comes after WAIT_NOTICE (1 s)
    while "⏳" not in buf.getvalue() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert buf.getvalue() == "⏳ waiting for a-1.0-0.conda: nothing received for 1 s\n"
    reporter.task_reset("k")
    reporter.task_waiting("k", reason="HTTP 503 Service Unavailable", retry_in=2.0)
    reporter.task_finished("k", outcome="failed", detail="HTTP 503 Service Unavailable")
    reporter.stage_finished("download")
    assert buf.getvalue().splitlines()[1:] == [
        "↻ a-1.0-0.conda: HTTP 503 Service Unavailable; retry in 2.0 s",
        "❌ failed a-1.0-0.conda: HTTP 503 Service Unavailable",
    ]


def test_builds_are_never_shown_waiting_for_a_server() -> None:
    reporter, buf = _reporter()
    reporter.stage_started("build", items=1)
    reporter.task_started("b", label="pkg [linux-64]")
    time.sleep(1.5)
    reporter.task_finished("b", outcome="built")
    assert buf.getvalue() == "✅ built pkg [linux-64]\n"


def test_the_live_state_column() -> None:
    task = _Task("a.conda", 10, network=True, started=100.0, last=100.0)
    assert task.state(100.5) == ""
    assert task.state(103.2) == "waiting 3 s"
    task.retry_at, task.reason = 105.0, "HTTP 503"
    assert task.state(103.2) == "retry in 2 s (HTTP 503)"
    build = _Task("pkg", None, network=False, started=100.0, last=100.0)
    assert build.state(200.0) == ""


def test_connect_timeout_option_reaches_the_pack(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`pixi-pack-src pack --connect-timeout 2.5 --timeout 9` (and the env var)."""
    seen: list[tuple[float, float]] = []

    def fake_pack(options: Any, **kwargs: object) -> None:
        seen.append((options.connect_timeout, options.timeout))
        raise PixiPackSrcError("stop here")

    monkeypatch.setattr(cli_pack, "pack", fake_pack)
    assert run(["pack", "--connect-timeout", "2.5", "--timeout", "9"]) == 1
    monkeypatch.setenv("PIXI_PACK_SRC_CONNECT_TIMEOUT", "4")
    assert run(["pack"]) == 1
    assert seen == [(2.5, 9.0), (4.0, 60.0)]
    assert run(["pack", "--connect-timeout", "0"]) == 2  # a usage error
    assert "--connect-timeout" in capsys.readouterr().err


def test_an_abandoned_transfer_waits_no_more() -> None:
    """A transfer cancelled by another's failure never finishes: the stage's end stops it."""
    reporter, buf = _reporter()
    reporter.stage_started("download", items=2)
    reporter.task_started("k", label="a-1.0-0.conda", total_bytes=10)
    reporter.stage_finished("download")
    time.sleep(1.5)
    assert buf.getvalue() == ""


def test_nested_command_takes_global_options_and_prints_its_result_on_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`pixi-pack-src cache verify --use-cache DIR -v`."""
    assert run(["cache", "verify", "--use-cache", str(tmp_path), "-v", "--color", "never"]) == 0
    out, err = capsys.readouterr()
    assert out == f"✅ re-hashed 0 cache entries (0.0 MiB) in {tmp_path}\n"
    assert "No such option" not in err
    assert STATE.verbosity == 1


# -- 7. the message nits


def _cut_tar(tmp_path: Path) -> Path:
    data = b'{"version": 1, "platform": "linux-64"}' * 40
    info = tarfile.TarInfo("pixi-pack.json")
    info.size = len(data)
    with tarfile.open(tmp_path / "full.tar", "w") as tf:
        tf.addfile(info, io.BytesIO(data))
    cut = tmp_path / "cut.tar"
    cut.write_bytes((tmp_path / "full.tar").read_bytes()[:100])
    return cut


@pytest.mark.parametrize("command", ["unpack", "verify"])
def test_a_tar_cut_at_100_bytes_is_truncated(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`pixi-pack-src unpack cut.tar` / `verify cut.tar`, cut at 100 bytes: like every other
    truncation, "truncated ... copy or download it again" (exit 1)."""
    cut = _cut_tar(tmp_path)
    argv = [command, str(cut)] + (["-o", str(tmp_path / "out")] if command == "unpack" else [])
    assert run(argv) == 1
    out, err = capsys.readouterr()
    if command == "verify":  # a finding is verify's result: stdout
        assert out == f"unreadable: {cut} is truncated: it ends inside its first header\n"
        return
    assert f"error: {cut} is truncated: it ends inside its first header\n" in err
    assert "help: the archive was cut short; copy or download it again\n" in err
    assert "not a tar archive" not in err


def test_a_tar_cut_at_100_bytes_on_stdin(tmp_path: Path) -> None:
    """`pixi-pack-src unpack - < cut.tar`."""
    cut = _cut_tar(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    with cut.open("rb") as stdin:
        proc = subprocess.run(
            [sys.executable, "-m", "pixi_pack_src", "unpack", "-", "-o", str(tmp_path / "o")],
            stdin=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
    assert proc.returncode == 1
    assert (
        "error: the archive on standard input is truncated: it ends inside its first header"
        in proc.stderr
    )


def test_the_live_display_shows_waiting_and_the_retry_countdown() -> None:
    """On a terminal: `waiting N s` in the silent file's bar, then `retry in N s (reason)`."""
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=140, no_color=True, highlight=False)
    reporter = RichReporter(console, live=True, quiet=False)
    reporter.stage_started("download", items=1)
    reporter.task_started("k", label="a-1.0-0.conda", total_bytes=100)
    reporter._tasks["k"].last -= 3  # three silent seconds, without sleeping them
    assert reporter._progress is not None
    reporter._progress.refresh()
    assert "a-1.0-0.conda" in buf.getvalue()
    assert "waiting 3 s" in buf.getvalue()
    reporter.task_waiting("k", reason="HTTP 503", retry_in=4.0)
    reporter._progress.refresh()
    reporter.task_finished("k", outcome="failed", detail="HTTP 503")
    reporter.stage_finished("download")
    out = buf.getvalue()
    assert re.search(r"retry in [34] s \(HTTP 503\)", out)
    assert "↻ a-1.0-0.conda: HTTP 503; retry in 4.0 s" in out  # also kept above the bars
    assert "❌ failed a-1.0-0.conda: HTTP 503" in out


def test_readme_exit_codes_are_the_ones_errors_py_uses() -> None:
    """README's exit-code table names exactly the codes the error funnel returns."""
    text = (REPO / "README.md").read_text()
    table = text.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    codes = {int(m) for m in re.findall(r"^\| (\d+) \|", table, flags=re.M)}
    assert codes == {
        errors.EXIT_OK,
        errors.EXIT_ERROR,
        errors.EXIT_USAGE,
        errors.EXIT_DOWNLOAD,
        errors.EXIT_BUILD,
        errors.EXIT_INTERRUPTED,
    }


@pytest.mark.parametrize("width", [30, 40, 60])
def test_narrow_terminals_lose_no_character_of_a_note(
    width: int, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`COLUMNS=40 pixi-pack-src inspect . -p win-64`: the build note folds, nothing is cut;
    names that do not fit end with a visible `…`."""
    monkeypatch.setenv("COLUMNS", str(width))
    root = _workspace(tmp_path, BIG)
    run(["inspect", str(root), "-p", "win-64"])
    out = capsys.readouterr().out
    section = _plan_section(out)
    assert all(len(line) <= width for line in section), section
    note = (
        ". [partial, cxx_compiler=vs2022, target_platform=win-64, git "
        "github.com/…/pixi-build-testsuite@34d90eaf81fa]"
    )
    build = "\n".join(section[section.index("  build (pixi) (1 item)") + 1 :])
    assert "".join(note.split()) in "".join(build.split())
