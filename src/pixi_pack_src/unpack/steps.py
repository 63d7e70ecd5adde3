"""The steps of an unpack (see :mod:`pixi_pack_src.unpack`), one function each, and the
state they share (:class:`Run`)."""

from __future__ import annotations

import concurrent.futures
import logging
import os
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

from rattler import PackageRecord

from pixi_pack_src.archive.metadata import PackMetadata, Provenance, a_machine, check_platform
from pixi_pack_src.archive.reader import is_metadata_member, safe_extract
from pixi_pack_src.delta.apply import Completed, complete, exchange, kept_pack, record_state
from pixi_pack_src.errors import ArchiveError, InstallError, PackFormatError
from pixi_pack_src.hashing import hash_file
from pixi_pack_src.host import host_subdir
from pixi_pack_src.install.activation import ShellKind, write_activation_script
from pixi_pack_src.install.conda import (
    ChannelPackage,
    channel_packages,
    extract_and_check,
    install_records,
)
from pixi_pack_src.install.virtual_packages import (
    VirtualPackageError,
    check_depends,
    check_locked,
    detect_host,
)
from pixi_pack_src.install.wheels import (
    check_requires_python,
    check_tags,
    check_wheel_safety,
    computed_interpreter,
    install_wheel,
)
from pixi_pack_src.layout import PYPI_DIR
from pixi_pack_src.limits import max_metadata_bytes
from pixi_pack_src.reporter import Reporter
from pixi_pack_src.units import human_bytes
from pixi_pack_src.unpack.options import UnpackOptions
from pixi_pack_src.unpack.packages import PackageReader
from pixi_pack_src.unpack.target import check_target, swap_in
from pixi_pack_src.verify.checks import check_pack
from pixi_pack_src.verify.model import Finding, MemberDigest
from pixi_pack_src.verify.scan import scan_extracted, walk_pack_dir
from pixi_pack_src.warnlist import WarningList

logger = logging.getLogger(__name__)


@dataclass
class Run:
    """One unpack: what every step needs."""

    options: UnpackOptions
    label: str
    output_dir: Path
    prefix: Path
    workdir: Path
    reporter: Reporter
    warn: WarningList
    host: str = field(default_factory=host_subdir)


@dataclass(frozen=True)
class Read:
    """The pack's files (step 1): where they are and, for an archive, their digests."""

    root: Path
    files: list[str]
    digests: dict[str, tuple[str, int]]  # taken while extracting (empty for a directory)
    packages: PackageReader | None = None  # packages extracted while the tar was read


@dataclass(frozen=True)
class Checked:
    """What the checks of ``verify`` found (steps 2-4)."""

    meta: PackMetadata
    provenance: Provenance | None
    packages: list[ChannelPackage]
    wheels: list[Path]
    verified: int
    verified_against: Literal["pixi-pack-src.json", "repodata.json"]
    sha256: dict[str, str]  # every file's digest, as checked


def read_pack(run: Run, source: Path | BinaryIO) -> Read:
    """1. The pack's files: a directory in place; an archive read once, each member checked
    before it is written and hashed while it is written."""
    if isinstance(source, Path) and source.is_dir():
        return Read(source, _walk_pack_dir(source, run.label), {})
    root = run.workdir / "pack"
    run.reporter.status(f"⏳ extracting {run.label}")
    options = run.options
    if options.keep_packages or (options.update is not None and kept_pack(options.update)):
        return _read_all(source, root)  # the package files are kept: written as they are
    staging = run.workdir / "cache" / ".extracting"
    staging.mkdir(parents=True)
    reader = PackageReader(staging, run.label)
    workers = max(1, min(4, os.cpu_count() or 1))
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        unpacked = safe_extract(source, root, divert=reader.diversion(pool))
    return Read(root, list(unpacked), unpacked.digests, reader)


def _read_all(source: Path | BinaryIO, root: Path) -> Read:
    unpacked = safe_extract(source, root)
    return Read(root, list(unpacked), unpacked.digests)


def extract_packages(run: Run, read: Read, checked: Checked) -> None:
    """6b. Every package in the package-cache layout, its file list checked there: those
    read straight from the tar in step 1 (an error held back until the digests were found
    right is raised now), the others extracted from their files."""
    reader = read.packages
    if reader is not None:
        reader.raise_failure()
    digests = {**{n: d[0] for n, d in read.digests.items()}, **checked.sha256}
    extract_and_check(
        checked.packages,
        cache_dir=run.workdir / "cache",
        label=run.label,
        sha256=digests,
        extracted=reader.extracted if reader is not None else None,
        budget=reader.budget if reader is not None else None,
    )


def complete_delta(run: Run, read: Read, *, in_place: bool) -> Completed:
    """1b. A delta pack becomes the full pack, from its base (identities checked first)."""
    return complete(
        read.root,
        read.files,
        in_place=in_place,
        workdir=run.workdir,
        label=run.label,
        base=run.options.base,
        update=run.options.update,
    )


