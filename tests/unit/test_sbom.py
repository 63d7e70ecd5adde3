"""The SBOM mapping on hand-made input: purls, licenses, redaction, pedigree, determinism."""

from __future__ import annotations

import json
import uuid
from typing import Any

from cyclonedx.output import make_outputter
from cyclonedx.schema import OutputFormat, SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from pixi_pack_src.sbom import (
    NAMESPACE,
    SCHEMA,
    SbomArtifact,
    SbomInput,
    build_bom,
    content_digest,
    sbom_json,
)
from pixi_pack_src.verify.model import WheelDetails

SHA = "a" * 64


def _input(**changes: Any) -> SbomInput:
    conda = SbomArtifact(
        path="channel/linux-64/zlib-1.3-h0_0.conda",
        kind="conda",
        name="zlib",
        version="1.3",
        build="h0_0",
        subdir="linux-64",
        sha256=SHA,
        size=10,
        md5="b" * 32,
        license="Zlib",
        origin={
            "type": "download",
            "url": "https://user:s3cret@conda.example/t/tok123/forge/linux-64/zlib-1.3-h0_0.conda",
            "verified-against": "lock-sha256",
        },
    )
    app = SbomArtifact(
        path="channel/noarch/app-2.0-pyh0_0.tar.bz2",
        kind="conda",
        name="app",
        version="2.0",
        build="pyh0_0",
        subdir="noarch",
        sha256="c" * 64,
        size=20,
        license="MIT OR Apache-2.0",
        depends=("zlib >=1.2", "__glibc >=2.17", "python >=3.9"),
    )
    wheel = SbomArtifact(
        path="pypi/tool_x-1.0-py3-none-any.whl",
        kind="wheel",
        name="tool-x",
        version="1.0",
        sha256="d" * 64,
        size=30,
        wheel=WheelDetails(
            classifiers=("License :: OSI Approved :: BSD License",),
            requires_dist=("app>=1", "pytest; extra == 'test'"),
        ),
        origin={
            "type": "sdist",
            "url": "https://files.example/tool_x-1.0.tar.gz?token=abc",
            "sha256": "e" * 64,
        },
        builder={"frontend": "pixi-pack-src", "backend": "hatchling.build", "isolated": True},
    )
    fields: dict[str, Any] = {
        "environment": "default",
        "platform": "linux-64",
        "platform_name": "linux-64",
        "tool_name": "pixi-pack-src",
        "tool_version": "0.1.0",
        "artifacts": (conda, app, wheel),
        "content_digest": content_digest({conda.path: SHA}),
        "timestamp": 1153704088,
    }
    fields.update(changes)
    return SbomInput(**fields)


def test_the_mapping() -> None:
    data = sbom_json(_input())
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(data.decode()) is None
    assert b"s3cret" not in data
    assert b"tok123" not in data
    assert b"token=abc" not in data
    doc = json.loads(data)
    by_ref = {c["bom-ref"]: c for c in doc["components"]}
    zlib = by_ref["channel/linux-64/zlib-1.3-h0_0.conda"]
    assert zlib["purl"] == (
        "pkg:conda/zlib@1.3?build=h0_0&channel=https://conda.example/forge&subdir=linux-64"
        "&type=conda"
    )
    url = zlib["externalReferences"][0]["url"]
    assert (
        url == "https://user:********@conda.example/t/********/forge/linux-64/zlib-1.3-h0_0.conda"
    )
    assert zlib["licenses"] == [{"license": {"id": "Zlib"}}]
    assert {h["alg"] for h in zlib["hashes"]} == {"SHA-256", "MD5"}
    app = by_ref["channel/noarch/app-2.0-pyh0_0.tar.bz2"]
    assert app["purl"] == "pkg:conda/app@2.0?build=pyh0_0&subdir=noarch&type=tar.bz2"
    assert app["licenses"] == [{"expression": "MIT OR Apache-2.0"}]
    wheel = by_ref["pypi/tool_x-1.0-py3-none-any.whl"]
    assert wheel["purl"] == "pkg:pypi/tool-x@1.0?file_name=tool_x-1.0-py3-none-any.whl"
    assert wheel["licenses"] == [{"license": {"name": "BSD License"}}]
    (ancestor,) = wheel["pedigree"]["ancestors"]
    assert ancestor["hashes"] == [{"alg": "SHA-256", "content": "e" * 64}]
    assert ancestor["externalReferences"][0]["url"].endswith("?token=********")
    assert wheel["pedigree"]["notes"].endswith(
        "by the PEP 517 backend hatchling.build (pixi-pack-src)"
    )
    props = {p["name"]: p["value"] for p in wheel["properties"]}
    assert props["pixi-pack-src:builder:isolated"] == "true"
    deps = {d["ref"]: d.get("dependsOn", []) for d in doc["dependencies"]}
    assert deps[app["bom-ref"]] == [zlib["bom-ref"]]  # python and __glibc are not in the pack
    assert deps[wheel["bom-ref"]] == [app["bom-ref"]]  # the extra's requirement is left out
    assert doc["serialNumber"] == f"urn:uuid:{uuid.uuid5(NAMESPACE, _input().content_digest)}"
    assert doc["metadata"]["timestamp"] == "2006-07-24T01:21:28+00:00"


def test_same_input_same_bytes_and_the_serial_follows_the_content() -> None:
    assert sbom_json(_input()) == sbom_json(_input())
    other = json.loads(sbom_json(_input(content_digest=content_digest({"x": SHA}))))
    assert other["serialNumber"] != json.loads(sbom_json(_input()))["serialNumber"]


def test_content_digest_ignores_the_files_made_from_it() -> None:
    files = {"a": SHA, "pixi-pack-src.json": "1" * 64, "sbom.cdx.json": "2" * 64}
    assert content_digest(files) == content_digest({"a": SHA})
    assert content_digest({"a": SHA}) != content_digest({"b": SHA})


def test_the_fast_output_is_the_librarys_own() -> None:
    # sbom_json skips the library's quadratic Bom.validate and its graph rewrites when they
    # would change nothing: the bytes are the library's standard output, byte for byte
    for inp in (_input(), _input(artifacts=()), _input(tool_version=None)):
        standard = make_outputter(build_bom(inp), OutputFormat.JSON, SCHEMA)
        assert sbom_json(inp) == (standard.output_as_string(indent=2) + "\n").encode()
