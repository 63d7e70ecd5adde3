"""The world's PyPI side: valid wheels and sdists, a simple index, offline PEP 517 builds."""

from __future__ import annotations

import hashlib
import re
import subprocess
import tarfile
import zipfile
from pathlib import Path

import httpx
import pytest
from pyproject_hooks import BuildBackendHookCaller
from rattler import PypiLockedPackage
from testworld.fixtures import LockFactory, WorkspaceFactory
from testworld.gitrepo import make_git_repo
from testworld.install import install_specs, install_wheels, run_in
from testworld.layout import World
from testworld.locks import Env
from testworld.pypi import (
    FLAVOR_ENV,
    FLAVOR_PATCH,
    git_entry,
    index_entry,
    local_entry,
    tree_entry,
)
from testworld.server import WorldServer

pytestmark = pytest.mark.integration


def test_world_has_wheels_and_sdists(world: World) -> None:
    wheels = sorted(d.file_name for d in world.pypi if d.kind == "wheel")
    sdists = sorted(d.file_name for d in world.pypi if d.kind == "sdist")
    assert wheels == [
        "worldpkg_a-1.0.0-py3-none-any.whl",
        "worldpkg_b-2.0.1-py3-none-any.whl",
        "worldpkg_c-0.5.0-py3-none-any.whl",
    ]
    assert sdists == [
        "worldpkg_a-1.0.0.tar.gz",
        "worldpkg_b-2.0.1.tar.gz",
        "worldpkg_c-0.5.0.tar.gz",
        "worldpkg_flavor-1.0.0.tar.gz",
    ]
    for d in world.pypi:
        path = world.root / d.rel_path
        assert hashlib.sha256(path.read_bytes()).hexdigest() == d.sha256
        assert path.stat().st_size == d.size


def test_wheels_are_valid_with_a_matching_record(world: World) -> None:
    for d in (x for x in world.pypi if x.kind == "wheel"):
        with zipfile.ZipFile(world.root / d.rel_path) as zf:
            assert zf.testzip() is None
            names = zf.namelist()
            record_name = next(n for n in names if n.endswith(".dist-info/RECORD"))
            rows = [line.split(",") for line in zf.read(record_name).decode().splitlines()]
            assert sorted(r[0] for r in rows) == sorted(names)
            for name, digest, _size in rows:
                if name != record_name:
                    assert digest.startswith("sha256=")


def test_simple_index_links_carry_hashes(world: World, channel_server: WorldServer) -> None:
    index = world.simple_index_url(channel_server.url)
    assert "worldpkg-flavor" in httpx.get(index + "/").text
    page = httpx.get(index + "/worldpkg-b/").text
    links = re.findall(r'href="([^"#]+)#sha256=([0-9a-f]{64})"', page)
    assert [Path(href).name for href, _ in links] == [
        "worldpkg_b-2.0.1-py3-none-any.whl",
        "worldpkg_b-2.0.1.tar.gz",
    ]
    for href, sha in links:
        body = httpx.get(f"{index}/worldpkg-b/{href}").content
        assert hashlib.sha256(body).hexdigest() == sha
    assert 'data-requires-python="&gt;=3.8"' in page


def test_wheels_install_into_the_world_python(world: World, tmp_path: Path) -> None:
    prefix = tmp_path / "env"
    install_specs(world, ["python"], prefix)
    wheels = [world.root / world.dist(n).rel_path for n in ("worldpkg-a", "worldpkg-b")]
    install_wheels(prefix, wheels)
    code = "import worldpkg_b; print(worldpkg_b.hello())"
    out = run_in(prefix, [str(prefix / "bin" / "python"), "-c", code])
    assert out.stdout == "hello from worldpkg-b 2.0.1 with hello from worldpkg-a 1.0.0\n"
    assert run_in(prefix, [str(prefix / "bin" / "worldpkg-a")]).stdout == (
        "hello from worldpkg-a 1.0.0\n"
    )


def _unpack_sdist(world: World, name: str, dest: Path) -> Path:
    with tarfile.open(world.root / world.dist(name, "sdist").rel_path) as tar:
        tar.extractall(dest, filter="data")
    (tree,) = dest.iterdir()
    return tree


