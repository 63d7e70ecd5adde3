"""``pack``: lock -> verified artifacts (downloaded, cached, built) -> one archive per platform.

The flow, for every selected platform at once so that shared (noarch) work happens once:

1. locate the workspace and load ``pixi.lock``; select the environment on each platform;
2. plan (:mod:`pixi_pack_src.plan` decides what is downloaded, copied, built or refused);
3. fetch every binary artifact concurrently through the verified cache (:mod:`download`);
4. build conda source packages and PyPI sdists/git/trees (:mod:`build`), when present;
5. per platform: repodata from the *locked* records, ``environment.yml``, ``pixi-pack.json``,
   the provenance record, then a deterministic tar (or folder) written under a temporary name
   and renamed when complete. Every artifact is re-hashed while it is written into the tar, so a
   file changed after verification cannot slip in.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO, Literal, TypeVar, cast

import httpx
from packaging.utils import parse_wheel_filename
from rattler import PackageRecord, RepoDataRecord

from pixi_pack_src import __version__, plan, sbom, workdirs
from pixi_pack_src.archive.channel import (
    CHANNEL_DIR,
    PYPI_DIR,
    channel_files,
    environment_yml,
    record_from_archive,
)
from pixi_pack_src.archive.metadata import (
    PIXI_PACK_JSON,
    PROVENANCE_JSON,
    SBOM_JSON,
    ArtifactProvenance,
    GeneratedFile,
    JsonValue,
    LockInfo,
    PlatformInfo,
    Provenance,
    ToolInfo,
    pixi_pack_json,
)
from pixi_pack_src.archive.tar import (
    BinaryWriter,
    Entry,
    WrittenEntry,
    atomic_file,
    atomic_output,
    fixed_mtime,
    write_directory,
    write_tar,
)
from pixi_pack_src.builders import (
    BuiltArtifact,
    SourceBuildOptions,
    build_sources,
    check_environment,
    plan_source_builds,
)
from pixi_pack_src.builders.wheel import (
    BuiltWheel,
    WheelBuildOptions,
    build_wheels,
    find_links_of,
    job_for,
    make_target_interpreter,
)
from pixi_pack_src.builders.wheel.overrides import (
    Overrides,
    load_overrides,
    read_manifest_table,
    unused_packages,
)
from pixi_pack_src.errors import (
    ArchiveError,
    BuildError,
    PixiPackSrcError,
    UnsupportedPackageError,
    UsageError,
)
from pixi_pack_src.fetch.auth import AuthStore
from pixi_pack_src.fetch.cache import ContentCache
from pixi_pack_src.fetch.config import FetchConfig, load_config
from pixi_pack_src.fetch.download import Artifact, DownloadSettings, Fetched, fetch_all
from pixi_pack_src.fetch.http import RetryPolicy, make_client
from pixi_pack_src.hashing import Verified, hash_file
from pixi_pack_src.host import host_subdir
from pixi_pack_src.lock.lockfile import Lock, load_lock
from pixi_pack_src.lock.model import (
    CondaBinary,
    CondaSource,
    LockedEnvironment,
    Platform,
    PypiPackage,
)
from pixi_pack_src.lock.workspace import locate_workspace
from pixi_pack_src.redact import redact_url
from pixi_pack_src.reporter import NullReporter, Reporter
from pixi_pack_src.selfextract import build_bundle, script_suffix, write_script
from pixi_pack_src.verify.scan import wheel_info
from pixi_pack_src.wheels import check_wheel_for_target

log = logging.getLogger(__name__)

DEFAULT_OUTPUT = "environment.tar"
DEFAULT_DIRECTORY = "environment"
PLATFORM_PLACEHOLDER = "{platform}"
RESULT_VERSION = 1
WORK_PREFIX = "pixi-pack-src-"  # $TMPDIR/pixi-pack-src-<random> (see workdirs)
_T = TypeVar("_T")


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
    timeout: float = 60.0
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


@dataclass(frozen=True)
class PackedArtifact:
    """One package file in one archive (what ``--json`` lists)."""

    path: str
    kind: Literal["conda", "wheel"]
    name: str
    version: str
    sha256: str
    size: int
    origin: str  # download, cache, local-file, conda-source, sdist, ..., injected
    source: str  # (redacted) URL, workspace-relative path or location


@dataclass(frozen=True)
class PlatformPack:
    platform: Platform
    output: str  # the written path, or "-"
    sha256: str | None  # of the archive (or script); None unless asked (archive_sha256)
    size: int
    artifacts: tuple[PackedArtifact, ...]


@dataclass(frozen=True)
class PackStats:
    files: int = 0
    bytes: int = 0
    downloaded: int = 0
    from_cache: int = 0
    copied: int = 0
    built: int = 0
    builds_from_cache: int = 0
    retries: int = 0


@dataclass(frozen=True)
class PackResult:
    environment: str
    lock_file: Path
    packs: tuple[PlatformPack, ...]
    stats: PackStats
    warnings: tuple[str, ...]

    def to_json(self) -> dict[str, JsonValue]:
        """The ``--json`` document (``version`` 1; see docs/archive-format.md)."""
        return {
            "version": RESULT_VERSION,
            "tool": {"name": "pixi-pack-src", "version": __version__},
            "environment": self.environment,
            "platforms": [
                {
                    "name": p.platform.name,
                    "subdir": p.platform.subdir,
                    "output": p.output,
                    "sha256": p.sha256,
                    "size": p.size,
                    "artifacts": [
                        {
                            "path": a.path,
                            "kind": a.kind,
                            "name": a.name,
                            "version": a.version,
                            "sha256": a.sha256,
                            "size": a.size,
                            "origin": a.origin,
                            "source": a.source,
                        }
                        for a in p.artifacts
                    ],
                }
                for p in self.packs
            ],
            "stats": {
                "files": self.stats.files,
                "bytes": self.stats.bytes,
                "downloaded": self.stats.downloaded,
                "from_cache": self.stats.from_cache,
                "copied": self.stats.copied,
                "built": self.stats.built,
                "builds_from_cache": self.stats.builds_from_cache,
                "retries": self.stats.retries,
            },
            "warnings": list(self.warnings),
        }


class _Warnings:
    """Warnings are logged when they happen and listed again in the result."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def __call__(self, message: str) -> None:
        if message not in self.items:
            self.items.append(message)
            log.warning("%s", message)


