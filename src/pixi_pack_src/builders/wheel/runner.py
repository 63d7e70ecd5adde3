"""Run wheel builds: one job (cache, stage, environment, hooks, checks) and many in parallel.

For the caller (``pack``): :func:`.jobs.job_for` makes the jobs, :func:`build_wheels` builds
them for one target (:class:`.interpreter.TargetInterpreter`) and returns a
:class:`.jobs.BuiltWheel` per package name.

Per job: the package's :mod:`overrides <.overrides>` for the target are merged; the cache
(:mod:`.wheelcache`) is consulted with :func:`.jobs.cache_key`; on a miss the source is staged
in ``<work_dir>/wheel-builds/<name>-<key>/`` (:mod:`.staging`), the override patches are
applied, the build environment is made by uv for the target interpreter and the build
requirements installed into it from the lock's indexes and find-links (:mod:`.uv`; nothing
for ``requires = []``), and the backend's hooks run through :mod:`pyproject_hooks` with every
command going through :func:`pixi_pack_src.proc.run`. The environment of the hooks: the
process environment without ``PYTHONPATH``/``PYTHONHOME``, the override's ``env``,
``SOURCE_DATE_EPOCH`` (from the environment, else 1980-01-01, so backends that honour it make
identical wheels), and the venv first on ``PATH``.

The wheel is then checked (:mod:`.wheel_check`): exactly one, the locked name and version,
tags the target accepts; a platform-specific wheel for a foreign target is refused with the
hint to build on a runner of that platform. Builds run in parallel (``jobs`` at a time);
each has its log at ``<work_dir>/logs/wheel-<platform>-<name>.log`` (uv's and the hooks'
output included, credentials redacted), whose tail a :class:`~pixi_pack_src.errors.BuildError`
carries (exit code 4).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.metadata
import logging
import os
import shutil
import threading
import warnings
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyproject_hooks

from pixi_pack_src import proc
from pixi_pack_src._version import __version__
from pixi_pack_src.builders.wheel.interpreter import TargetInterpreter
from pixi_pack_src.builders.wheel.jobs import (
    BuiltWheel,
    WheelBuildJob,
    WheelBuildOptions,
    cache_key,
)
from pixi_pack_src.builders.wheel.overrides import PackageOverride
from pixi_pack_src.builders.wheel.patch import apply_patch
from pixi_pack_src.builders.wheel.staging import (
    BuildEnvironment,
    BuildSystem,
    environment_of,
    isolated_environment,
    read_build_system,
    stage_source,
)
from pixi_pack_src.builders.wheel.uv import CACHE_DIRNAME as UV_CACHE_DIRNAME
from pixi_pack_src.builders.wheel.uv import (
    Uv,
    checked_requirements,
    uv_version,
)
from pixi_pack_src.builders.wheel.wheel_check import WheelInfo, check_wheel, find_built_wheel
from pixi_pack_src.builders.wheel.wheelcache import WheelCache
from pixi_pack_src.errors import BuildError, CommandError, PixiPackSrcError, UnsupportedPackageError
from pixi_pack_src.hashing import file_sha256
from pixi_pack_src.redact import redact_text
from pixi_pack_src.reporter import NullReporter, Reporter

log = logging.getLogger(__name__)

DEFAULT_SOURCE_DATE_EPOCH = "315532800"  # 1980-01-01, the earliest time a zip can hold
_SCRUBBED_ENV = (
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "PYTHONUSERBASE",
    "PIP_REQUIRE_VIRTUALENV",
)


# -- one build ----------------------------------------------------------------------------------


class _BuildLog:
    """The per-build log file: our own notes plus every hook's output, appended in order."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("", encoding="utf-8")
        self._lock = threading.Lock()

    def note(self, line: str) -> None:
        with self._lock, self.path.open("a", encoding="utf-8") as fh:
            fh.write(redact_text(f"# {line}\n"))  # kept on failure: no URL credentials

    def append_file(self, other: Path) -> None:
        if not other.is_file():
            return
        with self._lock, self.path.open("a", encoding="utf-8") as fh:
            fh.write(redact_text(other.read_text(encoding="utf-8", errors="replace")))

    def tail(self, lines: int = proc.TAIL_LINES) -> str:
        try:
            with self.path.open(encoding="utf-8", errors="replace") as fh:
                return "".join(deque(fh, maxlen=lines)).rstrip("\n")
        except OSError:
            return ""


