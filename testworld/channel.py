"""Conda channels on disk: ``<channel>/<subdir>/<archive>`` + ``repodata.json`` per subdir.

Indexed by ``rattler.index.index_fs`` (plain ``repodata.json`` only: no ``.zst``, no shards).
The indexer stamps each record with ``indexed_timestamp`` (the file's creation time); we drop
it so the same archives always give the same repodata bytes.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Coroutine, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from rattler import PackageFormatSelection, RepoDataRecord, SparseRepoData
from rattler.channel import Channel
from rattler.index import index_fs
from rattler.package import IndexJson

from testworld.packages import ALL_SUBDIRS, BuiltPackage

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one py-rattler coroutine to completion (nothing stays in flight afterwards)."""
    return asyncio.run(coro)


def _strip_indexed_timestamp(repodata: Path) -> None:
    doc = json.loads(repodata.read_text())
    for key in ("packages", "packages.conda"):
        for record in doc.get(key, {}).values():
            record.pop("indexed_timestamp", None)
    repodata.write_text(json.dumps(doc, separators=(",", ":"), ensure_ascii=False))


def index_channel(channel_dir: Path) -> Path:
    """(Re)write ``repodata.json`` in every subdir of ``channel_dir``; returns the dir."""
    channel_dir = Path(channel_dir)
    (channel_dir / "noarch").mkdir(parents=True, exist_ok=True)
    run(index_fs(channel_dir, write_zst=False, write_shards=False, force=True))
    for repodata in channel_dir.glob("*/repodata.json"):
        _strip_indexed_timestamp(repodata)
    return channel_dir


def add_archives(channel_dir: Path, archives: Iterable[Path], *, move: bool = False) -> list[Path]:
    """Copy (or move) archives into ``channel_dir/<subdir>/`` (subdir from their index.json)."""
    placed = []
    for archive in archives:
        subdir = IndexJson.from_package_archive(archive).subdir or "noarch"
        dest = channel_dir / subdir / archive.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if move:
            shutil.move(archive, dest)
        else:
            shutil.copyfile(archive, dest)
        placed.append(dest)
    return placed


def built_packages(channel_dir: Path) -> list[BuiltPackage]:
    """Every archive of an indexed channel, described from its repodata (no re-hashing)."""
    out = []
    for repodata in sorted(channel_dir.glob("*/repodata.json")):
        doc = json.loads(repodata.read_text())
        for key in ("packages", "packages.conda"):
            for file_name, rec in doc.get(key, {}).items():
                out.append(
                    BuiltPackage(
                        path=repodata.parent / file_name,
                        name=rec["name"],
                        version=rec["version"],
                        build=rec["build"],
                        build_number=int(rec.get("build_number", 0)),
                        subdir=rec.get("subdir") or repodata.parent.name,
                        noarch=rec.get("noarch"),
                        depends=tuple(rec.get("depends", ())),
                        sha256=rec["sha256"],
                        md5=rec["md5"],
                        size=int(rec["size"]),
                    )
                )
    return sorted(out, key=lambda p: (p.subdir, p.name, p.version, p.build))


def make_channel(channel_dir: Path, archives: Iterable[Path]) -> Path:
    """A new indexed channel holding ``archives``."""
    channel_dir.mkdir(parents=True, exist_ok=True)
    add_archives(channel_dir, archives)
    return index_channel(channel_dir)


def read_repodata(channel_dir: Path, subdir: str) -> dict[str, Any]:
    """The parsed ``repodata.json`` of one subdir."""
    doc: dict[str, Any] = json.loads((channel_dir / subdir / "repodata.json").read_text())
    return doc


def archive_names(channel_dir: Path, subdir: str) -> set[str]:
    """File names listed in one subdir's repodata (both ``packages`` maps)."""
    doc = read_repodata(channel_dir, subdir)
    return set(doc.get("packages", {})) | set(doc.get("packages.conda", {}))


def channel_records(
    channel_dir: Path, subdirs: Sequence[str] = ALL_SUBDIRS, *, url: str | None = None
) -> list[RepoDataRecord]:
    """Every record of the channel as py-rattler ``RepoDataRecord`` objects.

    ``url`` is the channel's base URL in the records (default: the ``file://`` URL).
    """
    base = (url or channel_dir.resolve().as_uri()).rstrip("/")
    channel = Channel(base)
    out: list[RepoDataRecord] = []
    for subdir in subdirs:
        path = channel_dir / subdir / "repodata.json"
        if not path.is_file():
            continue
        sparse = SparseRepoData(channel, subdir, path)
        try:
            out.extend(sparse.load_all_records(PackageFormatSelection.BOTH))
        finally:
            sparse.close()
    return out
