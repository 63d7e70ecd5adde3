"""World packages install with rattler.install and work at any prefix."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from testworld.install import install_specs, run_in
from testworld.layout import World

pytestmark = pytest.mark.integration

IMPORT_CHECK = "import sys, ssl, sqlite3; print(sys.prefix)"


@pytest.fixture(scope="module")
def installed(world: World, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One environment with the interesting packages, installed once for this module."""
    prefix = tmp_path_factory.mktemp("env") / "prefix"
    install_specs(
        world, ["python", "relocme", "libgreet", "worldcli", "pyworld-plugins", "withlinks"], prefix
    )
    return prefix


def test_python_runs_from_the_prefix(installed: Path) -> None:
    out = run_in(installed, [str(installed / "bin" / "python"), "-c", IMPORT_CHECK])
    assert out.stdout.strip() == str(installed)


def test_python_runs_from_a_moved_copy(installed: Path, tmp_path: Path) -> None:
    moved = tmp_path / "elsewhere" / "env"
    shutil.copytree(installed, moved, symlinks=True)
    out = run_in(moved, [str(moved / "bin" / "python"), "-c", IMPORT_CHECK])
    assert out.stdout.strip() == str(moved)


def test_relocation_package_prints_its_new_prefix(installed: Path) -> None:
    assert run_in(installed, [str(installed / "bin" / "relocme")]).stdout == f"{installed}\n"
    assert (installed / "etc" / "relocme.conf").read_text() == f"prefix={installed}\n"
    assert run_in(installed, [str(installed / "bin" / "relocme-sh")]).stdout == f"{installed}\n"


def test_gcc_cli_runs_with_its_shared_library(installed: Path) -> None:
    out = run_in(installed, [str(installed / "bin" / "greet"), "tests"])
    assert out.stdout == "hello tests from libgreet 2.1.0\n"
    assert (installed / "lib" / "libgreet.so").resolve().name == "libgreet.so.2"


def test_noarch_python_entry_point_and_imports(installed: Path) -> None:
    assert run_in(installed, [str(installed / "bin" / "worldcli"), "x"]).stdout == (
        "worldcli 1.0.0 x\n"
    )
    code = "import pyworld_plugins; print(pyworld_plugins.hello())"
    out = run_in(installed, [str(installed / "bin" / "python"), "-c", code])
    assert out.stdout == "plugins 0.1.0 on hello from pyworld 0.3.0\n"


def test_symlinks_survive_install(installed: Path) -> None:
    assert run_in(installed, [str(installed / "bin" / "wl")]).stdout == "withlinks ok\n"
    assert (installed / "share" / "withlinks-link").is_symlink()
    assert (installed / "share" / "withlinks-link" / "data.txt").read_text() == "data\n"
