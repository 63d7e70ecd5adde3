"""``unpack``: a pack (tar file, standard input or directory) -> checked -> an environment.

The steps of pixi-unpack (docs/archive-format.md, "Checking a pack"), plus the checks it leaves out:

1. **Read the pack.** A tar is checked member by member before anything is written
   (:func:`pixi_pack_src.archive.reader.safe_extract`) and extracted into a private work directory
   next to the target; a directory pack is used in place and never written to (it may hold
   only regular files and directories).
2-4. **The checks of ``verify``** (:func:`pixi_pack_src.verify.checks.check_pack`, one
   implementation), refusing on the first finding: ``pixi-pack.json`` as strict as
   pixi-unpack (the platform must be this machine's unless ``platform_check`` is off);
   ``pixi-pack-src.json`` for the same platform, listing every file with its sha256 and size;
   the channel (only the pack's subdir and ``noarch``, every package listed in its subdir's
   ``repodata.json`` and equal to its record, every listed package present); ``pypi/`` only
   wheels; ``environment.yml`` naming exactly those; every dependency inside the pack. A plain
   format-1 archive has no record of its wheels: a warning says so.
5. **Virtual packages** (``__glibc``, ``__osx``, ``__cuda``, ``__linux``): the host must reach
   what the lock assumed and what the packages depend on (:mod:`.virtual_packages`).
6. **Wheels**: safe paths, ``RECORD`` hashes, ``Requires-Python``, then the tags of the
   environment's python, computed from its record (unpack runs no code of the pack: not even
   the environment's python). **Packages**: each is extracted by py-rattler's extractor where
   its installer links it from, and its file list is checked there (what is checked is what
   is installed).
7. **Install** into a staging directory inside the work directory, with every embedded path set
   to the final prefix (:mod:`.install_conda`, :mod:`.install_wheels`); then move it into place
   (replacing an existing environment only with ``force``) and write ``activate.<ext>``
   (:mod:`.activation`).

On any failure the work directory goes, with the staging environment; an environment that
``force`` replaced comes back, and directories created for the output are removed. No network
is used: records are ``file://`` and py-rattler's installer only reads them.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

from rattler import PackageRecord

from pixi_pack_src import __version__, workdirs
from pixi_pack_src.archive.metadata import PackMetadata, Provenance, a_machine, check_platform
from pixi_pack_src.archive.reader import is_metadata_member, safe_extract
from pixi_pack_src.delta.apply import Completed, complete, exchange, kept_pack, record_state
from pixi_pack_src.delta.compare import DeltaInfo
from pixi_pack_src.errors import ArchiveError, InstallError, PackFormatError, UsageError
from pixi_pack_src.hashing import hash_file
from pixi_pack_src.host import host_subdir
from pixi_pack_src.install.activation import (
    ShellKind,
    default_shell,
    lookup_shell,
    write_activation_script,
)
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
from pixi_pack_src.verify.checks import check_pack
from pixi_pack_src.verify.model import MemberDigest
from pixi_pack_src.verify.scan import scan_extracted
from pixi_pack_src.warnlist import WarningList

logger = logging.getLogger(__name__)

JSON_VERSION = 1
STDIN_LABEL = "the archive on standard input"
_WORK_PREFIX = ".pixi-pack-src-unpack-"


@dataclass(frozen=True)
class UnpackOptions:
    """What ``pixi-pack-src unpack`` was asked to do (see the CLI for the flags)."""

    pack: Path | Literal["-"]
    output_dir: Path
    env_name: str = "env"
    shell: str | None = None
    platform_check: bool = True
    virtual_package_check: bool = True
    force: bool = False
    base: Path | None = None  # --base: the pack a delta was made against
    update: Path | None = None  # --update: the environment to update in place (atomically)
    keep_packages: bool = False  # keep the pack's files in <env>/.pixi-pack-src/pack


@dataclass(frozen=True)
class UnpackResult:
    """An unpacked environment, and what was checked on the way."""

    environment: Path
    activation_script: Path
    shell: str
    platform: str
    conda_packages: int
    wheels: int
    verified: int  # package files whose bytes matched a recorded hash
    verified_against: Literal["pixi-pack-src.json", "repodata.json"]
    warnings: tuple[str, ...]
    identity: str | None = None  # of the environment's pack (delta/manifest.py)
    delta: DeltaInfo | None = None  # when a delta was applied

    def to_json(self) -> dict[str, Any]:
        """The versioned ``--json`` document."""
        return {
            "version": JSON_VERSION,
            "tool": {"name": "pixi-pack-src", "version": __version__},
            "environment": str(self.environment),
            "activation_script": str(self.activation_script),
            "shell": self.shell,
            "platform": self.platform,
            "conda_packages": self.conda_packages,
            "wheels": self.wheels,
            "verified": self.verified,
            "verified_against": self.verified_against,
            "warnings": list(self.warnings),
            "identity": self.identity,
            "delta": self.delta.summary() if self.delta is not None else None,
        }


def unpack(
    options: UnpackOptions, *, reporter: Reporter, stdin: BinaryIO | None = None
) -> UnpackResult:
    """Install the pack ``options.pack`` into ``output_dir/env_name`` (see the module doc).

    ``stdin`` is the binary stream read when ``options.pack`` is ``"-"``. Every py-rattler
    call has completed when this returns or raises.
    """
    requested_shell = lookup_shell(options.shell) if options.shell is not None else None
    if options.update is not None:
        prefix = _absolute(options.update)
        output_dir = prefix.parent
        if not (prefix / "conda-meta").is_dir():
            raise UsageError(
                f"--update {options.update}: not an environment (it has no conda-meta/)",
                hint="pass the environment directory an earlier unpack made (DIR/ENV_NAME)",
            )
    else:
        output_dir = _absolute(options.output_dir)
        prefix = output_dir / _check_env_name(options.env_name)
    source, label = _pack_source(options.pack, stdin)
    if isinstance(source, Path) and source.is_dir():
        _check_apart(source, output_dir, prefix)
    _check_target(prefix, force=options.force or options.update is not None)

    created = _make_dirs(output_dir)
    try:
        workdir = Path(tempfile.mkdtemp(prefix=_WORK_PREFIX, dir=output_dir))
    except OSError as exc:
        _remove_created(created)
        raise InstallError(
            f"cannot write into {output_dir}: {exc.strerror or exc}",
            hint="choose a writable -o/--output-directory",
        ) from exc
    held = workdirs.claim(workdir)
    workdirs.sweep(output_dir, _WORK_PREFIX)  # what killed runs left behind
    done = False
    try:
        result = _unpack(
            options,
            source=source,
            label=label,
            output_dir=output_dir,
            prefix=prefix,
            workdir=workdir,
            requested_shell=requested_shell,
            reporter=reporter,
        )
        done = True
        return result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        held.release()
        if not done:
            _remove_created(created)


def _remove_created(created: Sequence[Path]) -> None:
    """Remove the output directories this run created (innermost first) if still empty."""
    for directory in reversed(created):
        try:
            directory.rmdir()
        except OSError:
            break


@dataclass
class _Run:
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
class _Read:
    """The pack's files (step 1): where they are and, for an archive, their digests."""

    root: Path
    files: list[str]
    digests: dict[str, tuple[str, int]]  # taken while extracting (empty for a directory)


