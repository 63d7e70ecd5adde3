"""Builders: conda source packages (:mod:`.conda`, ``pixi build``) and wheels (:mod:`.wheel`, PEP 517).

Shared by both: :mod:`.sourcetree` (source-tree hashes) and :mod:`.git` (exact-commit checkouts).
The conda builder's API is re-exported here.
"""

from __future__ import annotations

from pixi_pack_src.builders.conda import (
    BuildJob,
    BuiltArtifact,
    JobEntry,
    PixiInfo,
    SourceBuildOptions,
    build_sources,
    check_environment,
    detect_pixi,
    inspect_jobs,
    plan_source_builds,
)

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