@dataclass
class _Context:
    target: TargetInterpreter
    options: WheelBuildOptions
    reporter: Reporter
    loop: asyncio.AbstractEventLoop | None
    cache: WheelCache | None
    uv: Uv
    cancelled: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True)
class HookEnvironment:
    """The environment of the backend's hooks: ``base`` (scrubbed) and the ``overlay`` logged."""

    base: Mapping[str, str]
    overlay: Mapping[str, str]


def _hook_env(override: PackageOverride, env: BuildEnvironment) -> HookEnvironment:
    base = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    overlay = {
        "SOURCE_DATE_EPOCH": os.environ.get("SOURCE_DATE_EPOCH", DEFAULT_SOURCE_DATE_EPOCH),
        "PYTHONNOUSERSITE": "1",
        "GIT_OPTIONAL_LOCKS": "0",
        **env.env_overlay(),
        **override.expanded_env(),
    }
    return HookEnvironment(base, overlay)


def _frontend() -> str:
    hooks = importlib.metadata.version("pyproject-hooks")
    return f"pixi-pack-src {__version__} (pyproject-hooks {hooks}, uv {uv_version()})"


def _install_requirements(
    requirements: Sequence[str],
    *,
    env: BuildEnvironment,
    ctx: _Context,
    job: WheelBuildJob,
    blog: _BuildLog,
    log_file: Path,
) -> None:
    """Install ``requirements`` into an isolated ``env`` with uv; without isolation, name
    the ones the environment lacks."""
    if not requirements:
        return
    parsed = checked_requirements(requirements, package=job.package.name)
    if not env.isolated:
        absent = env.missing(parsed)
        if absent:
            blog.note("not installed in the environment (no isolation): " + ", ".join(absent))
            log.warning(
                "%s: build requirements missing from the environment (--no-build-isolation): %s",
                job.package.name,
                ", ".join(absent),
            )
        return
    sources = ctx.options.sources_for(job.package)
    if sources.empty:
        raise BuildError(
            f"{job.package.name} needs build requirements, and the environment has no PyPI index",
            hint="pass --pypi-index URL",
        )
    blog.note(f"installing {', '.join(requirements)} from {sources.shown()}")
    try:
        ctx.uv.install(env.python, parsed, sources, log_file=log_file, cancel=ctx.cancelled)
    finally:
        blog.append_file(log_file)


@dataclass(frozen=True)
class _CacheKeys:
    """A job's wheel-cache keys: for the target platform, and for a pure wheel (``any``)."""

    platform: str
    any: str


def _build_one(job: WheelBuildJob, ctx: _Context) -> BuiltWheel:
    options, target = ctx.options, ctx.target
    name = job.name
    override = options.overrides.for_package(
        name, subdir=target.subdir, python_version=target.version
    )
    digest = override.digest()
    isolated = options.build_isolation
    keys = _CacheKeys(
        platform=cache_key(job, target=target, override_digest=digest, isolated=isolated),
        any=cache_key(
            job, target=target, override_digest=digest, isolated=isolated, platform="any"
        ),
    )
    task = f"wheel:{target.subdir}:{name}"
    ctx.reporter.task_started(task, label=f"{job.package.name} ({job.kind} -> wheel)")
    if ctx.cache is not None:
        hit = ctx.cache.lookup(keys.platform) or ctx.cache.lookup(keys.any)
        if hit is not None and len(hit.files) == 1:
            wheel = hit.files[0]
            info = _check_for_target(wheel, job, target)
            builder = hit.meta.get("builder", {})
            ctx.reporter.task_finished(task, outcome="reused", detail="from the build cache")
            log.info("%s: wheel %s from the build cache", job.package.name, wheel.name)
            return _built_wheel(job, wheel, info, builder, from_cache=True)
    if ctx.cancelled.is_set():
        ctx.reporter.task_finished(task, outcome="skipped")
        raise BuildError(f"{job.package.name}: not built (another build failed)")
    build_dir = options.work_dir / "wheel-builds" / f"{name}-{keys.platform[:12]}"
    if build_dir.exists():
        shutil.rmtree(build_dir)
    build_dir.mkdir(parents=True)
    blog = _BuildLog(options.work_dir / "logs" / f"wheel-{target.subdir}-{name}.log")
    try:
        result = _build_fresh(job, ctx, override, keys, build_dir, blog)
    except PixiPackSrcError as exc:
        blog.note(f"FAILED: {exc.message}")
        if ctx.cancelled.is_set():  # stopped (or failed) after another build failed
            ctx.reporter.task_finished(task, outcome="skipped")
            raise BuildError(f"{job.package.name}: not built (another build failed)") from exc
        ctx.reporter.task_finished(task, outcome="failed")
        if isinstance(exc, UnsupportedPackageError):
            raise
        raise BuildError(
            f"building a wheel of {job.package.name} ({job.package.location}) failed: "
            f"{exc.message}",
            log_file=blog.path,
            output_tail=getattr(exc, "output_tail", "") or blog.tail(),
            hint=exc.hint
            or f"see the log at {blog.path}; pass --keep-build-dir to keep {build_dir}",
        ) from exc
    except OSError as exc:
        ctx.reporter.task_finished(task, outcome="failed")
        blog.note(f"FAILED: {exc}")
        raise BuildError(
            f"building a wheel of {job.package.name} ({job.package.location}) failed: {exc}",
            log_file=blog.path,
            output_tail=blog.tail(),
            hint=f"see the log at {blog.path}; pass --keep-build-dir to keep {build_dir}",
        ) from exc
    finally:
        if not options.keep_build_dir:
            shutil.rmtree(build_dir, ignore_errors=True)
    ctx.reporter.task_finished(task, outcome="built")
    return result