@dataclass(frozen=True)
class _Checked:
    """What the checks of ``verify`` found (steps 2-4)."""

    meta: PackMetadata
    provenance: Provenance | None
    packages: list[ChannelPackage]
    wheels: list[Path]
    verified: int
    verified_against: Literal["pixi-pack-src.json", "repodata.json"]


def _unpack(
    options: UnpackOptions,
    *,
    source: Path | BinaryIO,
    label: str,
    output_dir: Path,
    prefix: Path,
    workdir: Path,
    requested_shell: ShellKind | None,
    reporter: Reporter,
) -> UnpackResult:
    run = _Run(options, label, output_dir, prefix, workdir, reporter, WarningList(logger))
    read = _read_pack(run, source)
    in_place = read.root is source
    pack = _complete_delta(run, read, in_place=in_place)
    in_place = in_place and pack.root is read.root
    checked = _check(run, pack.root, pack.files, read.digests)
    _check_virtual_packages(run, checked)
    python = _check_wheels(run, checked)
    extract_and_check(checked.packages, cache_dir=workdir / "cache", label=label)
    staging = _install(run, checked, python)
    shell = requested_shell or default_shell(checked.meta.platform)
    identity, script = _into_place(
        run, pack, staging, shell, platform=checked.meta.platform, in_place=in_place
    )
    logger.info("unpacked %s into %s", label, prefix)
    return UnpackResult(
        environment=prefix,
        activation_script=script,
        shell=shell.name,
        platform=checked.meta.platform,
        conda_packages=len(checked.packages),
        wheels=len(checked.wheels),
        verified=checked.verified,
        verified_against=checked.verified_against,
        warnings=tuple(run.warn.items),
        identity=identity,
        delta=pack.delta,
    )


