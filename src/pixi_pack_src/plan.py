"""What a pack would do: ordered, de-duplicated work items for one environment and platform.

:func:`make_plans` turns :class:`~pixi_pack_src.lock.model.LockedEnvironment` s (one per platform)
into :class:`PackPlans`; :func:`make_plan` does it for one. The ``pixi build`` invocations
come from the build engine itself (:func:`pixi_pack_src.builders.conda.jobs.plan_source_builds`
groups the source entries of every platform into :class:`~pixi_pack_src.builders.conda.BuildJob` s, a
noarch package once for all platforms; :func:`~pixi_pack_src.builders.conda.backend.backend_status`
applies the backend pin rule), so ``inspect`` shows what ``pack`` runs. PyPI entries that are
built are described by :func:`pixi_pack_src.builders.wheel.jobs.describe_build`. Without
:class:`InspectOptions` nothing runs and nothing is fetched: the only I/O is reading source
packages' manifests; with them, ``pixi --version`` may run and the caches are looked at.

Actions: ``download`` (conda package or wheel from a URL), ``copy`` (a local ``.conda`` or
wheel), ``build-conda`` (a ``conda_source`` entry, built by ``pixi build``), ``build-wheel`` (an
sdist, git checkout or source tree, built into a wheel), ``skip`` (with a reason), and with
``--base`` ``from-base`` (the base of a delta pack has the file: neither fetched nor built;
``base-path`` in the JSON; :mod:`pixi_pack_src.delta.plan`).

**JSON (``to_json``), version 1.** Keys are kebab-case; absent values are ``null``.

``PackPlan.to_json()``::

    {"version": 1, "environment": str,
     "platform": {"name": str, "subdir": str, "virtual-packages": [str]},
     "lock": {"path": str, "version": int, "sha256": str},
     "workspace": str, "channels": [str], "indexes": [str],
     "items": [item], "builds": [build],
     "totals": {"items": int, "download": int, "copy": int, "build-conda": int,
                "build-wheel": int, "skip": int, "download-bytes": int, "copy-bytes": int,
                "unknown-size": int, "builds": int},
     "warnings": [str], "problems": [str]}

``item``: ``{"action", "kind", "name", "version", "file-name", "source", "archive-path",
"sha256", "md5", "size", "reason"}``, plus for ``conda-source`` items ``"conda-source":
{"lock-id", "location", "location-kind", "record": "full"|"partial", "variants", "build",
"build-number", "subdir", "noarch", "build-source", "source-depends", "build-key"}``, for
PyPI items ``"index"`` and for ``build-wheel`` items ``"wheel-build": {"build": "sdist ->
wheel" | "git -> wheel" | "source-tree -> wheel", "source", "overrides"?: {"env",
"patches", "config-settings"}, "cached"?: bool|null}`` (``cached`` with a cache only).

``build``: ``{"key", "location", "location-kind", "origin", "target-platform", "noarch",
"argv", "lock-ids", "names", "platforms", "backend", "target", "subdirs", "path", "git",
"backend-checked", "backend-problem", "cached", "cache-key", "pixi", "command"}``: ``argv`` uses the placeholders
``{workspace}``, ``{checkout}`` and ``{outdir}``; ``command`` is ``argv`` with the pixi that
would run (``pixi`` when none was found); ``platforms`` are lock platform names, ``subdirs``
the conda subdirs; ``git`` is ``null`` or ``{"url", "rev", "subdirectory"}``; ``backend`` is
``null`` or ``{"name", "version", "pinned", "manifest", "line"}`` (a git package's backend is
read from its checkout at build time: ``backend-checked`` is false); ``cached`` is ``null``
without a cache or a usable pixi (the key includes pixi's version); ``pixi`` is ``null`` when
not looked for, else ``{"path", "version", "command", "why"}`` or ``{"error"}``.

``PackPlans.to_json(tool_version)``: ``{"version": 1, "tool": {"name", "version"},
"environment": str, "lock": {...}, "platforms": [plan], "builds": [build], "totals": {...},
"warnings": [str], "problems": [str]}`` (``builds``: every invocation, once).

``problems`` are what would make a pack fail (unsupported entries, missing source directories
and trees, unpinned build backends, PyPI entries that are not wheels with ``--no-build-sdist``,
``--inject`` files that cannot be used, an environment without packages); ``warnings`` are
what a pack would warn about. :meth:`PackPlans.refusal` turns the problems into the one error
that both ``pack`` (before its first download) and ``inspect`` (exit code 1) report.

:func:`plan_lock` is the one entry point: ``inspect`` prints what it returns and ``pack``
executes it (:mod:`pixi_pack_src.pack`), so nothing is decided twice.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit
from urllib.request import url2pathname

from packaging.utils import canonicalize_name

from pixi_pack_src.archive.channel import record_from_archive
from pixi_pack_src.builders.conda import (
    BuildJob,
    SourceBuildOptions,
    inspect_jobs,
    plan_source_builds,
)
from pixi_pack_src.builders.conda.backend import BackendStatus, backend_status
from pixi_pack_src.builders.wheel.interpreter import environment_fingerprint
from pixi_pack_src.builders.wheel.jobs import describe_build
from pixi_pack_src.builders.wheel.overrides import Overrides, unused_packages
from pixi_pack_src.delta.manifest import BaseManifest
from pixi_pack_src.delta.plan import check_platforms, mark_base
from pixi_pack_src.errors import (
    EXIT_BUILD,
    EXIT_ERROR,
    EXIT_USAGE,
    PlanRefusedError,
    SelectionError,
    UsageError,
    WorkspaceError,
)
from pixi_pack_src.host import host_subdir
from pixi_pack_src.layout import wheel_path
from pixi_pack_src.lock.lockfile import Lock
from pixi_pack_src.lock.model import (
    CondaBinary,
    CondaSource,
    Hashes,
    LockedEnvironment,
    Platform,
    PypiPackage,
)
from pixi_pack_src.lock.satisfiability import manifest_dependencies, mismatches

log = logging.getLogger(__name__)

JSON_VERSION = 1

Action = Literal["download", "copy", "build-conda", "build-wheel", "skip", "from-base"]
ItemKind = Literal[
    "conda", "conda-source", "wheel", "local-wheel", "sdist", "local-sdist", "git", "source-tree"
]
ACTIONS: tuple[Action, ...] = ("download", "copy", "build-conda", "build-wheel", "skip")
# with --base (delta packs): an item whose file the base has; neither fetched nor built
FROM_BASE: Action = "from-base"


@dataclass(frozen=True)
class Refusal:
    """One reason a pack would fail, as its error would say it."""

    message: str
    hint: str | None = None
    exit_code: int = EXIT_ERROR

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, kw_only=True)
class InspectOptions:
    """What ``inspect`` looks at beyond the lock (pack's options of the same names)."""

    cache_dir: Path | None = None  # --use-cache: say whether builds are cached
    pixi: str | None = None  # --pixi (else $PIXI_PACK_SRC_PIXI, else PATH)
    probe_pixi: bool = True  # find pixi and run `pixi --version` (never a build)
    allow_unpinned_backends: bool = False
    backend_overrides: Mapping[str, Path] = field(default_factory=dict)
    build_isolation: bool = True
    overrides: Overrides = field(default_factory=Overrides)


@dataclass(frozen=True)
class SourceBuild:
    """One ``pixi build`` invocation: the engine's :class:`BuildJob` and what inspect adds.

    Every lock entry at one location on one subdir shares an invocation (pixi builds every
    output and variant in one go); a noarch package's is shared by all platforms.
    """

    job: BuildJob
    platforms: tuple[str, ...]  # lock platform names whose entries it satisfies
    backend: BackendStatus
    status: Mapping[str, object] | None = None  # build.inspect_jobs: pixi, cache, argv

    @property
    def key(self) -> str:
        return self.job.key

    @property
    def location(self) -> str:
        return self.job.location

    @property
    def target_platform(self) -> str:
        return self.job.target_platform

    @property
    def noarch(self) -> bool:
        return self.job.is_noarch

    @property
    def lock_ids(self) -> tuple[str, ...]:
        return self.job.lock_ids

    @property
    def names(self) -> tuple[str, ...]:
        return self.job.names

    @property
    def origin(self) -> str:
        """The absolute package directory, or ``url@commit`` (+ ``#subdirectory``)."""
        git = self.job.git
        if git is not None:
            sub = (git.subdirectory or "").strip("/")
            return f"{git.short}#{sub}" if sub else git.short
        return str(self.job.path)

    @property
    def argv(self) -> tuple[str, ...]:
        """What a pack runs, with ``{workspace}``/``{checkout}``/``{outdir}`` placeholders."""
        shown = self.status.get("argv") if self.status is not None else None
        if isinstance(shown, list):
            return tuple(str(a) for a in shown)
        return self.job.argv_preview

    @property
    def pixi(self) -> Mapping[str, object] | None:
        found = self.status.get("pixi") if self.status is not None else None
        return found if isinstance(found, Mapping) else None

    @property
    def command(self) -> tuple[str, ...]:
        """:attr:`argv` with the pixi that would run (``pixi`` when none was found)."""
        path = self.pixi.get("path") if self.pixi is not None else None
        return (str(path) if path else "pixi", *self.argv[1:])

    @property
    def cached(self) -> bool | None:
        value = self.status.get("cached") if self.status is not None else None
        return value if isinstance(value, bool) else None

    def to_json(self) -> dict[str, object]:
        job, spec, use = self.job, self.backend.spec, self.backend.use
        backend: dict[str, object] | None = None
        if spec is not None:
            backend = {
                "name": spec.name,
                "version": spec.version,
                "pinned": use.pinned if use is not None else False,
                "manifest": str(spec.manifest),
                "line": spec.version_line or spec.backend_line,
            }
        git: dict[str, object] | None = None
        if job.git is not None:
            git = {"url": job.git.url, "rev": job.git.rev, "subdirectory": job.git.subdirectory}
        status = self.status or {}
        return {
            "key": self.key,
            "location": job.location,
            "location-kind": job.location_kind,
            "origin": self.origin,
            "target-platform": job.target_platform,
            "noarch": job.is_noarch,
            "argv": list(self.argv),
            "lock-ids": list(job.lock_ids),
            "names": list(job.names),
            "platforms": list(self.platforms),
            "backend": backend,
            "target": job.target,
            "subdirs": list(job.platforms),
            "path": str(job.path) if job.path is not None else None,
            "git": git,
            "backend-checked": self.backend.checked,
            "backend-problem": self.backend.problem,
            "cached": self.cached,
            "cache-key": status.get("cache-key"),
            "pixi": dict(self.pixi) if self.pixi is not None else None,
            "command": list(self.command),
        }


@dataclass(frozen=True)
class PlanItem:
    """One artifact a pack would produce (or skip)."""

    action: Action
    kind: ItemKind
    name: str
    version: str | None
    file_name: str | None  # the locked file (conda, wheel, sdist); None when built from a tree
    source: str  # URL, absolute path, or git "url@commit"
    archive_path: str | None  # "channel/<subdir>/<file>" or "pypi/<file>"; None until built
    hashes: Hashes
    entry: CondaBinary | CondaSource | PypiPackage = field(compare=False, repr=False)
    reason: str | None = None  # for skip
    build_key: str | None = None  # for build-conda: the SourceBuild.key
    wheel_build: Mapping[str, object] | None = None  # for build-wheel: sdist.describe_build
    base_path: str | None = None  # for from-base: the base's file (delta/plan.py)

    @property
    def is_pypi(self) -> bool:
        return isinstance(self.entry, PypiPackage)

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "action": self.action,
            "kind": self.kind,
            "name": self.name,
            "version": self.version,
            "file-name": self.file_name,
            "source": self.source,
            "archive-path": self.archive_path,
            "sha256": self.hashes.sha256,
            "md5": self.hashes.md5,
            "size": self.hashes.size,
            "reason": self.reason,
        }
        if self.base_path is not None:
            out["base-path"] = self.base_path
        entry = self.entry
        if isinstance(entry, CondaSource):
            out["conda-source"] = {
                "lock-id": entry.lock_id,
                "location": entry.location,
                "location-kind": entry.location_kind,
                "record": "full" if entry.is_full else "partial",
                "variants": dict(entry.variants),
                "build": entry.build,
                "build-number": entry.build_number,
                "subdir": entry.subdir,
                "noarch": entry.noarch,
                "build-source": dict(entry.source) if entry.source is not None else None,
                "source-depends": {k: dict(v) for k, v in entry.source_depends.items()},
                "build-key": self.build_key,
            }
        elif isinstance(entry, PypiPackage):
            out["index"] = entry.index
            if self.wheel_build is not None:
                out["wheel-build"] = dict(self.wheel_build)
        return out


