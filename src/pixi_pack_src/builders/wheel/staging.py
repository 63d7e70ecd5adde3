"""Staging a build: the private copy of the source and the build environment.

**The source** (:func:`stage_source`) is staged in ``<build_dir>/src``: an sdist extracted
safely (tar members through the ``data`` filter, zip names checked), a git checkout at exactly
the locked commit copied (checkouts are kept under the cache), a source tree copied file by
file -- exactly the files its hash covers, so the user's tree is never written to. When the
tree is a repository's root, the copy gets a ``.git`` file pointing at the repository, so
versions computed from git tags work. A version computed from VCS metadata in a *sub*
directory of a repository (setuptools-scm) is not available there: set it with an override,
e.g. ``env = { SETUPTOOLS_SCM_PRETEND_VERSION = "1.2.3" }``.

**The build environment** (:func:`isolated_environment`) is a venv made by uv for the target
interpreter (:mod:`.interpreter`), into which :mod:`.uv` installs the build requirements from
the lock's indexes and find-links; a project with ``requires = []`` gets nothing installed.
With ``--no-build-isolation`` (:func:`environment_of`) the target interpreter itself is used
and its packages are the build requirements (nothing is installed; missing ones are named).
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import tarfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from pixi_pack_src import tomlfile
from pixi_pack_src.builders import git as git_checkout
from pixi_pack_src.builders.sourcetree import list_tree
from pixi_pack_src.builders.wheel.interpreter import InterpreterInfo
from pixi_pack_src.builders.wheel.jobs import WheelBuildJob
from pixi_pack_src.errors import BuildError

LEGACY_BACKEND = "setuptools.build_meta:__legacy__"
LEGACY_REQUIRES = ("setuptools>=40.8.0",)


# -- the source ---------------------------------------------------------------------------------


def _extract_sdist(sdist: Path, dest: Path) -> Path:
    """Extract ``sdist`` safely into ``dest``; return the project root inside it."""
    dest.mkdir(parents=True)
    name = sdist.name.lower()
    try:
        if name.endswith(".zip"):
            with zipfile.ZipFile(sdist) as zf:
                for member in zf.namelist():
                    parts = Path(member).parts
                    if member.startswith(("/", "\\")) or ".." in parts or ":" in member:
                        raise BuildError(f"refusing {sdist.name}: unsafe member {member!r}")
                zf.extractall(dest)  # noqa: S202 (names checked above)
        else:
            if not hasattr(tarfile, "data_filter"):
                raise BuildError(
                    f"cannot extract {sdist.name} safely with this Python (no tarfile data filter)",
                    hint="run pixi-pack-src with Python 3.11.4 or newer",
                )
            with tarfile.open(sdist, "r:*") as tf:
                tf.extractall(dest, filter="data")
    except (OSError, tarfile.TarError, zipfile.BadZipFile) as exc:
        raise BuildError(f"cannot extract the sdist {sdist.name}: {exc}") from exc
    entries = [p for p in dest.iterdir() if p.name not in ("pax_global_header",)]
    root = entries[0] if len(entries) == 1 and entries[0].is_dir() else dest
    if not ((root / "pyproject.toml").is_file() or (root / "setup.py").is_file()):
        raise BuildError(f"{sdist.name} has no pyproject.toml or setup.py at its top level")
    return root


def _copy_files(src: Path, dest: Path, files: Sequence[str]) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        origin = src / rel
        if origin.is_symlink():
            target.symlink_to(origin.readlink())
        else:
            shutil.copy2(origin, target)


def stage_source(job: WheelBuildJob, build_dir: Path, *, checkout_root: Path) -> Path:
    """A private, writable copy of the job's source; returns the project directory.

    ``checkout_root``: where git checkouts are kept (the cache, else the work directory)."""
    if job.kind == "sdist":
        assert job.source is not None
        return _extract_sdist(job.source, build_dir / "src")
    if job.kind == "git":
        g = job.package.git
        assert g is not None
        checkout = git_checkout.checkout(g.url, g.rev, root=checkout_root)
        dest = build_dir / "src"
        shutil.copytree(checkout, dest, symlinks=True)
        project = dest / g.subdirectory if g.subdirectory else dest
        if not project.is_dir():
            raise BuildError(
                f"{g.short}: the subdirectory {g.subdirectory!r} does not exist at that commit"
            )
        return project
    assert job.source is not None
    dest = build_dir / "src"
    _copy_files(job.source, dest, list_tree(job.source, exclude=job.exclude))
    git_dir = _git_dir_of(job.source)
    if git_dir is not None:
        # A "gitfile" pointing at the real repository: VCS-versioned projects (setuptools-scm)
        # see their tags without copying the history; builds run with GIT_OPTIONAL_LOCKS=0.
        (dest / ".git").write_text(f"gitdir: {git_dir}\n", encoding="utf-8")
    return dest


def _git_dir_of(tree: Path) -> Path | None:
    """The git directory of a tree that is a repository's root (``.git`` dir or gitfile)."""
    dot_git = tree / ".git"
    if dot_git.is_dir():
        return dot_git.resolve()
    if dot_git.is_file():
        text = dot_git.read_text(encoding="utf-8", errors="replace").strip()
        if text.startswith("gitdir:"):
            return (tree / text.removeprefix("gitdir:").strip()).resolve()
    return None


