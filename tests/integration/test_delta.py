"""Delta packs in the offline world (issue 17): base pack -> change the lock (one package
upgraded, one added, one removed, one source package rebuilt) -> ``pack --base`` carries only
the new artifacts; ``unpack --base`` and ``unpack --update`` give the environment a fresh
unpack of the full new pack gives; a wrong base is refused with nothing written; ``kill -9``
during an update leaves the old environment working."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from testworld import pypi
from testworld.install import run_in
from testworld.layout import World
from testworld.locks import Env, Plat, SourceEntry
from testworld.pixi_standin import StandIn
from testworld.pixi_standin.fixtures import install_fake_pixi
from testworld.pixi_standin.workspaces import write_package
from testworld.server import WorldServer
from testworld.workspace import Workspace, write_workspace

from pixi_pack_src.cli import run

pytestmark = pytest.mark.integration

CONDA = ("python", "relocme", "worldcli", "pyworld", "bigdata")
SOURCE = SourceEntry("pkg2", "src/pkg2", noarch=True)
WORKDIR = re.compile(rb"\.pixi-pack-src-unpack-[A-Za-z0-9_]+")


def _env(world: World, server: WorldServer, conda: tuple[str, ...], wheels: tuple[str, ...]) -> Env:
    # worldpkg-b is an sdist: its wheel is built, once, and then taken from the base
    sdist = pypi.index_entry(world, "worldpkg-b", server.url, kind="sdist")
    return Env(
        conda=conda,
        pypi=(*(pypi.index_entry(world, n, server.url) for n in wheels), sdist),
        sources=(SOURCE,),
    )


def _workspace(root: Path, world: World, server: WorldServer, env: Env, hello: str) -> Workspace:
    write_package(root / "src" / "pkg2", "pkg2", files={"share/pkg2/hello.txt": hello})
    return write_workspace(
        root,
        world,
        {"default": env},
        platforms=(Plat("linux-64"),),
        channel_url=world.channel_url(server.url),
    )


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    capsys.readouterr()
    code = run([*argv, "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    doc: dict[str, Any] = json.loads(captured.out)
    return doc


def _members(tar: Path) -> dict[str, bytes]:
    with tarfile.open(tar) as tf:
        return {
            m.name: tf.extractfile(m).read()  # type: ignore[union-attr]
            for m in tf.getmembers()
            if m.isfile()
        }


def _tree(root: Path) -> dict[str, tuple[int, str | None]]:
    """Every path under an environment with its mode and content hash (the pack state and
    the installer's records of where it extracted packages left out)."""
    out: dict[str, tuple[int, str | None]] = {}
    for directory, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".pixi-pack-src"]
        for name in [*dirs, *files]:
            path = Path(directory) / name
            rel = path.relative_to(root).as_posix()
            st = path.lstat()
            digest = None
            if path.is_symlink():
                digest = str(path.readlink())
            elif path.is_file():
                data = path.read_bytes()
                if rel.startswith("conda-meta/") and rel.endswith(".json"):
                    # the installer's notes of where it extracted the package: a work
                    # directory with a random name
                    data = WORKDIR.sub(b"WORKDIR", data)
                digest = hashlib.sha256(data).hexdigest()
            out[rel] = (st.st_mode, digest)
    return out


@dataclass
class Story:
    tmp: Path
    base_tar: Path
    new_tar: Path
    delta_tar: Path
    base_doc: dict[str, Any]
    new_doc: dict[str, Any]
    delta_doc: dict[str, Any]
    inspect_doc: dict[str, Any]
    pixi: StandIn
    builds_for_delta: list[str | None]