@dataclass(frozen=True)
class PlanTotals:
    items: int
    by_action: Mapping[str, int]
    download_bytes: int  # sum of the known sizes of downloads
    copy_bytes: int
    unknown_size: int  # downloads and copies without a size in the lock
    builds: int  # distinct pixi build invocations

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"items": self.items}
        out.update({a: self.by_action.get(a, 0) for a in ACTIONS})
        if self.by_action.get(FROM_BASE):
            out[FROM_BASE] = self.by_action[FROM_BASE]
        out.update(
            {
                "download-bytes": self.download_bytes,
                "copy-bytes": self.copy_bytes,
                "unknown-size": self.unknown_size,
                "builds": self.builds,
            }
        )
        return out


@dataclass(frozen=True)
class PackPlan:
    """Everything a pack of one environment on one platform would do."""

    environment: str
    platform: Platform
    lock_path: Path
    lock_version: int
    lock_sha256: str
    workspace_root: Path
    channels: tuple[str, ...]
    indexes: tuple[str, ...]
    items: tuple[PlanItem, ...]
    builds: tuple[SourceBuild, ...]
    totals: PlanTotals
    env: LockedEnvironment = field(compare=False, repr=False)  # what it was made from
    warnings: tuple[str, ...] = ()
    refusals: tuple[Refusal, ...] = ()

    @property
    def problems(self) -> tuple[str, ...]:
        return tuple(r.message for r in self.refusals)

    def to_json(self) -> dict[str, object]:
        """The versioned JSON document described in the module docstring."""
        return {
            "version": JSON_VERSION,
            "environment": self.environment,
            "platform": {
                "name": self.platform.name,
                "subdir": self.platform.subdir,
                "virtual-packages": list(self.platform.virtual_packages),
            },
            "lock": _lock_json(self.lock_path, self.lock_version, self.lock_sha256),
            "workspace": str(self.workspace_root),
            "channels": list(self.channels),
            "indexes": list(self.indexes),
            "items": [i.to_json() for i in self.items],
            "builds": [b.to_json() for b in self.builds],
            "totals": self.totals.to_json(),
            "warnings": list(self.warnings),
            "problems": list(self.problems),
        }