def check(
    run: Run, root: Path, files: list[str], extracted: Mapping[str, tuple[str, int]]
) -> Checked:
    """2-4. The checks ``verify`` runs (one implementation): metadata, every file's sha256
    against pixi-pack-src.json, the channel against repodata.json, environment.yml, the
    dependencies; this machine's platform right after pixi-pack.json is read."""
    label, host = run.label, run.host

    def platform_check(meta: PackMetadata) -> None:
        if meta.platform == host:
            return
        if run.options.platform_check:
            try:
                check_platform(meta, host)
            except PackFormatError as exc:
                raise PackFormatError(
                    f"{exc.message}: {label} is for {meta.platform}, this machine is {host}",
                    hint=f"unpack it on {a_machine(meta.platform)}, or pass --platform-check off "
                    "to install it here anyway (e.g. for an image of that platform)",
                ) from None
        else:
            run.warn(
                f"{label} is for {meta.platform}, this machine is {host}: installing anyway "
                "(--platform-check off); post-link steps and the interpreter are not run"
            )

    digests = {n: MemberDigest(*extracted[n]) for n in files if n in extracted}
    digests.update(_hash_files(root, [n for n in files if n not in digests], run.reporter))
    total = sum(d.size for d in digests.values())
    run.reporter.status(f"✅ checked the sha256 of {len(digests)} files ({human_bytes(total)})")
    inspection = check_pack(
        scan_extracted(root, files, digests, label=label),
        channel_root=root,
        after_metadata=platform_check,
        md5_of=lambda name: _md5(root / name) if (root / name).is_file() else None,
    )
    for message in inspection.warnings:
        run.warn.keep(message)
    inspection.raise_first()
    assert inspection.meta is not None  # no findings: pixi-pack.json was read
    return Checked(
        meta=inspection.meta,
        provenance=inspection.provenance,
        packages=channel_packages(root, inspection.records),
        wheels=[root / name for name in inspection.wheels],
        verified=inspection.verified,
        verified_against=inspection.verified_against,
        sha256={name: d.sha256 for name, d in digests.items()},
    )


def _locked_virtual(checked: Checked) -> Sequence[str]:
    provenance = checked.provenance
    return provenance.platform.virtual_packages if provenance is not None else ()


def check_virtual_packages(run: Run, checked: Checked) -> None:
    """5. Virtual packages: the host reaches what the lock assumed and the packages need."""
    platform = checked.meta.platform
    if not run.options.virtual_package_check:
        logger.info("virtual packages not checked (--virtual-package-check off)")
    elif platform != run.host:
        run.warn(f"virtual packages not checked: {run.label} is for {platform}, not {run.host}")
    else:
        host_virtual = detect_host()
        for message in check_locked(_locked_virtual(checked), host_virtual, source=run.label):
            run.warn(message)
        check_depends([p.record for p in checked.packages], host_virtual)


def check_wheels(run: Run, checked: Checked) -> PackageRecord | None:
    """6. Wheels, before anything is installed: safe paths, ``RECORD``, ``Requires-Python``;
    the python record they are installed for."""
    packages, wheels = checked.packages, checked.wheels
    python = next((p.record for p in packages if p.record.name.normalized == "python"), None)
    if wheels and python is None:
        raise InstallError(
            f"No python record found: {run.label} has wheels in {PYPI_DIR}/ but no python package",
            hint="add python to the workspace's environment and pack it again",
        )
    for wheel in wheels:
        check_wheel_safety(wheel)
        if python is not None:
            check_requires_python(wheel, str(python.version))
    return python


def install(run: Run, checked: Checked, python: PackageRecord | None) -> Path:
    """7. Install into a staging directory, every embedded path set to the final prefix
    (each package was extracted where the installer links it from and its file list checked
    there: nothing may be linked outside the prefix)."""
    packages, wheels, reporter = checked.packages, checked.wheels, run.reporter
    staging = run.workdir / "env"
    reporter.status(f"⏳ installing {len(packages)} conda packages into {run.prefix}")
    reporter.stage_started("install", items=len(packages) + len(wheels))
    try:
        reporter.task_started("conda", label=f"{len(packages)} conda packages")
        try:
            install_records(
                [p.record for p in packages],
                staging,
                final_prefix=run.prefix,
                cache_dir=run.workdir / "cache",
                platform=checked.meta.platform,
                origins=_origins(checked.provenance),
            )
        except BaseException:
            reporter.task_finished("conda", outcome="failed")
            raise
        reporter.task_finished("conda", outcome="installed")
        if wheels:
            assert python is not None
            _install_wheels(
                wheels,
                staging=staging,
                prefix=run.prefix,
                workdir=run.workdir,
                python=python,
                platform=checked.meta.platform,
                host=run.host,
                locked_virtual=_locked_virtual(checked),
                reporter=reporter,
                warn=run.warn,
            )
    finally:
        reporter.stage_finished("install")
    return staging