def test_sdist_builds_offline_to_the_published_wheel(world: World, tmp_path: Path) -> None:
    tree = _unpack_sdist(world, "worldpkg-a", tmp_path / "src")
    hooks = BuildBackendHookCaller(str(tree), "world_backend", backend_path=["."])
    assert hooks.get_requires_for_build_wheel() == []
    name = hooks.build_wheel(str(tmp_path / "out"))
    built = (tmp_path / "out" / name).read_bytes()
    assert name == "worldpkg_a-1.0.0-py3-none-any.whl"
    assert hashlib.sha256(built).hexdigest() == world.dist("worldpkg-a").sha256


def test_flavor_sdist_needs_the_patch_and_the_env_var(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = _unpack_sdist(world, "worldpkg-flavor", tmp_path / "src")
    hooks = BuildBackendHookCaller(str(tree), "world_backend", backend_path=["."])
    monkeypatch.setenv(FLAVOR_ENV, "vanilla")
    with pytest.raises(subprocess.CalledProcessError):
        hooks.build_wheel(str(tmp_path / "out"))  # the published typo
    patch = world.patch_path(FLAVOR_PATCH)
    subprocess.run(["patch", "-p1", "-s", "-i", str(patch)], cwd=tree, check=True)
    monkeypatch.delenv(FLAVOR_ENV)
    with pytest.raises(subprocess.CalledProcessError):
        hooks.build_wheel(str(tmp_path / "out"))  # no flavour given
    monkeypatch.setenv(FLAVOR_ENV, "vanilla")
    name = hooks.build_wheel(str(tmp_path / "out"))
    with zipfile.ZipFile(tmp_path / "out" / name) as zf:
        assert zf.read("worldpkg_flavor/_flavor.py") == b"FLAVOR = 'vanilla'\n"


def test_git_repo_helper_is_deterministic(world: World, tmp_path: Path) -> None:
    first = make_git_repo(world.project_dir("worldpkg-local"), tmp_path / "one.git")
    second = make_git_repo(world.project_dir("worldpkg-local"), tmp_path / "two.git")
    assert first.sha == second.sha
    assert first.url == (tmp_path / "one.git").as_uri()
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", first.url, str(clone)], check=True)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True, check=True
    )
    assert head.stdout.strip() == first.sha
    assert (clone / "VERSION").read_text() == "0.9.0\n"


def test_every_pypi_entry_kind_in_one_lock(
    world: World,
    channel_server: WorldServer,
    workspace_factory: WorkspaceFactory,
    lock_factory: LockFactory,
    tmp_path: Path,
) -> None:
    wheel = index_entry(world, "worldpkg-b", channel_server.url)
    sdist = index_entry(world, "worldpkg-flavor", channel_server.url, kind="sdist")
    local, local_paths = local_entry(world, "worldpkg-c")
    tree, tree_paths = tree_entry(world)
    repo = make_git_repo(world.project_dir("worldpkg-a"), tmp_path / "a.git")
    git = git_entry("worldpkg-a", repo, "1.0.0")
    env = Env(conda=("python",), pypi=(wheel, sdist, local, tree, git))
    ws = workspace_factory({"default": env}, local_paths={**local_paths, **tree_paths})
    assert (ws.root / "dist" / "worldpkg_c-0.5.0-py3-none-any.whl").is_file()
    assert (ws.root / "worldpkg-local" / "pyproject.toml").is_file()
    manifest = ws.manifest.read_text()
    assert 'worldpkg-local = { path = "./worldpkg-local" }' in manifest
    (pkgs,) = dict(ws.lock.load().environments())["default"].packages_by_platform().values()
    pypi = {p.name: p for p in pkgs if isinstance(p, PypiLockedPackage)}
    assert sorted(pypi) == [
        "worldpkg-a",
        "worldpkg-b",
        "worldpkg-c",
        "worldpkg-flavor",
        "worldpkg-local",
    ]
    assert pypi["worldpkg-local"].version == "<dynamic>"
    assert str(pypi["worldpkg-a"].location) == f"git+{repo.url}#{repo.sha}"
    b_hashes = pypi["worldpkg-b"]._package.hashes
    assert b_hashes is not None
    assert b_hashes.sha256.hex() == world.dist("worldpkg-b").sha256
    assert pypi["worldpkg-b"].requires_dist == ["worldpkg-a>=1.0"]
    assert "python" in ws.lock.names("default", "linux-64")