@dataclass(frozen=True)
class PackPlans:
    """Plans for several platforms, with ``pixi build`` invocations merged across them."""

    plans: tuple[PackPlan, ...]
    builds: tuple[SourceBuild, ...]
    extra_refusals: tuple[Refusal, ...] = ()  # the caller's own (pack: unwritable outputs)
    base: BaseManifest | None = field(default=None, compare=False)  # --base (delta packs)

    @property
    def warnings(self) -> tuple[str, ...]:
        return _unique(w for p in self.plans for w in p.warnings)

    @property
    def refusals(self) -> tuple[Refusal, ...]:
        every = [r for p in self.plans for r in p.refusals] + list(self.extra_refusals)
        return tuple({r.message: r for r in every}.values())

    def with_refusals(self, refusals: Sequence[Refusal]) -> PackPlans:
        return replace(self, extra_refusals=(*self.extra_refusals, *refusals))

    @property
    def problems(self) -> tuple[str, ...]:
        return tuple(r.message for r in self.refusals)

    def refusal(self, *, exit_code: int | None = None) -> PlanRefusedError | None:
        """Every problem as one error (``None`` when a pack can go ahead): a single problem
        is its own message and help; several are listed under one ``error:`` line. The exit
        code is the problems' own when they agree, else 1 (``exit_code`` overrides it)."""
        refusals = self.refusals
        if not refusals:
            return None
        hints = _unique(r.hint for r in refusals if r.hint)
        codes = {r.exit_code for r in refusals}
        code = exit_code if exit_code is not None else codes.pop() if len(codes) == 1 else 1
        if len(refusals) == 1:
            return PlanRefusedError(refusals[0].message, hint=refusals[0].hint, exit_code=code)
        listed = "".join(f"\n  - {r.message}" for r in refusals)
        return PlanRefusedError(
            f"a pack would fail for {len(refusals)} reasons:{listed}",
            hint="; ".join(hints) or None,
            exit_code=code,
        )

    def to_json(self, *, tool_version: str) -> dict[str, object]:
        first = self.plans[0] if self.plans else None
        totals: dict[str, int] = {}
        for plan in self.plans:
            for key, value in plan.totals.to_json().items():
                if isinstance(value, int):
                    totals[key] = totals.get(key, 0) + value
        totals["builds"] = len(self.builds)
        doc: dict[str, object] = {
            "version": JSON_VERSION,
            "tool": {"name": "pixi-pack-src", "version": tool_version},
            "environment": first.environment if first else None,
            "lock": _lock_json(first.lock_path, first.lock_version, first.lock_sha256)
            if first
            else None,
            "platforms": [p.to_json() for p in self.plans],
            "builds": [b.to_json() for b in self.builds],
            "totals": totals,
            "warnings": list(self.warnings),
            "problems": list(self.problems),
        }
        if self.base is not None:
            doc["base"] = {
                "identity": self.base.identity,
                "kind": self.base.kind,
                "platform": self.base.platform,
                "source": self.base.source,
            }
        return doc


