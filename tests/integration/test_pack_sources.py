"""``pack`` with conda source packages, end to end through the CLI and the stand-in pixi."""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from testworld.cli import inspect_json, run_json
from testworld.gitrepo import make_bare_repo
from testworld.layout import World
from testworld.locks import Env, Plat, SourceEntry
from testworld.pixi_standin import StandIn
from testworld.pixi_standin.workspaces import write_package
from testworld.server import WorldServer
from testworld.workspace import Workspace, write_workspace

from pixi_pack_src.cli import run

pytestmark = pytest.mark.integration

PLATFORMS = (Plat("linux-64"), Plat("osx-arm64"))


@dataclass
class SourceWorkspace:
    ws: Workspace
    git_rev: str

    @property
    def root(self) -> Path:
        return self.ws.root


def make_source_workspace(
    tmp_path: Path,
    world: World,
    server: WorldServer,
    *,
    backend_version: str | None = "==0.4.5",
    gitpkg_record: dict[str, str] | None = None,
) -> SourceWorkspace:
    root = tmp_path / "ws"
    write_package(
        root / "src" / "main",
        "main",
        noarch=False,
        source_run={"pkg": "../pkg"},
        files={"share/main/hello.txt": "hello from main"},
        backend_version=backend_version,
    )
    write_package(root / "src" / "pkg", "pkg", noarch=False, source_run={"pkg2": "../pkg2"})
    write_package(root / "src" / "pkg2", "pkg2", files={"share/pkg2/hello.txt": "hello"})
    repo = tmp_path / "gitrepo"
    write_package(repo / "gitpkg", "gitpkg", noarch=False, run=("chain-a",))
    (repo / "pixi.toml").write_text(
        '[workspace]\nname = "git-ws"\nchannels = []\n'
        'platforms = ["linux-64", "osx-arm64"]\npreview = ["pixi-build"]\n'
    )
    url, rev = make_bare_repo(repo, tmp_path / "gitpkg.git")
    sources = (
        SourceEntry(
            "main",
            "src/main",
            depends=("pkg",),
            source_depends={"pkg": {"path": "../pkg"}},
        ),
        SourceEntry(
            "pkg", "src/pkg", depends=("pkg2",), source_depends={"pkg2": {"path": "../pkg2"}}
        ),
        SourceEntry("pkg2", "src/pkg2", noarch=True),
        SourceEntry(
            "gitpkg",
            f"git+{url}?subdirectory=gitpkg#{rev}",
            depends=("chain-a",),
            **(gitpkg_record or {}),  # type: ignore[arg-type]
        ),
    )
    ws = write_workspace(
        root,
        world,
        {"default": Env(conda=("python", "chain-a"), sources=sources)},
        platforms=PLATFORMS,
        channel_url=world.channel_url(server.url),
    )
    return SourceWorkspace(ws, rev)


def tar_members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tf:
        return {
            m.name: tf.extractfile(m).read()  # type: ignore[union-attr]
            for m in tf.getmembers()
            if m.isfile()
        }


def pack(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any], str]:
    return run_json(capsys, "pack", *argv)


def inspect_builds(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict[str, Any]]:
    builds: list[dict[str, Any]] = inspect_json(capsys, *argv)["builds"]
    return builds


