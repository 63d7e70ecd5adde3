"""What a pack would do: ordered, de-duplicated work items for one environment and platform.

:func:`make_plan` turns a :class:`~pixi_pack_src.model.LockedEnvironment` into a
:class:`PackPlan`; :func:`make_plans` does it for several platforms and merges the ``pixi build``
invocations they share (a noarch source package is built once for all platforms). No network,
no builds: the only I/O is reading source packages' manifests for their build backend.

Actions: ``download`` (conda package or wheel from a URL), ``copy`` (a local ``.conda`` or
wheel), ``build-conda`` (a ``conda_source`` entry, built by ``pixi build``), ``build-wheel`` (an
sdist, git checkout or source tree, built into a wheel), ``skip`` (with a reason).

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
"build-number", "subdir", "noarch", "build-source", "source-depends", "build-key"}`` and for
PyPI items ``"index"``. ``build``: ``{"key", "location", "location-kind", "origin",
"target-platform", "noarch", "argv", "lock-ids", "names", "platforms", "backend"}`` where
``argv`` uses the placeholders ``{workspace}``, ``{checkout}`` and ``{outdir}`` and ``backend``
is ``null`` or ``{"name", "version", "pinned", "manifest", "line"}``.

``PackPlans.to_json(tool_version)``: ``{"version": 1, "tool": {"name", "version"},
"environment": str, "lock": {...}, "platforms": [plan], "builds": [build], "totals": {...},
"warnings": [str], "problems": [str]}`` (``builds`` merged across platforms).

``problems`` are what would make a pack fail (unsupported entries, missing source directories);
``warnings`` are what a pack would warn about.
"""

from __future__ import annotations

import logging
import os
import posixpath
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit
from urllib.request import url2pathname

from packaging.utils import canonicalize_name

from .errors import WorkspaceError
from .model import (
    CondaBinary,
    CondaSource,
    GitLocation,
    Hashes,
    LockedEnvironment,
    Platform,
    PypiPackage,
    SourceLocationKind,
)
from .workspace import BackendSpec, read_build_backend

log = logging.getLogger(__name__)

JSON_VERSION = 1

Action = Literal["download", "copy", "build-conda", "build-wheel", "skip"]
ItemKind = Literal[
    "conda", "conda-source", "wheel", "local-wheel", "sdist", "local-sdist", "git", "source-tree"
]
ACTIONS: tuple[Action, ...] = ("download", "copy", "build-conda", "build-wheel", "skip")
PLACEHOLDER_WORKSPACE = "{workspace}"
PLACEHOLDER_CHECKOUT = "{checkout}"
PLACEHOLDER_OUTDIR = "{outdir}"


