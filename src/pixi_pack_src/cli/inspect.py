"""`pixi-pack-src inspect`: what a pack would download, copy and build, and from where.

Reads the lock, the package manifests and (with ``--use-cache``) the caches; may run
``pixi --version`` to show the exact ``pixi build`` command; never downloads, clones or builds.
The plan (see :mod:`pixi_pack_src.cli.inspect_view`) goes to stdout, warnings to stderr;
``--json`` prints one versioned document on stdout instead (see :mod:`pixi_pack_src.plan`).
When a pack would fail, the same ``error:`` as ``pack`` ends the output and the exit code
is 1 (a CI pre-check).
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Annotated

import typer

from pixi_pack_src import __version__
from pixi_pack_src.builders.wheel.overrides import load_overrides, read_manifest_table
from pixi_pack_src.cli import STATE, app
from pixi_pack_src.cli.common import (
    AllowUnpinnedBackendsOption,
    AllPlatformsOption,
    BackendOverrideOption,
    BaseOption,
    BuildIsolationOption,
    BuildSdistOption,
    CacheOption,
    EnvironmentOption,
    FrozenOption,
    IgnorePypiNonWheelOption,
    InjectOption,
    ManifestOption,
    ManifestPath,
    OverridesOption,
    PixiOption,
    PlatformOption,
    parse_overrides,
    resolve_manifest,
)
from pixi_pack_src.cli.inspect_view import render
from pixi_pack_src.cli.ui import make_console, resolve_color
from pixi_pack_src.delta.manifest import read_base
from pixi_pack_src.errors import EXIT_ERROR
from pixi_pack_src.lock.lockfile import load_lock
from pixi_pack_src.lock.workspace import locate_workspace
from pixi_pack_src.plan import (
    InspectOptions,
    plan_lock,
    select_platforms,
)
from pixi_pack_src.redact import redact_text

log = logging.getLogger("pixi_pack_src.cli.inspect")


@app.command("inspect")
def inspect_command(
    manifest_path: ManifestPath = None,
    manifest_option: ManifestOption = None,
    environment: EnvironmentOption = "default",
    platform: PlatformOption = None,
    all_platforms: AllPlatformsOption = False,
    ignore_pypi_non_wheel: IgnorePypiNonWheelOption = False,
    build_sdist: BuildSdistOption = True,
    inject: InjectOption = None,
    use_cache: CacheOption = None,
    pixi: PixiOption = None,
    allow_unpinned_backends: AllowUnpinnedBackendsOption = False,
    frozen: FrozenOption = False,
    backend_override: BackendOverrideOption = None,
    build_isolation: BuildIsolationOption = True,
    overrides: OverridesOption = None,
    base: BaseOption = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON document on stdout instead.")
    ] = False,
) -> None:
    """Show what pack would download, copy and build; changes nothing."""
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
        lock,
        environment,
        targets,
        ignore_pypi_non_wheel=ignore_pypi_non_wheel,
        build_pypi=build_sdist,
        inject=tuple(inject or ()),
        inspect=options,
        manifest=manifest,
        frozen=frozen,
        base=read_base(base) if base is not None else None,
        exclude=tuple(p.resolve() for p in [use_cache] if p is not None),
    )

    if json_output:
        document = json.dumps(plans.to_json(tool_version=__version__), indent=2)
        sys.stdout.write(redact_text(document) + "\n")  # lock URLs may carry credentials
    elif STATE.verbosity > -2:  # the plan is the result: stdout
        console = make_console(resolve_color(STATE.color), stdout=True)
        render(console, plans, workspace.root, options)
    for warning in plans.warnings:
        log.warning("%s", warning)
    refusal = plans.refusal(exit_code=EXIT_ERROR)  # the error `pack` would stop with
    if refusal is not None:
        raise refusal
