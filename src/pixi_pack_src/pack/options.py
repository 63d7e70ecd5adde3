"""What ``pack`` is asked to do: :class:`PackOptions`, filled by the CLI."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class PackOptions:
    """Everything ``pack`` needs; the CLI fills it from options and environment variables."""

    manifest_path: Path | None = None
    environment: str = "default"
    platforms: tuple[str, ...] = ()  # lock platform names or subdirs; empty = the host's
    all_platforms: bool = False
    output: str | None = None  # path, "-" for stdout, may contain "{platform}"
    directory_only: bool = False
    cache_dir: Path | None = None
    verify_cache: bool = False  # re-hash every cache hit, whatever its record says
    auth_file: Path | None = None
    config_file: Path | None = None
    concurrent_downloads: int | None = None
    retries: int = 5
    timeout: float = 60.0  # read timeout: seconds without a byte before an attempt fails
    connect_timeout: float = 30.0  # seconds to establish a connection
    inject: tuple[Path, ...] = ()
    ignore_pypi_non_wheel: bool = False
    build_pypi: bool = True  # build sdists, git and path PyPI entries into wheels
    work_dir: Path | None = None
    # conda source packages (`pixi build`)
    pixi: str | None = None
    allow_unpinned_backends: bool = False
    frozen: bool = False  # pack the lock even when the manifest asks for more (pixi's --frozen)
    backend_overrides: Mapping[str, Path] = field(default_factory=dict)
    allow_drift: bool = False
    build_jobs: int = 1
    build_timeout: float | None = None
    keep_build_dir: bool = False
    verbosity: int = 0
    # PyPI sdists, git sources and source trees
    build_isolation: bool = True
    pypi_index: str | None = None
    overrides_dir: Path | None = None
    # self-extracting scripts
    create_executable: bool = False
    unpacker_wheels: Path | None = None  # py-rattler wheels for foreign targets
    # the archive's own sha256 costs a full pass over it: only when someone reads it (--json)
    archive_sha256: bool = True
    # --sbom FILE: the archive's sbom.cdx.json also written there (may contain "{platform}")
    sbom_output: str | None = None
    wheel_jobs: int = 2
    # --base OLD: a delta pack against OLD (a pack, a manifest or an unpacked environment)
    base: Path | None = None
