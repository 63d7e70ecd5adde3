"""The pack's wheels -> the environment's site-packages, with pypa ``installer``, offline.

Before anything is written, each wheel is checked: a valid file name; member names, ``RECORD``
paths and entry-point names that stay inside the environment (:func:`check_wheel_safety`,
on top of installer's own check while writing); ``RECORD`` hashes that match the content;
``Requires-Python`` against the environment's python; and its tags against that interpreter.

The interpreter's tags and install paths are computed from the ``python`` record
(:func:`computed_interpreter`, :mod:`pixi_pack_src.wheels`): unpack never runs the
environment's python (nor any other code of the pack), so a hostile ``bin/python`` can
neither run nor steer where files go. ``python_site_packages_path`` (CEP 17) is used only
once it passed the one path check.
"""

from __future__ import annotations

import logging
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag
from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import InvalidVersion, Version
from rattler import PackageRecord

from pixi_pack_src.errors import InstallError
from pixi_pack_src.layout import tampered
from pixi_pack_src.safepath import RelPath, path_problem
from pixi_pack_src.wheels import WheelCompatibilityError, requires_python, target_tags

logger = logging.getLogger(__name__)

INSTALLER_NAME = b"pixi-pack-src\n"
SCHEMES = ("purelib", "platlib", "headers", "scripts", "data")
LauncherKind = Literal["posix", "win-ia32", "win-amd64", "win-arm", "win-arm64"]
_SCRIPT_KINDS: dict[str, LauncherKind] = {
    "win-64": "win-amd64",
    "win-32": "win-ia32",
    "win-arm64": "win-arm64",
}


@dataclass(frozen=True)
class Interpreter:
    """What the environment's python accepts and where a wheel's files go."""

    version: str
    tags: tuple[Tag, ...]  # best first
    paths: dict[str, str]  # installer scheme -> path relative to the prefix
    python: str  # relative path of the executable (for script shebangs)
    source: Literal["computed"]


def _python_relpath(platform: str) -> str:
    return "python.exe" if platform.startswith("win") else "bin/python"


def _is_windows(platform: str) -> bool:
    return platform.startswith("win")


def computed_interpreter(
    record: PackageRecord, platform: str, virtual_packages: Sequence[str] = ()
) -> Interpreter:
    """Tags and paths from the ``python`` record (for an interpreter that cannot run here)."""
    version = Version(str(record.version))
    short = f"{version.major}.{version.minor}"
    if _is_windows(platform):
        site = "Lib/site-packages"
        paths = {"scripts": "Scripts", "include": "Include"}
    else:
        site = f"lib/python{short}/site-packages"
        if record.python_site_packages_path:
            # data from the pack: checked like every other path before it is used
            site = RelPath.parse(
                str(record.python_site_packages_path), what="python_site_packages_path"
            )
        paths = {"scripts": "bin", "include": f"include/python{short}"}
    paths.update({"purelib": site, "platlib": site, "data": "."})
    tags = tuple(target_tags(str(version), platform, virtual_packages))
    return Interpreter(str(version), tags, paths, _python_relpath(platform), "computed")


# -- checks -----------------------------------------------------------------------------------


def _path_problem(name: str) -> str | None:
    if not name or name.startswith(("/", "\\")) or "\\" in name or "\x00" in name:
        return "is not a relative path"
    if len(name) > 1 and name[1] == ":":
        return "has a drive letter"
    if ".." in name.split("/"):
        return "leaves its directory ('..')"
    return path_problem(name.removesuffix("/"))  # the one path check (a zip directory ends in /)


def _refuse(wheel: Path, what: str, why: str) -> WheelCompatibilityError:
    return WheelCompatibilityError(
        f"refusing {wheel.name}: {what} {why}",
        hint="the wheel is malformed or malicious; do not install it",
    )


