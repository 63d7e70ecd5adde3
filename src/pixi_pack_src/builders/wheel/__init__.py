"""PyPI sdists, git checkouts and source trees built into wheels (PEP 517, isolated by uv).

- :mod:`.jobs`: what to build (a job per entry), the wheel-cache key, what ``inspect`` shows;
- :mod:`.interpreter`: the target interpreter (the locked environment's python);
- :mod:`.staging`: the staged source and the build environment;
- :mod:`.uv`: uv, which makes the venv and installs the build requirements from the lock's
  indexes and find-links;
- :mod:`.runner`: one build (cache, stage, environment, hooks, checks) and many in parallel;
- :mod:`.overrides`, :mod:`.patch`: per-package env, patches and config settings;
- :mod:`.wheel_check`, :mod:`.wheelcache`: checks of a built wheel, the wheel cache.
"""

from __future__ import annotations

from pixi_pack_src.builders.wheel.interpreter import (
    TargetInterpreter,
    dependency_closure,
    environment_fingerprint,
    make_target_interpreter,
)
from pixi_pack_src.builders.wheel.jobs import (
    BuiltWheel,
    WheelBuildJob,
    WheelBuildOptions,
    describe_build,
    job_for,
)
from pixi_pack_src.builders.wheel.runner import build_wheels
from pixi_pack_src.builders.wheel.uv import PackageSources, find_links_of

__all__ = [
    "BuiltWheel",
    "PackageSources",
    "TargetInterpreter",
    "WheelBuildJob",
    "WheelBuildOptions",
    "build_wheels",
    "dependency_closure",
    "describe_build",
    "environment_fingerprint",
    "find_links_of",
    "job_for",
    "make_target_interpreter",
]
