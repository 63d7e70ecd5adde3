"""sdist / source tree / git -> wheel builds against the offline world (build.sdist)."""

from __future__ import annotations

import asyncio
import hashlib
import platform
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest
from rattler import RepoDataRecord
from testworld.channel import run
from testworld.fixtures import LockFactory, WorkspaceFactory
from testworld.gitrepo import make_git_repo
from testworld.install import install_records, install_wheels, run_in
from testworld.layout import World
from testworld.locks import Env
from testworld.pypi import (
    FLAVOR_ENV,
    FLAVOR_PATCH,
)
from testworld.python_pkg import PY_VERSION
from testworld.scenarios import sdist_workspace
from testworld.server import WorldServer

from pixi_pack_src.builders.wheel import (
    BuiltWheel,
    TargetInterpreter,
    WheelBuildJob,
    WheelBuildOptions,
    build_wheels,
    job_for,
    make_target_interpreter,
)
from pixi_pack_src.builders.wheel.overrides import Overrides, load_overrides, read_manifest_table
from pixi_pack_src.builders.wheel.staging import stage_source
from pixi_pack_src.errors import EXIT_BUILD, BuildError, UnsupportedPackageError
from pixi_pack_src.fetch.auth import AuthStore
from pixi_pack_src.fetch.http import RetryPolicy, download_file, make_client
from pixi_pack_src.hashing import FileIdentity
from pixi_pack_src.lock.lockfile import load_lock
from pixi_pack_src.lock.model import Hashes, LockedEnvironment, Platform, PypiPackage
from pixi_pack_src.reporter import NullReporter, Outcome

pytestmark = pytest.mark.integration

HOST_PYTHON_VERSION = PY_VERSION
NATIVE_TAG = f"cp{sys.version_info[0]}{sys.version_info[1]}-cp{sys.version_info[0]}{sys.version_info[1]}-linux_{platform.machine()}"


class CountingReporter(NullReporter):
    def __init__(self) -> None:
        self.outcomes: dict[str, str] = {}

    def task_finished(self, key: str, *, outcome: Outcome, detail: str = "") -> None:
        self.outcomes[key] = outcome


def _fetch(url: str, dest: Path, sha256: str | None) -> Path:
    async def go() -> Path:
        client = make_client()
        try:
            result = await download_file(
                client,
                [url],
                dest,
                expected=Hashes(sha256=sha256),
                policy=RetryPolicy(retries=0),
                auth=AuthStore(),
            )
        finally:
            await client.aclose()
        return result.path

    return asyncio.run(go())


def _jobs(env: LockedEnvironment, downloads: Path) -> list[WheelBuildJob]:
    jobs = []
    for pkg in env.pypi:
        if pkg.is_wheel:
            continue
        sdist = None
        if pkg.kind == "sdist":
            assert pkg.url is not None
            assert pkg.file_name is not None
            sdist = _fetch(pkg.url, downloads / pkg.file_name, pkg.hashes.sha256)
        elif pkg.kind == "local-sdist":
            sdist = pkg.path
        jobs.append(job_for(pkg, workspace_root=env.workspace_root, sdist_file=sdist))
    return jobs


def build_wheels_sync(
    jobs: Sequence[WheelBuildJob],
    *,
    target: TargetInterpreter,
    options: WheelBuildOptions,
    reporter: NullReporter | None = None,
) -> dict[str, BuiltWheel]:
    return asyncio.run(build_wheels(jobs, target=target, options=options, reporter=reporter))


def _conda_files(env: LockedEnvironment, world: World) -> list[tuple[RepoDataRecord, Path]]:
    out = []
    for binary in env.conda:
        path = world.archive_path(world.package(binary.name, binary.subdir, binary.version))
        assert path.name == binary.file_name
        out.append((binary.record, path))
    return out


@pytest.fixture
def flavor_workspace(
    world: World, channel_server: WorldServer, workspace_factory: WorkspaceFactory, tmp_path: Path
) -> tuple[Path, LockedEnvironment]:
    """python + an sdist from the index, a local sdist needing a patch, a tree and a git repo."""
    ws = sdist_workspace(world, workspace_factory, channel_server.url, tmp_path)
    env = load_lock(ws.lock_path).select("default", "linux-64")
    return ws.manifest, env