@dataclass
class _PlatformWork:
    """What goes into one platform's archive, gathered before anything is written."""

    env: LockedEnvironment
    output: str
    conda: list[tuple[RepoDataRecord, Path, ArtifactProvenance]] = field(default_factory=list)
    wheels: list[tuple[str, str, Path, ArtifactProvenance]] = field(default_factory=list)
    origins: dict[str, str] = field(default_factory=dict)  # archive path -> how it was obtained
    # archive path -> the file's identity when its bytes were hashed (copied without re-hashing)
    verified: dict[str, Verified] = field(default_factory=dict)
    sbom: bytes | None = None  # the archive's sbom.cdx.json, once made


# -- selection ----------------------------------------------------------------------------------


def select_platforms(lock: Lock, options: PackOptions) -> list[Platform]:
    """``-p`` values (names or subdirs), ``--all-platforms``, or the host's platform."""
    return plan.select_platforms(
        lock, options.environment, options.platforms, all_platforms=options.all_platforms
    )


def output_for(options: PackOptions, platforms: Sequence[Platform], platform: Platform) -> str:
    """The output path for ``platform`` (``{platform}`` expands to the subdir)."""
    several = len(platforms) > 1
    default = DEFAULT_DIRECTORY if options.directory_only else DEFAULT_OUTPUT
    if options.create_executable:
        if options.directory_only:
            raise UsageError("--create-executable and --directory-only exclude each other")
        if options.output == "-":
            raise UsageError("--create-executable cannot write to stdout (-o -)")
        default = "environment.sh"
    template = options.output
    if template is None:
        if several:
            stem, dot, ext = default.partition(".")
            template = f"{stem}-{PLATFORM_PLACEHOLDER}{dot}{ext}"
        else:
            template = default
    if template == "-":
        if several:
            raise UsageError(
                "-o - (stdout) holds one archive, but several platforms were selected",
                hint="pack one platform per call, or use -o 'environment-{platform}.tar'",
            )
        if options.directory_only:
            raise UsageError("--directory-only cannot write to stdout (-o -)")
        return "-"
    if several and PLATFORM_PLACEHOLDER not in template:
        raise UsageError(
            f"-o {template} would be written once per platform "
            f"({', '.join(p.name for p in platforms)})",
            hint="put {platform} in the output name, e.g. -o 'environment-{platform}.tar'",
        )
    name = platform.name if any(p.name != p.subdir for p in platforms) else platform.subdir
    output = template.replace(PLATFORM_PLACEHOLDER, name)
    if options.create_executable:  # the extension is forced, as pixi-pack does
        path = Path(output)
        if path.suffix in (".tar", ".sh", ".ps1", ".cmd", ".bat"):
            path = path.with_suffix("")
        output = str(path) + script_suffix(platform.subdir)
    return output


# -- the job ------------------------------------------------------------------------------------


def pack(
    options: PackOptions,
    *,
    reporter: Reporter | None = None,
    stdout: BinaryIO | None = None,
) -> PackResult:
    """Pack the environment for every selected platform. Sync; runs one event loop."""
    return asyncio.run(pack_async(options, reporter=reporter or NullReporter(), stdout=stdout))


