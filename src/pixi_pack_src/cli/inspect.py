"""`pixi-pack-src inspect`: what a pack would download, copy and build, and from where.

Reads the lock only: no network, no builds. A table per platform goes to stderr; ``--json``
prints one versioned document on stdout instead (see :mod:`pixi_pack_src.plan`).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer
from rattler.platform import Subdir
from rich import box
from rich.console import Console
from rich.table import Table

from .. import __version__
from ..errors import SelectionError, UsageError
from ..lockfile import Lock, load_lock
from ..model import CondaSource, Platform
from ..plan import PackPlan, PackPlans, PlanItem, make_plans
from ..ui import human_bytes, make_console, resolve_color
from ..workspace import locate_workspace
from . import STATE, app

log = logging.getLogger("pixi_pack_src.cli.inspect")

_ACTIONS = ("download", "copy", "build-conda", "build-wheel", "skip")


@app.command("inspect")
def inspect_command(
    manifest_path: Annotated[
        Path | None,
        typer.Argument(
            metavar="MANIFEST_PATH",
            help="pixi.toml, pyproject.toml, pixi.lock or workspace directory [default: .]",
            show_default=False,
        ),
    ] = None,
    manifest_option: Annotated[
        Path | None,
        typer.Option(
            "-m",
            "--manifest-path",
            metavar="PATH",
            help="Alias of MANIFEST_PATH (as in pixi).",
            show_default=False,
        ),
    ] = None,
    environment: Annotated[
        str,
        typer.Option(
            "-e",
            "--environment",
            metavar="ENV",
            envvar="PIXI_PACK_SRC_ENVIRONMENT",
            show_envvar=True,
            help="The environment to inspect.",
        ),
    ] = "default",
    platform: Annotated[
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
    ] = None,
    all_platforms: Annotated[
        bool,
        typer.Option("--all-platforms", help="Every platform locked for the environment."),
    ] = False,
    ignore_pypi_non_wheel: Annotated[
        bool,
        typer.Option(
            "--ignore-pypi-non-wheel",
            envvar="PIXI_PACK_SRC_IGNORE_PYPI_NON_WHEEL",
            show_envvar=True,
            help="Plan to skip PyPI sdists, git and directory entries instead of building them.",
        ),
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON document on stdout instead.")
    ] = False,
) -> None:
    """Show what a pack would download, copy and build (no network, no builds)."""
    if manifest_path is not None and manifest_option is not None:
        raise UsageError(
            "pass MANIFEST_PATH or --manifest-path, not both",
            hint="drop one of them",
        )
    if all_platforms and platform:
        raise UsageError("--all-platforms and -p/--platform exclude each other")
    workspace = locate_workspace(manifest_path or manifest_option)
    lock = load_lock(workspace.lock_path)
    environment_platforms = lock.platforms(environment)  # also checks the environment
    targets = _targets(lock, environment, platform or [], all_platforms, environment_platforms)
    envs = [lock.select(environment, p) for p in targets]
    plans = make_plans(envs, ignore_pypi_non_wheel=ignore_pypi_non_wheel)

    if json_output:
        sys.stdout.write(json.dumps(plans.to_json(tool_version=__version__), indent=2) + "\n")
    elif STATE.verbosity > -2:
        _render(make_console(resolve_color(STATE.color)), plans, workspace.root)
    for warning in plans.warnings:
        log.warning("%s", warning)
    for problem in plans.problems:
        log.warning("a pack would fail: %s", problem)


def _targets(
    lock: Lock,
    environment: str,
    values: list[str],
    all_platforms: bool,
    environment_platforms: list[Platform],
) -> list[Platform]:
    if all_platforms:
        return environment_platforms
    if values:
        chosen: dict[str, Platform] = {}
        for value in values:
            resolved = lock.resolve_platform(environment, value)
            chosen.setdefault(resolved.name, resolved)
        return list(chosen.values())
    host = str(Subdir.current())
    try:
        return [lock.resolve_platform(environment, host)]
    except SelectionError as exc:
        names = ", ".join(p.name for p in environment_platforms) or "none"
        raise SelectionError(
            f"this machine's platform {host} is not locked for environment "
            f"'{environment}' in {lock.path.name}; locked: {names}",
            hint="pass -p PLATFORM or --all-platforms",
        ) from exc


def _render(console: Console, plans: PackPlans, root: Path) -> None:
    for plan in plans.plans:
        _render_plan(console, plan, root)
    if len(plans.plans) > 1 and plans.builds:
        shared = [b for b in plans.builds if len(b.platforms) > 1]
        if shared:
            console.print(
                f"{len(plans.builds)} pixi build invocation(s) in all; "
                f"{len(shared)} noarch build(s) shared across platforms",
                soft_wrap=True,
            )


def _render_plan(console: Console, plan: PackPlan, root: Path) -> None:
    platform = plan.platform
    title = f"{plan.environment} on {platform.name}"
    if platform.subdir != platform.name:
        title += f" (subdir {platform.subdir})"
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("action", no_wrap=True)
    table.add_column("name", no_wrap=True)
    table.add_column("version", no_wrap=True)
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("from", overflow="fold")
    for item in plan.items:
        size = human_bytes(item.hashes.size) if item.action in ("download", "copy") else ""
        table.add_row(_action_label(item), item.name, item.version or "", size, _from(item, root))
    console.print(table)
    for build in plan.builds:
        console.print(f"  $ {' '.join(build.argv)}", soft_wrap=True)
        if build.backend is not None:
            backend = build.backend
            pin = "pinned" if backend.is_pinned else "not pinned"
            console.print(
                f"    backend: {backend.name} {backend.version or '(any version)'} ({pin})",
                soft_wrap=True,
            )
    totals = plan.totals
    parts = [f"{totals.by_action[a]} {a}" for a in _ACTIONS if totals.by_action.get(a)]
    unknown = f" + {totals.unknown_size} of unknown size" if totals.unknown_size else ""
    console.print(
        f"{platform.name}: {totals.items} items ({', '.join(parts) or 'nothing'}); "
        f"download {human_bytes(totals.download_bytes)}{unknown}, "
        f"copy {human_bytes(totals.copy_bytes)}, "
        f"{totals.builds} pixi build invocation(s)",
        soft_wrap=True,
    )
    console.print("")


def _action_label(item: PlanItem) -> str:
    if item.action == "build-conda":
        return "build (pixi)"
    if item.action == "build-wheel":
        return f"build wheel ({item.kind})"
    if item.kind == "conda":
        return item.action
    return f"{item.action} {item.kind}"


def _from(item: PlanItem, root: Path) -> str:
    """A short "where from" for humans (the JSON has the full URL or path)."""
    entry = item.entry
    text: str
    if isinstance(entry, CondaSource):
        text = _shorten(item.source, root)
        extras = ["full" if entry.is_full else "partial"]
        extras += [f"{k}={v}" for k, v in sorted(entry.variants.items())]
        if entry.source is not None and "git" in entry.source:
            rev = entry.source.get("rev", "?")[:12]
            extras.append(f"source {entry.source['git']}@{rev}")
        text += f" [{', '.join(extras)}]"
    elif item.action == "download":
        parts = urlsplit(item.source)
        directory = parts.path.rsplit("/", 1)[0]
        text = f"{parts.netloc}{directory}" if item.kind == "conda" else parts.netloc
    else:
        text = _shorten(item.source, root)
    if item.action == "skip" and item.reason:
        text += f" (skipped: {item.reason})"
    return text


def _shorten(source: str, root: Path) -> str:
    """Paths below the workspace are shown relative to it."""
    path = Path(source)
    if path.is_absolute():
        try:
            rel = path.relative_to(root)
        except ValueError:
            return source
        return f"./{rel.as_posix()}" if str(rel) != "." else "."
    return source
