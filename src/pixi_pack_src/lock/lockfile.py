"""Read a ``pixi.lock`` (format v7, and v6) into the typed model of :mod:`pixi_pack_src.lock.model`.

py-rattler parses and validates the file and gives us binary conda records (repodata patches
included) and PyPI entries. The raw YAML, read with PyYAML's ``BaseLoader`` (every scalar stays a
string), is the source of truth for what py-rattler hides: the ``conda_source`` fields
(identifier hash, variants, build source, source dependencies, build/host packages, full or
partial record) and the PyPI ``index``. Both views are cross-checked per environment and
platform; a disagreement is an internal error (:class:`LockConsistencyError`).

This is the only module that touches py-rattler's lock objects. Every user-facing failure is a
one-line :class:`~pixi_pack_src.errors.LockfileError` naming the file (never a traceback): a
missing file, bytes that are not YAML, a document py-rattler rejects, a version newer than 7.
An environment or platform the lock does not have is a :class:`~pixi_pack_src.errors.SelectionError`
(exit code 2) listing what is available.

Workarounds for py-rattler 0.28, each in one function, each pinned by a test in
``tests/unit/test_lockfile_upstream.py`` that fails once upstream fixes it:

- :func:`_pypi_hashes`: ``LockedPackage.hashes`` raises ``AttributeError`` when an entry has
  no hash (it wraps ``None``); read ``_package.hashes`` and test for ``None``.
- :func:`_ordered_platforms`: ``Environment.platforms()``/``packages_by_platform()`` come in
  hash order; only ``LockFile.platforms()`` keeps the file's order.
- :func:`_binary_record`: ``CondaLockedBinaryPackage.repo_data_record()`` raises
  ``ConversionError`` ("The path is not an absolute path") for path locations; we build the
  record from ``package_record`` with a ``file://`` URL.
- ``Environment.conda_repodata_records()`` silently skips source packages: never used.
"""

from __future__ import annotations

import hashlib
import logging
import os
import posixpath
import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit
from urllib.request import url2pathname

import yaml
from packaging.utils import canonicalize_name
from rattler import LockFile, PackageRecord, RepoDataRecord
from rattler.lock import (
    CondaLockedBinaryPackage,
    CondaLockedSourcePackage,
    Environment,
    LockedPackage,
    PypiLockedPackage,
)

from pixi_pack_src.errors import LockfileError, SelectionError
from pixi_pack_src.lock.model import (
    CondaBinary,
    CondaSource,
    GitLocation,
    Hashes,
    LockedEnvironment,
    Platform,
    PypiKind,
    PypiPackage,
    SourceLocationKind,
)
from pixi_pack_src.safepath import RelPath, UnsafePathError

log = logging.getLogger(__name__)

#: Lock file format versions this tool reads.
SUPPORTED_VERSIONS = (6, 7)
LATEST_VERSION = 7

IDENT_RE = re.compile(r"^(?P<name>[^\[]+)\[(?P<hash>[0-9a-f]+)\] @ (?P<location>.+)$")
CONDA_ARCHIVE_SUFFIXES = (".conda", ".tar.bz2")
SDIST_SUFFIXES = (".tar.gz", ".zip", ".tar.bz2", ".tgz", ".tar.xz", ".tar")
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")
_YAML_LOADER = getattr(yaml, "CBaseLoader", yaml.BaseLoader)
_FATAL = (KeyboardInterrupt, SystemExit, GeneratorExit, MemoryError)


class LockConsistencyError(RuntimeError):
    """py-rattler and the raw YAML disagree about a lock: a bug in this module, not bad input."""


class _RawSelector(NamedTuple):
    kind: str  # "conda" | "conda_source" | "pypi"
    value: str
    fields: Mapping[str, object]  # v6 only: name/version/build/subdir used to disambiguate


