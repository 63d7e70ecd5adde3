"""Collect: the plan's items, fetched or built, as the files of each platform's archive.

Every function here acts on :class:`~pixi_pack_src.plan.PlanItem` s by their ``action``; none
looks at the lock again to decide what to do (:mod:`pixi_pack_src.plan` decided).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import cast

from packaging.utils import parse_wheel_filename
from rattler import RepoDataRecord

from pixi_pack_src.archive.channel import record_from_archive
from pixi_pack_src.archive.metadata import ArtifactProvenance, JsonValue
from pixi_pack_src.builders.conda import BuiltArtifact, SourceBuildOptions, build_sources
from pixi_pack_src.builders.wheel import (
    BuiltWheel,
    WheelBuildOptions,
    build_wheels,
    find_links_of,
    job_for,
    make_target_interpreter,
)
from pixi_pack_src.delta.compare import DeltaInfo
from pixi_pack_src.delta.manifest import BaseManifest
from pixi_pack_src.fetch.config import FetchConfig
from pixi_pack_src.fetch.download import Artifact, Fetched
from pixi_pack_src.hashing import Verified, hash_file
from pixi_pack_src.layout import CHANNEL_DIR, PYPI_DIR
from pixi_pack_src.lock.model import CondaBinary, CondaSource, PypiPackage
from pixi_pack_src.pack.options import PackOptions
from pixi_pack_src.pack.result import PackedItem, PackStats
from pixi_pack_src.plan import PackPlan, PackPlans, PlanItem
from pixi_pack_src.redact import redact_text, redact_url
from pixi_pack_src.reporter import Reporter
from pixi_pack_src.warnlist import WarningList
from pixi_pack_src.wheels import check_wheel_for_target


@dataclass(frozen=True)
class CondaFile:
    """A conda package going into an archive: its (locked or read) record and bytes."""

    record: RepoDataRecord
    path: Path | None  # None: the base of a delta pack has these bytes (pack/from_base.py)
    provenance: ArtifactProvenance


@dataclass(frozen=True)
class WheelFile:
    """A wheel going into an archive (name and version are the provenance's)."""

    path: Path | None  # None: the base of a delta pack has these bytes
    provenance: ArtifactProvenance


@dataclass
class PlatformWork:
    """What goes into one platform's archive, gathered before anything is written.

    Files are keyed by their archive path: a later file of the same path (a build, an
    ``--inject``) replaces an earlier one."""

    plan: PackPlan
    output: str
    conda: dict[str, CondaFile] = field(default_factory=dict)
    wheels: dict[str, WheelFile] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)  # archive path -> how it was obtained
    _done: dict[int, PackedItem] = field(default_factory=dict)  # id(plan item) -> as done
    # archive path -> the file's identity when its bytes were hashed (copied without re-hashing)
    verified: dict[str, Verified] = field(default_factory=dict)
    sbom: bytes | None = None  # the archive's sbom.cdx.json, once made
    base: BaseManifest | None = None  # pack --base: the delta's base (pack/from_base.py)
    delta: DeltaInfo | None = None  # pack --base: the delta's declaration, once made

    def add_conda(self, file: CondaFile, origin: str, verified: Verified | None = None) -> None:
        self.conda[file.provenance.path] = file
        self._added(file.provenance.path, origin, verified)

    def add_wheel(self, file: WheelFile, origin: str, verified: Verified | None = None) -> None:
        self.wheels[file.provenance.path] = file
        self._added(file.provenance.path, origin, verified)

    def _added(self, path: str, origin: str, verified: Verified | None) -> None:
        self.origins[path] = origin
        if verified is not None:
            self.verified[path] = verified
        else:
            self.verified.pop(path, None)

    def did(self, item: PlanItem, action: str) -> None:
        """Record what happened to one of the plan's items."""
        self._done[id(item)] = PackedItem(
            action, item.kind, item.name, item.version, redact_text(item.source)
        )

    @property
    def done(self) -> tuple[PackedItem, ...]:
        """The plan's items as carried out, in the plan's order (an item not carried out is
        missing)."""
        return tuple(self._done[id(i)] for i in self.plan.items if id(i) in self._done)


