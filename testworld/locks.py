"""pixi.lock v7 files from a real ``rattler.solve`` against a world channel.

:func:`write_lock` solves every (environment, platform) with py-rattler, writes the lock with
py-rattler's ``LockFile`` writer, then completes it by editing the YAML where py-rattler
cannot write (PyPI hashes / ``requires_dist`` / ``requires_python`` / ``index``, versionless
source trees, ``conda_source`` entries, relative-path conda entries). Repodata patches are
applied to the records before writing (``PackageRecord.depends`` setter). Every lock is
checked with ``rattler.LockFile.from_path`` before :func:`write_lock` returns.

Typical use::

    lock = write_lock(
        tmp / "pixi.lock",
        world,
        {"default": Env(conda=("python", "chain-a")), "test": Env(conda=("pyworld",))},
        platforms=(Plat("linux-64"), Plat("win-64")),
        channel_url=server.url + "/channel",
    )
    lock.urls("default", "linux-64")   # what the lock points at
"""

from __future__ import annotations

import difflib
import hashlib
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from packaging.requirements import Requirement
from rattler import (
    BuildString,
    Gateway,
    GenericVirtualPackage,
    LockChannel,
    LockFile,
    LockPlatform,
    PackageName,
    RepoDataRecord,
    Version,
)

from testworld.channel import channel_records, run
from testworld.layout import World

CondaLocation = Literal["url", "file", "absolute", "relative"]

DEFAULT_VIRTUAL_PACKAGES: dict[str, tuple[str, ...]] = {
    "linux-64": ("__unix=0=0", "__linux=5.10=0", "__glibc=2.28=0", "__archspec=1=x86_64"),
    "linux-aarch64": ("__unix=0=0", "__linux=5.10=0", "__glibc=2.28=0", "__archspec=1=aarch64"),
    "osx-64": ("__unix=0=0", "__osx=13.0=0", "__archspec=1=x86_64"),
    "osx-arm64": ("__unix=0=0", "__osx=13.0=0", "__archspec=1=arm64"),
    "win-64": ("__win=0=0", "__archspec=1=x86_64"),
}


@dataclass(frozen=True)
class Plat:
    """A lock platform: ``name`` (may be custom), its conda ``subdir``, virtual packages."""

    name: str
    subdir: str | None = None
    virtual_packages: tuple[str, ...] | None = None

    @property
    def conda_subdir(self) -> str:
        return self.subdir or self.name

    @property
    def virtuals(self) -> tuple[str, ...]:
        if self.virtual_packages is not None:
            return self.virtual_packages
        return DEFAULT_VIRTUAL_PACKAGES.get(self.conda_subdir, ())


@dataclass(frozen=True)
class PypiEntry:
    """A ``pypi:`` lock entry. ``version=None`` writes a source tree (no version)."""

    name: str
    location: str
    version: str | None = None
    sha256: str | None = None
    requires_dist: tuple[str, ...] = ()
    requires_python: str | None = None
    index: str | None = None


@dataclass(frozen=True)
class SourceEntry:
    """A ``conda_source:`` lock entry (see docs/lockfile.md §3).

    ``location`` is what follows ``@``: a workspace-relative path (``src/root``, ``.``) or a
    git URL (``git+file:///...#<sha>``). ``variants`` get ``target_platform`` added (the
    platform's subdir, or ``noarch`` when ``noarch`` is set). ``build_packages`` /
    ``host_packages`` name world packages (resolved to their locked URLs for the platform)
    or other source entries as ``"source:<name>"``. Give ``version`` (and optionally
    ``build``) for a full record; ``subdir`` is then filled in.
    """

    name: str
    location: str
    depends: tuple[str, ...] = ()
    constrains: tuple[str, ...] = ()
    variants: Mapping[str, str | int | bool] = field(default_factory=dict)
    noarch: bool = False
    source_depends: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    source: Mapping[str, str] | None = None
    build_packages: tuple[str, ...] = ()
    host_packages: tuple[str, ...] = ()
    version: str | None = None
    build: str | None = None
    license: str | None = None

    def lock_id(self, platform: Plat) -> str:
        return f"{self.name}[{self.id_hash(platform)}] @ {self.location}"

    def id_hash(self, platform: Plat) -> str:
        blob = repr((self.name, self.location, sorted(self.all_variants(platform).items())))
        return hashlib.sha256(blob.encode()).hexdigest()[:8]

    def all_variants(self, platform: Plat) -> dict[str, str | int | bool]:
        target = "noarch" if self.noarch else platform.conda_subdir
        return {"target_platform": target, **self.variants}


