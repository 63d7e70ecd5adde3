"""Applying a delta: the full pack from a delta and its base, and the atomic swap of an update.

:func:`complete_pack` turns the files of a delta (extracted into a private work directory) into
the full new pack, by taking every file the delta does not carry from the base, by sha256. It
never trusts the base's names: each missing file is looked up by the sha256 that the delta's
``pixi-pack-src.json`` records, and the whole pack is then verified against that record by the
ordinary unpack (every file, before anything is installed).

:func:`exchange` swaps two directories in one ``renameat2(RENAME_EXCHANGE)`` (Linux) or
``renamex_np(RENAME_SWAP)`` (macOS) call: at every instant the environment's path holds either
the old or the new environment, so even ``kill -9`` cannot leave it missing or half-written.
Elsewhere it falls back to two renames.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from pixi_pack_src.archive.metadata import PROVENANCE_JSON, Provenance, read_provenance
from pixi_pack_src.archive.reader import safe_extract
from pixi_pack_src.delta.compare import DeltaInfo, read_delta, refuse_without_base, wrong_base
from pixi_pack_src.delta.manifest import (
    DELTA_JSON,
    ENV_MANIFEST,
    ENV_PACKAGES,
    ENV_STATE_DIR,
    BaseManifest,
    read_base,
    read_manifest_file,
    short,
)
from pixi_pack_src.errors import ArchiveError, InstallError, UsageError
from pixi_pack_src.safepath import RelPath, makedirs_under, under

log = logging.getLogger(__name__)


def check_base(info: DeltaInfo, base: BaseManifest, source: str) -> None:
    """Refuse a delta whose base is not ``base`` (naming both identities)."""
    if info.base_identity != base.identity:
        raise wrong_base(info, base, source)


def base_directory(base: Path, workdir: Path) -> Path:
    """The base's files as a directory: a directory pack as it is, a tar extracted (checked,
    member by member) into ``workdir``."""
    if base.is_dir():
        return base
    dest = workdir / "base"
    safe_extract(base, dest)
    return dest


def link_or_copy(src: Path, dest: Path) -> None:
    """``dest`` gets ``src``'s bytes: a hard link when possible (same file system), else a copy."""
    try:
        os.link(src, dest, follow_symlinks=False)
    except OSError:
        shutil.copyfile(src, dest, follow_symlinks=False)


def complete_pack(
    root: Path,
    files: Sequence[str],
    provenance: Provenance,
    *,
    base_root: Path,
    base: BaseManifest,
    label: str,
) -> list[str]:
    """Fill ``root`` (the delta's files, writable) with the files it lacks from ``base_root``.

    Returns the full pack's file list. The delta declaration goes: the result is byte for byte
    the full new pack."""
    present = set(files)
    by_sha = {f.sha256: f.path for f in base.files}
    for path, (sha256, _size) in sorted(provenance.expected().items()):
        if path in present:
            continue
        source = by_sha.get(sha256.lower())
        if source is None:
            raise ArchiveError(
                f"{label} needs {path} (sha256 {sha256[:16]}…) from its base, but "
                f"{base.source} has no file with those bytes",
                hint="the base is not the one the delta was made against, or it is incomplete",
            )
        rel = RelPath.parse(path, what=f"a path in {PROVENANCE_JSON}")
        src = under(base_root, source, what=f"a file of {base.source}")
        if not src.is_file():
            raise ArchiveError(f"{base.source} lists {source}, but has no such file")
        parent = rel.rsplit("/", 1)[0] if "/" in rel else ""
        if parent:
            makedirs_under(root, parent)
        link_or_copy(src, under(root, rel))
        present.add(path)
    if DELTA_JSON in present:
        (root / DELTA_JSON).unlink()
        present.discard(DELTA_JSON)
    return sorted(present)


def copy_tree(src: Path, dest: Path, files: Sequence[str]) -> None:
    """A directory pack's files into a private directory (hard links where possible)."""
    for name in files:
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        link_or_copy(src / name, target)


def env_manifest(prefix: Path) -> BaseManifest | None:
    """The manifest of the pack an environment was unpacked from (``None``: none kept)."""
    path = prefix / ENV_STATE_DIR / ENV_MANIFEST
    if not path.is_file():
        return None
    return read_manifest_file(path, source=f"the environment {prefix}")


def kept_pack(prefix: Path) -> Path | None:
    """The pack files an environment kept (``unpack --keep-packages``), if any."""
    path = prefix / ENV_STATE_DIR / ENV_PACKAGES
    return path if path.is_dir() else None


