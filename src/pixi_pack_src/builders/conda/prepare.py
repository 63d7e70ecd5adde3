"""Before ``pixi build`` runs: backend overrides and pins, source identity and cache key, work
directories, the package directory (a git checkout at the locked commit), the build cache.

:func:`check_path_packages` fails fast on what needs no pixi (a missing package directory, an
unpinned backend of a path package); :func:`prepare_job` computes a job's identity and cache
key; :func:`package_dirs` gives the ``--path`` to pass (checking git locations out first, then
applying the backend rule to the checkout); :func:`cached_build` returns a verified cache hit,
with the backend rule applied to what the hit records. :func:`inspect_jobs` is the same
preparation for ``inspect``: it never builds and never touches the network.
(docs/pixi-build.md §6 backends, §7 the build cache, §9 git locations.)
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pixi_pack_src.builders import git as git_checkout
from pixi_pack_src.builders.conda import pixi_cli
from pixi_pack_src.builders.conda.backend import BackendUse, backend_status, check_backend
from pixi_pack_src.builders.conda.buildcache import BuildCache, CachedBuild
from pixi_pack_src.builders.conda.jobs import BuildJob, SourceBuildOptions
from pixi_pack_src.builders.conda.pixi_cli import PixiInfo
from pixi_pack_src.errors import BuildError, UsageError

log = logging.getLogger(__name__)

BACKEND_OVERRIDE_ENV = "PIXI_BUILD_BACKEND_OVERRIDE"


@dataclass
class PreparedJob:
    """What is known of a job before it runs: its identity, cache key, backend and warnings.

    ``backend`` and ``warnings`` grow when a git package is checked out (its manifest is only
    readable then).
    """

    identity: dict[str, object]
    key: str
    backend: BackendUse | None
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class BackendCheck:
    """The backend rule's verdict on a path package: the backend used and the warnings."""

    use: BackendUse
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class PackageDirs:
    """Where one build runs: the ``--path`` to pass and the workspace pixi will use for it."""

    package: Path
    workspace_root: Path


# -- overrides and pins ---------------------------------------------------------------------


def check_overrides(overrides: Mapping[str, Path]) -> dict[str, Path]:
    """``--backend-override NAME=PATH``: a backend name and an executable file, made absolute."""
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


def override_env(overrides: Mapping[str, Path]) -> dict[str, str]:
    """The environment that hands the overrides to pixi (``PIXI_BUILD_BACKEND_OVERRIDE``)."""
    if not overrides:
        return {}
    value = ",".join(f"{n}={p}" for n, p in sorted(overrides.items()))
    return {BACKEND_OVERRIDE_ENV: value}


def check_path_packages(
    jobs: Sequence[BuildJob], *, options: SourceBuildOptions, overrides: Mapping[str, Path]
) -> dict[str, BackendCheck]:
    """Job key -> the backend of its path package; raises before anything runs on a missing
    directory or (without ``--allow-unpinned-backends``) an unpinned backend."""
    checks: dict[str, BackendCheck] = {}
    for job in jobs:
        if job.path is None:
            continue
        if not job.path.exists():
            raise BuildError(
                f"source package {job.label}: {job.path} does not exist",
                hint="check the location in pixi.lock, or re-lock with `pixi lock`",
            )
        use, warnings = check_backend(
            job.path,
            label=job.label,
            allow_unpinned=options.allow_unpinned_backends,
            overrides=overrides,
        )
        checks[job.key] = BackendCheck(use, warnings)
    return checks


def prepare_job(
    job: BuildJob,
    *,
    pixi_version: str,
    options: SourceBuildOptions,
    overrides: Mapping[str, Path],
    backend: BackendCheck | None,
) -> PreparedJob:
    identity = job.source_identity(exclude=options.hash_excludes)
    key = job.cache_key(pixi_version, backend_overrides=overrides, identity=identity)
    warnings = list(backend.warnings) if backend is not None else []
    for w in warnings:
        log.warning("%s", w)
    return PreparedJob(identity, key, backend.use if backend is not None else None, warnings)


# -- the package directory ------------------------------------------------------------------


