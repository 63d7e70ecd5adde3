"""`pixi-pack-src inspect`: what a pack would download, copy and build, and from where.

Reads the lock, the package manifests and (with ``--use-cache``) the caches; may run
``pixi --version`` to show the exact ``pixi build`` command; never downloads, clones or builds.
A table per platform and the build invocations go to stderr; ``--json`` prints one versioned
document on stdout instead (see :mod:`pixi_pack_src.plan`). When a pack would fail, the
same ``error:`` as ``pack`` ends the output and the exit code is 1 (a CI pre-check).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from pixi_pack_src import __version__
from pixi_pack_src.builders.wheel.overrides import load_overrides, read_manifest_table
from pixi_pack_src.cli import STATE, app
from pixi_pack_src.cli.common import (
    AllowUnpinnedBackendsOption,
    AllPlatformsOption,
    BackendOverrideOption,
    BuildIsolationOption,
    CacheOption,
    EnvironmentOption,
    IgnorePypiNonWheelOption,
    ManifestOption,
    ManifestPath,
    OverridesOption,
    PixiOption,
    PlatformOption,
    parse_overrides,
    resolve_manifest,
)
from pixi_pack_src.cli.ui import make_console, resolve_color
from pixi_pack_src.errors import EXIT_ERROR
from pixi_pack_src.lock.lockfile import load_lock
from pixi_pack_src.lock.model import CondaSource
from pixi_pack_src.lock.workspace import locate_workspace
from pixi_pack_src.plan import (
    InspectOptions,
    PackPlan,
    PackPlans,
    PlanItem,
    SourceBuild,
    plan_lock,
    select_platforms,
)
from pixi_pack_src.redact import redact_text
from pixi_pack_src.units import human_bytes

log = logging.getLogger("pixi_pack_src.cli.inspect")

_ACTIONS = ("download", "copy", "build-conda", "build-wheel", "skip")


@app.command("inspect")
def inspect_command(
    manifest_path: ManifestPath = None,
    manifest_option: ManifestOption = None,
    environment: EnvironmentOption = "default",
    platform: PlatformOption = None,
    all_platforms: AllPlatformsOption = False,
    ignore_pypi_non_wheel: IgnorePypiNonWheelOption = False,
    use_cache: CacheOption = None,
    pixi: PixiOption = None,
    allow_unpinned_backends: AllowUnpinnedBackendsOption = False,
    backend_override: BackendOverrideOption = None,
    build_isolation: BuildIsolationOption = True,
    overrides: OverridesOption = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON document on stdout instead.")
    ] = False,
) -> None:
    """Show what a pack would download, copy and build (no downloads, no builds)."""
    workspace = locate_workspace(resolve_manifest(manifest_path, manifest_option))
    lock = load_lock(workspace.lock_path)
    lock.platforms(environment)  # checks the environment first
    targets = select_platforms(lock, environment, platform or [], all_platforms=all_platforms)
    manifest = workspace.manifest
    options = InspectOptions(
        cache_dir=use_cache,
        pixi=pixi,
        allow_unpinned_backends=allow_unpinned_backends,
        backend_overrides=parse_overrides(backend_override or ()),
        build_isolation=build_isolation,
        overrides=load_overrides(
            manifest_table=read_manifest_table(manifest) if manifest is not None else {},
            manifest_path=manifest,
            overrides_dir=overrides,
        ),
    )
    plans = plan_lock(
        lock, environment, targets, ignore_pypi_non_wheel=ignore_pypi_non_wheel, inspect=options
    )

    if json_output:
        document = json.dumps(plans.to_json(tool_version=__version__), indent=2)
        sys.stdout.write(redact_text(document) + "\n")  # lock URLs may carry credentials
    elif STATE.verbosity > -2:
        _render(make_console(resolve_color(STATE.color)), plans, workspace.root, options)
    for warning in plans.warnings:
        log.warning("%s", warning)
    refusal = plans.refusal(exit_code=EXIT_ERROR)  # the error `pack` would stop with
    if refusal is not None:
        raise refusal


def _render(console: Console, plans: PackPlans, root: Path, options: InspectOptions) -> None:
    for plan in plans.plans:
        _render_plan(console, plan, root)
    if not plans.builds:
        return
    shared = [b for b in plans.builds if len(b.platforms) > 1]
    console.print(
        f"{len(plans.builds)} pixi build invocation(s) in all"
        + (f"; {len(shared)} noarch build(s) shared across platforms" if shared else ""),
        soft_wrap=True,
    )
    for build in plans.builds:
        _render_build(console, build, root, cache=options.cache_dir is not None)
    pixi = plans.builds[0].pixi
    if pixi is not None and "error" in pixi:
        console.print(
            f"pixi was not found ({pixi['error']}); the commands show `pixi`", soft_wrap=True
        )
    elif pixi is not None:
        console.print(
            f"pixi {pixi.get('version')} at {pixi.get('path')}: {pixi.get('why')}", soft_wrap=True
        )
    console.print("")


def _render_build(console: Console, build: SourceBuild, root: Path, *, cache: bool) -> None:
    job = build.job
    console.print(
        f"  {', '.join(job.names)} [{job.target}] for {', '.join(build.platforms)}",
        soft_wrap=True,
    )
    if job.git is not None:
        sub = f", subdirectory {job.git.subdirectory}" if job.git.subdirectory else ""
        origin = f"git {job.git.url} at {job.git.rev}{sub}"
    else:
        origin = _shorten(build.origin, root)
    console.print(f"    from: {origin}", soft_wrap=True)
    console.print(f"    backend: {_backend_text(build)}", soft_wrap=True)
    if cache:
        cached = build.cached
        shown = "unknown (no usable pixi)" if cached is None else ("yes" if cached else "no")
        console.print(f"    cached: {shown}", soft_wrap=True)
    console.print(f"    $ {' '.join(build.command)}", soft_wrap=True)


def _backend_text(build: SourceBuild) -> str:
    status = build.backend
    if not status.checked:
        return "read from the checkout when building (git)"
    spec, use = status.spec, status.use
    text = "not declared (pixi picks one)"
    if spec is not None:
        pin = "pinned" if use is not None and use.pinned else "not pinned"
        if use is not None and use.override_sha256 is not None:
            pin = "overridden"
        text = f"{spec.name} {spec.version or '(any version)'} ({pin})"
    if status.problem is not None:
        text += " - a pack would fail"
    return text


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
        parts = urlsplit(redact_text(item.source))  # shown without its scheme: redact first
        directory = parts.path.rsplit("/", 1)[0]
        text = f"{parts.netloc}{directory}" if item.kind == "conda" else parts.netloc
    else:
        text = _shorten(item.source, root)
    if item.wheel_build is not None:
        text += f" [{_wheel_build_text(item.wheel_build)}]"
    if item.action == "skip" and item.reason:
        text += f" (skipped: {item.reason})"
    return text


def _wheel_build_text(doc: Mapping[str, object]) -> str:
    parts = [str(doc.get("build"))]
    overrides = doc.get("overrides")
    if isinstance(overrides, Mapping):
        applied = [
            f"{label} {', '.join(str(v) for v in values)}"
            for label, values in (
                ("patches", overrides.get("patches")),
                ("env", overrides.get("env")),
                ("config-settings", overrides.get("config-settings")),
            )
            if isinstance(values, list) and values
        ]
        parts.append("overrides: " + "; ".join(applied))
    if "cached" in doc:
        cached = doc["cached"]
        parts.append("cached" if cached else "not cached" if cached is False else "cache unknown")
    return ", ".join(parts)


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