def test_world_lock_builds_every_source_kind_and_the_wheels_import(
    world: World, flavor_workspace: tuple[Path, LockedEnvironment], tmp_path: Path
) -> None:
    manifest, env = flavor_workspace
    overrides = load_overrides(manifest_table=read_manifest_table(manifest), manifest_path=manifest)
    jobs = _jobs(env, tmp_path / "downloads")
    assert sorted((j.name, j.kind) for j in jobs) == [
        ("worldpkg-a", "sdist"),
        ("worldpkg-c", "git"),
        ("worldpkg-flavor", "sdist"),
        ("worldpkg-local", "source-tree"),
    ]
    cache = tmp_path / "cache"
    work = tmp_path / "work1"
    target = make_target_interpreter(
        conda=_conda_files(env, world), platform=env.platform, work_dir=work
    )
    assert target.is_host
    assert target.version == HOST_PYTHON_VERSION
    reporter = CountingReporter()
    options = WheelBuildOptions(work_dir=work, cache_root=cache, overrides=overrides, jobs=2)
    built = build_wheels_sync(jobs, target=target, options=options, reporter=reporter)

    assert {k: w.file_name for k, w in built.items()} == {
        "worldpkg-a": "worldpkg_a-1.0.0-py3-none-any.whl",
        "worldpkg-c": "worldpkg_c-0.5.0-py3-none-any.whl",
        "worldpkg-flavor": "worldpkg_flavor-1.0.0-py3-none-any.whl",
        "worldpkg-local": "worldpkg_local-0.9.0-py3-none-any.whl",
    }
    assert set(reporter.outcomes.values()) == {"built"}
    for wheel in built.values():
        assert hashlib.sha256(wheel.path.read_bytes()).hexdigest() == wheel.sha256
        assert not wheel.from_cache
    # The environment's python built them: uv made every isolated venv for it.
    prefix_python = work / "build-python" / "linux-64" / "prefix" / "bin" / "python"
    for wheel in built.values():
        assert wheel.log_file is not None
        text = wheel.log_file.read_text()
        assert f"/uv venv --no-config --cache-dir={cache}/uv-v1 " in text
        assert f" --python={prefix_python} " in text
    _check_provenance(built, world, env)

    # Install into a fresh environment made from the same python package; import them all.
    prefix = tmp_path / "env"
    python_pkg = world.package("python")
    install_records(
        [run(RepoDataRecord.from_package_archive(world.archive_path(python_pkg)))], prefix
    )
    install_wheels(prefix, [w.path for w in built.values()])
    code = (
        "import worldpkg_a, worldpkg_c, worldpkg_flavor, worldpkg_local\n"
        "for m in (worldpkg_a, worldpkg_c, worldpkg_flavor, worldpkg_local): print(m.hello())"
    )
    out = run_in(prefix, ["python", "-c", code]).stdout.splitlines()
    assert out == [
        "hello from worldpkg-a 1.0.0",
        "hello from worldpkg-c 0.5.0",
        "hello from worldpkg-flavor 1.0.0 (vanilla)",
        "hello from worldpkg-local 0.9.0",
    ]

    # Second pack: everything from the cache, no build, not even the build python.
    work2 = tmp_path / "work2"
    target2 = make_target_interpreter(
        conda=_conda_files(env, world), platform=env.platform, work_dir=work2
    )
    reporter2 = CountingReporter()
    again = build_wheels_sync(
        _jobs(env, tmp_path / "downloads2"),
        target=target2,
        options=WheelBuildOptions(work_dir=work2, cache_root=cache, overrides=overrides),
        reporter=reporter2,
    )
    assert set(reporter2.outcomes.values()) == {"reused"}
    assert all(w.from_cache for w in again.values())
    assert {k: w.sha256 for k, w in again.items()} == {k: w.sha256 for k, w in built.items()}
    assert not (work2 / "wheel-builds").exists()
    assert not (work2 / "build-python").exists()
    assert again["worldpkg-flavor"].provenance == built["worldpkg-flavor"].provenance