@pytest.fixture(scope="module")
def story(
    world: World,
    world_server: WorldServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Story]:
    tmp = tmp_path_factory.mktemp("delta")
    with pytest.MonkeyPatch.context() as mp:
        fake = install_fake_pixi(tmp / "fake-pixi", mp)
        capsys = _Capture()
        ws = _workspace(
            tmp / "ws",
            world,
            world_server,
            _env(world, world_server, (*CONDA, "libzed ==1.2.0", "withlinks"), ("worldpkg-a",)),
            "hello",
        )
        base_tar = tmp / "base.tar"
        cache = ("--use-cache", str(tmp / "cache"))  # a rebuild gives the same bytes
        base_doc = capsys.json("pack", str(ws.root), "-o", str(base_tar), *cache)
        # the new lock: libzed upgraded, withlinks removed, worldpkg-c added, pkg2 changed
        _workspace(
            tmp / "ws",
            world,
            world_server,
            _env(world, world_server, (*CONDA, "libzed >=1.3"), ("worldpkg-a", "worldpkg-c")),
            "hello again",
        )
        new_tar = tmp / "new.tar"
        new_doc = capsys.json("pack", str(ws.root), "-o", str(new_tar), *cache)
        inspect_doc = capsys.json("inspect", str(ws.root), "--base", str(base_tar))
        before = len(fake.builds())
        delta_tar = tmp / "delta.tar"
        delta_doc = capsys.json(
            "pack", str(ws.root), "-o", str(delta_tar), "--base", str(base_tar), *cache
        )
        built = [c.package for c in fake.builds()[before:]]
        yield Story(
            tmp,
            base_tar,
            new_tar,
            delta_tar,
            base_doc,
            new_doc,
            delta_doc,
            inspect_doc,
            fake,
            built,
        )


class _Capture:
    """``run([...]) --json`` outside a test function (module fixtures have no capsys)."""

    def json(self, *argv: str) -> dict[str, Any]:
        out = subprocess.run(
            [sys.executable, "-m", "pixi_pack_src", *argv, "--json"],
            capture_output=True,
            text=True,
            check=False,
            env=os.environ,
        )
        assert out.returncode == 0, out.stderr
        doc: dict[str, Any] = json.loads(out.stdout)
        return doc


def _names(paths: list[str]) -> list[str]:
    return sorted(p.rsplit("/", 1)[1].split("-")[0].split("_")[0] for p in paths)


def test_the_delta_carries_only_the_new_artifacts(story: Story) -> None:
    files = _members(story.delta_tar)
    packages = sorted(
        n for n in files if n.startswith(("channel/", "pypi/")) and not n.endswith(".json")
    )
    # one upgraded (libzed 1.3.1), one added (the wheel worldpkg-c), one rebuilt (pkg2)
    assert _names(packages) == ["libzed", "pkg2", "worldpkg"]
    assert any(p.startswith("channel/linux-64/libzed-1.3.1") for p in packages)
    assert "pypi/worldpkg_c-0.5.0-py3-none-any.whl" in packages
    # the full metadata of the new environment, byte for byte the full pack's
    full = _members(story.new_tar)
    for name in ("pixi-pack.json", "environment.yml", "channel/linux-64/repodata.json"):
        assert files[name] == full[name], name
    prov = json.loads(files["pixi-pack-src.json"])
    assert {a["path"] for a in prov["artifacts"]} == {
        a["path"] for a in json.loads(full["pixi-pack-src.json"])["artifacts"]
    }
    declaration = json.loads(files["pixi-pack-src-delta.json"])
    base_prov = _members(story.base_tar)["pixi-pack-src.json"]
    assert declaration["base"]["identity"] == hashlib.sha256(base_prov).hexdigest()
    assert declaration["target"] == hashlib.sha256(files["pixi-pack-src.json"]).hexdigest()
    assert sorted(declaration["added"]) == packages
    assert _names(declaration["removed"]) == ["libzed", "pkg2", "withlinks"]
    assert "channel/linux-64/python-3.11.7" in " ".join(declaration["unchanged"])
    # < 10 % of the full pack
    assert story.delta_tar.stat().st_size < story.new_tar.stat().st_size / 10
    # the result document lists added, removed, unchanged
    (platform,) = story.delta_doc["platforms"]
    assert platform["delta"]["added"] == declaration["added"]
    assert platform["delta"]["removed"] == declaration["removed"]
    assert platform["delta"]["unchanged"] == declaration["unchanged"]


def test_the_plan_decides_what_comes_from_the_base(story: Story) -> None:
    (plan,) = story.inspect_doc["platforms"]
    actions = {i["name"]: i["action"] for i in plan["items"]}
    assert actions["python"] == "from-base"
    assert actions["worldpkg-a"] == "from-base"
    assert actions["worldpkg-b"] == "from-base"  # built from an sdist: not built again
    assert actions["libzed"] == "download"
    assert actions["worldpkg-c"] == "download"
    assert actions["pkg2"] == "build-conda"  # its source changed
    # the delta pack built only pkg2 (from the build cache the full pack filled) and fetched
    # only the two new files
    assert story.builds_for_delta == []
    (platform,) = story.delta_doc["platforms"]
    done = {i["name"]: i["action"] for i in platform["items"]}
    assert done["pkg2"] == "build-conda"
    assert done["python"] == "from-base"
    stats = story.delta_doc["stats"]
    assert stats["downloaded"] + stats["from_cache"] == 2