def into_place(
    run: Run,
    pack: Completed,
    staging: Path,
    shell: ShellKind,
    *,
    platform: str,
    in_place: bool,
) -> tuple[str | None, Path]:
    """8. What the environment came from (for deltas), into place, the activation script."""
    options, prefix = run.options, run.prefix
    keep = options.keep_packages or (
        options.update is not None and kept_pack(options.update) is not None
    )
    identity = record_state(staging, pack, keep_packages=keep, in_place=in_place)
    if options.update is not None:
        exchange(staging, prefix)  # atomic: the old environment until this very call
        try:
            script = write_activation_script(run.output_dir, prefix, shell, platform)
        except BaseException:
            exchange(staging, prefix)
            raise
        return identity, script
    check_target(prefix, force=options.force)
    replaced = swap_in(staging, prefix, run.workdir)
    try:
        script = write_activation_script(run.output_dir, prefix, shell, platform)
    except BaseException:
        shutil.rmtree(prefix, ignore_errors=True)
        if replaced is not None:
            replaced.rename(prefix)
        raise
    return identity, script


def _install_wheels(
    wheels: Sequence[Path],
    *,
    staging: Path,
    prefix: Path,
    workdir: Path,
    python: PackageRecord,
    platform: str,
    host: str,
    locked_virtual: Sequence[str],
    reporter: Reporter,
    warn: Callable[[str], None],
) -> None:
    # computed from the python record, and from this machine's virtual packages when the pack
    # is for it (as the interpreter would: its manylinux tags follow the host's glibc), else
    # the lock's; the environment's own python is never run (unpack runs no code of the pack)
    virtual: Sequence[str] = locked_virtual
    if platform == host:
        try:
            virtual = [str(v) for v in detect_host().values()]
        except VirtualPackageError as exc:
            logger.info("wheel tags from the lock's virtual packages: %s", exc)
    interpreter = computed_interpreter(python, platform, virtual)
    for wheel in wheels:
        check_tags(wheel, interpreter, platform)
        check_requires_python(wheel, interpreter.version)
    for wheel in wheels:
        key = f"wheel:{wheel.name}"
        reporter.task_started(key, label=wheel.name)
        try:
            install_wheel(
                wheel,
                staging=staging,
                final_prefix=prefix,
                interpreter=interpreter,
                platform=platform,
            )
        except BaseException:
            reporter.task_finished(key, outcome="failed")
            raise
        reporter.task_finished(key, outcome="installed")


def _origins(provenance: Provenance | None) -> dict[str, str]:
    """Package file name -> the URL ``pack`` downloaded it from (when it says)."""
    found: dict[str, str] = {}
    for artifact in provenance.artifacts if provenance is not None else ():
        url = artifact.origin.get("url")
        if artifact.kind == "conda" and isinstance(url, str) and "://" in url:
            found[artifact.path.rsplit("/", 1)[-1]] = url
    return found


# -- reading the pack -------------------------------------------------------------------------


def _walk_pack_dir(root: Path, label: str) -> list[str]:
    """Regular files of a directory pack (relative, ``/``-separated), sorted; links and other
    non-regular files are refused (:func:`~pixi_pack_src.verify.scan.walk_pack_dir`, the walk
    ``verify`` makes), and so is metadata over its size limit."""

    def refuse(finding: Finding) -> None:
        raise ArchiveError(finding.message, hint=finding.hint)

    files: list[str] = []
    cap = max_metadata_bytes()
    for rel, path in walk_pack_dir(root, label, refuse):
        if is_metadata_member(rel) and path.lstat().st_size > cap:
            raise ArchiveError(
                f"refusing the directory pack {label}: {rel} is larger than the "
                f"{cap}-byte limit for metadata (PIXI_PACK_SRC_MAX_METADATA_BYTES)",
                hint="the pack is damaged or hostile",
            )
        files.append(rel)
    return sorted(files)


# -- integrity --------------------------------------------------------------------------------


def _digest(path: Path) -> MemberDigest:
    sha, _, size = hash_file(path, md5=False)
    return MemberDigest(sha, size)


def _md5(path: Path) -> str:
    return hash_file(path)[1]


def _hash_files(root: Path, names: Iterable[str], reporter: Reporter) -> dict[str, MemberDigest]:
    """sha256 and size of every file, a few at a time (hashlib releases the GIL)."""
    ordered = sorted(names)
    if not ordered:
        return {}
    # No per-file task: the reporter's finished-task line would need an outcome "verified".
    reporter.stage_started("verify", items=len(ordered))
    try:
        workers = max(1, min(4, os.cpu_count() or 1))
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {n: pool.submit(_digest, root / n) for n in ordered}
            digests = {n: f.result() for n, f in futures.items()}
    finally:
        reporter.stage_finished("verify")
    return digests
