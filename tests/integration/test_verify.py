"""``pixi-pack-src verify`` on real packs of the world: clean, then one change at a time.

Each tampering gives exit 1 and exactly one finding, naming the changed file (or package).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from testworld.layout import World
from testworld.locks import Env
from testworld.packdir import build_pack_dir, quantco_repodata, write_pack_tar
from testworld.pypi import index_entry
from testworld.server import WorldServer
from testworld.workspace import Workspace, write_workspace

from pixi_pack_src.archive.members import Entry
from pixi_pack_src.archive.tar import write_tar
from pixi_pack_src.cli import run

pytestmark = pytest.mark.integration

CONDA = ("python", "chain-a", "sysdep", "worldcli")


@pytest.fixture(scope="module")
def packed(
    world: World, world_server: WorldServer, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Workspace, Path, Path]:
    """A workspace, its pack as a tar and as a directory (``pack --directory-only``)."""
    root = tmp_path_factory.mktemp("verify")
    ws = write_workspace(
        root / "ws",
        world,
        {"default": Env(conda=CONDA, pypi=(index_entry(world, "worldpkg-a", world_server.url),))},
        channel_url=world_server.url + "/channel",
    )
    tar = root / "environment.tar"
    assert run(["-q", "pack", str(ws.root), "-o", str(tar)]) == 0
    folder = root / "folder"
    assert run(["-q", "pack", str(ws.root), "--directory-only", "-o", str(folder)]) == 0
    return ws, tar, folder


def verify_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any], str]:
    code = run(["verify", *argv, "--json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def findings(doc: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(f["code"], f["path"]) for f in doc["findings"]]


def retar(folder: Path, out: Path) -> Path:
    entries = [
        Entry(p.relative_to(folder).as_posix(), p) for p in sorted(folder.rglob("*")) if p.is_file()
    ]
    with out.open("wb") as fh:
        write_tar(entries, fh)
    return out


def test_a_clean_pack_verifies(
    packed: tuple[Workspace, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    ws, tar, folder = packed
    code, doc, err = verify_json(capsys, str(tar), "--lock", str(ws.root / "pixi.lock"))
    assert code == 0, doc
    assert doc["ok"] is True
    assert doc["findings"] == []
    assert doc["warnings"] == []
    assert doc["platform"] == "linux-64"
    assert doc["environment"] == "default"
    assert doc["wheels"] == 1
    assert doc["conda_packages"] >= len(CONDA)
    assert doc["verified"] == doc["conda_packages"] + doc["wheels"]
    assert doc["verified_against"] == "pixi-pack-src.json"
    assert doc["lock"] == {"file": "pixi.lock", "environment": "default", "platform": "linux-64"}
    assert err == ""  # --json: nothing for humans
    # the directory pack, too; the text output is empty when clean, the summary on stderr
    assert run(["verify", str(folder)]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"✅ {folder}: " in captured.err


def test_flipped_byte_in_one_conda_package(
    packed: tuple[Workspace, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, folder = packed
    tree = shutil.copytree(folder, tmp_path / "tree")
    victim = sorted(tree.glob("channel/*/*.conda"))[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    arcname = victim.relative_to(tree).as_posix()
    code, doc, _ = verify_json(capsys, str(retar(tree, tmp_path / "t.tar")))
    assert code == 1
    assert findings(doc) == [("mismatch", arcname)]
    assert doc["findings"][0]["message"].startswith(f"sha256 mismatch for {arcname} in ")
    # the text form: one line per finding on stdout
    assert run(["verify", str(tmp_path / "t.tar")]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1
    assert out[0].startswith(f"mismatch {arcname}: sha256 mismatch")


def test_member_added(
    packed: tuple[Workspace, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, folder = packed
    tree = shutil.copytree(folder, tmp_path / "tree")
    (tree / "channel" / "linux-64" / "install.sh").write_text("#!/bin/sh\nrm -rf ~\n")
    code, doc, _ = verify_json(capsys, str(retar(tree, tmp_path / "a.tar")))
    assert code == 1
    assert findings(doc) == [("not-listed", "channel/linux-64/install.sh")]


def test_member_removed(
    packed: tuple[Workspace, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, folder = packed
    tree = shutil.copytree(folder, tmp_path / "tree")
    victim = sorted(tree.glob("channel/noarch/*.conda"))[0]
    victim.unlink()
    code, doc, _ = verify_json(capsys, str(retar(tree, tmp_path / "r.tar")))
    assert code == 1
    assert findings(doc) == [("missing", victim.relative_to(tree).as_posix())]


def test_repodata_record_edited(
    packed: tuple[Workspace, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, folder = packed
    tree = shutil.copytree(folder, tmp_path / "tree")
    repodata = tree / "channel" / "linux-64" / "repodata.json"
    doc = json.loads(repodata.read_text())
    fn = sorted(doc["packages.conda"])[0]
    doc["packages.conda"][fn]["license"] = "Public Domain (honest)"
    repodata.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    code, out, _ = verify_json(capsys, str(retar(tree, tmp_path / "e.tar")))
    assert code == 1
    assert findings(out) == [("mismatch", "channel/linux-64/repodata.json")]


def test_lock_with_one_more_package(
    packed: tuple[Workspace, Path, Path],
    world: World,
    world_server: WorldServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, tar, _ = packed
    more = write_workspace(
        tmp_path / "more",
        world,
        {
            "default": Env(
                conda=(*CONDA, "worldcerts"),
                pypi=(index_entry(world, "worldpkg-a", world_server.url),),
            )
        },
        channel_url=world_server.url + "/channel",
    )
    code, doc, _ = verify_json(capsys, str(tar), "--lock", str(more.root))
    assert code == 1
    ((kind, path),) = findings(doc)
    assert kind == "lock-missing"
    assert path is not None
    assert path.startswith("channel/noarch/worldcerts-1.0.0-")
    assert "worldcerts 1.0.0" in doc["findings"][0]["message"]


def test_verify_reads_a_streamed_archive_on_stdin(packed: tuple[Workspace, Path, Path]) -> None:
    ws, _, _ = packed
    exe = Path(sys.executable).with_name("pixi-pack-src")
    cli = str(exe) if exe.exists() else f"{sys.executable} -m pixi_pack_src"
    line = f"set -o pipefail; {cli} -q pack {ws.root} -o - | {cli} verify - --json"
    proc = subprocess.run(["bash", "-c", line], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["archive"] == "the archive on standard input"
    assert doc["ok"] is True
    assert doc["verified"] == doc["conda_packages"] + doc["wheels"]


def test_verify_a_self_extracting_script(
    packed: tuple[Workspace, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws, _, _ = packed
    script = tmp_path / "environment.sh"
    assert run(["-q", "pack", str(ws.root), "--create-executable", "-o", str(script)]) == 0
    capsys.readouterr()
    code, doc, _ = verify_json(capsys, str(script))
    assert code == 0, doc["findings"]
    assert doc["verified_against"] == "pixi-pack-src.json"
    assert doc["wheels"] == 1


def test_quantco_style_archive(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A plain format-1 pack as Quantco's pixi-pack writes it: no pixi-pack-src.json, every
    record under packages.conda. Verified against the repodata; wheels cannot be."""
    pack = build_pack_dir(world, tmp_path / "q", provenance=False)
    quantco_repodata(pack.root)
    tar = write_pack_tar(pack.root, tmp_path / "quantco.tar")
    code, doc, _ = verify_json(capsys, str(tar))
    assert code == 0, doc["findings"]
    assert doc["verified_against"] == "repodata.json"
    assert doc["verified"] == len(pack.records)
    assert doc["warnings"] == [
        f"{len(pack.wheels)} wheel(s) in {tar} cannot be verified: it has no "
        "pixi-pack-src.json (a plain format-1 archive records no wheel hashes)"
    ]
    # a flipped byte is found through the repodata
    tree = shutil.copytree(pack.root, tmp_path / "tree")
    victim = tree / pack.conda_files[0]
    data = bytearray(victim.read_bytes())
    data[-100] ^= 0xFF
    victim.write_bytes(bytes(data))
    code, doc, _ = verify_json(capsys, str(tree))
    assert code == 1
    assert findings(doc) == [("mismatch", pack.conda_files[0])]
    assert "repodata.json records" in doc["findings"][0]["message"]


