"""Check a freshly built wheel against the lock entry and the target platform.

After a PEP 517 ``build_wheel``, the output directory must hold exactly one ``.whl`` (the one
the backend named), whose name (normalised) is the locked name and whose version equals the
locked version when the lock has one (source trees have none). Its ``.dist-info/METADATA``
must agree with the file name. Then the target:

- a platform-specific wheel built for a *foreign* target (we can only run the host's
  compilers) is refused: build it on a runner of that platform;
- otherwise the tags and ``Requires-Python`` must fit the locked Python on the target
  (:func:`pixi_pack_src.wheels.check_wheel_for_target`).

``requires_dist`` is not re-resolved: the lock already fixed the environment's packages.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import (
    InvalidWheelFilename,
    canonicalize_name,
    canonicalize_version,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from pixi_pack_src.errors import BuildError, UnsupportedPackageError
from pixi_pack_src.wheels import (
    WheelCompatibilityError,
    check_wheel_for_target,
    is_pure,
    metadata_headers,
)

RUNNER_HINT = "build it on a {subdir} runner (see examples/ci)"


@dataclass(frozen=True)
class WheelInfo:
    path: Path
    name: str  # as in the file name (normalised)
    version: str
    tags: tuple[str, ...]
    pure: bool


def _same_version(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return canonicalize_version(a) == canonicalize_version(b)


def read_metadata_headers(wheel: Path) -> tuple[str, str]:
    """``Name`` and ``Version`` from the wheel's ``*.dist-info/METADATA``."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            headers = metadata_headers(zf)
    except (OSError, zipfile.BadZipFile) as exc:
        raise BuildError(f"the built wheel {wheel.name} is not a valid zip file: {exc}") from exc
    if headers is None:
        raise BuildError(f"the built wheel {wheel.name} has no single .dist-info/METADATA")
    return str(headers.get("Name", "")).strip(), str(headers.get("Version", "")).strip()


def find_built_wheel(out_dir: Path, returned: str | None, *, package: str) -> Path:
    """The single ``.whl`` in ``out_dir`` (and the name the backend returned, if any)."""
    wheels = sorted(p for p in out_dir.iterdir() if p.suffix == ".whl" and p.is_file())
    if len(wheels) != 1:
        found = ", ".join(p.name for p in wheels) or "none"
        raise BuildError(
            f"building {package} produced {len(wheels)} wheels, expected exactly one ({found})"
        )
    (wheel,) = wheels
    if returned is not None and Path(returned).name != wheel.name:
        raise BuildError(
            f"the build backend of {package} named {returned!r} but wrote {wheel.name}"
        )
    return wheel


def check_wheel(
    wheel: Path,
    *,
    package: str,
    locked_version: str | None,
    python_version: str,
    subdir: str,
    virtual_packages: Sequence[str] = (),
    foreign: bool,
) -> WheelInfo:
    """Refuse a built wheel that does not match the lock entry or the target."""
    try:
        name, version, _, tags = parse_wheel_filename(wheel.name)
    except InvalidWheelFilename as exc:
        raise BuildError(f"building {package} gave {wheel.name}: not a wheel name ({exc})") from exc
    if canonicalize_name(name) != canonicalize_name(package):
        raise BuildError(
            f"building {package} gave a wheel of another project: {wheel.name}",
            hint="check the lock entry's location: it must point at this project's source",
        )
    if locked_version is not None and not _same_version(str(version), locked_version):
        raise BuildError(
            f"building {package} gave version {version} ({wheel.name}), the lock says "
            f"{locked_version}",
            hint="re-lock the workspace (`pixi lock`) or check that the source matches the lock",
        )
    meta_name, meta_version = read_metadata_headers(wheel)
    if canonicalize_name(meta_name) != canonicalize_name(str(name)) or not _same_version(
        meta_version, str(version)
    ):
        raise BuildError(
            f"{wheel.name}: METADATA says {meta_name} {meta_version}, which does not match "
            "the file name"
        )
    pure = is_pure(wheel.name)
    if foreign and not pure:
        raise UnsupportedPackageError(
            f"{package}: the build gave a platform-specific wheel ({wheel.name}), which this "
            f"machine cannot build for {subdir}",
            hint=RUNNER_HINT.format(subdir=subdir),
        )
    try:
        check_wheel_for_target(
            wheel,
            python_version=python_version,
            subdir=subdir,
            virtual_packages=virtual_packages,
        )
    except WheelCompatibilityError as exc:
        raise BuildError(
            f"building {package} gave a wheel the target cannot install: {exc.message}",
            hint=exc.hint,
        ) from None
    return WheelInfo(
        path=wheel,
        name=str(name),
        version=str(version),
        tags=tuple(sorted(str(t) for t in tags)),
        pure=pure,
    )
