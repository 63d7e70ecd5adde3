"""The SBOM of a pack: ``sbom.cdx.json``, CycloneDX 1.6 JSON made by cyclonedx-python-lib.

One component per conda package and wheel (bom-ref: its archive path) with its purl
(``pkg:conda/<name>@<version>?build=&channel=&subdir=&type=``, ``pkg:pypi/<name>@<version>``),
the sha256 (and md5) of the archive's file, its license (conda: the record's, from
``info/index.json``; wheels: METADATA ``License-Expression``, else ``License``, else the
license classifiers), the download URL (credentials redacted), and ``pixi-pack-src:*``
properties (archive path, size, origin, verification, the builder's fields). Built artifacts
carry a ``pedigree``: the source as an ancestor (a path with its tree hash, a git URL with its
commit, an sdist with its URL and sha256), the commit, and a note naming the builder. The
dependency graph comes from the conda records' ``depends`` and the wheels' ``Requires-Dist``
(names present in the pack); the environment (the metadata component) depends on all.

Deterministic: the same pack gives the same bytes. The serial number is a UUIDv5 of the
pack's content digest (:func:`content_digest`), the timestamp is the archive's fixed member
time (``SOURCE_DATE_EPOCH`` or 2006-07-24), bom-refs are archive paths, and the library
sorts components, properties and dependencies. docs/sbom.md has the whole mapping.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
import urllib.parse
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from cyclonedx.contrib.license.factories import LicenseFactory
from cyclonedx.exception.model import (
    LicenseExpressionAlongWithOthersException,
    UnknownComponentDependencyException,
)
from cyclonedx.model import (
    ExternalReference,
    ExternalReferenceType,
    HashAlgorithm,
    HashType,
    Property,
    XsUri,
)
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Commit, Component, ComponentType, Pedigree
from cyclonedx.model.dependency import Dependency
from cyclonedx.model.license import License, LicenseExpression
from cyclonedx.model.tool import ToolRepository
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.schema import SchemaVersion
from cyclonedx.schema.schema import SCHEMA_VERSIONS
from packageurl import PackageURL
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import (
    InvalidWheelFilename,
    canonicalize_name,
    parse_wheel_filename,
)
from rattler import MatchSpec, RepoDataRecord

from pixi_pack_src.archive.members import fixed_mtime
from pixi_pack_src.archive.metadata import (
    PROVENANCE_JSON,
    SBOM_JSON,
    ArtifactProvenance,
    JsonValue,
    Provenance,
)
from pixi_pack_src.errors import ArchiveError
from pixi_pack_src.redact import redact_text
from pixi_pack_src.verify import VerifyOptions, VerifyReport, verify
from pixi_pack_src.verify.checks import Inspection
from pixi_pack_src.verify.model import PackContents, WheelDetails

SCHEMA = SchemaVersion.V1_6
# The namespace of our serial numbers: uuid5(NAMESPACE, content digest).
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_OID, "pixi-pack-src.sbom")
ENVIRONMENT_REF = "environment"
PREFIX = "pixi-pack-src"
BUILT_ORIGINS = ("conda-source", "sdist", "pypi-git", "pypi-source-tree")


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


def _prop(name: str, value: object) -> Property:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return Property(name=f"{PREFIX}:{name}", value=redact_text(text))


def _flatten(prefix: str, value: JsonValue) -> Iterable[Property]:
    if isinstance(value, Mapping):
        for key in sorted(value):
            yield from _flatten(f"{prefix}:{key}", value[key])
    elif value is not None:
        yield _prop(prefix, value)


def _url(value: JsonValue) -> XsUri | None:
    if isinstance(value, str) and "://" in value:
        return XsUri(redact_text(value))
    return None


def _channel(artifact: SbomArtifact) -> str | None:
    """The channel URL a downloaded conda package came from (its URL without subdir/file)."""
    origin = artifact.origin or {}
    url = origin.get("url")
    if origin.get("type") != "download" or not isinstance(url, str):
        return None
    head, _, file_name = url.rpartition("/")
    channel, _, subdir = head.rpartition("/")
    if file_name != artifact.path.rsplit("/", 1)[-1] or subdir != artifact.subdir or not channel:
        return None
    # an identifier, not a way in: no user, password or conda token at all (not even redacted)
    parts = urllib.parse.urlsplit(redact_text(channel))
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    path = re.sub(r"/t/[^/]+", "", parts.path)
    return urllib.parse.urlunsplit((parts.scheme, host, path, "", ""))


def _purl(artifact: SbomArtifact) -> PackageURL:
    if artifact.kind == "conda":
        qualifiers = {
            "build": artifact.build or "",
            "subdir": artifact.subdir or "",
            "type": "tar.bz2" if artifact.path.endswith(".tar.bz2") else "conda",
        }
        channel = _channel(artifact)
        if channel:
            qualifiers["channel"] = channel
        return PackageURL(
            type="conda", name=artifact.name, version=artifact.version, qualifiers=qualifiers
        )
    return PackageURL(
        type="pypi",
        name=artifact.name,
        version=artifact.version or None,
        qualifiers={"file_name": artifact.path.rsplit("/", 1)[-1]},
    )


def _licenses(artifact: SbomArtifact) -> list[License]:
    factory = LicenseFactory()
    if artifact.kind == "conda":
        return [factory.make_from_string(artifact.license)] if artifact.license else []
    details = artifact.wheel
    if details is None:
        return []
    if details.license_expression:
        return [factory.make_from_string(details.license_expression)]
    if details.license and len(details.license) <= 100:
        return [factory.make_from_string(details.license)]
    names = sorted({c.rsplit("::", 1)[-1].strip() for c in details.classifiers})
    return [factory.make_with_name(n) for n in names if n]


def _hashes(sha256: str, md5: str | None = None) -> list[HashType]:
    hashes = [HashType(alg=HashAlgorithm.SHA_256, content=sha256)]
    if md5:
        hashes.append(HashType(alg=HashAlgorithm.MD5, content=md5))
    return hashes


def _pedigree(artifact: SbomArtifact) -> Pedigree | None:
    """The source of a built artifact, as CycloneDX pedigree (``None`` for others)."""
    origin = artifact.origin or {}
    kind = origin.get("type")
    if kind not in BUILT_ORIGINS:
        return None
    ref = f"{artifact.path}#source"
    props: list[Property] = []
    refs: list[ExternalReference] = []
    hashes: list[HashType] = []
    commits: list[Commit] = []
    purl = None
    git = origin.get("git") if kind == "conda-source" else origin.get("url")
    rev = origin.get("rev")
    if kind in ("conda-source", "pypi-git") and isinstance(git, str) and isinstance(rev, str):
        vcs = _url(git)
        if vcs is not None:
            refs.append(ExternalReference(type=ExternalReferenceType.VCS, url=vcs))
        commits.append(Commit(uid=rev, url=vcs))
        source = f"git {redact_text(git)} at {rev}"
        if isinstance(origin.get("subdirectory"), str):
            props.append(_prop("source:subdirectory", origin["subdirectory"]))
            source += f" (subdirectory {origin['subdirectory']})"
    elif kind == "sdist":
        sha = origin.get("sha256")
        if isinstance(sha, str):
            hashes = _hashes(sha)
        url = _url(origin.get("url"))
        if url is not None:
            refs.append(ExternalReference(type=ExternalReferenceType.DISTRIBUTION, url=url))
            source = f"the sdist {url}"
        else:
            props.append(_prop("source:path", origin.get("path", "")))
            source = f"the sdist {origin.get('path', '')}"
        purl = PackageURL(type="pypi", name=artifact.name, version=artifact.version or None)
    else:  # a source tree: conda-source at a path, or pypi-source-tree
        location = origin.get("location") if kind == "conda-source" else origin.get("path")
        props.append(_prop("source:path", location or ""))
        tree = origin.get("source-tree-sha256")
        if isinstance(tree, str):
            props.append(_prop("source:tree-sha256", tree))
        source = f"the source tree {location} (tree sha256 {tree})"
    ancestor = Component(
        name=artifact.name,
        version=artifact.version or None,
        type=ComponentType.LIBRARY,
        bom_ref=ref,
        purl=purl,
        hashes=hashes,
        external_references=refs,
        properties=props,
    )
    builder = artifact.builder or {}
    if kind == "conda-source":
        backend = builder.get("backend")
        pin = ""
        if isinstance(backend, Mapping):
            pin = f" with {backend.get('name')}{backend.get('spec') or ''}"
        how = f"pixi {builder.get('pixi-version', '?')} ({builder.get('command', 'build')}){pin}"
    else:
        how = f"the PEP 517 backend {builder.get('backend', '?')} ({builder.get('frontend', '?')})"
    return Pedigree(ancestors=[ancestor], commits=commits, notes=f"built from {source} by {how}")


def _component(artifact: SbomArtifact) -> Component:
    origin = artifact.origin or {}
    props = [_prop("path", artifact.path), _prop("size", str(artifact.size))]
    props.extend(_flatten("origin", {k: v for k, v in origin.items() if k != "url"}))
    if artifact.builder is not None:
        props.extend(_flatten("builder", artifact.builder))
    refs: list[ExternalReference] = []
    url = _url(origin.get("url")) if origin.get("type") == "download" else None
    if url is not None:
        refs.append(
            ExternalReference(
                type=ExternalReferenceType.DISTRIBUTION, url=url, hashes=_hashes(artifact.sha256)
            )
        )
    return Component(
        name=artifact.name,
        version=artifact.version or None,
        type=ComponentType.LIBRARY,
        bom_ref=artifact.path,
        purl=_purl(artifact),
        hashes=_hashes(artifact.sha256, artifact.md5),
        licenses=_licenses(artifact),
        external_references=refs,
        properties=props,
        pedigree=_pedigree(artifact),
    )


def _conda_depends(artifact: SbomArtifact, conda: Mapping[str, Component]) -> list[Component]:
    found: list[Component] = []
    for text in artifact.depends:
        try:
            spec = MatchSpec(text)
        except Exception:  # noqa: BLE001, S112 - py-rattler raises several types; checked by verify
            continue
        if spec.name.normalized in conda:
            found.append(conda[spec.name.normalized])
    return found


def _wheel_depends(
    artifact: SbomArtifact, wheels: Mapping[str, Component], conda: Mapping[str, Component]
) -> list[Component]:
    found: list[Component] = []
    for text in artifact.wheel.requires_dist if artifact.wheel else ():
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        if req.marker is not None and "extra" in str(req.marker):
            continue  # only with an extra
        name = str(canonicalize_name(req.name))
        target = wheels.get(name) or conda.get(name)
        if target is not None:
            found.append(target)
    return found


def build_bom(inp: SbomInput) -> Bom:
    """The CycloneDX model of ``inp`` (see the module doc)."""
    root_props = [
        _prop("platform", inp.platform),
        _prop("platform-name", inp.platform_name),
        _prop("content-sha256", inp.content_digest),
    ]
    if inp.lock_file is not None:
        root_props.append(_prop("lock:file", inp.lock_file))
    if inp.lock_sha256 is not None:
        root_props.append(_prop("lock:sha256", inp.lock_sha256))
    if inp.virtual_packages:
        root_props.append(_prop("virtual-packages", sorted(inp.virtual_packages)))
    root = Component(
        name=inp.environment,
        type=ComponentType.APPLICATION,
        bom_ref=ENVIRONMENT_REF,
        properties=root_props,
    )
    tool = Component(
        name=inp.tool_name,
        version=inp.tool_version,
        type=ComponentType.APPLICATION,
        bom_ref=f"tool:{inp.tool_name}",
    )
    components = {a.path: _component(a) for a in inp.artifacts}
    conda = {a.name: components[a.path] for a in inp.artifacts if a.kind == "conda"}
    wheels = {a.name: components[a.path] for a in inp.artifacts if a.kind == "wheel"}
    # One leaf Dependency per component, shared by every list that names it; the graph and the
    # components are handed over whole (each SortedSet sorted once). Bom.register_dependency
    # would search the list on every call: quadratic in the number of packages.
    leaf = {path: Dependency(ref=c.bom_ref) for path, c in components.items()}
    by_ref = {id(c): leaf[path] for path, c in components.items()}
    graph: list[Dependency] = [Dependency(ref=root.bom_ref, dependencies=list(leaf.values()))]
    for artifact in inp.artifacts:
        if artifact.kind == "conda":
            deps = _conda_depends(artifact, conda)
        else:
            deps = _wheel_depends(artifact, wheels, conda)
        graph.append(
            Dependency(
                ref=components[artifact.path].bom_ref,
                dependencies=[by_ref[id(d)] for d in deps],
            )
        )
    return Bom(
        serial_number=uuid.uuid5(NAMESPACE, inp.content_digest),
        metadata=BomMetaData(
            timestamp=datetime.datetime.fromtimestamp(inp.timestamp, datetime.UTC),
            component=root,
            tools=ToolRepository(components=[tool]),
        ),
        components=components.values(),
        dependencies=graph,
    )


def sbom_json(inp: SbomInput) -> bytes:
    """``sbom.cdx.json``: CycloneDX 1.6 JSON, 2-space indent, final newline."""
    return (_FastJson(build_bom(inp)).output_as_string(indent=2) + "\n").encode("utf-8")


class _FastJson(JsonV1Dot6):
    """cyclonedx-python-lib's CycloneDX 1.6 JSON output, the same bytes, in linear time for
    the boms :func:`build_bom` makes.

    The library's ``generate`` first runs ``Bom.validate`` (which looks every component up in
    the dependency list: quadratic, 0.6 s for 2,000 packages), then rebuilds the dependency
    graph flat and merged, and gives duplicate bom-refs unique ones. :func:`_problem` makes
    the same checks as ``validate`` in linear time; when the bom-refs are unique and the graph
    is already flat and merged (as :func:`build_bom` makes it) both rewrites would give back
    the same bom, so the library's serializer runs on it directly. Any other bom goes through
    the library's own path. (``tests/unit/test_sbom.py`` compares both outputs.)
    """

    def generate(self, force_regeneration: bool = False) -> None:
        if self.generated and not force_regeneration:
            return
        bom = self.get_bom()
        everything = _all_components(bom)
        if not _fast_path_holds(bom, everything):
            super().generate(force_regeneration=force_regeneration)
            return
        problem = _problem(bom, everything)
        if problem is not None:
            raise problem
        text = bom.as_json(view_=SCHEMA_VERSIONS[self.schema_version_enum])  # type: ignore[attr-defined]
        doc: dict[str, object] = json.loads(text)
        doc.update(
            {
                "$schema": self._get_schema_uri(),
                "bomFormat": "CycloneDX",
                "specVersion": self.schema_version.to_version(),
            }
        )
        self._bom_json = doc
        self.generated = True


def _fast_path_holds(bom: Bom, everything: Sequence[Component]) -> bool:
    """Unique, non-empty bom-refs; every component and the root with exactly one dependency
    entry; no entry that depends on something with dependencies of its own (flat)."""
    refs: set[str] = set()
    for component in everything:
        value = component.bom_ref.value
        if value is None or value in refs:
            return False
        refs.add(value)
    if bom.services or bom.vulnerabilities:
        return False
    listed: set[str] = set()
    for dep in bom.dependencies:
        value = dep.ref.value
        if value is None or value in listed or any(d.dependencies for d in dep.dependencies):
            return False
        listed.add(value)
    top = [c.bom_ref.value for c in bom.components]
    if bom.metadata.component is not None:
        top.append(bom.metadata.component.bom_ref.value)
    return listed == set(top)


def _all_components(bom: Bom) -> list[Component]:
    """The root, the components and their nested components (not through sets: a
    component's hash is that of all its fields)."""
    found: list[Component] = []
    todo = [bom.metadata.component] if bom.metadata.component is not None else []
    todo.extend(bom.components)
    while todo:
        component = todo.pop()
        found.append(component)
        todo.extend(component.components)
    return found


def _problem(bom: Bom, everything: Sequence[Component]) -> Exception | None:
    """What ``Bom.validate`` raises for ``bom`` (its checks 1 and 3; check 0 holds on the
    fast path), in linear time."""
    known = {c.bom_ref for c in everything}
    used = {d.ref for d in bom.dependencies} | {
        child.ref for d in bom.dependencies for child in d.dependencies
    }
    if used - known:
        return UnknownComponentDependencyException(
            "One or more Components have Dependency references to Components/Services that "
            f"are not known in this BOM. They are: {used - known}"
        )
    elements: list[BomMetaData | Component] = [bom.metadata, *everything]
    for element in elements:
        licenses = element.licenses
        if len(licenses) > 1 and any(isinstance(li, LicenseExpression) for li in licenses):
            return LicenseExpressionAlongWithOthersException(
                f"Found LicenseExpression along with others licenses in: {element!r}"
            )
    return None


# -- for a pack that is already written -------------------------------------------------------


@dataclass(frozen=True)
class PackSbom:
    """The SBOM of a written pack: the embedded one when ``pixi-pack-src.json`` vouches for
    it, else one made from what the pack holds (``embedded`` says which)."""

    data: bytes
    embedded: bool
    report: VerifyReport


def sbom_of_pack(pack: Path | Literal["-"], *, stdin: BinaryIO | None = None) -> PackSbom:
    """Verify ``pack`` and return its SBOM; a pack with findings raises :class:`ArchiveError`
    (an SBOM of bytes that are not what they claim would vouch for the wrong thing)."""
    report = verify(VerifyOptions(pack=pack), stdin=stdin, wheel_details=True)
    if not report.ok:
        first = report.findings[0]
        raise ArchiveError(
            f"{report.label} does not verify ({len(report.findings)} finding(s)); the first: "
            f"{first.message}",
            hint="run `pixi-pack-src verify` on it for the whole list",
        )
    contents, inspection = report.contents, report.inspection
    assert contents is not None
    assert inspection is not None
    embedded = contents.documents.get(SBOM_JSON)
    provenance = inspection.provenance
    if embedded is not None and provenance is not None and SBOM_JSON in provenance.covered_paths():
        return PackSbom(embedded, True, report)
    return PackSbom(sbom_json(input_from_pack(contents, inspection)), False, report)
