"""Finding pixi, its version and subcommand, the command line, and failure messages."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest
from testworld.pixi_standin.workspaces import conda_source

from pixi_pack_src import proc
from pixi_pack_src.builders.conda import pixi_cli
from pixi_pack_src.builders.conda.jobs import plan_source_builds
from pixi_pack_src.builders.conda.pixi_cli import PixiInfo
from pixi_pack_src.builders.conda.run import failure
from pixi_pack_src.errors import BuildError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pixi 0.77.0\n", (0, 77, 0)),
        ("pixi 0.68.0-dev.1\n", (0, 68, 0)),
        ("0.75.2", (0, 75, 2)),
        ("pixi v1.2.3", (1, 2, 3)),
    ],
)
def test_parse_version(text: str, expected: tuple[int, int, int]) -> None:
    assert pixi_cli.parse_version(text) == expected


@pytest.mark.parametrize("text", ["", "pixi", "Pixi image downloader 1.0", "pixi 0.77"])
def test_parse_version_rejects_other_programs(text: str) -> None:
    with pytest.raises(ValueError, match="not a pixi version"):
        pixi_cli.parse_version(text)


class FakeRun:
    """Replaces :func:`proc.run`: answers ``--version`` and ``build --help``."""

    def __init__(self, version_out: str = "pixi 0.77.0\n", help_code: int = 0) -> None:
        self.version_out = version_out
        self.help_code = help_code
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str | os.PathLike[str]], **kw: object) -> proc.RunResult:
        args = [os.fspath(a) for a in argv]
        self.calls.append(args[1:])
        if args[1:] == ["--version"]:
            return proc.RunResult(args, 0, "", None, self.version_out)
        if args[1:] == ["build", "--help"]:
            tail = "error: unrecognized subcommand 'build'" if self.help_code == 2 else ""
            return proc.RunResult(args, self.help_code, tail, None, "")
        raise AssertionError(args)


@pytest.fixture
def exe(tmp_path: Path) -> Path:
    path = tmp_path / "bin" / "pixi"
    path.parent.mkdir()
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_detect_prefers_build_and_says_why(exe: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeRun()
    monkeypatch.setattr(proc, "run", fake)
    info = pixi_cli.detect(str(exe))
    assert (info.path, info.version, info.command, info.output_flag) == (
        exe,
        "0.77.0",
        "build",
        "--output-dir",
    )
    assert "still has it" in info.why
    assert "#6526" in info.why
    assert fake.calls == [["--version"], ["build", "--help"]]


def test_detect_falls_back_to_publish_when_build_is_gone(
    exe: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(proc, "run", FakeRun("pixi 0.90.0\n", help_code=2))
    info = pixi_cli.detect(str(exe))
    assert (info.command, info.output_flag) == ("publish", "--target-dir")
    assert "has no `pixi build`" in info.why


@pytest.mark.parametrize("version", ["0.67.9", "0.40.0"])
def test_pixi_older_than_068_is_refused(
    exe: Path, monkeypatch: pytest.MonkeyPatch, version: str
) -> None:
    monkeypatch.setattr(proc, "run", FakeRun(f"pixi {version}\n"))
    with pytest.raises(BuildError) as err:
        pixi_cli.detect(str(exe))
    assert f"pixi {version}, which cannot read lock files of version 7" in err.value.message
    assert err.value.exit_code == 4


def test_a_program_that_is_not_pixi_is_refused(exe: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(proc, "run", FakeRun("image downloader 2.0\n"))
    with pytest.raises(BuildError, match=r"not `pixi X\.Y\.Z`"):
        pixi_cli.detect(str(exe))


def test_find_pixi_order(exe: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(BuildError) as err:
        pixi_cli.find_pixi()
    assert (
        err.value.message == "pixi is needed to build conda source packages, and it is not on PATH"
    )
    monkeypatch.setenv("PATH", str(exe.parent))
    assert pixi_cli.find_pixi() == exe
    other = tmp_path / "other-pixi"
    other.write_text("#!/bin/sh\n")
    other.chmod(0o755)
    monkeypatch.setenv("PIXI_PACK_SRC_PIXI", str(other))
    assert pixi_cli.find_pixi() == other
    assert pixi_cli.find_pixi(str(exe)) == exe
    with pytest.raises(BuildError, match=r"--pixi: .* is not an executable file"):
        pixi_cli.find_pixi(str(tmp_path / "missing" / "pixi"))


def test_build_argv() -> None:
    argv = pixi_cli.build_argv(
        "/bin/pixi",
        "publish",
        package="/ws/pkg",
        output_dir="/o",
        target_platform="osx-arm64",
        verbosity=3,
        auth_file="/a.json",
    )
    assert argv == [
        "/bin/pixi",
        "publish",
        "--path",
        "/ws/pkg",
        "--target-dir",
        "/o",
        "--target-platform",
        "osx-arm64",
        "--color",
        "never",
        "--no-progress",
        "--auth-file",
        "/a.json",
        "-vv",
    ]


def _failure(
    tmp_path: Path, info: PixiInfo, code: int, *, platform: str = "linux-64"
) -> BuildError:
    src = conda_source(
        "pkg",
        "src/pkg",
        root=tmp_path,
        platform=platform,
        depends=("pkg2",),
        source_depends={"pkg2": {"path": "../pkg2"}},
    )
    (job,) = plan_source_builds({platform: [src]}, workspace_root=tmp_path, host="linux-64")
    inv = pixi_cli.Invocation(("pixi",), code, "last line", tmp_path / "pkg.log")
    return failure(job, info, inv, tmp_path / "out", timeout=None, keep_build_dir=False)


def test_publish_from_075_refusing_source_run_dependencies_gets_a_hint(tmp_path: Path) -> None:
    info = PixiInfo(Path("/bin/pixi"), "0.77.0", "publish", "")
    err = _failure(tmp_path, info, 1)
    assert err.message == "`pixi publish` of pkg (src/pkg) for linux-64 failed with exit code 1"
    assert err.hint is not None
    assert err.hint.startswith(
        "pixi 0.77.0's `pixi publish` refuses packages whose run dependencies are source "
        "packages (pkg2; prefix-dev/pixi#6526)"
    )
    assert f"the full log is {tmp_path / 'pkg.log'}" in err.hint
    assert (err.output_tail, err.log_file, err.exit_code) == ("last line", tmp_path / "pkg.log", 4)
    older = _failure(tmp_path, PixiInfo(Path("/bin/pixi"), "0.74.0", "publish", ""), 1)
    assert older.hint is not None
    assert "#6526" not in older.hint


def test_failure_messages_by_exit_code(tmp_path: Path) -> None:
    info = PixiInfo(Path("/bin/pixi"), "0.77.0", "build", "")
    assert "crashed (exit code 101" in _failure(tmp_path, info, 101).message
    assert "rejected as a usage error (exit code 2)" in _failure(tmp_path, info, 2).message
    assert "pixi not found" in _failure(tmp_path, info, 127).message
    cross = _failure(tmp_path, info, 1, platform="osx-arm64")
    assert cross.hint is not None
    assert cross.hint.startswith("build this package on a `osx-arm64` runner")
