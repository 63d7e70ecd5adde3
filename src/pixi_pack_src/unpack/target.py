"""Where the environment goes: the options checked, the output directory made, the
environment moved into place (and an existing one set aside for ``--force``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from pixi_pack_src.errors import InstallError, UsageError
from pixi_pack_src.unpack.options import STDIN_LABEL

WORK_PREFIX = ".pixi-pack-src-unpack-"


def check_env_name(name: str) -> str:
    if (
        not name
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or "\x00" in name
        or name.startswith(WORK_PREFIX)
    ):
        raise UsageError(
            f"invalid environment name {name!r}",
            hint="-e/--env-name takes a plain directory name such as `env`",
        )
    return name


def pack_source(pack: Path | str, stdin: BinaryIO | None) -> tuple[Path | BinaryIO, str]:
    if str(pack) == "-":
        if stdin is None:
            raise UsageError(
                "no standard input to read the pack from",
                hint="pipe an archive in (`cat environment.tar | pixi-pack-src unpack -`)",
            )
        return stdin, STDIN_LABEL
    path = absolute(Path(pack))
    if not path.exists():
        raise UsageError(
            f"{pack} does not exist",
            hint="pass an archive written by `pixi-pack-src pack` (default environment.tar), "
            "a directory pack, or - for standard input",
        )
    return path, str(pack)


def absolute(path: Path) -> Path:
    """Absolute and normalised (``..`` removed), without resolving symlinks (as pixi-unpack)."""
    return Path(os.path.normpath(path.absolute()))


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or child.is_relative_to(parent)


def check_apart(pack_dir: Path, output_dir: Path, prefix: Path) -> None:
    """A directory pack is never written to, nor replaced by the environment."""
    pack_real, out_real = pack_dir.resolve(), output_dir.resolve()
    if _inside(out_real, pack_real):
        raise UsageError(
            f"the output directory {output_dir} is inside the directory pack {pack_dir}",
            hint="unpack into another directory (-o/--output-directory): the pack stays as it is",
        )
    if _inside(pack_real, prefix.resolve()):
        raise UsageError(
            f"the directory pack {pack_dir} is inside the target environment {prefix}",
            hint="choose another -e/--env-name or -o/--output-directory",
        )


def check_target(prefix: Path, *, force: bool) -> None:
    if not prefix.exists() and not prefix.is_symlink():
        return
    if prefix.is_symlink() or not prefix.is_dir():
        raise InstallError(
            f"{prefix} exists and is not a directory",
            hint="choose another -e/--env-name or -o/--output-directory",
        )
    if not any(prefix.iterdir()):
        return
    if not force:
        raise InstallError(
            f"the environment {prefix} already exists and is not empty",
            hint="pass --force to replace it, or choose another -e/--env-name or "
            "-o/--output-directory",
        )
    if not (prefix / "conda-meta").is_dir():
        raise InstallError(
            f"{prefix} is not a conda environment (it has no conda-meta/): refusing to "
            "replace it, even with --force",
            hint="choose another -e/--env-name or -o/--output-directory",
        )


def make_dirs(directory: Path) -> list[Path]:
    """Create ``directory`` and missing parents; return the ones created, outermost first."""
    missing: list[Path] = []
    current = directory
    while not current.exists():
        missing.append(current)
        current = current.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InstallError(f"cannot create {directory}: {exc.strerror or exc}") from exc
    if not directory.is_dir():
        raise InstallError(f"the output directory {directory} is not a directory")
    return list(reversed(missing))


def swap_in(staging: Path, prefix: Path, workdir: Path) -> Path | None:
    """Move ``staging`` to ``prefix``; an existing environment goes into ``workdir``."""
    replaced: Path | None = None
    try:
        if prefix.is_dir():
            if any(prefix.iterdir()):
                replaced = workdir / "replaced-env"
                prefix.rename(replaced)
            else:
                prefix.rmdir()
        staging.rename(prefix)
    except OSError as exc:
        if replaced is not None and not prefix.exists():
            replaced.rename(prefix)
        raise InstallError(f"cannot move the environment into {prefix}: {exc}") from exc
    return replaced


def remove_created(created: Sequence[Path]) -> None:
    """Remove the output directories this run created (innermost first) if still empty."""
    for directory in reversed(created):
        try:
            directory.rmdir()
        except OSError:
            break
