"""The one TOML reader: TOML 1.1 on pixi's real manifests, and no other TOML parser in src."""

from __future__ import annotations

import ast
import shutil
import tomllib  # only to prove the specimens need TOML 1.1
from pathlib import Path

import pytest

import pixi_pack_src
from pixi_pack_src import tomlfile
from pixi_pack_src.errors import ConfigError, LockfileError, WorkspaceError
from pixi_pack_src.lock.workspace import locate_workspace, read_build_backend

REAL = Path(__file__).parents[1] / "data" / "pixi-real"
SRC = Path(pixi_pack_src.__file__).parent


def _origin_section(title: str) -> list[str]:
    lines = (REAL / "ORIGIN").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    out: list[str] = []
    for line in lines[start + 1 :]:
        if not line.startswith("  "):
            break
        out.append(line.strip())
    return out


TOML11 = _origin_section("TOML 1.1")
ALL_TOML = sorted(str(p.relative_to(REAL)) for p in REAL.rglob("*.toml"))


def test_origin_names_every_specimen() -> None:
    origin = (REAL / "ORIGIN").read_text(encoding="utf-8")
    assert "repo: https://github.com/prefix-dev/pixi" in origin
    copied = _origin_section("Copied verbatim")
    on_disk = sorted(str(p.relative_to(REAL)) for p in REAL.rglob("*") if p.is_file())
    assert sorted(copied) == [p for p in on_disk if p != "ORIGIN"]
    assert len(TOML11) == 13
    assert "pixi.toml" in TOML11
    assert "examples/pixi-build/conditional-dependencies/pixi.toml" in TOML11


def test_no_tomllib_anywhere_in_src() -> None:
    offenders: list[str] = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module is not None:
                names = [node.module]
            else:
                continue
            if any(n.split(".")[0] in ("tomllib", "toml", "tomlkit") for n in names):
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno}")
            if any(n.split(".")[0] == "tomli" for n in names) and path.name != "tomlfile.py":
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno} (tomli outside tomlfile)")
    assert offenders == []


@pytest.mark.parametrize("name", TOML11)
def test_toml_1_1_specimens_parse(name: str) -> None:
    path = REAL / name
    with pytest.raises(tomllib.TOMLDecodeError):  # the stdlib refuses them: TOML 1.0 only
        tomllib.loads(path.read_text(encoding="utf-8"))
    doc = tomlfile.read(path)
    assert doc  # non-empty document


def test_conditional_dependencies_multiline_inline_table() -> None:
    doc = tomlfile.read(REAL / "examples/pixi-build/conditional-dependencies/pixi.toml")
    assert doc["tasks"]["start"] == {
        "cmd": "cuda_probe",
        "description": "Run the executable built by the [package] section",
    }


@pytest.mark.parametrize("name", ALL_TOML)
def test_every_real_toml_parses(name: str) -> None:
    assert isinstance(tomlfile.read(REAL / name), dict)


@pytest.mark.parametrize(
    "name", [n for n in ALL_TOML if n.endswith(("pixi.toml", "pyproject.toml"))]
)
def test_real_manifests_locate(name: str, tmp_path: Path) -> None:
    """Every real manifest is read: a workspace (with or without its lock), or a package."""
    src = REAL / name
    ws = tmp_path / "ws"
    ws.mkdir()
    shutil.copy(src, ws / src.name)
    if (src.parent / "pixi.lock").is_file():
        shutil.copy(src.parent / "pixi.lock", ws / "pixi.lock")
        assert locate_workspace(ws / src.name).manifest == ws / src.name
        return
    doc = tomlfile.read(src)
    tables = doc.get("tool", {}).get("pixi", {}) if src.name == "pyproject.toml" else doc
    if "workspace" in tables or "project" in tables:  # a workspace: only its lock is missing
        with pytest.raises(LockfileError) as missing:
            locate_workspace(ws / src.name)
        assert missing.value.message == f"no pixi.lock next to {ws / src.name}"
    else:  # a package manifest, or a pyproject.toml without [tool.pixi]
        with pytest.raises(WorkspaceError) as other:
            locate_workspace(ws / src.name)
        assert "cannot parse" not in other.value.message
        assert "is a package manifest" in other.value.message or (
            "is not a pixi manifest" in other.value.message
        )


def test_real_package_backend_in_toml_1_1_manifest(tmp_path: Path) -> None:
    src = REAL / "examples/pixi-build/conditional-dependencies/pixi.toml"
    shutil.copy(src, tmp_path / "pixi.toml")
    spec = read_build_backend(tmp_path)
    assert spec is not None
    assert spec.name.startswith("pixi-build-")


def test_a_file_that_is_not_a_manifest_is_named_as_such(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# A project\n\nSee [docs](docs/).\n", encoding="utf-8")
    with pytest.raises(WorkspaceError) as info:
        locate_workspace(readme)
    assert info.value.message == f"{readme} is not a pixi manifest (neither TOML nor a pixi.lock)"
    assert info.value.hint is not None
    assert "pixi.toml" in info.value.hint
    binary = tmp_path / "archive.bin"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    with pytest.raises(WorkspaceError, match="is not a pixi manifest"):
        locate_workspace(binary)


def test_syntax_error_in_a_manifest_stays_a_syntax_error(tmp_path: Path) -> None:
    (tmp_path / "pixi.toml").write_text("[workspace]\nname = {\n", encoding="utf-8")
    with pytest.raises(WorkspaceError) as info:
        locate_workspace(tmp_path / "pixi.toml")
    assert info.value.message.startswith(f"cannot parse {tmp_path / 'pixi.toml'}: ")
    assert info.value.hint == "fix the TOML syntax (pixi reads TOML 1.1)"


def test_read_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        tomlfile.read(tmp_path / "nope.toml", what="config file")
    assert info.value.message == f"config file {tmp_path / 'nope.toml'} does not exist"
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b'name = "caf\xe9"\n')
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(byte 11\)"):
        tomlfile.read(bad)
