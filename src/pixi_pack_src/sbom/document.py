"""The CycloneDX document of an :class:`~.inputs.SbomInput` (:func:`build_bom`): components
with purls, hashes, licences, properties and pedigrees, and the dependency graph. The mapping
is the one docs/sbom.md describes."""

from __future__ import annotations

import datetime
import json
import re
import urllib.parse
import uuid
from collections.abc import Iterable, Mapping

from cyclonedx.contrib.license.factories import LicenseFactory
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
from cyclonedx.model.license import License
from cyclonedx.model.tool import ToolRepository
from cyclonedx.schema import SchemaVersion
from packageurl import PackageURL
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import (
    canonicalize_name,
)
from rattler import MatchSpec

from pixi_pack_src.archive.metadata import (
    JsonValue,
)
from pixi_pack_src.redact import redact_text
from pixi_pack_src.sbom.inputs import SbomArtifact, SbomInput

SCHEMA = SchemaVersion.V1_6
# The namespace of our serial numbers: uuid5(NAMESPACE, content digest).
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_OID, "pixi-pack-src.sbom")
ENVIRONMENT_REF = "environment"
PREFIX = "pixi-pack-src"
BUILT_ORIGINS = ("conda-source", "sdist", "pypi-git", "pypi-source-tree")


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
