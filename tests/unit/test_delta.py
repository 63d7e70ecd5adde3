"""Delta packs: base manifests and identities, the delta declaration, completing a delta from
its base, and the atomic exchange (issue 17). Tiny hand-made packs; the world tests are in
tests/integration/test_delta.py."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pytest

from pixi_pack_src.archive.members import Entry
from pixi_pack_src.archive.metadata import (
    PROVENANCE_JSON,
    ArtifactProvenance,
    GeneratedFile,
    LockInfo,
    PlatformInfo,
    Provenance,
    ToolInfo,
    pixi_pack_json,
    read_provenance,
)
from pixi_pack_src.archive.tar import write_tar
from pixi_pack_src.delta.apply import check_base, complete_pack, exchange
from pixi_pack_src.delta.compare import (
    DeltaInfo,
    built_conda_in_base,
    read_delta,
    refuse_without_base,
    split,
)
from pixi_pack_src.delta.manifest import (
    DELTA_JSON,
    inventory_identity,
    parse_manifest,
    read_base,
)
from pixi_pack_src.errors import ArchiveError, PackFormatError


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


REPODATA = b'{"info": {"subdir": "linux-64"}, "packages": {}, "packages.conda": {}}\n'


def make_pack(root: Path, packages: dict[str, bytes], *, provenance: bool = True) -> bytes:
    """A pack directory with these package files; returns its pixi-pack-src.json bytes."""
    generated = {
        "pixi-pack.json": pixi_pack_json("linux-64"),
        "channel/linux-64/repodata.json": REPODATA,
        "channel/noarch/repodata.json": REPODATA.replace(b"linux-64", b"noarch"),
        "environment.yml": b"channels: [./channel]\n",
    }
    files = {**packages, **generated}
    prov = b""
    if provenance:
        artifacts = tuple(
            ArtifactProvenance(
                path=path,
                kind="wheel" if path.startswith("pypi/") else "conda",
                name=path.rsplit("/", 1)[1].split("-")[0],
                version="1.0",
                sha256=sha(data),
                size=len(data),
                origin={"type": "download", "url": f"https://example.org/{path}"},
            )
            for path, data in sorted(packages.items())
        )
        prov = Provenance(
            tool=ToolInfo("pixi-pack-src", "0.1.0"),
            lock=LockInfo("pixi.lock", 6, "0" * 64),
            environment="default",
            platform=PlatformInfo("linux-64", "linux-64"),
            artifacts=artifacts,
            generated=tuple(GeneratedFile(p, sha(d), len(d)) for p, d in generated.items()),
        ).to_json()
        files[PROVENANCE_JSON] = prov
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    return prov


def tar_of(root: Path, out: Path) -> Path:
    entries = [
        Entry(p.relative_to(root).as_posix(), p.read_bytes())
        for p in sorted(root.rglob("*"))
        if p.is_file()
    ]
    with out.open("wb") as fh:
        write_tar(entries, fh)
    return out


OLD = {
    "channel/linux-64/a-1.0-0.conda": b"a1" * 100,
    "channel/linux-64/b-1.0-0.conda": b"b1" * 100,
    "pypi/w-1.0-py3-none-any.whl": b"w1" * 100,
}


def test_identity_is_the_provenance_sha256_wherever_the_base_is(tmp_path: Path) -> None:
    prov = make_pack(tmp_path / "old", OLD)
    from_dir = read_base(tmp_path / "old")
    from_tar = read_base(tar_of(tmp_path / "old", tmp_path / "old.tar"))
    (tmp_path / "base.json").write_bytes(from_dir.to_json())
    from_file = read_base(tmp_path / "base.json")
    assert from_dir.identity == from_tar.identity == from_file.identity == sha(prov)
    assert from_dir.kind == "pixi-pack-src"
    assert from_file.files == from_dir.files
    assert {f.path for f in from_dir.files} == {
        *OLD,
        "pixi-pack.json",
        "channel/linux-64/repodata.json",
        "channel/noarch/repodata.json",
        "environment.yml",
        PROVENANCE_JSON,
    }
    # the manifest keeps the metadata text, never the packages
    assert sorted(from_file.metadata) == [
        "channel/linux-64/repodata.json",
        "channel/noarch/repodata.json",
        PROVENANCE_JSON,
        "pixi-pack.json",
    ]
    assert sorted(from_dir.by_sha256()) == sorted(sha(d) for d in OLD.values())


def test_a_plain_format_1_pack_is_named_by_its_inventory(tmp_path: Path) -> None:
    make_pack(tmp_path / "plain", OLD, provenance=False)
    from_dir = read_base(tmp_path / "plain")
    from_tar = read_base(tar_of(tmp_path / "plain", tmp_path / "plain.tar"))
    assert from_dir.kind == from_tar.kind == "pixi-pack"
    assert from_dir.identity == from_tar.identity == inventory_identity(from_dir.files)
    assert len(from_dir.files) == len(OLD) + 4


def test_a_manifest_cannot_claim_an_identity_its_content_does_not_have(tmp_path: Path) -> None:
    make_pack(tmp_path / "old", OLD)
    doc = json.loads(read_base(tmp_path / "old").to_json())
    forged = dict(doc, identity="f" * 64)
    with pytest.raises(PackFormatError, match="claims identity"):
        parse_manifest(json.dumps(forged).encode(), source="base.json")
    tampered = json.loads(json.dumps(doc))
    tampered["metadata"]["pixi-pack.json"] = tampered["metadata"]["pixi-pack.json"].replace(
        "linux-64", "osx-64"
    )
    with pytest.raises(ArchiveError, match="does not match"):
        parse_manifest(json.dumps(tampered).encode(), source="base.json")
    hostile = json.loads(json.dumps(doc))
    hostile["metadata"]["../../etc/passwd"] = "x"
    with pytest.raises(PackFormatError, match="path traversal"):
        parse_manifest(json.dumps(hostile).encode(), source="base.json")


def test_split_by_sha256(tmp_path: Path) -> None:
    make_pack(tmp_path / "old", OLD)
    new = {
        "channel/linux-64/a-1.0-0.conda": OLD["channel/linux-64/a-1.0-0.conda"],  # unchanged
        "channel/linux-64/b-2.0-0.conda": b"b2" * 100,  # upgraded
        "channel/linux-64/c-1.0-0.conda": b"c1" * 100,  # added
        "pypi/w-1.0-py3-none-any.whl": OLD["pypi/w-1.0-py3-none-any.whl"],
    }
    prov = read_provenance(make_pack(tmp_path / "new", new))
    added, unchanged, removed = split(read_base(tmp_path / "old"), prov.artifacts)
    assert added == ["channel/linux-64/b-2.0-0.conda", "channel/linux-64/c-1.0-0.conda"]
    assert unchanged == ["channel/linux-64/a-1.0-0.conda", "pypi/w-1.0-py3-none-any.whl"]
    assert removed == ["channel/linux-64/b-1.0-0.conda"]


def _delta(tmp_path: Path) -> tuple[Path, list[str], Provenance, DeltaInfo]:
    """A delta dir for OLD -> NEW, made by hand: the full new pack minus what OLD has."""
    make_pack(tmp_path / "old", OLD)
    base = read_base(tmp_path / "old")
    new = {**OLD, "channel/linux-64/c-1.0-0.conda": b"c1" * 100}
    del new["channel/linux-64/b-1.0-0.conda"]
    prov_bytes = make_pack(tmp_path / "delta", new)
    prov = read_provenance(prov_bytes)
    added, unchanged, removed = split(base, prov.artifacts)
    for path in unchanged:
        (tmp_path / "delta" / path).unlink()
    info = DeltaInfo(
        base_identity=base.identity,
        base_kind=base.kind,
        base_platform="linux-64",
        target=sha(prov_bytes),
        added=tuple(added),
        unchanged=tuple(unchanged),
        removed=tuple(removed),
    )
    (tmp_path / "delta" / DELTA_JSON).write_bytes(info.to_json())
    files = sorted(
        p.relative_to(tmp_path / "delta").as_posix()
        for p in (tmp_path / "delta").rglob("*")
        if p.is_file()
    )
    return tmp_path / "delta", files, prov, info


def test_the_declaration_round_trips_and_names_its_target(tmp_path: Path) -> None:
    root, _, _, info = _delta(tmp_path)
    prov_bytes = (root / PROVENANCE_JSON).read_bytes()
    assert read_delta(info.to_json(), source="d.tar", provenance=prov_bytes) == info
    with pytest.raises(PackFormatError, match="names target"):
        read_delta(info.to_json(), source="d.tar", provenance=prov_bytes + b" ")
    message = str(refuse_without_base(info, "d.tar"))
    assert "d.tar is a delta pack" in message
    assert info.base_identity[:16] in message


def test_complete_pack_takes_the_missing_files_from_the_base_by_sha256(tmp_path: Path) -> None:
    root, files, prov, info = _delta(tmp_path)
    assert "channel/linux-64/a-1.0-0.conda" not in files
    base = read_base(tmp_path / "old")
    check_base(info, base, "d.tar")
    full = complete_pack(root, files, prov, base_root=tmp_path / "old", base=base, label="d.tar")
    assert DELTA_JSON not in full
    assert set(full) == prov.covered_paths() | {PROVENANCE_JSON}
    for path, (digest, _) in prov.expected().items():
        assert sha((root / path).read_bytes()) == digest


def test_a_delta_refuses_another_base_naming_both(tmp_path: Path) -> None:
    _, _, _, info = _delta(tmp_path)
    make_pack(tmp_path / "other", {"channel/linux-64/z-1.0-0.conda": b"z"})
    other = read_base(tmp_path / "other")
    with pytest.raises(PackFormatError) as caught:
        check_base(info, other, "d.tar")
    assert info.base_identity[:16] in caught.value.message
    assert other.identity[:16] in caught.value.message


def test_conda_source_artifact_matches_on_location_lock_id_and_tree(tmp_path: Path) -> None:
    make_pack(tmp_path / "old", OLD)
    base = read_base(tmp_path / "old")
    assert base.provenance is not None
    built = ArtifactProvenance(
        path="channel/linux-64/main-0.1-h0.conda",
        kind="conda",
        name="main",
        version="0.1",
        sha256="1" * 64,
        size=1,
        origin={
            "type": "conda-source",
            "location": "src/main",
            "lock-ids": ["main[abc] @ src/main"],
            "source-tree-sha256": "t" * 64,
        },
    )
    base = replace(base, provenance=replace(base.provenance, artifacts=(built,)))

    def find(tree: str) -> ArtifactProvenance | None:
        return built_conda_in_base(
            base,
            name="main",
            location="src/main",
            lock_id="main[abc] @ src/main",
            git_rev=None,
            tree_sha256=tree,
        )

    assert find("t" * 64) == built
    assert find("u" * 64) is None


def test_exchange_swaps_two_directories(tmp_path: Path) -> None:
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "f").write_text("new")
    (tmp_path / "env").mkdir()
    (tmp_path / "env" / "f").write_text("old")
    exchange(tmp_path / "new", tmp_path / "env")
    assert (tmp_path / "env" / "f").read_text() == "new"
    assert (tmp_path / "new" / "f").read_text() == "old"