# --------------------------------------------------------------------------------------------


def select_platforms(
    lock: Lock, environment: str, values: Sequence[str], *, all_platforms: bool = False
) -> list[Platform]:
    """``-p`` values (lock platform names or subdirs), ``--all-platforms``, or this machine's
    platform; in the order given, each once. An environment without any platform is refused
    here, naming the environments that have packages."""
    if not lock.platforms(environment):
        refusal = _empty(lock, environment, ())
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


def lock_refusal(
    manifest: Path | None, envs: Sequence[LockedEnvironment], *, frozen: bool = False
) -> Refusal | None:
    """pixi's "lock out of date": every dependency the manifest names for the environment must
    be locked for each chosen platform (:mod:`pixi_pack_src.lock.satisfiability`). Judged with
    the plan, before anything is fetched or built; ``--frozen`` (pixi's word) packs the lock
    as it is."""
    if frozen or manifest is None:
        return None
    hint = "run `pixi lock` to update it, or pass --frozen to pack the lock as it is"
    missing: list[str] = []
    where = ""
    for env in envs:
        try:
            deps = manifest_dependencies(manifest, env.environment, env.platform.subdir)
        except WorkspaceError as exc:
            return Refusal(f"pixi.lock is out of date: {exc.message}", hint=hint)
        found = mismatches(deps, env)
        for mismatch in found:
            text = mismatch.describe()
            if text not in missing:
                missing.append(text)
        if found and not where:
            where = f"environment '{env.environment}' on {env.platform.name}"
    if not missing:
        return None
    shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    return Refusal(
        f"pixi.lock is out of date: {manifest.name} asks for what {where} does not lock: {shown}",
        hint=hint,
    )


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
    refused (:func:`lock_refusal`). With ``base`` (``--base``), what the base has is
    taken from it (:func:`pixi_pack_src.delta.plan.mark_base`; ``exclude``: paths left out of
    source-tree hashes, as the builds leave them out)."""
    if base is not None:
        check_platforms(base, [p.subdir for p in platforms], base.source)
    envs = [lock.select(environment, p) for p in platforms]
    stale = lock_refusal(manifest, envs, frozen=frozen)
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
    refusal = _empty(lock, environment, [p.platform.name for p in empty])
    return replace(
        plans,
        plans=tuple(
            replace(p, refusals=(*p.refusals, refusal)) if not p.items else p for p in plans.plans
        ),
    )


def _empty(lock: Lock, environment: str, platforms: Sequence[str]) -> Refusal:
    where = f"for {', '.join(platforms)}" if platforms else "on any platform"
    return Refusal(
        f"environment '{environment}' of {lock.path.name} has no packages {where}; "
        f"with packages: {_populated(lock) or 'none'}",
        hint="choose an environment and platforms that have packages (-e ENV, -p PLATFORM)",
    )


def _populated(lock: Lock) -> str:
    """``env (platform, ...)`` for every environment that has packages somewhere."""
    shown = []
    for name in lock.environment_names():
        full = [p.name for p in lock.platforms(name) if _has_packages(lock.select(name, p))]
        if full:
            shown.append(f"{name} ({', '.join(full)})")
    return ", ".join(shown)


def _has_packages(env: LockedEnvironment) -> bool:
    return bool(env.conda or env.sources or env.pypi)


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
    ``--inject`` files (checked, not planned: they are added as they are); ``read_backends`` applies the backend pin rule to path packages
    (reading their manifests); ``host`` is the subdir a noarch package is built on when it is
    one of the platforms (default: this machine's). ``inspect`` adds what is not in the lock:
    overrides, the pixi that would run, and whether the caches have the builds.
    """
    builds = _source_builds(envs, read_backends=read_backends, host=host, inspect=inspect)
    built_names = {
        p.name
        for env in envs
        for p in env.pypi
        if not p.is_wheel and not ignore_pypi_non_wheel and build_pypi
    }
    shared_warnings: list[str] = []
    if inspect is not None:
        for name in unused_packages(inspect.overrides, built_names):
            shared_warnings.append(
                f"build overrides for {name} match no PyPI package that is built from source"
            )
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
        items.append(_conda_item(pkg))

    subdir = env.platform.subdir
    build_of = {e.source.lock_id: b for b in builds for e in b.job.entries if e.platform == subdir}
    for src in env.sources:
        if _unsupported(src):
            problems.append(
                Refusal(
                    f"source package {src.name} at {src.location}: URL-located source "
                    "packages are not supported (pixi does not write them)",
                    hint="use a path or git source, or build it yourself and pass the .conda "
                    "with --inject",
                )
            )
    _source_warnings(env.sources, env.workspace_root, warnings)
    for local in env.pypi:
        # pixi installs local paths outside the workspace too; the pack copies them in, so
        # say so: a lock from someone else can name any file of this machine
        if local.path is not None and not local.path.is_relative_to(env.workspace_root):
            warnings.append(
                f"PyPI package {local.name}: {local.location} is outside the workspace "
                f"{env.workspace_root}; it is copied into the pack"
            )
    for build in builds:
        warnings.extend(build.backend.warnings)
        backend = build.backend
        if backend.problem is not None:
            problems.append(Refusal(backend.problem, backend.hint, backend.exit_code))
    for src in sorted(env.sources, key=lambda s: (s.name, s.lock_id)):
        items.append(_source_item(src, build_of.get(src.lock_id)))

    python = next((c.version for c in env.conda if c.name == "python"), None)
    fingerprint = ""
    if inspect is not None and not inspect.build_isolation:
        fingerprint = environment_fingerprint([c.record for c in env.conda])
    seen_pypi: set[str] = set()
    for pypi in sorted(env.pypi, key=lambda p: (canonicalize_name(p.name), p.location)):
        if pypi.location in seen_pypi:
            continue
        seen_pypi.add(pypi.location)
        item = _pypi_item(pypi, ignore_pypi_non_wheel, build_pypi, warnings, problems)
        if item.action == "build-wheel":
            wheel = describe_build(
                pypi,
                overrides=inspect.overrides if inspect is not None else Overrides(),
                subdir=subdir,
                python_version=python,
                cache_root=inspect.cache_dir if inspect is not None else None,
                isolated=inspect.build_isolation if inspect is not None else True,
                environment_fingerprint=fingerprint,
                exclude=tuple(p for p in [inspect.cache_dir if inspect else None] if p),
            )
            item = replace(item, wheel_build=wheel)
        items.append(item)

    _check_pypi_installable(env, items, warnings)
    _check_hashes(items, warnings)
    problems.extend(_check_inject(inject, subdir))

    by_action: dict[str, int] = {}
    download_bytes = copy_bytes = unknown = 0
    for item in items:
        by_action[item.action] = by_action.get(item.action, 0) + 1
        if item.action in ("download", "copy"):
            if item.hashes.size is None:
                unknown += 1
            elif item.action == "download":
                download_bytes += item.hashes.size
            else:
                copy_bytes += item.hashes.size
    totals = PlanTotals(
        items=len(items),
        by_action=by_action,
        download_bytes=download_bytes,
        copy_bytes=copy_bytes,
        unknown_size=unknown,
        builds=len(builds),
    )
    return PackPlan(
        environment=env.environment,
        platform=env.platform,
        lock_path=env.lock_path,
        lock_version=env.lock_version,
        lock_sha256=env.lock_sha256,
        workspace_root=env.workspace_root,
        channels=env.channels,
        indexes=env.indexes,
        items=tuple(items),
        builds=tuple(builds),
        totals=totals,
        env=env,
        warnings=_unique(warnings),
        refusals=tuple({r.message: r for r in problems}.values()),
    )