@dataclass(frozen=True)
class Completed:
    """A pack ready for the ordinary unpack: its root, files, and what it was made from."""

    root: Path
    files: list[str]
    delta: DeltaInfo | None = None
    base: BaseManifest | None = None


def complete(
    root: Path,
    files: Sequence[str],
    *,
    in_place: bool,
    workdir: Path,
    label: str,
    base: Path | None,
    update: Path | None,
) -> Completed:
    """Step 1b of unpack: a delta pack becomes the full pack (see the module doc).

    ``root``/``files``: the pack's files (``in_place``: a directory pack, never written to).
    ``base``: ``--base``; ``update``: the environment of ``--update``. A full pack passes
    through. Identities are checked before anything is extracted or linked."""
    if DELTA_JSON not in files:
        return Completed(root, list(files))
    provenance_bytes = (root / PROVENANCE_JSON).read_bytes() if PROVENANCE_JSON in files else None
    info = read_delta((root / DELTA_JSON).read_bytes(), source=label, provenance=provenance_bytes)
    assert provenance_bytes is not None  # read_delta refuses a delta without it
    provenance = read_provenance(provenance_bytes, source=label)
    base_path = base
    if update is not None:
        have = env_manifest(update)
        if have is None:
            raise InstallError(
                f"{update} records no pack (it was not unpacked by this version of "
                "pixi-pack-src): cannot tell whether the delta fits it",
                hint="unpack the full pack instead (with --force to replace it)",
            )
        check_base(info, have, label)
        if base_path is None:
            base_path = kept_pack(update)
            if base_path is None:
                raise UsageError(
                    f"{update} kept no package files (it was unpacked without "
                    "--keep-packages): the delta needs the base's files",
                    hint=f"pass the base archive too: --base OLD.tar (identity "
                    f"{short(info.base_identity)})",
                )
    if base_path is None:
        raise refuse_without_base(info, label)
    manifest = read_base(base_path)
    check_base(info, manifest, label)
    if in_place:
        own = workdir / "pack"
        copy_tree(root, own, files)
        root = own
    base_root = base_directory(base_path, workdir)
    if base_root != base_path:
        manifest = replace(manifest, source=str(base_path))
    full = complete_pack(root, files, provenance, base_root=base_root, base=manifest, label=label)
    log.info(
        "%s: %d file(s) from the delta, %d from the base %s",
        label,
        len(info.added),
        len(info.unchanged),
        short(manifest.identity),
    )
    return Completed(root, full, info, manifest)


# -- the swap --------------------------------------------------------------------------------

_RENAME_EXCHANGE = 2  # linux/fs.h
_RENAME_SWAP = 0x2  # macOS sys/stdio.h


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name, use_errno=True)
    except OSError:
        return None


def _exchange_syscall(a: Path, b: Path) -> bool:
    """Swap ``a`` and ``b`` atomically; ``False`` when the system cannot."""
    libc = _libc()
    if libc is None:
        return False
    fa, fb = os.fsencode(a), os.fsencode(b)
    if sys.platform.startswith("linux") and hasattr(libc, "renameat2"):
        at_fdcwd = -100
        result = libc.renameat2(at_fdcwd, fa, at_fdcwd, fb, _RENAME_EXCHANGE)
    elif sys.platform == "darwin" and hasattr(libc, "renamex_np"):
        result = libc.renamex_np(fa, fb, _RENAME_SWAP)
    else:
        return False
    if result == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise InstallError(f"cannot swap {b} with the updated environment: {os.strerror(err)}")


def exchange(staging: Path, prefix: Path) -> None:
    """After this, ``prefix`` holds what ``staging`` held and ``staging`` the old ``prefix``."""
    if _exchange_syscall(staging, prefix):
        return
    log.debug("no atomic directory exchange here: two renames")
    aside = staging.with_name(staging.name + "-old")
    prefix.rename(aside)
    try:
        staging.rename(prefix)
    except OSError as exc:
        aside.rename(prefix)
        raise InstallError(f"cannot move the updated environment into {prefix}: {exc}") from exc
    aside.rename(staging)


def record_state(staging: Path, pack: Completed, *, keep_packages: bool, in_place: bool) -> str:
    """Write ``<env>/.pixi-pack-src/``: the pack's manifest (what ``manifest ENV`` and
    ``--update`` read) and, with ``keep_packages``, the pack's files for the next delta."""
    state = staging / ENV_STATE_DIR
    state.mkdir(exist_ok=True)
    manifest = read_base(pack.root)
    (state / ENV_MANIFEST).write_bytes(manifest.to_json())
    if keep_packages:
        target = state / ENV_PACKAGES
        if in_place:
            copy_tree(pack.root, target, pack.files)
        else:
            pack.root.rename(target)
    return manifest.identity
