"""One environment on one platform of a lock, built from both raw views (:mod:`.raw`) into the
typed model of :mod:`.model`.

py-rattler gives the binary conda records (repodata patches included) and the PyPI entries;
the raw YAML gives what py-rattler hides: the ``conda_source`` fields (identifier hash,
variants, build source, source dependencies, build/host packages, full or partial record) and
the PyPI ``index``. Both views are cross-checked; a disagreement is an internal error
(:class:`~.raw.LockConsistencyError`). v6 locks differ in the keys of source entries and in
selectors that need their fields to pick among entries of the same location.

Workarounds for py-rattler 0.28, each in one function, each pinned by a test in
``tests/unit/test_lockfile_upstream.py`` that fails once upstream fixes it:

- :func:`_pypi_hashes`: ``LockedPackage.hashes`` raises ``AttributeError`` when an entry has
  no hash (it wraps ``None``); read ``_package.hashes`` and test for ``None``.
- :func:`_packages_for`: ``Environment.packages_by_platform()`` comes in hash order; the
  platform is looked up by name (its order comes from :meth:`.raw.RawLock.platforms`).
- :func:`_binary_record`: ``CondaLockedBinaryPackage.repo_data_record()`` raises
  ``ConversionError`` ("The path is not an absolute path") for path locations; we build the
  record from ``package_record`` with a ``file://`` URL.
- ``Environment.conda_repodata_records()`` silently skips source packages: never used.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import NamedTuple

from packaging.utils import canonicalize_name
from rattler import PackageRecord, RepoDataRecord
from rattler.lock import (
    CondaLockedBinaryPackage,
    CondaLockedSourcePackage,
    Environment,
    LockedPackage,
    PypiLockedPackage,
)

from pixi_pack_src.lock.locations import (
    classify_pypi_location,
    is_conda_archive,
    is_url,
    norm_location,
    parse_git_location,
    resolve_location_path,
)
from pixi_pack_src.lock.model import (
    CondaBinary,
    CondaSource,
    GitLocation,
    Hashes,
    Platform,
    PypiPackage,
    SourceLocationKind,
)
from pixi_pack_src.lock.raw import LockConsistencyError, RawLock, RawSelector
from pixi_pack_src.safepath import RelPath, UnsafePathError

IDENT_RE = re.compile(r"^(?P<name>[^\[]+)\[(?P<hash>[0-9a-f]+)\] @ (?P<location>.+)$")


class _RawSource(NamedTuple):
    """A source package entry as a selector found it."""

    entry: dict[str, object]
    lock_id: str  # v7: "name[hash] @ location"; v6: "name @ location"
    name: str
    id_hash: str  # "" in v6


Entries = tuple[tuple[CondaBinary, ...], tuple[CondaSource, ...], tuple[PypiPackage, ...]]


def read_entries(
    lock: RawLock, base: Path, environment: str, raw_env: dict[str, object], platform: Platform
) -> Entries:
    """The conda binaries, conda sources and PyPI packages of ``environment`` on ``platform``
    (each sorted), paths resolved from ``base`` (the lock's directory)."""
    py_env = lock.lock_file.environment(environment)
    if py_env is None:
        raise LockConsistencyError(
            f"{lock.shape.shown}: environment '{environment}' is in the YAML but not in py-rattler"
        )
    py_packages = _packages_for(py_env, platform.name)
    selectors = lock.selectors(raw_env, environment, platform.name)
    return _EnvReader(lock, base, environment, platform, py_packages).read(selectors)


class _EnvReader:
    """Builds the model of one environment on one platform from both views."""

    def __init__(
        self,
        lock: RawLock,
        base: Path,
        environment: str,
        platform: Platform,
        py_packages: list[LockedPackage],
    ) -> None:
        self.lock = lock
        self.environment = environment
        self.platform = platform
        self.base = base
        self.where = f"environments.{environment}.packages.{platform.name}"
        self.py_binaries = [p for p in py_packages if isinstance(p, CondaLockedBinaryPackage)]
        self.py_sources = [p for p in py_packages if isinstance(p, CondaLockedSourcePackage)]
        self.py_pypi = [p for p in py_packages if isinstance(p, PypiLockedPackage)]

    def read(self, selectors: list[RawSelector]) -> Entries:
        lock = self.lock
        index = lock.index()
        seen: set[int] = set()
        binaries: set[str] = set()
        sources_raw: list[_RawSource] = []
        pypi_raw: list[dict[str, object]] = []

        def first_time(
            entry: dict[str, object] | None, sel: RawSelector
        ) -> dict[str, object] | None:
            """``entry`` (what ``sel`` names) when it is new, ``None`` when already read; a
            missing one is malformed."""
            if entry is None:
                raise lock.shape.malformed(f"{self.where} names a missing package {sel.value}")
            if id(entry) in seen:
                return None
            seen.add(id(entry))
            return entry

        for sel in selectors:
            if sel.kind == "conda_source":
                entry = first_time(index.conda_source.get(sel.value), sel)
                if entry is None:
                    continue
                match = IDENT_RE.match(sel.value)
                if match is None:
                    raise lock.shape.malformed(f"invalid source package identifier {sel.value!r}")
                sources_raw.append(_RawSource(entry, sel.value, match["name"], match["hash"]))
            elif sel.kind == "conda":
                if lock.version >= 7 or is_conda_archive(sel.value):
                    binaries.add(sel.value)
                    continue
                entry = first_time(self._pick_v6(index.conda.get(sel.value, []), sel), sel)
                if entry is None:
                    continue
                name = lock.shape.string(entry.get("name"), f"packages[{sel.value}].name")
                sources_raw.append(_RawSource(entry, f"{name} @ {sel.value}", name, ""))
            else:  # pypi
                pentry = first_time(index.pypi.get(sel.value), sel)
                if pentry is not None:
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
                (self._source(item) for item in sources_raw),
                key=lambda s: (s.name, s.location, s.lock_id),
            )
        )
        pypi = tuple(
            sorted((self._pypi(entry) for entry in pypi_raw), key=lambda p: (p.name, p.location))
        )
        return conda, sources, pypi

    # -- v6 selector disambiguation (rattler: first entry whose given fields all match) -------

    def _pick_v6(
        self, candidates: list[dict[str, object]], sel: RawSelector
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
        sources_raw: list[_RawSource],
        pypi_raw: list[dict[str, object]],
    ) -> None:
        raw: Counter[tuple[str, ...]] = Counter()
        raw[("conda", "*")] += binaries
        for item in sources_raw:
            location = self._source_location(item.entry, item.lock_id)
            raw[("conda_source", item.name.lower(), norm_location(location))] += 1
        for entry in pypi_raw:
            name = self.lock.shape.string(entry.get("name"), f"packages[{entry.get('pypi')}].name")
            raw[("pypi", canonicalize_name(name))] += 1
        py: Counter[tuple[str, ...]] = Counter()
        py[("conda", "*")] += len(self.py_binaries)
        for src in self.py_sources:
            py[("conda_source", src.name.lower(), norm_location(src.location))] += 1
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

    def _source(self, raw: _RawSource) -> CondaSource:
        entry, lock_id, name, id_hash = raw
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
        key = (name.lower(), norm_location(location))
        build = entry.get("build")
        subdir = entry.get("subdir")
        version = entry.get("version")
        fallback: PackageRecord | None = None
        for pkg in self.py_sources:
            if (pkg.name.lower(), norm_location(pkg.location)) != key:
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
    """Workaround: ``packages_by_platform()`` is keyed in hash order; look the name up."""
    for platform, packages in env.packages_by_platform().items():
        if platform.name == platform_name:
            return list(packages)
    return []
