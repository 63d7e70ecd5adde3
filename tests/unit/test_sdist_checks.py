"""Pure parts of the wheel builds: wheel checks, cache keys, jobs, build sources."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import pytest
from rattler import BuildString, PackageRecord, RepoDataRecord

from pixi_pack_src.builders.wheel.interpreter import TargetInterpreter, dependency_closure
from pixi_pack_src.builders.wheel.jobs import (
    WheelBuildJob,
    cache_key,
    describe_build,
    job_for,
    source_hash,
)
from pixi_pack_src.builders.wheel.overrides import Overrides, load_overrides
from pixi_pack_src.builders.wheel.wheel_check import check_wheel, find_built_wheel
from pixi_pack_src.builders.wheel.wheelcache import WheelCache
from pixi_pack_src.errors import BuildError, UnsupportedPackageError
from pixi_pack_src.lock.model import GitLocation, Hashes, PypiPackage


def _wheel(
    directory: Path,
    file_name: str,
    *,
    name: str,
    version: str,
    requires: tuple[str, ...] = (),
    requires_python: str | None = None,
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    dist = file_name.split("-")[0] + "-" + file_name.split("-")[1]
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    lines += [f"Requires-Dist: {r}" for r in requires]
    path = directory / file_name
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{dist}.dist-info/METADATA", "\n".join(lines) + "\n\n")
    return path


def _check(
    wheel: Path, *, locked: str | None = "1.0", subdir: str = "linux-64", foreign: bool = False
) -> None:
    check_wheel(
        wheel,
        package="Foo_Bar",
        locked_version=locked,
        python_version="3.11.7",
        subdir=subdir,
        foreign=foreign,
    )


def test_wheel_matching_the_lock_passes(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path, "foo_bar-1.0.0-py3-none-any.whl", name="foo-bar", version="1.0.0")
    _check(wheel)  # 1.0 == 1.0.0
    _check(wheel, locked=None)  # source trees: any version
    _check(wheel, subdir="osx-arm64", foreign=True)  # pure wheels go anywhere


@pytest.mark.parametrize(
    ("file_name", "meta", "locked", "message"),
    [
        ("other-1.0-py3-none-any.whl", ("other", "1.0"), "1.0", "a wheel of another project"),
        ("foo_bar-1.1-py3-none-any.whl", ("foo-bar", "1.1"), "1.0", "gave version 1.1"),
        ("foo_bar-1.0-py3-none-any.whl", ("foo-bar", "2.0"), "1.0", "METADATA says foo-bar 2.0"),
        ("foo_bar-1.0-cp311-cp311-win_amd64.whl", ("foo-bar", "1.0"), "1.0", "cannot install"),
        ("foo_bar-1.0-cp312-cp312-linux_x86_64.whl", ("foo-bar", "1.0"), "1.0", "cannot install"),
    ],
)
def test_wheels_not_matching_are_refused(
    tmp_path: Path, file_name: str, meta: tuple[str, str], locked: str, message: str
) -> None:
    wheel = _wheel(tmp_path, file_name, name=meta[0], version=meta[1])
    with pytest.raises(BuildError, match=message):
        _check(wheel, locked=locked)


def test_requires_python_is_checked(tmp_path: Path) -> None:
    wheel = _wheel(
        tmp_path,
        "foo_bar-1.0-py3-none-any.whl",
        name="foo-bar",
        version="1.0",
        requires_python=">=3.12",
    )
    with pytest.raises(BuildError, match=r"requires python >=3\.12, the environment has 3\.11\.7"):
        _check(wheel)


def test_native_wheel_for_a_foreign_target_names_the_runner(tmp_path: Path) -> None:
    wheel = _wheel(
        tmp_path, "foo_bar-1.0-cp311-cp311-linux_x86_64.whl", name="foo-bar", version="1.0"
    )
    with pytest.raises(UnsupportedPackageError) as err:
        _check(wheel, subdir="osx-arm64", foreign=True)
    assert err.value.hint == "build it on a osx-arm64 runner (see examples/ci)"
    assert "cannot build for osx-arm64" in err.value.message


def test_exactly_one_wheel(tmp_path: Path) -> None:
    out = tmp_path / "dist"
    out.mkdir()
    with pytest.raises(BuildError, match=r"produced 0 wheels, expected exactly one \(none\)"):
        find_built_wheel(out, None, package="foo")
    one = _wheel(out, "foo-1.0-py3-none-any.whl", name="foo", version="1.0")
    assert find_built_wheel(out, "foo-1.0-py3-none-any.whl", package="foo") == one
    with pytest.raises(BuildError, match=r"named 'bar\.whl' but wrote foo-1\.0-py3-none-any\.whl"):
        find_built_wheel(out, "bar.whl", package="foo")
    _wheel(out, "foo-1.0-py2-none-any.whl", name="foo", version="1.0")
    with pytest.raises(BuildError, match="produced 2 wheels"):
        find_built_wheel(out, None, package="foo")


# -- jobs and keys --------------------------------------------------------------------------


def _pkg(kind: str, **kw: object) -> PypiPackage:
    base: dict[str, object] = {
        "name": "Foo_Bar",
        "version": "1.0",
        "location": "x",
        "kind": kind,
        "url": None,
        "path": None,
        "git": None,
        "file_name": None,
        "hashes": Hashes(),
    }
    base.update(kw)
    return PypiPackage(**base)  # type: ignore[arg-type]


def test_job_origins(tmp_path: Path) -> None:
    sdist = tmp_path / "foo_bar-1.0.tar.gz"
    sdist.write_bytes(b"sdist bytes")
    url = "https://user:secret@example.test/files/foo_bar-1.0.tar.gz"
    job = job_for(_pkg("sdist", url=url), workspace_root=tmp_path, sdist_file=sdist)
    assert job.origin == {
        "type": "sdist",
        "sha256": "d3d5861e9ea6cbf19696b47dd712a900fbb326192e16813e3e2114bb8117e6ec",
        "url": "https://user:********@example.test/files/foo_bar-1.0.tar.gz",
    }
    assert job.source_hash == job.origin["sha256"]
    assert job.name == "foo-bar"
    local = job_for(_pkg("local-sdist", path=sdist), workspace_root=tmp_path, sdist_file=sdist)
    assert local.origin["path"] == "foo_bar-1.0.tar.gz"
    git = GitLocation(url="https://example.test/r.git", rev="a" * 40, subdirectory="py")
    gjob = job_for(_pkg("git", git=git), workspace_root=tmp_path)
    assert gjob.origin == {
        "type": "pypi-git",
        "url": "https://example.test/r.git",
        "rev": "a" * 40,
        "subdirectory": "py",
    }
    assert gjob.source is None
    tree = tmp_path / "tree"
    (tree / "pkg").mkdir(parents=True)
    (tree / "pyproject.toml").write_text("[project]\n")
    tjob = job_for(_pkg("source-tree", path=tree, version=None), workspace_root=tmp_path)
    assert tjob.origin["path"] == "tree"
    assert tjob.origin["source-tree-sha256"] == tjob.source_hash
    with pytest.raises(BuildError, match="source tree of Foo_Bar is missing"):
        job_for(_pkg("source-tree", path=tmp_path / "nope"), workspace_root=tmp_path)
    with pytest.raises(ValueError, match="not something to build"):
        job_for(_pkg("wheel"), workspace_root=tmp_path)


def test_cache_key_covers_every_input(tmp_path: Path) -> None:
    job = WheelBuildJob(_pkg("sdist"), "sdist", tmp_path, "abc", {})
    t311 = TargetInterpreter(
        version="3.11.7", subdir="linux-64", is_host=True, python=Path(sys.executable)
    )
    t311b = TargetInterpreter(version="3.11.2", subdir="linux-64", is_host=True, python=Path("x"))
    t312 = TargetInterpreter(version="3.12.0", subdir="linux-64", is_host=True, python=Path("x"))
    osx = TargetInterpreter(version="3.11.7", subdir="osx-arm64", is_host=False, python=Path("x"))
    key = cache_key(job, target=t311, override_digest="o", isolated=True)
    assert key == cache_key(job, target=t311b, override_digest="o", isolated=True)
    others = {
        cache_key(job, target=t312, override_digest="o", isolated=True),
        cache_key(job, target=osx, override_digest="o", isolated=True),
        cache_key(job, target=t311, override_digest="p", isolated=True),
        cache_key(job, target=t311, override_digest="o", isolated=False),
        cache_key(job, target=t311, override_digest="o", isolated=True, platform="any"),
        cache_key(
            WheelBuildJob(job.package, "sdist", tmp_path, "abd", {}),
            target=t311,
            override_digest="o",
            isolated=True,
        ),
    }
    assert key not in others
    assert len(others) == 6
    assert cache_key(job, target=osx, override_digest="o", isolated=True, platform="any") == (
        cache_key(job, target=t311, override_digest="o", isolated=True, platform="any")
    )


def test_describe_build_for_inspect(tmp_path: Path) -> None:
    patch = tmp_path / "p.patch"
    patch.write_text("x\n")
    ov = load_overrides(
        manifest_table={"overrides": {"foo-bar": {"patches": ["p.patch"], "env": {"A": "1"}}}},
        manifest_path=tmp_path / "pixi.toml",
    )
    git = GitLocation(url="https://example.test/r.git", rev="b" * 40)
    assert describe_build(
        _pkg("git", git=git), overrides=Overrides(), subdir="linux-64", python_version="3.11"
    ) == {
        "build": "git -> wheel",
        "source": f"https://example.test/r.git@{'b' * 12}",
    }
    assert describe_build(
        _pkg("local-sdist", location="./d/f.tar.gz"),
        overrides=ov,
        subdir="linux-64",
        python_version=None,
    ) == {
        "build": "sdist -> wheel",
        "source": "./d/f.tar.gz",
        "overrides": {"env": ["A"], "patches": ["p.patch"], "config-settings": []},
    }


def test_describe_build_says_whether_the_wheel_cache_has_it(tmp_path: Path) -> None:
    """The key inspect computes without fetching is the key a pack stores the wheel under."""
    sdist = tmp_path / "foo_bar-1.0.tar.gz"
    sdist.write_bytes(b"sdist bytes")
    sha = "d3d5861e9ea6cbf19696b47dd712a900fbb326192e16813e3e2114bb8117e6ec"
    remote = _pkg("sdist", url="https://example.test/foo_bar-1.0.tar.gz", hashes=Hashes(sha))
    assert source_hash(remote) == sha  # from the lock: nothing is fetched
    assert source_hash(_pkg("sdist", url="https://example.test/f.tar.gz")) is None
    job = job_for(remote, workspace_root=tmp_path, sdist_file=sdist)
    target = TargetInterpreter(version="3.11.7", subdir="linux-64", is_host=True, python=Path("p"))
    key = cache_key(
        job,
        target=target,
        override_digest=Overrides()
        .for_package("foo-bar", subdir="linux-64", python_version="3.11.7")
        .digest(),
        isolated=True,
    )
    cache_root = tmp_path / "cache"
    shown = {
        "overrides": Overrides(),
        "subdir": "linux-64",
        "python_version": "3.11.7",
        "cache_root": cache_root,
    }
    assert describe_build(remote, **shown)["cached"] is False  # type: ignore[arg-type]
    WheelCache(cache_root).store(key, [sdist], {})
    assert describe_build(remote, **shown)["cached"] is True  # type: ignore[arg-type]
    assert describe_build(remote, **{**shown, "python_version": "3.12.1"})["cached"] is False  # type: ignore[arg-type]
    assert describe_build(remote, **{**shown, "python_version": None})["cached"] is None  # type: ignore[arg-type]
    assert "cached" not in describe_build(
        remote, overrides=Overrides(), subdir="linux-64", python_version="3.11.7"
    )


def test_dependency_closure_of_python() -> None:
    def rec(name: str, depends: list[str]) -> RepoDataRecord:
        pr = PackageRecord(
            name=name,
            version="1",
            build=BuildString("0"),
            build_number=0,
            subdir="linux-64",
            depends=depends,
        )
        return RepoDataRecord(
            pr,
            file_name=f"{name}-1-0.conda",
            url=f"https://x.test/{name}-1-0.conda",
            channel="https://x.test",
        )

    records = [
        rec("python", ["libzlib >=1.2", "openssl"]),
        rec("libzlib", []),
        rec("openssl", ["ca-certificates"]),
        rec("ca-certificates", []),
        rec("numpy", ["python"]),
    ]
    names = [r.name.normalized for r in dependency_closure(records, "python")]
    assert names == ["ca-certificates", "libzlib", "openssl", "python"]
