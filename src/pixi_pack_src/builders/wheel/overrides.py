"""Per-package build overrides for sdist/git/tree -> wheel builds (fromager-style).

An override changes how one PyPI package is built: environment variables for the build,
patches applied to the source (in order, ``patch -p1`` semantics, see :mod:`.patch`), and
PEP 517 ``config_settings`` for the backend. Overrides can be narrowed to *variants*: a
platform subdir (``linux-64``), an OS family (``linux``, ``osx``, ``win``) or a Python
(``py3.11``). What was applied is recorded in the archive's provenance.

Two sources, both optional (see ``docs/overrides.md``):

1. the manifest, ``[tool.pixi-pack-src.overrides.<package>]`` in ``pixi.toml`` or
   ``pyproject.toml`` (patch paths relative to the manifest's directory)::

       [tool.pixi-pack-src.overrides.worldpkg-flavor]
       env = { WORLDPKG_FLAVOR = "vanilla" }
       patches = ["patches/fix-package-name.patch"]
       config-settings = { "--build-option" = ["--quiet"] }

       [tool.pixi-pack-src.overrides.worldpkg-flavor.variants.osx-arm64]
       env = { MACOSX_DEPLOYMENT_TARGET = "11.0" }

2. ``--overrides DIR``: ``DIR/<package>/`` holds ``*.patch`` files (applied in name order),
   an optional ``settings.toml`` with the same keys as the manifest table (its patch paths
   relative to ``DIR/<package>/``), and optional ``DIR/<package>/<variant>/*.patch``.

Package names match after normalisation (``Foo_Bar`` == ``foo-bar``). Layers apply in this
order, later ones winning for ``env`` and ``config-settings`` and appending their patches:
manifest, directory; then for each matching variant, most general first (OS family, subdir,
Python), the manifest's and then the directory's. Environment values may refer to the
process environment as ``$NAME`` or ``${NAME}`` (``$$`` is a literal ``$``); the provenance
records them unexpanded, the cache key expanded.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from rattler import Subdir

from pixi_pack_src import tomlfile
from pixi_pack_src.errors import ConfigError
from pixi_pack_src.hashing import file_sha256

SETTINGS_FILE = "settings.toml"
OS_FAMILIES = ("linux", "osx", "win")
_PY_VARIANT = re.compile(r"^py(\d+)\.(\d+)$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_KEYS = frozenset({"env", "patches", "config-settings", "variants"})

ConfigValue = str | tuple[str, ...]


@dataclass(frozen=True)
class PatchRef:
    """A patch file and how it is named in messages and provenance."""

    path: Path
    label: str  # "manifest:patches/x.patch" or "overrides:worldpkg-flavor/01-x.patch"


@dataclass(frozen=True)
class Layer:
    """One table of settings (a package's base or one variant) from one source."""

    origin: str  # where it came from, for messages and provenance
    env: Mapping[str, str] = field(default_factory=dict)
    patches: tuple[PatchRef, ...] = ()
    config_settings: Mapping[str, ConfigValue] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.env or self.patches or self.config_settings)