class PypiLocation(NamedTuple):
    """Where a ``pypi:`` entry points, classified (see :func:`classify_pypi_location`)."""

    kind: PypiKind
    url: str | None
    path: Path | None
    git: GitLocation | None
    file_name: str | None


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


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
    raw = _parse_yaml(data, shown)
    version = _check_version(raw, shown)
    try:
        lock_file = LockFile.from_path(path)
    except _FATAL:
        raise
    except BaseException as exc:  # py-rattler raises anything, panics included
        raise LockfileError(
            f"cannot parse lock file {shown}: {_one_line(exc)}",
            hint="regenerate it with `pixi lock`",
        ) from exc
    return Lock(path=path, version=version, sha256=digest, raw=raw, lock_file=lock_file)


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


class Lock:
    """A parsed ``pixi.lock``: list environments and platforms, select one of each."""

    def __init__(
        self,
        *,
        path: Path,
        version: int,
        sha256: str,
        raw: dict[str, object],
        lock_file: LockFile,
    ) -> None:
        self._path = path
        self._version = version
        self._sha256 = sha256
        self._raw = raw
        self._lf = lock_file
        self._shown = display_path(path)
        self.shape = Shape(self._shown)
        self._platforms: list[Platform] | None = None
        self._index: _RawIndex | None = None

    @property
    def path(self) -> Path:
        return self._path

    @property
    def version(self) -> int:
        return self._version

    @property
    def sha256(self) -> str:
        return self._sha256

    @property
    def workspace_root(self) -> Path:
        """The directory of ``pixi.lock``; relative locations resolve from it."""
        return self._path.parent

    def all_platforms(self) -> list[Platform]:
        """Every platform declared in the lock, in file order (v6: derived from environments)."""
        if self._platforms is None:
            self._platforms = _ordered_platforms(self._lf)
        return list(self._platforms)

    def environment_names(self) -> list[str]:
        """Environment names in file order."""
        return list(self._raw_environments())

    def platforms(self, environment: str) -> list[Platform]:
        """The platforms locked for ``environment``, in the lock's platform order."""
        raw_env = self._raw_environment(environment)
        packages = self.shape.mapping(
            raw_env.get("packages", {}), f"environments.{environment}.packages"
        )
        locked = set(packages)
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
        where = f"environments.{environment}.packages.{platform.name}"
        py_env = self._lf.environment(environment)
        if py_env is None:
            raise LockConsistencyError(
                f"{self._shown}: environment '{environment}' is in the YAML but not in py-rattler"
            )
        py_packages = _packages_for(py_env, platform.name)
        packages = self.shape.mapping(
            raw_env.get("packages", {}), f"environments.{environment}.packages"
        )
        selectors = self._selectors(packages.get(platform.name), where)

        reader = _EnvReader(self, environment, platform, py_packages)
        conda, sources, pypi = reader.read(selectors)
        return LockedEnvironment(
            lock_path=self._path,
            lock_version=self._version,
            lock_sha256=self._sha256,
            workspace_root=self.workspace_root,
            environment=environment,
            platform=platform,
            channels=self._channels(raw_env, environment),
            indexes=tuple(
                self.shape.string(v, f"environments.{environment}.indexes")
                for v in self.shape.sequence(
                    raw_env.get("indexes", []), f"environments.{environment}"
                )
            ),
            find_links=self._find_links(raw_env, environment),
            conda=conda,
            sources=sources,
            pypi=pypi,
        )

    # -- raw YAML access (every failure is a LockfileError naming the file) --------------------

    def _raw_environments(self) -> dict[str, object]:
        return self.shape.mapping(self._raw.get("environments", {}), "environments")

    def _raw_environment(self, environment: str) -> dict[str, object]:
        envs = self._raw_environments()
        if environment not in envs:
            names = ", ".join(envs) or "none"
            raise SelectionError(
                f"environment '{environment}' not found in {self._shown}; available: {names}",
                hint=f"pass -e with one of: {names}" if envs else "run `pixi lock`",
            )
        return self.shape.mapping(envs[environment], f"environments.{environment}")

    def _channels(self, raw_env: dict[str, object], environment: str) -> tuple[str, ...]:
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

    def _find_links(self, raw_env: dict[str, object], environment: str) -> tuple[str, ...]:
        what = f"environments.{environment}.find-links"
        out = []
        for item in self.shape.sequence(raw_env.get("find-links", []), what):
            entry = self.shape.mapping(item, what)
            value = entry.get("url", entry.get("path"))
            out.append(self.shape.string(value, f"{what}[]"))
        return tuple(out)

    def _selectors(self, value: object, where: str) -> list[_RawSelector]:
        out: list[_RawSelector] = []
        for item in self.shape.sequence(value, where):
            entry = self.shape.mapping(item, f"{where}[]")
            kinds = [k for k in ("conda", "conda_source", "pypi") if k in entry]
            if len(kinds) != 1:
                raise self.shape.malformed(f"{where} has a selector without exactly one kind key")
            kind = kinds[0]
            fields = {k: v for k, v in entry.items() if k != kind}
            out.append(
                _RawSelector(kind, self.shape.string(entry[kind], f"{where}[].{kind}"), fields)
            )
        return out

    def raw_packages(self) -> object:
        """The raw ``packages`` list of the lock file (shape unchecked)."""
        return self._raw.get("packages", [])

    def raw_index(self) -> _RawIndex:
        """Every raw package entry by its key (built once, for the raw readers)."""
        if self._index is None:
            self._index = _RawIndex.build(self)
        return self._index


