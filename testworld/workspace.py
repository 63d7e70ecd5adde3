"""Workspaces on disk: ``pixi.toml`` + ``pixi.lock`` (+ local trees) for the CLI to read.

:func:`write_workspace` writes a plausible pixi manifest for the environments it is given
(``[workspace]`` channels/platforms, ``[dependencies]``, ``[pypi-dependencies]``, features and
``[environments]`` for non-default environments, path dependencies for source packages),
copies local trees in, gives every path ``conda_source`` a minimal package unless one is there
(:func:`testworld.pixi_standin.workspaces.write_package`: ``[package]`` with a pinned build
backend + ``recipe.yaml``), and writes the lock with :func:`testworld.locks.write_lock`.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from testworld.layout import World
from testworld.locks import (
    CondaLocation,
    Env,
    Plat,
    PypiEntry,
    SourceEntry,
    WrittenLock,
    write_lock,
)
from testworld.pixi_standin.workspaces import write_package


@dataclass(frozen=True)
class Workspace:
    root: Path
    manifest: Path
    lock: WrittenLock

    @property
    def lock_path(self) -> Path:
        return self.lock.path


def _toml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def _split_spec(spec: str) -> tuple[str, str]:
    name, _, rest = spec.strip().partition(" ")
    return name, rest.strip() or "*"


def _pypi_requirement(entry: PypiEntry) -> str:
    loc = entry.location
    if loc.startswith(("./", "../", "/")) or loc == ".":
        return f"{{ path = {_toml_str(loc)} }}"
    if loc.startswith("git+"):
        url, _, rev = loc.removeprefix("git+").partition("#")
        return f"{{ git = {_toml_str(url)}, rev = {_toml_str(rev)} }}"
    if entry.version:
        return _toml_str(f"=={entry.version}")
    return _toml_str("*")


def _deps_tables(prefix: str, env: Env) -> list[str]:
    lines = [f"[{prefix}dependencies]"]
    for spec in env.conda:
        name, version = _split_spec(spec)
        lines.append(f"{name} = {_toml_str(version)}")
    for src in env.sources:
        if src.location.startswith("git+"):
            url, _, rev = src.location.removeprefix("git+").partition("#")
            lines.append(f"{src.name} = {{ git = {_toml_str(url)}, rev = {_toml_str(rev)} }}")
        else:
            lines.append(f"{src.name} = {{ path = {_toml_str(src.location)} }}")
    lines.append("")
    if env.pypi:
        lines.append(f"[{prefix}pypi-dependencies]")
        lines += [f"{e.name} = {_pypi_requirement(e)}" for e in env.pypi]
        lines.append("")
    return lines


def manifest_text(
    name: str,
    channel_url: str,
    environments: Mapping[str, Env],
    platforms: Sequence[Plat],
) -> str:
    subdirs = sorted({p.conda_subdir for p in platforms})
    has_sources = any(env.sources for env in environments.values())
    lines = [
        "[workspace]",
        f"name = {_toml_str(name)}",
        f"channels = [{_toml_str(channel_url)}]",
        "platforms = [" + ", ".join(_toml_str(s) for s in subdirs) + "]",
    ]
    if has_sources:
        lines.append('preview = ["pixi-build"]')
    lines.append("")
    default = environments.get("default", Env())
    lines += _deps_tables("", default)
    others = [n for n in environments if n != "default"]
    for env_name in others:
        lines += _deps_tables(f"feature.{env_name}.", environments[env_name])
    if others:
        lines.append("[environments]")
        lines += [
            f"{n} = {{ features = [{_toml_str(n)}], no-default-feature = true }}" for n in others
        ]
        lines.append("")
    return "\n".join(lines)


def write_workspace(
    root: Path,
    world: World,
    environments: Mapping[str, Env],
    *,
    platforms: Sequence[Plat] = (Plat("linux-64"),),
    channel_url: str | None = None,
    patches: Mapping[str, Sequence[str]] | None = None,
    conda_locations: Mapping[str, CondaLocation] | None = None,
    local_paths: Mapping[str, Path] | None = None,
    name: str = "world-workspace",
) -> Workspace:
    """Write a workspace directory (manifest, lock, local trees) and return it."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, src in (local_paths or {}).items():
        dest = root / rel
        if src.is_dir():
            shutil.copytree(src, dest, symlinks=True, dirs_exist_ok=True)
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
    url = channel_url or world.channel_url()
    manifest = root / "pixi.toml"
    manifest.write_text(manifest_text(name, url, environments, platforms))
    for env in environments.values():
        for src_entry in env.sources:
            _ensure_source_package(root, src_entry)
    lock = write_lock(
        root / "pixi.lock",
        world,
        environments,
        platforms=platforms,
        channel_url=url,
        patches=patches,
        conda_locations=conda_locations,
    )
    return Workspace(root=root, manifest=manifest, lock=lock)


def _ensure_source_package(root: Path, entry: SourceEntry) -> None:
    if entry.location.startswith(("git+", "http://", "https://")):
        return
    pkg_dir = (root / entry.location).resolve()
    if (pkg_dir / "recipe.yaml").exists():
        return
    if pkg_dir != root.resolve() and (pkg_dir / "pixi.toml").exists():
        return
    write_package(
        pkg_dir,
        entry.name,
        entry.version or "0.1.0",
        run=[d for d in entry.depends if not d.startswith("__")],
        noarch=entry.noarch,
    )