def _check_provenance(built: dict[str, BuiltWheel], world: World, env: LockedEnvironment) -> None:
    by_name = {p.name: p for p in env.pypi}
    a = built["worldpkg-a"].provenance
    assert a["origin"] == {
        "type": "sdist",
        "url": by_name["worldpkg-a"].url,
        "sha256": world.dist("worldpkg-a", "sdist").sha256,
    }
    assert a["builder"] == {
        "frontend": a["builder"]["frontend"],  # type: ignore[index]
        "backend": "world_backend",
        "build-requires": [],
        "python": HOST_PYTHON_VERSION,
        "isolated": True,
        "platform": "linux-64",
    }
    c = built["worldpkg-c"].provenance["origin"]
    git = by_name["worldpkg-c"].git
    assert git is not None
    assert c == {"type": "pypi-git", "url": git.url, "rev": git.rev}
    local = built["worldpkg-local"].provenance["origin"]
    assert isinstance(local, dict)
    assert local["type"] == "pypi-source-tree"
    assert local["path"] == "worldpkg-local"
    assert len(str(local["source-tree-sha256"])) == 64
    flavor = built["worldpkg-flavor"].provenance
    assert flavor["origin"] == {
        "type": "sdist",
        "path": f"dist/{world.dist('worldpkg-flavor', 'sdist').file_name}",
        "sha256": world.dist("worldpkg-flavor", "sdist").sha256,
    }
    patch_sha = hashlib.sha256(world.patch_path(FLAVOR_PATCH).read_bytes()).hexdigest()
    assert flavor["builder"]["overrides"] == {  # type: ignore[index]
        "env": {FLAVOR_ENV: "vanilla"},
        "patches": [{"name": f"patches/{FLAVOR_PATCH}", "sha256": patch_sha}],
        "from": ["pixi.toml [tool.pixi-pack-src.overrides.worldpkg_flavor]"],
    }


# -- single-package builds ------------------------------------------------------------------------


def _sdist_package(world: World, name: str, *, version: str | None = None) -> PypiPackage:
    d = world.dist(name, "sdist")
    path = world.root / d.rel_path
    return PypiPackage(
        name=name,
        version=version or d.version,
        location=f"./dist/{d.file_name}",
        kind="local-sdist",
        url=None,
        path=path,
        git=None,
        file_name=d.file_name,
        hashes=Hashes(sha256=d.sha256),
    )


def _tree_package(name: str, path: Path, version: str | None = None) -> PypiPackage:
    return PypiPackage(
        name=name,
        version=version,
        location=f"./{path.name}",
        kind="source-tree",
        url=None,
        path=path,
        git=None,
        file_name=None,
        hashes=Hashes(),
    )


def _host_target(subdir: str = "linux-64", *, is_host: bool = True) -> TargetInterpreter:
    return TargetInterpreter(
        version=HOST_PYTHON_VERSION, subdir=subdir, is_host=is_host, python=Path(sys.executable)
    )


def _build(
    packages: Sequence[PypiPackage],
    tmp_path: Path,
    *,
    target: TargetInterpreter | None = None,
    overrides: Overrides | None = None,
    **options: object,
) -> dict[str, BuiltWheel]:
    jobs = [
        job_for(p, workspace_root=tmp_path, sdist_file=p.path if p.kind == "local-sdist" else None)
        for p in packages
    ]
    opts = WheelBuildOptions(
        work_dir=tmp_path / "work",
        overrides=overrides or Overrides(),
        **options,  # type: ignore[arg-type]
    )
    return build_wheels_sync(jobs, target=target or _host_target(), options=opts)


