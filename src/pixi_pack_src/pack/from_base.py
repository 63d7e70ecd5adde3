"""``pack --base``: the plan's ``from-base`` items as archive files without bytes.

A file the base has goes into the new pack's metadata exactly as a full pack would record it
(its locked record, with the base's md5 and size where the lock has none; the provenance a
download of it would have; a built artifact's record and provenance as the base has them),
but not into the archive: :mod:`pixi_pack_src.pack.write` leaves out every file whose ``path``
is ``None`` and writes ``pixi-pack-src-delta.json`` (:mod:`pixi_pack_src.delta.compare`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from rattler import RepoDataRecord

from pixi_pack_src.archive.metadata import ArtifactProvenance, JsonValue
from pixi_pack_src.delta.compare import DeltaInfo, split
from pixi_pack_src.delta.manifest import BaseManifest, is_metadata_path
from pixi_pack_src.errors import ArchiveError
from pixi_pack_src.fetch.config import FetchConfig
from pixi_pack_src.fetch.download import Artifact
from pixi_pack_src.lock.locations import file_url_path
from pixi_pack_src.lock.model import CondaBinary, CondaSource, PypiPackage
from pixi_pack_src.pack.collect import CondaFile, PlatformWork, WheelFile, relative_location
from pixi_pack_src.plan import FROM_BASE
from pixi_pack_src.redact import redact_url
from pixi_pack_src.verify.channel import parse_repodata


def base_records(base: BaseManifest) -> dict[str, RepoDataRecord]:
    """Archive path -> record, from the base's ``repodata.json`` files."""
    out: dict[str, RepoDataRecord] = {}
    for path, data in base.metadata.items():
        if is_metadata_path(path) and path.endswith("/repodata.json"):
            subdir = path.split("/")[1]
            for record in parse_repodata(data, subdir, root=None, label=base.source):
                out[f"channel/{subdir}/{record.file_name}"] = record
    return out


def _origin(artifact: Artifact, root: Path) -> dict[str, JsonValue]:
    """What a download (or copy) of this locked file records (pack/collect.py's ``_origin``)."""
    origin: dict[str, JsonValue] = {
        "type": "local-file" if artifact.is_local else "download",
        "verified-against": artifact.verified_against,
    }
    if artifact.is_local:
        local = file_url_path(artifact.lock_url)
        origin["path"] = relative_location(local, root)
    else:
        origin["url"] = redact_url(artifact.lock_url)
    return origin


def collect_from_base(work: PlatformWork, base: BaseManifest, config: FetchConfig) -> None:
    """The ``from-base`` items of this platform's plan, as files without bytes."""
    plan = work.plan
    items = [i for i in plan.items if i.action == FROM_BASE]
    if not items:
        return
    records = base_records(base)
    sizes = {f.path: f.size for f in base.files}
    built = {a.path: a for a in base.provenance.artifacts} if base.provenance else {}
    root = plan.workspace_root
    for item in items:
        entry, base_path = item.entry, item.base_path
        assert base_path is not None
        if isinstance(entry, CondaBinary):
            record = entry.record
            had = records.get(base_path)
            if record.md5 is None and had is not None:
                record.md5 = had.md5
            if record.size is None:
                record.size = sizes[base_path]
            prov = ArtifactProvenance(
                path=entry.archive_path,
                kind="conda",
                name=entry.name,
                version=entry.version,
                build=entry.build,
                sha256=item.hashes.sha256 or "",
                size=sizes[base_path],
                origin=_origin(Artifact.from_conda(entry, config), root),
            )
            work.add_conda(CondaFile(record, None, prov), "base")
        elif isinstance(entry, PypiPackage) and entry.is_wheel and entry.file_name is not None:
            prov = ArtifactProvenance(
                path=f"pypi/{entry.file_name}",
                kind="wheel",
                name=entry.name,
                version=entry.version or item.version or "",
                sha256=item.hashes.sha256 or "",
                size=sizes[base_path],
                origin=_origin(Artifact.from_pypi(entry, config), root),
            )
            work.add_wheel(WheelFile(None, prov), "base")
        elif isinstance(entry, CondaSource):
            if base_path not in work.conda:
                if base_path not in records:
                    raise ArchiveError(f"{base.source} has no repodata record for {base_path}")
                work.add_conda(CondaFile(records[base_path], None, built[base_path]), "base")
        else:  # a wheel built from an sdist, git or tree that the base has
            work.add_wheel(WheelFile(None, built[base_path]), "base")
        work.did(item, FROM_BASE)


def drop_in_base(work: PlatformWork, base: BaseManifest) -> None:
    """Files collected with bytes that the base has all the same (fetched without a lock
    hash, or built into the very same bytes): the delta does not carry them either."""
    have = base.by_sha256()
    for path, conda in list(work.conda.items()):
        if conda.path is not None and conda.provenance.sha256.lower() in have:
            work.conda[path] = CondaFile(conda.record, None, conda.provenance)
    for path, wheel in list(work.wheels.items()):
        if wheel.path is not None and wheel.provenance.sha256.lower() in have:
            work.wheels[path] = WheelFile(None, wheel.provenance)


def declaration(
    work: PlatformWork, base: BaseManifest, provenance: bytes
) -> tuple[DeltaInfo, bytes]:
    """``pixi-pack-src-delta.json`` for this archive (``provenance``: its record's bytes)."""
    artifacts = [c.provenance for c in work.conda.values()] + [
        w.provenance for w in work.wheels.values()
    ]
    added, unchanged, removed = split(base, artifacts)
    info = DeltaInfo(
        base_identity=base.identity,
        base_kind=base.kind,
        base_platform=base.platform,
        target=hashlib.sha256(provenance).hexdigest(),
        added=tuple(added),
        unchanged=tuple(unchanged),
        removed=tuple(removed),
    )
    return info, info.to_json()
