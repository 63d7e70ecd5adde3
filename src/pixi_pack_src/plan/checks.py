"""What a pack would refuse or warn about, judged from the lock and the options alone.

Every refusal a plan can know is gathered here before any request is made, so that ``pack``
raises them all together before its first download and ``inspect`` reports the same error:
unsupported entries, unpinned build backends, PyPI entries that cannot be built, missing
source trees, unusable ``--inject`` files, a lock older than its manifest, an environment
without packages. The warnings are what a pack would say and still do.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from pixi_pack_src.archive.channel import record_from_archive
from pixi_pack_src.builders.conda.backend import BackendStatus
from pixi_pack_src.builders.conda.jobs import unsupported_location
from pixi_pack_src.errors import EXIT_BUILD, EXIT_USAGE, WorkspaceError
from pixi_pack_src.lock.lockfile import Lock
from pixi_pack_src.lock.model import CondaSource, LockedEnvironment, PypiPackage
from pixi_pack_src.lock.satisfiability import manifest_dependencies, mismatches
from pixi_pack_src.plan.model import PlanItem, Refusal

# -- refusals ----------------------------------------------------------------------------------


def unsupported_source(src: CondaSource) -> Refusal | None:
    """A source package that cannot be built (the build engine's rule and words)."""
    error = unsupported_location(src)
    if error is None:
        return None
    return Refusal(error.message, hint=error.hint, exit_code=error.exit_code)


def backend_refusal(backend: BackendStatus) -> Refusal | None:
    """The backend pin rule's verdict on one ``pixi build`` invocation."""
    if backend.problem is None:
        return None
    return Refusal(backend.problem, backend.hint, backend.exit_code)


def remote_tree(pkg: PypiPackage) -> Refusal:
    return Refusal(
        f"PyPI package {pkg.name} at {pkg.location}: a remote location that is neither "
        "a wheel nor an sdist is not supported",
        hint="lock a wheel, an sdist or a git source of it, or build the wheel "
        "yourself and pass it with --inject",
    )


def not_built(pkg: PypiPackage) -> Refusal:
    """A PyPI entry that must be built while ``--no-build-sdist`` says not to."""
    return Refusal(
        f"PyPI package {pkg.name} ({pkg.location}) is not a wheel ({pkg.kind}) and "
        "--no-build-sdist was given",
        hint="drop --no-build-sdist to build it into a wheel, or pass "
        "--ignore-pypi-non-wheel to skip it with a warning",
    )


def missing_tree(pkg: PypiPackage) -> Refusal | None:
    """A local source tree to build that is not there."""
    if pkg.kind != "source-tree" or pkg.path is None or pkg.path.is_dir():
        return None
    return Refusal(
        f"the source tree of {pkg.name} is missing: {pkg.path}",
        hint="check the `pypi:` location in pixi.lock (relative to the workspace)",
        exit_code=EXIT_BUILD,
    )


def inject_refusals(paths: Sequence[Path], subdir: str) -> list[Refusal]:
    """``--inject`` files: present, of a kind that can be added, conda ones for ``subdir``."""
    out = []
    for path in paths:
        if not path.is_file():
            out.append(Refusal(f"--inject {path}: no such file", exit_code=EXIT_USAGE))
        elif path.name.endswith((".conda", ".tar.bz2")):
            record = record_from_archive(path)
            if record.subdir not in (subdir, "noarch"):
                out.append(
                    Refusal(
                        f"--inject {path}: a package for {record.subdir}, but the pack is for "
                        f"{subdir}",
                        hint=f"inject a package built for {subdir} or noarch",
                        exit_code=EXIT_USAGE,
                    )
                )
        elif not path.name.endswith(".whl"):
            out.append(
                Refusal(
                    f"--inject {path}: not a .conda, .tar.bz2 or .whl file", exit_code=EXIT_USAGE
                )
            )
    return out


def lock_refusal(
    manifest: Path | None, envs: Sequence[LockedEnvironment], *, frozen: bool = False
) -> Refusal | None:
    """pixi's "lock out of date": every dependency the manifest names for the environment must
    be locked for each chosen platform (:mod:`pixi_pack_src.lock.satisfiability`). Judged with
    the plan, before anything is fetched or built; ``--frozen`` (pixi's word) packs the lock
    as it is."""
    if frozen or manifest is None:
        return None
    hint = "run `pixi lock` to update it, or pass --frozen to pack the lock as it is"
    missing: list[str] = []
    where = ""
    for env in envs:
        try:
            deps = manifest_dependencies(manifest, env.environment, env.platform.subdir)
        except WorkspaceError as exc:
            return Refusal(f"pixi.lock is out of date: {exc.message}", hint=hint)
        found = mismatches(deps, env)
        for mismatch in found:
            text = mismatch.describe()
            if text not in missing:
                missing.append(text)
        if found and not where:
            where = f"environment '{env.environment}' on {env.platform.name}"
    if not missing:
        return None
    return Refusal(
        f"pixi.lock is out of date: {manifest.name} asks for what {where} does not lock: "
        f"{_first_five(missing)}",
        hint=hint,
    )


def empty_environment(lock: Lock, environment: str, platforms: Sequence[str]) -> Refusal:
    """``environment`` has no packages on ``platforms`` (or on any platform when empty);
    names the environments and platforms that do."""
    where = f"for {', '.join(platforms)}" if platforms else "on any platform"
    return Refusal(
        f"environment '{environment}' of {lock.path.name} has no packages {where}; "
        f"with packages: {_populated(lock) or 'none'}",
        hint="choose an environment and platforms that have packages (-e ENV, -p PLATFORM)",
    )


def _populated(lock: Lock) -> str:
    """``env (platform, ...)`` for every environment that has packages somewhere."""
    shown = []
    for name in lock.environment_names():
        full = [p.name for p in lock.platforms(name) if _has_packages(lock.select(name, p))]
        if full:
            shown.append(f"{name} ({', '.join(full)})")
    return ", ".join(shown)


def _has_packages(env: LockedEnvironment) -> bool:
    return bool(env.conda or env.sources or env.pypi)


# -- warnings ----------------------------------------------------------------------------------


def source_warnings(entries: Iterable[CondaSource], root: Path) -> list[str]:
    """Source packages outside the workspace, and git sources that follow a branch."""
    warnings = []
    for src in entries:
        if src.path is not None and not src.path.is_relative_to(root):
            warnings.append(
                f"source package {src.name}: {src.location} is outside the workspace {root}"
            )
        pin = src.source or {}
        if "git" in pin and "branch" in pin and not src.is_full:
            warnings.append(
                f"source package {src.name}: its build source follows branch {pin['branch']!r} "
                f"of {pin['git']}; `pixi build` re-resolves it, so the artifact may differ from "
                f"the locked commit {pin.get('rev', '?')}"
            )
    return warnings


def outside_workspace(entries: Iterable[PypiPackage], root: Path) -> list[str]:
    """Local PyPI paths outside the workspace: pixi installs them, and the pack copies them
    in, so say so (a lock from someone else can name any file of this machine)."""
    return [
        f"PyPI package {p.name}: {p.location} is outside the workspace {root}; "
        "it is copied into the pack"
        for p in entries
        if p.path is not None and not p.path.is_relative_to(root)
    ]


def skipped_non_wheel(pkg: PypiPackage) -> str:
    return (
        f"PyPI package {pkg.name} ({pkg.kind} at {pkg.location}) is not a wheel: "
        "skipped (--ignore-pypi-non-wheel)"
    )


def unused_overrides(names: Iterable[str]) -> list[str]:
    return [
        f"build overrides for {name} match no PyPI package that is built from source"
        for name in names
    ]


def installability_warnings(env: LockedEnvironment, items: Sequence[PlanItem]) -> list[str]:
    """PyPI packages need python (and pip for conda/micromamba) among the conda packages."""
    if not any(i.is_pypi and i.action != "skip" for i in items):
        return []
    names = {c.name for c in env.conda} | {s.name for s in env.sources}
    warnings = []
    if "python" not in names:
        warnings.append(
            "PyPI packages are locked but python is not a conda package of this environment: "
            "unpack cannot install the wheels"
        )
    if "pip" not in names:
        warnings.append(
            "PyPI packages are locked but pip is not: conda and micromamba cannot install the "
            "archive's environment.yml (pixi-unpack can); add pip to the environment"
        )
    return warnings


def hash_warnings(items: Sequence[PlanItem]) -> list[str]:
    """Files that the lock gives no sha256 or md5 for: they cannot be verified."""
    conda = [i.name for i in items if i.kind == "conda" and not i.hashes.verifiable]
    pypi = [
        i.name
        for i in items
        if i.kind in ("wheel", "local-wheel", "sdist", "local-sdist")
        and i.action != "skip"
        and not i.hashes.verifiable
    ]
    return [
        f"{len(names)} {label} have no sha256 or md5 in the lock and cannot be verified: "
        f"{_first_five(names)}"
        for label, names in (("conda packages", conda), ("PyPI files", pypi))
        if names
    ]


def _first_five(names: Sequence[str]) -> str:
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
