"""A lock that cannot match the manifest: pixi's real workspaces (which match), and the same
workspaces edited without re-locking (which do not)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pixi_pack_src.errors import WorkspaceError
from pixi_pack_src.lock.lockfile import load_lock
from pixi_pack_src.lock.satisfiability import (
    environment_features,
    manifest_dependencies,
    mismatches,
    selector_matches,
)
from pixi_pack_src.plan import lock_refusal

EXAMPLES = Path(__file__).parents[1] / "data" / "pixi-real" / "examples"
# pixi's example workspaces whose lock this tool reads (v6+): manifest and lock as pixi wrote them
REAL = ["docker", "geos-rs", "pypi-source-deps", "simple-calculator"]


def _copy(name: str, tmp_path: Path) -> tuple[Path, Path]:
    src = EXAMPLES / name
    dest = tmp_path / name
    dest.mkdir()
    manifest = src / "pixi.toml" if (src / "pixi.toml").is_file() else src / "pyproject.toml"
    shutil.copy(manifest, dest / manifest.name)
    shutil.copy(src / "pixi.lock", dest / "pixi.lock")
    return dest / manifest.name, dest / "pixi.lock"


@pytest.mark.parametrize("name", REAL)
def test_real_workspaces_match_their_locks(name: str, tmp_path: Path) -> None:
    manifest, lock_path = _copy(name, tmp_path)
    lock = load_lock(lock_path)
    checked = 0
    for environment in lock.environment_names():
        envs = [lock.select(environment, p) for p in lock.platforms(environment)]
        assert lock_refusal(manifest, envs) is None
        checked += sum(
            len(manifest_dependencies(manifest, environment, e.platform.subdir)) for e in envs
        )
    assert checked > 0


def test_docker_pyproject_environments_and_features(tmp_path: Path) -> None:
    manifest, lock_path = _copy("docker", tmp_path)
    deps = manifest_dependencies(manifest, "prod", "linux-64")
    assert {(d.name, d.where) for d in deps} == {
        ("flask", "[dependencies]"),
        ("gunicorn", "[dependencies]"),
        ("docker-project", "[feature.prod.pypi-dependencies]"),
    }
    lock = load_lock(lock_path)
    assert mismatches(deps, lock.select("prod", "linux-64")) == []


def _stale(manifest: Path, lock_path: Path, platform: str, environment: str = "default") -> str:
    lock = load_lock(lock_path)
    refusal = lock_refusal(manifest, [lock.select(environment, platform)])
    assert refusal is not None
    assert refusal.hint == (
        "run `pixi lock` to update it, or pass --frozen to pack the lock as it is"
    )
    assert refusal.exit_code == 1
    assert lock_refusal(manifest, [lock.select(environment, platform)], frozen=True) is None
    return refusal.message


def test_a_dependency_added_without_relocking(tmp_path: Path) -> None:
    manifest, lock_path = _copy("simple-calculator", tmp_path)
    manifest.write_text(
        manifest.read_text(encoding="utf-8").replace(
            "[dependencies]\n", '[dependencies]\nnumpy = ">=1"\n', 1
        ),
        encoding="utf-8",
    )
    message = _stale(manifest, lock_path, "linux-64")
    assert message == (
        "pixi.lock is out of date: pixi.toml asks for what environment 'default' on linux-64 "
        "does not lock: numpy ([dependencies]: not locked)"
    )


def test_a_version_the_lock_does_not_satisfy(tmp_path: Path) -> None:
    manifest, lock_path = _copy("geos-rs", tmp_path)
    text = manifest.read_text(encoding="utf-8")
    lock = load_lock(lock_path)
    env = lock.select("default", "linux-64")
    deps = manifest_dependencies(manifest, "default", "linux-64")
    conda_dep = next(d for d in deps if d.kind == "conda")
    locked = next(c for c in env.conda if c.name == conda_dep.name)
    major = int(locked.version.split(".")[0])
    new_spec = f">={major + 1}"
    old_line = next(
        line for line in text.splitlines() if line.strip().startswith(f"{conda_dep.name} ")
    )
    manifest.write_text(
        text.replace(old_line, f'{conda_dep.name} = "{new_spec}"'), encoding="utf-8"
    )
    message = _stale(manifest, lock_path, "linux-64")
    assert (
        f"{conda_dep.name} ([dependencies]: locked {locked.version} does not satisfy {new_spec})"
        in message
    )


def test_pypi_and_target_and_feature_tables(tmp_path: Path) -> None:
    manifest, lock_path = _copy("pypi-source-deps", tmp_path)
    manifest.write_text(
        manifest.read_text(encoding="utf-8")
        + '\n[target.linux-64.pypi-dependencies]\nnot-locked-anywhere = "*"\n'
        + '\n[target.win-64.dependencies]\nwindows-only-thing = "*"\n',
        encoding="utf-8",
    )
    message = _stale(manifest, lock_path, "linux-64")
    assert "not-locked-anywhere ([target.linux-64.pypi-dependencies]: not locked)" in message
    assert "windows-only-thing" not in message  # not for this platform
    assert "windows-only-thing ([target.win-64.dependencies]: not locked)" in _stale(
        manifest, lock_path, "win-64"
    )


def test_pyproject_project_dependencies_count(tmp_path: Path) -> None:
    manifest, lock_path = _copy("docker", tmp_path)
    text = manifest.read_text(encoding="utf-8")
    assert 'requires-python = ">=3.12"\n' in text
    manifest.write_text(
        text.replace(
            'requires-python = ">=3.12"\n',
            'requires-python = ">=3.12"\n'
            'dependencies = ["surely-not-locked>=1", "win-only; sys_platform == \'win32\'"]\n',
        ),
        encoding="utf-8",
    )
    message = _stale(manifest, lock_path, "linux-64")
    assert "surely-not-locked ([project] dependencies: not locked)" in message
    assert "win-only" not in message  # markers are not judged here


def test_an_environment_the_manifest_does_not_define(tmp_path: Path) -> None:
    manifest, _lock = _copy("docker", tmp_path)
    with pytest.raises(WorkspaceError, match="defines no environment 'nope'"):
        manifest_dependencies(manifest, "nope", "linux-64")


@pytest.mark.parametrize(
    ("selector", "subdir", "expected"),
    [
        ("linux-64", "linux-64", True),
        ("linux", "linux-aarch64", True),
        ("unix", "osx-arm64", True),
        ("unix", "win-64", False),
        ("win", "win-64", True),
        ("osx", "linux-64", False),
        ("linux-64", "linux-aarch64", False),
    ],
)
def test_target_selectors(selector: str, subdir: str, expected: bool) -> None:
    assert selector_matches(selector, subdir) is expected


def test_environment_features() -> None:
    pixi = {
        "environments": {
            "test": ["test"],
            "lint": {"features": ["lint"], "no-default-feature": True},
            "prod": {"features": ["prod"], "solve-group": "x"},
        }
    }
    assert environment_features(pixi, "default") == [""]
    assert environment_features(pixi, "test") == ["", "test"]
    assert environment_features(pixi, "lint") == ["lint"]
    assert environment_features(pixi, "prod") == ["", "prod"]
    assert environment_features(pixi, "missing") is None