def check_wheel_safety(wheel: Path) -> tuple[str, str]:
    """Refuse a wheel that could write outside the environment or lies in its ``RECORD``.

    Returns the (canonical name, version) from its file name.
    """
    from installer.exceptions import InstallerError as _InstallerError
    from installer.records import parse_record_file
    from installer.sources import WheelFile
    from installer.utils import parse_entrypoints

    try:
        name, version, _, _ = parse_wheel_filename(wheel.name)
    except InvalidWheelFilename as exc:
        raise WheelCompatibilityError(
            f"{wheel.name} is not a valid wheel file name: {exc}",
            hint="pypi/ in a pack holds only wheels",
        ) from exc
    try:
        with zipfile.ZipFile(wheel) as zf:
            for member in zf.namelist():
                if problem := _path_problem(member):
                    raise _refuse(wheel, f"member {member!r}", problem)
        with WheelFile.open(wheel) as source:
            _ = source.dist_info_dir  # one .dist-info, named for the wheel (installer checks)
            record_text = source.read_dist_info("RECORD")
            for row in parse_record_file(record_text.splitlines()):
                if problem := _path_problem(row[0]):
                    raise _refuse(wheel, f"RECORD entry {row[0]!r}", problem)
            if "entry_points.txt" in source.dist_info_filenames:
                for script, *_ in parse_entrypoints(source.read_dist_info("entry_points.txt")):
                    if "/" in script or "\\" in script or script in ("", ".", ".."):
                        raise _refuse(wheel, f"entry point {script!r}", "is not a file name")
            source.validate_record(validate_contents=True)
    except WheelCompatibilityError:
        raise
    except (_InstallerError, zipfile.BadZipFile, OSError, KeyError, ValueError) as exc:
        detail = "; ".join(getattr(exc, "issues", [])) or str(exc)
        raise WheelCompatibilityError(
            f"refusing {wheel.name}: {detail}",
            hint=tampered("the wheel", "pack it again"),
        ) from exc
    return str(name), str(version)


def check_requires_python(wheel: Path, python_version: str) -> None:
    """Refuse a wheel whose ``Requires-Python`` excludes the environment's python."""
    spec = requires_python(wheel)
    if not spec:
        return
    try:
        ok = Version(python_version) in SpecifierSet(spec)
    except (InvalidSpecifier, InvalidVersion):
        logger.warning("%s: cannot read Requires-Python %r; not checked", wheel.name, spec)
        return
    if not ok:
        raise WheelCompatibilityError(
            f"{wheel.name} requires python {spec}, the environment has python {python_version}",
            hint="pack a release of the package that supports this python",
        )


def check_tags(wheel: Path, interpreter: Interpreter, platform: str) -> None:
    """Refuse a wheel none of whose tags the interpreter accepts."""
    _, _, _, tags = parse_wheel_filename(wheel.name)
    if set(interpreter.tags).intersection(tags):
        return
    shown = ", ".join(sorted(str(t) for t in tags))
    where = " (computed from its record)"
    raise WheelCompatibilityError(
        f"{wheel.name} ({shown}) cannot be installed by the environment's python "
        f"{interpreter.version} on {platform}{where}",
        hint=f"pack a wheel built for python {interpreter.version} on {platform}",
    )


# -- install ----------------------------------------------------------------------------------


def install_wheel(
    wheel: Path,
    *,
    staging: Path,
    final_prefix: Path,
    interpreter: Interpreter,
    platform: str,
) -> None:
    """Install one (checked) wheel into ``staging``; scripts point at ``final_prefix``."""
    from installer import install
    from installer.destinations import SchemeDictionaryDestination
    from installer.exceptions import InstallerError as _InstallerError
    from installer.sources import WheelFile

    name, _, _, _ = parse_wheel_filename(wheel.name)
    paths = interpreter.paths
    scheme = {
        "purelib": staging / paths["purelib"],
        "platlib": staging / paths["platlib"],
        "headers": staging / paths.get("include", "include") / str(name),
        "scripts": staging / paths["scripts"],
        "data": staging / paths["data"],
    }
    script_kind = _SCRIPT_KINDS.get(platform, "posix")
    destination = SchemeDictionaryDestination(
        {k: str(v) for k, v in scheme.items()},
        interpreter=str(final_prefix / interpreter.python),
        script_kind=script_kind,
        bytecode_optimization_levels=(),
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # skipped __pycache__ members
            with WheelFile.open(wheel) as source:
                install(
                    source,
                    destination,
                    additional_metadata={"INSTALLER": INSTALLER_NAME},
                )
    except FileExistsError as exc:
        raise InstallError(
            f"installing {wheel.name} would overwrite {_shown(exc, staging, final_prefix)}",
            hint="a wheel and another package (conda or PyPI) ship the same file; "
            "keep only one of them in the workspace",
        ) from exc
    except (_InstallerError, OSError, ValueError, KeyError) as exc:
        raise InstallError(
            f"installing {wheel.name} failed: {_shown(exc, staging, final_prefix)}"
        ) from exc


def _shown(exc: BaseException, staging: Path, final_prefix: Path) -> str:
    """The exception text with the staging directory shown as the final prefix."""
    return str(exc).replace(str(staging), str(final_prefix))