async def pack_async(
    options: PackOptions, *, reporter: Reporter, stdout: BinaryIO | None = None
) -> PackResult:
    warn = _Warnings()
    workspace = locate_workspace(options.manifest_path)
    lock = load_lock(workspace.lock_path)
    platforms = select_platforms(lock, options)
    works = [
        _PlatformWork(lock.select(options.environment, p), output_for(options, platforms, p))
        for p in platforms
    ]
    plan.check_lock_current(workspace.manifest, [w.env for w in works], frozen=options.frozen)
    for work in works:
        _refuse_unsupported(work.env, options, warn)

    fetch_config = load_config(options.config_file, workspace_root=workspace.root)
    auth = AuthStore.load(
        options.auth_file, override_file=fetch_config.authentication_override_file
    )
    settings = DownloadSettings(
        concurrency=options.concurrent_downloads or fetch_config.concurrent_downloads or 50,
        retries=options.retries,
        timeout=options.timeout,
        policy=RetryPolicy(retries=options.retries),
    )
    cache = (
        ContentCache(options.cache_dir, verify=options.verify_cache)
        if options.cache_dir is not None
        else None
    )

    async with AsyncExitStack() as stack:
        work_dir = stack.enter_context(_work_dir(options.work_dir))
        overrides = _load_overrides(workspace.manifest, options, works, warn)
        artifacts = _artifacts(works, fetch_config, options)
        client = await stack.enter_async_context(
            _aclosing_client(
                make_client(
                    timeout=options.timeout,
                    max_connections=settings.concurrency,
                    config=fetch_config,
                )
            )
        )
        fetched = await fetch_all(
            list(artifacts.values()),
            work_dir=work_dir / "downloads",
            cache=cache,
            settings=settings,
            auth=auth,
            reporter=reporter,
            client=client,
            config=fetch_config,
        )
        cancel = threading.Event()
        built = await _in_thread(
            lambda: _build_conda_sources(
                works, workspace.root, options, reporter, work_dir, cancel=cancel
            ),
            cancel,
        )
        wheel_options = WheelBuildOptions(
            work_dir=work_dir / "wheel-builds",
            cache_root=options.cache_dir,
            build_isolation=options.build_isolation,
            pypi_index=options.pypi_index,
            overrides=overrides,
            jobs=options.wheel_jobs,
            keep_build_dir=options.keep_build_dir,
            verbosity=options.verbosity,
            timeout=options.build_timeout,
            auth=auth,
        )
        wheels_built: list[BuiltWheel] = []
        for work in works:
            _collect_binaries(work, fetched, fetch_config, warn)
            mine = _collect_built(work, built, warn)
            wheels_built += await _build_pypi(
                work,
                fetched,
                fetch_config,
                options=options,
                wheel_options=wheel_options,
                exclude=(work_dir, *(c for c in [options.cache_dir] if c is not None)),
                reporter=reporter,
            )
            _collect_injected(work, options.inject, warn)
            check_environment(
                [r for r, _, p in work.conda if p.origin.get("type") != "conda-source"],
                mine,
            )
        stats = _stats(fetched.values(), built.values(), wheels_built)

        interrupted = _interrupt_check()
        packs = [
            _write_platform(
                work,
                lock,
                options,
                reporter=reporter,
                stdout=stdout,
                interrupted=interrupted,
                work_dir=work_dir,
            )
            for work in works
        ]
    return PackResult(
        environment=options.environment,
        lock_file=lock.path,
        packs=tuple(packs),
        stats=stats,
        warnings=tuple(warn.items),
    )


@contextmanager
def _work_dir(given: Path | None) -> Iterator[Path]:
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        yield given
        return
    path = Path(tempfile.mkdtemp(prefix=WORK_PREFIX))
    held = workdirs.claim(path)
    workdirs.sweep(path.parent, WORK_PREFIX)  # what killed runs left behind
    try:
        yield path
    except BuildError:
        # the build logs the error points at live here: keep them
        log.info("kept the work directory %s (build logs)", path)
        held.release(keep=True)
        raise
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        held.release()
        raise
    shutil.rmtree(path, ignore_errors=True)
    held.release()


def _refuse_unsupported(env: LockedEnvironment, options: PackOptions, warn: _Warnings) -> None:
    """PyPI entries that are not wheels: built by default; skipped or refused when asked."""
    for pkg in env.pypi:
        if pkg.is_wheel:
            continue
        what = f"PyPI package {pkg.name} ({pkg.location}) is not a wheel ({pkg.kind})"
        if options.ignore_pypi_non_wheel:
            warn(f"skipping {what}")
        elif not options.build_pypi:
            raise UnsupportedPackageError(
                f"{what} and --no-build-sdist was given",
                hint="drop --no-build-sdist to build it into a wheel, or pass "
                "--ignore-pypi-non-wheel to skip it with a warning",
            )


def _wheels(env: LockedEnvironment) -> list[PypiPackage]:
    return [p for p in env.pypi if p.is_wheel]


