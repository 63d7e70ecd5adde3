"""``unpack``: the job, from the options to the environment in place, step by step
(:mod:`.steps`); the work directory and any output directory it made go on failure."""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

from pixi_pack_src import workdirs
from pixi_pack_src.errors import InstallError, UsageError
from pixi_pack_src.install.activation import ShellKind, default_shell, lookup_shell
from pixi_pack_src.reporter import Reporter
from pixi_pack_src.unpack import steps
from pixi_pack_src.unpack.options import UnpackOptions, UnpackResult
from pixi_pack_src.unpack.target import (
    WORK_PREFIX,
    absolute,
    check_apart,
    check_env_name,
    check_target,
    make_dirs,
    pack_source,
    remove_created,
)
from pixi_pack_src.warnlist import WarningList

logger = logging.getLogger(__name__)


def unpack(
    options: UnpackOptions, *, reporter: Reporter, stdin: BinaryIO | None = None
) -> UnpackResult:
    """Install the pack ``options.pack`` into ``output_dir/env_name`` (see the module doc).

    ``stdin`` is the binary stream read when ``options.pack`` is ``"-"``. Every py-rattler
    call has completed when this returns or raises.
    """
    requested_shell = lookup_shell(options.shell) if options.shell is not None else None
    if options.update is not None:
        prefix = absolute(options.update)
        output_dir = prefix.parent
        if not (prefix / "conda-meta").is_dir():
            raise UsageError(
                f"--update {options.update}: not an environment (it has no conda-meta/)",
                hint="pass the environment directory an earlier unpack made (DIR/ENV_NAME)",
            )
    else:
        output_dir = absolute(options.output_dir)
        prefix = output_dir / check_env_name(options.env_name)
    source, label = pack_source(options.pack, stdin)
    if isinstance(source, Path) and source.is_dir():
        check_apart(source, output_dir, prefix)
    check_target(prefix, force=options.force or options.update is not None)

    created = make_dirs(output_dir)
    try:
        workdir = Path(tempfile.mkdtemp(prefix=WORK_PREFIX, dir=output_dir))
    except OSError as exc:
        remove_created(created)
        raise InstallError(
            f"cannot write into {output_dir}: {exc.strerror or exc}",
            hint="choose a writable -o/--output-directory",
        ) from exc
    held = workdirs.claim(workdir)
    workdirs.sweep(output_dir, WORK_PREFIX)  # what killed runs left behind
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
            remove_created(created)


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
    run = steps.Run(options, label, output_dir, prefix, workdir, reporter, WarningList(logger))
    read = steps.read_pack(run, source)
    in_place = read.root is source
    pack = steps.complete_delta(run, read, in_place=in_place)
    in_place = in_place and pack.root is read.root
    checked = steps.check(run, pack.root, pack.files, read.digests)
    steps.check_virtual_packages(run, checked)
    python = steps.check_wheels(run, checked)
    steps.extract_packages(run, read, checked)
    staging = steps.install(run, checked, python)
    shell = requested_shell or default_shell(checked.meta.platform)
    identity, script = steps.into_place(
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