@dataclass(frozen=True)
class Env:
    """One environment of a lock: conda specs to solve, PyPI entries, source entries."""

    conda: tuple[str, ...] = ()
    pypi: tuple[PypiEntry, ...] = ()
    sources: tuple[SourceEntry, ...] = ()
    platforms: tuple[str, ...] | None = None  # platform names; default: all of the lock
    indexes: tuple[str, ...] | None = None  # PyPI indexes (written when pypi entries exist)
    find_links: tuple[str, ...] = ()  # ``find-links``: URLs, or paths (relative to the lock)


@dataclass(frozen=True)
class WrittenLock:
    """A lock written by :func:`write_lock` and what went into it."""

    path: Path
    records: Mapping[tuple[str, str], tuple[RepoDataRecord, ...]]  # (env, platform name)
    platforms: tuple[Plat, ...]
    environments: Mapping[str, Env]

    def names(self, env: str, platform: str) -> list[str]:
        return sorted(r.name.normalized for r in self.records[(env, platform)])

    def versions(self, env: str, platform: str) -> dict[str, str]:
        return {r.name.normalized: str(r.version) for r in self.records[(env, platform)]}

    def urls(self, env: str, platform: str) -> list[str]:
        return sorted(r.url for r in self.records[(env, platform)])

    def load(self) -> LockFile:
        return LockFile.from_path(self.path.resolve())

    def text(self) -> str:
        return self.path.read_text()


# -- solving --------------------------------------------------------------------------------


def _generic_virtual(spec: str) -> GenericVirtualPackage:
    parts = spec.split("=")
    name, version = parts[0], parts[1] if len(parts) > 1 else "0"
    build = parts[2] if len(parts) > 2 else "0"
    return GenericVirtualPackage(PackageName(name), Version(version), BuildString(build))


async def _solve(
    sources: Sequence[str],
    specs: Sequence[str],
    subdir: str,
    virtual_packages: Sequence[str],
    cache_dir: Path,
) -> list[RepoDataRecord]:
    import rattler

    platforms: list[Any] = [subdir] if subdir == "noarch" else [subdir, "noarch"]
    return await rattler.solve(
        sources=list(sources),
        specs=list(specs),
        gateway=Gateway(cache_dir=cache_dir),
        platforms=platforms,
        virtual_packages=[_generic_virtual(v) for v in virtual_packages],
    )


def solve(
    channel: str | Path,
    specs: Sequence[str],
    subdir: str = "linux-64",
    *,
    virtual_packages: Sequence[str] | None = None,
) -> list[RepoDataRecord]:
    """Solve ``specs`` for ``subdir`` against one channel (a URL or a channel directory)."""
    source = Path(channel).resolve().as_uri() if isinstance(channel, Path) else channel
    vps = DEFAULT_VIRTUAL_PACKAGES.get(subdir, ()) if virtual_packages is None else virtual_packages
    with tempfile.TemporaryDirectory(prefix="world-gw-") as gw:
        records = run(_solve([source], specs, subdir, vps, Path(gw)))
    return sorted(records, key=lambda r: r.name.normalized)


# -- writing --------------------------------------------------------------------------------


def _relocate(record: RepoDataRecord, url: str, channel: str) -> RepoDataRecord:
    record.url = url
    record.channel = channel
    return record


