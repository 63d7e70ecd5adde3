"""What an SBOM is made of: :class:`SbomInput` and one :class:`SbomArtifact` per package
file, gathered either from ``pack``'s own work (:func:`conda_artifact`, :func:`wheel_artifact`)
or from a finished pack (:func:`input_from_pack`), and the pack's :func:`content_digest`. No
CycloneDX here: these are plain dataclasses (the mapping is :mod:`.document`)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from packaging.utils import (
    InvalidWheelFilename,
    canonicalize_name,
    parse_wheel_filename,
)
from rattler import RepoDataRecord

from pixi_pack_src.archive.members import fixed_mtime
from pixi_pack_src.archive.metadata import (
    PROVENANCE_JSON,
    SBOM_JSON,
    ArtifactProvenance,
    JsonValue,
    Provenance,
)
from pixi_pack_src.verify.checks import Inspection
from pixi_pack_src.verify.model import PackContents, WheelDetails


@dataclass(frozen=True)
class SbomArtifact:
    """One package file of the pack, with what the SBOM says about it."""

    path: str
    kind: str  # conda | wheel
    name: str
    version: str
    sha256: str
    size: int
    build: str | None = None
    subdir: str | None = None
    md5: str | None = None
    license: str | None = None  # conda: the record's (index.json)
    depends: tuple[str, ...] = ()  # conda: the record's depends
    wheel: WheelDetails | None = None
    origin: Mapping[str, JsonValue] | None = None
    builder: Mapping[str, JsonValue] | None = None


@dataclass(frozen=True)
class SbomInput:
    """Everything the SBOM is made of (from ``pack``'s work, or read from a pack)."""

    environment: str
    platform: str  # the conda subdir
    platform_name: str
    tool_name: str
    tool_version: str | None
    artifacts: tuple[SbomArtifact, ...]
    content_digest: str
    timestamp: int
    lock_file: str | None = None
    lock_sha256: str | None = None
    virtual_packages: tuple[str, ...] = ()


def content_digest(files: Mapping[str, str]) -> str:
    """The sha256 of the pack's content: one ``<path> <sha256>`` line per file, sorted,
    without ``pixi-pack-src.json`` and ``sbom.cdx.json`` (which are made from it)."""
    lines = "".join(
        f"{path} {sha}\n"
        for path, sha in sorted(files.items())
        if path not in (PROVENANCE_JSON, SBOM_JSON)
    )
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


def conda_artifact(
    path: str,
    record: RepoDataRecord,
    *,
    sha256: str,
    size: int,
    provenance: ArtifactProvenance | None,
) -> SbomArtifact:
    return SbomArtifact(
        path=path,
        kind="conda",
        name=record.name.normalized,
        version=str(record.version),
        build=str(record.build),
        subdir=record.subdir,
        sha256=sha256,
        size=size,
        md5=record.md5.hex() if record.md5 is not None else None,
        license=record.license or None,
        depends=tuple(record.depends),
        origin=provenance.origin if provenance else None,
        builder=provenance.builder if provenance else None,
    )


def wheel_artifact(
    path: str,
    *,
    sha256: str,
    size: int,
    details: WheelDetails | None,
    provenance: ArtifactProvenance | None,
) -> SbomArtifact:
    name, version = (provenance.name, provenance.version) if provenance else ("", "")
    if not name:
        try:
            parsed = parse_wheel_filename(path.rsplit("/", 1)[-1])
            name, version = str(parsed[0]), str(parsed[1])
        except InvalidWheelFilename:
            name = path.rsplit("/", 1)[-1]
    return SbomArtifact(
        path=path,
        kind="wheel",
        name=str(canonicalize_name(name)),
        version=version,
        sha256=sha256,
        size=size,
        wheel=details,
        origin=provenance.origin if provenance else None,
        builder=provenance.builder if provenance else None,
    )


def input_from_pack(contents: PackContents, inspection: Inspection) -> SbomInput:
    """What can be known from a pack that is already written (ours, or Quantco's)."""
    provenance: Provenance | None = inspection.provenance
    by_path = {a.path: a for a in provenance.artifacts} if provenance else {}
    artifacts: list[SbomArtifact] = []
    for path, record in sorted(inspection.records.items()):
        digest = contents.files[path]
        artifacts.append(
            conda_artifact(
                path, record, sha256=digest.sha256, size=digest.size, provenance=by_path.get(path)
            )
        )
    for path in inspection.wheels:
        digest = contents.files[path]
        artifacts.append(
            wheel_artifact(
                path,
                sha256=digest.sha256,
                size=digest.size,
                details=contents.wheels.get(path),
                provenance=by_path.get(path),
            )
        )
    meta = inspection.meta
    subdir = meta.platform if meta is not None else "unknown"
    tool_version: str | None
    if provenance is not None:
        tool_name, tool_version = provenance.tool.name, provenance.tool.version
    else:
        tool_name = "pixi-pack"
        tool_version = meta.pixi_pack_version if meta is not None else None
    return SbomInput(
        environment=provenance.environment if provenance else "environment",
        platform=subdir,
        platform_name=provenance.platform.name if provenance else subdir,
        tool_name=tool_name,
        tool_version=tool_version,
        artifacts=tuple(artifacts),
        content_digest=content_digest({p: d.sha256 for p, d in contents.files.items()}),
        timestamp=contents.mtime if contents.mtime is not None else fixed_mtime(),
        lock_file=provenance.lock.file if provenance else None,
        lock_sha256=provenance.lock.sha256 if provenance else None,
        virtual_packages=provenance.platform.virtual_packages if provenance else (),
    )


# -- the mapping ------------------------------------------------------------------------------
