"""Run the build jobs: for each, a verified build-cache hit or a ``pixi build``, reported.

Parallelism (``build_jobs``): pixi coordinates its *global* caches across processes
(prefix-dev/pixi#6233 serialises installs of backend environments), but nothing documents
concurrent builds in one workspace, whose ``.pixi/bld`` and ``.pixi/artifacts-v0`` they share
(prefix-dev/pixi#1482 is still open). So jobs run in parallel only across workspaces (e.g. a
git checkout and the local workspace); jobs of the same workspace always run one at a time.
The default, 1, runs everything in order.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from pixi_pack_src.builders.conda import pixi_cli
from pixi_pack_src.builders.conda.artifacts import (
    BuiltArtifact,
    artifacts_from_files,
    relocated,
)
from pixi_pack_src.builders.conda.buildcache import BuildCache
from pixi_pack_src.builders.conda.jobs import BuildJob, SourceBuildOptions
from pixi_pack_src.builders.conda.pixi_cli import PixiInfo
from pixi_pack_src.builders.conda.prepare import (
    PreparedJob,
    WorkDirs,
    cached_build,
    check_overrides,
    check_path_packages,
    override_env,
    package_dirs,
    prepare_job,
)
from pixi_pack_src.builders.conda.run import run_pixi_build
from pixi_pack_src.errors import BuildError
from pixi_pack_src.reporter import Reporter

log = logging.getLogger(__name__)


def build_sources(
    jobs: Sequence[BuildJob], *, options: SourceBuildOptions, reporter: Reporter
) -> dict[str, BuiltArtifact]:
    """Build (or take from the cache) every job; lock id -> the artifact satisfying it
    (a noarch artifact appears under every lock id it satisfies)."""
    if not jobs:
        return {}
    return _Builder(options, reporter).run(jobs)


class _Builder:
    def __init__(self, options: SourceBuildOptions, reporter: Reporter) -> None:
        self.options = options
        self.reporter = reporter
        self.cache = BuildCache(options.cache_root) if options.cache_root is not None else None
        self.overrides = check_overrides(options.backend_overrides)
        self.work = WorkDirs(options)
        self._pixi_lock = threading.Lock()
        self._info: PixiInfo | None = None
        self._exe: Path | None = None
        self._version: str | None = None
        self._ws_locks: dict[Path, threading.Lock] = {}
        self._ws_guard = threading.Lock()

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

    def _ws_lock(self, root: Path) -> threading.Lock:
        with self._ws_guard:
            return self._ws_locks.setdefault(root.resolve(), threading.Lock())

    def run(self, jobs: Sequence[BuildJob]) -> dict[str, BuiltArtifact]:
        # Fail fast on what needs no pixi: unpinned backends of path packages.
        backends = check_path_packages(jobs, options=self.options, overrides=self.overrides)
        self._exe = pixi_cli.find_pixi(self.options.pixi)
        self._version = pixi_cli.pixi_version(self._exe)
        prepared = {
            job.key: prepare_job(
                job,
                pixi_version=self._version,
                options=self.options,
                overrides=self.overrides,
                backend=backends.get(job.key),
            )
            for job in jobs
        }
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
            self.work.tidy()
        out: dict[str, BuiltArtifact] = {}
        for artifacts in results:
            for artifact in artifacts:
                for lock_id in artifact.lock_ids:
                    out[lock_id] = artifact
        return out

    def _parallel(
        self, jobs: Sequence[BuildJob], prepared: Mapping[str, PreparedJob]
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

    def _job_reported(self, job: BuildJob, prep: PreparedJob) -> list[BuiltArtifact]:
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

    def _job(self, job: BuildJob, prep: PreparedJob) -> list[BuiltArtifact]:
        if self.cache is not None:
            hit = cached_build(
                self.cache, job, prep, allow_unpinned=self.options.allow_unpinned_backends
            )
            if hit is not None:
                try:
                    artifacts = self._artifacts(job, prep, hit.files, hit.meta, from_cache=True)
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

    def _build(self, job: BuildJob, prep: PreparedJob) -> list[BuiltArtifact]:
        dirs = package_dirs(job, prep, options=self.options, overrides=self.overrides)
        out = run_pixi_build(
            job,
            prep,
            dirs,
            info=self.pixi_info(),
            work=self.work,
            options=self.options,
            env_overlay=override_env(self.overrides),
            workspace_lock=self._ws_lock(dirs.workspace_root),
        )
        artifacts = self._artifacts(job, prep, out.files, out.meta, from_cache=False)
        if self.cache is not None:
            stored = self.cache.store(prep.key, out.files, out.meta)
            by_name = {p.name: p for p in stored.files}
            artifacts = [
                relocated(a, by_name[a.file_name]) if a.file_name in by_name else a
                for a in artifacts
            ]
            if not self.options.keep_build_dir:
                shutil.rmtree(out.outdir, ignore_errors=True)
        if self.work.temp_logs:
            out.log_file.unlink(missing_ok=True)
        if self.options.keep_build_dir:
            log.info("kept the output of %s in %s", out.what, out.outdir)
        return artifacts

    def _artifacts(
        self,
        job: BuildJob,
        prep: PreparedJob,
        files: Sequence[Path],
        meta: Mapping[str, Any],
        *,
        from_cache: bool,
    ) -> list[BuiltArtifact]:
        return artifacts_from_files(
            job, prep, files, meta, allow_drift=self.options.allow_drift, from_cache=from_cache
        )