def _flavor_overrides(tmp_path: Path, world: World, patch_text: str | None, env: bool) -> Overrides:
    pkg_dir = tmp_path / "overrides" / "worldpkg-flavor"
    pkg_dir.mkdir(parents=True)
    patch = patch_text if patch_text is not None else world.patch_path(FLAVOR_PATCH).read_text()
    (pkg_dir / "01-fix.patch").write_text(patch)
    if env:
        (pkg_dir / "settings.toml").write_text(f'[env]\n{FLAVOR_ENV} = "chocolate"\n')
    return load_overrides(overrides_dir=tmp_path / "overrides")


def test_overrides_dir_patch_and_env(world: World, tmp_path: Path) -> None:
    overrides = _flavor_overrides(tmp_path, world, None, env=True)
    built = _build([_sdist_package(world, "worldpkg-flavor")], tmp_path, overrides=overrides)
    wheel = built["worldpkg-flavor"]
    with zipfile.ZipFile(wheel.path) as zf:
        assert zf.read("worldpkg_flavor/_flavor.py") == b"FLAVOR = 'chocolate'\n"
    assert wheel.provenance["builder"]["overrides"]["patches"][0]["name"] == (  # type: ignore[index]
        "overrides:worldpkg-flavor/01-fix.patch"
    )


def test_patch_that_does_not_apply_names_the_patch_and_hunk(world: World, tmp_path: Path) -> None:
    bad = (
        world.patch_path(FLAVOR_PATCH)
        .read_text()
        .replace(" dependencies = []", " dependencies = [1]")
    )
    overrides = _flavor_overrides(tmp_path, world, bad, env=True)
    with pytest.raises(BuildError) as err:
        _build([_sdist_package(world, "worldpkg-flavor")], tmp_path, overrides=overrides)
    assert "patch overrides:worldpkg-flavor/01-fix.patch does not apply" in err.value.message
    assert "hunk #1 of pyproject.toml" in err.value.message
    assert err.value.exit_code == EXIT_BUILD


def test_failing_build_carries_the_log_tail(world: World, tmp_path: Path) -> None:
    overrides = _flavor_overrides(tmp_path, world, None, env=False)
    with pytest.raises(BuildError) as err:
        _build([_sdist_package(world, "worldpkg-flavor")], tmp_path, overrides=overrides)
    exc = err.value
    assert exc.exit_code == EXIT_BUILD
    assert "the build_wheel hook failed" in exc.message
    assert (
        f"RuntimeError: worldpkg-flavor: set {FLAVOR_ENV} to build this project" in exc.output_tail
    )
    assert exc.log_file == tmp_path / "work" / "logs" / "wheel-linux-64-worldpkg-flavor.log"
    assert "applying patch overrides:worldpkg-flavor/01-fix.patch" in exc.log_file.read_text()


def test_version_other_than_locked_is_refused(world: World, tmp_path: Path) -> None:
    with pytest.raises(BuildError) as err:
        _build([_sdist_package(world, "worldpkg-a", version="1.0.1")], tmp_path)
    assert "gave version 1.0.0 (worldpkg_a-1.0.0-py3-none-any.whl), the lock says 1.0.1" in (
        err.value.message
    )


NATIVE_BACKEND = '''\
"""Wraps world_backend and tags the wheel as a CPython linux wheel (a 'native' build)."""
import base64, hashlib, os, sys, zipfile
from world_backend import *  # noqa: F403
import world_backend

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    print("built by", sys.base_prefix)
    pure = world_backend.build_wheel(wheel_directory, config_settings, metadata_directory)
    native = pure.replace("py3-none-any", "@TAG@")
    os.rename(os.path.join(wheel_directory, pure), os.path.join(wheel_directory, native))
    return native
'''


def _native_project(world: World, tmp_path: Path) -> Path:
    tree = tmp_path / "native" / "worldpkg-a"
    shutil.copytree(world.project_dir("worldpkg-a"), tree)
    (tree / "native_backend.py").write_text(NATIVE_BACKEND.replace("@TAG@", NATIVE_TAG))
    text = (tree / "pyproject.toml").read_text()
    (tree / "pyproject.toml").write_text(text.replace('"world_backend"', '"native_backend"', 1))
    return tree


