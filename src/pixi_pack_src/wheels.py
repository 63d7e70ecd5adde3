"""Which wheels a target environment can install: tags and ``Requires-Python``.

Used wherever a wheel meets a target that may not be this machine: ``--inject`` at pack time,
built wheels (sdist -> wheel), and ``unpack`` (against the environment's own interpreter).
The target is described by its python version, conda subdir and the lock's virtual packages
(``__glibc=2.28`` bounds manylinux tags, ``__osx=13.0`` bounds macOS tags).
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Sequence
from email.message import Message
from email.parser import HeaderParser
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag, compatible_tags, cpython_tags, mac_platforms
from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from pixi_pack_src.errors import PixiPackSrcError

METADATA_LIMIT = 256 * 1024  # the headers come first; a wheel's METADATA can be long
_LINUX_ARCH = {
    "linux-64": "x86_64",
    "linux-aarch64": "aarch64",
    "linux-ppc64le": "ppc64le",
    "linux-s390x": "s390x",
    "linux-32": "i686",
    "linux-armv7l": "armv7l",
}
_MAC_ARCH = {"osx-64": "x86_64", "osx-arm64": "arm64"}
_WIN_PLATFORM = {"win-64": "win_amd64", "win-arm64": "win_arm64", "win-32": "win32"}
_DEFAULT_GLIBC = (2, 17)
_DEFAULT_OSX = {"osx-64": (10, 13), "osx-arm64": (11, 0)}
_LEGACY_MANYLINUX = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}


class WheelCompatibilityError(PixiPackSrcError):
    """A wheel that the target environment cannot install."""


def _virtual_version(virtual_packages: Iterable[str], name: str) -> tuple[int, int] | None:
    for spec in virtual_packages:
        key, _, rest = spec.partition("=")
        if key.strip() != name:
            continue
        version = rest.partition("=")[0].strip()
        parts = version.split(".")
        try:
            return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
        except ValueError:
            return None
    return None


def platform_tags(subdir: str, virtual_packages: Sequence[str] = ()) -> list[str]:
    """Wheel platform tags a conda ``subdir`` accepts, most specific first."""
    if subdir in _LINUX_ARCH:
        arch = _LINUX_ARCH[subdir]
        major, minor = _virtual_version(virtual_packages, "__glibc") or _DEFAULT_GLIBC
        tags: list[str] = []
        for m in range(minor, 4, -1):
            tags.append(f"manylinux_{major}_{m}_{arch}")
            legacy = _LEGACY_MANYLINUX.get((major, m))
            if legacy is not None:
                tags.append(f"{legacy}_{arch}")
        tags.append(f"linux_{arch}")
        return tags
    if subdir in _MAC_ARCH:
        version = _virtual_version(virtual_packages, "__osx") or _DEFAULT_OSX[subdir]
        return list(mac_platforms(version, _MAC_ARCH[subdir]))
    if subdir in _WIN_PLATFORM:
        return [_WIN_PLATFORM[subdir]]
    return []


def target_tags(
    python_version: str, subdir: str, virtual_packages: Sequence[str] = ()
) -> list[Tag]:
    """Every tag a CPython ``python_version`` on ``subdir`` can install, best first."""
    v = Version(python_version)
    pyver = (v.major, v.minor)
    platforms = platform_tags(subdir, virtual_packages)
    tags = list(cpython_tags(pyver, platforms=platforms))
    tags += list(compatible_tags(pyver, f"cp{v.major}{v.minor}", platforms=platforms))
    return tags


def is_pure(wheel_name: str) -> bool:
    """Whether every tag of the wheel is platform-independent (``any``)."""
    return all(t.platform == "any" for t in parse_wheel_filename(wheel_name)[3])


def metadata_headers(zf: zipfile.ZipFile, *, limit: int | None = METADATA_LIMIT) -> Message | None:
    """The header block of the wheel's single ``<name>.dist-info/METADATA``, read from its
    first ``limit`` bytes (``None``: all of it); ``None`` when there is not exactly one."""
    names = [n for n in zf.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
    if len(names) != 1:
        return None
    with zf.open(names[0]) as fh:
        text = (fh.read() if limit is None else fh.read(limit)).decode("utf-8", "replace")
    return HeaderParser().parsestr(text.split("\n\n", 1)[0])


def requires_python(wheel: Path) -> str | None:
    """The ``Requires-Python`` of a wheel file (read from its METADATA)."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            headers = metadata_headers(zf)
    except (OSError, zipfile.BadZipFile) as exc:
        raise WheelCompatibilityError(f"{wheel} is not a valid wheel: {exc}") from exc
    if headers is None:
        raise WheelCompatibilityError(f"{wheel.name} has no single .dist-info/METADATA")
    value = headers.get("Requires-Python")
    return value.strip() if value else None


def check_wheel_for_target(
    wheel: Path,
    *,
    python_version: str | None,
    subdir: str,
    virtual_packages: Sequence[str] = (),
) -> None:
    """Refuse a wheel whose tags or ``Requires-Python`` do not fit the target.

    Without a python version (no python in the environment) only pure wheels are accepted.
    """
    try:
        _, _, _, tags = parse_wheel_filename(wheel.name)
    except InvalidWheelFilename as exc:
        raise WheelCompatibilityError(
            f"{wheel.name} is not a valid wheel file name: {exc}"
        ) from exc
    if python_version is None:
        if not all(t.platform == "any" and t.abi == "none" for t in tags):
            raise WheelCompatibilityError(
                f"{wheel.name} needs a python, but the environment has none",
                hint="add python to the environment, or use a pure-Python wheel",
            )
        return
    accepted = set(target_tags(python_version, subdir, virtual_packages))
    if not accepted.intersection(tags):
        shown = ", ".join(sorted(str(t) for t in tags))
        raise WheelCompatibilityError(
            f"{wheel.name} ({shown}) cannot be installed by python {python_version} on {subdir}",
            hint=f"use a wheel built for {subdir} and python {python_version}",
        )
    spec = requires_python(wheel)
    if spec:
        try:
            ok = Version(python_version) in SpecifierSet(spec)
        except (InvalidSpecifier, InvalidVersion):
            ok = True
        if not ok:
            raise WheelCompatibilityError(
                f"{wheel.name} requires python {spec}, the environment has {python_version}",
                hint="use a release of the package that supports this python",
            )
