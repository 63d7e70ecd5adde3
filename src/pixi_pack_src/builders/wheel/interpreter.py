"""The interpreter that builds wheels for one target: the locked environment's Python.

- when the target platform is the host's, the environment's already downloaded and verified
  conda packages are installed offline (py-rattler) into a temporary prefix under the work
  directory, and its ``python`` runs the build, so native wheels get the target's tags. Only
  ``python`` and its dependency closure (by the locked records' ``depends`` names) are
  installed for isolated builds; every package of the environment for
  ``--no-build-isolation``. This happens lazily, on the first cache miss: a pack whose wheels
  are all cached installs nothing;
- for another platform, a host Python runs the build (``python<major.minor>`` of the locked
  version from ``PATH`` when there is one, else the interpreter running pixi-pack-src). Only
  pure-Python results can be used; :mod:`.wheel_check` refuses the rest.

The build environment made from it (a venv with the build requirements) is :mod:`.staging`'s.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import shutil
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rattler import RepoDataRecord

from pixi_pack_src import proc
from pixi_pack_src.aio import run_sync
from pixi_pack_src.errors import BuildError, CommandError, UnsupportedPackageError
from pixi_pack_src.host import host_subdir
from pixi_pack_src.lock.model import Platform

log = logging.getLogger(__name__)

# Run by the interpreter being probed: stdlib only, any Python >= 3.8.
_PROBE = r"""
import json, os, platform, sys, sysconfig
def full(info):
    v = "%d.%d.%d" % (info.major, info.minor, info.micro)
    if info.releaselevel != "final":
        v += info.releaselevel[0] + str(info.serial)
    return v