@dataclass(frozen=True)
class PackageOverride:
    """The merged override for one package on one target (possibly empty)."""

    package: str  # normalised name
    env: Mapping[str, str] = field(default_factory=dict)  # unexpanded
    patches: tuple[PatchRef, ...] = ()
    config_settings: Mapping[str, ConfigValue] = field(default_factory=dict)
    origins: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.env or self.patches or self.config_settings)

    def expanded_env(self, environ: Mapping[str, str] | None = None) -> dict[str, str]:
        """``env`` with ``$NAME``/``${NAME}`` taken from ``environ`` (default: os.environ)."""
        source = os.environ if environ is None else environ
        return {k: string.Template(v).safe_substitute(source) for k, v in self.env.items()}

    def config_settings_dict(self) -> dict[str, str | list[str]]:
        return {
            k: (list(v) if isinstance(v, tuple) else v) for k, v in self.config_settings.items()
        }

    def digest(self, environ: Mapping[str, str] | None = None) -> str:
        """A hash of everything that changes the build: expanded env, patch bytes, settings."""
        doc = {
            "env": self.expanded_env(environ),
            "patches": [[p.path.name, _file_sha256(p.path)] for p in self.patches],
            "config-settings": self.config_settings_dict(),
        }
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()

    def provenance(self) -> dict[str, object]:
        """What was applied, for ``pixi-pack-src.json`` (no absolute paths)."""
        doc: dict[str, object] = {}
        if self.env:
            doc["env"] = dict(sorted(self.env.items()))
        if self.patches:
            doc["patches"] = [
                {"name": p.label, "sha256": _file_sha256(p.path)} for p in self.patches
            ]
        if self.config_settings:
            doc["config-settings"] = dict(sorted(self.config_settings_dict().items()))
        if doc:
            doc["from"] = list(self.origins)
        return doc


@dataclass(frozen=True)
class _PackageLayers:
    base: tuple[Layer, ...] = ()
    variants: Mapping[str, tuple[Layer, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Overrides:
    """Every override read from the manifest and ``--overrides DIR``."""

    packages: Mapping[str, _PackageLayers] = field(default_factory=dict)

    def names(self) -> list[str]:
        return sorted(self.packages)

    def for_package(self, name: str, *, subdir: str, python_version: str | None) -> PackageOverride:
        """The merged override of ``name`` for a target ``subdir`` and Python."""
        key = canonicalize_name(name)
        layers = self.packages.get(key)
        if layers is None:
            return PackageOverride(package=key)
        ordered = list(layers.base)
        for variant in variant_keys(subdir, python_version):
            ordered += layers.variants.get(variant, ())
        env: dict[str, str] = {}
        config: dict[str, ConfigValue] = {}
        patches: list[PatchRef] = []
        origins: list[str] = []
        for layer in ordered:
            if layer.empty:
                continue
            env.update(layer.env)
            config.update(layer.config_settings)
            patches += layer.patches
            origins.append(layer.origin)
        return PackageOverride(
            package=key,
            env=env,
            patches=tuple(patches),
            config_settings=config,
            origins=tuple(origins),
        )


def variant_keys(subdir: str, python_version: str | None) -> list[str]:
    """The variant names that apply to a target, most general first."""
    keys = [f for f in OS_FAMILIES if subdir.startswith(f + "-")]
    keys.append(subdir)
    if python_version:
        parts = python_version.split(".")
        if len(parts) >= 2:
            keys.append(f"py{parts[0]}.{parts[1]}")
    return keys


def _is_variant(key: str) -> bool:
    return key in OS_FAMILIES or key in _known_subdirs() or bool(_PY_VARIANT.match(key))


def _known_subdirs() -> frozenset[str]:
    return frozenset(str(p) for p in Subdir.all())


def _file_sha256(path: Path) -> str:
    try:
        return file_sha256(path)
    except OSError as exc:
        raise ConfigError(f"cannot read patch {path}: {exc.strerror or exc}") from exc


def _str_value(value: object, where: str) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise ConfigError(f"{where} must be a string, not {type(value).__name__}")


def _parse_layer(
    table: Mapping[str, Any],
    *,
    where: str,
    origin: str,
    base_dir: Path,
    label_prefix: str,
    allow_variants: bool,
) -> tuple[Layer, Mapping[str, Any]]:
    allowed = _KEYS if allow_variants else _KEYS - {"variants"}
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r}",
            hint="allowed: " + ", ".join(sorted(allowed)),
        )
    env_raw = table.get("env", {})
    if not isinstance(env_raw, Mapping):
        raise ConfigError(f'{where}.env must be a table of NAME = "value"')
    env: dict[str, str] = {}
    for k, v in env_raw.items():
        if not _ENV_NAME.match(k):
            raise ConfigError(f"{where}.env: {k!r} is not a valid environment variable name")
        env[k] = _str_value(v, f"{where}.env.{k}")
    patches_raw = table.get("patches", [])
    if not isinstance(patches_raw, list) or not all(isinstance(p, str) for p in patches_raw):
        raise ConfigError(f"{where}.patches must be a list of paths")
    patches = []
    for rel in patches_raw:
        path = (base_dir / rel).resolve()
        if not path.is_file():
            raise ConfigError(
                f"{where}.patches: {rel} not found (looked for {path})",
                hint=f"patch paths are relative to {base_dir}",
            )
        patches.append(PatchRef(path=path, label=f"{label_prefix}{Path(rel).as_posix()}"))
    config_raw = table.get("config-settings", {})
    if not isinstance(config_raw, Mapping):
        raise ConfigError(f"{where}.config-settings must be a table")
    config: dict[str, ConfigValue] = {}
    for k, v in config_raw.items():
        if isinstance(v, list):
            config[k] = tuple(_str_value(x, f"{where}.config-settings.{k}") for x in v)
        else:
            config[k] = _str_value(v, f"{where}.config-settings.{k}")
    variants = table.get("variants", {})
    if not isinstance(variants, Mapping):
        raise ConfigError(f"{where}.variants must be a table of variant tables")
    for name in variants:
        if not _is_variant(name):
            raise ConfigError(
                f"{where}.variants: unknown variant {name!r}",
                hint="use a platform subdir (linux-64), an OS family (linux, osx, win) or a "
                "Python (py3.11)",
            )
    layer = Layer(origin=origin, env=env, patches=tuple(patches), config_settings=config)
    return layer, variants