def _build_fresh(
    job: WheelBuildJob,
    ctx: _Context,
    override: PackageOverride,
    keys: _CacheKeys,
    build_dir: Path,
    blog: _BuildLog,
) -> BuiltWheel:
    target = ctx.target
    pkg = job.package
    blog.note(f"package {pkg.name} {pkg.version or '(dynamic version)'} from {pkg.location}")
    blog.note(f"target {target.subdir}, python {target.version}; cache key {keys.platform}")
    project = _prepare_source(job, ctx, override, build_dir, blog)
    system = read_build_system(project, pkg.name)
    blog.note(f"backend {system.backend}; requires {list(system.requires)}")
    env = _build_environment(ctx, build_dir, blog)
    blog.note(f"build python {env.info.version} at {env.python} (isolated: {env.isolated})")
    _install_requirements(
        system.requires, env=env, ctx=ctx, job=job, blog=blog, log_file=build_dir / "uv-01.log"
    )
    wheel = _run_hooks(job, ctx, override, system, env, project, build_dir, blog)
    info = _check_for_target(wheel, job, target)
    builder: dict[str, object] = {
        "frontend": _frontend(),
        "backend": system.backend,
        "build-requires": env.installed() if env.isolated else sorted(system.requires),
        "python": env.info.version,
        "isolated": env.isolated,
        "platform": target.subdir,
    }
    if not override.empty:
        builder["overrides"] = override.provenance()
    blog.note(f"built {wheel.name}")
    final = _keep(wheel, info, builder, job, ctx, keys)
    return _built_wheel(job, final, info, builder, from_cache=False, log_file=blog.path)


def _check_for_target(wheel: Path, job: WheelBuildJob, target: TargetInterpreter) -> WheelInfo:
    """The wheel's checks (:func:`check_wheel`) against the locked package and the target."""
    return check_wheel(
        wheel,
        package=job.package.name,
        locked_version=job.package.version,
        python_version=target.version,
        subdir=target.subdir,
        virtual_packages=target.virtual_packages,
        foreign=not target.is_host,
    )


def _built_wheel(
    job: WheelBuildJob,
    wheel: Path,
    info: WheelInfo,
    builder: Mapping[str, object],
    *,
    from_cache: bool,
    log_file: Path | None = None,
) -> BuiltWheel:
    return BuiltWheel(
        package=job.package.name,
        path=wheel,
        file_name=wheel.name,
        name=info.name,
        version=info.version,
        sha256=file_sha256(wheel),
        size=wheel.stat().st_size,
        from_cache=from_cache,
        provenance={"origin": dict(job.origin), "builder": builder},
        log_file=log_file,
    )


def _prepare_source(
    job: WheelBuildJob, ctx: _Context, override: PackageOverride, build_dir: Path, blog: _BuildLog
) -> Path:
    """The staged source with the override's patches applied."""
    options = ctx.options
    checkout_root = options.cache_root if options.cache_root is not None else options.work_dir
    project = stage_source(job, build_dir, checkout_root=checkout_root)
    for ref in override.patches:
        blog.note(f"applying patch {ref.label}")
        applied = apply_patch(ref.path, project, label=ref.label)
        for rel, off in zip(applied.changed, applied.offsets, strict=False):
            if off:
                blog.note(f"  {rel}: hunk applied at an offset of {off} lines")
    if override.env:
        blog.note("override env: " + ", ".join(f"{k}={v}" for k, v in sorted(override.env.items())))
    return project


