"""Step 4 of the checks: a pack's channel and wheels.

The channel holds only the pack's subdir and ``noarch``; every package is listed in its
subdir's ``repodata.json`` (read by py-rattler) and every listed package is present; a
record's subdir equals its directory; each name once; every package equals its record
(sha256, else md5; size). ``pypi/`` holds only wheels. The same rules serve ``unpack``'s
installer (:func:`load_channel`) and delta packs (:func:`parse_repodata`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from rattler import Channel, RepoData, RepoDataRecord
from rattler.exceptions import IoError

from pixi_pack_src.archive.metadata import is_valid_subdir
from pixi_pack_src.errors import ArchiveError
from pixi_pack_src.layout import CHANNEL_DIR, PYPI_DIR, TAMPERED, tampered
from pixi_pack_src.verify.model import Finding, MemberDigest, mismatch_finding

REPODATA_JSON = "repodata.json"


def _is_package(name: str) -> bool:
    return name.endswith((".conda", ".tar.bz2"))


def parse_repodata(
    data: bytes, subdir: str, *, root: Path | None, label: str
) -> list[RepoDataRecord]:
    """The records of one ``repodata.json`` (read by py-rattler), their URLs under ``root``."""
    channel_uri = (root.absolute() / CHANNEL_DIR).as_uri() if root else "file:///pack/channel"
    with tempfile.TemporaryDirectory(prefix="pixi-pack-src-repodata-") as tmp:
        path = Path(tmp) / REPODATA_JSON
        path.write_bytes(data)
        try:
            repodata = RepoData.from_path(path)
            return repodata.into_repo_data(Channel(channel_uri))
        except (IoError, OSError, ValueError) as exc:
            raise ArchiveError(
                f"cannot read {CHANNEL_DIR}/{subdir}/{REPODATA_JSON} in {label}: {exc}",
                hint="the archive is damaged; pack it again",
            ) from exc


def load_channel(
    files: Iterable[str],
    documents: Mapping[str, bytes],
    *,
    platform: str,
    label: str,
    root: Path | None = None,
) -> tuple[dict[str, RepoDataRecord], list[Finding]]:
    """Every package the pack's channel lists, with its record (a listed file that is
    missing included: that is one finding), and the layout's findings. ``files`` are the
    pack's regular files; ``documents`` hold at least each ``channel/<subdir>/repodata.json``.
    """
    by_subdir: dict[str, set[str]] = {}
    findings: list[Finding] = []
    for name in sorted(files):
        parts = name.split("/")
        if parts[0] != CHANNEL_DIR:
            continue
        if len(parts) != 3:
            findings.append(
                Finding(
                    "layout",
                    name,
                    f"{label} holds {name}, which is not a file of a channel subdir",
                    "a pack's channel holds only channel/<subdir>/<package> and repodata.json",
                )
            )
            continue
        by_subdir.setdefault(parts[1], set()).add(parts[2])
    allowed = {platform, "noarch"}
    records: dict[str, RepoDataRecord] = {}
    seen: dict[str, str] = {}
    for subdir in sorted(by_subdir):
        names = by_subdir[subdir]
        where = f"{CHANNEL_DIR}/{subdir}"
        repodata_path = f"{where}/{REPODATA_JSON}"
        if subdir not in allowed:
            what = "a conda subdir" if is_valid_subdir(subdir) else "not a conda subdir"
            findings.append(
                Finding(
                    "layout",
                    f"{where}/{sorted(names)[0]}",
                    f"{label} has a {where} directory ({what}) in a pack for {platform}",
                    f"a {platform} pack holds only {CHANNEL_DIR}/{platform} and "
                    f"{CHANNEL_DIR}/noarch; {TAMPERED}",
                )
            )
            continue
        if REPODATA_JSON not in names or repodata_path not in documents:
            findings.append(
                Finding(
                    "layout",
                    repodata_path,
                    f"{label} has packages in {where} but no {repodata_path}",
                    "the archive is damaged; pack it again",
                )
            )
            continue
        try:
            parsed = parse_repodata(documents[repodata_path], subdir, root=root, label=label)
        except ArchiveError as exc:
            findings.append(Finding("layout", repodata_path, exc.message, exc.hint))
            continue
        listed: dict[str, RepoDataRecord] = {}
        for record in parsed:
            if record.file_name in listed:
                findings.append(
                    Finding(
                        "layout",
                        f"{where}/{record.file_name}",
                        f"{repodata_path} in {label} lists {record.file_name} twice",
                        TAMPERED,
                    )
                )
            listed[record.file_name] = record
        on_disk = names - {REPODATA_JSON}
        for extra in sorted(on_disk - set(listed)):
            findings.append(
                Finding(
                    "not-listed",
                    f"{where}/{extra}",
                    f"{label} holds {where}/{extra}, which {repodata_path} does not list",
                    f"a file the channel does not describe cannot be verified; {TAMPERED}",
                )
            )
        for missing in sorted(set(listed) - on_disk):
            findings.append(
                Finding(
                    "missing",
                    f"{where}/{missing}",
                    f"{repodata_path} in {label} names {missing}, but the archive has no "
                    f"{where}/{missing}",
                    tampered(then="pack it again"),
                )
            )
        for file_name, record in sorted(listed.items()):
            arcname = f"{where}/{file_name}"
            if not _is_package(file_name):
                findings.append(
                    Finding(
                        "layout",
                        arcname,
                        f"{repodata_path} in {label} lists {file_name!r}, which is not a "
                        "conda package file (.conda or .tar.bz2)",
                        TAMPERED,
                    )
                )
                continue
            if record.subdir != subdir:
                findings.append(
                    Finding(
                        "layout",
                        arcname,
                        f"{arcname} in {label} is a package for {record.subdir}, "
                        f"but it is in {where}",
                        TAMPERED,
                    )
                )
                continue
            name = record.name.normalized
            if name in seen:
                findings.append(
                    Finding(
                        "layout",
                        arcname,
                        f"{label} holds two packages named {name}: {seen[name]} and {arcname}",
                        "an environment has one version of each package; pack it again",
                    )
                )
                continue
            seen[name] = arcname
            records[arcname] = record  # a missing file is a finding above, not two
    return records, findings


def record_findings(
    records: Mapping[str, RepoDataRecord],
    files: Mapping[str, MemberDigest],
    label: str,
    *,
    by_provenance: bool,
    md5_of: Callable[[str], str | None] | None = None,
    warn: Callable[[str], None] | None = None,
) -> list[Finding]:
    """Every package equal to its ``repodata.json`` record: sha256, else md5; size."""
    findings: list[Finding] = []
    by = REPODATA_JSON
    for arcname, record in sorted(records.items()):
        digest = files.get(arcname)
        if digest is None:
            continue  # missing: already a finding
        if record.sha256 is not None:
            if record.sha256.hex() != digest.sha256:
                findings.append(
                    mismatch_finding(
                        arcname, label, "sha256", record.sha256.hex(), digest.sha256, by
                    )
                )
                continue
        elif record.md5 is not None:
            md5 = digest.md5 if digest.md5 is not None else md5_of(arcname) if md5_of else None
            if md5 is not None and record.md5.hex() != md5:
                findings.append(mismatch_finding(arcname, label, "md5", record.md5.hex(), md5, by))
                continue
        elif not by_provenance and warn is not None:
            warn(f"{arcname} in {label} cannot be verified: its record has no hash")
            continue
        if record.size is not None and record.size != digest.size:
            findings.append(
                mismatch_finding(
                    arcname, label, "size", f"{record.size} bytes", f"{digest.size}", by
                )
            )
    return findings


def list_wheels(files: Iterable[str], label: str) -> tuple[list[str], list[Finding]]:
    """The archive paths of the wheels under ``pypi/``; anything else there is a finding."""
    wheels: list[str] = []
    findings: list[Finding] = []
    for name in sorted(files):
        parts = name.split("/")
        if parts[0] != PYPI_DIR:
            continue
        if len(parts) != 2 or not name.endswith(".whl"):
            findings.append(
                Finding(
                    "layout",
                    name,
                    f"{label} holds {name}, which is not a wheel",
                    f"{PYPI_DIR}/ in a pack holds only *.whl files",
                )
            )
            continue
        wheels.append(name)
    return wheels, findings