def write_lock(
    path: Path,
    world: World,
    environments: Mapping[str, Env],
    *,
    platforms: Sequence[Plat] = (Plat("linux-64"),),
    channel_url: str | None = None,
    patches: Mapping[str, Sequence[str]] | None = None,
    conda_locations: Mapping[str, CondaLocation] | None = None,
    relative_dir: str = "conda-pkgs",
) -> WrittenLock:
    """Solve and write a v7 lock at ``path``; return what it holds.

    - ``channel_url``: the channel URL written into the lock (default: the world channel's
      ``file://`` URL). Solving always reads the world channel from disk.
    - ``patches``: package name -> replacement ``depends`` (a repodata patch: the locked
      record differs from the archive's ``index.json``).
    - ``conda_locations``: package name -> ``"file"`` (``file:///...`` URL of the world
      archive), ``"absolute"`` (its absolute path, as py-rattler writes file URLs) or
      ``"relative"`` (archive copied to ``<lock dir>/<relative_dir>/`` and referenced as
      ``./<relative_dir>/<file>``); others stay ``"url"``.

    The file is normalised by a py-rattler round trip (``from_path`` -> ``to_path``, checked
    to keep every field), so it reads like a pixi-written lock.
    """
    path = Path(path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    channel = (channel_url or world.channel_url()).rstrip("/")
    file_channel = world.channel_url()
    patches = dict(patches or {})
    locations = dict(conda_locations or {})
    names = [p.name for p in platforms]

    lf = LockFile([_lock_platform(p) for p in platforms])
    lock_platforms = {p.name: p for p in lf.platforms()}  # fresh LockPlatform objects panic
    solved: dict[tuple[str, str], tuple[RepoDataRecord, ...]] = {}
    relative: dict[str, str] = {}  # url in the written lock -> relative location
    file_urls: set[str] = set()  # absolute paths to rewrite as file:// URLs
    extras: dict[tuple[str, str], dict[str, str]] = {}  # build/host-only packages

    with tempfile.TemporaryDirectory(prefix="world-gw-") as gw:
        for env_name, env in environments.items():
            lf.set_channels(env_name, [LockChannel(channel + "/")])
            for plat in platforms:
                if env.platforms is not None and plat.name not in env.platforms:
                    continue
                specs = list(env.conda)
                if env.pypi and not any(s.split()[0] == "python" for s in specs):
                    specs.append("python")
                records: list[RepoDataRecord] = []
                if specs:
                    records = run(
                        _solve([file_channel], specs, plat.conda_subdir, plat.virtuals, Path(gw))
                    )
                records.sort(key=lambda r: r.name.normalized)
                for rec in records:
                    name = rec.name.normalized
                    sub_file = f"{rec.subdir}/{rec.file_name}"
                    where = locations.get(name, "url")
                    if where in ("file", "absolute"):
                        archive = (world.channel_dir / sub_file).resolve()
                        _relocate(rec, archive.as_uri(), file_channel)
                        if where == "file":
                            file_urls.add(str(archive))
                    else:
                        _relocate(rec, f"{channel}/{sub_file}", channel)
                        if where == "relative":
                            dest = path.parent / relative_dir / rec.file_name
                            dest.parent.mkdir(parents=True, exist_ok=True)
                            shutil.copyfile(world.channel_dir / sub_file, dest)
                            relative[rec.url] = f"./{relative_dir}/{rec.file_name}"
                    if name in patches:
                        rec.depends = list(patches[name])
                    lf.add_conda_package(env_name, lock_platforms[plat.name], rec)
                for entry in env.pypi:
                    lf.add_pypi_package(
                        env_name,
                        lock_platforms[plat.name],
                        entry.name,
                        entry.version or "0",
                        entry.location,
                    )
                # Build/host packages of source entries that the environment lacks: add the
                # world's newest record to ``packages:`` (its selector is removed again below).
                have = {r.name.normalized for r in records}
                wanted = {
                    ref
                    for src in env.sources
                    for ref in (*src.build_packages, *src.host_packages)
                    if not ref.startswith("source:") and ref not in have
                }
                for ref in sorted(wanted):
                    rec = _world_record(world, ref, plat.conda_subdir)
                    _relocate(rec, f"{channel}/{rec.subdir}/{rec.file_name}", channel)
                    lf.add_conda_package(env_name, lock_platforms[plat.name], rec)
                    extras.setdefault((env_name, plat.name), {})[ref] = rec.url
                solved[(env_name, plat.name)] = tuple(records)
    lf.to_path(path)
    _complete_yaml(path, environments, platforms, relative, solved, extras)
    _normalise(path)
    if file_urls:
        text = path.read_text()
        for abs_path in sorted(file_urls):
            text = text.replace(f"conda: {abs_path}\n", f"conda: file://{abs_path}\n")
        path.write_text(text)
    _check_loads(path, environments, names, solved)
    return WrittenLock(path, solved, tuple(platforms), dict(environments))


def _world_record(world: World, name: str, subdir: str) -> RepoDataRecord:
    """The world's newest ``name`` for ``subdir`` (or noarch) as a ``RepoDataRecord``."""
    pkg = world.package(name, subdir)
    records = channel_records(world.channel_dir, [pkg.subdir])
    return next(r for r in records if r.file_name == pkg.file_name)


def _lock_platform(p: Plat) -> LockPlatform:
    from rattler import Subdir

    subdir = Subdir(p.subdir) if p.subdir and p.subdir != p.name else None
    virtuals = [v.removesuffix("=0") if v.count("=") == 2 else v for v in p.virtuals]
    return LockPlatform(p.name, subdir=subdir, virtual_packages=virtuals or None)


# -- YAML completion ------------------------------------------------------------------------


def _complete_yaml(
    path: Path,
    environments: Mapping[str, Env],
    platforms: Sequence[Plat],
    relative: Mapping[str, str],
    solved: Mapping[tuple[str, str], tuple[RepoDataRecord, ...]],
    extras: Mapping[tuple[str, str], Mapping[str, str]],
) -> None:
    has_pypi = any(env.pypi for env in environments.values())
    has_sources = any(env.sources for env in environments.values())
    if not (has_pypi or has_sources or relative):
        return
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    packages: list[dict[str, Any]] = doc["packages"]

    # Relative-path conda entries.
    for entry in packages:
        if "conda" in entry and entry["conda"] in relative:
            old = entry["conda"]
            entry["conda"] = relative[old]
            entry.setdefault("subdir", old.rsplit("/", 2)[-2])
            _rename_selectors(doc, "conda", old, relative[old])

    # PyPI details py-rattler cannot write.
    pypi_by_location = {e.location: e for env in environments.values() for e in env.pypi}
    for entry in packages:
        if "pypi" not in entry:
            continue
        spec = pypi_by_location[entry["pypi"]]
        if spec.version is None:
            entry.pop("version", None)
        if spec.sha256:
            entry["sha256"] = spec.sha256
        if spec.requires_dist:
            entry["requires_dist"] = list(spec.requires_dist)
        if spec.requires_python:
            entry["requires_python"] = spec.requires_python
        if spec.index:
            entry["index"] = spec.index
    for env_name, env in environments.items():
        if env.pypi and env.indexes:
            doc["environments"][env_name]["indexes"] = list(env.indexes)
        if env.pypi and env.find_links:
            doc["environments"][env_name]["find-links"] = [
                {"url": f} if "://" in f else {"path": f} for f in env.find_links
            ]

    # conda_source entries.
    by_name = {p.name: p for p in platforms}
    seen: set[str] = set()
    for env_name, env in environments.items():
        env_doc = doc["environments"][env_name]
        for plat_name in _env_platforms(env, platforms):
            plat = by_name[plat_name]
            if not env.sources:
                continue
            selectors = env_doc.setdefault("packages", {}).setdefault(plat_name, [])
            ids = {s.name: s.lock_id(plat) for s in env.sources}
            extra = extras.get((env_name, plat_name), {})
            urls = {r.name.normalized: r.url for r in solved.get((env_name, plat_name), ())}
            urls.update(extra)
            selectors[:] = [s for s in selectors if s.get("conda") not in extra.values()]
            for src in env.sources:
                lock_id = ids[src.name]
                selectors.append({"conda_source": lock_id})
                if lock_id in seen:
                    continue
                seen.add(lock_id)
                packages.append(_source_entry(src, plat, ids, urls, relative))
    packages.sort(key=_package_sort_key)
    path.write_text(yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=1000))


