"""The plan's typed records: what a pack of one lock would do, item by item.

:class:`PackPlans` holds one :class:`PackPlan` per platform and the ``pixi build`` invocations
(:class:`SourceBuild`) shared by them; a plan is its :class:`PlanItem` s, their
:class:`PlanTotals`, its warnings and its :class:`Refusal` s. The records are made by
:mod:`.planner`; their JSON is :mod:`.document`'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from pixi_pack_src.builders.conda import BuildJob
from pixi_pack_src.builders.conda.backend import BackendStatus
from pixi_pack_src.builders.wheel.overrides import Overrides
from pixi_pack_src.delta.manifest import BaseManifest
from pixi_pack_src.errors import EXIT_ERROR, PlanRefusedError
from pixi_pack_src.lock.model import (
    CondaBinary,
    CondaSource,
    Hashes,
    LockedEnvironment,
    Platform,
    PypiPackage,
)
from pixi_pack_src.plan import document

Action = Literal["download", "copy", "build-conda", "build-wheel", "skip", "from-base"]
ItemKind = Literal[
    "conda", "conda-source", "wheel", "local-wheel", "sdist", "local-sdist", "git", "source-tree"
]
ACTIONS: tuple[Action, ...] = ("download", "copy", "build-conda", "build-wheel", "skip")
# with --base (delta packs): an item whose file the base has; neither fetched nor built
FROM_BASE: Action = "from-base"


def unique(values: Iterable[object]) -> tuple[str, ...]:
    """``values`` as strings, each once, in their first order."""
    return tuple(dict.fromkeys(str(v) for v in values))


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
        return document.build_json(self)


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
    wheel_build: Mapping[str, object] | None = None  # for build-wheel: wheel.jobs.describe_build
    base_path: str | None = None  # for from-base: the base's file (delta/plan.py)

    @property
    def is_pypi(self) -> bool:
        return isinstance(self.entry, PypiPackage)

    def to_json(self) -> dict[str, object]:
        return document.item_json(self)


@dataclass(frozen=True)
class PlanTotals:
    items: int
    by_action: Mapping[str, int]
    download_bytes: int  # sum of the known sizes of downloads
    copy_bytes: int
    unknown_size: int  # downloads and copies without a size in the lock
    builds: int  # distinct pixi build invocations

    @classmethod
    def of(cls, items: Sequence[PlanItem], builds: Sequence[SourceBuild]) -> PlanTotals:
        """The totals of ``items`` and ``builds`` (the plan's, or what a delta leaves of them)."""
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
        return cls(
            items=len(items),
            by_action=by_action,
            download_bytes=download_bytes,
            copy_bytes=copy_bytes,
            unknown_size=unknown,
            builds=len(builds),
        )

    @property
    def counts(self) -> dict[str, int]:
        """Items by action: each of :data:`ACTIONS` (0 when none), ``from-base`` when any."""
        out: dict[str, int] = {a: self.by_action.get(a, 0) for a in ACTIONS}
        if self.by_action.get(FROM_BASE):
            out[FROM_BASE] = self.by_action[FROM_BASE]
        return out

    def to_json(self) -> dict[str, object]:
        return document.totals_json(self)


@dataclass(frozen=True)
class PackPlan:
    """Everything a pack of one environment on one platform would do."""

    env: LockedEnvironment = field(repr=False)  # what it was made from
    items: tuple[PlanItem, ...]
    builds: tuple[SourceBuild, ...]
    totals: PlanTotals
    warnings: tuple[str, ...] = ()
    refusals: tuple[Refusal, ...] = ()

    @property
    def environment(self) -> str:
        return self.env.environment

    @property
    def platform(self) -> Platform:
        return self.env.platform

    @property
    def lock_path(self) -> Path:
        return self.env.lock_path

    @property
    def lock_version(self) -> int:
        return self.env.lock_version

    @property
    def lock_sha256(self) -> str:
        return self.env.lock_sha256

    @property
    def workspace_root(self) -> Path:
        return self.env.workspace_root

    @property
    def channels(self) -> tuple[str, ...]:
        return self.env.channels

    @property
    def indexes(self) -> tuple[str, ...]:
        return self.env.indexes

    def with_items(self, items: Sequence[PlanItem], builds: Sequence[SourceBuild]) -> PackPlan:
        """This plan with other items and builds (what a delta leaves), its totals recounted."""
        return replace(
            self, items=tuple(items), builds=tuple(builds), totals=PlanTotals.of(items, builds)
        )

    @property
    def problems(self) -> tuple[str, ...]:
        return tuple(r.message for r in self.refusals)

    def to_json(self) -> dict[str, object]:
        """The versioned JSON document (docs/json.md, ``inspect --json``)."""
        return document.plan_json(self)


@dataclass(frozen=True)
class PackPlans:
    """Plans for several platforms, with ``pixi build`` invocations merged across them."""

    plans: tuple[PackPlan, ...]
    builds: tuple[SourceBuild, ...]
    extra_refusals: tuple[Refusal, ...] = ()  # the caller's own (pack: unwritable outputs)
    base: BaseManifest | None = field(default=None, compare=False)  # --base (delta packs)

    @property
    def warnings(self) -> tuple[str, ...]:
        return unique(w for p in self.plans for w in p.warnings)

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
        hints = unique(r.hint for r in refusals if r.hint)
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
        """The ``inspect --json`` document (docs/json.md)."""
        return document.plans_json(self, tool_version=tool_version)
