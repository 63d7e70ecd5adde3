"""The plan as JSON: the ``inspect --json`` document, version 1 (described in docs/json.md).

Keys are kebab-case; absent values are ``null``. Each record of :mod:`.model` has a
``to_json`` method that calls its function here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pixi_pack_src.lock.model import CondaSource, PypiPackage

if TYPE_CHECKING:
    from pixi_pack_src.plan.model import PackPlan, PackPlans, PlanItem, PlanTotals, SourceBuild

JSON_VERSION = 1
TOOL_NAME = "pixi-pack-src"


def item_json(item: PlanItem) -> dict[str, object]:
    """One item: what is done with one lock entry (``items`` of a plan)."""
    out: dict[str, object] = {
        "action": item.action,
        "kind": item.kind,
        "name": item.name,
        "version": item.version,
        "file-name": item.file_name,
        "source": item.source,
        "archive-path": item.archive_path,
        "sha256": item.hashes.sha256,
        "md5": item.hashes.md5,
        "size": item.hashes.size,
        "reason": item.reason,
    }
    if item.base_path is not None:
        out["base-path"] = item.base_path
    entry = item.entry
    if isinstance(entry, CondaSource):
        out["conda-source"] = {
            "lock-id": entry.lock_id,
            "location": entry.location,
            "location-kind": entry.location_kind,
            "record": "full" if entry.is_full else "partial",
            "variants": dict(entry.variants),
            "build": entry.build,
            "build-number": entry.build_number,
            "subdir": entry.subdir,
            "noarch": entry.noarch,
            "build-source": dict(entry.source) if entry.source is not None else None,
            "source-depends": {k: dict(v) for k, v in entry.source_depends.items()},
            "build-key": item.build_key,
        }
    elif isinstance(entry, PypiPackage):
        out["index"] = entry.index
        if item.wheel_build is not None:
            out["wheel-build"] = dict(item.wheel_build)
    return out


def build_json(build: SourceBuild) -> dict[str, object]:
    """One ``pixi build`` invocation (``builds``)."""
    job, spec, use = build.job, build.backend.spec, build.backend.use
    backend: dict[str, object] | None = None
    if spec is not None:
        backend = {
            "name": spec.name,
            "version": spec.version,
            "pinned": use.pinned if use is not None else False,
            "manifest": str(spec.manifest),
            "line": spec.version_line or spec.backend_line,
        }
    git: dict[str, object] | None = None
    if job.git is not None:
        git = {"url": job.git.url, "rev": job.git.rev, "subdirectory": job.git.subdirectory}
    status = build.status or {}
    return {
        "key": build.key,
        "location": job.location,
        "location-kind": job.location_kind,
        "origin": build.origin,
        "target-platform": job.target_platform,
        "noarch": job.is_noarch,
        "argv": list(build.argv),
        "lock-ids": list(job.lock_ids),
        "names": list(job.names),
        "platforms": list(build.platforms),
        "backend": backend,
        "target": job.target,
        "subdirs": list(job.platforms),
        "path": str(job.path) if job.path is not None else None,
        "git": git,
        "backend-checked": build.backend.checked,
        "backend-problem": build.backend.problem,
        "cached": build.cached,
        "cache-key": status.get("cache-key"),
        "pixi": dict(build.pixi) if build.pixi is not None else None,
        "command": list(build.command),
    }


def totals_json(totals: PlanTotals) -> dict[str, object]:
    """Counts by action (``from-base`` only when there are any) and sizes (``totals``)."""
    return {
        "items": totals.items,
        **totals.counts,
        "download-bytes": totals.download_bytes,
        "copy-bytes": totals.copy_bytes,
        "unknown-size": totals.unknown_size,
        "builds": totals.builds,
    }


def plan_json(plan: PackPlan) -> dict[str, object]:
    """One platform's plan (an element of ``platforms``)."""
    return {
        "version": JSON_VERSION,
        "environment": plan.environment,
        "platform": {
            "name": plan.platform.name,
            "subdir": plan.platform.subdir,
            "virtual-packages": list(plan.platform.virtual_packages),
        },
        "lock": _lock_json(plan.lock_path, plan.lock_version, plan.lock_sha256),
        "workspace": str(plan.workspace_root),
        "channels": list(plan.channels),
        "indexes": list(plan.indexes),
        "items": [item_json(i) for i in plan.items],
        "builds": [build_json(b) for b in plan.builds],
        "totals": totals_json(plan.totals),
        "warnings": list(plan.warnings),
        "problems": list(plan.problems),
    }


def plans_json(plans: PackPlans, *, tool_version: str) -> dict[str, object]:
    """The whole ``inspect --json`` document: every platform's plan, each build once, and
    totals summed over the platforms (``builds``: the distinct invocations)."""
    first = plans.plans[0] if plans.plans else None
    totals: dict[str, int] = {}
    for plan in plans.plans:
        for key, value in totals_json(plan.totals).items():
            if isinstance(value, int):
                totals[key] = totals.get(key, 0) + value
    totals["builds"] = len(plans.builds)
    doc: dict[str, object] = {
        "version": JSON_VERSION,
        "tool": {"name": TOOL_NAME, "version": tool_version},
        "environment": first.environment if first else None,
        "lock": _lock_json(first.lock_path, first.lock_version, first.lock_sha256)
        if first
        else None,
        "platforms": [plan_json(p) for p in plans.plans],
        "builds": [build_json(b) for b in plans.builds],
        "totals": totals,
        "warnings": list(plans.warnings),
        "problems": list(plans.problems),
    }
    if plans.base is not None:
        doc["base"] = {
            "identity": plans.base.identity,
            "kind": plans.base.kind,
            "platform": plans.base.platform,
            "source": plans.base.source,
        }
    return doc


def _lock_json(path: Path, version: int, sha256: str) -> dict[str, object]:
    return {"path": str(path), "version": version, "sha256": sha256}
