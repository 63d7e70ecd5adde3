"""The ``pixi`` executable: find it, check its version, pick ``build`` or ``publish``, run it.

Policy (docs/pixi-build.md §1, §2, §4):

- The executable comes from ``--pixi PATH``, then ``PIXI_PACK_SRC_PIXI``, then ``PATH``.
- ``pixi --version`` must print ``pixi X.Y.Z``; below 0.68 it is refused (such a pixi cannot
  have written a v7 lock).
- ``pixi build --help`` tells whether ``build`` still exists: exit 0 -> we run ``pixi build``
  (deprecated but it still builds packages whose run dependencies are source packages, which
  ``pixi publish`` refuses from 0.75 on); exit 2 (clap: unknown subcommand) -> ``pixi publish
  --target-dir``.
- Every invocation goes through :func:`pixi_pack_src.proc.run`: argv only, output to a log
  file, streamed at ``-v``.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pixi_pack_src import proc
from pixi_pack_src.errors import BuildError, CommandError

log = logging.getLogger(__name__)

ENV_PIXI = "PIXI_PACK_SRC_PIXI"
MIN_VERSION = (0, 68, 0)
PUBLISH_SELF_CONTAINED = (0, 75, 0)  # `pixi publish` refuses source run-dependencies from here
PROBE_TIMEOUT = 120.0
INSTALL_HINT = (
    "install pixi >= 0.68 (https://pixi.sh), or pass --pixi PATH / set PIXI_PACK_SRC_PIXI"
)

PixiCommand = Literal["build", "publish"]
_VERSION_RE = re.compile(r"^pixi\s+v?(\d+)\.(\d+)\.(\d+)", re.MULTILINE)


@dataclass(frozen=True)
class PixiInfo:
    """The ``pixi`` we run: where it is, its version, and which subcommand builds (and why)."""

    path: Path
    version: str
    command: PixiCommand
    why: str

    @property
    def version_tuple(self) -> tuple[int, int, int]:
        return parse_version(self.version)

    @property
    def output_flag(self) -> str:
        return "--output-dir" if self.command == "build" else "--target-dir"


def parse_version(text: str) -> tuple[int, int, int]:
    """``"pixi 0.77.0"`` or ``"0.77.0"`` -> ``(0, 77, 0)``; ``ValueError`` otherwise."""
    match = _VERSION_RE.search(text if text.lstrip().startswith("pixi") else f"pixi {text}")
    if match is None:
        raise ValueError(f"not a pixi version: {text.strip()[:80]!r}")
    return int(match[1]), int(match[2]), int(match[3])


def find_pixi(explicit: str | None = None) -> Path:
    """The executable from ``explicit``, ``$PIXI_PACK_SRC_PIXI`` or ``PATH``."""
    given = explicit or os.environ.get(ENV_PIXI) or None
    source = "--pixi" if explicit else ENV_PIXI
    if given:
        candidate = Path(given).expanduser()
        if os.sep not in given and not candidate.exists():
            found = shutil.which(given)
            if found is None:
                raise BuildError(f"{source}: `{given}` is not on PATH", hint=INSTALL_HINT)
            return Path(found)
        if not candidate.is_file() or not os.access(candidate, os.X_OK):
            raise BuildError(f"{source}: {candidate} is not an executable file", hint=INSTALL_HINT)
        return candidate.absolute()
    found = shutil.which("pixi")
    if found is None:
        raise BuildError(
            "pixi is needed to build conda source packages, and it is not on PATH",
            hint=INSTALL_HINT,
        )
    return Path(found)


def _probe(exe: Path, *args: str) -> proc.RunResult:
    """``pixi <args>`` with its output captured (any exit code); a pixi that cannot be run
    at all is a :class:`BuildError`."""
    try:
        return proc.run(
            [exe, *args],
            capture_stdout=True,
            check=False,
            timeout=PROBE_TIMEOUT,
            what=" ".join(("pixi", *args)),
        )
    except CommandError as exc:
        raise BuildError(f"cannot run {exe}: {exc.message}", hint=INSTALL_HINT) from None


def pixi_version(exe: Path) -> str:
    """``X.Y.Z`` from ``pixi --version`` (refused below 0.68)."""
    result = _probe(exe, "--version")
    if result.returncode != 0:
        raise BuildError(
            f"`{exe} --version` failed with exit code {result.returncode}",
            output_tail=result.output_tail,
            hint=INSTALL_HINT,
        )
    try:
        major, minor, patch = parse_version(result.stdout)
    except ValueError:
        raise BuildError(
            f"`{exe} --version` printed {result.stdout.strip()[:80]!r}, not `pixi X.Y.Z`",
            hint="is this the pixi package manager? (the PyPI package named `pixi` is not)",
        ) from None
    version = f"{major}.{minor}.{patch}"
    check_version(version, exe)
    return version


def check_version(version: str, exe: Path | str = "pixi") -> None:
    if parse_version(version) < MIN_VERSION:
        raise BuildError(
            f"{exe} is pixi {version}, which cannot read lock files of version 7; "
            "pixi-pack-src needs pixi >= 0.68 to build conda source packages",
            hint="upgrade pixi (`pixi self-update`) or pass --pixi PATH to a newer one",
        )


def probe_command(exe: Path, version: str) -> tuple[PixiCommand, str]:
    """``("build", why)`` when ``pixi build`` exists, else ``("publish", why)``."""
    result = _probe(exe, "build", "--help")
    if result.returncode == 0:
        return "build", (
            f"using `pixi build`: pixi {version} still has it (deprecated since 0.68, hidden "
            "since 0.69); unlike `pixi publish` (0.75+) it builds packages whose run "
            "dependencies are other source packages (prefix-dev/pixi#6526)"
        )
    if result.returncode == 2:
        return "publish", (
            f"using `pixi publish --target-dir`: pixi {version} has no `pixi build` "
            "(`pixi build --help` exited with 2, unknown subcommand)"
        )
    raise BuildError(
        f"`{exe} build --help` failed with exit code {result.returncode}",
        output_tail=result.output_tail,
        hint="check that this pixi works: run `pixi build --help` yourself",
    )


def detect(explicit: str | None = None) -> PixiInfo:
    exe = find_pixi(explicit)
    version = pixi_version(exe)
    command, why = probe_command(exe, version)
    return PixiInfo(path=exe, version=version, command=command, why=why)


def build_argv(
    exe: str | Path,
    command: PixiCommand,
    *,
    package: str | Path,
    output_dir: str | Path,
    target_platform: str,
    verbosity: int = 0,
    auth_file: str | Path | None = None,
    config_file: str | Path | None = None,
) -> list[str]:
    """The one command line we run per (package location, target subdir)."""
    argv = [
        os.fspath(exe),
        command,
        "--path",
        os.fspath(package),
        "--output-dir" if command == "build" else "--target-dir",
        os.fspath(output_dir),
        "--target-platform",
        target_platform,
        "--color",
        "never",
        "--no-progress",
    ]
    if auth_file is not None:
        argv += ["--auth-file", os.fspath(auth_file)]
    if config_file is not None:
        argv += ["--config-file", os.fspath(config_file)]
    if verbosity >= 2:
        argv.append("-" + "v" * min(3, verbosity - 1))
    return argv


@dataclass(frozen=True)
class Invocation:
    """What one ``pixi build`` run returned (it never raises for a non-zero exit)."""

    argv: tuple[str, ...]
    returncode: int
    output_tail: str
    log_file: Path


def run_build(
    argv: Sequence[str],
    *,
    cwd: Path,
    log_file: Path,
    env_overlay: Mapping[str, str] | None = None,
    stream: bool = False,
    timeout: float | None = None,
    what: str,
    cancel: threading.Event | None = None,
) -> Invocation:
    """Run ``argv`` through :func:`proc.run`; a timeout or ``cancel`` becomes return code -9."""
    try:
        result = proc.run(
            argv,
            cwd=cwd,
            env_overlay=env_overlay,
            log_file=log_file,
            stream=stream,
            timeout=timeout,
            check=False,
            what=what,
            cancel=cancel,
        )
    except CommandError as exc:  # not found (127) or timed out (-9)
        return Invocation(tuple(argv), exc.returncode, exc.output_tail or exc.message, log_file)
    return Invocation(tuple(argv), result.returncode, result.output_tail, log_file)
