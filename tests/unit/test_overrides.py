"""Per-package build overrides: manifest table, --overrides DIR, variants (build.overrides)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from pixi_pack_src.builders.wheel.overrides import (
    Overrides,
    load_overrides,
    read_manifest_table,
    unused_packages,
    variant_keys,
)
from pixi_pack_src.errors import ConfigError


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    _write(tmp_path / "ws" / "patches" / "base.patch", "base\n")
    _write(tmp_path / "ws" / "patches" / "osx.patch", "osx\n")
    return _write(
        tmp_path / "ws" / "pixi.toml",
        """\
[workspace]
name = "x"

[tool.pixi-pack-src.overrides.Foo_Bar]
env = { CFLAGS = "-O2", LEVEL = 3, ON = true }
patches = ["patches/base.patch"]
config-settings = { "--build-option" = ["--quiet", "--x"], mode = "release" }

[tool.pixi-pack-src.overrides.Foo_Bar.variants.osx]
patches = ["patches/osx.patch"]
env = { CFLAGS = "-O3" }

[tool.pixi-pack-src.overrides.Foo_Bar.variants.osx-arm64]
env = { ARCH = "arm64" }

[tool.pixi-pack-src.overrides.Foo_Bar.variants."py3.12"]
config-settings = { mode = "debug" }
""",
    )


def _load(manifest: Path, overrides_dir: Path | None = None) -> Overrides:
    return load_overrides(
        manifest_table=read_manifest_table(manifest),
        manifest_path=manifest,
        overrides_dir=overrides_dir,
    )


def test_manifest_base_only_on_linux(manifest: Path) -> None:
    ov = _load(manifest).for_package("foo-bar", subdir="linux-64", python_version="3.11.7")
    assert ov.package == "foo-bar"
    assert dict(ov.env) == {"CFLAGS": "-O2", "LEVEL": "3", "ON": "1"}
    assert [p.label for p in ov.patches] == ["patches/base.patch"]
    assert ov.config_settings_dict() == {"--build-option": ["--quiet", "--x"], "mode": "release"}
    assert ov.origins == ("pixi.toml [tool.pixi-pack-src.overrides.Foo_Bar]",)


def test_variants_apply_from_general_to_specific(manifest: Path) -> None:
    ov = _load(manifest).for_package("FOO.bar", subdir="osx-arm64", python_version="3.12.1")
    assert dict(ov.env) == {"CFLAGS": "-O3", "LEVEL": "3", "ON": "1", "ARCH": "arm64"}
    assert [p.label for p in ov.patches] == ["patches/base.patch", "patches/osx.patch"]
    assert ov.config_settings_dict()["mode"] == "debug"
    assert ov.origins == (
        "pixi.toml [tool.pixi-pack-src.overrides.Foo_Bar]",
        "pixi.toml [tool.pixi-pack-src.overrides.Foo_Bar] [osx]",
        "pixi.toml [tool.pixi-pack-src.overrides.Foo_Bar] [osx-arm64]",
        "pixi.toml [tool.pixi-pack-src.overrides.Foo_Bar] [py3.12]",
    )


def test_variant_keys() -> None:
    assert variant_keys("osx-arm64", "3.12.1") == ["osx", "osx-arm64", "py3.12"]
    assert variant_keys("win-64", None) == ["win", "win-64"]
    assert variant_keys("noarch", "3.11") == ["noarch", "py3.11"]


def test_overrides_dir_comes_after_the_manifest(manifest: Path, tmp_path: Path) -> None:
    odir = tmp_path / "overrides"
    _write(odir / "foo-bar" / "02-second.patch", "2\n")
    _write(odir / "foo-bar" / "01-first.patch", "1\n")
    _write(odir / "foo-bar" / "linux-64" / "10-linux.patch", "l\n")
    _write(
        odir / "foo-bar" / "settings.toml",
        '[env]\nCFLAGS = "-Og"\n[config-settings]\nmode = "dir"\n'
        '[variants.linux-64]\nenv = { LINUX = "yes" }\n',
    )
    _write(odir / "other_pkg" / "x.patch", "x\n")
    ov = _load(manifest, odir).for_package("foo-bar", subdir="linux-64", python_version="3.11")
    assert [p.label for p in ov.patches] == [
        "patches/base.patch",
        "overrides:foo-bar/01-first.patch",
        "overrides:foo-bar/02-second.patch",
        "overrides:foo-bar/linux-64/10-linux.patch",
    ]
    assert dict(ov.env) == {"CFLAGS": "-Og", "LEVEL": "3", "ON": "1", "LINUX": "yes"}
    assert ov.config_settings_dict()["mode"] == "dir"
    other = _load(manifest, odir).for_package("Other.Pkg", subdir="win-64", python_version=None)
    assert [p.label for p in other.patches] == ["overrides:other_pkg/x.patch"]


def test_provenance_digest_and_env_expansion(manifest: Path) -> None:
    ov = _load(manifest).for_package("foo-bar", subdir="linux-64", python_version="3.11")
    sha = hashlib.sha256(b"base\n").hexdigest()
    assert ov.provenance() == {
        "env": {"CFLAGS": "-O2", "LEVEL": "3", "ON": "1"},
        "patches": [{"name": "patches/base.patch", "sha256": sha}],
        "config-settings": {"--build-option": ["--quiet", "--x"], "mode": "release"},
        "from": ["pixi.toml [tool.pixi-pack-src.overrides.Foo_Bar]"],
    }
    first = ov.digest({})
    assert first == ov.digest({"UNRELATED": "1"})
    assert first != _load(manifest).for_package(
        "foo-bar", subdir="osx-64", python_version="3.11"
    ).digest({})
    ov.patches[0].path.write_text("changed\n")
    assert ov.digest({}) != first
    assert Overrides().for_package("x", subdir="linux-64", python_version="3.11").provenance() == {}


def test_env_values_expand_from_the_environment(tmp_path: Path) -> None:
    table = {"overrides": {"p": {"env": {"CFLAGS": "${CFLAGS} -O2", "PRICE": "$$5"}}}}
    ov = load_overrides(manifest_table=table, manifest_path=tmp_path / "pixi.toml").for_package(
        "p", subdir="linux-64", python_version=None
    )
    assert ov.expanded_env({"CFLAGS": "-g"}) == {"CFLAGS": "-g -O2", "PRICE": "$5"}
    assert ov.digest({"CFLAGS": "-g"}) != ov.digest({"CFLAGS": "-g3"})
    assert ov.provenance()["env"] == {"CFLAGS": "${CFLAGS} -O2", "PRICE": "$$5"}


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"overides": {}}, "unknown key 'overides'"),
        ({"overrides": {"p": {"enviroment": {}}}}, "unknown key 'enviroment'"),
        ({"overrides": {"p": {"env": {"1X": "a"}}}}, "not a valid environment variable name"),
        ({"overrides": {"p": {"env": {"X": ["a"]}}}}, "must be a string, not list"),
        ({"overrides": {"p": {"patches": "x.patch"}}}, "must be a list of paths"),
        ({"overrides": {"p": {"patches": ["nope.patch"]}}}, "nope.patch not found"),
        ({"overrides": {"p": {"variants": {"linux64": {}}}}}, "unknown variant 'linux64'"),
        ({"overrides": {"p": {"variants": {"linux": {"variants": {}}}}}}, "unknown key"),
        ({"overrides": {"p": 3}}, "must be a table"),
    ],
)
def test_bad_tables_name_the_file_and_key(
    tmp_path: Path, table: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        load_overrides(manifest_table=table, manifest_path=tmp_path / "pixi.toml")
    assert "pixi.toml" in err.value.message


def test_bad_overrides_dirs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a directory"):
        load_overrides(overrides_dir=tmp_path / "missing")
    _write(tmp_path / "o" / "pkg" / "linux64" / "a.patch", "a\n")
    with pytest.raises(ConfigError, match="unknown variant directory 'linux64'"):
        load_overrides(overrides_dir=tmp_path / "o")
    _write(tmp_path / "o2" / "pkg" / "settings.toml", "env = [")
    with pytest.raises(ConfigError, match=r"cannot parse .*settings\.toml"):
        load_overrides(overrides_dir=tmp_path / "o2")


def test_manifest_without_table_and_unused_names(tmp_path: Path, manifest: Path) -> None:
    plain = _write(tmp_path / "plain" / "pyproject.toml", "[tool.pixi.workspace]\nname = 'x'\n")
    assert read_manifest_table(plain) == {}
    assert load_overrides(manifest_table={}, manifest_path=None).names() == []
    assert unused_packages(_load(manifest), ["Foo-Bar", "zzz"]) == []
    assert unused_packages(_load(manifest), ["zzz"]) == ["foo-bar"]
