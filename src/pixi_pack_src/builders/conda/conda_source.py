"""Build ``conda_source`` lock entries with ``pixi build`` (docs/pixi-build.md).

Two steps for the caller (``pack`` and ``inspect``):

- :func:`plan_source_builds` groups the entries of every selected platform into
  :class:`BuildJob` s, one per (package location, target): native packages get one job per
  platform subdir; a noarch package gets one job for all platforms of the call (built once,
  with ``--target-platform`` the host's subdir when it is one of them, else the first);
  entries of a location that also has native entries on that platform ride along with the
  native job (one ``pixi build`` yields every output). Pure: no I/O.
- :func:`build_sources` runs them and returns, for every lock id, the :class:`BuiltArtifact`
  that satisfies it (a noarch artifact appears under every lock id it satisfies).

For each job: the package's build backend spec is read from its manifest and must be an exact
pin (``==x.y.z``) unless ``allow_unpinned_backends`` (then a warning) or the backend is
overridden (``--backend-override NAME=PATH`` -> ``PIXI_BUILD_BACKEND_OVERRIDE``); git
locations are checked out at exactly the locked commit (:mod:`.git`); the build cache is
consulted (key: source content, target, variants, backend spec and overrides, pixi version);
on a miss ``pixi build --path <pkg> --output-dir <fresh empty dir> --target-platform <subdir>``
runs (``pixi publish --target-dir`` when ``build`` is gone), its output in a log file (and
streamed at ``-v``); the artifacts are matched to the lock entries (:mod:`.matching`), stored
in the cache, and described for the archive's provenance (docs/archive-format.md, "`pixi-pack-src.json`", no
absolute paths: ``{workspace}``, ``{checkout}`` and ``{outdir}`` placeholders).

Parallelism (``build_jobs``): pixi coordinates its *global* caches across processes
(prefix-dev/pixi#6233 serialises installs of backend environments), but nothing documents
concurrent builds in one workspace, whose ``.pixi/bld`` and ``.pixi/artifacts-v0`` they share
(prefix-dev/pixi#1482 is still open). So jobs run in parallel only across workspaces (e.g. a
git checkout and the local workspace); jobs of the same workspace always run one at a time.
The default, 1, runs everything in order.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import posixpath
import re
import shutil
import tempfile
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rattler import MatchSpec, RepoDataRecord

from pixi_pack_src.archive.channel import record_from_archive, validate_records
from pixi_pack_src.builders import git as git_checkout
from pixi_pack_src.builders.conda import pixi_cli
from pixi_pack_src.builders.conda.backend import (
    BackendUse,
    backend_status,
    check_backend,
    package_dir,
    spec_string,
)
from pixi_pack_src.builders.conda.buildcache import BuildCache, CachedBuild
from pixi_pack_src.builders.conda.matching import (
    ArtifactInfo,
    EntryMatch,
    match_entry,
    read_artifact,
)
from pixi_pack_src.builders.conda.pixi_cli import PixiCommand, PixiInfo
from pixi_pack_src.builders.sourcetree import tree_sha256
from pixi_pack_src.errors import (
    BuildError,
    PixiPackSrcError,
    UnsupportedPackageError,
    UsageError,
)
from pixi_pack_src.hashing import file_sha256
from pixi_pack_src.host import host_subdir
from pixi_pack_src.layout import conda_path
from pixi_pack_src.lock.model import CondaSource, GitLocation, SourceLocationKind
from pixi_pack_src.lock.workspace import read_build_backend
from pixi_pack_src.reporter import Reporter

log = logging.getLogger(__name__)

KEY_SCHEMA = 1
PLACEHOLDER_WORKSPACE = "{workspace}"
PLACEHOLDER_CHECKOUT = "{checkout}"
PLACEHOLDER_OUTDIR = "{outdir}"
BACKEND_OVERRIDE_ENV = "PIXI_BUILD_BACKEND_OVERRIDE"
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_DEP_NAME = re.compile(r"^\s*([A-Za-z0-9_.\-]+)")


# -- options and results --------------------------------------------------------------------


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


@dataclass(frozen=True, eq=False)
class BuiltArtifact:
    """A built package file, the lock entries it satisfies, and its provenance.

    Compared and hashed by identity: a noarch artifact is one object under all its lock ids.
    """

    path: Path
    file_name: str
    subdir: str
    record: RepoDataRecord = field(repr=False, compare=False)
    lock_ids: tuple[str, ...]
    provenance: Mapping[str, object]  # {"origin", "builder"} (docs/archive-format.md)
    from_cache: bool
    warnings: tuple[str, ...] = ()

    @property
    def archive_path(self) -> str:
        return conda_path(self.subdir, self.file_name)


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
            if src.location_kind == "url" or (src.path is None and src.git is None):
                raise UnsupportedPackageError(
                    f"conda source package {src.lock_id}: URL-located source packages are not "
                    "supported (pixi does not write them yet)",
                    hint="use a path or git source, or build it yourself and pass the .conda "
                    "with --inject",
                )
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


# -- detection ------------------------------------------------------------------------------


def detect_pixi(options: SourceBuildOptions) -> PixiInfo:
    """The pixi to run: path, version (>= 0.68), ``build`` or ``publish`` and why."""
    return pixi_cli.detect(options.pixi)


# -- inspect --------------------------------------------------------------------------------


def inspect_jobs(
    jobs: Sequence[BuildJob], *, options: SourceBuildOptions
) -> list[dict[str, object]]:
    """For ``inspect``: per job, where it comes from, whether the cache has it, the command.

    Never builds and never touches the network (git sources are not checked out: their key
    is the commit). Without a usable pixi, ``cached`` is ``null`` and ``pixi`` explains why.
    """
    info: PixiInfo | None = None
    problem: str | None = None
    if jobs:
        try:
            info = detect_pixi(options)
        except BuildError as exc:
            problem = exc.message
    cache = BuildCache(options.cache_root) if options.cache_root is not None else None
    out = []
    for job in jobs:
        doc = job.to_json()
        doc["argv"] = list(job.preview_argv(info.command if info else "build"))
        identity = job.source_identity(exclude=_excludes(options))
        doc["source"] = identity
        doc["backend"] = backend_status(
            job,
            allow_unpinned=options.allow_unpinned_backends,
            overrides=options.backend_overrides,
        ).to_json()
        cached: bool | None = None
        key: str | None = None
        if info is not None:
            key = job.cache_key(
                info.version, backend_overrides=options.backend_overrides, identity=identity
            )
            cached = cache.contains(key) if cache is not None else False
        doc["cache-key"] = key
        doc["cached"] = cached
        doc["pixi"] = (
            {
                "path": str(info.path),
                "version": info.version,
                "command": info.command,
                "why": info.why,
            }
            if info is not None
            else {"error": problem}
        )
        out.append(doc)
    return out


# -- building -------------------------------------------------------------------------------


def build_sources(
    jobs: Sequence[BuildJob], *, options: SourceBuildOptions, reporter: Reporter
) -> dict[str, BuiltArtifact]:
    """Build (or take from the cache) every job; lock id -> the artifact satisfying it."""
    if not jobs:
        return {}
    return _Builder(options, reporter).run(jobs)


def check_environment(
    records: Sequence[RepoDataRecord], built: Mapping[str, BuiltArtifact]
) -> None:
    """Validate the whole set (locked binaries plus built records): a built package whose
    dependency is missing fails with a :class:`BuildError` naming it; then
    :func:`pixi_pack_src.archive.channel.validate_records` checks everything else."""
    artifacts = list({id(a): a for a in built.values()}.values())
    every = [*records, *(a.record for a in artifacts)]
    for artifact in artifacts:
        for dep in artifact.record.depends:
            spec = MatchSpec(dep)
            if spec.name.normalized.startswith("__"):
                continue
            name = spec.name.normalized
            if any(r.name.normalized == name and spec.matches(r) for r in every):
                continue
            present = [
                f"{r.name.normalized} {r.version}" for r in every if r.name.normalized == name
            ]
            raise BuildError(
                f"the built package {artifact.file_name} depends on `{dep}`, which "
                + (
                    f"the environment does not satisfy (it has {', '.join(present)})"
                    if present
                    else "is not in the environment"
                ),
                hint="its run dependencies changed since the lock was written: re-lock with "
                "`pixi lock`, or pass the missing package with --inject",
            )
    validate_records(every)


# -- helpers --------------------------------------------------------------------------------


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


def _excludes(options: SourceBuildOptions) -> tuple[Path, ...]:
    extra = [options.work_dir]
    if options.cache_root is not None:
        extra.append(options.cache_root)
    if options.log_dir is not None:
        extra.append(options.log_dir)
    return (*options.exclude_paths, *extra)


def _safe(text: str) -> str:
    return _SAFE.sub("_", text).strip("_")[:60] or "pkg"


def _source_run_deps(job: BuildJob) -> list[str]:
    out: set[str] = set()
    for entry in job.entries:
        dep_names = {m[1].lower() for d in entry.source.depends if (m := _DEP_NAME.match(d))}
        out.update(n for n in entry.source.source_depends if n.lower() in dep_names)
    return sorted(out)


@dataclass
class _Prepared:
    identity: dict[str, object]
    key: str
    backend: BackendUse | None
    warnings: list[str]


class _Builder:
    def __init__(self, options: SourceBuildOptions, reporter: Reporter) -> None:
        self.options = options
        self.reporter = reporter
        self.cache = BuildCache(options.cache_root) if options.cache_root is not None else None
        self._pixi_lock = threading.Lock()
        self._info: PixiInfo | None = None
        self._version: str | None = None
        self._exe: Path | None = None
        self._ws_locks: dict[Path, threading.Lock] = {}
        self._ws_guard = threading.Lock()
        self._log_dir: Path | None = None
        self._temp_logs = False
        self._outdir_root: Path | None = None
        self.overrides = self._check_overrides(options.backend_overrides)

    # -- setup --------------------------------------------------------------------------------

    @staticmethod
    def _check_overrides(overrides: Mapping[str, Path]) -> dict[str, Path]:
        checked = {}
        for name, path in overrides.items():
            if not name or "=" in name or "," in name:
                raise UsageError(
                    f"--backend-override: {name!r} is not a backend name",
                    hint="write NAME=PATH, e.g. pixi-build-python=/opt/bin/pixi-build-python",
                )
            exe = Path(path).expanduser().absolute()
            if not exe.is_file() or not os.access(exe, os.X_OK):
                raise UsageError(
                    f"--backend-override {name}={path}: not an executable file",
                    hint="pass the path of the backend executable to use",
                )
            checked[name] = exe
        return checked

    def _env_overlay(self) -> dict[str, str]:
        if not self.overrides:
            return {}
        value = ",".join(f"{n}={p}" for n, p in sorted(self.overrides.items()))
        return {BACKEND_OVERRIDE_ENV: value}

    def pixi_info(self) -> PixiInfo:
        """The full detection (adds the ``build --help`` probe), once, on the first miss."""
        with self._pixi_lock:
            if self._info is None:
                assert self._exe is not None
                assert self._version is not None
                command, why = pixi_cli.probe_command(self._exe, self._version)
                self._info = PixiInfo(self._exe, self._version, command, why)
                log.info("pixi %s at %s: %s", self._version, self._exe, why)
            return self._info

    def _tidy_temp_logs(self) -> None:
        """A temporary log directory goes when it is empty (success) or the job was cancelled
        (Ctrl-C); the logs of a failed build stay, their path is in the error message."""
        if not self._temp_logs or self._log_dir is None:
            return
        if self.options.cancel is not None and self.options.cancel.is_set():
            shutil.rmtree(self._log_dir, ignore_errors=True)
            return
        with contextlib.suppress(OSError):
            self._log_dir.rmdir()  # only when empty

    def log_dir(self) -> Path:
        with self._pixi_lock:
            if self._log_dir is None:
                if self.options.log_dir is not None:
                    self._log_dir = self.options.log_dir
                elif self.options.cache_root is not None:
                    self._log_dir = self.options.cache_root / "build-logs"
                else:
                    self._log_dir = Path(tempfile.mkdtemp(prefix="pixi-pack-src-build-logs-"))
                    self._temp_logs = True
                self._log_dir.mkdir(parents=True, exist_ok=True)
            return self._log_dir

    def outdir_root(self) -> Path:
        with self._pixi_lock:
            if self._outdir_root is None:
                if self.options.keep_build_dir:
                    self._outdir_root = Path(tempfile.mkdtemp(prefix="pixi-pack-src-builds-"))
                else:
                    self._outdir_root = self.options.work_dir / "conda-builds"
                self._outdir_root.mkdir(parents=True, exist_ok=True)
            return self._outdir_root

    def _ws_lock(self, root: Path) -> threading.Lock:
        with self._ws_guard:
            return self._ws_locks.setdefault(root.resolve(), threading.Lock())

    # -- the run ------------------------------------------------------------------------------

    def run(self, jobs: Sequence[BuildJob]) -> dict[str, BuiltArtifact]:
        # Fail fast on what needs no pixi: unpinned backends of path packages.
        backends: dict[str, tuple[BackendUse, tuple[str, ...]]] = {}
        for job in jobs:
            if job.path is not None:
                if not job.path.exists():
                    raise BuildError(
                        f"source package {job.label}: {job.path} does not exist",
                        hint="check the location in pixi.lock, or re-lock with `pixi lock`",
                    )
                backends[job.key] = check_backend(
                    job.path,
                    label=job.label,
                    allow_unpinned=self.options.allow_unpinned_backends,
                    overrides=self.overrides,
                )
        self._exe = pixi_cli.find_pixi(self.options.pixi)
        self._version = pixi_cli.pixi_version(self._exe)
        excludes = _excludes(self.options)
        prepared: dict[str, _Prepared] = {}
        for job in jobs:
            identity = job.source_identity(exclude=excludes)
            key = job.cache_key(self._version, backend_overrides=self.overrides, identity=identity)
            use, warns = backends.get(job.key, (None, ()))
            prepared[job.key] = _Prepared(identity, key, use, list(warns))
            for w in warns:
                log.warning("%s", w)

        self.reporter.stage_started("build", items=len(jobs))
        results: list[list[BuiltArtifact]] = []
        try:
            if self.options.build_jobs <= 1 or len(jobs) == 1:
                for job in jobs:
                    results.append(self._job_reported(job, prepared[job.key]))
            else:
                results = self._parallel(jobs, prepared)
        finally:
            self.reporter.stage_finished("build")
            self._tidy_temp_logs()
        out: dict[str, BuiltArtifact] = {}
        for artifacts in results:
            for artifact in artifacts:
                for lock_id in artifact.lock_ids:
                    out[lock_id] = artifact
        return out

    def _parallel(
        self, jobs: Sequence[BuildJob], prepared: Mapping[str, _Prepared]
    ) -> list[list[BuiltArtifact]]:
        with ThreadPoolExecutor(max_workers=self.options.build_jobs) as pool:
            futures: list[Future[list[BuiltArtifact]]] = [
                pool.submit(self._job_reported, job, prepared[job.key]) for job in jobs
            ]
            _done, pending = wait(futures, return_when=FIRST_EXCEPTION)
            for fut in pending:
                fut.cancel()
            wait(pending)
            for fut in futures:  # the first failure in job order
                if fut.done() and not fut.cancelled() and fut.exception() is not None:
                    raise fut.exception()  # type: ignore[misc]
            return [f.result() for f in futures]

    def _job_reported(self, job: BuildJob, prep: _Prepared) -> list[BuiltArtifact]:
        self.reporter.task_started(job.key, label=f"{job.label} [{job.target}]")
        try:
            artifacts = self._job(job, prep)
        except BaseException:
            self.reporter.task_finished(job.key, outcome="failed")
            raise
        cached = bool(artifacts) and all(a.from_cache for a in artifacts)
        self.reporter.task_finished(
            job.key,
            outcome="cached" if cached else "built",
            detail=", ".join(a.file_name for a in artifacts),
        )
        return artifacts

    def _job(self, job: BuildJob, prep: _Prepared) -> list[BuiltArtifact]:
        if self.cache is not None:
            hit = self.cache.lookup(prep.key)
            if hit is not None:
                if job.git is not None:
                    self._check_cached_backend(job, prep, hit.meta)
                try:
                    artifacts = self._from_files(job, prep, hit.files, hit.meta, from_cache=True)
                except BuildError as exc:
                    log.info(
                        "the cached build of %s does not match the lock (%s); rebuilding",
                        job.label,
                        exc.message,
                    )
                else:
                    log.info("%s [%s]: from the build cache", job.label, job.target)
                    return artifacts
        return self._build(job, prep)

    def _check_cached_backend(
        self, job: BuildJob, prep: _Prepared, meta: Mapping[str, Any]
    ) -> None:
        """A git package's backend is read at build time; apply the pin rule on hits too."""
        backend = meta.get("backend")
        if meta.get("backend-pinned") or self.options.allow_unpinned_backends:
            if isinstance(backend, dict) and not meta.get("backend-pinned"):
                message = (
                    f"the build backend {backend.get('name')} of {job.label} is not pinned "
                    f"({backend.get('spec')!r}) at {job.location}"
                )
                prep.warnings.append(message)
                log.warning("%s", message)
            return
        shown = (
            f"{backend.get('name')} {backend.get('spec')!r}" if isinstance(backend, dict) else "?"
        )
        raise BuildError(
            f"the build backend of {job.label} is not pinned ({shown}) at commit "
            f"{job.git.rev[:12] if job.git else '?'}",
            hint='pin it (version = "==X.Y.Z") in the package manifest of that repository and '
            "re-lock, or pass --allow-unpinned-backends",
        )

    def _package_path(self, job: BuildJob, prep: _Prepared) -> tuple[Path, Path]:
        """(the --path to pass, the directory whose workspace pixi will use)."""
        if job.git is None:
            assert job.path is not None
            root = job.workspace_root if job.path.is_relative_to(job.workspace_root) else job.path
            return job.path, root
        checkout_root = (
            self.options.cache_root
            if self.options.cache_root is not None
            else self.options.work_dir
        )
        checkout = git_checkout.checkout(job.git.url, job.git.rev, root=checkout_root)
        sub = (job.git.subdirectory or "").strip("/")
        package = checkout / sub if sub else checkout
        if not package.exists():
            raise BuildError(
                f"source package {job.label}: the commit {job.git.rev[:12]} of {job.git.url} "
                f"has no `{sub}`",
                hint="check the subdirectory in the lock's location, or re-lock with `pixi lock`",
            )
        use, warns = check_backend(
            package,
            label=job.label,
            allow_unpinned=self.options.allow_unpinned_backends,
            overrides=self.overrides,
        )
        prep.backend = use
        prep.warnings.extend(warns)
        for w in warns:
            log.warning("%s", w)
        return package, checkout

    def _build(self, job: BuildJob, prep: _Prepared) -> list[BuiltArtifact]:
        package, ws_root = self._package_path(job, prep)
        info = self.pixi_info()
        outdir = Path(
            tempfile.mkdtemp(
                prefix=f"{_safe('-'.join(job.names))}-{job.target}-", dir=self.outdir_root()
            )
        )
        argv = pixi_cli.build_argv(
            info.path,
            info.command,
            package=package,
            output_dir=outdir,
            target_platform=job.target_platform,
            verbosity=self.options.verbosity,
            auth_file=self.options.auth_file,
            config_file=self.options.config_file,
        )
        log_file = self.log_dir() / f"{_safe('-'.join(job.names))}-{job.target}-{prep.key[:12]}.log"
        what = f"pixi {info.command} of {job.label} for {job.target_platform}"
        log.info("building %s", what)
        with self._ws_lock(ws_root):
            inv = pixi_cli.run_build(
                argv,
                cwd=package_dir(package),
                log_file=log_file,
                env_overlay=self._env_overlay(),
                stream=self.options.verbosity >= 1,
                timeout=self.options.timeout,
                what=what,
                cancel=self.options.cancel,
            )
        if inv.returncode != 0:
            raise self._failure(job, info, inv, outdir)
        files = sorted(p for p in outdir.iterdir() if p.name.endswith((".conda", ".tar.bz2")))
        if not files:
            raise BuildError(
                f"{what} succeeded but wrote no package into {outdir}",
                log_file=log_file,
                output_tail=inv.output_tail,
                hint="see the log; the package may produce no output for this platform",
            )
        meta = {
            "pixi-version": info.version,
            "command": info.command,
            "argv": list(job.preview_argv(info.command)),
            "backend": prep.backend.to_json() if prep.backend is not None else None,
            "backend-pinned": prep.backend.pinned if prep.backend is not None else False,
            "source": prep.identity,
            "lock-ids": list(job.lock_ids),
        }
        artifacts = self._from_files(job, prep, files, meta, from_cache=False)
        if self.cache is not None:
            stored: CachedBuild = self.cache.store(prep.key, files, meta)
            by_name = {p.name: p for p in stored.files}
            artifacts = [
                _relocated(a, by_name[a.file_name]) if a.file_name in by_name else a
                for a in artifacts
            ]
            if not self.options.keep_build_dir:
                shutil.rmtree(outdir, ignore_errors=True)
        if self._temp_logs:
            log_file.unlink(missing_ok=True)
        if self.options.keep_build_dir:
            log.info("kept the output of %s in %s", what, outdir)
        return artifacts

    def _failure(
        self, job: BuildJob, info: PixiInfo, inv: pixi_cli.Invocation, outdir: Path
    ) -> BuildError:
        code = inv.returncode
        what = f"`pixi {info.command}` of {job.label} for {job.target_platform}"
        if code == -9:
            message = f"{what} timed out after {self.options.timeout:g} s"
        elif code == 127:
            message = f"{what} could not start: pixi not found ({info.path})"
        elif code == 101:
            message = f"{what} crashed (exit code 101, an internal pixi error)"
        elif code == 2:
            message = f"{what} was rejected as a usage error (exit code 2)"
        else:
            message = f"{what} failed with exit code {code}"
        hints = [f"the full log is {inv.log_file}"]
        if not self.options.keep_build_dir:
            hints.append("pass --keep-build-dir to keep the build's output directory")
        else:
            hints.append(f"the output directory is kept at {outdir}")
        source_runs = _source_run_deps(job)
        if (
            code == 1
            and info.command == "publish"
            and info.version_tuple >= pixi_cli.PUBLISH_SELF_CONTAINED
            and source_runs
        ):
            hints.insert(
                0,
                f"pixi {info.version}'s `pixi publish` refuses packages whose run dependencies "
                f"are source packages ({', '.join(source_runs)}; prefix-dev/pixi#6526); use a "
                "pixi that still has `pixi build`, or make the package self-contained",
            )
        if code == 2:
            hints.insert(0, f"pixi {info.version} may not accept the flags we pass; see -vv")
        if code == 101:
            hints.insert(0, "this is a pixi bug: report it to prefix-dev/pixi with the log")
        if not job.is_noarch and job.target_platform != host_subdir():
            hints.insert(
                0,
                f"build this package on a `{job.target_platform}` runner (see the CI matrix "
                "example)",
            )
        return BuildError(
            message, log_file=inv.log_file, output_tail=inv.output_tail, hint="; ".join(hints)
        )

    # -- matching and results -------------------------------------------------------------

    def _from_files(
        self,
        job: BuildJob,
        prep: _Prepared,
        files: Sequence[Path],
        meta: Mapping[str, Any],
        *,
        from_cache: bool,
    ) -> list[BuiltArtifact]:
        infos = [read_artifact(p) for p in files]
        what = f"pixi {meta.get('command', 'build')} of {job.label}"
        matches: list[EntryMatch] = [
            match_entry(
                e.source, e.platform, infos, allow_drift=self.options.allow_drift, what=what
            )
            for e in job.entries
        ]
        by_file: dict[str, list[EntryMatch]] = {}
        for m in matches:
            by_file.setdefault(m.artifact.file_name, []).append(m)
        if not from_cache:
            extra = sorted({i.file_name for i in infos} - set(by_file))
            if extra:
                log.info(
                    "%s: not packing %s (no lock entry wants them)", job.label, ", ".join(extra)
                )
        artifacts = []
        for file_name, group in sorted(by_file.items()):
            chosen: ArtifactInfo = group[0].artifact
            warnings = [*prep.warnings]
            for m in group:
                warnings.extend(w for w in m.warnings if w not in warnings)
            for w in warnings:
                if w not in prep.warnings:
                    log.warning("%s", w)
            artifacts.append(
                BuiltArtifact(
                    path=chosen.path,
                    file_name=file_name,
                    subdir=chosen.subdir,
                    record=record_from_archive(chosen.path),
                    lock_ids=tuple(sorted(m.lock_id for m in group)),
                    provenance=_provenance(job, prep, group, meta),
                    from_cache=from_cache,
                    warnings=tuple(warnings),
                )
            )
        return artifacts