def test_cross_platform_builds_pure_wheels_and_refuses_native_ones(
    world: World, tmp_path: Path
) -> None:
    osx_python = world.package("python", "osx-arm64")
    record = run(RepoDataRecord.from_package_archive(world.archive_path(osx_python)))
    target = make_target_interpreter(
        conda=[(record, world.archive_path(osx_python))],
        platform=Platform("osx-arm64", "osx-arm64", ("__osx=13.0",)),
        work_dir=tmp_path / "work",
    )
    assert not target.is_host
    built = _build([_sdist_package(world, "worldpkg-a")], tmp_path / "pure", target=target)
    assert built["worldpkg-a"].file_name == "worldpkg_a-1.0.0-py3-none-any.whl"
    assert built["worldpkg-a"].provenance["builder"]["platform"] == "osx-arm64"  # type: ignore[index]

    native = _tree_package("worldpkg-a", _native_project(world, tmp_path), version="1.0.0")
    with pytest.raises(UnsupportedPackageError) as err:
        _build([native], tmp_path / "native-build", target=target)
    assert err.value.message == (
        "worldpkg-a: the build gave a platform-specific wheel "
        f"(worldpkg_a-1.0.0-{NATIVE_TAG}.whl), which this machine cannot build "
        "for osx-arm64"
    )
    assert err.value.hint == "build it on a osx-arm64 runner (see examples/ci)"
    # The same native project builds fine for the host.
    ok = _build([native], tmp_path / "native-host")
    assert ok["worldpkg-a"].file_name == f"worldpkg_a-1.0.0-{NATIVE_TAG}.whl"


def test_build_requirements_come_from_the_index(
    world: World, channel_server: WorldServer, tmp_path: Path
) -> None:
    tree = tmp_path / "needs-b"
    shutil.copytree(world.project_dir("worldpkg-c"), tree)
    text = (tree / "pyproject.toml").read_text()
    (tree / "pyproject.toml").write_text(
        text.replace("requires = []", 'requires = ["worldpkg-b>=2"]')
    )
    cache = tmp_path / "cache"
    index = world.simple_index_url(channel_server.url)
    built = _build(
        [_tree_package("worldpkg-c", tree, version="0.5.0")],
        tmp_path,
        cache_root=cache,
        indexes=(index,),
    )
    builder = built["worldpkg-c"].provenance["builder"]
    assert builder["build-requires"] == ["worldpkg-a==1.0.0", "worldpkg-b==2.0.1"]  # type: ignore[index]
    log_file = built["worldpkg-c"].log_file
    assert log_file is not None
    assert f"# installing worldpkg-b>=2 from {index}" in log_file.read_text()
    # uv keeps what it downloaded in its cache inside ours.
    kept = sorted(p.name for p in (cache / "uv-v1").rglob("worldpkg_b-2.0.1*"))
    assert kept
    # Only the index's pages and files were asked for (uv reads a wheel's metadata first).
    assert {r.path for r in channel_server.requests} == {
        "/pypi/simple/worldpkg-a/",
        "/pypi/simple/worldpkg-b/",
        "/pypi/files/worldpkg_a-1.0.0-py3-none-any.whl",
        "/pypi/files/worldpkg_b-2.0.1-py3-none-any.whl",
    }
    assert channel_server.hits("/pypi/simple/worldpkg-b/") == 1


def test_no_build_isolation_uses_the_interpreter_itself(world: World, tmp_path: Path) -> None:
    built = _build([_sdist_package(world, "worldpkg-a")], tmp_path, build_isolation=False)
    builder = built["worldpkg-a"].provenance["builder"]
    assert builder["isolated"] is False  # type: ignore[index]
    log_file = built["worldpkg-a"].log_file
    assert log_file is not None
    text = log_file.read_text()
    assert "-m venv" not in text
    assert f"# build python {HOST_PYTHON_VERSION} at {sys.executable} (isolated: False)" in text