def artifacts_to_fetch(plans: PackPlans, config: FetchConfig) -> dict[str, Artifact]:
    """Every file the plans download or copy, and the sdists they build, each once (a noarch
    package shared by platforms is fetched once)."""
    out: dict[str, Artifact] = {}
    for plan in plans.plans:
        # wheel builds need the target's python: a delta still fetches what the base has
        builds_wheels = any(i.action == "build-wheel" for i in plan.items)
        for item in plan.items:
            artifact = _artifact(item, config)
            base_binary = item.action == "from-base" and isinstance(item.entry, CondaBinary)
            if artifact is None and builds_wheels and base_binary:
                artifact = Artifact.from_conda(cast("CondaBinary", item.entry), config)
            if artifact is not None:
                out.setdefault(artifact.key, artifact)
    return out


def _artifact(item: PlanItem, config: FetchConfig) -> Artifact | None:
    entry = item.entry
    if item.action in ("download", "copy"):
        if isinstance(entry, CondaBinary):
            return Artifact.from_conda(entry, config)
        if isinstance(entry, PypiPackage):
            return Artifact.from_pypi(entry, config)
    if item.action == "build-wheel" and item.kind in ("sdist", "local-sdist"):
        return Artifact.from_pypi(cast("PypiPackage", entry), config)
    return None


def collect_fetched(
    work: PlatformWork, fetched: Mapping[str, Fetched], config: FetchConfig, warn: WarningList
) -> None:
    """The plan's downloads and copies, verified, with their provenance."""
    root = work.plan.workspace_root
    for item in work.plan.items:
        if item.action not in ("download", "copy"):
            continue
        entry = item.entry
        if isinstance(entry, CondaBinary):
            got = fetched[Artifact.from_conda(entry, config).key]
            if got.verified_against == "none":
                warn(f"{entry.file_name} has no hash in the lock; recorded sha256 {got.sha256}")
            prov = ArtifactProvenance(
                path=entry.archive_path,
                kind="conda",
                name=entry.name,
                version=entry.version,
                build=entry.build,
                sha256=got.sha256,
                size=got.size,
                origin=_origin(got, root),
            )
            conda = CondaFile(_fill_hashes(entry.record, got), got.path, prov)
            work.add_conda(conda, got.origin, got.verified)
        elif isinstance(entry, PypiPackage) and entry.file_name is not None:
            got = fetched[Artifact.from_pypi(entry, config).key]
            if got.verified_against == "none":
                warn(
                    f"wheel {entry.file_name} has no hash in the lock; recorded sha256 {got.sha256}"
                )
            prov = ArtifactProvenance(
                path=f"{PYPI_DIR}/{entry.file_name}",
                kind="wheel",
                name=entry.name,
                version=entry.version or str(parse_wheel_filename(entry.file_name)[1]),
                sha256=got.sha256,
                size=got.size,
                origin=_origin(got, root),
            )
            work.add_wheel(WheelFile(got.path, prov), got.origin, got.verified)
        else:  # pragma: no cover - plan/items.py makes download/copy items of these two only
            raise AssertionError(f"a {item.kind} item cannot be {item.action}")
        work.did(item, "copy" if got.origin == "local-file" else "download")


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
        origin["path"] = relative_location(fetched.path, workspace_root)
    else:
        origin["url"] = redact_url(fetched.artifact.lock_url)
    return origin


def relative_location(path: Path, root: Path) -> str:
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


# -- conda source packages ----------------------------------------------------------------------


def build_conda_sources(
    plans: PackPlans,
    works: Sequence[PlatformWork],
    options: PackOptions,
    reporter: Reporter,
    work_dir: Path,
    *,
    cancel: threading.Event | None = None,
) -> dict[str, BuiltArtifact]:
    """``pixi build`` the plans' build jobs (a noarch one once for all platforms)."""
    if not plans.builds:
        return {}
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
    return build_sources([b.job for b in plans.builds], options=build_options, reporter=reporter)


def collect_built(
    work: PlatformWork, built: Mapping[str, BuiltArtifact], warn: WarningList
) -> dict[str, BuiltArtifact]:
    """The built artifacts of this platform's ``build-conda`` items, joined to its channel."""
    mine: dict[str, BuiltArtifact] = {}
    for item in work.plan.items:
        if item.action != "build-conda":
            continue
        source = cast("CondaSource", item.entry)
        artifact = built[source.lock_id]
        mine[source.lock_id] = artifact
        for message in artifact.warnings:
            warn(message)
        work.did(item, "build-conda")
        if artifact.archive_path in work.conda:
            continue
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
        outcome = "built-from-cache" if artifact.from_cache else "built"
        work.add_conda(CondaFile(record, artifact.path, prov), outcome)
    return mine


