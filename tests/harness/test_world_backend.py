"""The world's in-tree PEP 517 backend builds deterministic wheels and sdists."""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path

import pytest
from testworld.pep517_backend import Project, sdist_from, wheel_from
from testworld.pypi import DEFS, flavor_patch_text, write_project


def test_wheel_and_sdist_are_byte_identical_across_builds(tmp_path: Path) -> None:
    tree = write_project(DEFS["worldpkg-c"], tmp_path / "src")
    one = wheel_from(tree, tmp_path / "one")
    two = wheel_from(tree, tmp_path / "two")
    assert one == two == "worldpkg_c-0.5.0-py3-none-any.whl"
    assert (tmp_path / "one" / one).read_bytes() == (tmp_path / "two" / two).read_bytes()
    s1, s2 = sdist_from(tree, tmp_path / "s1"), sdist_from(tree, tmp_path / "s2")
    assert (tmp_path / "s1" / s1).read_bytes() == (tmp_path / "s2" / s2).read_bytes()


def test_source_date_epoch_sets_timestamps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = write_project(DEFS["worldpkg-a"], tmp_path / "src")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1600000000")
    with zipfile.ZipFile(tmp_path / "w" / wheel_from(tree, tmp_path / "w")) as zf:
        assert {i.date_time[:3] for i in zf.infolist()} == {(2020, 9, 13)}
    with tarfile.open(tmp_path / "s" / sdist_from(tree, tmp_path / "s")) as tar:
        assert {m.mtime for m in tar.getmembers()} == {1600000000}


def test_metadata_carries_requirements_and_extras(tmp_path: Path) -> None:
    project = Project(write_project(DEFS["worldpkg-c"], tmp_path / "src"))
    assert project.metadata().splitlines()[3:] == [
        "Summary: worldpkg-c: a project of the offline test world",
        "Requires-Python: >=3.9",
        "Provides-Extra: a",
        'Requires-Dist: worldpkg-a>=1.0; extra == "a"',
    ]


def test_dynamic_version_comes_from_the_version_file(tmp_path: Path) -> None:
    tree = write_project(DEFS["worldpkg-local"], tmp_path / "src")
    (tree / "VERSION").write_text("0.9.5\n")
    assert wheel_from(tree, tmp_path / "w") == "worldpkg_local-0.9.5-py3-none-any.whl"


def test_flavor_project_fails_until_patched_and_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = write_project(DEFS["worldpkg-flavor"], tmp_path / "src")
    monkeypatch.setenv("WORLDPKG_FLAVOR", "mint")
    with pytest.raises(RuntimeError, match="'worldpkg_flavour' not found"):
        wheel_from(tree, tmp_path / "w")
    assert '-packages = ["worldpkg_flavour"]' in flavor_patch_text()
    text = (tree / "pyproject.toml").read_text()
    (tree / "pyproject.toml").write_text(text.replace("worldpkg_flavour", "worldpkg_flavor"))
    monkeypatch.delenv("WORLDPKG_FLAVOR")
    with pytest.raises(RuntimeError, match="set WORLDPKG_FLAVOR"):
        wheel_from(tree, tmp_path / "w")
    monkeypatch.setenv("WORLDPKG_FLAVOR", "mint")
    with zipfile.ZipFile(tmp_path / "w" / wheel_from(tree, tmp_path / "w")) as zf:
        assert zf.read("worldpkg_flavor/_flavor.py") == b"FLAVOR = 'mint'\n"