def test_unchanged_source_packages_are_not_rebuilt(
    story: Story, world: World, world_server: WorldServer, fake_pixi: StandIn
) -> None:
    ws = story.tmp / "ws"
    out = story.tmp / "again.tar"
    code = run(["-q", "pack", str(ws), "-o", str(out), "--base", str(story.new_tar)])
    assert code == 0
    assert fake_pixi.builds() == []
    files = _members(out)
    assert not [n for n in files if n.startswith(("channel/", "pypi/")) and not n.endswith("json")]


def _unpack(*argv: str) -> int:
    return run(["-q", "unpack", *argv, "-s", "bash"])


def test_unpack_base_and_update_equal_a_fresh_unpack_of_the_full_pack(story: Story) -> None:
    site = story.tmp / "site one"
    env = site / "env"
    # a fresh unpack of the full new pack
    assert _unpack(str(story.new_tar), "-o", str(site)) == 0
    want = _tree(env)
    activate = (site / "activate.sh").read_text()
    identity = json.loads((env / ".pixi-pack-src" / "manifest.json").read_text())["identity"]
    shutil.rmtree(site)
    # --base: the full environment from the two archives
    assert _unpack(str(story.delta_tar), "--base", str(story.base_tar), "-o", str(site)) == 0
    assert _tree(env) == want
    assert (site / "activate.sh").read_text() == activate
    shutil.rmtree(site)
    # --update: the base unpacked (keeping its package files), then the delta applied
    assert _unpack(str(story.base_tar), "-o", str(site), "--keep-packages") == 0
    assert (env / "share" / "withlinks").exists() or any(
        "withlinks" in p.name for p in (env / "conda-meta").iterdir()
    )
    assert _unpack(str(story.delta_tar), "--update", str(env)) == 0
    assert _tree(env) == want
    assert not any("withlinks" in p.name for p in (env / "conda-meta").iterdir())
    assert (site / "activate.sh").read_text() == activate
    assert json.loads((env / ".pixi-pack-src" / "manifest.json").read_text())["identity"] == (
        identity
    )
    assert sorted(p.name for p in site.iterdir()) == ["activate.sh", "env"]
    # the environment works: entry points, prefix replacement, the rebuilt source package
    assert (env / "share" / "pkg2" / "hello.txt").read_text() == "hello again\n"
    assert run_in(env, ["worldcli"]).returncode == 0
    assert run_in(env, ["python", "-c", "import worldpkg_b"]).returncode == 0
    assert (
        "hello"
        in run_in(
            env, ["python", "-c", "import worldpkg_c, pyworld; print(pyworld.hello())"]
        ).stdout
    )


def test_update_without_kept_packages_takes_them_from_the_base_archive(story: Story) -> None:
    site = story.tmp / "site two"
    env = site / "env"
    assert _unpack(str(story.base_tar), "-o", str(site)) == 0
    assert not (env / ".pixi-pack-src" / "pack").exists()
    assert _unpack(str(story.delta_tar), "--update", str(env)) == 2  # names --base
    manifest = story.tmp / "base.json"
    code = run(["manifest", str(env)])
    assert code == 0
    assert _unpack(str(story.delta_tar), "--update", str(env), "--base", str(story.base_tar)) == 0
    assert (env / "share" / "pkg2" / "hello.txt").read_text() == "hello again\n"
    del manifest