def package_dirs(
    job: BuildJob,
    prep: PreparedJob,
    *,
    options: SourceBuildOptions,
    overrides: Mapping[str, Path],
) -> PackageDirs:
    """The ``--path`` of a job; a git location is checked out (into the cache when there is
    one) and its backend checked, recorded in ``prep``."""
    if job.git is None:
        assert job.path is not None
        root = job.workspace_root if job.path.is_relative_to(job.workspace_root) else job.path
        return PackageDirs(job.path, root)
    checkout_root = options.cache_root if options.cache_root is not None else options.work_dir
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
        allow_unpinned=options.allow_unpinned_backends,
        overrides=overrides,
    )
    prep.backend = use
    prep.warnings.extend(warns)
    for w in warns:
        log.warning("%s", w)
    return PackageDirs(package, checkout)


# -- the build cache ------------------------------------------------------------------------


def cached_build(
    cache: BuildCache, job: BuildJob, prep: PreparedJob, *, allow_unpinned: bool
) -> CachedBuild | None:
    """The verified cache entry of a job, or ``None``; a git package's backend is read at
    build time, so the pin rule is applied to what its entry recorded."""
    hit = cache.lookup(prep.key)
    if hit is not None and job.git is not None:
        _check_cached_backend(job, prep, hit.meta, allow_unpinned=allow_unpinned)
    return hit


def _check_cached_backend(
    job: BuildJob, prep: PreparedJob, meta: Mapping[str, object], *, allow_unpinned: bool
) -> None:
    backend = meta.get("backend")
    if meta.get("backend-pinned") or allow_unpinned:
        if isinstance(backend, dict) and not meta.get("backend-pinned"):
            message = (
                f"the build backend {backend.get('name')} of {job.label} is not pinned "
                f"({backend.get('spec')!r}) at {job.location}"
            )
            prep.warnings.append(message)
            log.warning("%s", message)
        return
    shown = f"{backend.get('name')} {backend.get('spec')!r}" if isinstance(backend, dict) else "?"
    raise BuildError(
        f"the build backend of {job.label} is not pinned ({shown}) at commit "
        f"{job.git.rev[:12] if job.git else '?'}",
        hint='pin it (version = "==X.Y.Z") in the package manifest of that repository and '
        "re-lock, or pass --allow-unpinned-backends",
    )


# -- work directories -----------------------------------------------------------------------


class WorkDirs:
    """The log directory and the root of the output directories, made on first use.

    Logs go to ``--log-dir``, else ``<cache>/build-logs``, else a temporary directory that
    :meth:`tidy` removes unless a failed build's log is in it. Output directories go under
    ``<work>/conda-builds``, or a kept temporary directory with ``--keep-build-dir``.
    """

    def __init__(self, options: SourceBuildOptions) -> None:
        self.options = options
        self._lock = threading.Lock()
        self._log_dir: Path | None = None
        self._outdir_root: Path | None = None
        self.temp_logs = False

    def log_dir(self) -> Path:
        with self._lock:
            if self._log_dir is None:
                if self.options.log_dir is not None:
                    self._log_dir = self.options.log_dir
                elif self.options.cache_root is not None:
                    self._log_dir = self.options.cache_root / "build-logs"
                else:
                    self._log_dir = Path(tempfile.mkdtemp(prefix="pixi-pack-src-build-logs-"))
                    self.temp_logs = True
                self._log_dir.mkdir(parents=True, exist_ok=True)
            return self._log_dir

    def outdir_root(self) -> Path:
        with self._lock:
            if self._outdir_root is None:
                if self.options.keep_build_dir:
                    self._outdir_root = Path(tempfile.mkdtemp(prefix="pixi-pack-src-builds-"))
                else:
                    self._outdir_root = self.options.work_dir / "conda-builds"
                self._outdir_root.mkdir(parents=True, exist_ok=True)
            return self._outdir_root

    def tidy(self) -> None:
        """A temporary log directory goes when it is empty (success) or the run was cancelled
        (Ctrl-C); the logs of a failed build stay, their path is in the error message."""
        if not self.temp_logs or self._log_dir is None:
            return
        if self.options.cancel is not None and self.options.cancel.is_set():
            shutil.rmtree(self._log_dir, ignore_errors=True)
            return
        with contextlib.suppress(OSError):
            self._log_dir.rmdir()  # only when empty


# -- inspect --------------------------------------------------------------------------------


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
        identity = job.source_identity(exclude=options.hash_excludes)
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
