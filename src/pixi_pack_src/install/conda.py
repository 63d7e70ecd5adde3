"""The pack's conda channel -> checked ``file://`` records -> an environment, offline.

:func:`read_channel` reads ``channel/<subdir>/repodata.json`` with py-rattler and holds the
channel to the rules pixi-unpack leaves unchecked: only the pack's platform and ``noarch``,
every file listed in its subdir's repodata and every listed file present, a record's subdir
equal to its directory, each package name once. :func:`install_records` runs py-rattler's
installer (prefix replacement, noarch python compilation and entry points, ``conda-meta``),
then writes ``conda-meta/history`` as pixi-unpack does (so ``conda run -p`` accepts the
prefix) and removes the ``CACHEDIR.TAG`` py-rattler leaves in the prefix root.

py-rattler does not check hashes of ``file://`` records: the caller verifies every file
first (:mod:`pixi_pack_src.unpack`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import rattler
from rattler import PrefixRecord, RepoDataRecord, Subdir
from rattler.package_streaming import PackageArchive

from pixi_pack_src.aio import run_sync
from pixi_pack_src.errors import ArchiveError, InstallError
from pixi_pack_src.verify.checks import load_channel

logger = logging.getLogger(__name__)

CHANNEL_DIR = "channel"
REPODATA_JSON = "repodata.json"
HISTORY_LINE = "// written by pixi-pack-src unpack: lets `conda run -p` recognise this prefix\n"
_CACHEDIR_SIGNATURE = b"Signature: 8a477f597d28d172789f06886806bc55"
_T = TypeVar("_T")


@dataclass(frozen=True)
class ChannelPackage:
    """One package file of the pack and its repodata record (``url`` = the file)."""

    arcname: str  # channel/<subdir>/<file name>
    path: Path
    record: RepoDataRecord


def _is_package(name: str) -> bool:
    return name.endswith((".conda", ".tar.bz2"))


def read_channel(
    root: Path, files: Iterable[str], *, platform: str, label: str
) -> list[ChannelPackage]:
    """Every package of ``root/channel`` with its record; refuse an inconsistent channel.

    ``files`` are the pack's regular files (relative, ``/``-separated); ``label`` names the
    pack in messages. The rules are :func:`pixi_pack_src.verify.checks.load_channel`'s (the
    ones ``verify`` reports); the first problem is raised.
    """
    files = list(files)
    documents = {
        name: (root / name).read_bytes()
        for name in files
        if name.startswith(f"{CHANNEL_DIR}/") and name.endswith(f"/{REPODATA_JSON}")
    }
    records, findings = load_channel(files, documents, platform=platform, label=label, root=root)
    if findings:
        raise ArchiveError(findings[0].message, hint=findings[0].hint)
    present = set(files)
    missing = sorted(set(records) - present)
    if missing:  # pragma: no cover - load_channel reports a missing file as a finding
        raise ArchiveError(f"{label} has no {missing[0]}")
    return channel_packages(root, records)


def channel_packages(root: Path, records: Mapping[str, RepoDataRecord]) -> list[ChannelPackage]:
    """The checked channel's packages with ``file://`` records pointing into ``root``."""
    packages: list[ChannelPackage] = []
    for arcname, record in sorted(records.items()):
        path = root.joinpath(*arcname.split("/"))
        record.url = path.absolute().as_uri()
        packages.append(ChannelPackage(arcname=arcname, path=path, record=record))
    return packages


_LINK_INFO = ("info/paths.json", "info/files", "info/link.json")


def _path_problem(path: str) -> str | None:
    """Why a path inside a package cannot be installed safely (``None``: it can)."""
    if not path or "\x00" in path:
        return "is empty or has a NUL byte"
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        return "is absolute"
    parts = path.replace("\\", "/").split("/")
    if ".." in parts:
        return "has a '..' component (it would be written outside the environment)"
    return None


async def _read_link_info(path: Path) -> dict[str, bytes | None]:
    archive = await PackageArchive.from_path(path)
    found: dict[str, bytes | None] = await archive.read_files(list(_LINK_INFO))
    return found