def _origin_and_builder(
    provenance: Mapping[str, object],
) -> tuple[Mapping[str, JsonValue], Mapping[str, JsonValue] | None]:
    """A build's ``{"origin": ..., "builder": ...}`` as the archive's provenance fields."""
    origin, builder = provenance.get("origin"), provenance.get("builder")
    return (
        cast("Mapping[str, JsonValue]", origin if isinstance(origin, Mapping) else {}),
        cast("Mapping[str, JsonValue]", builder) if isinstance(builder, Mapping) else None,
    )


# -- PyPI entries built into wheels ---------------------------------------------------------------


async def build_pypi(
    work: PlatformWork,
    fetched: Mapping[str, Fetched],
    config: FetchConfig,
    *,
    options: PackOptions,
    wheel_options: WheelBuildOptions,
    exclude: Sequence[Path],
    reporter: Reporter,
) -> list[BuiltWheel]:
    """Build this platform's ``build-wheel`` items (sdists, git sources, source trees)."""
    items = [i for i in work.plan.items if i.action == "build-wheel"]
    if not items:
        return []
    plan = work.plan
    outputs = tuple(Path(w).resolve() for w in [work.output] if w != "-")
    jobs = []
    for item in items:
        pkg = cast("PypiPackage", item.entry)
        sdist = None
        if item.kind in ("sdist", "local-sdist"):
            sdist = fetched[Artifact.from_pypi(pkg, config).key].path
        jobs.append(
            job_for(
                pkg,
                workspace_root=plan.workspace_root,
                sdist_file=sdist,
                exclude=(*outputs, *exclude),
            )
        )
    binaries = [
        (entry.record, fetched[Artifact.from_conda(entry, config).key].path)
        for entry in _conda_binaries(plan.items)
    ]
    target = make_target_interpreter(
        conda=binaries,
        platform=plan.platform,
        work_dir=wheel_options.work_dir / f"python-{plan.platform.name}",
        environment_packages=not options.build_isolation,
    )
    built = await build_wheels(
        jobs,
        target=target,
        options=replace(wheel_options, indexes=plan.indexes, find_links=find_links_of(plan.env)),
        reporter=reporter,
    )
    for item in items:
        if item.name in built:
            work.did(item, "build-wheel")
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
        outcome = "built-from-cache" if wheel.from_cache else "built"
        work.add_wheel(WheelFile(wheel.path, prov), outcome)
    return list(built.values())


def _conda_binaries(items: Iterable[PlanItem]) -> list[CondaBinary]:
    return [
        i.entry
        for i in items
        if i.action in ("download", "copy", "from-base") and isinstance(i.entry, CondaBinary)
    ]


def collect_skipped(work: PlatformWork) -> None:
    for item in work.plan.items:
        if item.action == "skip":
            work.did(item, "skip")


# -- --inject -------------------------------------------------------------------------------------


def collect_injected(work: PlatformWork, inject: Sequence[Path], warn: WarningList) -> None:
    """``--inject`` (checked by the plan): records read from the archives; wheels checked
    against the target."""
    subdir = work.plan.platform.subdir
    taken = set(work.conda) | set(work.wheels)
    for path in inject:
        name = path.name
        if name.endswith((".conda", ".tar.bz2")):
            record = record_from_archive(path)
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
            work.add_conda(CondaFile(record, path, prov), "injected")
        else:  # a .whl (plan/checks.py refuses anything else)
            python = python_record(work)
            check_wheel_for_target(
                path,
                python_version=str(python.version) if python is not None else None,
                subdir=subdir,
                virtual_packages=work.plan.platform.virtual_packages,
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
            work.add_wheel(WheelFile(path, prov), "injected")
        if arcname in taken:
            warn(f"--inject {name} replaces the locked file of the same name")


def python_record(work: PlatformWork) -> RepoDataRecord | None:
    for file in work.conda.values():
        if file.record.name.normalized == "python":
            return file.record
    return None


def _hex(value: bytes | None) -> str:
    return value.hex() if value is not None else ""


def stats(
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