def _relocated(artifact: BuiltArtifact, path: Path) -> BuiltArtifact:
    record = record_from_archive(path)
    return BuiltArtifact(
        path=path,
        file_name=artifact.file_name,
        subdir=artifact.subdir,
        record=record,
        lock_ids=artifact.lock_ids,
        provenance=artifact.provenance,
        from_cache=artifact.from_cache,
        warnings=artifact.warnings,
    )


def _provenance(
    job: BuildJob, prep: _Prepared, group: Sequence[EntryMatch], meta: Mapping[str, Any]
) -> dict[str, object]:
    first = min(group, key=lambda m: m.lock_id)
    entry = next(e.source for e in job.entries if e.source.lock_id == first.lock_id)
    origin: dict[str, object] = {
        "type": "conda-source",
        "lock-ids": sorted(m.lock_id for m in group),
        "location": job.location,
        "variants": dict(sorted(entry.variants.items())),
        "match": list(first.checks),
    }
    ident = prep.identity
    if job.git is not None:
        origin["git"] = job.git.url
        origin["rev"] = job.git.rev
        if job.git.subdirectory:
            origin["subdirectory"] = job.git.subdirectory
    else:
        origin["source-tree-sha256"] = ident.get("tree-sha256")
    if job.build_source:
        origin["build-source"] = dict(sorted(job.build_source.items()))
    drifts = [m.drift for m in group if m.drift is not None]
    if drifts:
        origin["drift"] = dict(drifts[0])
    builder: dict[str, object] = {
        "argv": list(meta.get("argv") or job.preview_argv()),
        "pixi-version": meta.get("pixi-version"),
        "command": meta.get("command"),
        "backend": meta.get("backend"),
    }
    return {"origin": origin, "builder": builder}
