"""Packs made straight from world packages (no lock, no ``pack``): for ``unpack`` tests.

:func:`build_pack_dir` solves ``specs`` against the world channel and lays out a format-1
pack, as ``pack`` does (docs/archive-format.md, "Layout"): ``channel/<subdir>/<file>`` copied byte
for byte with ``repodata.json`` from the solved records (:func:`pixi_pack_src.archive.channel.
repodata_json`), ``pixi-pack.json``, ``environment.yml``, ``pypi/*.whl``, and -- unless
``provenance=False`` (a Quantco-style plain format-1 pack) -- ``pixi-pack-src.json`` covering
every other file. :func:`write_pack_tar` turns a directory into a tar with the product's
deterministic writer.

The default content exercises the interesting cases: the real ``python``, ``relocme`` (text
and binary prefix placeholders), ``libgreet`` (a gcc shared library), ``worldcli`` (noarch
python with an entry point), ``pyworld-plugins`` (noarch python, a dependency), ``withlinks``
(symlinks), ``chain-a`` (a dependency chain), ``sysdep`` (needs ``__glibc``), and three wheels
(``worldpkg-a`` has a console script, ``worldpkg-b`` needs ``worldpkg-a``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rattler import RepoDataRecord

from pixi_pack_src.archive.channel import channel_files, environment_yml
from pixi_pack_src.archive.members import Entry
from pixi_pack_src.archive.metadata import (
    PROVENANCE_JSON,
    ArtifactProvenance,
    GeneratedFile,
    LockInfo,
    PlatformInfo,
    Provenance,
    ToolInfo,
    pixi_pack_json,
)
from pixi_pack_src.archive.tar import write_directory, write_tar
from testworld.layout import World
from testworld.locks import DEFAULT_VIRTUAL_PACKAGES, solve

DEFAULT_SPECS = (
    "python",
    "relocme",
    "libgreet",
    "worldcli",
    "pyworld-plugins",
    "withlinks",
    "chain-a",
    "sysdep",
)
DEFAULT_WHEELS = ("worldpkg-a", "worldpkg-b", "worldpkg-c")
# The pieces a foreign (placeholder) platform of the world can solve.
FOREIGN_SPECS = ("python", "chain-a", "sysdep", "worldcli", "pyworld")


@dataclass(frozen=True)
class PackDir:
    """A pack directory and what went into it."""

    root: Path
    platform: str
    records: tuple[RepoDataRecord, ...]
    wheels: tuple[str, ...]  # file names under pypi/
    virtual_packages: tuple[str, ...]
    provenance: bool

    @property
    def conda_files(self) -> list[str]:
        """Archive paths of the conda packages, sorted."""
        return sorted(f"channel/{r.subdir}/{r.file_name}" for r in self.records)

    def record(self, name: str) -> RepoDataRecord:
        for r in self.records:
            if r.name.normalized == name:
                return r
        raise KeyError(name)


def _sha256(data: bytes | Path) -> tuple[str, int]:
    if isinstance(data, Path):
        data = data.read_bytes()
    return hashlib.sha256(data).hexdigest(), len(data)


def build_pack_dir(
    world: World,
    dest: Path,
    *,
    specs: Sequence[str] = DEFAULT_SPECS,
    platform: str = "linux-64",
    wheels: Sequence[str] = DEFAULT_WHEELS,
    extra_wheels: Sequence[Path] = (),
    provenance: bool = True,
    virtual_packages: Sequence[str] | None = None,
    extra_files: Mapping[str, bytes] | None = None,
) -> PackDir:
    """Solve ``specs`` for ``platform`` and write a pack into ``dest`` (must not exist).

    ``wheels`` are world wheel projects; ``extra_wheels`` are wheel files to add as they are.
    ``virtual_packages`` (default: the world's for the platform) go into the provenance
    record, as a lock's would. ``extra_files`` are added verbatim (and covered by provenance).
    """
    vps = tuple(
        DEFAULT_VIRTUAL_PACKAGES.get(platform, ()) if virtual_packages is None else virtual_packages
    )
    records = solve(world.channel_dir, list(specs), platform)
    by_subdir: dict[str, list[RepoDataRecord]] = {}
    entries: list[Entry] = []
    artifacts: list[ArtifactProvenance] = []
    for record in records:
        path = world.channel_dir / record.subdir / record.file_name
        arcname = f"channel/{record.subdir}/{record.file_name}"
        by_subdir.setdefault(record.subdir, []).append(record)
        entries.append(Entry(arcname, path))
        sha, size = _sha256(path)
        artifacts.append(
            ArtifactProvenance(
                path=arcname,
                kind="conda",
                name=record.name.normalized,
                version=str(record.version),
                build=str(record.build),
                sha256=sha,
                size=size,
                origin={"type": "download", "url": record.url, "verified-against": "lock-sha256"},
            )
        )
    wheel_files = [world.root / world.dist(name).rel_path for name in wheels] + list(extra_wheels)
    pins: list[tuple[str, str]] = []
    for wheel in wheel_files:
        arcname = f"pypi/{wheel.name}"
        entries.append(Entry(arcname, wheel))
        name, version = wheel.name.split("-")[:2]
        pins.append((name, version))
        sha, size = _sha256(wheel)
        artifacts.append(
            ArtifactProvenance(
                path=arcname,
                kind="wheel",
                name=name,
                version=version,
                sha256=sha,
                size=size,
                origin={"type": "injected"},
            )
        )
    generated: dict[str, bytes] = {
        **channel_files(by_subdir),
        "pixi-pack.json": pixi_pack_json(platform),
        "environment.yml": environment_yml(records, pins),
        **(extra_files or {}),
    }
    entries += [Entry(name, data) for name, data in generated.items()]
    if provenance:
        doc = Provenance(
            tool=ToolInfo("pixi-pack-src", "0.0.0+world"),
            lock=LockInfo("pixi.lock", 7, "0" * 64),
            environment="default",
            platform=PlatformInfo(platform, platform, vps),
            artifacts=tuple(artifacts),
            generated=tuple(
                GeneratedFile(name, *_sha256(data)) for name, data in generated.items()
            ),
        )
        entries.append(Entry(PROVENANCE_JSON, doc.to_json()))
    write_directory(entries, dest)
    return PackDir(
        root=dest,
        platform=platform,
        records=tuple(records),
        wheels=tuple(w.name for w in wheel_files),
        virtual_packages=vps,
        provenance=provenance,
    )


def write_pack_tar(pack_dir: Path, out: Path) -> Path:
    """``pack_dir`` as a deterministic tar (the product's writer), at ``out``."""
    entries = [
        Entry(p.relative_to(pack_dir).as_posix(), p)
        for p in sorted(pack_dir.rglob("*"))
        if p.is_file()
    ]
    with out.open("wb") as fh:
        write_tar(entries, fh)
    return out


def quantco_repodata(pack_dir: Path) -> None:
    """Rewrite every ``repodata.json`` as pixi-pack does: all records under ``packages.conda``
    (``.tar.bz2`` included), which pixi-unpack, and so our unpack, must accept."""
    for path in sorted((pack_dir / "channel").glob("*/repodata.json")):
        doc = json.loads(path.read_text())
        doc["packages.conda"].update(doc.get("packages", {}))
        doc["packages"] = {}
        path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")


def edit_pack(pack_dir: Path, dest: Path) -> Path:
    """A writable copy of a pack directory."""
    shutil.copytree(pack_dir, dest)
    return dest


def make_wheel(
    directory: Path,
    name: str,
    version: str = "1.0",
    tag: str = "py3-none-any",
    *,
    requires_python: str | None = None,
    files: Mapping[str, bytes] | None = None,
    record_override: Mapping[str, str] | None = None,
) -> Path:
    """A small, valid wheel (RECORD with sha256 and sizes) written into ``directory``.

    ``record_override`` replaces RECORD lines by path (e.g. a wrong hash).
    """
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    content = dict(files or {f"{dist}/__init__.py": f"__version__ = {version!r}\n".encode()})
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    if requires_python:
        metadata += f"Requires-Python: {requires_python}\n"
    purelib = "true" if tag.endswith("-none-any") else "false"
    content[f"{info}/METADATA"] = metadata.encode()
    content[f"{info}/WHEEL"] = (
        f"Wheel-Version: 1.0\nGenerator: world\nRoot-Is-Purelib: {purelib}\nTag: {tag}\n"
    ).encode()
    lines = []
    for path, data in content.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        lines.append(f"{path},sha256={digest},{len(data)}")
    for path, line in (record_override or {}).items():
        lines = [line if ln.split(",")[0] == path else ln for ln in lines]
    lines.append(f"{info}/RECORD,,")
    content[f"{info}/RECORD"] = ("\n".join(lines) + "\n").encode()
    wheel = directory / f"{dist}-{version}-{tag}.whl"
    directory.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, data in content.items():
            zf.writestr(zipfile.ZipInfo(path, date_time=(2024, 1, 1, 0, 0, 0)), data)
    return wheel
