"""workspace.py: MANIFEST_PATH resolution and build-backend specs from package manifests."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixi_pack_src.errors import LockfileError, UsageError, WorkspaceError
from pixi_pack_src.lock.workspace import (
    BackendSpec,
    Workspace,
    locate_workspace,
    read_build_backend,
)

PIXI_TOML = '[workspace]\nname = "ws"\nchannels = ["conda-forge"]\nplatforms = ["linux-64"]\n'
PYPROJECT = (
    '[project]\nname = "ws"\nversion = "0.1"\n\n[tool.pixi.workspace]\nchannels = []\n'
    'platforms = ["linux-64"]\n'
)


def _ws(root: Path, manifest: str | None = "pixi.toml", *, lock: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    if manifest == "pixi.toml":
        (root / "pixi.toml").write_text(PIXI_TOML)
    elif manifest == "pyproject.toml":
        (root / "pyproject.toml").write_text(PYPROJECT)
    if lock:
        (root / "pixi.lock").write_text("version: 7\n")
    return root


def test_directory_with_pixi_toml(tmp_path: Path) -> None:
    root = _ws(tmp_path / "ws")
    assert locate_workspace(root) == Workspace(root, root / "pixi.toml", root / "pixi.lock")


def test_explicit_manifest_files(tmp_path: Path) -> None:
    root = _ws(tmp_path / "a")
    assert locate_workspace(root / "pixi.toml").manifest == root / "pixi.toml"
    other = _ws(tmp_path / "b", "pyproject.toml")
    found = locate_workspace(other / "pyproject.toml")
    assert (found.root, found.manifest) == (other, other / "pyproject.toml")
    assert locate_workspace(other).manifest == other / "pyproject.toml"


def test_pixi_toml_wins_over_pyproject(tmp_path: Path) -> None:
    root = _ws(tmp_path / "ws")
    (root / "pyproject.toml").write_text(PYPROJECT)
    assert locate_workspace(root).manifest == root / "pixi.toml"


def test_pyproject_without_tool_pixi_is_not_a_manifest(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "pyproject.toml").write_text('[project]\nname = "x"\n')
    with pytest.raises(WorkspaceError) as info:
        locate_workspace(root / "pyproject.toml")
    assert "no [tool.pixi] table" in info.value.message
    assert info.value.hint is not None


def test_default_is_the_working_directory_searched_upwards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _ws(tmp_path / "ws")
    deep = root / "src" / "pkg"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert locate_workspace(None) == Workspace(root, root / "pixi.toml", root / "pixi.lock")


def test_package_manifest_is_skipped_for_the_workspace_above(tmp_path: Path) -> None:
    root = _ws(tmp_path / "ws")
    pkg = root / "src" / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "pixi.toml").write_text('[package]\nname = "pkg"\nversion = "0.1"\n')
    assert locate_workspace(pkg).root == root
    assert locate_workspace(pkg / "pixi.toml").manifest == root / "pixi.toml"


def test_lock_without_manifest_and_lock_path(tmp_path: Path) -> None:
    root = _ws(tmp_path / "ws", None)
    assert locate_workspace(root) == Workspace(root, None, root / "pixi.lock")
    assert locate_workspace(root / "pixi.lock") == Workspace(root, None, root / "pixi.lock")
    full = _ws(tmp_path / "full")
    assert locate_workspace(full / "pixi.lock").manifest == full / "pixi.toml"


def test_missing_lock_names_the_manifest_and_the_fix(tmp_path: Path) -> None:
    root = _ws(tmp_path / "ws", lock=False)
    with pytest.raises(LockfileError) as info:
        locate_workspace(root)
    assert info.value.message == f"no pixi.lock next to {root / 'pixi.toml'}"
    assert info.value.hint == f"run `pixi lock` in {root}"


def test_missing_path_and_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist") as missing:  # exit 2, see README
        locate_workspace(tmp_path / "nope")
    assert missing.value.exit_code == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(WorkspaceError, match=r"no pixi.toml, pyproject.toml with \[tool.pixi\]"):
        locate_workspace(empty)


def test_broken_toml_names_the_file(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "pixi.toml").write_text("[workspace\nname = 1\n")
    with pytest.raises(WorkspaceError) as info:
        locate_workspace(root)
    assert info.value.message.startswith(f"cannot parse {root / 'pixi.toml'}:")
    assert "line 1" in info.value.message


# -- build backends ----------------------------------------------------------------------------


def test_backend_table_with_exact_pin(tmp_path: Path) -> None:
    (tmp_path / "pixi.toml").write_text(
        '[package]\nname = "root"\nversion = "0.1.0"\n\n'
        "[package.build.backend]\n"
        'name = "pixi-build-python"\n'
        'version = "==0.5.0"\n'
        'channels = ["https://prefix.dev/pixi-build-backends", "https://prefix.dev/conda-forge"]\n'
    )
    spec = read_build_backend(tmp_path)
    assert spec == BackendSpec(
        name="pixi-build-python",
        version="==0.5.0",
        channels=("https://prefix.dev/pixi-build-backends", "https://prefix.dev/conda-forge"),
        manifest=tmp_path / "pixi.toml",
        version_line=7,
        backend_line=5,
    )
    assert spec.is_pinned
    assert spec.where == f"{tmp_path / 'pixi.toml'}:7"


def test_inline_backend_with_range_and_deprecated_channels(tmp_path: Path) -> None:
    manifest = tmp_path / "pixi.toml"
    manifest.write_text(
        '[workspace]\nchannels = []\nplatforms = []\n\n[package]\nname = "x"\n\n'
        "[package.build]\n"
        'channels = ["https://prefix.dev/conda-forge"]\n'
        'backend = { name = "pixi-build-cmake", version = ">=0.3" }\n'
    )
    spec = read_build_backend(manifest)
    assert spec is not None
    assert (spec.name, spec.version, spec.version_line, spec.backend_line) == (
        "pixi-build-cmake",
        ">=0.3",
        10,
        10,
    )
    assert spec.channels == ("https://prefix.dev/conda-forge",)
    assert spec.deprecated_channels
    assert not spec.is_pinned


def test_backend_without_version_and_workspace_inherited(tmp_path: Path) -> None:
    (tmp_path / "pixi.toml").write_text(
        '[package.build.backend]\nname = "pixi-build-rattler-build"\n'
    )
    spec = read_build_backend(tmp_path)
    assert spec is not None
    assert (spec.version, spec.version_line, spec.backend_line, spec.is_pinned) == (
        None,
        None,
        1,
        False,
    )
    (tmp_path / "pixi.toml").write_text(
        '[package.build]\nbackend = { name = "pixi-build-python", workspace = true }\n'
    )
    inherited = read_build_backend(tmp_path)
    assert inherited is not None
    assert inherited.workspace
    assert inherited.backend_line == 2


@pytest.mark.parametrize(
    ("version", "pinned"),
    [
        ("==0.5.0", True),
        ("== 0.5.0", True),
        ("==0.5.*", False),
        (">=0.5,<0.6", False),
        ("0.5.0", False),
    ],
)
def test_is_pinned(version: str, pinned: bool) -> None:
    spec = BackendSpec(name="b", version=version, channels=(), manifest=Path("x"), version_line=1)
    assert spec.is_pinned is pinned


def test_pyproject_backend(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "p"\n\n[tool.pixi.package.build.backend]\n'
        'name = "pixi-build-python"\nversion = "==0.4.2"\n'
    )
    spec = read_build_backend(tmp_path)
    assert spec is not None
    assert (spec.name, spec.version, spec.version_line, spec.manifest) == (
        "pixi-build-python",
        "==0.4.2",
        6,
        tmp_path / "pyproject.toml",
    )


def test_no_backend_cases(tmp_path: Path) -> None:
    assert read_build_backend(tmp_path) is None  # nothing (e.g. only a recipe.yaml)
    (tmp_path / "recipe.yaml").write_text("package: {name: x}\n")
    assert read_build_backend(tmp_path) is None
    (tmp_path / "pixi.toml").write_text('[package]\nname = "x"\n')
    assert read_build_backend(tmp_path) is None
    with pytest.raises(WorkspaceError, match="does not exist"):
        read_build_backend(tmp_path / "missing.toml")


def test_backend_without_name(tmp_path: Path) -> None:
    (tmp_path / "pixi.toml").write_text('[package.build.backend]\nversion = "==1"\n')
    with pytest.raises(WorkspaceError, match="has no `name`"):
        read_build_backend(tmp_path)