def _build_environment(ctx: _Context, build_dir: Path, blog: _BuildLog) -> BuildEnvironment:
    """The isolated venv (made by uv for the target interpreter), or the interpreter itself."""
    info = ctx.target.info(ctx.loop)
    if not ctx.options.build_isolation:
        return environment_of(info)
    venv = build_dir / "env"
    step_log = build_dir / "venv.log"
    try:
        ctx.uv.venv(info.python, venv, log_file=step_log, cancel=ctx.cancelled)
    finally:
        blog.append_file(step_log)
    return isolated_environment(venv, info)


class _HookRunner:
    """pyproject-hooks' subprocess runner: every hook through :func:`proc.run`, logged."""

    def __init__(
        self,
        ctx: _Context,
        package: str,
        hook_env: HookEnvironment,
        build_dir: Path,
        blog: _BuildLog,
    ) -> None:
        self.ctx = ctx
        self.package = package
        self.hook_env = hook_env
        self.build_dir = build_dir
        self.blog = blog
        self.hook = ""
        self._steps = 0

    def __call__(
        self,
        cmd: Sequence[str],
        cwd: str | None = None,
        extra_environ: Mapping[str, str] | None = None,
    ) -> None:
        self._steps += 1
        step_log = self.build_dir / f"hook-{self._steps:02d}.log"
        try:
            proc.run(
                cmd,
                cwd=Path(cwd) if cwd else None,
                env=self.hook_env.base,
                env_overlay={**self.hook_env.overlay, **(extra_environ or {})},
                log_file=step_log,
                stream=self.ctx.options.verbosity >= 3,
                timeout=self.ctx.options.timeout,
                what=f"{self.hook} of {self.package}",
                cancel=self.ctx.cancelled,
            )
        finally:
            self.blog.append_file(step_log)


def _run_hooks(
    job: WheelBuildJob,
    ctx: _Context,
    override: PackageOverride,
    system: BuildSystem,
    env: BuildEnvironment,
    project: Path,
    build_dir: Path,
    blog: _BuildLog,
) -> Path:
    """``get_requires_for_build_wheel`` (its extras installed), then ``build_wheel``."""
    runner = _HookRunner(ctx, job.package.name, _hook_env(override, env), build_dir, blog)
    hooks = pyproject_hooks.BuildBackendHookCaller(
        str(project),
        system.backend,
        backend_path=list(system.backend_path) if system.backend_path is not None else None,
        runner=runner,
        python_executable=str(env.python),
    )
    config: dict[str, Any] = override.config_settings_dict() or {}
    out_dir = build_dir / "dist"
    out_dir.mkdir()
    try:
        runner.hook = "get_requires_for_build_wheel"
        extra = list(hooks.get_requires_for_build_wheel(config or None))
        blog.note(f"backend asks for {extra}")
        _install_requirements(
            [r for r in extra if r not in system.requires],
            env=env,
            ctx=ctx,
            job=job,
            blog=blog,
            log_file=build_dir / "uv-02.log",
        )
        runner.hook = "build_wheel"
        returned = hooks.build_wheel(str(out_dir), config or None)
    except CommandError as exc:
        raise BuildError(
            f"the {runner.hook} hook failed (exit code {exc.returncode})",
            log_file=blog.path,
            output_tail=blog.tail(),
        ) from exc
    except pyproject_hooks.BackendUnavailable as exc:
        raise BuildError(
            f"the build backend {system.backend!r} cannot be imported: {exc}",
            log_file=blog.path,
            output_tail=(exc.traceback or "").rstrip()[-4000:] or blog.tail(),
        ) from exc
    except (pyproject_hooks.HookMissing, pyproject_hooks.BackendInvalid) as exc:
        raise BuildError(f"the build backend {system.backend!r} is unusable: {exc}") from exc
    return find_built_wheel(out_dir, returned, package=job.package.name)


def _keep(
    wheel: Path,
    info: WheelInfo,
    builder: Mapping[str, object],
    job: WheelBuildJob,
    ctx: _Context,
    keys: _CacheKeys,
) -> Path:
    """Store the wheel in the cache (pure wheels also under the ``any`` key), else keep it in
    the work directory; returns where it is now."""
    if ctx.cache is not None:
        meta = {"builder": dict(builder), "name": info.name, "version": info.version}
        stored = ctx.cache.store(keys.platform, [wheel], meta)
        if info.pure:
            ctx.cache.store(keys.any, [wheel], meta)
        return stored.files[0]
    kept = ctx.options.work_dir / "wheels" / ctx.target.subdir / job.name
    kept.mkdir(parents=True, exist_ok=True)
    final = kept / wheel.name
    shutil.copyfile(wheel, final)
    return final


