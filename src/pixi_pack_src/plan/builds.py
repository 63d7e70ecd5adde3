"""The ``pixi build`` invocations of a plan, as the build engine makes them.

:func:`pixi_pack_src.builders.conda.jobs.plan_source_builds` groups the source entries of
every platform into :class:`~pixi_pack_src.builders.conda.jobs.BuildJob` s (a noarch package
once for all platforms) and
:func:`~pixi_pack_src.builders.conda.backend.backend_status` applies the backend pin rule, so
``inspect`` shows what ``pack`` runs. With :class:`~.model.InspectOptions` (and ``probe_pixi``)
the pixi that would run is found and the build cache is looked at; nothing is ever built here.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from pixi_pack_src.builders.conda import (
    SourceBuildOptions,
    inspect_jobs,
    plan_source_builds,
)
from pixi_pack_src.builders.conda.backend import BackendStatus, backend_status
from pixi_pack_src.builders.conda.jobs import unsupported_location
from pixi_pack_src.host import host_subdir
from pixi_pack_src.lock.model import CondaSource, LockedEnvironment
from pixi_pack_src.plan.model import InspectOptions, SourceBuild, unique


def source_builds(
    envs: Sequence[LockedEnvironment],
    *,
    read_backends: bool,
    host: str | None,
    inspect: InspectOptions | None,
) -> list[SourceBuild]:
    """The engine's build jobs for every platform at once (as ``pack`` makes them)."""
    by_subdir: dict[str, list[CondaSource]] = {}
    for env in envs:
        supported = [s for s in env.sources if unsupported_location(s) is None]
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
        builds.append(
            SourceBuild(job=job, platforms=unique(platforms), backend=backend, status=status)
        )
    return builds