impl = sys.implementation
markers = {
    "implementation_name": impl.name,
    "implementation_version": full(impl.version),
    "os_name": os.name,
    "platform_machine": platform.machine(),
    "platform_release": platform.release(),
    "platform_system": platform.system(),
    "platform_version": platform.version(),
    "python_full_version": platform.python_version(),
    "platform_python_implementation": platform.python_implementation(),
    "python_version": ".".join(platform.python_version_tuple()[:2]),
    "sys_platform": sys.platform,
}
print(json.dumps({
    "executable": sys.executable,
    "version": platform.python_version(),
    "implementation": impl.name,
    "prefix": sys.prefix,
    "base_prefix": sys.base_prefix,
    "paths": sysconfig.get_paths(),
    "markers": markers,
}))
"""


@dataclass(frozen=True)
class InterpreterInfo:
    """What an interpreter says about itself (see ``_PROBE``)."""

    python: Path  # the path we run
    executable: str
    version: str  # "3.11.7"
    implementation: str  # "cpython"
    prefix: str
    base_prefix: str
    paths: Mapping[str, str]  # sysconfig.get_paths()
    markers: Mapping[str, str]  # PEP 508 environment

    @property
    def major_minor(self) -> tuple[int, int]:
        major, minor = self.version.split(".")[:2]
        return int(major), int(minor)


def probe(python: Path, *, log_file: Path | None = None) -> InterpreterInfo:
    """Ask ``python`` for its version, paths and marker environment."""
    try:
        result = proc.run(
            [python, "-I", "-c", _PROBE],
            capture_stdout=True,
            log_file=log_file,
            timeout=120,
            what=f"{python} (interpreter probe)",
        )
        doc = json.loads(result.stdout)
    except (CommandError, ValueError) as exc:
        raise BuildError(
            f"cannot run the build interpreter {python}: {exc}",
            hint="check that the environment's python runs on this machine",
        ) from exc
    return InterpreterInfo(
        python=python,
        executable=str(doc["executable"]),
        version=str(doc["version"]),
        implementation=str(doc["implementation"]),
        prefix=str(doc["prefix"]),
        base_prefix=str(doc["base_prefix"]),
        paths={str(k): str(v) for k, v in doc["paths"].items()},
        markers={str(k): str(v) for k, v in doc["markers"].items()},
    )


def _python_in(prefix: Path) -> Path:
    if os.name == "nt":
        return prefix / "python.exe"
    return prefix / "bin" / "python"


def _dep_name(spec: str) -> str:
    return spec.strip().split(" ")[0].split("[")[0].strip().lower()


def dependency_closure(records: Sequence[RepoDataRecord], root: str) -> list[RepoDataRecord]:
    """``root`` and every record it depends on (by name), among ``records``."""
    by_name = {r.name.normalized: r for r in records}
    wanted: list[str] = [root]
    seen: set[str] = set()
    out: list[RepoDataRecord] = []
    while wanted:
        name = wanted.pop()
        if name in seen or name not in by_name:
            continue
        seen.add(name)
        record = by_name[name]
        out.append(record)
        wanted.extend(_dep_name(d) for d in record.depends)
    return sorted(out, key=lambda r: r.name.normalized)


@dataclass(frozen=True)
class CondaArchive:
    """A verified conda package file and the name it was published under."""

    file_name: str
    path: Path


def named_copy(path: Path, named: Path) -> Path:
    """``named``, a copy of the verified conda file ``path`` under its real file name (py-rattler
    tells the format from the name). A copy in the kernel (``copy_file_range``, a reflink where
    the file system can), because the alternatives break something: a hard link moves the
    source's ``ctime`` -- part of the :class:`~pixi_pack_src.hashing.FileIdentity` that the cache
    and the archive writer check, so the cache entry would lose its record and a concurrent
    archive copy would fail --, and py-rattler resolves a symbolic link back to the nameless
    cache file."""
    if not named.is_symlink() and not named.exists():
        shutil.copyfile(path, named)
    return named


async def _install_prefix(files: Sequence[CondaArchive], prefix: Path, cache_dir: Path) -> None:
    """Install verified conda archives into ``prefix`` offline.

    py-rattler tells the archive format from the file name, and verified files may live in the
    content-addressed cache without one: each is given its real name first (:func:`named_copy`).
    """
    import rattler

    staged = cache_dir / "archives"
    staged.mkdir(parents=True, exist_ok=True)
    records = []
    for archive in files:
        named = named_copy(archive.path, staged / archive.file_name)
        records.append(await RepoDataRecord.from_package_archive(named))
    await rattler.install(records, prefix, cache_dir=cache_dir, show_progress=False)


class TargetInterpreter:
    """The Python that builds wheels for one target (see the module docstring).

    ``version`` is the locked Python version, ``subdir`` the target platform. The interpreter
    itself is made on first use (:meth:`python`), thread-safely.
    """

    def __init__(
        self,
        *,
        version: str,
        subdir: str,
        virtual_packages: Sequence[str] = (),
        is_host: bool,
        python: Path | None = None,
        prepare: Callable[[asyncio.AbstractEventLoop | None], Path] | None = None,
        environment_fingerprint: str = "",
    ) -> None:
        if python is None and prepare is None:
            raise ValueError("TargetInterpreter needs a python or a way to prepare one")
        self.version = version
        self.subdir = subdir
        self.virtual_packages = tuple(virtual_packages)
        self.is_host = is_host
        self.environment_fingerprint = environment_fingerprint
        self._python = python
        self._prepare = prepare
        self._info: InterpreterInfo | None = None
        self._lock = threading.Lock()

    @property
    def major_minor(self) -> str:
        return ".".join(self.version.split(".")[:2])

    @property
    def python_tag(self) -> str:
        return python_tag(self.version)

    def python(self, loop: asyncio.AbstractEventLoop | None = None) -> Path:
        """The interpreter's path, made now if needed (``loop``: the caller's event loop)."""
        with self._lock:
            if self._python is None:
                assert self._prepare is not None
                self._python = self._prepare(loop)
            return self._python

    def info(self, loop: asyncio.AbstractEventLoop | None = None) -> InterpreterInfo:
        python = self.python(loop)
        with self._lock:
            if self._info is None:
                self._info = probe(python)
            return self._info

    def __repr__(self) -> str:
        return (
            f"TargetInterpreter(version={self.version!r}, subdir={self.subdir!r}, "
            f"is_host={self.is_host}, python={self._python})"
        )


def pick_host_python(major_minor: str) -> Path:
    """A host interpreter for foreign targets: ``python<major.minor>`` on PATH, else ours."""
    found = shutil.which(f"python{major_minor}")
    if found:
        return Path(found)
    return Path(sys.executable)


def environment_fingerprint(records: Sequence[RepoDataRecord]) -> str:
    """What a ``--no-build-isolation`` build sees of the environment (part of its cache key)."""
    return hashlib.sha256(
        "\n".join(
            sorted(f"{r.file_name} {r.sha256.hex() if r.sha256 else ''}" for r in records)
        ).encode()
    ).hexdigest()


def python_tag(version: str) -> str:
    """``"3.12.4"`` -> ``"cp312"``."""
    return "cp" + "".join(version.split(".")[:2])


def make_target_interpreter(
    *,
    conda: Sequence[tuple[RepoDataRecord, Path]],
    platform: Platform,
    work_dir: Path,
    environment_packages: bool = False,
    host_python: Path | None = None,
) -> TargetInterpreter:
    """The target interpreter for ``platform``, from the environment's verified conda files.

    ``conda`` pairs each locked record with its verified local archive. With
    ``environment_packages`` (``--no-build-isolation``) every package is installed into the
    build prefix, else only python's closure. Nothing is installed until first use.
    Raises :class:`UnsupportedPackageError` when the environment has no python.
    """
    records = [r for r, _ in conda]
    pythons = [r for r in records if r.name.normalized == "python"]
    if not pythons:
        raise UnsupportedPackageError(
            f"building PyPI packages for {platform.name} needs python in the environment, and "
            "the lock has none",
            hint="add python to the environment's dependencies",
        )
    version = str(pythons[0].version)
    is_host = platform.subdir == host_subdir()
    files = {id(r): p for r, p in conda}
    chosen = records if environment_packages else dependency_closure(records, "python")
    fingerprint = environment_fingerprint(chosen)
    if not is_host:
        if environment_packages:
            raise UnsupportedPackageError(
                f"--no-build-isolation needs the environment's own python, which cannot run "
                f"on this {host_subdir()} machine for {platform.subdir}",
                hint=f"build isolated, or build it on a {platform.subdir} runner (see examples/ci)",
            )
        python = host_python or pick_host_python(".".join(version.split(".")[:2]))
        return TargetInterpreter(
            version=version,
            subdir=platform.subdir,
            virtual_packages=platform.virtual_packages,
            is_host=False,
            python=python,
        )
    archives = [CondaArchive(r.file_name, files[id(r)]) for r in chosen]
    root = work_dir / "build-python" / platform.subdir

    def prepare(loop: asyncio.AbstractEventLoop | None) -> Path:
        prefix = root / "prefix"
        if prefix.exists():
            shutil.rmtree(prefix)
        log.info(
            "installing python %s and %d packages for builds into %s",
            version,
            len(archives) - 1,
            prefix,
        )
        try:
            run_sync(_install_prefix(archives, prefix, root / "pkgs"), loop)
        except Exception as exc:  # py-rattler raises many unrelated types
            raise BuildError(
                f"cannot install the environment's python into {prefix}: {exc}",
                hint="check the locked python package for this platform",
            ) from exc
        python = _python_in(prefix)
        if not python.exists():
            raise BuildError(
                f"the environment's python package has no {python.relative_to(prefix)}"
            )
        return python

    return TargetInterpreter(
        version=version,
        subdir=platform.subdir,
        virtual_packages=platform.virtual_packages,
        is_host=True,
        prepare=prepare,
        environment_fingerprint=fingerprint if environment_packages else "",
    )
