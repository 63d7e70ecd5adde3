"""Lock -> :class:`~.model.PackPlans`: the one place that decides what a pack does.

:func:`plan_lock` is the entry point: ``inspect`` prints what it returns and ``pack``
executes it (:mod:`pixi_pack_src.pack`), so nothing is decided twice. It selects the locked
environments, makes their plans (:func:`make_plans`: the items of :mod:`.items`, the builds of
:mod:`.builds`, the refusals and warnings of :mod:`.checks`) and, with ``--base``, takes what
the base has from it (:func:`pixi_pack_src.delta.plan.mark_base`). Without
:class:`~.model.InspectOptions` nothing runs and nothing is fetched: the only I/O is reading
source packages' manifests; with them, ``pixi --version`` may run and the caches are looked at.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from packaging.utils import canonicalize_name

from pixi_pack_src.builders.wheel.interpreter import environment_fingerprint
from pixi_pack_src.builders.wheel.overrides import Overrides, unused_packages
from pixi_pack_src.delta.manifest import BaseManifest
from pixi_pack_src.delta.plan import check_platforms, mark_base
from pixi_pack_src.errors import PlanRefusedError, SelectionError, UsageError
from pixi_pack_src.host import host_subdir
from pixi_pack_src.lock.lockfile import Lock
from pixi_pack_src.lock.model import LockedEnvironment, Platform
from pixi_pack_src.plan import checks
from pixi_pack_src.plan.builds import source_builds
from pixi_pack_src.plan.items import WheelBuildContext, conda_item, pypi_item, source_item
from pixi_pack_src.plan.model import (
    InspectOptions,
    PackPlan,
    PackPlans,
    PlanItem,
    PlanTotals,
    Refusal,
    SourceBuild,
    unique,
)


def select_platforms(
    lock: Lock, environment: str, values: Sequence[str], *, all_platforms: bool = False
) -> list[Platform]:
    """``-p`` values (lock platform names or subdirs), ``--all-platforms``, or this machine's
    platform; in the order given, each once. An environment without any platform is refused
    here, naming the environments that have packages."""
    if not lock.platforms(environment):
        refusal = checks.empty_environment(lock, environment, ())
        raise PlanRefusedError(refusal.message, hint=refusal.hint)
    if all_platforms:
        if values:
            raise UsageError("--all-platforms and -p/--platform exclude each other")
        return lock.platforms(environment)
    if values:
        chosen: dict[str, Platform] = {}
        for value in values:
            resolved = lock.resolve_platform(environment, value)
            chosen.setdefault(resolved.name, resolved)
        return list(chosen.values())
    host = host_subdir()
    try:
        return [lock.resolve_platform(environment, host)]
    except SelectionError as exc:
        locked = lock.platforms(environment)
        names = ", ".join(p.name for p in locked) or "none"
        raise SelectionError(
            f"this machine's platform {host} is not locked for environment "
            f"'{environment}' in {lock.path.name}; locked: {names}",
            hint="pass -p PLATFORM or --all-platforms",
        ) from exc


def plan_lock(
    lock: Lock,
    environment: str,
    platforms: Sequence[Platform],
    *,
    ignore_pypi_non_wheel: bool = False,
    build_pypi: bool = True,
    inject: Sequence[Path] = (),
    inspect: InspectOptions | None = None,
    manifest: Path | None = None,
    frozen: bool = False,
    base: BaseManifest | None = None,
    exclude: Sequence[Path] = (),
) -> PackPlans:
    """The plans for ``environment`` on ``platforms`` of ``lock``: what ``inspect`` shows and
    ``pack`` executes (see :func:`make_plans`), with the environments and platforms that do
    have packages named when one has none, and a lock that does not match ``manifest``
    refused (:func:`~.checks.lock_refusal`). With ``base`` (``--base``), what the base has is
    taken from it (:func:`pixi_pack_src.delta.plan.mark_base`; ``exclude``: paths left out of
    source-tree hashes, as the builds leave them out)."""
    if base is not None:
        check_platforms(base, [p.subdir for p in platforms], base.source)
    envs = [lock.select(environment, p) for p in platforms]
    stale = checks.lock_refusal(manifest, envs, frozen=frozen)
    plans = make_plans(
        envs,
        ignore_pypi_non_wheel=ignore_pypi_non_wheel,
        build_pypi=build_pypi,
        inject=inject,
        inspect=inspect,
    )
    if base is not None:
        plans = mark_base(
            plans,
            base,
            overrides=inspect.overrides if inspect is not None else Overrides(),
            exclude=exclude,
        )
    if stale is not None:
        plans = plans.with_refusals([stale])
    empty = [p for p in plans.plans if not p.items]
    if not empty:
        return plans
    refusal = checks.empty_environment(lock, environment, [p.platform.name for p in empty])
    return replace(
        plans,
        plans=tuple(
            replace(p, refusals=(*p.refusals, refusal)) if not p.items else p for p in plans.plans
        ),
    )


def make_plan(
    env: LockedEnvironment,
    *,
    ignore_pypi_non_wheel: bool = False,
    read_backends: bool = True,
    host: str | None = None,
    inspect: InspectOptions | None = None,
) -> PackPlan:
    """The plan for one environment on one platform (see :func:`make_plans`)."""
    return make_plans(
        [env],
        ignore_pypi_non_wheel=ignore_pypi_non_wheel,
        read_backends=read_backends,
        host=host,
        inspect=inspect,
    ).plans[0]


def make_plans(
    envs: Sequence[LockedEnvironment],
    *,
    ignore_pypi_non_wheel: bool = False,
    build_pypi: bool = True,
    inject: Sequence[Path] = (),
    read_backends: bool = True,
    host: str | None = None,
    inspect: InspectOptions | None = None,
) -> PackPlans:
    """Plans for several platforms of one environment, with their ``pixi build`` invocations.

    ``ignore_pypi_non_wheel`` skips sdists, git and source-tree PyPI entries (with a warning)
    instead of building them; without ``build_pypi`` they are refused; ``inject`` are the
    ``--inject`` files (checked, not planned: they are added as they are); ``read_backends``
    applies the backend pin rule to path packages (reading their manifests); ``host`` is the
    subdir a noarch package is built on when it is one of the platforms (default: this
    machine's). ``inspect`` adds what is not in the lock: overrides, the pixi that would run,
    and whether the caches have the builds.
    """
    builds = source_builds(envs, read_backends=read_backends, host=host, inspect=inspect)
    built_names = {
        p.name
        for env in envs
        for p in env.pypi
        if not p.is_wheel and not ignore_pypi_non_wheel and build_pypi
    }
    shared_warnings: list[str] = []
    if inspect is not None:
        shared_warnings = checks.unused_overrides(unused_packages(inspect.overrides, built_names))
    plans = tuple(
        _plan(
            env,
            [b for b in builds if env.platform.name in b.platforms],
            ignore_pypi_non_wheel=ignore_pypi_non_wheel,
            build_pypi=build_pypi,
            inject=inject,
            inspect=inspect,
            warnings=list(shared_warnings),
        )
        for env in envs
    )
    return PackPlans(plans=plans, builds=tuple(builds))


def _plan(
    env: LockedEnvironment,
    builds: Sequence[SourceBuild],
    *,
    ignore_pypi_non_wheel: bool,
    build_pypi: bool = True,
    inject: Sequence[Path] = (),
    inspect: InspectOptions | None,
    warnings: list[str],
) -> PackPlan:
    problems: list[Refusal] = []
    items: list[PlanItem] = []

    seen_urls: set[str] = set()
    for pkg in sorted(env.conda, key=lambda c: (c.archive_path, c.url)):
        if pkg.url in seen_urls:
            continue
        seen_urls.add(pkg.url)
        items.append(conda_item(pkg))

    subdir = env.platform.subdir
    build_of = {e.source.lock_id: b for b in builds for e in b.job.entries if e.platform == subdir}
    for src in env.sources:
        refusal = checks.unsupported_source(src)
        if refusal is not None:
            problems.append(refusal)
    warnings.extend(checks.source_warnings(env.sources, env.workspace_root))
    warnings.extend(checks.outside_workspace(env.pypi, env.workspace_root))
    for build in builds:
        warnings.extend(build.backend.warnings)
        refusal = checks.backend_refusal(build.backend)
        if refusal is not None:
            problems.append(refusal)
    for src in sorted(env.sources, key=lambda s: (s.name, s.lock_id)):
        items.append(source_item(src, build_of.get(src.lock_id)))

    options = inspect or InspectOptions(probe_pixi=False)
    wheels = WheelBuildContext(
        overrides=options.overrides,
        subdir=subdir,
        python_version=next((c.version for c in env.conda if c.name == "python"), None),
        cache_root=options.cache_dir,
        isolated=options.build_isolation,
        environment_fingerprint=(
            environment_fingerprint([c.record for c in env.conda])
            if not options.build_isolation
            else ""
        ),
    )
    seen_pypi: set[str] = set()
    for pypi in sorted(env.pypi, key=lambda p: (canonicalize_name(p.name), p.location)):
        if pypi.location in seen_pypi:
            continue
        seen_pypi.add(pypi.location)
        decision = pypi_item(
            pypi, ignore_non_wheel=ignore_pypi_non_wheel, build=build_pypi, wheels=wheels
        )
        items.append(decision.item)
        warnings.extend(decision.warnings)
        problems.extend(decision.refusals)

    warnings.extend(checks.installability_warnings(env, items))
    warnings.extend(checks.hash_warnings(items))
    problems.extend(checks.inject_refusals(inject, subdir))

    return PackPlan(
        env=env,
        items=tuple(items),
        builds=tuple(builds),
        totals=PlanTotals.of(items, builds),
        warnings=unique(warnings),
        refusals=tuple({r.message: r for r in problems}.values()),
    )