# --------------------------------------------------------------------------------------------
# Location helpers (public: plan and build reuse them)
# --------------------------------------------------------------------------------------------


def display_path(path: Path) -> str:
    """``path`` relative to the working directory when below it, else absolute."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def is_url(location: str) -> bool:
    """A ``scheme://`` location other than ``file://``."""
    return bool(_URL_RE.match(location)) and not location.lower().startswith("file://")


def resolve_location_path(base: Path, location: str) -> Path:
    """A lock path (relative to ``base``, absolute, or ``file://``) as a normalised absolute path."""
    if location.lower().startswith("file://"):
        path = Path(url2pathname(urlsplit(location).path))
    else:
        path = Path(location)
        if not path.is_absolute():
            path = base / path
    return Path(os.path.normpath(path))


def parse_git_location(location: str) -> GitLocation:
    """``git+https://host/repo?subdirectory=x&tag=v1#<sha>`` -> :class:`GitLocation`.

    Raises ``ValueError`` when ``location`` is not a ``git+`` URL or lacks the pinned commit.
    """
    if not location.startswith("git+"):
        raise ValueError(f"not a git location: {location}")
    parts = urlsplit(location[len("git+") :])
    if not parts.scheme or (not parts.netloc and parts.scheme != "file"):
        raise ValueError(f"not a git URL: {location}")
    query = parse_qs(parts.query, keep_blank_values=False)

    def one(key: str) -> str | None:
        values = query.get(key)
        return values[-1] if values else None

    repo_path = parts.path
    requested: str | None = None
    last = repo_path.rsplit("/", 1)[-1]
    if "@" in last:
        repo_path, requested = repo_path.rsplit("@", 1)
    rev = unquote(parts.fragment)
    if not rev:
        raise ValueError(f"git location without a pinned commit (#<sha>): {location}")
    return GitLocation(
        url=urlunsplit((parts.scheme, parts.netloc, repo_path, "", "")),
        rev=rev,
        subdirectory=one("subdirectory"),
        branch=one("branch"),
        tag=one("tag"),
        requested_rev=one("rev") or requested,
    )