def _to_build(env: LockedEnvironment, options: PackOptions) -> list[PypiPackage]:
    """PyPI entries built into wheels: sdists, git sources and source trees."""
    if options.ignore_pypi_non_wheel or not options.build_pypi:
        return []
    return [p for p in env.pypi if not p.is_wheel]


def _artifacts(
    works: Sequence[_PlatformWork], config: FetchConfig, options: PackOptions
) -> dict[str, Artifact]:
    """Every file to fetch for every platform, de-duplicated (noarch is fetched once): conda
    packages, wheels, and the sdists that will be built."""
    out: dict[str, Artifact] = {}
    for work in works:
        pypi = _wheels(work.env) + [
            p for p in _to_build(work.env, options) if p.kind in ("sdist", "local-sdist")
        ]
        for artifact in [Artifact.from_conda(b, config) for b in work.env.conda] + [
            Artifact.from_pypi(p, config) for p in pypi
        ]:
            out.setdefault(artifact.key, artifact)
    return out


def _stats(
    fetched: Iterable[Fetched], built: Iterable[BuiltArtifact], wheels: Sequence[BuiltWheel]
) -> PackStats:
    items = list(fetched)
    artifacts = list({id(a): a for a in built}.values())
    unique_wheels = list({w.sha256: w for w in wheels}.values())
    return PackStats(
        files=len(items) + len(artifacts) + len(unique_wheels),
        bytes=sum(f.size for f in items)
        + sum(a.record.size or 0 for a in artifacts)
        + sum(w.size for w in unique_wheels),
        downloaded=sum(1 for f in items if f.origin == "download"),
        from_cache=sum(1 for f in items if f.origin == "cache"),
        copied=sum(1 for f in items if f.origin == "local-file"),
        built=sum(1 for a in artifacts if not a.from_cache)
        + sum(1 for w in unique_wheels if not w.from_cache),
        builds_from_cache=sum(1 for a in artifacts if a.from_cache)
        + sum(1 for w in unique_wheels if w.from_cache),
        retries=sum(f.retries for f in items),
    )