def test_dependency_and_environment_yml_findings(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pack whose channel lacks a dependency, and whose environment.yml names a ghost."""
    pack = build_pack_dir(world, tmp_path / "p", provenance=False, wheels=())
    chain_b = pack.record("chain-b")
    arcname = f"channel/{chain_b.subdir}/{chain_b.file_name}"
    (pack.root / arcname).unlink()
    repodata = pack.root / "channel" / chain_b.subdir / "repodata.json"
    doc = json.loads(repodata.read_text())
    for table in ("packages", "packages.conda"):
        doc[table].pop(chain_b.file_name, None)
    repodata.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    code, out, _ = verify_json(capsys, str(pack.root))
    assert code == 1
    kinds = sorted(findings(out), key=lambda f: f[0])
    chain_a = pack.record("chain-a")
    assert kinds == [
        ("dependency", f"channel/{chain_a.subdir}/{chain_a.file_name}"),
        ("environment-yml", "environment.yml"),
    ]
    assert "chain-b" in out["findings"][0]["message"] + out["findings"][1]["message"]


def test_unsafe_members_are_findings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from testworld.hostile import TAR_CASES

    case = next(c for c in TAR_CASES if c.id == "symlink-escape")
    archive = case.build(tmp_path)
    code, doc, _ = verify_json(capsys, str(archive))
    assert code == 1
    assert findings(doc)[0] == ("unsafe-member", case.member)


def test_sha256_of_stdin_equals_file(packed: tuple[Workspace, Path, Path]) -> None:
    """The streamed reader hashes exactly the member bytes (cross-checked with tarfile)."""
    import tarfile

    from pixi_pack_src.verify.scan import scan

    _, tar, _ = packed
    with tar.open("rb") as fh:
        contents = scan(fh, label="x")
    with tarfile.open(tar) as tf:
        for member in tf.getmembers():
            if member.isfile():
                reader = tf.extractfile(member)
                assert reader is not None
                assert (
                    contents.files[member.name].sha256 == hashlib.sha256(reader.read()).hexdigest()
                )


def test_lock_extra_and_different(
    packed: tuple[Workspace, Path, Path],
    world: World,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An injected package is `lock-extra` (with its origin); a package the lock records with
    other bytes is `lock-different`."""
    ws, _, _ = packed
    out = tmp_path / "injected.tar"
    certs = world.archive_path(world.package("worldcerts"))
    assert run(["-q", "pack", str(ws.root), "-o", str(out), "-i", str(certs)]) == 0
    code, doc, _ = verify_json(capsys, str(out), "--lock", str(ws.root))
    assert code == 1
    assert findings(doc) == [("lock-extra", f"channel/noarch/{certs.name}")]
    assert "(origin: injected)" in doc["findings"][0]["message"]
    # the lock says another sha256 for one package
    lock = shutil.copytree(ws.root, tmp_path / "ws2")
    text = (lock / "pixi.lock").read_text()
    _, tar, _ = packed
    prov = json.loads(_member(tar, "pixi-pack-src.json"))
    victim = next(a for a in prov["artifacts"] if a["name"] == "chain-b")
    assert victim["sha256"] in text
    (lock / "pixi.lock").write_text(text.replace(victim["sha256"], "0" * 64))
    code, doc, _ = verify_json(capsys, str(tar), "--lock", str(lock / "pixi.lock"))
    assert code == 1
    assert findings(doc) == [("lock-different", victim["path"])]
    assert "the lock records " + "0" * 64 in doc["findings"][0]["message"]


def _member(tar: Path, name: str) -> bytes:
    import tarfile

    with tarfile.open(tar) as tf:
        fh = tf.extractfile(name)
        assert fh is not None
        return fh.read()
