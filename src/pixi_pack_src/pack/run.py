"""The ``pack`` job: plan, refuse what must fail, then fetch, build, collect and write."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AsyncExitStack, contextmanager
from pathlib import Path
from typing import BinaryIO, TypeVar

from pixi_pack_src import workdirs
from pixi_pack_src.builders.conda import check_environment
from pixi_pack_src.builders.wheel import BuiltWheel, WheelBuildOptions
from pixi_pack_src.builders.wheel.overrides import Overrides, load_overrides, read_manifest_table
from pixi_pack_src.delta.manifest import BaseManifest, read_base
from pixi_pack_src.errors import BuildError
from pixi_pack_src.fetch.auth import AuthStore
from pixi_pack_src.fetch.cache import ContentCache
from pixi_pack_src.fetch.config import load_config
from pixi_pack_src.fetch.download import DownloadSettings, fetch_all
from pixi_pack_src.fetch.http import RetryPolicy
from pixi_pack_src.lock.lockfile import Lock, load_lock
from pixi_pack_src.lock.model import Platform
from pixi_pack_src.lock.workspace import locate_workspace
from pixi_pack_src.pack.collect import (
    PlatformWork,
    artifacts_to_fetch,
    build_conda_sources,
    build_pypi,
    collect_built,
    collect_fetched,
    collect_injected,
    collect_skipped,
    stats,
)
from pixi_pack_src.pack.early import EarlyArchives
from pixi_pack_src.pack.from_base import collect_from_base, drop_in_base
from pixi_pack_src.pack.options import PackOptions
from pixi_pack_src.pack.result import PackResult, output_for, output_refusals
from pixi_pack_src.pack.write import interrupt_check, write_platform
from pixi_pack_src.plan import InspectOptions, PackPlans, Refusal, plan_lock, select_platforms
from pixi_pack_src.reporter import NullReporter, Reporter
from pixi_pack_src.warnlist import WarningList

log = logging.getLogger("pixi_pack_src.pack")

WORK_PREFIX = "pixi-pack-src-"  # $TMPDIR/pixi-pack-src-<random> (see workdirs)
_T = TypeVar("_T")


def pack(
    options: PackOptions,
    *,
    reporter: Reporter | None = None,
    stdout: BinaryIO | None = None,
) -> PackResult:
    """Pack the environment for every selected platform. Sync; runs one event loop."""
    return asyncio.run(pack_async(options, reporter=reporter or NullReporter(), stdout=stdout))


def platforms_for(lock: Lock, options: PackOptions) -> list[Platform]:
    """``-p`` values (names or subdirs), ``--all-platforms``, or the host's platform."""
    return select_platforms(
        lock, options.environment, options.platforms, all_platforms=options.all_platforms
    )


def make_pack_plans(
    lock: Lock,
    options: PackOptions,
    platforms: Sequence[Platform],
    *,
    overrides: Overrides,
    outputs: Sequence[str],
    manifest: Path | None = None,
    base: BaseManifest | None = None,
) -> PackPlans:
    """The plans ``inspect`` shows for these options, plus the outputs' own checks; raises
    every refusal at once (:meth:`PackPlans.refusal`) before anything is fetched."""
    plans = plan_lock(
        lock,
        options.environment,
        platforms,
        ignore_pypi_non_wheel=options.ignore_pypi_non_wheel,
        build_pypi=options.build_pypi,
        inject=options.inject,
        inspect=InspectOptions(
            probe_pixi=False,  # pack finds pixi when it builds
            allow_unpinned_backends=options.allow_unpinned_backends,
            backend_overrides=options.backend_overrides,
            build_isolation=options.build_isolation,
            overrides=overrides,
        ),
        manifest=manifest,
        frozen=options.frozen,
        base=base,
        exclude=_excluded(options, outputs),
    )
    extra: list[Refusal] = [r for output in outputs for r in output_refusals(output)]
    if extra:
        plans = plans.with_refusals(extra)
    error = plans.refusal()
    if error is not None:
        raise error
    return plans