@asynccontextmanager
async def _aclosing_client(client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    try:
        yield client
    finally:
        await client.aclose()


def _load_overrides(
    manifest: Path | None,
    options: PackOptions,
    works: Sequence[_PlatformWork],
    warn: _Warnings,
) -> Overrides:
    """Per-package build overrides from ``[tool.pixi-pack-src]`` and ``--overrides DIR``,
    read before any download so that a bad file fails fast."""
    table = read_manifest_table(manifest) if manifest is not None else {}
    overrides = load_overrides(
        manifest_table=table, manifest_path=manifest, overrides_dir=options.overrides_dir
    )
    names = {p.name for w in works for p in _to_build(w.env, options)}
    for name in unused_packages(overrides, names):
        warn(f"build overrides for {name} match no PyPI package that is built from source")
    return overrides


async def _build_pypi(
    work: _PlatformWork,
    fetched: Mapping[str, Fetched],
    config: FetchConfig,
    *,
    options: PackOptions,
    wheel_options: WheelBuildOptions,
    exclude: Sequence[Path],
    reporter: Reporter,
) -> list[BuiltWheel]:
    """Build this platform's sdists, git sources and source trees into wheels."""
    packages = _to_build(work.env, options)
    if not packages:
        return []
    outputs = tuple(Path(w).resolve() for w in [work.output] if w != "-")
    jobs = []
    for pkg in packages:
        sdist = None
        if pkg.kind in ("sdist", "local-sdist"):
            sdist = fetched[Artifact.from_pypi(pkg, config).key].path
        jobs.append(
            job_for(
                pkg,
                workspace_root=work.env.workspace_root,
                sdist_file=sdist,
                exclude=(*outputs, *exclude),
            )
        )
    binaries = [
        (binary.record, fetched[Artifact.from_conda(binary, config).key].path)
        for binary in work.env.conda
    ]
    target = make_target_interpreter(
        conda=binaries,
        platform=work.env.platform,
        work_dir=wheel_options.work_dir / f"python-{work.env.platform.name}",
        environment_packages=not options.build_isolation,
    )
    built = await build_wheels(
        jobs,
        target=target,
        options=replace(
            wheel_options, indexes=work.env.indexes, find_links=find_links_of(work.env)
        ),
        reporter=reporter,
    )
    for wheel in built.values():
        origin, builder = _origin_and_builder(wheel.provenance)
        prov = ArtifactProvenance(
            path=wheel.archive_path,
            kind="wheel",
            name=wheel.name,
            version=wheel.version,
            sha256=wheel.sha256,
            size=wheel.size,
            origin=origin,
            builder=builder,
        )
        work.wheels[:] = [w for w in work.wheels if w[3].path != prov.path]
        work.wheels.append((wheel.name, wheel.version, wheel.path, prov))
        work.origins[prov.path] = "built-from-cache" if wheel.from_cache else "built"
    return list(built.values())


async def _in_thread(fn: Callable[[], _T], cancel: threading.Event) -> _T:
    """``fn()`` in a worker thread. On Ctrl-C (the task is cancelled) ``cancel`` is set -- the
    running build subprocess is killed -- and the thread is waited for before the
    cancellation goes on, so that nothing writes into the work directory after its removal."""
    future = asyncio.ensure_future(asyncio.to_thread(fn))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        cancel.set()
        with contextlib.suppress(BaseException):  # its error is moot; a 2nd Ctrl-C stops waiting
            await future
        raise


def _build_conda_sources(
    works: Sequence[_PlatformWork],
    workspace_root: Path,
    options: PackOptions,
    reporter: Reporter,
    work_dir: Path,
    *,
    cancel: threading.Event | None = None,
) -> dict[str, BuiltArtifact]:
    """``pixi build`` every conda source package of every platform (noarch ones once)."""
    by_subdir: dict[str, list[CondaSource]] = {}
    for work in works:
        by_subdir.setdefault(work.env.platform.subdir, []).extend(work.env.sources)
    by_subdir = {k: v for k, v in by_subdir.items() if v}
    if not by_subdir:
        return {}
    jobs = plan_source_builds(by_subdir, workspace_root=workspace_root)
    outputs = tuple(Path(w.output).resolve() for w in works if w.output != "-")
    build_options = SourceBuildOptions(
        work_dir=work_dir / "conda-builds",
        pixi=options.pixi,
        allow_unpinned_backends=options.allow_unpinned_backends,
        backend_overrides=dict(options.backend_overrides),
        allow_drift=options.allow_drift,
        build_jobs=options.build_jobs,
        keep_build_dir=options.keep_build_dir,
        verbosity=options.verbosity,
        cache_root=options.cache_dir,
        timeout=options.build_timeout,
        auth_file=options.auth_file,
        config_file=options.config_file,
        exclude_paths=outputs,
        cancel=cancel,
    )
    return build_sources(jobs, options=build_options, reporter=reporter)


def _origin_and_builder(
    provenance: Mapping[str, object],
) -> tuple[Mapping[str, JsonValue], Mapping[str, JsonValue] | None]:
    """A build's ``{"origin": ..., "builder": ...}`` as the archive's provenance fields."""
    origin, builder = provenance.get("origin"), provenance.get("builder")
    return (
        cast("Mapping[str, JsonValue]", origin if isinstance(origin, Mapping) else {}),
        cast("Mapping[str, JsonValue]", builder) if isinstance(builder, Mapping) else None,
    )


def _collect_built(
    work: _PlatformWork, built: Mapping[str, BuiltArtifact], warn: _Warnings
) -> dict[str, BuiltArtifact]:
    """The built artifacts this platform's source entries need, joined to its channel."""
    mine: dict[str, BuiltArtifact] = {}
    seen: set[str] = set()
    for source in work.env.sources:
        artifact = built[source.lock_id]
        mine[source.lock_id] = artifact
        for message in artifact.warnings:
            warn(message)
        if artifact.archive_path in seen:
            continue
        seen.add(artifact.archive_path)
        record = artifact.record
        origin, builder = _origin_and_builder(artifact.provenance)
        prov = ArtifactProvenance(
            path=artifact.archive_path,
            kind="conda",
            name=record.name.normalized,
            version=str(record.version),
            build=str(record.build),
            sha256=_hex(record.sha256),
            size=record.size or artifact.path.stat().st_size,
            origin=origin,
            builder=builder,
        )
        work.conda.append((record, artifact.path, prov))
        work.origins[prov.path] = "built-from-cache" if artifact.from_cache else "built"
    return mine


def _origin(fetched: Fetched, workspace_root: Path) -> dict[str, JsonValue]:
    """Where the bytes come from, as recorded in the archive.

    A cache hit is recorded as ``download`` from the lock's URL (the cache holds exactly those
    verified bytes): the archive must be byte-identical whether the cache was cold or warm.
    The ``--json`` result still tells cache hits apart.
    """
    origin: dict[str, JsonValue] = {
        "type": "local-file" if fetched.origin == "local-file" else "download",
        "verified-against": fetched.verified_against,
    }
    if fetched.origin == "local-file":
        origin["path"] = _relative_location(fetched.path, workspace_root)
    else:
        origin["url"] = redact_url(fetched.artifact.lock_url)
    return origin


def _relative_location(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.name


def _fill_hashes(record: RepoDataRecord, fetched: Fetched) -> RepoDataRecord:
    """Locked records without hashes get the verified ones (repodata must carry them)."""
    if record.sha256 is None:
        record.sha256 = bytes.fromhex(fetched.sha256)
    if record.md5 is None:
        record.md5 = bytes.fromhex(fetched.md5)
    if record.size is None:
        record.size = fetched.size
    return record


def _collect_binaries(
    work: _PlatformWork,
    fetched: Mapping[str, Fetched],
    config: FetchConfig,
    warn: _Warnings,
) -> None:
    root = work.env.workspace_root
    for binary in work.env.conda:
        got = fetched[Artifact.from_conda(binary, config).key]
        if got.verified_against == "none":
            warn(f"{binary.file_name} has no hash in the lock; recorded sha256 {got.sha256}")
        prov = _conda_provenance(binary, got, root)
        work.conda.append((_fill_hashes(binary.record, got), got.path, prov))
        work.origins[prov.path] = got.origin
        if got.verified is not None:
            work.verified[prov.path] = got.verified
    for pkg in _wheels(work.env):
        got = fetched[Artifact.from_pypi(pkg, config).key]
        if got.verified_against == "none":
            warn(f"wheel {pkg.file_name} has no hash in the lock; recorded sha256 {got.sha256}")
        assert pkg.file_name is not None
        prov = ArtifactProvenance(
            path=f"{PYPI_DIR}/{pkg.file_name}",
            kind="wheel",
            name=pkg.name,
            version=pkg.version or _wheel_version(pkg.file_name),
            sha256=got.sha256,
            size=got.size,
            origin=_origin(got, root),
        )
        work.wheels.append((pkg.name, prov.version, got.path, prov))
        work.origins[prov.path] = got.origin
        if got.verified is not None:
            work.verified[prov.path] = got.verified


def _wheel_version(file_name: str) -> str:
    return str(parse_wheel_filename(file_name)[1])


def _conda_provenance(binary: CondaBinary, got: Fetched, root: Path) -> ArtifactProvenance:
    return ArtifactProvenance(
        path=binary.archive_path,
        kind="conda",
        name=binary.name,
        version=binary.version,
        build=binary.build,
        sha256=got.sha256,
        size=got.size,
        origin=_origin(got, root),
    )


def _collect_injected(work: _PlatformWork, inject: Sequence[Path], warn: _Warnings) -> None:
    """``--inject``: records read from the archives; wheels checked against the target."""
    subdir = work.env.platform.subdir
    taken = {a.path for _, _, a in work.conda} | {a.path for _, _, _, a in work.wheels}
    for path in inject:
        if not path.is_file():
            raise UsageError(f"--inject {path}: no such file")
        name = path.name
        if name.endswith((".conda", ".tar.bz2")):
            record = record_from_archive(path)
            if record.subdir not in (subdir, "noarch"):
                raise UsageError(
                    f"--inject {path}: a package for {record.subdir}, but the pack is for {subdir}",
                    hint=f"inject a package built for {subdir} or noarch",
                )
            arcname = f"{CHANNEL_DIR}/{record.subdir}/{name}"
            prov = ArtifactProvenance(
                path=arcname,
                kind="conda",
                name=record.name.normalized,
                version=str(record.version),
                build=str(record.build),
                sha256=_hex(record.sha256),
                size=record.size or path.stat().st_size,
                origin={"type": "injected", "file": name},
            )
            item = (record, path, prov)
            work.conda[:] = [c for c in work.conda if c[2].path != arcname]
            work.conda.append(item)
        elif name.endswith(".whl"):
            python = _python_record(work)
            check_wheel_for_target(
                path,
                python_version=str(python.version) if python is not None else None,
                subdir=subdir,
                virtual_packages=work.env.platform.virtual_packages,
            )
            wname, wversion, _, _ = parse_wheel_filename(name)
            digest, _, size = hash_file(path, md5=False)
            arcname = f"{PYPI_DIR}/{name}"
            prov = ArtifactProvenance(
                path=arcname,
                kind="wheel",
                name=str(wname),
                version=str(wversion),
                sha256=digest,
                size=size,
                origin={"type": "injected", "file": name},
            )
            work.wheels[:] = [w for w in work.wheels if w[3].path != arcname]
            work.wheels.append((str(wname), str(wversion), path, prov))
        else:
            raise UsageError(
                f"--inject {path}: not a .conda, .tar.bz2 or .whl file",
            )
        if arcname in taken:
            warn(f"--inject {name} replaces the locked file of the same name")


def _python_record(work: _PlatformWork) -> RepoDataRecord | None:
    for record, _, _ in work.conda:
        if record.name.normalized == "python":
            return record
    return None


def _hex(value: bytes | None) -> str:
    return value.hex() if value is not None else ""


# -- writing ------------------------------------------------------------------------------------


class _HashingWriter:
    """A write-only file object that hashes and counts what passes through."""

    def __init__(self, out: BinaryWriter, *, hashing: bool = True) -> None:
        self.out = out
        self.sha = hashlib.sha256() if hashing else None
        self.size = 0

    @property
    def digest(self) -> str | None:
        return self.sha.hexdigest() if self.sha is not None else None

    def write(self, data: bytes | memoryview) -> int:
        written: int | None = self.out.write(data)
        if written is None:  # unbuffered raw streams may return None
            written = len(data)
        if self.sha is not None:
            self.sha.update(memoryview(data)[:written])
        self.size += written
        return written

    def flush(self) -> None:
        self.out.flush()


def _entries(
    work: _PlatformWork, lock: Lock, options: PackOptions
) -> tuple[list[Entry], dict[str, str]]:
    """The archive's entries and, for package files, the sha256 they must have."""
    env = work.env
    subdir = env.platform.subdir
    records_by_subdir: dict[str, list[RepoDataRecord]] = {}
    expected: dict[str, str] = {}
    entries: list[Entry] = []
    artifacts: list[ArtifactProvenance] = []
    for record, path, prov in sorted(work.conda, key=lambda c: c[2].path):
        records_by_subdir.setdefault(record.subdir, []).append(record)
        entries.append(Entry(prov.path, path, verified=work.verified.get(prov.path)))
        expected[prov.path] = prov.sha256
        artifacts.append(prov)
    for _, _, path, prov in sorted(work.wheels, key=lambda w: w[3].path):
        entries.append(Entry(prov.path, path, verified=work.verified.get(prov.path)))
        expected[prov.path] = prov.sha256
        artifacts.append(prov)

    generated: dict[str, bytes] = dict(channel_files(records_by_subdir))
    all_records = [r for rs in records_by_subdir.values() for r in rs]
    generated["environment.yml"] = environment_yml(
        all_records, [(name, version) for name, version, _, _ in work.wheels]
    )
    generated[PIXI_PACK_JSON] = pixi_pack_json(subdir)
    work.sbom = generated[SBOM_JSON] = _sbom(work, lock, artifacts, generated)
    provenance = Provenance(
        tool=ToolInfo("pixi-pack-src", __version__),
        lock=LockInfo(_relative_location(lock.path, env.workspace_root), lock.version, lock.sha256),
        environment=env.environment,
        platform=PlatformInfo(env.platform.name, subdir, tuple(env.platform.virtual_packages)),
        artifacts=tuple(artifacts),
        generated=tuple(
            GeneratedFile(name, hashlib.sha256(data).hexdigest(), len(data))
            for name, data in generated.items()
        ),
    )
    generated[PROVENANCE_JSON] = provenance.to_json()
    entries.extend(Entry(name, data) for name, data in generated.items())
    return entries, expected


def _sbom(
    work: _PlatformWork,
    lock: Lock,
    artifacts: Sequence[ArtifactProvenance],
    generated: Mapping[str, bytes],
) -> bytes:
    """``sbom.cdx.json`` (:mod:`pixi_pack_src.sbom`), from what the archive will hold; the
    same function makes it from a written pack, byte for byte."""
    env = work.env
    records = {prov.path: record for record, _, prov in work.conda}
    wheel_paths = {prov.path: path for _, _, path, prov in work.wheels}
    items: list[sbom.SbomArtifact] = []
    for prov in sorted(artifacts, key=lambda a: a.path):
        if prov.path in records:
            items.append(
                sbom.conda_artifact(
                    prov.path,
                    records[prov.path],
                    sha256=prov.sha256,
                    size=prov.size,
                    provenance=prov,
                )
            )
        else:
            with wheel_paths[prov.path].open("rb") as fh:
                details = wheel_info(fh)
            items.append(
                sbom.wheel_artifact(
                    prov.path, sha256=prov.sha256, size=prov.size, details=details, provenance=prov
                )
            )
    digests = {a.path: a.sha256 for a in artifacts}
    digests.update({name: hashlib.sha256(data).hexdigest() for name, data in generated.items()})
    return sbom.sbom_json(
        sbom.SbomInput(
            environment=env.environment,
            platform=env.platform.subdir,
            platform_name=env.platform.name,
            tool_name="pixi-pack-src",
            tool_version=__version__,
            artifacts=tuple(items),
            content_digest=sbom.content_digest(digests),
            timestamp=fixed_mtime(),
            lock_file=_relative_location(lock.path, env.workspace_root),
            lock_sha256=lock.sha256,
            virtual_packages=tuple(env.platform.virtual_packages),
        )
    )


def _write_sbom_file(work: _PlatformWork, options: PackOptions) -> None:
    """``--sbom FILE``: the archive's SBOM beside it (``{platform}`` expanded)."""
    if options.sbom_output is None or work.sbom is None:
        return
    platform = work.env.platform
    target = Path(options.sbom_output.replace(PLATFORM_PLACEHOLDER, platform.name))
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(target) as fh:
        fh.write(work.sbom)


def _check_written(written: Sequence[WrittenEntry], expected: Mapping[str, str]) -> None:
    for entry in written:
        want = expected.get(entry.arcname)
        if want is not None and entry.sha256 != want:
            raise ArchiveError(
                f"{entry.arcname} changed after it was verified: expected sha256 {want}, "
                f"wrote {entry.sha256}",
                hint="something modified the cache or a local file during the pack; run again",
            )


def _interrupt_check() -> Callable[[], None]:
    """For the synchronous writing steps: raise ``CancelledError`` once Ctrl-C has asked to
    cancel the running task. (asyncio's SIGINT handler cancels the task, but that would only
    land at the next ``await`` -- after the archive was complete and renamed into place.)"""
    task = asyncio.current_task()

    def check() -> None:
        if task is not None and task.cancelling():
            raise asyncio.CancelledError

    return check


def _write_platform(
    work: _PlatformWork,
    lock: Lock,
    options: PackOptions,
    *,
    reporter: Reporter,
    stdout: BinaryIO | None,
    interrupted: Callable[[], None] = lambda: None,
    work_dir: Path | None = None,
) -> PlatformPack:
    entries, expected = _entries(work, lock, options)
    total = sum(
        e.source.stat().st_size if isinstance(e.source, Path) else len(e.source) for e in entries
    )
    key = f"archive:{work.env.platform.name}"
    reporter.task_started(
        key, label="stdout" if work.output == "-" else work.output, total_bytes=total
    )

    def progress(n: int) -> None:
        interrupted()
        reporter.task_advanced(key, n)

    try:
        if work.output == "-":
            if stdout is None:
                raise UsageError("-o - needs a stdout stream")
            written = write_tar(entries, stdout, on_bytes=progress, sha256=options.archive_sha256)
            stdout.flush()
            _check_written(written, expected)
            digest, size = written.sha256, written.size
        elif options.create_executable:
            assert work_dir is not None
            digest, size = _write_executable(
                work,
                entries,
                expected,
                options=options,
                work_dir=work_dir,
                progress=progress,
                interrupted=interrupted,
            )
        elif options.directory_only:
            target = Path(work.output)
            with atomic_output(target) as tmp:
                files = write_directory(entries, tmp)
                _check_written(files, expected)
                interrupted()  # the last moment before the rename
            digest, size = None, sum(w.size for w in files)
        else:
            target = Path(work.output)
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_file(target) as fh:  # nameless until complete: even kill -9 is clean
                written = write_tar(entries, fh, on_bytes=progress, sha256=options.archive_sha256)
                _check_written(written, expected)
                interrupted()  # the last moment before the rename
            digest, size = written.sha256, written.size
    except BaseException:
        reporter.task_finished(key, outcome="failed")
        raise
    _write_sbom_file(work, options)
    reporter.task_finished(key, outcome="written", detail=_human(size))
    artifacts = tuple(
        PackedArtifact(
            path=p.path,
            kind=p.kind,
            name=p.name,
            version=p.version,
            sha256=p.sha256,
            size=p.size,
            origin=work.origins.get(p.path) or str(p.origin.get("type", "")),
            source=str(p.origin.get("url") or p.origin.get("path") or p.origin.get("file") or ""),
        )
        for p in sorted(
            [c[2] for c in work.conda] + [w[3] for w in work.wheels], key=lambda a: a.path
        )
    )
    return PlatformPack(work.env.platform, work.output, digest, size, artifacts)


def _write_executable(
    work: _PlatformWork,
    entries: Sequence[Entry],
    expected: Mapping[str, str],
    *,
    options: PackOptions,
    work_dir: Path,
    progress: Callable[[int], None],
    interrupted: Callable[[], None],
) -> tuple[str | None, int]:
    """``--create-executable``: the tar into the work dir, then header + bundle + tar."""
    platform = work.env.platform
    tar = work_dir / f"pack-{platform.name}.tar"
    with tar.open("wb") as fh:
        written = write_tar(entries, fh, on_bytes=progress)
    _check_written(written, expected)
    bundle = build_bundle(
        subdir=platform.subdir,
        conda=[(record, path) for record, path, _ in work.conda],
        work_dir=work_dir / f"bundle-{platform.name}",
        wheels_dir=options.unpacker_wheels,
    )
    target = Path(work.output)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(target) as fh:
        os.fchmod(fh.fileno(), 0o755)
        writer = _HashingWriter(fh, hashing=options.archive_sha256)
        write_script(writer, pack=tar, bundle=bundle, subdir=platform.subdir, name=target.name)
        interrupted()
    tar.unlink()
    return writer.digest, writer.size


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


__all__ = [
    "PackOptions",
    "PackResult",
    "PackStats",
    "PackedArtifact",
    "PixiPackSrcError",
    "PlatformPack",
    "host_subdir",
    "pack",
    "pack_async",
]

_ = PackageRecord  # re-exported type for callers building records