def test_a_plain_unpack_of_a_delta_is_refused(
    story: Story, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _unpack(str(story.delta_tar), "-o", str(tmp_path / "out"))
    err = capsys.readouterr().err
    assert code == 1
    assert "is a delta pack" in err
    assert "--base" in err
    assert not (tmp_path / "out").exists()


def _snapshot(root: Path) -> dict[str, tuple[int, str | None]]:
    return dict(_tree(root).items())


def test_a_delta_against_the_wrong_base_is_refused_with_nothing_written(
    story: Story, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = tmp_path / "site"
    env = site / "env"
    assert _unpack(str(story.new_tar), "-o", str(site)) == 0  # the wrong base
    before = _snapshot(site)
    capsys.readouterr()
    code = _unpack(str(story.delta_tar), "--update", str(env), "--base", str(story.base_tar))
    err = capsys.readouterr().err
    assert code == 1
    base_id = json.loads(_members(story.delta_tar)["pixi-pack-src-delta.json"])["base"]["identity"]
    have = json.loads((env / ".pixi-pack-src" / "manifest.json").read_text())["identity"]
    assert base_id[:16] in err
    assert have[:16] in err
    assert _snapshot(site) == before
    # --base with the wrong archive
    code = _unpack(str(story.delta_tar), "--base", str(story.new_tar), "-o", str(tmp_path / "o2"))
    assert code == 1
    assert not (tmp_path / "o2").exists()


def test_kill_9_during_an_update_leaves_the_old_environment_working(story: Story) -> None:
    site = story.tmp / "site three"
    env = site / "env"
    assert _unpack(str(story.base_tar), "-o", str(site), "--keep-packages") == 0
    want = _tree(env)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pixi_pack_src",
            "-q",
            "unpack",
            str(story.delta_tar),
            "--update",
            str(env),
            "-s",
            "bash",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # kill it while the new environment is being installed beside the old one
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if any((w / "env" / "conda-meta").is_dir() for w in site.glob(".pixi-pack-src-unpack-*")):
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the update ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _tree(env) == want
    assert run_in(env, ["python", "-c", "import worldpkg_a"]).returncode == 0
    # the next update sweeps what the killed one left and succeeds
    assert _unpack(str(story.delta_tar), "--update", str(env)) == 0
    assert sorted(p.name for p in site.iterdir()) == ["activate.sh", "env"]
    assert (env / "share" / "pkg2" / "hello.txt").read_text() == "hello again\n"


def test_a_manifest_file_stands_in_for_the_base_archive(
    story: Story, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert run(["manifest", str(story.base_tar)]) == 0
    manifest = story.tmp / "base.json"
    manifest.write_text(capsys.readouterr().out)
    assert manifest.stat().st_size < story.base_tar.stat().st_size / 20
    out = story.tmp / "from-manifest.tar"
    cache = str(story.tmp / "cache")
    code = run(
        [
            "-q",
            "pack",
            str(story.tmp / "ws"),
            "-o",
            str(out),
            "--base",
            str(manifest),
            "--use-cache",
            cache,
        ]
    )
    assert code == 0
    a, b = _members(out), _members(story.delta_tar)
    assert sorted(a) == sorted(b)
    assert a["pixi-pack-src-delta.json"] == b["pixi-pack-src-delta.json"]
    capsys.readouterr()
    assert run(["manifest", "--identity", str(story.base_tar)]) == 0
    assert capsys.readouterr().out.strip() == json.loads(manifest.read_text())["identity"]


HOST_TOOLS = ("bash", "env", "tail", "head", "tar", "gzip", "mktemp", "uname", "rm", "mkdir", "cat")


def _host_only(tmp: Path) -> dict[str, str]:
    """The host tools a script documents, and no python on PATH."""
    tmp.mkdir(parents=True, exist_ok=True)
    bin_dir = tmp / "host-bin"
    bin_dir.mkdir()
    for tool in HOST_TOOLS:
        found = shutil.which(tool)
        assert found is not None, tool
        (bin_dir / tool).symlink_to(found)
    (tmp / "scratch").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return {**env, "TMPDIR": str(tmp / "scratch"), "PATH": str(bin_dir)}


def test_a_delta_script_updates_an_environment_with_its_own_python(
    story: Story, tmp_path: Path
) -> None:
    script = tmp_path / "delta.sh"
    cache = str(story.tmp / "cache")
    argv = ["-q", "pack", str(story.tmp / "ws"), "--base", str(story.base_tar)]
    assert run([*argv, "--create-executable", "-o", str(script), "--use-cache", cache]) == 0
    site = tmp_path / "site"
    env = site / "env"
    assert _unpack(str(story.new_tar), "-o", str(site)) == 0
    want = _tree(env)
    shutil.rmtree(site)
    assert _unpack(str(story.base_tar), "-o", str(site), "--keep-packages") == 0
    host = _host_only(tmp_path / "host")
    proc = subprocess.run(
        ["bash", str(script), "--update", str(env), "-s", "bash"],
        env=host,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert _tree(env) == want
    assert list((tmp_path / "host" / "scratch").iterdir()) == []
    # without --update or --base the script refuses (here with a python on PATH): a delta
    proc = subprocess.run(
        ["bash", str(script), "-o", str(tmp_path / "other")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert "is a delta pack" in proc.stderr
    assert not (tmp_path / "other").exists()