def test_source_packages_pack_for_two_platforms_and_hit_the_cache(
    fake_pixi: StandIn,
    world: World,
    channel_server: WorldServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sw = make_source_workspace(tmp_path, world, channel_server)
    cache = tmp_path / "cache"
    out = tmp_path / "out-{platform}.tar"
    shown = inspect_builds(capsys, str(sw.root), "--all-platforms", "--use-cache", str(cache))
    assert fake_pixi.builds() == []  # inspect runs `pixi --version`, never a build
    assert [(b["names"], b["target"], b["cached"]) for b in shown] == [
        (["gitpkg"], "linux-64", False),
        (["gitpkg"], "osx-arm64", False),
        (["main"], "linux-64", False),
        (["main"], "osx-arm64", False),
        (["pkg"], "linux-64", False),
        (["pkg"], "osx-arm64", False),
        (["pkg2"], "noarch", False),
    ]
    assert shown[0]["git"]["rev"] == sw.git_rev
    assert shown[0]["git"]["subdirectory"] == "gitpkg"
    assert shown[0]["backend-checked"] is False  # read from the checkout when building
    assert shown[2]["backend"]["pinned"] is True
    assert shown[2]["command"][0] == str(fake_pixi.exe)
    assert shown[2]["command"][1:4] == ["build", "--path", "{workspace}/src/main"]
    code, doc, err = pack(
        capsys, str(sw.root), "--all-platforms", "-o", str(out), "--use-cache", str(cache)
    )
    assert code == 0, err
    assert doc["stats"]["built"] == 7
    shown = inspect_builds(capsys, str(sw.root), "--all-platforms", "--use-cache", str(cache))
    assert [b["cached"] for b in shown] == [True] * 7
    calls = sorted((c.package, c.target_platform) for c in fake_pixi.builds())
    assert calls == [
        ("gitpkg", "linux-64"),
        ("gitpkg", "osx-arm64"),
        ("main", "linux-64"),
        ("main", "osx-arm64"),
        ("pkg", "linux-64"),
        ("pkg", "osx-arm64"),
        ("pkg2", "linux-64"),  # noarch: built once for both platforms
    ]
    for subdir in ("linux-64", "osx-arm64"):
        files = tar_members(tmp_path / f"out-{subdir}.tar")
        built_paths = sorted(
            n for n in files if n.split("/")[-1].startswith(("main-", "pkg-", "pkg2-", "gitpkg-"))
        )
        assert sorted(p.split("/")[1] for p in built_paths) == sorted([subdir] * 3 + ["noarch"])
        repodata = json.loads(files[f"channel/{subdir}/repodata.json"])
        names = {r["name"] for r in repodata["packages.conda"].values()}
        assert {"main", "pkg", "gitpkg", "python", "chain-a"} <= names
        prov = json.loads(files["pixi-pack-src.json"])
        built = {a["name"]: a for a in prov["artifacts"] if a["origin"]["type"] == "conda-source"}
        assert set(built) == {"main", "pkg", "pkg2", "gitpkg"}
        assert built["gitpkg"]["origin"]["rev"] == sw.git_rev
        assert len(built["main"]["origin"]["source-tree-sha256"]) == 64
        assert built["main"]["origin"]["location"] == "src/main"
        builder = built["main"]["builder"]
        assert builder["pixi-version"] == fake_pixi.pixi_version
        assert builder["backend"]["name"] == "pixi-build-rattler-build"
        assert builder["backend"]["spec"] == "==0.4.5"
        assert builder["argv"][:3] == ["pixi", "build", "--path"]
        assert builder["argv"][builder["argv"].index("--target-platform") + 1] == subdir
        assert str(sw.root) not in json.dumps(prov)  # no absolute workspace paths
        assert str(cache) not in json.dumps(prov)
    # the linux-64 archive unpacks into an environment with the built packages' files
    target = tmp_path / "target"
    assert run(["-q", "unpack", str(tmp_path / "out-linux-64.tar"), "-o", str(target)]) == 0
    env = target / "env"
    assert (env / "share" / "pkg2" / "hello.txt").read_text() == "hello\n"
    assert (env / "share" / "main" / "hello.txt").read_text() == "hello from main\n"
    assert (env / "share" / "gitpkg" / "VERSION").read_text() == "0.1.0\n"
    assert {p.name.rsplit("-", 2)[0] for p in (env / "conda-meta").glob("*.json")} >= {
        "main",
        "pkg",
        "pkg2",
        "gitpkg",
        "python",
        "chain-a",
    }
    # the second pack builds nothing and gives the same archives
    first = (tmp_path / "out-linux-64.tar").read_bytes()
    before = len(fake_pixi.builds())
    code, doc, err = pack(
        capsys, str(sw.root), "--all-platforms", "-o", str(out), "--use-cache", str(cache)
    )
    assert code == 0, err
    assert len(fake_pixi.builds()) == before
    assert doc["stats"]["built"] == 0
    assert doc["stats"]["builds_from_cache"] == 7
    assert (tmp_path / "out-linux-64.tar").read_bytes() == first


def test_unpinned_backend_fails_with_the_manifest_path(
    fake_pixi: StandIn,
    world: World,
    channel_server: WorldServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sw = make_source_workspace(tmp_path, world, channel_server, backend_version=None)
    out = tmp_path / "env.tar"
    code, _, err = pack(capsys, str(sw.root), "-p", "linux-64", "-o", str(out))
    assert code == 4
    manifest = sw.root / "src" / "main" / "pixi.toml"
    assert str(manifest) in err or "src/main/pixi.toml" in err
    assert 'version = "==' in err
    assert fake_pixi.builds() == []
    assert not out.exists()
    code, _, err = pack(
        capsys, str(sw.root), "-p", "linux-64", "-o", str(out), "--allow-unpinned-backends"
    )
    assert code == 0, err
    assert "not pinned" in err


def test_build_failure_shows_the_log_tail(
    fake_pixi: StandIn,
    world: World,
    channel_server: WorldServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sw = make_source_workspace(tmp_path, world, channel_server)
    fake_pixi.fail("pkg", "fail")
    out = tmp_path / "env.tar"
    code, _, err = pack(capsys, str(sw.root), "-p", "linux-64", "-o", str(out))
    assert code == 4
    assert "pkg" in err
    assert "| " in err  # the output tail
    assert "log: " in err
    log_file = Path(err.split("log: ", 1)[1].splitlines()[0].strip())
    assert log_file.is_file()
    assert not out.exists()


def test_drift_against_a_full_record(
    fake_pixi: StandIn,
    world: World,
    channel_server: WorldServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sw = make_source_workspace(
        tmp_path, world, channel_server, gitpkg_record={"version": "9.9.9", "build": "h0_0"}
    )
    out = tmp_path / "env.tar"
    code, _, err = pack(capsys, str(sw.root), "-p", "linux-64", "-o", str(out))
    assert code == 4
    assert "9.9.9" in err
    assert "--allow-drift" in err
    assert not out.exists()
    code, doc, err = pack(capsys, str(sw.root), "-p", "linux-64", "-o", str(out), "--allow-drift")
    assert code == 0, err
    assert any("gitpkg" in w for w in doc["warnings"])
    prov = json.loads(tar_members(out)["pixi-pack-src.json"])
    (gitpkg,) = [a for a in prov["artifacts"] if a["name"] == "gitpkg"]
    assert "drift" in json.dumps(gitpkg["origin"])
