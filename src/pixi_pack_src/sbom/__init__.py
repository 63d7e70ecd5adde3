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

from pixi_pack_src.sbom.document import (
    BUILT_ORIGINS,
    ENVIRONMENT_REF,
    NAMESPACE,
    PREFIX,
    SCHEMA,
    build_bom,
)
from pixi_pack_src.sbom.inputs import (
    SbomArtifact,
    SbomInput,
    conda_artifact,
    content_digest,
    input_from_pack,
    wheel_artifact,
)
from pixi_pack_src.sbom.output import PackSbom, sbom_json, sbom_of_pack

__all__ = [
    "BUILT_ORIGINS",
    "ENVIRONMENT_REF",
    "NAMESPACE",
    "PREFIX",
    "SCHEMA",
    "PackSbom",
    "SbomArtifact",
    "SbomInput",
    "build_bom",
    "conda_artifact",
    "content_digest",
    "input_from_pack",
    "sbom_json",
    "sbom_of_pack",
    "wheel_artifact",
]
