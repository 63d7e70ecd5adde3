"""The raw layer of a ``pixi.lock``: the document as PyYAML and py-rattler read it.

PyYAML's ``BaseLoader`` (every scalar stays a string) gives the raw YAML, the source of truth
for what py-rattler hides; py-rattler's :class:`rattler.LockFile` validates the document and
gives typed records. :func:`read_raw_lock` reads both (every failure a one-line
:class:`~pixi_pack_src.errors.LockfileError` naming the file: bytes that are not UTF-8 or YAML,
a missing or unsupported version, a document py-rattler rejects); :class:`RawLock` answers
the raw questions (environments, channels, selectors, the ``packages:`` index) with every
wrong shape named by :class:`Shape`. :mod:`.entries` turns one environment's entries into the
typed model; :mod:`.lockfile` is the public API over both.

Workaround for py-rattler 0.28, pinned by a test in ``tests/unit/test_lockfile_upstream.py``
that fails once upstream fixes it: :meth:`RawLock.platforms` (``Environment.platforms()`` and
``packages_by_platform()`` come in hash order; only ``LockFile.platforms()`` keeps the file's).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import yaml
from rattler import LockFile

from pixi_pack_src.errors import LockfileError
from pixi_pack_src.lock.model import Platform

#: Lock file format versions this tool reads.
SUPPORTED_VERSIONS = (6, 7)
LATEST_VERSION = 7

_YAML_LOADER = getattr(yaml, "CBaseLoader", yaml.BaseLoader)
_FATAL = (KeyboardInterrupt, SystemExit, GeneratorExit, MemoryError)


class LockConsistencyError(RuntimeError):
    """py-rattler and the raw YAML disagree about a lock: a bug in this package, not bad input."""


class Shape:
    """Typed access to the raw YAML of one lock file: every wrong shape is a
    :class:`LockfileError` naming the file and the field (the raw readers' own helpers)."""

    def __init__(self, shown: str) -> None:
        self.shown = shown

    def malformed(self, what: str) -> LockfileError:
        return LockfileError(
            f"malformed lock file {self.shown}: {what}", hint="regenerate it with `pixi lock`"
        )

    def mapping(self, value: object, what: str) -> dict[str, object]:
        if value is None or value == "":
            return {}
        if not isinstance(value, dict):
            raise self.malformed(f"{what} is not a mapping")
        return value

    def sequence(self, value: object, what: str) -> list[object]:
        if value is None or value == "":
            return []
        if not isinstance(value, list):
            raise self.malformed(f"{what} is not a list")
        return value

    def string(self, value: object, what: str) -> str:
        if not isinstance(value, str):
            raise self.malformed(f"{what} is not a string")
        return value

    def string_map(self, value: object, what: str) -> dict[str, str]:
        return {k: self.string(v, f"{what}.{k}") for k, v in self.mapping(value, what).items()}


class RawSelector(NamedTuple):
    """One entry of an environment's platform list: which ``packages:`` entry it names."""

    kind: str  # "conda" | "conda_source" | "pypi"
    value: str
    fields: Mapping[str, object]  # v6 only: name/version/build/subdir used to disambiguate


def read_raw_lock(path: Path, data: bytes, shown: str) -> RawLock:
    """Both views of the lock file at ``path`` (whose bytes are ``data``)."""
    raw = parse_yaml(data, shown)
    version = check_version(raw, shown)
    try:
        lock_file = LockFile.from_path(path)
    except _FATAL:
        raise
    except BaseException as exc:  # py-rattler raises anything, panics included
        raise LockfileError(
            f"cannot parse lock file {shown}: {_one_line(exc)}",
            hint="regenerate it with `pixi lock`",
        ) from exc
    return RawLock(raw, lock_file, version=version, shown=shown)


class RawLock:
    """The raw YAML and py-rattler's document of one lock, read with shape checks."""

    def __init__(
        self, raw: dict[str, object], lock_file: LockFile, *, version: int, shown: str
    ) -> None:
        self.raw = raw
        self.lock_file = lock_file
        self.version = version
        self.shape = Shape(shown)
        self._platforms: list[Platform] | None = None
        self._index: RawIndex | None = None

    def platforms(self) -> list[Platform]:
        """Workaround: only ``LockFile.platforms()`` keeps the file's order."""
        if self._platforms is None:
            self._platforms = [
                Platform(
                    name=p.name, subdir=str(p.subdir), virtual_packages=tuple(p.virtual_packages)
                )
                for p in self.lock_file.platforms()
            ]
        return list(self._platforms)

    def environments(self) -> dict[str, object]:
        """The ``environments`` mapping, in file order."""
        return self.shape.mapping(self.raw.get("environments", {}), "environments")

    def environment(self, environment: str) -> dict[str, object] | None:
        """The raw mapping of ``environment``, ``None`` when the lock has none of that name."""
        envs = self.environments()
        if environment not in envs:
            return None
        return self.shape.mapping(envs[environment], f"environments.{environment}")

    def platform_names(self, raw_env: dict[str, object], environment: str) -> set[str]:
        """The platform names ``environment`` has package lists for."""
        return set(self._env_packages(raw_env, environment))

    def selectors(
        self, raw_env: dict[str, object], environment: str, platform: str
    ) -> list[RawSelector]:
        """The entries ``environment`` lists for ``platform`` (a platform name)."""
        where = f"environments.{environment}.packages.{platform}"
        out: list[RawSelector] = []
        value = self._env_packages(raw_env, environment).get(platform)
        for item in self.shape.sequence(value, where):
            entry = self.shape.mapping(item, f"{where}[]")
            kinds = [k for k in ("conda", "conda_source", "pypi") if k in entry]
            if len(kinds) != 1:
                raise self.shape.malformed(f"{where} has a selector without exactly one kind key")
            kind = kinds[0]
            fields = {k: v for k, v in entry.items() if k != kind}
            out.append(
                RawSelector(kind, self.shape.string(entry[kind], f"{where}[].{kind}"), fields)
            )
        return out

    def channels(self, raw_env: dict[str, object], environment: str) -> tuple[str, ...]:
        what = f"environments.{environment}.channels"
        out = []
        for item in self.shape.sequence(raw_env.get("channels", []), what):
            if isinstance(item, str):
                out.append(item)
            else:
                out.append(
                    self.shape.string(self.shape.mapping(item, what).get("url"), f"{what}[].url")
                )
        return tuple(out)

    def indexes(self, raw_env: dict[str, object], environment: str) -> tuple[str, ...]:
        return tuple(
            self.shape.string(v, f"environments.{environment}.indexes")
            for v in self.shape.sequence(raw_env.get("indexes", []), f"environments.{environment}")
        )

    def find_links(self, raw_env: dict[str, object], environment: str) -> tuple[str, ...]:
        what = f"environments.{environment}.find-links"
        out = []
        for item in self.shape.sequence(raw_env.get("find-links", []), what):
            entry = self.shape.mapping(item, what)
            value = entry.get("url", entry.get("path"))
            out.append(self.shape.string(value, f"{what}[]"))
        return tuple(out)

    def packages(self) -> object:
        """The raw ``packages`` list of the lock file (shape unchecked)."""
        return self.raw.get("packages", [])

    def index(self) -> RawIndex:
        """Every raw package entry by its key (built once)."""
        if self._index is None:
            self._index = RawIndex.build(self)
        return self._index

    def _env_packages(self, raw_env: dict[str, object], environment: str) -> dict[str, object]:
        return self.shape.mapping(
            raw_env.get("packages", {}), f"environments.{environment}.packages"
        )


class RawIndex:
    """The lock's ``packages:`` list indexed the way selectors refer to it."""

    def __init__(self) -> None:
        self.conda: dict[str, list[dict[str, object]]] = {}
        self.conda_source: dict[str, dict[str, object]] = {}
        self.pypi: dict[str, dict[str, object]] = {}

    @classmethod
    def build(cls, lock: RawLock) -> RawIndex:
        index = cls()
        for item in lock.shape.sequence(lock.packages(), "packages"):
            entry = lock.shape.mapping(item, "packages[]")
            if "conda_source" in entry:
                index.conda_source[
                    lock.shape.string(entry["conda_source"], "packages[].conda_source")
                ] = entry
            elif "conda" in entry:
                loc = lock.shape.string(entry["conda"], "packages[].conda")
                index.conda.setdefault(loc, []).append(entry)
            elif "pypi" in entry:
                index.pypi[lock.shape.string(entry["pypi"], "packages[].pypi")] = entry
            else:
                raise lock.shape.malformed(
                    "a package entry has no `conda`, `conda_source` or `pypi` key"
                )
        return index


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def parse_yaml(data: bytes, shown: str) -> dict[str, object]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LockfileError(
            f"lock file {shown} is not UTF-8 text (byte {exc.start})",
            hint="regenerate it with `pixi lock`",
        ) from exc
    try:
        raw = yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 - BaseLoader builds no objects
    except _FATAL:
        raise
    except BaseException as exc:  # any parser failure is bad input
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or _one_line(exc)
        raise LockfileError(
            f"lock file {shown} is not valid YAML{where}: {problem}",
            hint="regenerate it with `pixi lock`",
        ) from exc
    if not isinstance(raw, dict):
        raise LockfileError(
            f"lock file {shown} is not a pixi lock file (not a YAML mapping)",
            hint="regenerate it with `pixi lock`",
        )
    return raw


def check_version(raw: dict[str, object], shown: str) -> int:
    value = raw.get("version")
    if value is None:
        raise LockfileError(
            f"lock file {shown} has no `version` field; it is not a pixi lock file",
            hint="regenerate it with `pixi lock`",
        )
    try:
        version = int(str(value))
    except ValueError:
        raise LockfileError(
            f"lock file {shown} has an invalid version {str(value)[:40]!r}",
            hint="regenerate it with `pixi lock`",
        ) from None
    if version > LATEST_VERSION:
        raise LockfileError(
            f"lock file version {version} is newer than this tool supports; upgrade pixi-pack-src",
            hint=f"{shown} was written by a newer pixi; this pixi-pack-src reads versions 6 and 7",
        )
    if version < SUPPORTED_VERSIONS[0]:
        raise LockfileError(
            f"lock file version {version} ({shown}) is older than this tool supports",
            hint="re-lock with a recent pixi: `pixi lock`",
        )
    return version