def classify_pypi_location(location: str, base: Path) -> PypiLocation:
    """Classify a ``pypi:`` location (docs/lockfile.md §4) and resolve it."""
    if location.startswith("git+"):
        return PypiLocation("git", None, None, parse_git_location(location), None)
    loc = location.removeprefix("direct+")
    parts = urlsplit(loc)
    remote = is_url(loc)
    if remote:
        url: str | None = urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, ""))
        raw_name = parts.path.rstrip("/").rsplit("/", 1)[-1]
        path = None
    else:
        url = None
        path = resolve_location_path(base, loc)
        stripped = parts.path if loc.lower().startswith("file://") else loc
        raw_name = stripped.rstrip("/").rsplit("/", 1)[-1]
    file_name = unquote(raw_name)
    lowered = file_name.lower()
    if location.rstrip().endswith("/") and not remote:
        lowered = ""  # a directory named like an archive (the v6 quirk) is a source tree
    if lowered.endswith(".whl") or lowered.endswith(SDIST_SUFFIXES):
        # The decoded name becomes a file name in the work directory, the cache and the
        # archive: the one path check, after decoding (``..%2F`` is ``../``).
        name = RelPath.file_name(file_name, what="its file name")
        kind: PypiKind
        if lowered.endswith(".whl"):
            kind = "wheel" if remote else "local-wheel"
        else:
            kind = "sdist" if remote else "local-sdist"
        return PypiLocation(kind, url, path, None, name)
    # A directory. A remote URL that names no archive keeps its URL (the plan reports it).
    return PypiLocation("source-tree", url, path, None, None)


# --------------------------------------------------------------------------------------------
# py-rattler workarounds (one function each; see the module docstring)
# --------------------------------------------------------------------------------------------


def _pypi_hashes(pkg: LockedPackage) -> Hashes:
    """Workaround: ``pkg.hashes`` raises ``AttributeError`` for an entry without a hash."""
    raw = pkg._package.hashes
    if raw is None:
        return Hashes()
    sha256 = raw.sha256
    md5 = raw.md5
    return Hashes(
        sha256=bytes(sha256).hex() if sha256 else None,
        md5=bytes(md5).hex() if md5 else None,
    )


def _ordered_platforms(lock_file: LockFile) -> list[Platform]:
    """Workaround: only ``LockFile.platforms()`` keeps the file's order."""
    return [
        Platform(name=p.name, subdir=str(p.subdir), virtual_packages=tuple(p.virtual_packages))
        for p in lock_file.platforms()
    ]


def _binary_record(pkg: CondaLockedBinaryPackage, base: Path) -> RepoDataRecord:
    """Workaround: ``repo_data_record()`` raises ``ConversionError`` for path locations."""
    location = pkg.location
    if is_url(location):
        return pkg.repo_data_record()
    path = resolve_location_path(base, location)
    record = pkg.package_record
    if record is None:  # pragma: no cover - binaries always have a record
        raise LockConsistencyError(f"binary package at {location} has no record")
    channel = path.parent.parent.as_uri().rstrip("/") + "/"
    return RepoDataRecord(record, file_name=path.name, url=path.as_uri(), channel=channel)


def _packages_for(env: Environment, platform_name: str) -> list[LockedPackage]:
    for platform, packages in env.packages_by_platform().items():
        if platform.name == platform_name:
            return list(packages)
    return []


# --------------------------------------------------------------------------------------------
# Internals
# --------------------------------------------------------------------------------------------


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _parse_yaml(data: bytes, shown: str) -> dict[str, object]:
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


def _check_version(raw: dict[str, object], shown: str) -> int:
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


def _norm_location(location: str) -> str:
    """Compare source locations the way the lock means them (``./x`` == ``x``)."""
    if location.startswith("git+") or _URL_RE.match(location):
        return location
    return posixpath.normpath(location.replace("\\", "/"))


def _is_archive(location: str) -> bool:
    path = urlsplit(location).path if _URL_RE.match(location) else location
    return path.lower().endswith(CONDA_ARCHIVE_SUFFIXES)


class _RawIndex:
    """The lock's ``packages:`` list indexed the way selectors refer to it."""

    def __init__(self) -> None:
        self.conda: dict[str, list[dict[str, object]]] = {}
        self.conda_source: dict[str, dict[str, object]] = {}
        self.pypi: dict[str, dict[str, object]] = {}

    @classmethod
    def build(cls, lock: Lock) -> _RawIndex:
        index = cls()
        for item in lock.shape.sequence(lock.raw_packages(), "packages"):
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