def _read_pack(run: _Run, source: Path | BinaryIO) -> _Read:
    """1. The pack's files: a directory in place; an archive read once, each member checked
    before it is written and hashed while it is written."""
    if isinstance(source, Path) and source.is_dir():
        return _Read(source, _walk_pack_dir(source, run.label), {})
    root = run.workdir / "pack"
    run.reporter.status(f"⏳ extracting {run.label}")
    unpacked = safe_extract(source, root)
    return _Read(root, list(unpacked), unpacked.digests)


def _complete_delta(run: _Run, read: _Read, *, in_place: bool) -> Completed:
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


def _check(
    run: _Run, root: Path, files: list[str], extracted: Mapping[str, tuple[str, int]]
) -> _Checked:
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
        md5_of=lambda name: _md5(root / name),
    )
    for message in inspection.warnings:
        run.warn.keep(message)
    inspection.raise_first()
    assert inspection.meta is not None  # no findings: pixi-pack.json was read
    return _Checked(
        meta=inspection.meta,
        provenance=inspection.provenance,
        packages=channel_packages(root, inspection.records),
        wheels=[root / name for name in inspection.wheels],
        verified=inspection.verified,
        verified_against=inspection.verified_against,
    )


def _locked_virtual(checked: _Checked) -> Sequence[str]:
    provenance = checked.provenance
    return provenance.platform.virtual_packages if provenance is not None else ()


def _check_virtual_packages(run: _Run, checked: _Checked) -> None:
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


def _check_wheels(run: _Run, checked: _Checked) -> PackageRecord | None:
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


def _install(run: _Run, checked: _Checked, python: PackageRecord | None) -> Path:
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


def _into_place(
    run: _Run,
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
    _check_target(prefix, force=options.force)
    replaced = _swap_in(staging, prefix, run.workdir)
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


# -- options and target -----------------------------------------------------------------------


def _check_env_name(name: str) -> str:
    if (
        not name
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or "\x00" in name
        or name.startswith(_WORK_PREFIX)
    ):
        raise UsageError(
            f"invalid environment name {name!r}",
            hint="-e/--env-name takes a plain directory name such as `env`",
        )
    return name


def _pack_source(pack: Path | str, stdin: BinaryIO | None) -> tuple[Path | BinaryIO, str]:
    if str(pack) == "-":
        if stdin is None:
            raise UsageError(
                "no standard input to read the pack from",
                hint="pipe an archive in (`cat environment.tar | pixi-pack-src unpack -`)",
            )
        return stdin, STDIN_LABEL
    path = _absolute(Path(pack))
    if not path.exists():
        raise UsageError(
            f"{pack} does not exist",
            hint="pass an archive written by `pixi-pack-src pack` (default environment.tar), "
            "a directory pack, or - for standard input",
        )
    return path, str(pack)


def _absolute(path: Path) -> Path:
    """Absolute and normalised (``..`` removed), without resolving symlinks (as pixi-unpack)."""
    return Path(os.path.normpath(path.absolute()))


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or child.is_relative_to(parent)


def _check_apart(pack_dir: Path, output_dir: Path, prefix: Path) -> None:
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


def _check_target(prefix: Path, *, force: bool) -> None:
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


def _make_dirs(directory: Path) -> list[Path]:
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


def _swap_in(staging: Path, prefix: Path, workdir: Path) -> Path | None:
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


# -- reading the pack -------------------------------------------------------------------------


def _walk_pack_dir(root: Path, label: str) -> list[str]:
    """Regular files of a directory pack (relative, ``/``-separated); links are refused."""
    files: list[str] = []
    for directory, dirnames, filenames in os.walk(root):
        here = Path(directory)
        for name in sorted([*dirnames, *filenames]):
            path = here / name
            rel = path.relative_to(root).as_posix()
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                raise ArchiveError(
                    f"refusing the directory pack {label}: {rel} is a symbolic link",
                    hint="a pack holds only regular files and directories",
                )
            if stat.S_ISREG(mode):
                cap = max_metadata_bytes()
                if is_metadata_member(rel) and path.lstat().st_size > cap:
                    raise ArchiveError(
                        f"refusing the directory pack {label}: {rel} is larger than the "
                        f"{cap}-byte limit for metadata (PIXI_PACK_SRC_MAX_METADATA_BYTES)",
                        hint="the pack is damaged or hostile",
                    )
                files.append(rel)
            elif not stat.S_ISDIR(mode):
                raise ArchiveError(
                    f"refusing the directory pack {label}: {rel} is not a regular file",
                    hint="a pack holds only regular files and directories",
                )
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