def _add(
    collected: dict[str, tuple[list[Layer], dict[str, list[Layer]]]],
    name: str,
    base: Layer | None,
    variants: Mapping[str, Layer],
) -> None:
    base_list, variant_map = collected.setdefault(canonicalize_name(name), ([], {}))
    if base is not None:
        base_list.append(base)
    for key, layer in variants.items():
        variant_map.setdefault(key, []).append(layer)


def _package_table(
    table: Mapping[str, Any], *, where: str, origin: str, base_dir: Path, label_prefix: str
) -> tuple[Layer, dict[str, Layer]]:
    base, variants_raw = _parse_layer(
        table,
        where=where,
        origin=origin,
        base_dir=base_dir,
        label_prefix=label_prefix,
        allow_variants=True,
    )
    variants: dict[str, Layer] = {}
    for vname, vtable in variants_raw.items():
        if not isinstance(vtable, Mapping):
            raise ConfigError(f"{where}.variants.{vname} must be a table")
        variants[vname], _ = _parse_layer(
            vtable,
            where=f"{where}.variants.{vname}",
            origin=f"{origin} [{vname}]",
            base_dir=base_dir,
            label_prefix=label_prefix,
            allow_variants=False,
        )
    return base, variants


def _manifest_layers(
    table: Mapping[str, Any],
    manifest: Path,
    collected: dict[str, tuple[list[Layer], dict[str, list[Layer]]]],
) -> None:
    unknown = sorted(set(table) - {"overrides"})
    if unknown:
        raise ConfigError(
            f"{manifest}: [tool.pixi-pack-src] has an unknown key {unknown[0]!r}",
            hint="pixi-pack-src reads only [tool.pixi-pack-src.overrides.<package>]",
        )
    overrides = table.get("overrides", {})
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"{manifest}: tool.pixi-pack-src.overrides must be a table")
    for name, ptable in overrides.items():
        where = f"{manifest.name}: tool.pixi-pack-src.overrides.{name}"
        if not isinstance(ptable, Mapping):
            raise ConfigError(f"{where} must be a table")
        base, variants = _package_table(
            ptable,
            where=where,
            origin=f"{manifest.name} [tool.pixi-pack-src.overrides.{name}]",
            base_dir=manifest.parent,
            label_prefix="",
        )
        _add(collected, name, base, variants)


