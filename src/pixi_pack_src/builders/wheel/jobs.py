"""What to build and how: the options of a pack's wheel builds, one job per PyPI entry that is
not a wheel, its cache key, and what ``inspect`` shows.

:func:`job_for` turns each non-wheel ``pypi:`` entry into a :class:`WheelBuildJob`: an sdist
(downloaded or local, already verified by the fetch stage), a git source (checked out at
exactly the locked commit, lazily, by :mod:`.staging`) or a source tree (hashed now, see
:mod:`pixi_pack_src.builders.sourcetree`). :func:`cache_key` names the wheel a job makes in the
wheel cache (:mod:`.wheelcache`); :func:`describe_build` is the same decision for ``inspect``,
computed without fetching anything. The result of a build is a :class:`BuiltWheel`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from packaging.utils import canonicalize_name

from pixi_pack_src._version import __version__
from pixi_pack_src.builders.sourcetree import tree_sha256
from pixi_pack_src.builders.wheel.interpreter import TargetInterpreter, python_tag
from pixi_pack_src.builders.wheel.overrides import Overrides
from pixi_pack_src.builders.wheel.uv import PackageSources
from pixi_pack_src.builders.wheel.wheelcache import WheelCache
from pixi_pack_src.errors import BuildError
from pixi_pack_src.fetch.auth import AuthStore
from pixi_pack_src.hashing import file_sha256
from pixi_pack_src.layout import wheel_path
from pixi_pack_src.lock.model import GitLocation, PypiPackage
from pixi_pack_src.redact import redact_url

SourceKind = Literal["sdist", "git", "source-tree"]
CACHE_SCHEMA = 2  # 2: build environments made by uv


@dataclass(frozen=True)
class WheelBuildOptions:
    """How wheels are built; one value for a whole pack."""

    work_dir: Path
    cache_root: Path | None = None  # None: no build cache (and git checkouts in work_dir)
    build_isolation: bool = True
    pypi_index: str | None = None  # --pypi-index: replaces every locked index
    indexes: tuple[str, ...] = ()  # the environment's (lock `indexes`), first = default index
    find_links: tuple[str, ...] = ()  # the environment's, URLs or absolute paths (`find-links`)
    overrides: Overrides = field(default_factory=Overrides)
    jobs: int = 2
    keep_build_dir: bool = False
    verbosity: int = 0
    timeout: float | None = None  # per backend hook
    auth: AuthStore = field(default_factory=AuthStore)

    def sources_for(self, package: PypiPackage) -> PackageSources:
        """Where ``package``'s build requirements come from (``--pypi-index`` replaces the
        lock's indexes; an entry's own index serves when the environment names none)."""
        if self.pypi_index is not None:
            indexes: tuple[str, ...] = (self.pypi_index,)
        elif self.indexes:
            indexes = self.indexes
        else:
            indexes = (package.index,) if package.index else ()
        return PackageSources(indexes=indexes, find_links=self.find_links)


@dataclass(frozen=True)
class WheelBuildJob:
    """One PyPI entry to build, with its verified source."""

    package: PypiPackage
    kind: SourceKind
    source: Path | None  # the sdist file or the tree; None for git (checked out on a miss)
    source_hash: str  # sdist sha256, tree sha256, or the git commit
    origin: Mapping[
        str, object
    ]  # provenance "origin" (docs/archive-format.md, "`pixi-pack-src.json`")
    exclude: tuple[Path, ...] = ()  # left out of a source tree's hash and copy

    @property
    def name(self) -> str:
        return str(canonicalize_name(self.package.name))


@dataclass(frozen=True)
class BuiltWheel:
    """A wheel for one package, built now or taken from the cache."""

    package: str  # the locked name
    path: Path
    file_name: str
    name: str
    version: str
    sha256: str
    size: int
    from_cache: bool
    provenance: Mapping[str, object]  # {"origin": {...}, "builder": {...}}
    log_file: Path | None = None

    @property
    def archive_path(self) -> str:
        return wheel_path(self.file_name)


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix() or "."
    except ValueError:
        return path.name


def job_for(
    package: PypiPackage,
    *,
    workspace_root: Path,
    sdist_file: Path | None = None,
    exclude: Sequence[Path] = (),
) -> WheelBuildJob:
    """The build job of a non-wheel PyPI entry.

    ``sdist_file``: the verified local copy of an sdist (URL or local file); ``exclude``:
    paths to leave out of a source tree's hash and copy (our output, work and cache dirs).
    """
    if package.kind in ("sdist", "local-sdist"):
        if sdist_file is None:
            raise ValueError(f"the sdist of {package.name} must be fetched before building")
        sha = source_hash(package, sdist_file=sdist_file)
        assert sha is not None
        origin: dict[str, object] = {"type": "sdist", "sha256": sha}
        if package.url is not None:
            origin["url"] = redact_url(package.url)
        else:
            origin["path"] = _relative(package.path or sdist_file, workspace_root)
        return WheelBuildJob(package, "sdist", sdist_file, sha, origin)
    if package.kind == "git":
        assert package.git is not None
        g = package.git
        origin = {"type": "pypi-git", "url": redact_url(g.url), "rev": g.rev}
        if g.subdirectory:
            origin["subdirectory"] = g.subdirectory
        return WheelBuildJob(package, "git", None, _git_hash(g), origin)
    if package.kind == "source-tree":
        assert package.path is not None
        if not package.path.is_dir():
            raise BuildError(
                f"the source tree of {package.name} is missing: {package.path}",
                hint="check the `pypi:` location in pixi.lock (relative to the workspace)",
            )
        digest = source_hash(package, exclude=exclude)
        assert digest is not None
        origin = {
            "type": "pypi-source-tree",
            "path": _relative(package.path, workspace_root),
            "source-tree-sha256": digest,
        }
        return WheelBuildJob(
            package, "source-tree", package.path, digest, origin, exclude=tuple(exclude)
        )
    raise ValueError(f"{package.name} is a {package.kind}, not something to build")


def _git_hash(g: GitLocation) -> str:
    return f"{g.rev}:{g.subdirectory or ''}"


def source_hash(
    package: PypiPackage, *, sdist_file: Path | None = None, exclude: Sequence[Path] = ()
) -> str | None:
    """What a wheel build's cache key says of its source: the sdist's sha256, the git commit
    (and subdirectory) or the source tree's hash; ``None`` when it cannot be known without
    fetching (a remote sdist whose lock entry has no sha256). ``sdist_file``: the verified
    sdist (else a local sdist is read where it is, a remote one taken from the lock)."""
    if package.kind in ("sdist", "local-sdist"):
        if sdist_file is None and package.path is not None and package.path.is_file():
            sdist_file = package.path
        return file_sha256(sdist_file) if sdist_file is not None else package.hashes.sha256
    if package.kind == "git" and package.git is not None:
        return _git_hash(package.git)
    if package.kind == "source-tree" and package.path is not None:
        return tree_sha256(package.path, exclude=exclude)
    return None


def wheel_cache_key(
    *,
    kind: SourceKind,
    source: str,
    python_version: str,
    platform: str,
    override_digest: str,
    isolated: bool,
    environment_fingerprint: str = "",
) -> str:
    """The build-cache key of a wheel build from plain values (see :func:`cache_key`)."""
    doc = {
        "schema": CACHE_SCHEMA,
        "tool": __version__,
        "kind": kind,
        "source": source,
        "python": python_tag(python_version),
        "platform": platform,
        "overrides": override_digest,
        "isolated": isolated,
        "environment": "" if isolated else environment_fingerprint,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def cache_key(
    job: WheelBuildJob,
    *,
    target: TargetInterpreter,
    override_digest: str,
    isolated: bool,
    platform: str | None = None,
) -> str:
    """The build-cache key (``platform`` defaults to the target's; ``"any"`` for pure)."""
    return wheel_cache_key(
        kind=job.kind,
        source=job.source_hash,
        python_version=target.version,
        platform=platform or target.subdir,
        override_digest=override_digest,
        isolated=isolated,
        environment_fingerprint=target.environment_fingerprint,
    )


_SOURCE_KINDS: dict[str, SourceKind] = {
    "sdist": "sdist",
    "local-sdist": "sdist",
    "git": "git",
    "source-tree": "source-tree",
}


def describe_build(
    package: PypiPackage,
    *,
    overrides: Overrides,
    subdir: str,
    python_version: str | None,
    cache_root: Path | None = None,
    isolated: bool = True,
    environment_fingerprint: str = "",
    exclude: Sequence[Path] = (),
) -> dict[str, object]:
    """What ``inspect`` shows for a PyPI entry that will be built.

    No I/O without ``cache_root``; with it, ``cached`` tells whether the wheel cache already
    holds the wheel (the key is :func:`cache_key`'s: the source is hashed - a local sdist or a
    source tree is read, a git source is its commit - never fetched or checked out; ``None``
    when it cannot be known without fetching or without the locked python's version).
    """
    kind = _SOURCE_KINDS.get(package.kind)
    override = overrides.for_package(package.name, subdir=subdir, python_version=python_version)
    doc: dict[str, object] = {
        "build": f"{kind or package.kind} -> wheel",
        "source": package.git.short if package.git is not None else package.location,
    }
    if not override.empty:
        doc["overrides"] = {
            "env": sorted(override.env),
            "patches": [p.label for p in override.patches],
            "config-settings": sorted(override.config_settings),
        }
    if cache_root is not None:
        source = source_hash(package, exclude=exclude) if kind is not None else None
        cached: bool | None = None
        if kind is not None and source is not None and python_version is not None:
            cache = WheelCache(cache_root)
            cached = any(
                cache.contains(
                    wheel_cache_key(
                        kind=kind,
                        source=source,
                        python_version=python_version,
                        platform=platform,
                        override_digest=override.digest(),
                        isolated=isolated,
                        environment_fingerprint=environment_fingerprint,
                    )
                )
                for platform in (subdir, "any")
            )
        doc["cached"] = cached
    return doc