def _unsupported(src: CondaSource) -> bool:
    return src.location_kind == "url" or (src.path is None and src.git is None)


def _source_builds(
    envs: Sequence[LockedEnvironment],
    *,
    read_backends: bool,
    host: str | None,
    inspect: InspectOptions | None,
) -> list[SourceBuild]:
    """The engine's build jobs for every platform at once (as ``pack`` makes them)."""
    by_subdir: dict[str, list[CondaSource]] = {}
    for env in envs:
        supported = [s for s in env.sources if not _unsupported(s)]
        if supported:
            by_subdir.setdefault(env.platform.subdir, []).extend(supported)
    if not by_subdir:
        return []
    jobs = plan_source_builds(
        by_subdir, workspace_root=envs[0].workspace_root, host=host or host_subdir()
    )
    options = inspect or InspectOptions(probe_pixi=False)
    statuses: list[Mapping[str, object] | None] = [None] * len(jobs)
    if inspect is not None and inspect.probe_pixi:
        statuses = list(
            inspect_jobs(
                jobs,
                options=SourceBuildOptions(
                    work_dir=Path(tempfile.gettempdir()) / "pixi-pack-src-inspect",
                    pixi=inspect.pixi,
                    allow_unpinned_backends=inspect.allow_unpinned_backends,
                    backend_overrides=dict(inspect.backend_overrides),
                    cache_root=inspect.cache_dir,
                ),
            )
        )
    builds = []
    for job, status in zip(jobs, statuses, strict=True):
        lock_ids = set(job.lock_ids)
        platforms = tuple(
            env.platform.name
            for env in envs
            if env.platform.subdir in job.platforms
            and any(s.lock_id in lock_ids for s in env.sources)
        )
        backend = (
            backend_status(
                job,
                allow_unpinned=options.allow_unpinned_backends,
                overrides=options.backend_overrides,
            )
            if read_backends
            else BackendStatus(checked=False)
        )
        builds.append(SourceBuild(job, _unique(platforms), backend, status))
    return builds