def _patch_refs(directory: Path, label_prefix: str) -> tuple[PatchRef, ...]:
    return tuple(
        PatchRef(path=p.resolve(), label=f"{label_prefix}{p.name}")
        for p in sorted(directory.glob("*.patch"))
        if p.is_file()
    )


def _directory_layers(
    root: Path, collected: dict[str, tuple[list[Layer], dict[str, list[Layer]]]]
) -> None:
    if not root.is_dir():
        raise ConfigError(
            f"--overrides {root}: not a directory",
            hint="pass a directory holding one folder per package",
        )
    for pkg_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        name = pkg_dir.name
        prefix = f"overrides:{name}/"
        origin = f"--overrides {name}/"
        base = Layer(origin=origin, patches=_patch_refs(pkg_dir, prefix))
        variants: dict[str, Layer] = {}
        settings = pkg_dir / SETTINGS_FILE
        if settings.is_file():
            doc = tomlfile.read(settings)
            from_file, variants = _package_table(
                doc,
                where=f"{settings}",
                origin=f"--overrides {name}/{SETTINGS_FILE}",
                base_dir=pkg_dir,
                label_prefix=prefix,
            )
            base = Layer(
                origin=origin,
                env=from_file.env,
                patches=base.patches + from_file.patches,
                config_settings=from_file.config_settings,
            )
        for sub in sorted(p for p in pkg_dir.iterdir() if p.is_dir()):
            if not _is_variant(sub.name):
                raise ConfigError(
                    f"{sub}: unknown variant directory {sub.name!r}",
                    hint="name it after a platform subdir (linux-64), an OS family (linux, "
                    "osx, win) or a Python (py3.11)",
                )
            refs = _patch_refs(sub, f"{prefix}{sub.name}/")
            if refs:
                old = variants.get(sub.name)
                variants[sub.name] = Layer(
                    origin=f"{origin}{sub.name}/",
                    env=old.env if old else {},
                    patches=(old.patches if old else ()) + refs,
                    config_settings=old.config_settings if old else {},
                )
        _add(collected, name, base, variants)


def load_overrides(
    *,
    manifest_table: Mapping[str, Any] | None = None,
    manifest_path: Path | None = None,
    overrides_dir: Path | None = None,
) -> Overrides:
    """Read the manifest's ``[tool.pixi-pack-src]`` table and ``--overrides DIR``.

    ``manifest_table`` is the parsed ``[tool.pixi-pack-src]`` table (``None`` or empty when
    absent); relative patch paths in it resolve against ``manifest_path``'s directory.
    Raises :class:`ConfigError` naming the file and key on anything malformed.
    """
    collected: dict[str, tuple[list[Layer], dict[str, list[Layer]]]] = {}
    if manifest_table:
        if manifest_path is None:
            raise ValueError("manifest_path is needed to resolve the manifest's patch paths")
        _manifest_layers(manifest_table, manifest_path, collected)
    if overrides_dir is not None:
        _directory_layers(overrides_dir, collected)
    return Overrides(
        packages={
            name: _PackageLayers(
                base=tuple(base), variants={k: tuple(v) for k, v in variants.items()}
            )
            for name, (base, variants) in collected.items()
        }
    )


def read_manifest_table(manifest: Path) -> dict[str, Any]:
    """The ``[tool.pixi-pack-src]`` table of a ``pixi.toml``/``pyproject.toml`` ({} if none)."""
    doc = tomlfile.read(manifest)
    tool = doc.get("tool", {})
    table = tool.get("pixi-pack-src", {}) if isinstance(tool, dict) else {}
    if not isinstance(table, dict):
        raise ConfigError(f"{manifest}: tool.pixi-pack-src must be a table")
    return table


def unused_packages(overrides: Overrides, names: Iterable[str]) -> list[str]:
    """Override entries that name no package being built (likely typos)."""
    wanted = {canonicalize_name(n) for n in names}
    return [n for n in overrides.names() if n not in wanted]
