"""Virtual packages: parsing, host detection with overrides, lock floors, package depends."""

from __future__ import annotations

import pytest
from rattler import BuildString, PackageRecord

from pixi_pack_src.errors import EXIT_ERROR
from pixi_pack_src.install.virtual_packages import (
    Virtual,
    VirtualPackageError,
    check_depends,
    check_locked,
    detect_host,
    parse_virtual,
)

HOST = {
    "__unix": Virtual("__unix", "0"),
    "__linux": Virtual("__linux", "6.1.0"),
    "__glibc": Virtual("__glibc", "2.36"),
    "__archspec": Virtual("__archspec", "1", "x86_64_v3"),
}


def _record(name: str, depends: list[str]) -> PackageRecord:
    return PackageRecord(name, "1.0", BuildString("h0_0"), 0, "linux-64", depends=depends)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("__glibc=2.28", Virtual("__glibc", "2.28", "0")),
        ("__unix=0=0", Virtual("__unix", "0", "0")),
        ("__archspec=1=x86_64", Virtual("__archspec", "1", "x86_64")),
        ("__cuda", Virtual("__cuda", "0", "0")),
        (" __OSX=13.0 ", Virtual("__osx", "13.0", "0")),
    ],
)
def test_parse_virtual(spec: str, expected: Virtual) -> None:
    assert parse_virtual(spec) == expected
    assert str(expected).startswith(expected.name + "=")


@pytest.mark.parametrize("spec", ["glibc=2.28", "__glibc=", "__a=1=2=3", ""])
def test_parse_virtual_refuses(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_virtual(spec)


def test_detect_host_honours_conda_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONDA_OVERRIDE_GLIBC", "2.5")
    monkeypatch.setenv("CONDA_OVERRIDE_CUDA", "12.4")
    host = detect_host()
    assert host["__glibc"] == Virtual("__glibc", "2.5", "0")
    assert host["__cuda"].version == "12.4"
    assert "__unix" in host
    monkeypatch.setenv("CONDA_OVERRIDE_GLIBC", "")  # conda: empty means "not there"
    assert "__glibc" not in detect_host()


def test_locked_floor_met() -> None:
    locked = ["__unix=0=0", "__linux=4.18", "__glibc=2.28", "__archspec=1=x86_64_v4"]
    assert check_locked(locked, HOST, source="env.tar") == []


def test_glibc_older_than_the_lock_names_both_versions_and_the_override() -> None:
    host = {**HOST, "__glibc": Virtual("__glibc", "2.5")}
    with pytest.raises(VirtualPackageError) as info:
        check_locked(["__glibc=2.28"], host, source="env.tar")
    err = info.value
    assert str(err) == (
        "this machine has __glibc 2.5, but the pack's lock assumed __glibc 2.28 (at least) "
        "in env.tar"
    )
    assert err.hint is not None
    assert "glibc >= 2.28" in err.hint
    assert "CONDA_OVERRIDE_GLIBC=2.28" in err.hint
    assert "--virtual-package-check off" in err.hint
    assert err.exit_code == EXIT_ERROR


def test_missing_cuda_and_old_kernel() -> None:
    with pytest.raises(VirtualPackageError, match="this machine has no __cuda, but") as info:
        check_locked(["__cuda=12.0"], HOST, source="p")
    assert info.value.hint is not None
    assert "CONDA_OVERRIDE_CUDA=12.0" in info.value.hint
    with pytest.raises(VirtualPackageError, match=r"has __linux 6.1.0, but .* __linux 7.0"):
        check_locked(["__linux=7.0"], HOST, source="p")


def test_malformed_locked_entries_only_warn() -> None:
    assert check_locked(["glibc", "__glibc=x y"], HOST, source="p") == [
        "p: ignoring the malformed virtual package 'glibc'",
        "p: ignoring '__glibc=x y': not a version",
    ]


def test_package_depends_on_a_newer_glibc() -> None:
    records = [_record("ok", ["python >=3.8", "__glibc >=2.17,<3.0.a0", "__unix"])]
    check_depends(records, HOST)
    old = {**HOST, "__glibc": Virtual("__glibc", "2.12")}
    with pytest.raises(VirtualPackageError) as info:
        check_depends(records, old)
    assert str(info.value) == (
        "ok 1.0 (h0_0) requires `__glibc >=2.17,<3.0.a0`, but this machine has __glibc 2.12"
    )
    assert info.value.hint is not None
    assert "CONDA_OVERRIDE_GLIBC=2.17" in info.value.hint


def test_package_depends_on_absent_virtuals() -> None:
    with pytest.raises(VirtualPackageError, match="requires `__cuda`, but this machine has no"):
        check_depends([_record("gpu", ["__cuda"])], HOST)
    with pytest.raises(VirtualPackageError, match="requires `__win`"):
        check_depends([_record("winonly", ["__win"])], HOST)
    # Names we cannot judge (archspec levels, unknown virtuals) are left alone.
    check_depends([_record("fast", ["__archspec 1 x86_64_v4", "__future >=1"])], HOST)