def _unique(values: Iterable[object]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(v) for v in values))


def _lock_json(path: Path, version: int, sha256: str) -> dict[str, object]:
    return {"path": str(path), "version": version, "sha256": sha256}


def _conda_item(pkg: CondaBinary) -> PlanItem:
    local = pkg.is_local
    return PlanItem(
        action="copy" if local else "download",
        kind="conda",
        name=pkg.name,
        version=pkg.version,
        file_name=pkg.file_name,
        source=_file_url_path(pkg.url) if local else pkg.url,
        archive_path=pkg.archive_path,
        hashes=pkg.hashes,
        entry=pkg,
    )


def _file_url_path(url: str) -> str:
    return url2pathname(urlsplit(url).path)


def _source_warnings(entries: Iterable[CondaSource], root: Path, warnings: list[str]) -> None:
    for src in entries:
        if src.path is not None and not src.path.is_relative_to(root):
            warnings.append(
                f"source package {src.name}: {src.location} is outside the workspace {root}"
            )
        pin = src.source or {}
        if "git" in pin and "branch" in pin and not src.is_full:
            warnings.append(
                f"source package {src.name}: its build source follows branch {pin['branch']!r} "
                f"of {pin['git']}; `pixi build` re-resolves it, so the artifact may differ from "
                f"the locked commit {pin.get('rev', '?')}"
            )