def check_package_paths(packages: Sequence[ChannelPackage], *, label: str) -> None:
    """Refuse packages that would write outside the environment when linked.

    py-rattler links every path of ``info/paths.json`` (else ``info/files``) from the
    extracted package to ``<prefix>/<path>`` without checking it: a hostile pack, whose
    hashes an attacker can make consistent, could name ``../../x`` or write through a
    symbolic link another package installs. Checked here, before anything is installed: no
    absolute path and no ``..`` component; nothing below a path that a package installs as a
    symbolic link; entry point names (``info/link.json``) that are plain file names.
    """
    links: dict[str, str] = {}  # path installed as a symbolic link -> its package
    declared: list[tuple[str, str]] = []  # (path, package arcname)
    for package in packages:
        what = f"{package.arcname} in {label}"
        try:
            info = run_sync(_read_link_info(package.path))
        except Exception as exc:  # py-rattler raises many unrelated types
            raise ArchiveError(
                f"cannot read the file list of {what}: {exc}",
                hint="the archive is damaged or was tampered with; do not install it",
            ) from exc
        for path, softlink in _paths_of(info, what):
            problem = _path_problem(path)
            if problem:
                raise _unsafe(what, repr(path), problem)
            normalized = "/".join(p for p in path.split("/") if p not in ("", "."))
            declared.append((normalized, package.arcname))
            if softlink:
                links[normalized] = package.arcname
        for name in _entry_point_names(info, what):
            if not name or "/" in name or "\\" in name or name in (".", ".."):
                raise _unsafe(what, f"entry point {name!r}", "is not a plain file name")
    for path, arcname in declared:
        parts = path.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent in links:
                raise _unsafe(
                    f"{arcname} in {label}",
                    repr(path),
                    f"is inside {parent!r}, which {links[parent]} installs as a symbolic link",
                )


def _unsafe(what: str, member: str, problem: str) -> ArchiveError:
    return ArchiveError(
        f"refusing {what}: {member} {problem}",
        hint="the archive is damaged or was tampered with; do not install it",
    )


def _paths_of(info: Mapping[str, bytes | None], what: str) -> list[tuple[str, bool]]:
    """``(path, is a symbolic link)`` for every path the package installs."""
    raw = info.get("info/paths.json")
    if raw is not None:
        try:
            doc = json.loads(raw)
            return [
                (str(entry["_path"]), entry.get("path_type") == "softlink")
                for entry in doc["paths"]
            ]
        except (ValueError, KeyError, TypeError) as exc:
            raise ArchiveError(
                f"{what} has an unreadable info/paths.json ({exc})",
                hint="the archive is damaged or was tampered with; do not install it",
            ) from exc
    files = info.get("info/files")
    if files is None:
        raise ArchiveError(
            f"{what} has neither info/paths.json nor info/files",
            hint="the archive is damaged or was tampered with; do not install it",
        )
    return [(line, False) for line in files.decode("utf-8", "replace").splitlines() if line]


def _entry_point_names(info: Mapping[str, bytes | None], what: str) -> list[str]:
    raw = info.get("info/link.json")
    if raw is None:
        return []
    try:
        doc = json.loads(raw)
        noarch = doc.get("noarch") or {}
        points = noarch.get("entry_points") or [] if isinstance(noarch, dict) else []
        return [str(p).split("=", 1)[0].strip() for p in points]
    except (ValueError, AttributeError) as exc:
        raise ArchiveError(
            f"{what} has an unreadable info/link.json ({exc})",
            hint="the archive is damaged or was tampered with; do not install it",
        ) from exc


def install_records(
    records: list[RepoDataRecord],
    staging: Path,
    *,
    final_prefix: Path,
    cache_dir: Path,
    platform: str,
    origins: Mapping[str, str] | None = None,
) -> None:
    """Install ``records`` into ``staging``, with every embedded path set to ``final_prefix``.

    The caller renames ``staging`` to ``final_prefix`` once everything succeeded, so a failed
    unpack never leaves a half-made environment at the target. ``origins`` maps a file name
    to the URL the package was packed from: ``conda-meta`` records then show that URL rather
    than the temporary copy they were installed from.
    """
    try:
        run_sync(
            rattler.install(
                records,
                staging,
                cache_dir=cache_dir,
                platform=Subdir(platform),
                execute_link_scripts=False,
                show_progress=False,
                alternative_target_prefix=final_prefix,
            )
        )
    except Exception as exc:  # py-rattler raises many unrelated types
        raise InstallError(
            f"installing the conda packages into {final_prefix} failed: {exc}",
            hint="re-run with -vv for details",
        ) from exc
    (staging / "conda-meta").mkdir(parents=True, exist_ok=True)
    (staging / "conda-meta" / "history").write_text(HISTORY_LINE, encoding="utf-8")
    tag = staging / "CACHEDIR.TAG"
    if tag.is_file() and tag.read_bytes().startswith(_CACHEDIR_SIGNATURE):
        tag.unlink()
    _tidy_conda_meta(staging, records, origins or {})


def _tidy_conda_meta(
    prefix: Path, records: Iterable[RepoDataRecord], origins: Mapping[str, str]
) -> None:
    """Drop the temporary cache paths from ``conda-meta/*.json``; show the packed-from URL."""
    for record in records:
        path = (
            prefix / "conda-meta" / f"{record.name.normalized}-{record.version}-{record.build}.json"
        )
        if not path.is_file():
            continue
        prefix_record = PrefixRecord.from_path(path)
        prefix_record.extracted_package_dir = None
        prefix_record.package_tarball_full_path = None
        origin = origins.get(record.file_name)
        if origin:
            prefix_record.url = origin
            prefix_record.channel = origin.rsplit("/", 2)[0] + "/"
        prefix_record.write_to_path(path, pretty=True)
