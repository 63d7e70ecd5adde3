"""Does the lock still match the manifest? The part of pixi's satisfiability check that a pack
needs: every dependency the manifest names for an environment must be locked for it.

For the chosen environment and platform, the manifest's dependencies are collected the way
pixi composes environments: the default feature (unless ``no-default-feature``), then the
environment's features; for each, ``[dependencies]``, ``[host-dependencies]``,
``[build-dependencies]`` and ``[pypi-dependencies]``, and the same tables under
``[target.<selector>]`` when the selector matches the platform (``linux-64``, ``linux``,
``osx``, ``win``, ``unix``). ``pyproject.toml`` adds ``[project] dependencies`` (to the default
feature), ``[project.optional-dependencies]`` and ``[dependency-groups]`` (to the feature of the
same name), as pixi does; requirements with environment markers are not judged here.

Each conda dependency must name a locked conda package (binary or source); each PyPI
dependency a locked PyPI package. A plain version spec is checked too: ``numpy = ">=2"`` is
not satisfied by a locked numpy 1.26 (py-rattler's ``NamelessMatchSpec``; ``packaging`` for
PyPI). Path, git and URL dependencies are checked by name only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version
from rattler import NamelessMatchSpec

from pixi_pack_src import tomlfile
from pixi_pack_src.errors import WorkspaceError
from pixi_pack_src.lock.model import LockedEnvironment

log = logging.getLogger(__name__)

CONDA_TABLES = ("dependencies", "host-dependencies", "build-dependencies")
PYPI_TABLE = "pypi-dependencies"


@dataclass(frozen=True)
class Dependency:
    name: str
    spec: object  # the manifest's value
    kind: str  # "conda" | "pypi"
    where: str  # e.g. "[feature.test.target.linux-64.dependencies]"


@dataclass(frozen=True)
class Mismatch:
    dependency: Dependency
    why: str  # "not locked" | "locked 1.26.4 does not satisfy >=2"

    def describe(self) -> str:
        dep = self.dependency
        return f"{dep.name} ({dep.where}: {self.why})"


def selector_matches(selector: str, subdir: str) -> bool:
    """pixi's ``[target.<selector>]``: a platform, or ``linux``/``osx``/``win``/``unix``."""
    family = subdir.split("-", 1)[0]
    if selector == subdir:
        return True
    if selector == "unix":
        return family in ("linux", "osx", "emscripten", "wasi")
    return selector in ("linux", "osx", "win") and selector == family


def _pixi_tables(manifest: Path, doc: Mapping[str, Any]) -> Mapping[str, Any]:
    if manifest.name == "pyproject.toml":
        tool = doc.get("tool")
        pixi = tool.get("pixi") if isinstance(tool, dict) else None
        return pixi if isinstance(pixi, dict) else {}
    return doc


def environment_features(pixi: Mapping[str, Any], environment: str) -> list[str] | None:
    """The features of ``environment`` (``""`` is the default feature), or ``None`` when the
    manifest does not define it."""
    envs = pixi.get("environments")
    envs = envs if isinstance(envs, dict) else {}
    value = envs.get(environment)
    if value is None:
        return [""] if environment == "default" else None
    if isinstance(value, list):
        return ["", *(str(f) for f in value)]
    if isinstance(value, dict):
        features = [str(f) for f in value.get("features", []) or []]
        return features if value.get("no-default-feature") is True else ["", *features]
    return None


def _feature_table(pixi: Mapping[str, Any], feature: str) -> Mapping[str, Any]:
    if not feature:
        return pixi
    features = pixi.get("feature")
    table = features.get(feature) if isinstance(features, dict) else None
    return table if isinstance(table, dict) else {}


def _tables(table: Mapping[str, Any], prefix: str, subdir: str) -> Iterator[Dependency]:
    for name in (*CONDA_TABLES, PYPI_TABLE):
        deps = table.get(name)
        if isinstance(deps, dict):
            kind = "pypi" if name == PYPI_TABLE else "conda"
            for dep, spec in deps.items():
                yield Dependency(str(dep), spec, kind, f"[{prefix}{name}]")
    targets = table.get("target")
    if isinstance(targets, dict):
        for selector, sub in targets.items():
            if isinstance(sub, dict) and selector_matches(str(selector), subdir):
                yield from _tables(sub, f"{prefix}target.{selector}.", "")


