"""``--base`` in the plan: which items a delta takes from the base instead of fetching or
building them (the rules are :mod:`pixi_pack_src.delta.compare`'s).

:func:`mark_base` turns the plan's items into ``from-base`` items (``base-path`` names the
base's file), drops the ``pixi build`` invocations none of whose entries are left, and
recounts the totals. ``inspect --base`` prints the result; ``pack --base`` executes it.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from pixi_pack_src.builders.sourcetree import tree_sha256
from pixi_pack_src.builders.wheel.overrides import Overrides
from pixi_pack_src.delta.compare import built_conda_in_base, built_wheel_in_base, in_base
from pixi_pack_src.delta.manifest import BaseManifest, short
from pixi_pack_src.errors import UsageError
from pixi_pack_src.lock.model import CondaSource, PypiPackage
from pixi_pack_src.redact import redact_url

if TYPE_CHECKING:
    from pixi_pack_src.plan import PackPlan, PackPlans, PlanItem, SourceBuild


def check_platforms(base: BaseManifest, subdirs: Sequence[str], source: str) -> None:
    """A delta is for one platform, the base's."""
    if len(subdirs) != 1:
        raise UsageError(
            f"--base {source} makes a delta for one platform, but {len(subdirs)} were selected",
            hint="make one delta per platform, each against that platform's base (-p PLATFORM)",
        )
    if subdirs[0] != base.platform:
        raise UsageError(
            f"--base {source} is a pack for {base.platform}, but this pack is for {subdirs[0]}",
            hint=f"pass the {subdirs[0]} base, or select -p {base.platform}",
        )


def mark_base(
    plans: PackPlans,
    base: BaseManifest,
    *,
    overrides: Overrides,
    exclude: Sequence[Path] = (),
) -> PackPlans:
    """The plans with every item the base provides as ``from-base`` (see the module doc)."""
    check_platforms(base, [p.platform.subdir for p in plans.plans], base.source)
    marked = tuple(_mark(plan, base, overrides, exclude) for plan in plans.plans)
    keys = {b.key for p in marked for b in p.builds}
    return replace(
        plans, plans=marked, builds=tuple(b for b in plans.builds if b.key in keys), base=base
    )


def _mark(
    plan: PackPlan, base: BaseManifest, overrides: Overrides, exclude: Sequence[Path]
) -> PackPlan:
    builds = {b.key: b for b in plan.builds}
    python = next((c.version for c in plan.env.conda if c.name == "python"), None)
    items = []
    for item in plan.items:
        hit = _hit(item, plan, base, builds, overrides, python, exclude)
        if hit is None:
            items.append(item)
        else:
            items.append(
                replace(
                    item,
                    action="from-base",
                    base_path=hit,
                    reason=f"in the base {short(base.identity)}",
                )
            )
    left = {i.build_key for i in items if i.action == "build-conda"}
    kept = tuple(b for b in plan.builds if b.key in left)
    return plan.with_items(items, kept)


def _hit(
    item: PlanItem,
    plan: PackPlan,
    base: BaseManifest,
    builds: dict[str, SourceBuild],
    overrides: Overrides,
    python: str | None,
    exclude: Sequence[Path],
) -> str | None:
    """The base's file for this item, or ``None``."""
    if item.action in ("download", "copy"):
        found = in_base(base, item.hashes.sha256)
        return found.path if found is not None else None
    entry = item.entry
    if item.action == "build-conda" and isinstance(entry, CondaSource):
        build = builds.get(item.build_key or "")
        if build is None:
            return None
        job = build.job
        tree = None
        rev = job.git.rev if job.git is not None else None
        if job.path is not None:
            directory = job.path.parent if job.path.is_file() else job.path
            if not directory.is_dir():
                return None
            tree = tree_sha256(directory, exclude=exclude)
        artifact = built_conda_in_base(
            base,
            name=entry.name,
            location=job.location,
            lock_id=entry.lock_id,
            git_rev=rev,
            tree_sha256=tree,
        )
        return artifact.path if artifact is not None else None
    if item.action == "build-wheel" and isinstance(entry, PypiPackage):
        origin = _wheel_origin(entry, plan.workspace_root, exclude)
        if origin is None:
            return None
        override = overrides.for_package(
            entry.name, subdir=plan.platform.subdir, python_version=python
        )
        wheel = built_wheel_in_base(
            base,
            name=entry.name,
            version=entry.version,
            origin=origin,
            overrides=override.provenance() or None,
        )
        return wheel.path if wheel is not None else None
    return None


def _relative(path: Path, root: Path) -> str:
    try:
        rel = os.path.relpath(path.resolve(), root.resolve()).replace(os.sep, "/")
        return posixpath.normpath(rel)
    except ValueError:
        return path.name


def _wheel_origin(
    pkg: PypiPackage, workspace_root: Path, exclude: Sequence[Path]
) -> dict[str, object] | None:
    """What a wheel built from ``pkg`` records as its origin, when known without fetching."""
    if pkg.kind in ("sdist", "local-sdist"):
        sha = pkg.hashes.sha256
        if pkg.url is not None:
            return {"type": "sdist", "sha256": sha, "url": redact_url(pkg.url)} if sha else None
        if pkg.path is None or not pkg.path.is_file():
            return None
        from pixi_pack_src.hashing import file_sha256

        return {
            "type": "sdist",
            "sha256": file_sha256(pkg.path),
            "path": _relative(pkg.path, workspace_root),
        }
    if pkg.kind == "git" and pkg.git is not None:
        g = pkg.git
        origin: dict[str, object] = {"type": "pypi-git", "url": redact_url(g.url), "rev": g.rev}
        if g.subdirectory:
            origin["subdirectory"] = g.subdirectory
        return origin
    if pkg.kind == "source-tree" and pkg.path is not None and pkg.path.is_dir():
        return {
            "type": "pypi-source-tree",
            "path": _relative(pkg.path, workspace_root),
            "source-tree-sha256": tree_sha256(pkg.path, exclude=exclude),
        }
    return None
