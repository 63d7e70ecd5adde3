"""Conda source packages (``conda_source`` lock entries) built with ``pixi build`` (docs/pixi-build.md).

Two steps for the caller (``pack`` and ``inspect``): :func:`plan_source_builds` groups the
entries into :class:`BuildJob` s (pure); :func:`build_sources` runs them and returns, for every
lock id, the :class:`BuiltArtifact` that satisfies it. :func:`inspect_jobs` shows what a pack
would run, without building.

For each job: the package's build backend must be an exact pin (``==x.y.z``) unless
``allow_unpinned_backends`` (then a warning) or the backend is overridden
(``--backend-override NAME=PATH`` -> ``PIXI_BUILD_BACKEND_OVERRIDE``); git locations are checked
out at exactly the locked commit; the build cache is consulted; on a miss ``pixi build`` runs;
the artifacts are matched to the lock entries, stored in the cache, and described for the
archive's provenance.

Modules, in the order a build goes through them:

- :mod:`.jobs`: what is to be built (options, jobs, plan, source identity, cache key);
- :mod:`.backend`: which build backend a package declares, and the pin rule;
- :mod:`.prepare`: before pixi runs (overrides, pins, work dirs, git checkout, cache lookup;
  ``inspect``'s view);
- :mod:`.pixi_cli`: the pixi executable (version, ``build`` or ``publish``, command line);
- :mod:`.run`: one ``pixi build`` run and the files it wrote, or why it failed;
- :mod:`.matching`: the rule matching a built package to a lock entry;
- :mod:`.artifacts`: the matched results with their provenance, checked against the environment;
- :mod:`.buildcache`: the build cache;
- :mod:`.builder`: runs the jobs (cache hit or build, in order or in parallel, reported).
"""

from __future__ import annotations

from pixi_pack_src.builders.conda.artifacts import BuiltArtifact, check_environment
from pixi_pack_src.builders.conda.builder import build_sources
from pixi_pack_src.builders.conda.jobs import (
    BuildJob,
    JobEntry,
    SourceBuildOptions,
    plan_source_builds,
)
from pixi_pack_src.builders.conda.pixi_cli import PixiInfo
from pixi_pack_src.builders.conda.prepare import detect_pixi, inspect_jobs

__all__ = [
    "BuildJob",
    "BuiltArtifact",
    "JobEntry",
    "PixiInfo",
    "SourceBuildOptions",
    "build_sources",
    "check_environment",
    "detect_pixi",
    "inspect_jobs",
    "plan_source_builds",
]
