"""Read a ``pixi.lock`` (format v7, and v6) into the typed model of :mod:`pixi_pack_src.lock.model`.

The public API of the lock: :func:`load_lock` reads a file into a :class:`Lock`, which lists
environments and platforms and selects one of each as a
:class:`~pixi_pack_src.lock.model.LockedEnvironment`. Every user-facing failure is a one-line
:class:`~pixi_pack_src.errors.LockfileError` naming the file (never a traceback): a missing
file, bytes that are not YAML, a document py-rattler rejects, a version newer than 7. An
environment or platform the lock does not have is a
:class:`~pixi_pack_src.errors.SelectionError` (exit code 2) listing what is available.

Underneath: :mod:`.raw` reads the document twice (PyYAML's raw view, py-rattler's typed one),
:mod:`.entries` builds one environment's entries from both, :mod:`.locations` classifies where
an entry points. Those three modules are the only ones that touch the raw YAML and
py-rattler's lock objects; the location helpers are re-exported here for planning and builders.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from pixi_pack_src.errors import LockfileError, SelectionError
from pixi_pack_src.lock.entries import read_entries
from pixi_pack_src.lock.locations import (
    SDIST_SUFFIXES,
    PypiLocation,
    classify_pypi_location,
    display_path,
    is_url,
    parse_git_location,
    resolve_location_path,
)
from pixi_pack_src.lock.model import LockedEnvironment, Platform
from pixi_pack_src.lock.raw import LockConsistencyError, RawLock, read_raw_lock

# The location helpers and the consistency error are re-exported: planning, builders and tests
# import them from here.
__all__ = [
    "SDIST_SUFFIXES",
    "Lock",
    "LockConsistencyError",
    "PypiLocation",
    "classify_pypi_location",
    "display_path",
    "is_url",
    "load_lock",
    "parse_git_location",
    "resolve_location_path",
]


def load_lock(path: Path) -> Lock:
    """Read and validate ``path``; raise :class:`LockfileError` for anything unusable."""
    path = Path(os.path.normpath(Path(path).absolute()))
    shown = display_path(path)
    if not path.exists():
        raise LockfileError(
            f"lock file {shown} does not exist",
            hint=f"run `pixi lock` in {display_path(path.parent)}",
        )
    if not path.is_file():
        raise LockfileError(f"lock file {shown} is not a file", hint="pass the workspace directory")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LockfileError(f"cannot read lock file {shown}: {exc.strerror or exc}") from exc
    digest = hashlib.sha256(data).hexdigest()
    return Lock(path=path, sha256=digest, raw=read_raw_lock(path, data, shown))


class Lock:
    """A parsed ``pixi.lock``: list environments and platforms, select one of each."""

    def __init__(self, *, path: Path, sha256: str, raw: RawLock) -> None:
        self._path = path
        self._sha256 = sha256
        self._raw = raw
        self._shown = raw.shape.shown

    @property
    def path(self) -> Path:
        return self._path

    @property
    def version(self) -> int:
        return self._raw.version

    @property
    def sha256(self) -> str:
        return self._sha256

    @property
    def workspace_root(self) -> Path:
        """The directory of ``pixi.lock``; relative locations resolve from it."""
        return self._path.parent

    def all_platforms(self) -> list[Platform]:
        """Every platform declared in the lock, in file order (v6: derived from environments)."""
        return self._raw.platforms()

    def environment_names(self) -> list[str]:
        """Environment names in file order."""
        return list(self._raw.environments())

    def platforms(self, environment: str) -> list[Platform]:
        """The platforms locked for ``environment``, in the lock's platform order."""
        locked = self._raw.platform_names(self._raw_environment(environment), environment)
        return [p for p in self.all_platforms() if p.name in locked]

    def resolve_platform(self, environment: str, value: str) -> Platform:
        """A ``-p`` value: an exact platform *name* wins, else the single one with that subdir."""
        platforms = self.platforms(environment)
        for platform in platforms:
            if platform.name == value:
                return platform
        names = ", ".join(p.name for p in platforms) or "none"
        matches = [p for p in platforms if p.subdir == value]
        if len(matches) == 1:
            return matches[0]
        if matches:
            listed = ", ".join(p.name for p in matches)
            raise SelectionError(
                f"platform '{value}' is ambiguous for environment '{environment}' in "
                f"{self._shown}: platforms {listed} all have subdir {value}",
                hint=f"pass -p with one of the platform names: {listed}",
            )
        raise SelectionError(
            f"platform '{value}' not locked for environment '{environment}' in {self._shown}; "
            f"locked: {names}",
            hint=f"pass -p with one of: {names}"
            if platforms
            else "add the platform to the workspace and run `pixi lock`",
        )

    def select(self, environment: str, platform: str | Platform) -> LockedEnvironment:
        """The typed model of ``environment`` on ``platform`` (a name, a subdir or a Platform)."""
        raw_env = self._raw_environment(environment)
        if isinstance(platform, Platform):
            platform = self.resolve_platform(environment, platform.name)
        else:
            platform = self.resolve_platform(environment, platform)
        conda, sources, pypi = read_entries(
            self._raw, self.workspace_root, environment, raw_env, platform
        )
        return LockedEnvironment(
            lock_path=self._path,
            lock_version=self.version,
            lock_sha256=self._sha256,
            workspace_root=self.workspace_root,
            environment=environment,
            platform=platform,
            channels=self._raw.channels(raw_env, environment),
            indexes=self._raw.indexes(raw_env, environment),
            find_links=self._raw.find_links(raw_env, environment),
            conda=conda,
            sources=sources,
            pypi=pypi,
        )

    def _raw_environment(self, environment: str) -> dict[str, object]:
        raw_env = self._raw.environment(environment)
        if raw_env is None:
            envs = self._raw.environments()
            names = ", ".join(envs) or "none"
            raise SelectionError(
                f"environment '{environment}' not found in {self._shown}; available: {names}",
                hint=f"pass -e with one of: {names}" if envs else "run `pixi lock`",
            )
        return raw_env
