"""The typed, immutable model of one environment on one platform of a pixi.lock.

Produced by :mod:`pixi_pack_src.lock.lockfile` (over :mod:`.raw` and :mod:`.entries`, the only
modules that touch py-rattler's lock objects); consumed by planning, downloads, builds, the channel writer and ``inspect``.
See docs/lockfile.md for what each field means.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from rattler import PackageRecord, RepoDataRecord

from pixi_pack_src.layout import conda_path

PypiKind = Literal["wheel", "sdist", "local-wheel", "local-sdist", "git", "source-tree"]
SourceLocationKind = Literal["path", "git", "url"]


@dataclass(frozen=True)
class Platform:
    """A lock platform: its *name* (may be custom) and its conda subdir."""

    name: str
    subdir: str
    virtual_packages: tuple[str, ...] = ()


@dataclass(frozen=True)
class Hashes:
    """What the lock says an artifact's bytes are (any field may be missing)."""

    sha256: str | None = None
    md5: str | None = None
    size: int | None = None

    @property
    def verifiable(self) -> bool:
        return self.sha256 is not None or self.md5 is not None


@dataclass(frozen=True)
class CondaBinary:
    """A ``conda:`` entry: a built package at a URL or a path."""

    location: str  # verbatim from the lock
    url: str  # absolute: http(s)://, or file:// for paths (resolved from the lock's directory)
    file_name: str
    name: str
    version: str
    build: str
    subdir: str
    hashes: Hashes
    # The locked record, repodata patches included: this is what goes into repodata.json.
    record: RepoDataRecord = field(compare=False, repr=False)

    @property
    def is_local(self) -> bool:
        return self.url.startswith("file://")

    @property
    def archive_path(self) -> str:
        """Where the file goes in a pack: ``channel/<subdir>/<file_name>``."""
        return conda_path(self.subdir, self.file_name)


@dataclass(frozen=True)
class GitLocation:
    """``git+https://host/repo?subdirectory=x&tag=v1#<sha>`` split into its parts."""

    url: str  # the repository URL, without ``git+``, query or fragment
    rev: str  # the pinned commit (the fragment)
    subdirectory: str | None = None
    branch: str | None = None
    tag: str | None = None
    # The revision the manifest asked for when it is neither a branch nor a tag
    # (``?rev=abc`` or a pip-style ``repo.git@abc``); informational only.
    requested_rev: str | None = None

    @property
    def short(self) -> str:
        """``url@<12-char commit>`` (plus ``#subdirectory``) for humans."""
        sub = f"#{self.subdirectory}" if self.subdirectory else ""
        return f"{self.url}@{self.rev[:12]}{sub}"


@dataclass(frozen=True)
class CondaSource:
    """A ``conda_source:`` entry, with the fields py-rattler hides read from the raw YAML."""

    lock_id: str  # "name[hash] @ location", verbatim
    name: str
    id_hash: str
    location: str  # the part after "@", verbatim
    location_kind: SourceLocationKind
    path: Path | None  # absolute, for path locations
    git: GitLocation | None  # for git locations
    variants: Mapping[str, str]  # values kept as the lock's strings
    depends: tuple[str, ...]
    constrains: tuple[str, ...]
    source: Mapping[str, str] | None  # the optional build-source pin ({git, rev, ...} etc.)
    source_depends: Mapping[str, Mapping[str, str]]
    build_packages: tuple[str, ...]  # selectors: "conda:<url>" or "conda_source:<id>"
    host_packages: tuple[str, ...]
    # Full records only (version and subdir present):
    version: str | None = None
    build: str | None = None
    build_number: int | None = None
    subdir: str | None = None
    noarch: str | None = None
    record: PackageRecord | None = field(default=None, compare=False, repr=False)

    @property
    def is_full(self) -> bool:
        return self.version is not None and self.subdir is not None

    @property
    def target_platform(self) -> str | None:
        return self.variants.get("target_platform")

    @property
    def is_noarch(self) -> bool:
        return self.target_platform == "noarch" or self.subdir == "noarch"


@dataclass(frozen=True)
class PypiPackage:
    """A ``pypi:`` entry and what kind of thing its location is."""

    name: str
    version: str | None  # None for source trees with a dynamic version
    location: str  # verbatim
    kind: PypiKind
    url: str | None  # http(s) URL for downloads; None for local entries and git
    path: Path | None  # absolute, for local files and source trees
    git: GitLocation | None
    file_name: str | None  # for wheels and sdists (percent-decoded)
    hashes: Hashes
    requires_python: str | None = None
    requires_dist: tuple[str, ...] = ()
    index: str | None = None

    @property
    def is_wheel(self) -> bool:
        return self.kind in ("wheel", "local-wheel")


@dataclass(frozen=True)
class LockedEnvironment:
    """One environment of a lock on one platform: everything a pack needs to know."""

    lock_path: Path
    lock_version: int
    lock_sha256: str
    workspace_root: Path
    environment: str
    platform: Platform
    channels: tuple[str, ...]
    indexes: tuple[str, ...]
    find_links: tuple[str, ...]
    conda: tuple[CondaBinary, ...]
    sources: tuple[CondaSource, ...]
    pypi: tuple[PypiPackage, ...]