@dataclass(frozen=True)
class SourceBuild:
    """One ``pixi build`` invocation: a package location built for one target.

    Every lock entry at one location on one platform shares an invocation (pixi builds every
    output and variant in one go); when all of them are noarch, the invocation is shared across
    platforms too (``target_key == "noarch"``).
    """

    key: str  # "<origin key>|<target key>": equal keys = one invocation
    location: str  # the lock location (after "@")
    location_kind: SourceLocationKind
    origin: str  # human: the absolute directory, or "url@commit#subdirectory"
    path: Path | None  # the package directory, for path locations
    git: GitLocation | None  # for git locations (check out git.rev, then git.subdirectory)
    target_platform: str  # the conda subdir passed to --target-platform
    noarch: bool
    argv: tuple[str, ...]  # with {workspace}, {checkout}, {outdir} placeholders
    lock_ids: tuple[str, ...]  # every lock entry this build satisfies
    names: tuple[str, ...]
    platforms: tuple[str, ...]  # lock platform names whose entries it satisfies
    backend: BackendSpec | None = None

    def command(
        self,
        *,
        workspace: Path,
        outdir: Path,
        checkout: Path | None = None,
        pixi: str = "pixi",
    ) -> list[str]:
        """The argv with placeholders replaced (``checkout`` is required for git locations)."""
        if self.git is not None and checkout is None:
            raise ValueError(f"{self.location} is a git location: pass checkout=")
        values = {
            PLACEHOLDER_WORKSPACE: str(workspace),
            PLACEHOLDER_OUTDIR: str(outdir),
            PLACEHOLDER_CHECKOUT: str(checkout) if checkout is not None else "",
        }
        out = [pixi]
        for previous, arg in zip(self.argv, self.argv[1:], strict=False):
            for placeholder, value in values.items():
                arg = arg.replace(placeholder, value)
            out.append(os.path.normpath(arg) if previous == "--path" else arg)
        return out

    def to_json(self) -> dict[str, object]:
        backend: dict[str, object] | None = None
        if self.backend is not None:
            backend = {
                "name": self.backend.name,
                "version": self.backend.version,
                "pinned": self.backend.is_pinned,
                "manifest": str(self.backend.manifest),
                "line": self.backend.version_line or self.backend.backend_line,
            }
        return {
            "key": self.key,
            "location": self.location,
            "location-kind": self.location_kind,
            "origin": self.origin,
            "target-platform": self.target_platform,
            "noarch": self.noarch,
            "argv": list(self.argv),
            "lock-ids": list(self.lock_ids),
            "names": list(self.names),
            "platforms": list(self.platforms),
            "backend": backend,
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
    warnings: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()

    def items_for(self, action: Action) -> tuple[PlanItem, ...]:
        return tuple(i for i in self.items if i.action == action)

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

    @property
    def warnings(self) -> tuple[str, ...]:
        return _unique(w for p in self.plans for w in p.warnings)

    @property
    def problems(self) -> tuple[str, ...]:
        return _unique(w for p in self.plans for w in p.problems)

    def to_json(self, *, tool_version: str) -> dict[str, object]:
        first = self.plans[0] if self.plans else None
        totals: dict[str, int] = {}
        for plan in self.plans:
            for key, value in plan.totals.to_json().items():
                if isinstance(value, int):
                    totals[key] = totals.get(key, 0) + value
        totals["builds"] = len(self.builds)
        return {
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


# --------------------------------------------------------------------------------------------


def make_plan(
    env: LockedEnvironment,
    *,
    ignore_pypi_non_wheel: bool = False,
    read_backends: bool = True,
) -> PackPlan:
    """The plan for one environment on one platform (pure, except reading package manifests).

    ``ignore_pypi_non_wheel`` skips sdists, git and source-tree PyPI entries (with a warning)
    instead of building them; ``read_backends`` reads path packages' build-backend specs.
    """
    warnings: list[str] = []
    problems: list[str] = []
    items: list[PlanItem] = []

    seen_urls: set[str] = set()
    for pkg in sorted(env.conda, key=lambda c: (c.archive_path, c.url)):
        if pkg.url in seen_urls:
            continue
        seen_urls.add(pkg.url)
        items.append(_conda_item(pkg))

    builds = _source_builds(env, read_backends=read_backends, warnings=warnings, problems=problems)
    build_of = {lock_id: b for b in builds for lock_id in b.lock_ids}
    for src in sorted(env.sources, key=lambda s: (s.name, s.lock_id)):
        items.append(_source_item(src, build_of.get(src.lock_id)))

    seen_pypi: set[str] = set()
    for pypi in sorted(env.pypi, key=lambda p: (canonicalize_name(p.name), p.location)):
        if pypi.location in seen_pypi:
            continue
        seen_pypi.add(pypi.location)
        items.append(_pypi_item(pypi, ignore_pypi_non_wheel, warnings, problems))

    _check_pypi_installable(env, items, warnings)
    _check_hashes(items, warnings)

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
        warnings=_unique(warnings),
        problems=_unique(problems),
    )


def make_plans(
    envs: Sequence[LockedEnvironment],
    *,
    ignore_pypi_non_wheel: bool = False,
    read_backends: bool = True,
) -> PackPlans:
    """Plans for several platforms; noarch ``pixi build`` invocations are merged across them."""
    plans = tuple(
        make_plan(e, ignore_pypi_non_wheel=ignore_pypi_non_wheel, read_backends=read_backends)
        for e in envs
    )
    return PackPlans(plans=plans, builds=merge_builds(plans))


def merge_builds(plans: Sequence[PackPlan]) -> tuple[SourceBuild, ...]:
    """Every distinct ``pixi build`` invocation across ``plans``, in first-seen order."""
    merged: dict[str, SourceBuild] = {}
    for plan in plans:
        for build in plan.builds:
            previous = merged.get(build.key)
            if previous is None:
                merged[build.key] = build
            else:
                merged[build.key] = replace(
                    previous,
                    lock_ids=_unique((*previous.lock_ids, *build.lock_ids)),
                    names=_unique((*previous.names, *build.names)),
                    platforms=_unique((*previous.platforms, *build.platforms)),
                )
    return tuple(merged.values())


# --------------------------------------------------------------------------------------------


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


def _origin_key(src: CondaSource, root: Path) -> str:
    if src.git is not None:
        sub = src.git.subdirectory or ""
        return f"git:{src.git.url}@{src.git.rev}#{sub}"
    if src.path is not None:
        try:
            rel = src.path.relative_to(root).as_posix()
        except ValueError:
            rel = posixpath.normpath(os.path.relpath(src.path, root).replace(os.sep, "/"))
        return f"path:{rel or '.'}"
    return f"url:{src.location}"


def _path_arg(src: CondaSource, root: Path) -> str:
    if src.git is not None:
        sub = src.git.subdirectory
        return f"{PLACEHOLDER_CHECKOUT}/{sub}" if sub else PLACEHOLDER_CHECKOUT
    assert src.path is not None
    rel = os.path.relpath(src.path, root).replace(os.sep, "/")
    return PLACEHOLDER_WORKSPACE if rel == "." else f"{PLACEHOLDER_WORKSPACE}/{rel}"


def _origin(src: CondaSource) -> str:
    if src.git is not None:
        return src.git.short
    if src.path is not None:
        return str(src.path)
    return src.location


def _source_builds(
    env: LockedEnvironment,
    *,
    read_backends: bool,
    warnings: list[str],
    problems: list[str],
) -> list[SourceBuild]:
    """Group the environment's source entries into ``pixi build`` invocations."""
    root = env.workspace_root
    groups: dict[str, list[CondaSource]] = {}
    for src in sorted(env.sources, key=lambda s: (s.location, s.name, s.lock_id)):
        if src.location_kind == "url":
            problems.append(
                f"source package {src.name} at {src.location}: URL-located source packages "
                "are not supported (pixi does not write them)"
            )
            continue
        groups.setdefault(_origin_key(src, root), []).append(src)

    builds: list[SourceBuild] = []
    for origin_key, entries in groups.items():
        first = entries[0]
        noarch = all(e.is_noarch for e in entries)
        target_key = "noarch" if noarch else env.platform.subdir
        backend = _backend_for(first, root, read_backends, warnings, problems)
        _source_warnings(entries, root, warnings)
        argv = (
            "pixi",
            "build",
            "--path",
            _path_arg(first, root),
            "--output-dir",
            PLACEHOLDER_OUTDIR,
            "--target-platform",
            env.platform.subdir,
        )
        builds.append(
            SourceBuild(
                key=f"{origin_key}|{target_key}",
                location=first.location,
                location_kind=first.location_kind,
                origin=_origin(first),
                path=first.path,
                git=first.git,
                target_platform=env.platform.subdir,
                noarch=noarch,
                argv=argv,
                lock_ids=tuple(e.lock_id for e in entries),
                names=_unique(e.name for e in entries),
                platforms=(env.platform.name,),
                backend=backend,
            )
        )
    return builds


def _backend_for(
    src: CondaSource,
    root: Path,
    read_backends: bool,
    warnings: list[str],
    problems: list[str],
) -> BackendSpec | None:
    if src.path is None or not read_backends:
        return None
    if not src.path.is_dir():
        problems.append(
            f"source package {src.name}: directory {src.path} (location {src.location!r} "
            "in the lock) does not exist"
        )
        return None
    try:
        spec = read_build_backend(src.path)
    except WorkspaceError as exc:
        warnings.append(f"source package {src.name}: {exc.message}")
        return None
    if spec is None:
        return None
    if spec.workspace:
        warnings.append(
            f"source package {src.name}: build backend {spec.name} is inherited from "
            f"[workspace.dependencies] ({spec.where}); make sure it is pinned there "
            '(version = "==x.y.z")'
        )
    elif not spec.is_pinned:
        shown = f"version {spec.version!r}" if spec.version else "no version"
        warnings.append(
            f"source package {src.name}: build backend {spec.name} is not pinned ({shown}); "
            f'pin it in {spec.where}: version = "==x.y.z"'
        )
    return spec


def _source_warnings(entries: list[CondaSource], root: Path, warnings: list[str]) -> None:
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
    pkg: PypiPackage, ignore_non_wheel: bool, warnings: list[str], problems: list[str]
) -> PlanItem:
    source = pkg.url or (str(pkg.path) if pkg.path is not None else pkg.location)
    if pkg.kind == "wheel":
        return PlanItem(
            action="download",
            kind="wheel",
            name=pkg.name,
            version=pkg.version,
            file_name=pkg.file_name,
            source=source,
            archive_path=f"pypi/{pkg.file_name}",
            hashes=pkg.hashes,
            entry=pkg,
        )
    if pkg.kind == "local-wheel":
        return PlanItem(
            action="copy",
            kind="local-wheel",
            name=pkg.name,
            version=pkg.version,
            file_name=pkg.file_name,
            source=source,
            archive_path=f"pypi/{pkg.file_name}",
            hashes=pkg.hashes,
            entry=pkg,
        )
    if pkg.kind == "git" and pkg.git is not None:
        source = pkg.git.short
    if pkg.kind == "source-tree" and pkg.path is None:
        problems.append(
            f"PyPI package {pkg.name} at {pkg.location}: a remote location that is neither a "
            "wheel nor an sdist is not supported"
        )
        return PlanItem(
            action="skip",
            kind="source-tree",
            name=pkg.name,
            version=pkg.version,
            file_name=None,
            source=source,
            archive_path=None,
            hashes=pkg.hashes,
            entry=pkg,
            reason="unsupported remote location",
        )
    if ignore_non_wheel:
        warnings.append(
            f"PyPI package {pkg.name} ({pkg.kind} at {pkg.location}) is not a wheel: "
            "skipped (--ignore-pypi-non-wheel)"
        )
        return PlanItem(
            action="skip",
            kind=pkg.kind,
            name=pkg.name,
            version=pkg.version,
            file_name=pkg.file_name,
            source=source,
            archive_path=None,
            hashes=pkg.hashes,
            entry=pkg,
            reason="not a wheel (--ignore-pypi-non-wheel)",
        )
    return PlanItem(
        action="build-wheel",
        kind=pkg.kind,
        name=pkg.name,
        version=pkg.version,
        file_name=pkg.file_name,
        source=source,
        archive_path=None,
        hashes=pkg.hashes,
        entry=pkg,
    )


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