def _source_item(src: CondaSource, build: SourceBuild | None) -> PlanItem:
    if build is None:
        return PlanItem(
            action="skip",
            kind="conda-source",
            name=src.name,
            version=src.version,
            file_name=None,
            source=src.location,
            archive_path=None,
            hashes=Hashes(),
            entry=src,
            reason="unsupported source location",
        )
    return PlanItem(
        action="build-conda",
        kind="conda-source",
        name=src.name,
        version=src.version,
        file_name=None,
        source=build.origin,
        archive_path=None,
        hashes=Hashes(),
        entry=src,
        build_key=build.key,
    )


def _pypi_item(
    pkg: PypiPackage,
    ignore_non_wheel: bool,
    build: bool,
    warnings: list[str],
    problems: list[Refusal],
) -> PlanItem:
    source = pkg.url or (str(pkg.path) if pkg.path is not None else pkg.location)
    if pkg.kind in ("wheel", "local-wheel"):
        return PlanItem(
            action="download" if pkg.kind == "wheel" else "copy",
            kind=pkg.kind,
            name=pkg.name,
            version=pkg.version,
            file_name=pkg.file_name,
            source=source,
            archive_path=wheel_path(pkg.file_name) if pkg.file_name else None,
            hashes=pkg.hashes,
            entry=pkg,
        )
    if pkg.kind == "git" and pkg.git is not None:
        source = pkg.git.short

    def item(action: Action, reason: str | None = None) -> PlanItem:
        return PlanItem(
            action=action,
            kind=pkg.kind,
            name=pkg.name,
            version=pkg.version,
            file_name=pkg.file_name,
            source=source,
            archive_path=None,  # known once built
            hashes=pkg.hashes,
            entry=pkg,
            reason=reason,
        )

    if pkg.kind == "source-tree" and pkg.path is None:
        problems.append(
            Refusal(
                f"PyPI package {pkg.name} at {pkg.location}: a remote location that is neither "
                "a wheel nor an sdist is not supported",
                hint="lock a wheel, an sdist or a git source of it, or build the wheel "
                "yourself and pass it with --inject",
            )
        )
        return item("skip", "unsupported remote location")
    if ignore_non_wheel:
        warnings.append(
            f"PyPI package {pkg.name} ({pkg.kind} at {pkg.location}) is not a wheel: "
            "skipped (--ignore-pypi-non-wheel)"
        )
        return item("skip", "not a wheel (--ignore-pypi-non-wheel)")
    if not build:
        problems.append(
            Refusal(
                f"PyPI package {pkg.name} ({pkg.location}) is not a wheel ({pkg.kind}) and "
                "--no-build-sdist was given",
                hint="drop --no-build-sdist to build it into a wheel, or pass "
                "--ignore-pypi-non-wheel to skip it with a warning",
            )
        )
        return item("skip", "not a wheel (--no-build-sdist)")
    if pkg.kind == "source-tree" and pkg.path is not None and not pkg.path.is_dir():
        problems.append(
            Refusal(
                f"the source tree of {pkg.name} is missing: {pkg.path}",
                hint="check the `pypi:` location in pixi.lock (relative to the workspace)",
                exit_code=EXIT_BUILD,
            )
        )
    return item("build-wheel")


