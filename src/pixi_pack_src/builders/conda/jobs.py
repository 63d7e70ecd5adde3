"""What is to be built: the options, one :class:`BuildJob` per ``pixi build`` run, its cache key.

:func:`plan_source_builds` groups the ``conda_source`` entries of every selected platform into
jobs, one per (package location, target): native packages get one job per platform subdir; a
noarch package gets one job for all platforms of the call (built once, with
``--target-platform`` the host's subdir when it is one of them, else the first); entries of a
location that also has native entries on that platform ride along with the native job (one
``pixi build`` yields every output). Pure: no I/O.

A job's cache key (:meth:`BuildJob.cache_key`) covers what the build reads: the source tree
(path) or commit (git), the build-source pin and the source packages of the build/host
environments, the target, the variants, the backend spec and overrides, and pixi's version.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pixi_pack_src.builders.conda import pixi_cli
from pixi_pack_src.builders.conda.backend import package_dir, spec_string
from pixi_pack_src.builders.conda.pixi_cli import PixiCommand
from pixi_pack_src.builders.sourcetree import tree_sha256
from pixi_pack_src.errors import PixiPackSrcError, UnsupportedPackageError
from pixi_pack_src.hashing import file_sha256
from pixi_pack_src.host import host_subdir
from pixi_pack_src.lock.model import CondaSource, GitLocation, SourceLocationKind
from pixi_pack_src.lock.workspace import read_build_backend

KEY_SCHEMA = 1
PLACEHOLDER_WORKSPACE = "{workspace}"
PLACEHOLDER_CHECKOUT = "{checkout}"
PLACEHOLDER_OUTDIR = "{outdir}"


@dataclass(frozen=True, kw_only=True)
class SourceBuildOptions:
    """How to build conda source packages (the CLI fills it from pack's options)."""

    work_dir: Path  # scratch space (output dirs, checkouts without a cache)
    pixi: str | None = None  # --pixi PATH (else $PIXI_PACK_SRC_PIXI, else PATH)
    allow_unpinned_backends: bool = False
    backend_overrides: Mapping[str, Path] = field(default_factory=dict)
    allow_drift: bool = False
    build_jobs: int = 1
    keep_build_dir: bool = False
    verbosity: int = 0  # verbose - quiet; >= 1 streams pixi's output, >= 2 passes -v to pixi
    cache_root: Path | None = None  # --use-cache: build cache + git checkouts + logs
    timeout: float | None = None  # per pixi invocation, seconds
    auth_file: Path | None = None  # forwarded as --auth-file
    config_file: Path | None = None  # forwarded as --config-file
    log_dir: Path | None = None  # default: <cache>/build-logs, else a kept temp dir
    exclude_paths: tuple[Path, ...] = ()  # never part of a source-tree hash (e.g. the output)
    # set from another thread (Ctrl-C): the running pixi is killed, the next jobs not started
    cancel: threading.Event | None = field(default=None, compare=False)

    @property
    def hash_excludes(self) -> tuple[Path, ...]:
        """Never part of a source-tree hash: our own work, cache and log directories."""
        extra = [self.work_dir]
        if self.cache_root is not None:
            extra.append(self.cache_root)
        if self.log_dir is not None:
            extra.append(self.log_dir)
        return (*self.exclude_paths, *extra)


@dataclass(frozen=True)
class JobEntry:
    """One lock entry of a job, with the subdir of the lock platform it belongs to."""

    platform: str
    source: CondaSource


@dataclass(frozen=True)
class BuildJob:
    """One ``pixi build`` invocation: a package location and a target (a subdir or noarch)."""

    key: str  # "<origin>|<target>", e.g. "path:src/pkg|noarch"
    origin_key: str
    location: str  # verbatim from the lock
    location_kind: SourceLocationKind
    path: Path | None  # the package directory (or manifest), for path locations
    git: GitLocation | None
    build_source: Mapping[str, str] | None
    target: str  # "noarch" or the subdir
    target_platform: str  # what --target-platform gets
    entries: tuple[JobEntry, ...]
    workspace_root: Path

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(e.source.name for e in self.entries))

    @property
    def lock_ids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(e.source.lock_id for e in self.entries))

    @property
    def platforms(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(e.platform for e in self.entries))

    @property
    def is_noarch(self) -> bool:
        return self.target == "noarch"

    @property
    def label(self) -> str:
        return f"{', '.join(self.names)} ({self.location})"

    @property
    def path_arg(self) -> str:
        """``--path`` with placeholders: ``{workspace}/src/pkg`` or ``{checkout}/sub``."""
        if self.git is not None:
            sub = (self.git.subdirectory or "").strip("/")
            return f"{PLACEHOLDER_CHECKOUT}/{sub}" if sub else PLACEHOLDER_CHECKOUT
        assert self.path is not None
        rel = os.path.relpath(self.path, self.workspace_root).replace(os.sep, "/")
        rel = posixpath.normpath(rel)
        return PLACEHOLDER_WORKSPACE if rel == "." else f"{PLACEHOLDER_WORKSPACE}/{rel}"

    def preview_argv(self, command: PixiCommand = "build") -> tuple[str, ...]:
        """The command line a pack runs, with placeholders (for ``inspect`` and provenance)."""
        return tuple(
            pixi_cli.build_argv(
                "pixi",
                command,
                package=self.path_arg,
                output_dir=PLACEHOLDER_OUTDIR,
                target_platform=self.target_platform,
            )
        )

    @property
    def argv_preview(self) -> tuple[str, ...]:
        return self.preview_argv("build")

    def source_identity(self, *, exclude: Sequence[Path] = ()) -> dict[str, object]:
        """What the build reads: tree hash (path) or commit (git), build source, deps."""
        ident: dict[str, object]
        if self.git is not None:
            ident = {
                "kind": "git",
                "url": self.git.url,
                "rev": self.git.rev,
                "subdirectory": self.git.subdirectory,
            }
        else:
            assert self.path is not None
            ident = {
                "kind": "path",
                "location": self.location,
                "tree-sha256": tree_sha256(package_dir(self.path), exclude=exclude),
                "workspace-manifest-sha256": _workspace_manifest_sha256(self.workspace_root),
            }
        base = package_dir(self.path) if self.path is not None else None
        if self.build_source:
            ident["build-source"] = _pin_identity(self.build_source, base, exclude)
        deps: dict[str, object] = {}
        for entry in self.entries:
            built_with = _build_host_source_names(entry.source)
            for name, spec in entry.source.source_depends.items():
                if name.lower() in built_with:
                    deps[name] = _pin_identity(spec, base, exclude)
        if deps:
            ident["source-depends"] = dict(sorted(deps.items()))
        return ident

    def cache_key(
        self,
        pixi_version: str,
        *,
        backend_overrides: Mapping[str, Path] | None = None,
        exclude: Sequence[Path] = (),
        identity: Mapping[str, object] | None = None,
    ) -> str:
        """The build-cache key: source content, target, variants, backend, pixi version."""
        backend: str | None = None
        if self.path is not None:
            try:
                spec = read_build_backend(package_dir(self.path))
            except PixiPackSrcError:  # an unreadable manifest fails later, with its message
                spec = None
            backend = spec_string(spec) if spec is not None else None
        material = {
            "schema": KEY_SCHEMA,
            "source": dict(identity)
            if identity is not None
            else self.source_identity(exclude=exclude),
            "target": self.target,
            "variants": sorted(
                {json.dumps(dict(e.source.variants), sort_keys=True) for e in self.entries}
            ),
            "backend": backend,
            "backend-overrides": {
                name: file_sha256(path) for name, path in sorted((backend_overrides or {}).items())
            },
            "pixi-version": pixi_version,
        }
        blob = json.dumps(material, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()

    def to_json(self) -> dict[str, object]:
        return {
            "key": self.key,
            "names": list(self.names),
            "lock-ids": list(self.lock_ids),
            "platforms": list(self.platforms),
            "location": self.location,
            "location-kind": self.location_kind,
            "target": self.target,
            "target-platform": self.target_platform,
            "argv": list(self.argv_preview),
        }


# -- planning -------------------------------------------------------------------------------


def _origin_key(src: CondaSource, root: Path) -> str:
    if src.git is not None:
        sub = (src.git.subdirectory or "").strip("/")
        return f"git:{src.git.url}@{src.git.rev}#{sub}"
    assert src.path is not None
    rel = posixpath.normpath(os.path.relpath(src.path, root).replace(os.sep, "/"))
    return f"path:{rel}"


def unsupported_location(src: CondaSource) -> UnsupportedPackageError | None:
    """Why ``src`` cannot be built: a source package located by URL (pixi does not write
    them) or by nothing; ``None`` for a path or git source. The plan refuses these before any
    request (:mod:`pixi_pack_src.plan.checks`)."""
    if src.location_kind != "url" and (src.path is not None or src.git is not None):
        return None
    return UnsupportedPackageError(
        f"source package {src.name} at {src.location}: URL-located source packages are not "
        "supported (pixi does not write them)",
        hint="use a path or git source, or build it yourself and pass the .conda with --inject",
    )


def plan_source_builds(
    sources_by_platform: Mapping[str, Sequence[CondaSource]],
    *,
    workspace_root: Path,
    host: str | None = None,
) -> list[BuildJob]:
    """Group the source entries of every platform (subdir -> entries) into build jobs."""
    host = host or host_subdir()
    grouped: dict[tuple[str, str], list[JobEntry]] = {}
    for platform in sorted(sources_by_platform):
        by_origin: dict[str, list[CondaSource]] = {}
        for src in sources_by_platform[platform]:
            unsupported = unsupported_location(src)
            if unsupported is not None:
                raise unsupported
            by_origin.setdefault(_origin_key(src, workspace_root), []).append(src)
        for origin, sources in by_origin.items():
            native = [e for e in sources if not e.is_noarch]
            target = platform if native else "noarch"
            group = grouped.setdefault((origin, target), [])
            group.extend(JobEntry(platform, e) for e in sources)
    jobs = []
    for (origin, target), entries in grouped.items():
        first = entries[0].source
        platforms = sorted({e.platform for e in entries})
        if target == "noarch":
            target_platform = host if host in platforms else platforms[0]
        else:
            target_platform = target
        pins = [e.source.source for e in entries if e.source.source]
        jobs.append(
            BuildJob(
                key=f"{origin}|{target}",
                origin_key=origin,
                location=first.location,
                location_kind=first.location_kind,
                path=first.path,
                git=first.git,
                build_source=pins[0] if pins else None,
                target=target,
                target_platform=target_platform,
                entries=tuple(sorted(entries, key=lambda e: (e.platform, e.source.lock_id))),
                workspace_root=workspace_root,
            )
        )
    return sorted(jobs, key=lambda j: (j.names, j.target, j.key))


# -- source identity ------------------------------------------------------------------------


def _workspace_manifest_sha256(root: Path) -> str | None:
    for name in ("pixi.toml", "pyproject.toml"):
        candidate = root / name
        if candidate.is_file():
            return file_sha256(candidate)
    return None


def _pin_identity(
    spec: Mapping[str, str], base: Path | None, exclude: Sequence[Path]
) -> dict[str, object]:
    ident: dict[str, object] = dict(sorted(spec.items()))
    rel = spec.get("path")
    if rel is not None and base is not None:
        target = Path(os.path.normpath(base / rel))
        if target.is_dir():
            ident["tree-sha256"] = tree_sha256(target, exclude=exclude)
        elif target.is_file():
            ident["sha256"] = file_sha256(target)
    return ident


def _build_host_source_names(src: CondaSource) -> set[str]:
    """Source packages in the entry's locked build or host environment (by name).

    Only those change what this package's build produces (pixi builds them internally); source
    *run* dependencies are built separately and do not enter the cache key.
    """
    names = set()
    for selector in (*src.build_packages, *src.host_packages):
        if selector.startswith("conda_source:"):
            names.add(selector.removeprefix("conda_source:").split("[", 1)[0].strip().lower())
    return names
