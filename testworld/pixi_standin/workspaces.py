"""Source packages on disk for the stand-in (and for real pixi), plus model factories.

- :func:`write_package` - a pixi-build package: ``pixi.toml`` (``[package]``, a pinned
  ``pixi-build-rattler-build`` backend by default, source run-dependencies as ``{ path = … }``)
  and a ``recipe.yaml`` that installs ``share/<name>/VERSION`` (plus ``files``), noarch generic
  or native, using the given variant keys so they land in ``info/hash_input.json``.
- :func:`write_workspace_manifest` - a ``pixi.toml`` with only ``[workspace]`` (platforms,
  channels, build variants).
- :func:`conda_source` - a :class:`pixi_pack_src.lock.model.CondaSource` for unit and driver tests,
  shaped like :mod:`pixi_pack_src.lock.lockfile` makes them.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from pixi_pack_src.lock.lockfile import parse_git_location
from pixi_pack_src.lock.model import CondaSource

BACKEND = "pixi-build-rattler-build"
BACKEND_PIN = "==0.4.5"


def _toml(value: str) -> str:
    return json.dumps(value)


def write_package(
    directory: Path,
    name: str,
    version: str = "0.1.0",
    *,
    run: Sequence[str] = (),
    source_run: Mapping[str, str] | None = None,
    noarch: bool = True,
    backend_version: str | None = BACKEND_PIN,
    inline_backend: bool = True,
    files: Mapping[str, str] | None = None,
    use_variants: Sequence[str] = (),
    extra_outputs: Sequence[str] = (),
) -> Path:
    """Write a package directory; returns it. ``source_run``: name -> relative path.

    A ``pixi.toml`` already there with a ``[workspace]`` table (the workspace root is the
    package) keeps it: the ``[package]`` tables are appended; any other is replaced.
    """
    directory.mkdir(parents=True, exist_ok=True)
    sources = dict(source_run or {})
    lines = ["[package]", f"name = {_toml(name)}", f"version = {_toml(version)}", ""]
    spec = f'name = "{BACKEND}"' + (
        f", version = {_toml(backend_version)}" if backend_version is not None else ""
    )
    if inline_backend:
        lines += ["[package.build]", f"backend = {{ {spec} }}", ""]
    else:
        lines += ["[package.build.backend]", f'name = "{BACKEND}"']
        if backend_version is not None:
            lines.append(f"version = {_toml(backend_version)}")
        lines.append('channels = ["https://prefix.dev/pixi-build-backends"]')
        lines.append("")
    if sources:
        lines.append("[package.run-dependencies]")
        lines += [f"{dep} = {{ path = {_toml(rel)} }}" for dep, rel in sources.items()]
        lines.append("")
    manifest = directory / "pixi.toml"
    existing = manifest.read_text() if manifest.is_file() else ""
    if existing.startswith("[workspace]") or "\n[workspace]" in existing:
        manifest.write_text(existing.rstrip("\n") + "\n\n" + "\n".join(lines))
    else:
        manifest.write_text("\n".join(lines))

    script = [f"mkdir -p $PREFIX/share/{name}", f"echo {version} > $PREFIX/share/{name}/VERSION"]
    for rel, text in (files or {}).items():
        script.append(f"mkdir -p $PREFIX/$(dirname {rel})")
        script.append(f"printf '%s\\n' {json.dumps(text)} > $PREFIX/{rel}")
    for key in use_variants:
        script.append(f"echo ${{{{ {key} }}}} > $PREFIX/share/{name}/{key}")
    reqs = [*run, *sources]
    build = {"number": 0, "script": script}
    if noarch:
        build["noarch"] = "generic"
    if extra_outputs:
        outputs = [{"package": {"name": name}, "build": build, "requirements": {"run": reqs}}]
        for extra in extra_outputs:
            extra_build = {"number": 0, "script": [f"mkdir -p $PREFIX/share/{extra}"]}
            if noarch:
                extra_build["noarch"] = "generic"
            outputs.append({"package": {"name": extra}, "build": extra_build})
        recipe: dict[str, object] = {
            "recipe": {"name": f"{name}-split", "version": version},
            "outputs": outputs,
        }
    else:
        recipe = {
            "package": {"name": name, "version": version},
            "build": build,
            "requirements": {"run": reqs},
        }
    import yaml

    (directory / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    return directory


def write_workspace_manifest(
    root: Path,
    *,
    platforms: Sequence[str] = ("linux-64",),
    channels: Sequence[str] = (),
    build_variants: Mapping[str, Sequence[str]] | None = None,
    name: str = "standin-workspace",
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    lines = [
        "[workspace]",
        f"name = {_toml(name)}",
        "channels = [" + ", ".join(_toml(c) for c in channels) + "]",
        "platforms = [" + ", ".join(_toml(p) for p in platforms) + "]",
        'preview = ["pixi-build"]',
        "",
    ]
    if build_variants:
        lines.append("[workspace.build-variants]")
        for key, values in build_variants.items():
            lines.append(f"{key} = [" + ", ".join(_toml(v) for v in values) + "]")
        lines.append("")
    manifest = root / "pixi.toml"
    manifest.write_text("\n".join(lines))
    return manifest


def conda_source(
    name: str,
    location: str,
    *,
    root: Path,
    platform: str = "linux-64",
    noarch: bool = False,
    variants: Mapping[str, str] | None = None,
    depends: Sequence[str] = (),
    source_depends: Mapping[str, Mapping[str, str]] | None = None,
    source: Mapping[str, str] | None = None,
    version: str | None = None,
    build: str | None = None,
    host_packages: Sequence[str] = (),
) -> CondaSource:
    """A lock entry as :mod:`pixi_pack_src.lock.lockfile` would produce it.

    The identifier hash depends on the platform (as pixi's does: host packages differ), so a
    noarch package has one lock id per platform.
    """
    all_variants = {"target_platform": "noarch" if noarch else platform, **(variants or {})}
    id_hash = hashlib.sha256(
        repr((name, location, platform, sorted(all_variants.items()))).encode()
    ).hexdigest()[:8]
    git_loc = parse_git_location(location) if location.startswith("git+") else None
    path = None if git_loc else Path(os.path.normpath(root / location))
    return CondaSource(
        lock_id=f"{name}[{id_hash}] @ {location}",
        name=name,
        id_hash=id_hash,
        location=location,
        location_kind="git" if git_loc else "path",
        path=path,
        git=git_loc,
        variants=all_variants,
        depends=tuple(depends),
        constrains=(),
        source=source,
        source_depends=dict(source_depends or {}),
        build_packages=(),
        host_packages=tuple(host_packages),
        version=version,
        build=build,
        build_number=0 if version is not None else None,
        subdir=("noarch" if noarch else platform) if version is not None else None,
        noarch="generic" if noarch and version is not None else None,
    )