class _EnvReader:
    """Builds the model of one environment on one platform from both views."""

    def __init__(
        self,
        lock: Lock,
        environment: str,
        platform: Platform,
        py_packages: list[LockedPackage],
    ) -> None:
        self.lock = lock
        self.environment = environment
        self.platform = platform
        self.base = lock.workspace_root
        self.where = f"environments.{environment}.packages.{platform.name}"
        self.py_binaries = [p for p in py_packages if isinstance(p, CondaLockedBinaryPackage)]
        self.py_sources = [p for p in py_packages if isinstance(p, CondaLockedSourcePackage)]
        self.py_pypi = [p for p in py_packages if isinstance(p, PypiLockedPackage)]

    def read(
        self, selectors: list[_RawSelector]
    ) -> tuple[tuple[CondaBinary, ...], tuple[CondaSource, ...], tuple[PypiPackage, ...]]:
        lock = self.lock
        index = lock.raw_index()
        seen: set[int] = set()
        binaries: set[str] = set()
        sources_raw: list[tuple[dict[str, object], str, str, str]] = []  # entry, id, name, hash
        pypi_raw: list[dict[str, object]] = []
        for sel in selectors:
            if sel.kind == "conda_source":
                entry = index.conda_source.get(sel.value)
                if entry is None:
                    raise lock.shape.malformed(f"{self.where} names a missing package {sel.value}")
                if id(entry) in seen:
                    continue
                seen.add(id(entry))
                match = IDENT_RE.match(sel.value)
                if match is None:
                    raise lock.shape.malformed(f"invalid source package identifier {sel.value!r}")
                sources_raw.append((entry, sel.value, match["name"], match["hash"]))
            elif sel.kind == "conda":
                if lock.version >= 7 or _is_archive(sel.value):
                    binaries.add(sel.value)
                    continue
                entry = self._pick_v6(index.conda.get(sel.value, []), sel)
                if entry is None:
                    raise lock.shape.malformed(f"{self.where} names a missing package {sel.value}")
                if id(entry) in seen:
                    continue
                seen.add(id(entry))
                name = lock.shape.string(entry.get("name"), f"packages[{sel.value}].name")
                sources_raw.append((entry, f"{name} @ {sel.value}", name, ""))
            else:  # pypi
                pentry = index.pypi.get(sel.value)
                if pentry is None:
                    raise lock.shape.malformed(f"{self.where} names a missing package {sel.value}")
                if id(pentry) in seen:
                    continue
                seen.add(id(pentry))
                pypi_raw.append(pentry)

        self._cross_check(len(binaries), sources_raw, pypi_raw)
        conda = tuple(
            sorted(
                (self._binary(p) for p in self.py_binaries),
                key=lambda b: (b.name, b.url),
            )
        )
        sources = tuple(
            sorted(
                (self._source(*item) for item in sources_raw),
                key=lambda s: (s.name, s.location, s.lock_id),
            )
        )
        pypi = tuple(
            sorted((self._pypi(entry) for entry in pypi_raw), key=lambda p: (p.name, p.location))
        )
        return conda, sources, pypi

    # -- v6 selector disambiguation (rattler: first entry whose given fields all match) -------

    def _pick_v6(
        self, candidates: list[dict[str, object]], sel: _RawSelector
    ) -> dict[str, object] | None:
        for entry in candidates:
            if all(
                k not in sel.fields or str(sel.fields[k]) == str(entry.get(k))
                for k in ("name", "version", "build", "subdir")
            ):
                return entry
        return None

    # -- cross-check -------------------------------------------------------------------------

    def _cross_check(
        self,
        binaries: int,
        sources_raw: list[tuple[dict[str, object], str, str, str]],
        pypi_raw: list[dict[str, object]],
    ) -> None:
        raw: Counter[tuple[str, ...]] = Counter()
        raw[("conda", "*")] += binaries
        for entry, _id, name, _hash in sources_raw:
            location = self._source_location(entry, _id)
            raw[("conda_source", name.lower(), _norm_location(location))] += 1
        for entry in pypi_raw:
            name = self.lock.shape.string(entry.get("name"), f"packages[{entry.get('pypi')}].name")
            raw[("pypi", canonicalize_name(name))] += 1
        py: Counter[tuple[str, ...]] = Counter()
        py[("conda", "*")] += len(self.py_binaries)
        for src in self.py_sources:
            py[("conda_source", src.name.lower(), _norm_location(src.location))] += 1
        for pkg in self.py_pypi:
            py[("pypi", canonicalize_name(pkg.name))] += 1
        if raw != py:
            only_raw = sorted(map(str, (raw - py).elements()))
            only_py = sorted(map(str, (py - raw).elements()))
            raise LockConsistencyError(
                f"{self.lock.shape.shown} {self.where}: the YAML and py-rattler disagree "
                f"(only in YAML: {only_raw}; only in py-rattler: {only_py})"
            )

    # -- conda binaries ------------------------------------------------------------------------

    def _binary(self, pkg: CondaLockedBinaryPackage) -> CondaBinary:
        record = _binary_record(pkg, self.base)
        sha256 = record.sha256
        md5 = record.md5
        what = f"packages[{pkg.location}]"
        try:
            # Both become archive (and download) paths: channel/<subdir>/<file_name>.
            file_name = RelPath.file_name(record.file_name, what="its file name")
            subdir = RelPath.file_name(record.subdir, what="its subdir")
            if record.python_site_packages_path is not None:
                RelPath.parse(
                    str(record.python_site_packages_path), what="its python_site_packages_path"
                )
        except UnsafePathError as exc:
            raise self.lock.shape.malformed(f"{what}: {exc}") from None
        return CondaBinary(
            location=pkg.location,
            url=str(record.url),
            file_name=file_name,
            name=record.name.normalized,
            version=str(record.version),
            build=str(record.build),
            subdir=subdir,
            hashes=Hashes(
                sha256=bytes(sha256).hex() if sha256 else None,
                md5=bytes(md5).hex() if md5 else None,
                size=record.size,
            ),
            record=record,
        )

    # -- conda sources -------------------------------------------------------------------------

    def _source_location(self, entry: dict[str, object], lock_id: str) -> str:
        if self.lock.version >= 7:
            match = IDENT_RE.match(lock_id)
            assert match is not None  # checked by the caller
            return match["location"]
        return self.lock.shape.string(entry.get("conda"), "packages[].conda")

    def _source(
        self, entry: dict[str, object], lock_id: str, name: str, id_hash: str
    ) -> CondaSource:
        lock = self.lock
        v7 = lock.version >= 7
        what = f"packages[{lock_id}]"
        location = self._source_location(entry, lock_id)
        kind: SourceLocationKind
        path: Path | None = None
        git: GitLocation | None = None
        if location.startswith("git+"):
            kind = "git"
            try:
                git = parse_git_location(location)
            except ValueError as exc:
                raise lock.shape.malformed(f"{what}: {exc}") from None
        elif is_url(location):
            kind = "url"
        else:
            kind = "path"
            path = resolve_location_path(self.base, location)

        variants = lock.shape.string_map(entry.get("variants"), f"{what}.variants")
        source_key = "source" if v7 else "package_build_source"
        source = (
            lock.shape.string_map(entry[source_key], f"{what}.{source_key}")
            if entry.get(source_key) not in (None, "")
            else None
        )
        deps_key = "source_depends" if v7 else "sources"
        source_depends = {
            k: lock.shape.string_map(v, f"{what}.{deps_key}.{k}")
            for k, v in lock.shape.mapping(entry.get(deps_key), f"{what}.{deps_key}").items()
        }
        full = "version" in entry and "subdir" in entry
        record = self._py_source_record(name, location, entry) if full else None
        build_number: int | None = None
        if full:
            raw_number = entry.get("build_number")
            if raw_number is not None:
                try:
                    build_number = int(lock.shape.string(raw_number, f"{what}.build_number"))
                except ValueError:
                    raise lock.shape.malformed(f"{what}.build_number is not an integer") from None
            elif record is not None:
                build_number = int(record.build_number)
            else:
                build_number = 0
        return CondaSource(
            lock_id=lock_id,
            name=name,
            id_hash=id_hash,
            location=location,
            location_kind=kind,
            path=path,
            git=git,
            variants=variants,
            depends=self._strs(entry.get("depends"), f"{what}.depends"),
            constrains=self._strs(entry.get("constrains"), f"{what}.constrains"),
            source=source,
            source_depends=source_depends,
            build_packages=self._selector_strs(entry.get("build_packages"), f"{what}.build"),
            host_packages=self._selector_strs(entry.get("host_packages"), f"{what}.host"),
            version=lock.shape.string(entry["version"], f"{what}.version") if full else None,
            build=self._opt_str(entry.get("build"), f"{what}.build") if full else None,
            build_number=build_number,
            subdir=lock.shape.string(entry["subdir"], f"{what}.subdir") if full else None,
            noarch=self._opt_str(entry.get("noarch"), f"{what}.noarch") if full else None,
            record=record,
        )

    def _py_source_record(
        self, name: str, location: str, entry: dict[str, object]
    ) -> PackageRecord | None:
        key = (name.lower(), _norm_location(location))
        build = entry.get("build")
        subdir = entry.get("subdir")
        version = entry.get("version")
        fallback: PackageRecord | None = None
        for pkg in self.py_sources:
            if (pkg.name.lower(), _norm_location(pkg.location)) != key:
                continue
            record = pkg.package_record
            if record is None:
                continue
            if record.subdir == subdir and (build is None or str(record.build) == build):
                if str(record.version) == version:
                    return record
                fallback = fallback or record
        return fallback

    def _strs(self, value: object, what: str) -> tuple[str, ...]:
        return tuple(self.lock.shape.string(v, what) for v in self.lock.shape.sequence(value, what))

    def _opt_str(self, value: object, what: str) -> str | None:
        return None if value is None else self.lock.shape.string(value, what)

    def _selector_strs(self, value: object, what: str) -> tuple[str, ...]:
        out = []
        for item in self.lock.shape.sequence(value, what):
            entry = self.lock.shape.mapping(item, what)
            if len(entry) != 1:
                raise self.lock.shape.malformed(f"{what} has a selector without exactly one key")
            ((kind, target),) = entry.items()
            out.append(f"{kind}:{self.lock.shape.string(target, what)}")
        return tuple(out)

    # -- PyPI ----------------------------------------------------------------------------------

    def _pypi(self, entry: dict[str, object]) -> PypiPackage:
        lock = self.lock
        location = lock.shape.string(entry.get("pypi"), "packages[].pypi")
        what = f"packages[{location}]"
        name = lock.shape.string(entry.get("name"), f"{what}.name")
        py_pkg = self._py_pypi_for(location, name)
        try:
            where = classify_pypi_location(location, self.base)
        except ValueError as exc:
            raise lock.shape.malformed(f"{what}: {exc}") from None
        return PypiPackage(
            name=name,
            version=self._opt_str(entry.get("version"), f"{what}.version"),
            location=location,
            kind=where.kind,
            url=where.url,
            path=where.path,
            git=where.git,
            file_name=where.file_name,
            hashes=_pypi_hashes(py_pkg),
            requires_python=py_pkg.requires_python,
            requires_dist=tuple(py_pkg.requires_dist),
            index=self._opt_str(entry.get("index"), f"{what}.index"),
        )

    def _py_pypi_for(self, location: str, name: str) -> PypiLockedPackage:
        for pkg in self.py_pypi:
            if pkg.location == location:
                return pkg
        wanted = canonicalize_name(name)
        same_name = [p for p in self.py_pypi if canonicalize_name(p.name) == wanted]
        if len(same_name) == 1:
            return same_name[0]
        raise LockConsistencyError(  # pragma: no cover - guarded by the cross-check
            f"{self.lock.shape.shown} {self.where}: py-rattler has no PyPI entry at {location}"
        )
