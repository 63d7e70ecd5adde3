"""``pixi-pack-src pack`` against the offline world: layout, determinism, faults, cache, inject."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from testworld import pypi
from testworld.fixtures import WorkspaceFactory
from testworld.layout import World
from testworld.locks import Env, Plat
from testworld.server import WorldServer
from testworld.workspace import Workspace

from pixi_pack_src.cli import run

pytestmark = pytest.mark.integration

# >= 20 conda packages on linux-64: both formats, noarch generic and python, placeholders,
# the gcc library, chains, a patched record, a virtual-package dependency, symlinks.
FULL_SPECS = (
    "python",
    "chain-a",
    "relocme",
    "libgreet",
    "worldcli",
    "pip",
    "pyworld-plugins",
    "worlddata",
    "worldcerts",
    "zed-tools",
    "patchme",
    "sysdep",
    "withlinks",
    "world-meta",
    "multibuild",
    "bigdata",
)
WHEELS = ("worldpkg-a", "worldpkg-b", "worldpkg-c")
PORTABLE = ("python", "chain-a", "libzed", "sysdep", "worldcli", "pyworld")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def members(tar: Path) -> dict[str, bytes]:
    with tarfile.open(tar) as tf:
        out = {}
        for m in tf.getmembers():
            if m.isfile():
                fh = tf.extractfile(m)
                assert fh is not None
                out[m.name] = fh.read()
        return out


def pack_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    code = run(["pack", *argv, "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    doc: dict[str, Any] = json.loads(out)
    return doc


@pytest.fixture
def full_workspace(
    workspace_factory: WorkspaceFactory, world: World, channel_server: WorldServer
) -> Workspace:
    wheels = tuple(pypi.index_entry(world, n, channel_server.url) for n in WHEELS)
    return workspace_factory(
        {"default": Env(conda=FULL_SPECS, pypi=wheels)},
        platforms=("linux-64",),
        patches={"patchme": ["libzed >=1.3,<2"]},
    )


def test_pack_writes_a_pixi_pack_format_1_archive(
    full_workspace: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "environment.tar"
    doc = pack_json(capsys, str(full_workspace.root), "-p", "linux-64", "-o", str(out))
    files = members(out)
    conda = sorted(n for n in files if n.startswith("channel/") and not n.endswith(".json"))
    assert len(conda) >= 20
    assert any(n.endswith(".tar.bz2") for n in conda)
    assert any(n.endswith(".conda") for n in conda)
    assert any(n.startswith("channel/linux-64/python-3.11.7-") for n in conda)
    assert sorted(n for n in files if n.startswith("pypi/")) == [
        "pypi/worldpkg_a-1.0.0-py3-none-any.whl",
        "pypi/worldpkg_b-2.0.1-py3-none-any.whl",
        "pypi/worldpkg_c-0.5.0-py3-none-any.whl",
    ]
    assert json.loads(files["pixi-pack.json"]) == {
        "version": "1",
        "pixi-pack-version": "0.7.10",
        "platform": "linux-64",
    }
    # every package file is listed in its subdir's repodata, with the archive's sha256
    for subdir in ("linux-64", "noarch"):
        repodata = json.loads(files[f"channel/{subdir}/repodata.json"])
        listed = {**repodata["packages"], **repodata["packages.conda"]}
        on_disk = {n.rsplit("/", 1)[1] for n in conda if n.startswith(f"channel/{subdir}/")}
        assert set(listed) == on_disk
        for fn, rec in listed.items():
            assert rec["sha256"] == hashlib.sha256(files[f"channel/{subdir}/{fn}"]).hexdigest()
    # the repodata patch from the lock survives (the package's own index.json says `libzed`)
    linux = json.loads(files["channel/linux-64/repodata.json"])
    patchme = [r for fn, r in linux["packages.conda"].items() if fn.startswith("patchme-")]
    assert patchme[0]["depends"] == ["libzed >=1.3,<2"]
    env_yml = files["environment.yml"].decode()
    assert env_yml.startswith("channels:\n- ./channel\n- nodefaults\ndependencies:\n")
    assert "  - worldpkg-b==2.0.1\n" in env_yml
    # provenance covers every file except itself
    prov = json.loads(files["pixi-pack-src.json"])
    covered = {a["path"] for a in prov["artifacts"]} | {g["path"] for g in prov["generated"]}
    assert covered == set(files) - {"pixi-pack-src.json"}
    assert {a["origin"]["verified-against"] for a in prov["artifacts"]} == {"lock-sha256"}
    assert prov["platform"]["virtual-packages"] == [
        "__archspec=1=x86_64",
        "__glibc=2.28",
        "__linux=5.10",
        "__unix=0",
    ]
    # the result document
    (platform,) = doc["platforms"]
    assert platform["sha256"] == sha256(out)
    assert platform["size"] == out.stat().st_size
    assert doc["stats"]["downloaded"] == len(conda) + 3
    assert doc["version"] == 1


def test_pack_twice_cold_then_warm_is_byte_identical(
    full_workspace: Workspace,
    tmp_path: Path,
    channel_server: WorldServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cache = tmp_path / "cache"
    first, second, third = tmp_path / "a.tar", tmp_path / "b.tar", tmp_path / "c.tar"
    cold = pack_json(capsys, str(full_workspace.root), "--use-cache", str(cache), "-o", str(first))
    downloads = channel_server.hits("/channel/*") + channel_server.hits("/pypi/*")
    warm = pack_json(capsys, str(full_workspace.root), "--use-cache", str(cache), "-o", str(second))
    assert sha256(first) == sha256(second)
    # the second pack did not download anything
    assert channel_server.hits("/channel/*") + channel_server.hits("/pypi/*") == downloads
    # cold without a cache: the archive is written while the downloads run (pack/early.py)
    # and is the same byte for byte (test_stdout_stream_equals_the_file: a pack written in
    # one go, to stdout, is too)
    assert run(["pack", "-vv", str(full_workspace.root), "-o", str(third)]) == 0
    early = [line for line in capsys.readouterr().err.splitlines() if "while fetching" in line]
    assert len(early) == 1
    assert int(early[0].split("debug: ")[1].split()[0]) > 2, early  # more than directories
    assert sha256(third) == sha256(first)
    assert cold["stats"]["downloaded"] == cold["stats"]["files"]
    assert warm["stats"]["downloaded"] == 0
    assert warm["stats"]["from_cache"] == warm["stats"]["files"]
    assert (
        (cache / "CACHEDIR.TAG")
        .read_text()
        .startswith("Signature: 8a477f597d28d172789f06886806bc55")
    )


def test_cross_platform_archives(
    workspace_factory: WorkspaceFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = workspace_factory({"default": PORTABLE}, platforms=("linux-64", "osx-arm64", "win-64"))
    doc = pack_json(
        capsys,
        str(ws.root),
        "-p",
        "osx-arm64",
        "-p",
        "win-64",
        "-o",
        str(tmp_path / "env-{platform}.tar"),
    )
    assert [p["subdir"] for p in doc["platforms"]] == ["osx-arm64", "win-64"]
    for subdir in ("osx-arm64", "win-64"):
        files = members(tmp_path / f"env-{subdir}.tar")
        assert json.loads(files["pixi-pack.json"])["platform"] == subdir
        subdirs = {n.split("/")[1] for n in files if n.startswith("channel/")}
        assert subdirs == {subdir, "noarch"}
        repodata = json.loads(files[f"channel/{subdir}/repodata.json"])
        assert repodata["info"] == {"subdir": subdir}
        names = {r["name"] for r in {**repodata["packages"], **repodata["packages.conda"]}.values()}
        assert {"python", "chain-a", "chain-b", "chain-c", "libzed", "sysdep"} <= names
        assert all(r["subdir"] == subdir for r in repodata["packages.conda"].values())
        env_yml = files["environment.yml"].decode()
        assert "- python=3.11.7=" in env_yml
        assert "- worldcli=1.0.0=" in env_yml
    # noarch packages were downloaded once for both platforms
    assert doc["stats"]["files"] == len(
        {a["sha256"] for p in doc["platforms"] for a in p["artifacts"]}
    )


def test_several_platforms_need_a_platform_placeholder(
    workspace_factory: WorkspaceFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = workspace_factory({"default": PORTABLE}, platforms=("linux-64", "win-64"))
    code = run(["pack", str(ws.root), "--all-platforms", "-o", str(tmp_path / "x.tar")])
    err = capsys.readouterr().err
    assert code == 2
    assert "put {platform} in the output name" in err
    assert not (tmp_path / "x.tar").exists()


@pytest.mark.parametrize(
    ("kind", "extra"),
    [
        ("status", {"status": 500}),
        ("status", {"status": 503}),
        ("retry_after", {"retry_after": 0.01}),
        ("reset", {}),
        ("truncate", {}),
    ],
)
def test_transient_faults_are_retried(
    kind: str,
    extra: dict[str, Any],
    workspace_factory: WorkspaceFactory,
    channel_server: WorldServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ws = workspace_factory({"default": ["python", "chain-a"]})
    channel_server.add_fault("/channel/*", kind, times=3, **extra)  # type: ignore[arg-type]
    out = tmp_path / "env.tar"
    code = run(["pack", str(ws.root), "-o", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "retried 3 times" in captured.out  # the summary is the result: stdout
    assert f"✅ packed default for linux-64 into {out}\n" in captured.out
    assert "✅ downloaded" in captured.err  # progress lines: stderr
    assert out.exists()


def test_wrong_bytes_fail_with_exit_code_3_and_no_output(
    workspace_factory: WorkspaceFactory,
    world: World,
    channel_server: WorldServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ws = workspace_factory({"default": ["python", "chain-a"]})
    chain_b = world.package("chain-b")
    path = f"/channel/linux-64/{chain_b.file_name}"
    channel_server.add_fault(path, "wrong_bytes", times=None)
    out = tmp_path / "env.tar"
    code = run(["pack", str(ws.root), "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 3
    assert f"sha256 mismatch for {chain_b.file_name}" in err
    assert chain_b.sha256 in err
    assert channel_server.hits(path) == 2  # the first try and one retry
    assert list(tmp_path.iterdir()) == [ws.root] or not out.exists()
    assert not out.exists()
    assert not list(tmp_path.glob("*.tar*"))


def test_two_packs_sharing_a_cache_and_a_corrupt_entry(
    full_workspace: Workspace,
    world: World,
    channel_server: WorldServer,
    tmp_path: Path,
) -> None:
    cache = tmp_path / "cache"

    def pack_to(name: str) -> int:
        return run(
            [
                "-q",
                "pack",
                str(full_workspace.root),
                "--use-cache",
                str(cache),
                "-o",
                str(tmp_path / name),
            ]
        )

    with ThreadPoolExecutor(2) as pool:
        codes = list(pool.map(pack_to, ["one.tar", "two.tar"]))
    assert codes == [0, 0]
    assert sha256(tmp_path / "one.tar") == sha256(tmp_path / "two.tar")
    # corrupt the cached python package: the next pack detects it and downloads it again
    python = world.package("python")
    entry = next(p for p in cache.rglob(python.sha256) if p.is_file())
    entry.write_bytes(b"corrupt" + entry.read_bytes()[7:])
    channel_server.reset_log()
    assert pack_to("three.tar") == 0
    assert sha256(tmp_path / "three.tar") == sha256(tmp_path / "one.tar")
    assert channel_server.hits(f"/channel/linux-64/{python.file_name}") == 1
    assert channel_server.hits("/channel/*") == 1


def _forge_record(entry: Path) -> None:
    """Make the entry's record describe the file as it is now (what only someone writing the
    cache itself, or corruption below the file system, could do)."""
    sidecar = entry.with_name(entry.name + ".json")
    record = json.loads(sidecar.read_text())
    st = entry.stat()
    record["file"] = {
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "ctime_ns": st.st_ctime_ns,
        "ino": st.st_ino,
        "dev": st.st_dev,
    }
    sidecar.write_text(json.dumps(record))


def test_cache_records_verify_cache_and_cache_verify(
    full_workspace: Workspace,
    world: World,
    channel_server: WorldServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cache = tmp_path / "cache"
    root = str(full_workspace.root)
    pack_json(capsys, root, "--use-cache", str(cache), "-o", str(tmp_path / "one.tar"))
    python = world.package("python")
    entry = next(p for p in cache.rglob(python.sha256) if p.is_file())
    good = entry.read_bytes()
    bad = b"CORRUPT" + good[7:]  # same size

    # 1. new bytes, mtime set back: ctime moved, so the record no longer vouches: re-hashed,
    #    evicted and downloaded again
    before = entry.stat()
    with entry.open("r+b") as fh:
        fh.write(bad[:7])
    os.utime(entry, ns=(before.st_atime_ns, before.st_mtime_ns))
    channel_server.reset_log()
    pack_json(capsys, root, "--use-cache", str(cache), "-o", str(tmp_path / "two.tar"))
    assert channel_server.hits(f"/channel/linux-64/{python.file_name}") == 1
    assert channel_server.hits("/channel/*") == 1
    assert sha256(tmp_path / "two.tar") == sha256(tmp_path / "one.tar")

    # 2. a forged record is trusted by a plain pack (unpack then refuses the archive), but
    #    --verify-cache re-hashes every hit and `cache verify` removes the entry
    entry = next(p for p in cache.rglob(python.sha256) if p.is_file())
    entry.write_bytes(bad)
    _forge_record(entry)
    channel_server.reset_log()
    pack_json(capsys, root, "--use-cache", str(cache), "-o", str(tmp_path / "trusting.tar"))
    assert channel_server.hits("/channel/*") == 0
    assert members(tmp_path / "trusting.tar")[f"channel/linux-64/{python.file_name}"] == bad
    code = run(["-q", "unpack", str(tmp_path / "trusting.tar"), "-o", str(tmp_path / "u")])
    assert code != 0
    assert "sha256 mismatch" in capsys.readouterr().err
    verified = pack_json(
        capsys,
        root,
        "--use-cache",
        str(cache),
        "--verify-cache",
        "-o",
        str(tmp_path / "three.tar"),
    )
    assert channel_server.hits(f"/channel/linux-64/{python.file_name}") == 1
    assert channel_server.hits("/channel/*") == 1
    assert verified["stats"]["from_cache"] == verified["stats"]["files"] - 1
    assert sha256(tmp_path / "three.tar") == sha256(tmp_path / "one.tar")

    entry.write_bytes(bad)
    _forge_record(entry)
    entries = [p for p in cache.glob("pkgs/sha256/*/*") if len(p.name) == 64]
    assert run(["cache", "verify", "--use-cache", str(cache), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["removed"] == [python.sha256]
    assert report["checked"] == len(entries) - 1
    assert not entry.exists()


def test_stdout_stream_equals_the_file(
    full_workspace: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file_out = tmp_path / "env.tar"
    assert run(["-q", "pack", str(full_workspace.root), "-o", str(file_out)]) == 0
    proc = subprocess.run(
        [sys.executable, "-m", "pixi_pack_src", "pack", str(full_workspace.root), "-o", "-"],
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert hashlib.sha256(proc.stdout).hexdigest() == sha256(file_out)


def test_directory_only(
    full_workspace: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tar_out, dir_out = tmp_path / "env.tar", tmp_path / "env-dir"
    assert run(["-q", "pack", str(full_workspace.root), "-o", str(tar_out)]) == 0
    assert (
        run(["-q", "pack", str(full_workspace.root), "--directory-only", "-o", str(dir_out)]) == 0
    )
    files = members(tar_out)
    on_disk = {
        p.relative_to(dir_out).as_posix(): p.read_bytes() for p in dir_out.rglob("*") if p.is_file()
    }
    assert on_disk == files


def test_local_and_file_url_conda_entries(
    workspace_factory: WorkspaceFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = workspace_factory(
        {"default": ["python", "chain-a"]},
        conda_locations={"chain-b": "relative", "chain-c": "file"},
    )
    doc = pack_json(capsys, str(ws.root), "-o", str(tmp_path / "env.tar"))
    origins = {a["name"]: a["origin"] for a in doc["platforms"][0]["artifacts"]}
    assert origins["chain-b"] == "local-file"
    assert origins["chain-c"] == "local-file"
    assert origins["chain-a"] == "download"
    assert doc["stats"]["copied"] == 2


def test_inject_packages_and_missing_dependency(
    workspace_factory: WorkspaceFactory,
    world: World,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ws = workspace_factory({"default": ["python", "chain-a"]})
    zed_tools = world.archive_path(world.package("zed-tools"))
    libzed = world.archive_path(world.package("libzed", version="1.3.1"))
    wheel = world.root / world.dist("worldpkg-a").rel_path
    out = tmp_path / "env.tar"
    # zed-tools needs libzed, which the environment does not have
    code = run(["pack", str(ws.root), "-o", str(out), "-i", str(zed_tools)])
    err = capsys.readouterr().err
    assert code == 1
    assert "`libzed >=1.3.1,<2.0a0` is not in the environment" in err
    assert not out.exists()
    doc = pack_json(
        capsys,
        str(ws.root),
        "-o",
        str(out),
        "-i",
        str(zed_tools),
        "-i",
        str(libzed),
        "-i",
        str(wheel),
    )
    injected = {a["path"] for a in doc["platforms"][0]["artifacts"] if a["origin"] == "injected"}
    assert injected == {
        f"channel/linux-64/{zed_tools.name}",
        f"channel/linux-64/{libzed.name}",
        f"pypi/{wheel.name}",
    }
    files = members(out)
    repodata = json.loads(files["channel/linux-64/repodata.json"])
    assert libzed.name in {**repodata["packages"], **repodata["packages.conda"]}


def test_pypi_non_wheel_is_refused_or_skipped(
    workspace_factory: WorkspaceFactory,
    world: World,
    channel_server: WorldServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sdist = pypi.index_entry(world, "worldpkg-b", channel_server.url, kind="sdist")
    wheel = pypi.index_entry(world, "worldpkg-a", channel_server.url)
    ws = workspace_factory({"default": Env(conda=("python", "pip"), pypi=(sdist, wheel))})
    out = tmp_path / "env.tar"
    code = run(["pack", str(ws.root), "-o", str(out), "--no-build-sdist"])
    err = capsys.readouterr().err
    assert code == 1
    assert "worldpkg-b" in err
    assert "--ignore-pypi-non-wheel" in err
    assert not out.exists()
    doc = pack_json(capsys, str(ws.root), "-o", str(out), "--ignore-pypi-non-wheel")
    wheels = [a["name"] for a in doc["platforms"][0]["artifacts"] if a["kind"] == "wheel"]
    assert wheels == ["worldpkg-a"]
    assert any("worldpkg-b" in w for w in doc["warnings"])


def test_custom_platform_names_and_environments(
    workspace_factory: WorkspaceFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = workspace_factory(
        {"default": ["python"], "tools": ["chain-a", "libzed"]},
        platforms=(Plat("lx", subdir="linux-64"),),
    )
    doc = pack_json(capsys, str(ws.root), "-e", "tools", "-p", "lx", "-o", str(tmp_path / "t.tar"))
    assert doc["environment"] == "tools"
    assert doc["platforms"][0]["name"] == "lx"
    files = members(tmp_path / "t.tar")
    assert json.loads(files["pixi-pack.json"])["platform"] == "linux-64"
    assert json.loads(files["pixi-pack-src.json"])["platform"]["name"] == "lx"
    code = run(["pack", str(ws.root), "-e", "nope"])
    assert code == 2
    assert "available: default, tools" in capsys.readouterr().err


def test_mirror_and_auth(
    workspace_factory: WorkspaceFactory,
    world: World,
    channel_server: WorldServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # the lock names a dead host; the config mirrors it to a second server, which wants auth
    with WorldServer(world.root) as mirror:
        ws = workspace_factory({"default": ["chain-a"]})
        dead = "http://127.0.0.1:9"
        ws.lock_path.write_text(ws.lock_path.read_text().replace(channel_server.url, dead))
        config = tmp_path / "config.toml"
        config.write_text(f'[mirrors]\n"{dead}/channel" = ["{mirror.url}/channel"]\n')
        auth = tmp_path / "auth.json"
        auth.write_text(json.dumps({f"127.0.0.1:{mirror.port}": {"BearerToken": "s3cret"}}))
        mirror.require_auth("/channel/", "Bearer s3cret")
        out = tmp_path / "env.tar"
        code = run(
            ["pack", str(ws.root), "-o", str(out), "-c", str(config), "--auth-file", str(auth)]
        )
        err = capsys.readouterr().err
        assert code == 0, err
        assert "s3cret" not in err
        assert mirror.hits("/channel/*") == 3
        assert {r.headers.get("authorization") for r in mirror.requests} == {"Bearer s3cret"}
        assert channel_server.hits() == 0
        assert b"s3cret" not in out.read_bytes()
        prov = json.loads(members(out)["pixi-pack-src.json"])
        assert {a["origin"]["url"].split("/channel/")[0] for a in prov["artifacts"]} == {dead}


def test_roundtrip_pack_then_unpack(
    full_workspace: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 3's roundtrip: >= 20 conda packages and 3 wheels, packed then unpacked offline."""
    archive = tmp_path / "environment.tar"
    assert run(["-q", "pack", str(full_workspace.root), "-o", str(archive)]) == 0
    target = tmp_path / "somewhere else" / "target"
    code = run(["unpack", str(archive), "-o", str(target), "-s", "bash", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    result = json.loads(out)
    env = target / "env"
    assert result["conda_packages"] >= 20
    assert result["wheels"] == 3
    python = env / "bin" / "python"
    check = subprocess.run(
        [
            str(python),
            "-c",
            "import worldpkg_a, worldpkg_b, worldpkg_c, pyworld_plugins; print(worldpkg_b.hello())",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert check.stdout == "hello from worldpkg-b 2.0.1 with hello from worldpkg-a 1.0.0\n"
    relocated = subprocess.run([str(env / "bin" / "relocme")], capture_output=True, text=True)
    assert relocated.stdout == f"{env}\n"  # the binary prefix placeholder
    assert (env / "etc" / "relocme.conf").read_text() == f"prefix={env}\n"  # the text one
    activated = subprocess.run(
        ["bash", "-c", f"source '{target / 'activate.sh'}' && echo $CONDA_PREFIX && worldcli"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert activated.stdout.splitlines() == [str(env), "worldcli 1.0.0"]