def _env_platforms(env: Env, platforms: Sequence[Plat]) -> list[str]:
    return [p.name for p in platforms if env.platforms is None or p.name in env.platforms]


def _rename_selectors(doc: dict[str, Any], key: str, old: str, new: str) -> None:
    for env_doc in doc["environments"].values():
        for selectors in env_doc.get("packages", {}).values():
            for sel in selectors:
                if sel.get(key) == old:
                    sel[key] = new


def _selector(
    ref: str, ids: Mapping[str, str], urls: Mapping[str, str], relative: Mapping[str, str]
) -> dict[str, str]:
    if ref.startswith("source:"):
        return {"conda_source": ids[ref.removeprefix("source:")]}
    if ref not in urls:
        raise KeyError(f"build/host package {ref!r} is not in the world: {sorted(urls)}")
    url = urls[ref]
    return {"conda": relative.get(url, url)}


def _source_entry(
    src: SourceEntry,
    plat: Plat,
    ids: Mapping[str, str],
    urls: Mapping[str, str],
    relative: Mapping[str, str],
) -> dict[str, Any]:
    entry: dict[str, Any] = {"conda_source": ids[src.name]}
    if src.version is not None:
        subdir = "noarch" if src.noarch else plat.conda_subdir
        build = src.build or f"h{src.id_hash(plat)[:7]}_0"
        entry.update({"version": src.version, "build": build, "subdir": subdir})
        if src.noarch:
            entry["noarch"] = "generic"
    entry["variants"] = dict(src.all_variants(plat))
    if src.depends:
        entry["depends"] = list(src.depends)
    if src.constrains:
        entry["constrains"] = list(src.constrains)
    if src.license:
        entry["license"] = src.license
    if src.source_depends:
        entry["source_depends"] = {k: dict(v) for k, v in src.source_depends.items()}
    if src.source:
        entry["source"] = dict(src.source)
    if src.build_packages:
        entry["build_packages"] = [_selector(r, ids, urls, relative) for r in src.build_packages]
    if src.host_packages:
        entry["host_packages"] = [_selector(r, ids, urls, relative) for r in src.host_packages]
    return entry


