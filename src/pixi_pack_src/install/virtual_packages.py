"""Virtual packages: what this machine has versus what the pack's lock and packages assume.

A lock records, per platform, the virtual packages its solve assumed (``__glibc=2.28``,
``__osx=13.0``; docs/lockfile.md §1.1), and ``pack`` copies them into ``pixi-pack-src.json``.
Packages also depend on virtual packages directly (``__glibc >=2.17,<3.0.a0``). ``unpack``
checks both against the host, detected by py-rattler, which honours conda's overrides
(``CONDA_OVERRIDE_GLIBC``, ``_OSX``, ``_CUDA``, ``_ARCHSPEC``; an empty value means "absent").

Only versions are compared, and only for names with a clear "at least" meaning
(:data:`VERSIONED`); ``__archspec`` compatibility is not a version order and is skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import rattler
from rattler import MatchSpec, PackageRecord, Version, VersionSpec
from rattler.exceptions import (
    DetectVirtualPackageError,
    InvalidMatchSpecError,
    InvalidVersionError,
    InvalidVersionSpecError,
    VirtualPackageOverrideError,
)

from pixi_pack_src.errors import PixiPackSrcError

logger = logging.getLogger(__name__)

# Names whose locked version is a floor the host must reach.
VERSIONED = ("__glibc", "__osx", "__cuda", "__linux")
# Names a package may depend on that we can judge (presence, and version if given).
JUDGED = (*VERSIONED, "__unix", "__win")
OVERRIDE_ENV = {
    "__glibc": "CONDA_OVERRIDE_GLIBC",
    "__osx": "CONDA_OVERRIDE_OSX",
    "__cuda": "CONDA_OVERRIDE_CUDA",
    "__archspec": "CONDA_OVERRIDE_ARCHSPEC",
}
_WHAT = {
    "__glibc": "glibc",
    "__osx": "macOS",
    "__cuda": "a CUDA driver",
    "__linux": "a Linux kernel",
    "__unix": "a Unix system",
    "__win": "Windows",
}
SKIP_HINT = "--virtual-package-check off skips this check"


class VirtualPackageError(PixiPackSrcError):
    """This machine lacks a virtual package (or a version of it) the pack needs."""


@dataclass(frozen=True)
class Virtual:
    """One virtual package: ``__glibc=2.28=0``."""

    name: str
    version: str
    build: str = "0"

    def __str__(self) -> str:
        return f"{self.name}={self.version}={self.build}"


def parse_virtual(spec: str) -> Virtual:
    """``__glibc=2.28`` or ``__unix=0=0`` (the lock's form) -> :class:`Virtual`."""
    parts = [p.strip() for p in spec.strip().split("=")]
    if not parts[0].startswith("__") or len(parts) > 3 or any(not p for p in parts):
        raise ValueError(f"not a virtual package: {spec!r}")
    version = parts[1] if len(parts) > 1 else "0"
    build = parts[2] if len(parts) > 2 else "0"
    return Virtual(parts[0].lower(), version, build)


def detect_host() -> dict[str, Virtual]:
    """This machine's virtual packages by name, with ``CONDA_OVERRIDE_*`` applied."""
    try:
        overrides = rattler.VirtualPackageOverrides.from_env()
        detected = rattler.VirtualPackage.detect(overrides)
    except (DetectVirtualPackageError, VirtualPackageOverrideError) as exc:
        raise VirtualPackageError(
            f"cannot detect this machine's virtual packages: {exc}",
            hint="check the CONDA_OVERRIDE_* variables; " + SKIP_HINT,
        ) from exc
    host: dict[str, Virtual] = {}
    for package in detected:
        generic = package.into_generic()
        name = generic.name.normalized
        host[name] = Virtual(name, str(generic.version), str(generic.build_string))
    logger.debug("host virtual packages: %s", ", ".join(str(v) for v in host.values()))
    return host


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersionError:
        return None


def _override_hint(name: str, wanted: str) -> str:
    parts = []
    if name in OVERRIDE_ENV:
        parts.append(f"if the detection is wrong, set {OVERRIDE_ENV[name]}={wanted}")
    parts.append(SKIP_HINT)
    return "; ".join(parts)


def _describe(name: str, host: Virtual | None) -> str:
    if host is None:
        return f"this machine has no {name}"
    return f"this machine has {name} {host.version}"


def check_locked(required: Iterable[str], host: Mapping[str, Virtual], *, source: str) -> list[str]:
    """Refuse a host below a version floor the lock assumed; return warnings for odd entries.

    ``required`` are the lock's strings (``__glibc=2.28``); ``source`` names the pack.
    """
    warnings: list[str] = []
    for spec in required:
        try:
            wanted = parse_virtual(spec)
        except ValueError:
            warnings.append(f"{source}: ignoring the malformed virtual package {spec!r}")
            continue
        if wanted.name not in VERSIONED:
            continue
        have = host.get(wanted.name)
        need = _version(wanted.version)
        if need is None:
            warnings.append(f"{source}: ignoring {spec!r}: not a version")
            continue
        have_version = _version(have.version) if have is not None else None
        if have_version is not None and have_version >= need:
            continue
        what = _WHAT.get(wanted.name, wanted.name)
        raise VirtualPackageError(
            f"{_describe(wanted.name, have)}, but the pack's lock assumed "
            f"{wanted.name} {wanted.version} (at least) in {source}",
            hint=f"unpack on a machine with {what} >= {wanted.version}; "
            + _override_hint(wanted.name, wanted.version),
        )
    return warnings


def _dependency(dep: str) -> tuple[str, str | None] | None:
    """(name, version spec) of a virtual-package dependency we judge, else ``None``."""
    if not dep.lstrip().startswith("__"):
        return None
    try:
        spec = MatchSpec(dep)
    except InvalidMatchSpecError:  # malformed: the installer would not judge it either
        return None
    name = spec.name.normalized
    if name not in JUDGED:
        return None
    return name, spec.version


def check_depends(records: Iterable[PackageRecord], host: Mapping[str, Virtual]) -> None:
    """Refuse packages whose ``__`` dependencies this machine does not satisfy (as conda)."""
    for record in records:
        for dep in record.depends:
            parsed = _dependency(dep)
            if parsed is None:
                continue
            name, version_spec = parsed
            have = host.get(name)
            ok = have is not None
            if ok and have is not None and version_spec not in (None, "*"):
                have_version = _version(have.version)
                try:
                    ok = have_version is not None and VersionSpec(version_spec).matches(
                        have_version
                    )
                except InvalidVersionSpecError:  # not ours to judge
                    ok = True
            if ok:
                continue
            package = f"{record.name.normalized} {record.version} ({record.build})"
            wanted = (version_spec or "").split(",")[0].lstrip(">=~!<") or "<version>"
            provide = _WHAT.get(name, name)
            if version_spec:
                provide += f" {version_spec}"
            raise VirtualPackageError(
                f"{package} requires `{dep}`, but {_describe(name, have)}",
                hint=f"unpack on a machine with {provide}; " + _override_hint(name, wanted),
            )
