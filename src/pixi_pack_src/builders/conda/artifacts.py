"""The results of a job: the package files one build wrote, matched to the job's lock entries
(:func:`~pixi_pack_src.builders.conda.matching.match_entry`, the rule), as
:class:`BuiltArtifact` records with the archive's provenance (docs/archive-format.md,
"`pixi-pack-src.json`"; no absolute paths: ``{workspace}``, ``{checkout}`` and ``{outdir}``
placeholders); and :func:`check_environment`, which checks the built records against the rest
of the environment (docs/pixi-build.md §8, steps 6 and 8).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rattler import MatchSpec, RepoDataRecord

from pixi_pack_src.archive.channel import record_from_archive, validate_records
from pixi_pack_src.builders.conda.jobs import BuildJob
from pixi_pack_src.builders.conda.matching import (
    ArtifactInfo,
    EntryMatch,
    match_entry,
    read_artifact,
)
from pixi_pack_src.builders.conda.prepare import PreparedJob
from pixi_pack_src.errors import BuildError
from pixi_pack_src.layout import conda_path

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class BuiltArtifact:
    """A built package file, the lock entries it satisfies, and its provenance.

    Compared and hashed by identity: a noarch artifact is one object under all its lock ids.
    """

    path: Path
    file_name: str
    subdir: str
    record: RepoDataRecord = field(repr=False, compare=False)
    lock_ids: tuple[str, ...]
    provenance: Mapping[str, object]  # {"origin", "builder"} (docs/archive-format.md)
    from_cache: bool
    warnings: tuple[str, ...] = ()

    @property
    def archive_path(self) -> str:
        return conda_path(self.subdir, self.file_name)


def check_environment(
    records: Sequence[RepoDataRecord], built: Mapping[str, BuiltArtifact]
) -> None:
    """Validate the whole set (locked binaries plus built records): a built package whose
    dependency is missing fails with a :class:`BuildError` naming it; then
    :func:`pixi_pack_src.archive.channel.validate_records` checks everything else."""
    artifacts = list({id(a): a for a in built.values()}.values())
    every = [*records, *(a.record for a in artifacts)]
    for artifact in artifacts:
        for dep in artifact.record.depends:
            spec = MatchSpec(dep)
            if spec.name.normalized.startswith("__"):
                continue
            name = spec.name.normalized
            if any(r.name.normalized == name and spec.matches(r) for r in every):
                continue
            present = [
                f"{r.name.normalized} {r.version}" for r in every if r.name.normalized == name
            ]
            raise BuildError(
                f"the built package {artifact.file_name} depends on `{dep}`, which "
                + (
                    f"the environment does not satisfy (it has {', '.join(present)})"
                    if present
                    else "is not in the environment"
                ),
                hint="its run dependencies changed since the lock was written: re-lock with "
                "`pixi lock`, or pass the missing package with --inject",
            )
    validate_records(every)


def artifacts_from_files(
    job: BuildJob,
    prep: PreparedJob,
    files: Sequence[Path],
    meta: Mapping[str, Any],
    *,
    allow_drift: bool,
    from_cache: bool,
) -> list[BuiltArtifact]:
    """One artifact per file that some lock entry of ``job`` wants; a :class:`BuildError`
    when an entry finds no file (:func:`match_entry`)."""
    infos = [read_artifact(p) for p in files]
    what = f"pixi {meta.get('command', 'build')} of {job.label}"
    matches: list[EntryMatch] = [
        match_entry(e.source, e.platform, infos, allow_drift=allow_drift, what=what)
        for e in job.entries
    ]
    by_file: dict[str, list[EntryMatch]] = {}
    for m in matches:
        by_file.setdefault(m.artifact.file_name, []).append(m)
    if not from_cache:
        extra = sorted({i.file_name for i in infos} - set(by_file))
        if extra:
            log.info("%s: not packing %s (no lock entry wants them)", job.label, ", ".join(extra))
    artifacts = []
    for file_name, group in sorted(by_file.items()):
        chosen: ArtifactInfo = group[0].artifact
        warnings = [*prep.warnings]
        for m in group:
            warnings.extend(w for w in m.warnings if w not in warnings)
        for w in warnings:
            if w not in prep.warnings:
                log.warning("%s", w)
        artifacts.append(
            BuiltArtifact(
                path=chosen.path,
                file_name=file_name,
                subdir=chosen.subdir,
                record=record_from_archive(chosen.path),
                lock_ids=tuple(sorted(m.lock_id for m in group)),
                provenance=_provenance(job, prep, group, meta),
                from_cache=from_cache,
                warnings=tuple(warnings),
            )
        )
    return artifacts


def relocated(artifact: BuiltArtifact, path: Path) -> BuiltArtifact:
    """The same artifact at ``path`` (its copy in the build cache)."""
    return replace(artifact, path=path, record=record_from_archive(path))


def _provenance(
    job: BuildJob, prep: PreparedJob, group: Sequence[EntryMatch], meta: Mapping[str, Any]
) -> dict[str, object]:
    first = min(group, key=lambda m: m.lock_id)
    entry = next(e.source for e in job.entries if e.source.lock_id == first.lock_id)
    origin: dict[str, object] = {
        "type": "conda-source",
        "lock-ids": sorted(m.lock_id for m in group),
        "location": job.location,
        "variants": dict(sorted(entry.variants.items())),
        "match": list(first.checks),
    }
    ident = prep.identity
    if job.git is not None:
        origin["git"] = job.git.url
        origin["rev"] = job.git.rev
        if job.git.subdirectory:
            origin["subdirectory"] = job.git.subdirectory
    else:
        origin["source-tree-sha256"] = ident.get("tree-sha256")
    if job.build_source:
        origin["build-source"] = dict(sorted(job.build_source.items()))
    drifts = [m.drift for m in group if m.drift is not None]
    if drifts:
        origin["drift"] = dict(drifts[0])
    builder: dict[str, object] = {
        "argv": list(meta.get("argv") or job.preview_argv()),
        "pixi-version": meta.get("pixi-version"),
        "command": meta.get("command"),
        "backend": meta.get("backend"),
    }
    return {"origin": origin, "builder": builder}