def _pep621(doc: Mapping[str, Any], feature: str) -> Iterator[Dependency]:
    project = doc.get("project")
    project = project if isinstance(project, dict) else {}
    if not feature:
        requirements, where = project.get("dependencies"), "[project] dependencies"
        yield from _requirements(requirements, where)
        return
    extras = project.get("optional-dependencies")
    if isinstance(extras, dict) and feature in extras:
        yield from _requirements(extras[feature], f"[project.optional-dependencies] {feature}")
    groups = doc.get("dependency-groups")
    if isinstance(groups, dict) and feature in groups:
        yield from _requirements(groups[feature], f"[dependency-groups] {feature}")


def _requirements(values: object, where: str) -> Iterator[Dependency]:
    if not isinstance(values, list):
        return
    for value in values:
        if not isinstance(value, str):
            continue  # {include-group = ...}
        try:
            req = Requirement(value)
        except InvalidRequirement:
            continue
        if req.marker is not None:
            continue  # depends on the target's markers: not judged here
        spec = str(req.specifier) if req.specifier else "*"
        yield Dependency(req.name, spec if not req.url else {"url": req.url}, "pypi", where)


def manifest_dependencies(manifest: Path, environment: str, subdir: str) -> list[Dependency]:
    """What the manifest asks for in ``environment`` on ``subdir`` (see the module docstring).

    Raises :class:`WorkspaceError` when the manifest does not define ``environment``.
    """
    doc = tomlfile.read(manifest, error=WorkspaceError)
    pixi = _pixi_tables(manifest, doc)
    features = environment_features(pixi, environment)
    if features is None:
        raise WorkspaceError(
            f"{manifest} defines no environment '{environment}' (it is in pixi.lock)",
            hint="run `pixi lock` to update the lock, or pass --frozen to pack it as it is",
        )
    out: list[Dependency] = []
    for feature in features:
        prefix = f"feature.{feature}." if feature else ""
        out.extend(_tables(_feature_table(pixi, feature), prefix, subdir))
        if manifest.name == "pyproject.toml":
            out.extend(_pep621(doc, feature))
    return out


def _version_spec(spec: object) -> str | None:
    if isinstance(spec, str):
        value: object = spec
    elif isinstance(spec, dict):
        if any(k in spec for k in ("path", "git", "url")):
            return None
        value = spec.get("version")
    else:
        return None
    if not isinstance(value, str):
        return None
    value = value.strip()
    return None if value in ("", "*") else value


def mismatches(deps: list[Dependency], env: LockedEnvironment) -> list[Mismatch]:
    """The dependencies that ``env`` (one environment on one platform) does not satisfy."""
    conda = {c.name.lower(): c for c in env.conda}
    sources = {s.name.lower() for s in env.sources}
    pypi = {canonicalize_name(p.name): p for p in env.pypi}
    out: list[Mismatch] = []
    for dep in deps:
        spec = _version_spec(dep.spec)
        if dep.kind == "conda":
            name = dep.name.split("::")[-1].lower()
            if name in sources:
                continue
            binary = conda.get(name)
            if binary is None:
                out.append(Mismatch(dep, "not locked"))
                continue
            if spec is not None:
                try:
                    satisfied = NamelessMatchSpec(spec).matches(binary.record)
                except Exception as exc:  # noqa: BLE001 (an unparsable spec is not ours to judge)
                    log.debug("cannot check %s %r: %s", dep.name, spec, exc)
                    continue
                if not satisfied:
                    out.append(Mismatch(dep, f"locked {binary.version} does not satisfy {spec}"))
        else:
            package = pypi.get(canonicalize_name(dep.name))
            if package is None:
                out.append(Mismatch(dep, "not locked"))
                continue
            if spec is not None and package.version is not None:
                try:
                    ok = SpecifierSet(spec).contains(Version(package.version), prereleases=True)
                except (InvalidSpecifier, InvalidVersion):
                    continue
                if not ok:
                    out.append(Mismatch(dep, f"locked {package.version} does not satisfy {spec}"))
    return out
