"""Options and helpers shared by several commands."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from pixi_pack_src.atomicfile import write_atomically
from pixi_pack_src.errors import UsageError

# Options that several commands take, spelled once: same flags, help text and env var.
ManifestPath = Annotated[
    Path | None,
    typer.Argument(
        metavar="MANIFEST_PATH",
        help="pixi.toml, pyproject.toml, pixi.lock or workspace directory [default: .]",
        show_default=False,
    ),
]
BaseOption = Annotated[
    Path | None,
    typer.Option(
        "--base",
        metavar="OLD",
        help="Make a delta against OLD, what the target already has: an earlier pack (tar or "
        "directory), a manifest from `pixi-pack-src manifest`, or an unpacked environment. "
        "Files OLD has are neither fetched, built nor written (docs/delta.md).",
        show_default=False,
    ),
]
ManifestOption = Annotated[
    Path | None,
    typer.Option(
        "-m",
        "--manifest-path",
        metavar="PATH",
        help="Alias of MANIFEST_PATH (pixi's spelling).",
        show_default=False,
    ),
]
EnvironmentOption = Annotated[
    str,
    typer.Option(
        "-e",
        "--environment",
        metavar="ENV",
        envvar="PIXI_PACK_SRC_ENVIRONMENT",
        show_envvar=True,
        help="The environment of the lock.",
    ),
]
PlatformOption = Annotated[
    list[str] | None,
    typer.Option(
        "-p",
        "--platform",
        metavar="PLATFORM",
        envvar="PIXI_PACK_SRC_PLATFORM",
        show_envvar=True,
        help="A lock platform name or conda subdir (repeatable) [default: this machine's].",
        show_default=False,
    ),
]
AllPlatformsOption = Annotated[
    bool,
    typer.Option("--all-platforms", help="Every platform locked for the environment."),
]


def cache_dir_option(help: str) -> Any:
    """The cache directory option, spelled once for every command that takes it."""
    return typer.Option(
        "--use-cache",
        "--cache-dir",
        metavar="DIR",
        envvar="PIXI_PACK_SRC_CACHE_DIR",
        show_envvar=True,
        help=help,
    )


CacheOption = Annotated[
    Path | None, cache_dir_option("Content-addressed cache of verified downloads (and builds).")
]
IgnorePypiNonWheelOption = Annotated[
    bool,
    typer.Option(
        "--ignore-pypi-non-wheel",
        envvar="PIXI_PACK_SRC_IGNORE_PYPI_NON_WHEEL",
        show_envvar=True,
        help="Skip PyPI entries that are not wheels (sdists, git, paths) with a warning.",
    ),
]
PixiOption = Annotated[
    str | None,
    typer.Option(
        "--pixi",
        metavar="PATH",
        envvar="PIXI_PACK_SRC_PIXI",
        show_envvar=True,
        help="The pixi executable for conda source builds [default: pixi on PATH].",
    ),
]
FrozenOption = Annotated[
    bool,
    typer.Option(
        "--frozen",
        envvar="PIXI_FROZEN",
        show_envvar=True,
        help="Pack the lock as it is, even when the manifest asks for dependencies it lacks "
        "(pixi's --frozen).",
    ),
]
AllowUnpinnedBackendsOption = Annotated[
    bool,
    typer.Option(
        "--allow-unpinned-backends",
        help="Warn instead of failing when a build backend is not pinned to ==x.y.z.",
    ),
]
BackendOverrideOption = Annotated[
    list[str] | None,
    typer.Option(
        "--backend-override",
        metavar="NAME=PATH",
        help="Run build backend NAME from PATH (PIXI_BUILD_BACKEND_OVERRIDE); repeatable.",
    ),
]
BuildIsolationOption = Annotated[
    bool,
    typer.Option(
        "--build-isolation/--no-build-isolation",
        help="Build wheels in isolated environments (else with the environment's packages).",
    ),
]
InjectOption = Annotated[
    list[Path] | None,
    typer.Option(
        "-i", "--inject", metavar="FILE", help="Extra .conda/.tar.bz2/.whl to add (repeatable)."
    ),
]
BuildSdistOption = Annotated[
    bool,
    typer.Option(
        "--build-sdist/--no-build-sdist",
        help="Build PyPI sdists, git and path entries into wheels (else refuse them).",
    ),
]
OverridesOption = Annotated[
    Path | None,
    typer.Option(
        "--overrides",
        metavar="DIR",
        help="Per-package build overrides: DIR/<package>/*.patch and settings.toml.",
    ),
]


def resolve_manifest(positional: Path | None, option: Path | None) -> Path | None:
    if positional is not None and option is not None and positional != option:
        raise UsageError(
            f"two manifests given: {positional} and --manifest-path {option}",
            hint="give the workspace once",
        )
    return positional or option


def parse_overrides(values: Sequence[str]) -> dict[str, Path]:
    """``--backend-override NAME=PATH`` (repeatable) -> {name: absolute path}."""
    out: dict[str, Path] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise UsageError(
                f"--backend-override {value!r} is not NAME=PATH",
                hint="e.g. --backend-override pixi-build-python=/opt/backends/pixi-build-python",
            )
        out[name.strip()] = Path(path.strip()).expanduser().resolve()
    return out


def write_report(path: Path, document: Mapping[str, Any], *, markdown: str | None = None) -> None:
    """Write ``--report FILE`` atomically: Markdown for ``.md``, else the JSON document."""
    if path.suffix.lower() in (".md", ".markdown") and markdown is not None:
        data = markdown.encode("utf-8")
    else:
        data = (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, data)