def _check_pypi_installable(
    env: LockedEnvironment, items: list[PlanItem], warnings: list[str]
) -> None:
    if not any(i.is_pypi and i.action != "skip" for i in items):
        return
    names = {c.name for c in env.conda} | {s.name for s in env.sources}
    if "python" not in names:
        warnings.append(
            "PyPI packages are locked but python is not a conda package of this environment: "
            "unpack cannot install the wheels"
        )
    if "pip" not in names:
        warnings.append(
            "PyPI packages are locked but pip is not: conda and micromamba cannot install the "
            "archive's environment.yml (pixi-unpack can); add pip to the environment"
        )


def _check_hashes(items: list[PlanItem], warnings: list[str]) -> None:
    conda = [i.name for i in items if i.kind == "conda" and not i.hashes.verifiable]
    pypi = [
        i.name
        for i in items
        if i.kind in ("wheel", "local-wheel", "sdist", "local-sdist")
        and i.action != "skip"
        and not i.hashes.verifiable
    ]
    for label, names in (("conda packages", conda), ("PyPI files", pypi)):
        if names:
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            warnings.append(
                f"{len(names)} {label} have no sha256 or md5 in the lock and cannot be "
                f"verified: {shown}"
            )


def _check_inject(paths: Sequence[Path], subdir: str) -> list[Refusal]:
    """``--inject`` files: present, of a kind that can be added, conda ones for ``subdir``."""
    out = []
    for path in paths:
        if not path.is_file():
            out.append(Refusal(f"--inject {path}: no such file", exit_code=EXIT_USAGE))
        elif path.name.endswith((".conda", ".tar.bz2")):
            record = record_from_archive(path)
            if record.subdir not in (subdir, "noarch"):
                out.append(
                    Refusal(
                        f"--inject {path}: a package for {record.subdir}, but the pack is for "
                        f"{subdir}",
                        hint=f"inject a package built for {subdir} or noarch",
                        exit_code=EXIT_USAGE,
                    )
                )
        elif not path.name.endswith(".whl"):
            out.append(
                Refusal(
                    f"--inject {path}: not a .conda, .tar.bz2 or .whl file", exit_code=EXIT_USAGE
                )
            )
    return out
