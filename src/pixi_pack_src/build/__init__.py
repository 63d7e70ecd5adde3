"""Builds: conda source packages with ``pixi build`` (:mod:`.conda_source`).

Modules: :mod:`.conda_source` (plan jobs, build them, provenance), :mod:`.pixi_cli` (find and
run pixi), :mod:`.matching` (artifacts vs lock entries), :mod:`.buildcache` (the build
cache), :mod:`.sourcetree` (source-tree hashes), :mod:`.git` (exact-commit checkouts).
"""

from __future__ import annotations

from .conda_source import (
    BuildJob,
    BuiltArtifact,
    JobEntry,
    SourceBuildOptions,
    build_sources,
    check_environment,
    detect_pixi,
    inspect_jobs,
    plan_source_builds,
)
from .pixi_cli import PixiInfo

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