def _package_sort_key(entry: dict[str, Any]) -> tuple[str, str]:
    for kind in ("conda", "conda_source", "pypi"):
        if kind in entry:
            return (kind, str(entry[kind]))
    return ("", "")


def _canonical_entry(entry: dict[str, Any]) -> dict[str, Any]:
    if "requires_dist" not in entry:
        return entry
    reqs = [str(Requirement(r)) for r in entry["requires_dist"]]  # py-rattler respells PEP 508
    return {**entry, "requires_dist": reqs}


def _semantic(doc: dict[str, Any]) -> dict[str, Any]:
    out = dict(doc)
    out["platforms"] = sorted(doc["platforms"], key=lambda p: str(p["name"]))
    packages = [_canonical_entry(e) for e in doc["packages"]]
    out["packages"] = sorted(packages, key=lambda e: repr(sorted(e.items())))
    envs = {}
    for name, env in doc["environments"].items():
        env = dict(env)
        env["packages"] = {k: sorted(v, key=repr) for k, v in env.get("packages", {}).items()}
        envs[name] = env
    out["environments"] = envs
    return out


def _normalise(path: Path) -> None:
    """Rewrite ``path`` through py-rattler, insisting that nothing is lost."""
    before = yaml.safe_load(path.read_text())
    tmp = path.with_name(path.name + ".rt")
    LockFile.from_path(path).to_path(tmp)
    after = yaml.safe_load(tmp.read_text())
    if _semantic(before) != _semantic(after):
        tmp.unlink()
        diff = difflib.unified_diff(
            yaml.safe_dump(_semantic(before)).splitlines(),
            yaml.safe_dump(_semantic(after)).splitlines(),
            "written",
            "round-tripped",
            lineterm="",
        )
        raise AssertionError(
            f"py-rattler round trip of {path} changed its content:\n" + "\n".join(diff)
        )
    tmp.replace(path)


# -- checks -----------------------------------------------------------------------------


def _check_loads(
    path: Path,
    environments: Mapping[str, Env],
    platforms: Sequence[str],
    solved: Mapping[tuple[str, str], tuple[RepoDataRecord, ...]],
) -> None:
    """The lock loads with py-rattler and holds exactly what was put in, per env/platform."""
    lf = LockFile.from_path(path.resolve())
    assert sorted(p.name for p in lf.platforms()) == sorted(platforms), lf.platforms()
    loaded = dict(lf.environments())
    assert set(loaded) == set(environments), (sorted(loaded), sorted(environments))
    for env_name, env in environments.items():
        by_platform = {p.name: pkgs for p, pkgs in loaded[env_name].packages_by_platform().items()}
        for plat_name in platforms:
            if (env_name, plat_name) not in solved:
                assert plat_name not in by_platform, (env_name, plat_name)
                continue
            want = sorted(
                [r.name.normalized for r in solved[(env_name, plat_name)]]
                + [e.name for e in env.pypi]
                + [s.name for s in env.sources]
            )
            got = sorted(p.name for p in by_platform.get(plat_name, []))
            assert got == want, (path, env_name, plat_name, got, want)
