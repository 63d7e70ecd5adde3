"""Write: one platform's files -> a deterministic tar, a folder or a self-extracting script.

The channel's ``repodata.json`` comes from the *locked* records, with ``environment.yml``,
``pixi-pack.json``, the SBOM and the provenance record; every artifact is re-hashed while it
is written unless its verified identity is unchanged, so a file changed after it was verified
cannot slip in. Outputs are written under a temporary name (or none at all) and renamed when
complete.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

from rattler import RepoDataRecord

from pixi_pack_src import __version__
from pixi_pack_src.archive.atomic import atomic_file, atomic_output
from pixi_pack_src.archive.channel import channel_files, environment_yml
from pixi_pack_src.archive.members import BinaryWriter, Entry, WrittenEntry, fixed_mtime
from pixi_pack_src.archive.metadata import (
    PIXI_PACK_JSON,
    PROVENANCE_JSON,
    SBOM_JSON,
    ArtifactProvenance,
    GeneratedFile,
    LockInfo,
    PlatformInfo,
    Provenance,
    ToolInfo,
    pixi_pack_json,
)
from pixi_pack_src.archive.tar import write_directory, write_tar
from pixi_pack_src.delta.manifest import DELTA_JSON
from pixi_pack_src.errors import ArchiveError, UsageError
from pixi_pack_src.lock.lockfile import Lock
from pixi_pack_src.pack.collect import PlatformWork, relative_location
from pixi_pack_src.pack.early import EarlyArchive
from pixi_pack_src.pack.from_base import declaration
from pixi_pack_src.pack.options import PackOptions
from pixi_pack_src.pack.result import PLATFORM_PLACEHOLDER, PackedArtifact, PlatformPack
from pixi_pack_src.reporter import Reporter
from pixi_pack_src.selfextract import build_bundle, write_script
from pixi_pack_src.units import human_bytes
from pixi_pack_src.verify.scan import wheel_info


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


def _entries(work: PlatformWork, lock: Lock) -> tuple[list[Entry], dict[str, str]]:
    """The archive's entries and, for package files, the sha256 they must have."""
    plan = work.plan
    subdir = plan.platform.subdir
    records_by_subdir: dict[str, list[RepoDataRecord]] = {}
    expected: dict[str, str] = {}
    entries: list[Entry] = []
    artifacts: list[ArtifactProvenance] = []
    # a file without a path is one the base of a delta pack has: listed, not written
    for arcname, conda in sorted(work.conda.items()):
        records_by_subdir.setdefault(conda.record.subdir, []).append(conda.record)
        if conda.path is not None:
            entries.append(Entry(arcname, conda.path, verified=work.verified.get(arcname)))
            expected[arcname] = conda.provenance.sha256
        artifacts.append(conda.provenance)
    for arcname, wheel in sorted(work.wheels.items()):
        if wheel.path is not None:
            entries.append(Entry(arcname, wheel.path, verified=work.verified.get(arcname)))
            expected[arcname] = wheel.provenance.sha256
        artifacts.append(wheel.provenance)

    generated: dict[str, bytes] = dict(channel_files(records_by_subdir))
    all_records = [r for rs in records_by_subdir.values() for r in rs]
    generated["environment.yml"] = environment_yml(
        all_records,
        [(w.provenance.name, w.provenance.version) for _, w in sorted(work.wheels.items())],
    )
    generated[PIXI_PACK_JSON] = pixi_pack_json(subdir)
    work.sbom = generated[SBOM_JSON] = _sbom(work, lock, artifacts, generated)
    provenance = Provenance(
        tool=ToolInfo("pixi-pack-src", __version__),
        lock=LockInfo(relative_location(lock.path, plan.workspace_root), lock.version, lock.sha256),
        environment=plan.environment,
        platform=PlatformInfo(plan.platform.name, subdir, tuple(plan.platform.virtual_packages)),
        artifacts=tuple(artifacts),
        generated=tuple(
            GeneratedFile(name, hashlib.sha256(data).hexdigest(), len(data))
            for name, data in generated.items()
        ),
    )
    generated[PROVENANCE_JSON] = provenance.to_json()
    if work.base is not None:
        work.delta, generated[DELTA_JSON] = declaration(work, work.base, generated[PROVENANCE_JSON])
    entries.extend(Entry(name, data) for name, data in generated.items())
    return entries, expected


