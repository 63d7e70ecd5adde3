"""The SBOM (``sbom.cdx.json``): in every pack, ``--sbom FILE``, ``pixi-pack-src sbom``.

Checked against the CycloneDX 1.6 JSON schema (cyclonedx-python-lib's strict validator), with
the archive's hashes, built artifacts' sources, and byte for byte across packs.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from testworld.fixtures import WorkspaceFactory
from testworld.layout import World
from testworld.packdir import build_pack_dir, quantco_repodata, write_pack_tar
from testworld.pixi_standin import StandIn
from testworld.scenarios import sdist_workspace
from testworld.server import WorldServer

from pixi_pack_src.cli import run
from pixi_pack_src.sbom import input_from_pack, sbom_json
from pixi_pack_src.verify import VerifyOptions, verify
from tests.integration.test_pack_sources import make_source_workspace

pytestmark = pytest.mark.integration


def members(tar: Path) -> dict[str, bytes]:
    with tarfile.open(tar) as tf:
        return {
            m.name: tf.extractfile(m).read()  # type: ignore[union-attr]
            for m in tf.getmembers()
            if m.isfile()
        }


def valid(data: bytes) -> dict[str, Any]:
    assert data.endswith(b"}\n")
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(data.decode())
    assert error is None, error
    doc: dict[str, Any] = json.loads(data)
    assert doc["specVersion"] == "1.6"
    return doc


def props(component: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p["value"] for p in component.get("properties", [])}


def sha256_of(component: dict[str, Any]) -> str:
    (sha,) = [h["content"] for h in component["hashes"] if h["alg"] == "SHA-256"]
    assert isinstance(sha, str)
    return sha


def regenerated(archive: Path) -> bytes:
    report = verify(VerifyOptions(pack=archive), wheel_details=True)
    assert report.ok, report.findings
    assert report.contents is not None
    assert report.inspection is not None
    return sbom_json(input_from_pack(report.contents, report.inspection))


def check_covers(doc: dict[str, Any], files: dict[str, bytes]) -> dict[str, dict[str, Any]]:
    """Every artifact of pixi-pack-src.json is one component, with the archive's sha256."""
    prov = json.loads(files["pixi-pack-src.json"])
    by_ref = {c["bom-ref"]: c for c in doc["components"]}
    assert sorted(by_ref) == sorted(a["path"] for a in prov["artifacts"])
    for artifact in prov["artifacts"]:
        component = by_ref[artifact["path"]]
        assert sha256_of(component) == artifact["sha256"]
        assert props(component)["pixi-pack-src:path"] == artifact["path"]
        assert component["version"] == artifact["version"]
    refs = {d["ref"] for d in doc["dependencies"]}
    assert refs == {*by_ref, "environment"}
    (root,) = [d for d in doc["dependencies"] if d["ref"] == "environment"]
    assert sorted(root["dependsOn"]) == sorted(by_ref)
    return by_ref


