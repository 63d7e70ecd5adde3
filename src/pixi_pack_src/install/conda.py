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

import concurrent.futures
import json
import logging
import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import rattler
from rattler import PackageRecord, PrefixRecord, RepoDataRecord, Subdir

from pixi_pack_src.aio import run_sync
from pixi_pack_src.errors import ArchiveError, InstallError
from pixi_pack_src.install.extract import Budget, extract_package
from pixi_pack_src.layout import CHANNEL_DIR, TAMPERED
from pixi_pack_src.limits import max_metadata_bytes
from pixi_pack_src.safepath import RelPath, UnsafePathError, path_problem
from pixi_pack_src.verify.channel import load_channel

logger = logging.getLogger(__name__)

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
    pack in messages. The rules are :func:`pixi_pack_src.verify.channel.load_channel`'s (the
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
CACHE_REVISION = 1  # py-rattler's package-cache lock file: revision (u64, big-endian) + sha256


def _path_problem(path: str) -> str | None:
    """Why a path inside a package cannot be installed safely (``None``: it can)."""
    if not path or "\x00" in path:
        return "is empty or has a NUL byte"
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        return "is absolute"
    parts = path.replace("\\", "/").split("/")
    if ".." in parts:
        return "has a '..' component (it would be written outside the environment)"
    return path_problem(path)


def _read_extracted(directory: Path, name: str, what: str) -> bytes | None:
    path = directory.joinpath(*name.split("/"))
    try:
        st = path.lstat()
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode):
        raise _unsafe(what, name, "is not a regular file")
    cap = max_metadata_bytes()
    if st.st_size > cap:
        raise _unsafe(what, name, f"is larger than {cap} bytes (PIXI_PACK_SRC_MAX_METADATA_BYTES)")
    with path.open("rb") as fh:
        return fh.read(cap + 1)


def _cache_name(record: RepoDataRecord, what: str) -> RelPath:
    try:
        return RelPath.file_name(
            f"{record.name.normalized}-{record.version}-{record.build}", what="its name"
        )
    except UnsafePathError as exc:
        raise _unsafe(what, "the record", str(exc)) from None


def _extract_file(package: ChannelPackage, dest: Path, label: str, budget: Budget) -> None:
    """A package that is a file of the pack (a directory pack, a delta, ``--keep-packages``)."""
    fd = os.open(package.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        size = os.fstat(fd).st_size
        extract_package(
            fd,
            0,
            size,
            dest,
            file_name=package.path.name,
            what=f"{package.arcname} in {label}",
            budget=budget,
        )
    finally:
        os.close(fd)


def extract_and_check(
    packages: Sequence[ChannelPackage],
    *,
    cache_dir: Path,
    label: str,
    sha256: Mapping[str, str],
    extracted: Mapping[str, Path] | None = None,
    budget: Budget | None = None,
    workers: int = 4,
) -> None:
    """Put every package into ``cache_dir`` in py-rattler's package-cache layout and refuse
    one that would write outside the environment when linked. Install what was checked:

    ``extracted`` maps a package's arcname to the directory it was already extracted into
    while the pack was read (:func:`pixi_pack_src.install.extract.extract_package`, the
    bytes checked against ``sha256`` -- the verified digests by arcname -- since); the others
    are extracted from their files here, by the same extractor. Each directory becomes
    ``<name>-<version>-<build>/`` with its ``.lock`` (revision and sha256), which
    :func:`install_records` links from unchanged: the file lists checked here are read from
    the very directories that are installed.

    py-rattler links every path of ``info/paths.json`` (else ``info/files``) to
    ``<prefix>/<path>`` without checking it. Checked here: each path is a plain relative path
    (:mod:`pixi_pack_src.safepath`); nothing below a path that a package installs as a
    symbolic link; entry point names (``info/link.json``) that are plain file names; the
    ``python_site_packages_path`` of a record relative and inside the prefix.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    done = dict(extracted or {})
    budget = budget if budget is not None else Budget()
    for package in packages:
        check_record_paths(package.record, f"{package.arcname} in {label}")
    todo = [p for p in packages if p.arcname not in done]
    staging = cache_dir / ".extracting"
    staging.mkdir(exist_ok=True)
    with concurrent.futures.ThreadPoolExecutor(max(1, workers)) as pool:
        jobs = {
            p.arcname: pool.submit(_extract_file, p, staging / str(i), label, budget)
            for i, p in enumerate(todo)
        }
        for i, package in enumerate(todo):
            jobs[package.arcname].result()
            done[package.arcname] = staging / str(i)
    links: dict[str, str] = {}  # path installed as a symbolic link -> its package
    declared_paths: list[tuple[str, str]] = []  # (path, package arcname)
    for package in packages:
        what = f"{package.arcname} in {label}"
        name = _cache_name(package.record, what)
        directory = cache_dir / name
        try:
            done[package.arcname].rename(directory)
        except OSError as exc:
            raise _unsafe(
                what, "the record", f"names a package already in the pack ({exc})"
            ) from None
        sha = bytes.fromhex(sha256[package.arcname])
        (cache_dir / f"{name}.lock").write_bytes(CACHE_REVISION.to_bytes(8, "big") + sha)
        info = {name: _read_extracted(directory, name, what) for name in _LINK_INFO}
        for path, softlink in _paths_of(info, what):
            problem = _path_problem(path)
            if problem:
                raise _unsafe(what, repr(path), problem)
            declared_paths.append((path, package.arcname))
            if softlink:
                links[path] = package.arcname
        for entry in _entry_point_names(info, what):
            if not entry or "/" in entry or "\\" in entry or entry in (".", ".."):
                raise _unsafe(what, f"entry point {entry!r}", "is not a plain file name")
    for path, arcname in declared_paths:
        parts = path.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent in links:
                raise _unsafe(
                    f"{arcname} in {label}",
                    repr(path),
                    f"is inside {parent!r}, which {links[parent]} installs as a symbolic link",
                )


def check_record_paths(record: PackageRecord | RepoDataRecord, what: str) -> None:
    """A record's ``python_site_packages_path`` (CEP 17: where noarch python files and wheels
    go) must be a plain relative path inside the prefix."""
    value = record.python_site_packages_path
    if value is None:
        return
    problem = path_problem(str(value))
    if problem:
        raise _unsafe(what, f"python_site_packages_path {str(value)!r}", problem)


def _unsafe(what: str, member: str, problem: str) -> ArchiveError:
    return ArchiveError(
        f"refusing {what}: {member} {problem}",
        hint=TAMPERED,
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
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            raise ArchiveError(
                f"{what} has an unreadable info/paths.json ({type(exc).__name__}: {exc})",
                hint=TAMPERED,
            ) from exc
    files = info.get("info/files")
    if files is None:
        raise ArchiveError(
            f"{what} has neither info/paths.json nor info/files",
            hint=TAMPERED,
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
    except (ValueError, AttributeError, TypeError, RecursionError) as exc:
        raise ArchiveError(
            f"{what} has an unreadable info/link.json ({type(exc).__name__}: {exc})",
            hint=TAMPERED,
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