@dataclass(frozen=True)
class BuildSystem:
    """A project's ``[build-system]`` (PEP 517/518, with their defaults)."""

    requires: tuple[str, ...]
    backend: str
    backend_path: tuple[str, ...] | None = None


LEGACY = BuildSystem(LEGACY_REQUIRES, LEGACY_BACKEND)


def read_build_system(project: Path, package: str) -> BuildSystem:
    """The ``[build-system]`` table of ``project``'s pyproject.toml (defaults without one)."""
    pyproject = project / "pyproject.toml"
    if not pyproject.is_file():
        return LEGACY
    try:
        doc = tomlfile.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomlfile.TOMLDecodeError) as exc:
        raise BuildError(f"{package}: cannot read pyproject.toml: {exc}") from exc
    table = doc.get("build-system")
    if table is None:
        return LEGACY
    if not isinstance(table, dict) or not isinstance(table.get("requires"), list):
        raise BuildError(f"{package}: pyproject.toml [build-system] has no `requires` list")
    requires = tuple(str(r) for r in table["requires"])
    backend = table.get("build-backend")
    if backend is None:
        return BuildSystem(requires, LEGACY_BACKEND)
    path = table.get("backend-path")
    if path is not None and not (isinstance(path, list) and all(isinstance(p, str) for p in path)):
        raise BuildError(f"{package}: pyproject.toml `backend-path` must be a list of paths")
    return BuildSystem(requires, str(backend), tuple(path) if path is not None else None)


# -- the build environment ----------------------------------------------------------------------


@dataclass(frozen=True)
class BuildEnvironment:
    """Where a build runs: a venv (isolated) or the target interpreter itself."""

    python: Path
    isolated: bool
    info: InterpreterInfo  # the target interpreter's (a venv has its base's version)
    path: Path | None = None  # the venv directory

    @property
    def scripts(self) -> Path:
        return self.python.parent

    def site_packages(self) -> list[Path]:
        """Where the environment's distributions are installed."""
        if self.path is None:
            keys = ("purelib", "platlib")
            return list(
                dict.fromkeys(Path(self.info.paths[k]) for k in keys if k in self.info.paths)
            )
        if os.name == "nt":
            return [self.path / "Lib" / "site-packages"]
        major, minor = self.info.major_minor
        return [self.path / "lib" / f"python{major}.{minor}" / "site-packages"]

    def installed(self) -> list[str]:
        """``name==version`` of every distribution installed (sorted, names normalised)."""
        found = {
            f"{canonicalize_name(d.metadata['Name'])}=={d.version}"
            for d in importlib.metadata.distributions(path=[str(p) for p in self.site_packages()])
            if d.metadata["Name"]
        }
        return sorted(found)

    def installed_names(self) -> set[str]:
        return {pin.split("==", 1)[0] for pin in self.installed()}

    def env_overlay(self) -> dict[str, str]:
        """Variables for the build process (venv scripts first on PATH)."""
        if self.path is None:
            return {}
        return {
            "PATH": os.pathsep.join([str(self.scripts), os.environ.get("PATH", "")]),
            "VIRTUAL_ENV": str(self.path),
        }

    def missing(self, requirements: Sequence[Requirement]) -> list[str]:
        """Names of ``requirements`` (for this interpreter's markers) not installed here."""
        present = self.installed_names()
        wanted = {
            str(canonicalize_name(r.name))
            for r in requirements
            if r.marker is None or r.marker.evaluate({**self.info.markers, "extra": ""})
        }
        return sorted(wanted - present)


def venv_python(venv: Path) -> Path:
    if os.name == "nt":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


def isolated_environment(venv: Path, info: InterpreterInfo) -> BuildEnvironment:
    """The build environment of the venv at ``venv`` (made by :meth:`.uv.Uv.venv`)."""
    return BuildEnvironment(python=venv_python(venv), isolated=True, info=info, path=venv)


def environment_of(info: InterpreterInfo) -> BuildEnvironment:
    """The target interpreter used as it is (``--no-build-isolation``)."""
    return BuildEnvironment(python=info.python, isolated=False, info=info)