def test_one_failure_among_parallel_builds_is_the_error_raised(
    world: World, tmp_path: Path
) -> None:
    overrides = _flavor_overrides(tmp_path, world, None, env=False)
    packages = [_sdist_package(world, n) for n in ("worldpkg-a", "worldpkg-flavor", "worldpkg-b")]
    with pytest.raises(BuildError) as err:
        _build(packages, tmp_path, overrides=overrides, jobs=2)
    assert err.value.message.startswith("building a wheel of worldpkg-flavor (./dist/")


def test_a_repository_root_tree_keeps_its_git_history_visible(world: World, tmp_path: Path) -> None:
    repo = make_git_repo(world.project_dir("worldpkg-a"), tmp_path / "bare.git")
    tree = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo.path), str(tree)], check=True)
    job = job_for(_tree_package("worldpkg-a", tree, "1.0.0"), workspace_root=tmp_path)
    staged = stage_source(job, tmp_path / "build", checkout_root=tmp_path / "w")
    assert (staged / ".git").read_text() == f"gitdir: {(tree / '.git').resolve()}\n"
    head = subprocess.run(
        ["git", "describe", "--tags"], cwd=staged, capture_output=True, text=True, check=True
    )
    assert head.stdout.strip() == "v1"
    assert sorted(p.name for p in staged.iterdir()) == sorted(p.name for p in tree.iterdir())


def test_a_build_requirement_missing_from_the_index(
    world: World, channel_server: WorldServer, tmp_path: Path
) -> None:
    tree = tmp_path / "needs-missing"
    shutil.copytree(world.project_dir("worldpkg-a"), tree)
    text = (tree / "pyproject.toml").read_text()
    (tree / "pyproject.toml").write_text(text.replace("requires = []", 'requires = ["no-such"]'))
    index = world.simple_index_url(channel_server.url)
    with pytest.raises(BuildError) as err:
        _build([_tree_package("worldpkg-a", tree)], tmp_path, pypi_index=index)
    assert err.value.message == (
        "building a wheel of worldpkg-a (./needs-missing) failed: cannot install the build "
        f"requirement no-such from {index} (uv's message is in the build log)"
    )
    assert err.value.exit_code == EXIT_BUILD
    assert err.value.log_file is not None
    assert "no-such was not found in the package registry" in err.value.log_file.read_text()
    assert channel_server.hits("/pypi/simple/no-such/") == 1


ENV_BACKEND = '''\
"""A backend that needs a package of the conda environment (pyworld) to even import."""
import pyworld  # noqa: F401
from world_backend import *  # noqa: F403
'''


def test_no_build_isolation_sees_the_environment_packages(
    world: World, lock_factory: LockFactory, tmp_path: Path
) -> None:
    lock = lock_factory({"default": Env(conda=("python", "pyworld"))})
    env = load_lock(lock.path).select("default", "linux-64")
    tree = tmp_path / "needs-pyworld"
    shutil.copytree(world.project_dir("worldpkg-a"), tree)
    (tree / "env_backend.py").write_text(ENV_BACKEND)
    text = (tree / "pyproject.toml").read_text()
    (tree / "pyproject.toml").write_text(text.replace('"world_backend"', '"env_backend"', 1))
    package = _tree_package("worldpkg-a", tree, "1.0.0")

    def target(work: Path, environment_packages: bool) -> TargetInterpreter:
        return make_target_interpreter(
            conda=_conda_files(env, world),
            platform=env.platform,
            work_dir=work,
            environment_packages=environment_packages,
        )

    before = {path: FileIdentity.of_path(path) for _, path in _conda_files(env, world)}
    built = _build(
        [package], tmp_path / "noiso", target=target(tmp_path / "t1", True), build_isolation=False
    )
    assert built["worldpkg-a"].file_name == "worldpkg_a-1.0.0-py3-none-any.whl"
    # installing the build python left the verified conda files as they were (a hard link
    # would move their ctime: the cache would lose its record, an archive copy would fail)
    assert {path: FileIdentity.of_path(path) for path in before} == before
    with pytest.raises(BuildError, match="cannot be imported") as err:
        _build([package], tmp_path / "iso", target=target(tmp_path / "t2", False))
    assert "No module named 'pyworld'" in err.value.output_tail