async def pack_async(
    options: PackOptions, *, reporter: Reporter, stdout: BinaryIO | None = None
) -> PackResult:
    warn = WarningList(log)
    workspace = locate_workspace(options.manifest_path)
    lock = load_lock(workspace.lock_path)
    platforms = platforms_for(lock, options)
    outputs = [output_for(options, platforms, p) for p in platforms]
    manifest = workspace.manifest
    overrides = load_overrides(  # read before any download so that a bad file fails fast
        manifest_table=read_manifest_table(manifest) if manifest is not None else {},
        manifest_path=manifest,
        overrides_dir=options.overrides_dir,
    )
    base = read_base(options.base) if options.base is not None else None
    plans = make_pack_plans(
        lock,
        options,
        platforms,
        overrides=overrides,
        outputs=outputs,
        manifest=manifest,
        base=base,
    )
    warn.extend(plans.warnings)
    works = [
        PlatformWork(plan, output, base=base)
        for plan, output in zip(plans.plans, outputs, strict=True)
    ]

    fetch_config = load_config(options.config_file, workspace_root=workspace.root)
    auth = AuthStore.load(
        options.auth_file, override_file=fetch_config.authentication_override_file
    )
    settings = DownloadSettings(
        concurrency=options.concurrent_downloads or fetch_config.concurrent_downloads or 50,
        retries=options.retries,
        timeout=options.timeout,
        connect_timeout=options.connect_timeout,
        policy=RetryPolicy(retries=options.retries),
    )
    cache = (
        ContentCache(options.cache_dir, verify=options.verify_cache)
        if options.cache_dir is not None
        else None
    )

    async with AsyncExitStack() as stack:
        work_dir = stack.enter_context(_work_dir(options.work_dir))
        # the archives are written while the downloads run (pack/early.py)
        early = EarlyArchives.start(works, options, fetch_config)
        stack.push(early.exit)
        fetched = await fetch_all(
            list(artifacts_to_fetch(plans, fetch_config).values()),
            work_dir=work_dir / "downloads",
            cache=cache,
            settings=settings,
            auth=auth,
            reporter=reporter,
            config=fetch_config,  # its client is made at the first download (none when all hit)
            on_fetched=early.fetched,
        )
        early.fetching_done()
        cancel = threading.Event()
        built = await _in_thread(
            lambda: build_conda_sources(plans, works, options, reporter, work_dir, cancel=cancel),
            cancel,
        )
        wheel_options = WheelBuildOptions(
            work_dir=work_dir / "wheel-builds",
            cache_root=options.cache_dir,
            build_isolation=options.build_isolation,
            pypi_index=options.pypi_index,
            overrides=overrides,
            jobs=options.wheel_jobs,
            keep_build_dir=options.keep_build_dir,
            verbosity=options.verbosity,
            timeout=options.build_timeout,
            auth=auth,
        )
        wheels_built: list[BuiltWheel] = []
        for work in works:
            collect_fetched(work, fetched, fetch_config, warn)
            mine = collect_built(work, built, warn)
            wheels_built += await build_pypi(
                work,
                fetched,
                fetch_config,
                options=options,
                wheel_options=wheel_options,
                exclude=(work_dir, *(c for c in [options.cache_dir] if c is not None)),
                reporter=reporter,
            )
            collect_skipped(work)
            collect_injected(work, options.inject, warn)
            if base is not None:
                collect_from_base(work, base, fetch_config)
                drop_in_base(work, base)
            check_environment(
                [
                    c.record
                    for c in work.conda.values()
                    if c.provenance.origin.get("type") != "conda-source"
                ],
                mine,
            )

        interrupted = interrupt_check()
        packs = [
            write_platform(
                work,
                lock,
                options,
                reporter=reporter,
                stdout=stdout,
                interrupted=interrupted,
                work_dir=work_dir,
                early=early.get(work),
            )
            for work in works
        ]
    return PackResult(
        environment=options.environment,
        lock_file=lock.path,
        packs=tuple(packs),
        stats=stats(fetched.values(), built.values(), wheels_built),
        warnings=tuple(warn.items),
    )


def _excluded(options: PackOptions, outputs: Sequence[str]) -> tuple[Path, ...]:
    """What source-tree hashes leave out: the outputs and the cache (as the builds do)."""
    paths = [Path(o).resolve() for o in outputs if o != "-"]
    if options.cache_dir is not None:
        paths.append(options.cache_dir.resolve())
    return tuple(paths)


@contextmanager
def _work_dir(given: Path | None) -> Iterator[Path]:
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        yield given
        return
    path = Path(tempfile.mkdtemp(prefix=WORK_PREFIX))
    held = workdirs.claim(path)
    workdirs.sweep(path.parent, WORK_PREFIX)  # what killed runs left behind
    try:
        yield path
    except BuildError as exc:
        if exc.log_file is not None and exc.log_file.is_relative_to(path):
            # the build log the error points at lives here: keep it
            log.info("kept the work directory %s (build logs)", path)
            held.release(keep=True)
        else:  # a refusal before any build (an unpinned backend...): nothing to keep
            shutil.rmtree(path, ignore_errors=True)
            held.release()
        raise
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        held.release()
        raise
    shutil.rmtree(path, ignore_errors=True)
    held.release()


async def _in_thread(fn: Callable[[], _T], cancel: threading.Event) -> _T:
    """``fn()`` in a worker thread. On Ctrl-C (the task is cancelled) ``cancel`` is set -- the
    running build subprocess is killed -- and the thread is waited for before the
    cancellation goes on, so that nothing writes into the work directory after its removal."""
    future = asyncio.ensure_future(asyncio.to_thread(fn))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        cancel.set()
        with contextlib.suppress(BaseException):  # its error is moot; a 2nd Ctrl-C stops waiting
            await future
        raise
