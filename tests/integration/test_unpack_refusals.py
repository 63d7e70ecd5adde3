"""unpack refuses bad packs and unfit machines with one clear error, and writes nothing:
every refusal leaves the whole temporary tree exactly as it was."""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from testworld import hostile
from testworld.layout import World
from testworld.packdir import PackDir, build_pack_dir, make_wheel

from pixi_pack_src.cli import run as cli_run
from pixi_pack_src.errors import EXIT_ERROR, ArchiveError, PackFormatError, PixiPackSrcError
from pixi_pack_src.install.virtual_packages import VirtualPackageError
from pixi_pack_src.reporter import NullReporter
from pixi_pack_src.unpack import STDIN_LABEL, UnpackOptions, UnpackResult, unpack
from pixi_pack_src.wheels import WheelCompatibilityError

pytestmark = pytest.mark.integration

SPECS = ("python", "chain-a", "sysdep")


@pytest.fixture(scope="module")
def good(world: World, tmp_path_factory: pytest.TempPathFactory) -> PackDir:
    """python, chain-a (+ chain-b, chain-c), sysdep (needs __glibc), one wheel; lock glibc 2.28."""
    return build_pack_dir(
        world, tmp_path_factory.mktemp("good") / "pack", specs=SPECS, wheels=("worldpkg-a",)
    )


@pytest.fixture(scope="module")
def plain(world: World, tmp_path_factory: pytest.TempPathFactory) -> PackDir:
    """The same content as a plain format-1 pack (no pixi-pack-src.json)."""
    return build_pack_dir(
        world,
        tmp_path_factory.mktemp("plain") / "pack",
        specs=SPECS,
        wheels=("worldpkg-a",),
        provenance=False,
    )