# -- many builds --------------------------------------------------------------------------------


async def build_wheels(
    jobs: Sequence[WheelBuildJob],
    *,
    target: TargetInterpreter,
    options: WheelBuildOptions,
    reporter: Reporter | None = None,
) -> dict[str, BuiltWheel]:
    """Build (or take from the cache) a wheel for every job; keyed by the locked name.

    Runs ``options.jobs`` builds at a time in worker threads (the target interpreter is
    prepared on the caller's event loop, see :mod:`.interpreter`). The first failure stops jobs not yet started, waits for the
    running ones and is raised (:class:`BuildError`, exit code 4; or
    :class:`UnsupportedPackageError` for a native wheel on a foreign target).
    """
    reporter = reporter or NullReporter()
    if not jobs:
        return {}
    names = [j.name for j in jobs]
    if len(set(names)) != len(names):
        raise ValueError("build_wheels: one job per package name")
    loop = asyncio.get_running_loop()
    uv_root = options.work_dir / "uv"
    ctx = _Context(
        target=target,
        options=options,
        reporter=reporter,
        loop=loop,
        cache=WheelCache(options.cache_root) if options.cache_root is not None else None,
        uv=Uv(
            home=uv_root / "home",
            cache_dir=(options.cache_root or uv_root) / UV_CACHE_DIRNAME,
            auth=options.auth,
            sources=[options.sources_for(j.package) for j in jobs],
            timeout=options.timeout,
        ),
    )
    reporter.stage_started("build-wheels", items=len(jobs))
    executor = concurrent.futures.ThreadPoolExecutor(
        max_workers=max(1, options.jobs), thread_name_prefix="wheel-build"
    )
    # pyproject-hooks re-raises the backends' warnings in this process: collect them for
    # the log instead of letting them reach the user's terminal (or a test's error filter).
    caught = warnings.catch_warnings(record=True)
    recorded = caught.__enter__()
    warnings.simplefilter("always", pyproject_hooks.BuildBackendWarning)
    try:
        futures = {loop.run_in_executor(executor, _build_one, job, ctx): job for job in jobs}
        try:
            done, pending = await asyncio.wait(futures, return_when=asyncio.FIRST_EXCEPTION)
        except asyncio.CancelledError:
            # Ctrl-C: stop the running hooks and the jobs not started, and wait for the
            # workers with the loop still running -- they may be waiting for a coroutine on
            # it (run_sync); blocking the loop in executor.shutdown(wait=True) deadlocks.
            ctx.cancelled.set()
            await _settle(list(futures))
            raise
        failed = [f for f in done if f.exception() is not None]
        if failed:
            ctx.cancelled.set()
            if pending:
                await asyncio.wait(pending)
            order = {id(j): i for i, j in enumerate(jobs)}
            first = min(
                (f for f in futures if f.done() and f.exception() is not None),
                key=lambda f: order[id(futures[f])],
            )
            real = [
                f
                for f in futures
                if f.done()
                and f.exception() is not None
                and "another build failed" not in str(f.exception())
            ]
            if real:
                first = min(real, key=lambda f: order[id(futures[f])])
            exc = first.exception()
            assert exc is not None
            raise exc
        return {futures[f].package.name: f.result() for f in futures}
    finally:
        # Every worker has ended on the paths above; never block the loop here (a second
        # Ctrl-C cancels _settle, and a worker may still wait for this loop).
        executor.shutdown(wait=False, cancel_futures=True)
        caught.__exit__(None, None, None)
        for w in recorded:
            if issubclass(w.category, pyproject_hooks.BuildBackendWarning):
                log.info("build backend warning: %s", w.message)
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        ctx.uv.close()
        reporter.stage_finished("build-wheels")


async def _settle(futures: Sequence[asyncio.Future[BuiltWheel]]) -> None:
    """Wait until every worker has ended; their results and errors are dropped."""
    running = [f for f in futures if not f.done()]
    if running:
        await asyncio.wait(running)
    for f in futures:
        if not f.cancelled():
            f.exception()  # retrieved: no "exception was never retrieved" at exit
