"""One ``pixi build`` run: ``pixi build --path <pkg> --output-dir <fresh empty dir>
--target-platform <subdir>`` (``pixi publish --target-dir`` when ``build`` is gone) through
:func:`pixi_cli.run_build` (the one subprocess wrapper, :mod:`pixi_pack_src.proc`), its output
in a log file (and streamed at ``-v``); then the package files it wrote, or a
:class:`BuildError` that says why it failed and what to do (docs/pixi-build.md §2-§4, §7).
"""

from __future__ import annotations

import logging
import re
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pixi_pack_src.builders.conda import pixi_cli
from pixi_pack_src.builders.conda.backend import package_dir
from pixi_pack_src.builders.conda.jobs import BuildJob, SourceBuildOptions
from pixi_pack_src.builders.conda.matching import dep_names
from pixi_pack_src.builders.conda.pixi_cli import PixiInfo
from pixi_pack_src.builders.conda.prepare import PackageDirs, PreparedJob, WorkDirs
from pixi_pack_src.errors import BuildError
from pixi_pack_src.host import host_subdir

log = logging.getLogger(__name__)

_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class BuildOutput:
    """What one successful run wrote: its package files and what built them (the cache's and
    the provenance's ``meta``)."""

    files: tuple[Path, ...]
    meta: Mapping[str, object]
    outdir: Path
    log_file: Path
    what: str  # "pixi build of pkg (src/pkg) for linux-64", for messages


def run_pixi_build(
    job: BuildJob,
    prep: PreparedJob,
    dirs: PackageDirs,
    *,
    info: PixiInfo,
    work: WorkDirs,
    options: SourceBuildOptions,
    env_overlay: Mapping[str, str],
    workspace_lock: threading.Lock,
) -> BuildOutput:
    """Run pixi for ``job`` into a fresh output directory (holding ``workspace_lock`` while
    it runs) and collect the ``.conda``/``.tar.bz2`` files it wrote."""
    stem = f"{_safe('-'.join(job.names))}-{job.target}"
    outdir = Path(tempfile.mkdtemp(prefix=f"{stem}-", dir=work.outdir_root()))
    argv = pixi_cli.build_argv(
        info.path,
        info.command,
        package=dirs.package,
        output_dir=outdir,
        target_platform=job.target_platform,
        verbosity=options.verbosity,
        auth_file=options.auth_file,
        config_file=options.config_file,
    )
    log_file = work.log_dir() / f"{stem}-{prep.key[:12]}.log"
    what = f"pixi {info.command} of {job.label} for {job.target_platform}"
    log.info("building %s", what)
    with workspace_lock:
        inv = pixi_cli.run_build(
            argv,
            cwd=package_dir(dirs.package),
            log_file=log_file,
            env_overlay=env_overlay,
            stream=options.verbosity >= 1,
            timeout=options.timeout,
            what=what,
            cancel=options.cancel,
        )
    if inv.returncode != 0:
        raise failure(
            job,
            info,
            inv,
            outdir,
            timeout=options.timeout,
            keep_build_dir=options.keep_build_dir,
        )
    files = tuple(sorted(p for p in outdir.iterdir() if p.name.endswith((".conda", ".tar.bz2"))))
    if not files:
        raise BuildError(
            f"{what} succeeded but wrote no package into {outdir}",
            log_file=log_file,
            output_tail=inv.output_tail,
            hint="see the log; the package may produce no output for this platform",
        )
    meta = {
        "pixi-version": info.version,
        "command": info.command,
        "argv": list(job.preview_argv(info.command)),
        "backend": prep.backend.to_json() if prep.backend is not None else None,
        "backend-pinned": prep.backend.pinned if prep.backend is not None else False,
        "source": prep.identity,
        "lock-ids": list(job.lock_ids),
    }
    return BuildOutput(files=files, meta=meta, outdir=outdir, log_file=log_file, what=what)


def failure(
    job: BuildJob,
    info: PixiInfo,
    inv: pixi_cli.Invocation,
    outdir: Path,
    *,
    timeout: float | None,
    keep_build_dir: bool,
) -> BuildError:
    """The error for a run that exited non-zero: what happened by exit code, and hints."""
    code = inv.returncode
    what = f"`pixi {info.command}` of {job.label} for {job.target_platform}"
    if code == -9 and timeout is None:  # killed on a cancel (Ctrl-C)
        message = f"{what} was cancelled"
    elif code == -9:
        message = f"{what} timed out after {timeout:g} s"
    elif code == 127:
        message = f"{what} could not start: pixi not found ({info.path})"
    elif code == 101:
        message = f"{what} crashed (exit code 101, an internal pixi error)"
    elif code == 2:
        message = f"{what} was rejected as a usage error (exit code 2)"
    else:
        message = f"{what} failed with exit code {code}"
    hints = [f"the full log is {inv.log_file}"]
    if not keep_build_dir:
        hints.append("pass --keep-build-dir to keep the build's output directory")
    else:
        hints.append(f"the output directory is kept at {outdir}")
    source_runs = _source_run_deps(job)
    if (
        code == 1
        and info.command == "publish"
        and info.version_tuple >= pixi_cli.PUBLISH_SELF_CONTAINED
        and source_runs
    ):
        hints.insert(
            0,
            f"pixi {info.version}'s `pixi publish` refuses packages whose run dependencies "
            f"are source packages ({', '.join(source_runs)}; prefix-dev/pixi#6526); use a "
            "pixi that still has `pixi build`, or make the package self-contained",
        )
    if code == 2:
        hints.insert(0, f"pixi {info.version} may not accept the flags we pass; see -vv")
    if code == 101:
        hints.insert(0, "this is a pixi bug: report it to prefix-dev/pixi with the log")
    if not job.is_noarch and job.target_platform != host_subdir():
        hints.insert(
            0,
            f"build this package on a `{job.target_platform}` runner (see the CI matrix example)",
        )
    return BuildError(
        message, log_file=inv.log_file, output_tail=inv.output_tail, hint="; ".join(hints)
    )


def _safe(text: str) -> str:
    return _SAFE.sub("_", text).strip("_")[:60] or "pkg"


def _source_run_deps(job: BuildJob) -> list[str]:
    out: set[str] = set()
    for entry in job.entries:
        names = dep_names(entry.source.depends)
        out.update(n for n in entry.source.source_depends if n.lower() in names)
    return sorted(out)
