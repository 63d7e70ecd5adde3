"""Pins for the py-rattler 0.28 bugs lock/ works around (see the docstrings of lock/entries.py
and lock/raw.py).

Each test asserts that the bug is still there. When one fails, upstream fixed it: simplify the
named workaround in ``pixi_pack_src/lock/entries.py`` or ``lock/raw.py`` and delete the test.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rattler import LockFile
from rattler.lock import CondaLockedBinaryPackage, PypiLockedPackage

from pixi_pack_src.lock.lockfile import load_lock

DATA = Path(__file__).resolve().parent.parent / "data"
SAMPLES = DATA / "lock-samples"


def _packages(path: Path, env: str, platform: str) -> list[object]:
    lock_file = LockFile.from_path(path.resolve())
    environment = lock_file.environment(env)
    assert environment is not None
    for plat, packages in environment.packages_by_platform().items():
        if plat.name == platform:
            return list(packages)
    raise AssertionError(platform)


def test_hashes_property_raises_on_unhashed_entry() -> None:
    """Workaround `_pypi_hashes`: `.hashes` wraps None and `.sha256` raises AttributeError."""
    packages = _packages(SAMPLES / "v7-pypi-wheel-and-local-path.yml", "default", "linux-64")
    local = next(p for p in packages if isinstance(p, PypiLockedPackage) and p.name == "local-pkg")
    assert local._package.hashes is None
    with pytest.raises(AttributeError):
        _ = local.hashes.sha256  # type: ignore[union-attr]


def test_repo_data_record_fails_for_path_locations() -> None:
    """Workaround `_binary_record`: relative binary locations cannot make a RepoDataRecord."""
    packages = _packages(DATA / "locks" / "v7-pypi-kinds.lock", "default", "linux-64")
    local = next(p for p in packages if isinstance(p, CondaLockedBinaryPackage) and p.name == "foo")
    with pytest.raises(Exception, match="not an absolute path"):
        local.repo_data_record()


def test_conda_repodata_records_skip_source_packages() -> None:
    """Never count with `conda_repodata_records()`: it drops source packages silently."""
    path = SAMPLES / "v7-pixi-real-partial-source-variants.lock"
    environment = LockFile.from_path(path.resolve()).environment("default")
    assert environment is not None
    records = environment.conda_repodata_records()["linux-64"]
    assert len(records) == 22
    assert len(_packages(path, "default", "linux-64")) == 24
    ours = load_lock(path).select("default", "linux-64")
    assert (len(ours.conda), len(ours.sources)) == (22, 2)


def test_environment_platform_order_is_not_the_file_order() -> None:
    """Workaround `_ordered_platforms`: `Environment.platforms()` comes in (random) hash order."""
    path = (SAMPLES / "v7-pixi-real-workspace-variants.lock").resolve()
    file_order = ["linux-64", "osx-64", "osx-arm64", "win-64"]
    seen_other = False
    for _ in range(100):
        lock_file = LockFile.from_path(path)
        assert [p.name for p in lock_file.platforms()] == file_order
        for _name, env in lock_file.environments():
            if [p.name for p in env.platforms()] != file_order:
                seen_other = True
        if seen_other:
            break
    assert seen_other, "Environment.platforms() now keeps the file order: simplify the workaround"
    assert [p.name for p in load_lock(path).platforms("py311")] == file_order