def test_sbom_of_wheels_built_from_sdists_git_and_a_tree(
    world: World,
    channel_server: WorldServer,
    workspace_factory: WorkspaceFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ws = sdist_workspace(world, workspace_factory, channel_server.url, tmp_path)
    cache = tmp_path / "cache"
    first, second = tmp_path / "a.tar", tmp_path / "b.tar"
    beside = tmp_path / "a.cdx.json"
    argv = [str(ws.root), "--use-cache", str(cache)]
    assert run(["-q", "pack", *argv, "-o", str(first), "--sbom", str(beside)]) == 0
    assert run(["-q", "pack", *argv, "-o", str(second)]) == 0  # builds come from the cache
    files = members(first)
    data = files["sbom.cdx.json"]
    assert members(second)["sbom.cdx.json"] == data
    assert first.read_bytes() == second.read_bytes()
    assert beside.read_bytes() == data
    doc = valid(data)
    by_ref = check_covers(doc, files)
    prov = {a["path"]: a for a in json.loads(files["pixi-pack-src.json"])["artifacts"]}
    # the provenance vouches for the SBOM, and the serial number is the content's
    generated = {g["path"] for g in json.loads(files["pixi-pack-src.json"])["generated"]}
    assert "sbom.cdx.json" in generated
    assert doc["serialNumber"].startswith("urn:uuid:")
    assert doc["metadata"]["timestamp"] == "2006-07-24T01:21:28+00:00"
    assert doc["metadata"]["tools"]["components"][0]["name"] == "pixi-pack-src"

    sdist = by_ref["pypi/worldpkg_a-1.0.0-py3-none-any.whl"]
    assert sdist["purl"].startswith("pkg:pypi/worldpkg-a@1.0.0?file_name=")
    (ancestor,) = sdist["pedigree"]["ancestors"]
    origin = prov["pypi/worldpkg_a-1.0.0-py3-none-any.whl"]["origin"]
    assert sha256_of(ancestor) == origin["sha256"]
    assert ancestor["externalReferences"][0]["url"] == origin["url"]
    assert "PEP 517 backend" in sdist["pedigree"]["notes"]
    git = by_ref["pypi/worldpkg_c-0.5.0-py3-none-any.whl"]
    rev = prov["pypi/worldpkg_c-0.5.0-py3-none-any.whl"]["origin"]["rev"]
    assert git["pedigree"]["commits"][0]["uid"] == rev
    tree = by_ref["pypi/worldpkg_local-0.9.0-py3-none-any.whl"]
    tree_sha = prov["pypi/worldpkg_local-0.9.0-py3-none-any.whl"]["origin"]["source-tree-sha256"]
    assert props(tree["pedigree"]["ancestors"][0])["pixi-pack-src:source:tree-sha256"] == tree_sha
    flavor = props(by_ref["pypi/worldpkg_flavor-1.0.0-py3-none-any.whl"])
    assert flavor["pixi-pack-src:builder:overrides:env:WORLDPKG_FLAVOR"] == "vanilla"
    # conda packages: purl with the channel, a distribution URL, the record's license
    (python,) = [c for c in doc["components"] if c["name"] == "python"]
    assert python["purl"].startswith("pkg:conda/python@3.11.7?build=")
    assert "channel=" in python["purl"]
    assert "&subdir=linux-64&type=conda" in python["purl"]
    assert python["externalReferences"][0]["type"] == "distribution"
    assert "pedigree" not in python

    # `pixi-pack-src sbom` prints the embedded one; made again from the pack, the same bytes
    assert run(["sbom", str(first)]) == 0
    assert capsys.readouterr().out.encode() == data
    assert regenerated(first) == data


def test_sbom_of_conda_source_packages(
    fake_pixi: StandIn,
    world: World,
    channel_server: WorldServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sw = make_source_workspace(tmp_path, world, channel_server)
    out = tmp_path / "src.tar"
    assert run(["-q", "pack", str(sw.root), "-p", "linux-64", "-o", str(out)]) == 0
    files = members(out)
    doc = valid(files["sbom.cdx.json"])
    by_ref = check_covers(doc, files)
    by_name = {c["name"]: c for c in by_ref.values()}
    main = by_name["main"]
    notes = main["pedigree"]["notes"]
    assert "the source tree src/main" in notes
    assert "pixi-build-rattler-build==0.4.5" in notes
    assert props(main)["pixi-pack-src:builder:backend:spec"] == "==0.4.5"
    assert len(props(main["pedigree"]["ancestors"][0])["pixi-pack-src:source:tree-sha256"]) == 64
    gitpkg = by_name["gitpkg"]
    assert gitpkg["pedigree"]["commits"][0]["uid"] == sw.git_rev
    assert gitpkg["pedigree"]["ancestors"][0]["externalReferences"][0]["type"] == "vcs"
    # the graph: main -> pkg -> pkg2, gitpkg -> chain-a
    deps = {d["ref"]: d.get("dependsOn", []) for d in doc["dependencies"]}
    assert deps[main["bom-ref"]] == [by_name["pkg"]["bom-ref"]]
    assert deps[gitpkg["bom-ref"]] == [by_name["chain-a"]["bom-ref"]]
    assert regenerated(out) == files["sbom.cdx.json"]


def test_sbom_of_a_quantco_archive(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Quantco-style archive has no SBOM: one is made with what it holds (no origins)."""
    pack = build_pack_dir(world, tmp_path / "q", provenance=False)
    quantco_repodata(pack.root)
    tar = write_pack_tar(pack.root, tmp_path / "quantco.tar")
    assert run(["sbom", str(tar)]) == 0
    captured = capsys.readouterr()
    assert "made from the pack's contents" in captured.err
    doc = valid(captured.out.encode())
    files = members(tar)
    refs = sorted(c["bom-ref"] for c in doc["components"])
    assert refs == sorted([*pack.conda_files, *(f"pypi/{w}" for w in pack.wheels)])
    for component in doc["components"]:
        assert sha256_of(component) == hashlib.sha256(files[component["bom-ref"]]).hexdigest()
    assert doc["metadata"]["tools"]["components"][0]["name"] == "pixi-pack"
    chain_a = next(c for c in doc["components"] if c["name"] == "chain-a")
    assert "channel=" not in chain_a["purl"]  # a plain archive does not say where from
    # the same from standard input and from the directory
    data = captured.out.encode()
    assert run(["sbom", str(pack.root), "-o", str(tmp_path / "dir.cdx.json")]) == 0
    # a directory has no member times: SOURCE_DATE_EPOCH's default, which the tar has too
    assert (tmp_path / "dir.cdx.json").read_bytes() == data
    report = verify(VerifyOptions(pack="-"), stdin=io.BytesIO(tar.read_bytes()), wheel_details=True)
    assert report.contents is not None
    assert report.inspection is not None
    assert sbom_json(input_from_pack(report.contents, report.inspection)) == data


def test_no_sbom_for_a_tampered_pack(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pack = build_pack_dir(world, tmp_path / "p")
    tree = shutil.copytree(pack.root, tmp_path / "tree")
    victim = tree / pack.conda_files[0]
    victim.write_bytes(victim.read_bytes() + b"\0")
    assert run(["sbom", str(tree)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "does not verify (1 finding(s))" in captured.err
