from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from pixi_pack_src.wheels import (
    WheelCompatibilityError,
    check_wheel_for_target,
    is_pure,
    platform_tags,
    requires_python,
)


def _wheel(tmp_path: Path, name: str, requires: str | None = None) -> Path:
    path = tmp_path / name
    dist = name.split("-")[0] + "-" + name.split("-")[1] + ".dist-info"
    meta = "Metadata-Version: 2.1\nName: x\nVersion: 1.0\n"
    if requires:
        meta += f"Requires-Python: {requires}\n"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{dist}/METADATA", meta + "\n")
    return path


def test_linux_tags_are_bounded_by_the_locked_glibc() -> None:
    tags = platform_tags("linux-64", ["__unix=0=0", "__glibc=2.28"])
    assert tags[0] == "manylinux_2_28_x86_64"
    assert "manylinux2014_x86_64" in tags
    assert "manylinux_2_29_x86_64" not in tags
    assert tags[-1] == "linux_x86_64"


def test_default_platform_tags() -> None:
    assert platform_tags("linux-aarch64")[0] == "manylinux_2_17_aarch64"
    assert platform_tags("osx-arm64")[0] == "macosx_11_0_arm64"
    assert platform_tags("win-64") == ["win_amd64"]
    assert platform_tags("emscripten-wasm32") == []


def test_pure_wheel_fits_every_target(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path, "pkg-1.0-py3-none-any.whl")
    assert is_pure(wheel.name)
    for subdir in ("linux-64", "osx-arm64", "win-64"):
        check_wheel_for_target(wheel, python_version="3.11.7", subdir=subdir)
    check_wheel_for_target(wheel, python_version=None, subdir="linux-64")


def test_native_wheel_for_another_platform_is_refused(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path, "pkg-1.0-cp311-cp311-win_amd64.whl")
    check_wheel_for_target(wheel, python_version="3.11.1", subdir="win-64")
    with pytest.raises(
        WheelCompatibilityError, match=r"cannot be installed by python 3.11.1 on linux-64"
    ):
        check_wheel_for_target(wheel, python_version="3.11.1", subdir="linux-64")
    with pytest.raises(WheelCompatibilityError, match=r"python 3\.12\.0 on win-64"):
        check_wheel_for_target(wheel, python_version="3.12.0", subdir="win-64")
    with pytest.raises(WheelCompatibilityError, match="needs a python"):
        check_wheel_for_target(wheel, python_version=None, subdir="win-64")


def test_manylinux_newer_than_the_lock_is_refused(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path, "pkg-1.0-cp311-cp311-manylinux_2_34_x86_64.whl")
    with pytest.raises(WheelCompatibilityError):
        check_wheel_for_target(
            wheel, python_version="3.11.7", subdir="linux-64", virtual_packages=["__glibc=2.28"]
        )
    check_wheel_for_target(
        wheel, python_version="3.11.7", subdir="linux-64", virtual_packages=["__glibc=2.35"]
    )


def test_requires_python(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path, "pkg-1.0-py3-none-any.whl", requires=">=3.12")
    assert requires_python(wheel) == ">=3.12"
    with pytest.raises(
        WheelCompatibilityError, match=r"requires python >=3.12, the environment has 3.11.7"
    ):
        check_wheel_for_target(wheel, python_version="3.11.7", subdir="linux-64")
    check_wheel_for_target(wheel, python_version="3.12.1", subdir="linux-64")


def test_not_a_wheel(tmp_path: Path) -> None:
    bad = tmp_path / "pkg-1.0-py3-none-any.whl"
    bad.write_bytes(b"not a zip")
    with pytest.raises(WheelCompatibilityError, match="not a valid wheel"):
        requires_python(bad)