def _snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every path under ``root`` (links not followed): mode, and size and mtime of files.

    (A directory's own mtime changes when a child is created and removed again.)
    """
    out: dict[str, tuple[int, int, int]] = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs:
            path = Path(directory) / name
            out[str(path)] = (path.lstat().st_mode, 0, 0)
        for name in files:
            path = Path(directory) / name
            st = path.lstat()
            out[str(path)] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


Refuse = Callable[..., PixiPackSrcError]


@pytest.fixture
def refused(tmp_path: Path) -> Iterator[Refuse]:
    """``refused(pack, exc_type, **options)``: unpack into ``tmp_path/out`` must raise
    ``exc_type``, and nothing under the temporary root may change (checked after the test)."""
    root = tmp_path.parent
    snapshots: list[dict[str, tuple[int, int, int]]] = []

    def check(pack: Path, kind: type[PixiPackSrcError], **options: object) -> PixiPackSrcError:
        snapshots.append(_snapshot(root))
        with pytest.raises(kind) as info:
            unpack(
                UnpackOptions(pack=pack, output_dir=tmp_path / "out", **options),  # type: ignore[arg-type]
                reporter=NullReporter(),
            )
        assert _snapshot(root) == snapshots[-1]
        assert info.value.exit_code == EXIT_ERROR
        return info.value

    yield check
    assert not (tmp_path / "out").exists()


def test_tampered_package(good: PackDir, tmp_path: Path, refused: Refuse) -> None:
    tar, member = hostile.tampered_package(good.root, tmp_path / "t.tar")
    err = refused(tar, ArchiveError)
    assert str(err).startswith(
        f"sha256 mismatch for {member} in {tar}: pixi-pack-src.json records "
    )
    assert err.hint == "the archive is damaged or was tampered with; do not install it"


def test_tampered_package_with_forged_provenance(
    good: PackDir, tmp_path: Path, refused: Refuse
) -> None:
    tar, member = hostile.tampered_package(good.root, tmp_path / "t.tar", update_provenance=True)
    err = refused(tar, ArchiveError)
    assert str(err).startswith(f"sha256 mismatch for {member} in {tar}: repodata.json records ")


def test_tampered_package_in_a_plain_pack(plain: PackDir, tmp_path: Path, refused: Refuse) -> None:
    tar, member = hostile.tampered_package(plain.root, tmp_path / "t.tar")
    err = refused(tar, ArchiveError)
    assert str(err).startswith(f"sha256 mismatch for {member} in {tar}: repodata.json records ")


def test_tampered_package_on_stdin(good: PackDir, tmp_path: Path) -> None:
    tar, member = hostile.tampered_package(good.root, tmp_path / "t.tar")
    before = _snapshot(tmp_path.parent)
    with pytest.raises(ArchiveError, match=f"sha256 mismatch for {member} in {STDIN_LABEL}"):
        unpack(
            UnpackOptions(pack="-", output_dir=tmp_path / "out"),
            reporter=NullReporter(),
            stdin=io.BytesIO(tar.read_bytes()),
        )
    assert _snapshot(tmp_path.parent) == before


@pytest.mark.parametrize("pack_kind", ["good", "plain"])
def test_repodata_naming_a_missing_file(
    pack_kind: str, good: PackDir, plain: PackDir, tmp_path: Path, refused: Refuse
) -> None:
    source = good if pack_kind == "good" else plain
    tar, ghost = hostile.ghost_repodata_record(source.root, tmp_path / "g.tar")
    subdir, name = ghost.split("/")[1:]
    err = refused(tar, ArchiveError)
    assert str(err) == (
        f"channel/{subdir}/repodata.json in {tar} names {name}, but the archive has no {ghost}"
    )


def test_package_file_removed(good: PackDir, tmp_path: Path, refused: Refuse) -> None:
    tar, victim = hostile.missing_package_file(good.root, tmp_path / "m.tar")
    err = refused(tar, ArchiveError)
    assert f"names {victim.rsplit('/', 1)[1]}, but the archive has no {victim}" in str(err)


def test_unlisted_file(good: PackDir, tmp_path: Path, refused: Refuse) -> None:
    tree = shutil.copytree(good.root, tmp_path / "tree")
    (tree / "notes.txt").write_text("hello")
    tar = hostile.repack(tree, tmp_path / "u.tar")
    err = refused(tar, ArchiveError)
    assert str(err) == f"{tar} holds notes.txt, which pixi-pack-src.json does not list"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"version": "2"}, "Unsupported pixi-pack version: 2"),
        ({"version": 1}, "pixi-pack.json in {tar}: `version` must be a string, got 1"),
        ({"platform": "linux64"}, "pixi-pack.json in {tar}: `platform` 'linux64' is not a conda"),
    ],
)
def test_bad_metadata(
    fields: dict[str, Any], message: str, good: PackDir, tmp_path: Path, refused: Refuse
) -> None:
    tar = hostile.with_metadata(good.root, tmp_path / "w.tar", **fields)
    err = refused(tar, PackFormatError)
    assert str(err).startswith(message.format(tar=tar))


def test_wrong_platform(good: PackDir, tmp_path: Path, refused: Refuse) -> None:
    tar = hostile.with_metadata(good.root, tmp_path / "w.tar", platform="win-64")
    err = refused(tar, PackFormatError)
    assert str(err) == (
        f"The pack was created for a different platform: {tar} is for win-64, "
        "this machine is linux-64"
    )
    # Turning the check off does not make an inconsistent pack acceptable.
    err = refused(tar, ArchiveError, platform_check=False)
    assert str(err) == (
        f"{tar} is inconsistent: pixi-pack.json says win-64, pixi-pack-src.json says linux-64"
    )


def test_glibc_older_than_the_lock(
    good: PackDir, tmp_path: Path, refused: Refuse, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "__glibc=2.28=0" in good.virtual_packages
    monkeypatch.setenv("CONDA_OVERRIDE_GLIBC", "2.5")
    err = refused(good.root, VirtualPackageError)
    assert str(err) == (
        f"this machine has __glibc 2.5, but the pack's lock assumed __glibc 2.28 (at least) "
        f"in {good.root}"
    )
    assert err.hint is not None
    assert "CONDA_OVERRIDE_GLIBC=2.28" in err.hint


def test_glibc_too_old_for_a_package_of_a_plain_pack(
    plain: PackDir, tmp_path: Path, refused: Refuse, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONDA_OVERRIDE_GLIBC", "2.5")
    sysdep = plain.record("sysdep")
    err = refused(plain.root, VirtualPackageError)
    assert str(err) == (
        f"sysdep 1.0.0 ({sysdep.build}) requires `__glibc >=2.17,<3.0.a0`, "
        "but this machine has __glibc 2.5"
    )


def test_the_virtual_package_check_can_be_turned_off(
    good: PackDir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONDA_OVERRIDE_GLIBC", "2.5")
    result = unpack(
        UnpackOptions(pack=good.root, output_dir=tmp_path / "o", virtual_package_check=False),
        reporter=NullReporter(),
    )
    assert isinstance(result, UnpackResult)
    assert (result.environment / "bin" / "sysdep").is_file()


def test_escaping_wheel(good: PackDir, tmp_path: Path, refused: Refuse) -> None:
    tar, _ = hostile.with_escaping_wheel(good.root, tmp_path / "e.tar")
    err = refused(tar, WheelCompatibilityError)
    assert str(err) == (
        "refusing evil-1.0-py3-none-any.whl: member '../../../escaped_by_wheel.py' leaves its "
        "directory ('..')"
    )
    assert not list(tmp_path.parent.parent.glob("**/escaped_by_wheel.py"))


def test_wheel_for_another_python(world: World, tmp_path: Path, refused: Refuse) -> None:
    wheel = make_wheel(tmp_path / "w", "newer", tag="cp312-cp312-manylinux_2_17_x86_64")
    pack = build_pack_dir(world, tmp_path / "p", specs=("python",), wheels=(), extra_wheels=[wheel])
    python = pack.record("python").version
    err = refused(pack.root, WheelCompatibilityError)
    assert str(err) == (
        f"{wheel.name} (cp312-cp312-manylinux_2_17_x86_64) cannot be installed by the "
        f"environment's python {python} on linux-64 (computed from its record)"
    )


def test_wheel_requiring_a_newer_python(world: World, tmp_path: Path, refused: Refuse) -> None:
    wheel = make_wheel(tmp_path / "w", "future", requires_python=">=3.99")
    pack = build_pack_dir(world, tmp_path / "p", specs=("python",), wheels=(), extra_wheels=[wheel])
    err = refused(pack.root, WheelCompatibilityError)
    python = pack.record("python").version
    assert str(err) == (f"{wheel.name} requires python >=3.99, the environment has python {python}")


def test_wheels_without_python(world: World, tmp_path: Path, refused: Refuse) -> None:
    pack = build_pack_dir(world, tmp_path / "p", specs=("chain-a",), wheels=("worldpkg-a",))
    err = refused(pack.root, PixiPackSrcError)
    assert str(err).startswith("No python record found")


def test_cli_prints_one_error_and_a_hint(
    good: PackDir, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tar, member = hostile.tampered_package(good.root, tmp_path / "t.tar")
    code = cli_run(["unpack", str(tar), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err.splitlines()
    assert code == EXIT_ERROR
    assert err[-2].startswith(f"error: sha256 mismatch for {member} in {tar}")
    assert err[-1] == "help: the archive is damaged or was tampered with; do not install it"
    assert not (tmp_path / "out").exists()