def _sbom(
    work: PlatformWork,
    lock: Lock,
    artifacts: Sequence[ArtifactProvenance],
    generated: Mapping[str, bytes],
) -> bytes:
    """``sbom.cdx.json`` (:mod:`pixi_pack_src.sbom`), from what the archive will hold; the
    same function makes it from a written pack, byte for byte."""
    # imported here, not at the top: cyclonedx-python-lib takes ~50 ms to import, which a pack
    # whose archive writer has already started copying files spends in parallel with the copy
    from pixi_pack_src import sbom

    plan = work.plan
    records = {path: c.record for path, c in work.conda.items()}
    wheel_paths = {path: w.path for path, w in work.wheels.items()}
    in_base = work.base.by_sha256() if work.base is not None else {}
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
            wheel_path = wheel_paths[prov.path]
            if wheel_path is not None:
                with wheel_path.open("rb") as fh:
                    details = wheel_info(fh)
            else:  # the base has it: what its METADATA says was kept in the base's manifest
                assert work.base is not None
                details = work.base.wheels[in_base[prov.sha256.lower()].path]
            items.append(
                sbom.wheel_artifact(
                    prov.path, sha256=prov.sha256, size=prov.size, details=details, provenance=prov
                )
            )
    digests = {a.path: a.sha256 for a in artifacts}
    digests.update({name: hashlib.sha256(data).hexdigest() for name, data in generated.items()})
    return sbom.sbom_json(
        sbom.SbomInput(
            environment=plan.environment,
            platform=plan.platform.subdir,
            platform_name=plan.platform.name,
            tool_name="pixi-pack-src",
            tool_version=__version__,
            artifacts=tuple(items),
            content_digest=sbom.content_digest(digests),
            timestamp=fixed_mtime(),
            lock_file=relative_location(lock.path, plan.workspace_root),
            lock_sha256=lock.sha256,
            virtual_packages=tuple(plan.platform.virtual_packages),
        )
    )


def _write_sbom_file(work: PlatformWork, options: PackOptions) -> None:
    """``--sbom FILE``: the archive's SBOM beside it (``{platform}`` expanded)."""
    if options.sbom_output is None or work.sbom is None:
        return
    platform = work.plan.platform
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


def interrupt_check() -> Callable[[], None]:
    """For the synchronous writing steps: raise ``CancelledError`` once Ctrl-C has asked to
    cancel the running task. (asyncio's SIGINT handler cancels the task, but that would only
    land at the next ``await`` -- after the archive was complete and renamed into place.)"""
    task = asyncio.current_task()

    def check() -> None:
        if task is not None and task.cancelling():
            raise asyncio.CancelledError

    return check


def write_platform(
    work: PlatformWork,
    lock: Lock,
    options: PackOptions,
    *,
    reporter: Reporter,
    stdout: BinaryIO | None,
    interrupted: Callable[[], None] = lambda: None,
    work_dir: Path | None = None,
    early: EarlyArchive | None = None,
) -> PlatformPack:
    """Write ``work``'s archive; ``early``: the archive file already begun while fetching
    (:mod:`pixi_pack_src.pack.early`), completed here."""
    entries, expected = _entries(work, lock)
    total = sum(
        e.source.stat().st_size if isinstance(e.source, Path) else len(e.source) for e in entries
    )
    platform = work.plan.platform
    key = f"archive:{platform.name}"
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
        elif early is not None:
            written = early.finish(entries, on_bytes=progress)
            _check_written(written, expected)
            interrupted()  # the last moment before the rename
            early.commit()
            digest, size = written.sha256, written.size
        elif options.directory_only:
            target = Path(work.output)
            target.parent.mkdir(parents=True, exist_ok=True)
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
    except BaseException as exc:
        if early is not None:
            early.abort(exc)
        reporter.task_finished(key, outcome="failed")
        raise
    _write_sbom_file(work, options)
    reporter.task_finished(key, outcome="written", detail=human_bytes(size))
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
            [c.provenance for c in work.conda.values()]
            + [w.provenance for w in work.wheels.values()],
            key=lambda a: a.path,
        )
    )
    return PlatformPack(platform, work.output, digest, size, artifacts, work.done, delta=work.delta)


def _write_executable(
    work: PlatformWork,
    entries: Sequence[Entry],
    expected: Mapping[str, str],
    *,
    options: PackOptions,
    work_dir: Path,
    progress: Callable[[int], None],
    interrupted: Callable[[], None],
) -> tuple[str | None, int]:
    """``--create-executable``: the tar into the work dir, then header + bundle + tar."""
    platform = work.plan.platform
    tar = work_dir / f"pack-{platform.name}.tar"
    with tar.open("wb") as fh:
        written = write_tar(entries, fh, on_bytes=progress)
    _check_written(written, expected)
    bundle = build_bundle(
        subdir=platform.subdir,
        # a delta script carries no python of its own: it runs on the environment's (--update)
        conda=[(c.record, c.path) for c in work.conda.values() if c.path is not None]
        if work.base is None
        else [],
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
