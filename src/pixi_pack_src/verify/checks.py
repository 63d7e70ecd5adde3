"""The checks of a pack, shared by ``verify`` (which lists every finding) and ``unpack``
(which refuses on the first): one implementation.

In order (docs/verify.md lists the findings):

1. what reading found: unsafe members, a damaged tar (:mod:`.scan`, the member checks of
   :func:`pixi_pack_src.archive.reader.safe_extract`);
2. ``pixi-pack.json`` as strict as pixi-unpack; ``pixi-pack-src.json`` readable and for the
   same platform;
3. with ``pixi-pack-src.json``: every file listed, every listed file present, every sha256
   and size equal (the integrity of every byte);
4. the channel: only the pack's subdir and ``noarch``, every package listed in its subdir's
   ``repodata.json`` and every listed package present, a record's subdir equal to its
   directory, each name once, every package equal to its record (sha256, else md5; size);
   ``pypi/`` holds only wheels;
5. ``environment.yml`` names exactly the channel's packages and the wheels;
6. every conda dependency and constraint is satisfied inside the pack (py-rattler's
   ``MatchSpec``; virtual packages are the installing machine's business).

A path gets one finding: the first (most basic) one made about it.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml
from packaging.utils import (
    InvalidWheelFilename,
    canonicalize_name,
    canonicalize_version,
    parse_wheel_filename,
)
from rattler import Channel, MatchSpec, RepoData, RepoDataRecord
from rattler.exceptions import IoError

from pixi_pack_src.archive.metadata import (
    PIXI_PACK_JSON,
    PROVENANCE_JSON,
    SBOM_JSON,
    PackMetadata,
    Provenance,
    is_valid_subdir,
    read_pixi_pack_json,
    read_provenance,
)
from pixi_pack_src.errors import ArchiveError, PackFormatError
from pixi_pack_src.layout import CHANNEL_DIR, PYPI_DIR, TAMPERED
from pixi_pack_src.verify.model import Finding, MemberDigest, PackContents
from pixi_pack_src.verify.scan import ENVIRONMENT_YML

logger = logging.getLogger(__name__)

REPODATA_JSON = "repodata.json"
VerifiedAgainst = Literal["pixi-pack-src.json", "repodata.json"]


@dataclass
class Inspection:
    """What the checks read and found. ``records`` maps the archive paths of the conda
    packages the channel lists to their repodata records (``url``: under ``channel_root``)."""

    label: str
    meta: PackMetadata | None = None
    provenance: Provenance | None = None
    records: dict[str, RepoDataRecord] = field(default_factory=dict)
    wheels: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    verified: int = 0
    verified_against: VerifiedAgainst = "repodata.json"

    def add(self, finding: Finding) -> None:
        """Record ``finding`` unless its path already has one."""
        if finding.path is not None and any(f.path == finding.path for f in self.findings):
            logger.debug("also: %s", finding.message)
            return
        self.findings.append(finding)

    def warn(self, message: str) -> None:
        logger.warning("%s", message)
        self.warnings.append(message)

    def raise_first(self) -> None:
        """``unpack``'s way: the first finding as an error (metadata: PackFormatError)."""
        if not self.findings:
            return
        first = self.findings[0]
        for other in self.findings[1:]:
            logger.info("also: %s", other.message)
        if first.code == "metadata":
            raise PackFormatError(first.message, hint=first.hint)
        raise ArchiveError(first.message, hint=first.hint)


def check_pack(
    contents: PackContents,
    *,
    channel_root: Path | None = None,
    after_metadata: Callable[[PackMetadata], None] | None = None,
    md5_of: Callable[[str], str] | None = None,
) -> Inspection:
    """Run every check on ``contents`` (see the module doc).

    ``channel_root`` is where the pack's ``channel/`` is on disk (``unpack``: the records'
    URLs point there); by default a placeholder. ``after_metadata`` runs once
    ``pixi-pack.json`` was read (``unpack`` checks the platform there, before the rest).
    ``md5_of`` computes the md5 of a file whose digest lacks it, when a record has only md5.
    """
    result = Inspection(label=contents.label)
    label = contents.label
    for finding in contents.refused:
        result.add(finding)
    if any(f.code == "unreadable" and f.path is None for f in contents.refused):
        return result  # a damaged tar: what was read is not the pack

    # 2. metadata
    if PIXI_PACK_JSON not in contents.documents:
        result.add(
            Finding(
                "metadata",
                PIXI_PACK_JSON,
                f"{label} is not a pixi-pack archive: it has no {PIXI_PACK_JSON}",
                "pass an archive written by pixi-pack-src or pixi-pack",
            )
        )
        return result
    try:
        meta = read_pixi_pack_json(contents.documents[PIXI_PACK_JSON], source=label)
    except PackFormatError as exc:
        result.add(Finding("metadata", PIXI_PACK_JSON, exc.message, exc.hint))
        return result
    result.meta = meta
    if after_metadata is not None:
        after_metadata(meta)
    if PROVENANCE_JSON in contents.documents:
        try:
            result.provenance = read_provenance(contents.documents[PROVENANCE_JSON], source=label)
        except PackFormatError as exc:
            result.add(Finding("metadata", PROVENANCE_JSON, exc.message, exc.hint))
    else:
        logger.info("%s has no %s: a plain format-1 archive", label, PROVENANCE_JSON)
    provenance = result.provenance
    if provenance is not None and provenance.platform.subdir != meta.platform:
        result.add(
            Finding(
                "metadata",
                PROVENANCE_JSON,
                f"{label} is inconsistent: {PIXI_PACK_JSON} says {meta.platform}, "
                f"{PROVENANCE_JSON} says {provenance.platform.subdir}",
                TAMPERED,
            )
        )

    # 3. every byte against pixi-pack-src.json
    if provenance is not None:
        for finding in provenance_findings(provenance, contents.files, label):
            result.add(finding)
        result.verified_against = "pixi-pack-src.json"

    # 4. the channel and the wheels
    records, channel = load_channel(
        contents.files, contents.documents, platform=meta.platform, label=label, root=channel_root
    )
    for finding in channel:
        result.add(finding)
    result.records = records
    for finding in record_findings(
        records,
        contents.files,
        label,
        by_provenance=provenance is not None,
        md5_of=md5_of,
        warn=result.warn,
    ):
        result.add(finding)
    wheels, layout = list_wheels(contents.files, label)
    for finding in layout:
        result.add(finding)
    result.wheels = wheels
    verified = sum(1 for a in records if a in contents.files)
    if provenance is not None:
        verified += len(wheels)
    elif wheels:
        result.warn(
            f"{len(wheels)} wheel(s) in {label} cannot be verified: it has no "
            f"{PROVENANCE_JSON} (a plain format-1 archive records no wheel hashes)"
        )
    result.verified = verified
    if provenance is None:  # with it, an unknown file is a `not-listed` finding above
        known = {PIXI_PACK_JSON, ENVIRONMENT_YML, SBOM_JSON}
        for name in sorted(contents.files):
            if name.split("/", 1)[0] not in (CHANNEL_DIR, PYPI_DIR) and name not in known:
                result.warn(f"{label} holds {name}, which no record describes (unpack ignores it)")

    # 5. environment.yml, 6. dependencies
    for finding in environment_findings(contents, records, wheels, label, warn=result.warn):
        result.add(finding)
    for finding in dependency_findings(records, label):
        result.add(finding)
    return result


# -- 3. provenance ----------------------------------------------------------------------------


def _mismatch(path: str, label: str, kind: str, recorded: str, actual: str, by: str) -> Finding:
    return Finding(
        "mismatch",
        path,
        f"{kind} mismatch for {path} in {label}: {by} records {recorded}, the file has {actual}",
        TAMPERED,
    )


def provenance_findings(
    provenance: Provenance, files: Mapping[str, MemberDigest], label: str
) -> list[Finding]:
    """Files not listed, listed files missing, and every sha256/size that differs."""
    findings: list[Finding] = []
    covered = provenance.covered_paths() | {PROVENANCE_JSON}
    for stray in sorted(set(files) - covered):
        findings.append(
            Finding(
                "not-listed",
                stray,
                f"{label} holds {stray}, which {PROVENANCE_JSON} does not list",
                TAMPERED,
            )
        )
    expected = provenance.expected()
    for missing in sorted(set(expected) - set(files)):
        findings.append(
            Finding(
                "missing",
                missing,
                f"{PROVENANCE_JSON} in {label} lists {missing}, but the archive has no such file",
                TAMPERED,
            )
        )
    for name, (sha256, size) in sorted(expected.items()):
        digest = files.get(name)
        if digest is None:
            continue
        if digest.sha256 != sha256.lower():
            findings.append(
                _mismatch(name, label, "sha256", sha256, digest.sha256, PROVENANCE_JSON)
            )
        elif size is not None and size != digest.size:
            findings.append(
                _mismatch(name, label, "size", f"{size} bytes", f"{digest.size}", PROVENANCE_JSON)
            )
    return findings


# -- 4. channel and wheels --------------------------------------------------------------------


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
                    f"{CHANNEL_DIR}/noarch; the archive is damaged or was tampered with",
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
                    "a file the channel does not describe cannot be verified; the archive is "
                    "damaged or was tampered with",
                )
            )
        for missing in sorted(set(listed) - on_disk):
            findings.append(
                Finding(
                    "missing",
                    f"{where}/{missing}",
                    f"{repodata_path} in {label} names {missing}, but the archive has no "
                    f"{where}/{missing}",
                    "the archive is incomplete or was tampered with; pack it again",
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
    md5_of: Callable[[str], str] | None = None,
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
                    _mismatch(arcname, label, "sha256", record.sha256.hex(), digest.sha256, by)
                )
                continue
        elif record.md5 is not None:
            md5 = digest.md5 if digest.md5 is not None else md5_of(arcname) if md5_of else None
            if md5 is not None and record.md5.hex() != md5:
                findings.append(_mismatch(arcname, label, "md5", record.md5.hex(), md5, by))
                continue
        elif not by_provenance and warn is not None:
            warn(f"{arcname} in {label} cannot be verified: its record has no hash")
            continue
        if record.size is not None and record.size != digest.size:
            findings.append(
                _mismatch(arcname, label, "size", f"{record.size} bytes", f"{digest.size}", by)
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


# -- 5. environment.yml -----------------------------------------------------------------------


def _wheel_pin(arcname: str) -> tuple[str, str] | None:
    try:
        name, version, _, _ = parse_wheel_filename(arcname.rsplit("/", 1)[-1])
    except InvalidWheelFilename:
        return None
    return str(name), canonicalize_version(version)


def environment_findings(
    contents: PackContents,
    records: Mapping[str, RepoDataRecord],
    wheels: Sequence[str],
    label: str,
    *,
    warn: Callable[[str], None],
) -> list[Finding]:
    """``environment.yml`` lists exactly the channel's packages (``name=version=build``) and,
    in its ``pip:`` section, the wheels (``name==version``)."""
    data = contents.documents.get(ENVIRONMENT_YML)
    if data is None:
        if ENVIRONMENT_YML not in contents.files:
            warn(f"{label} has no {ENVIRONMENT_YML}: conda and micromamba cannot install it")
        return []
    where = f"{ENVIRONMENT_YML} in {label}"
    try:
        doc = yaml.safe_load(data.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        return [Finding("environment-yml", ENVIRONMENT_YML, f"{where} is not YAML: {exc}")]
    deps = doc.get("dependencies") if isinstance(doc, dict) else None
    if not isinstance(deps, list):
        return [Finding("environment-yml", ENVIRONMENT_YML, f"{where} has no `dependencies` list")]
    listed: set[str] = set()
    pins: set[tuple[str, str]] = set()
    findings: list[Finding] = []
    for item in deps:
        if isinstance(item, str):
            listed.add(item.strip())
        elif isinstance(item, dict) and isinstance(item.get("pip"), list):
            for line in item["pip"]:
                text = str(line).strip()
                if text.startswith("-"):
                    continue
                name, sep, version = text.partition("==")
                if not sep:
                    findings.append(
                        Finding(
                            "environment-yml",
                            ENVIRONMENT_YML,
                            f"{where} has the pip requirement {text!r}, not name==version",
                        )
                    )
                    continue
                pins.add((str(canonicalize_name(name)), canonicalize_version(version)))
        else:
            findings.append(
                Finding(
                    "environment-yml",
                    ENVIRONMENT_YML,
                    f"{where} has an unexpected entry {json.dumps(item, default=str)}",
                )
            )
    channel = {
        f"{r.name.normalized}={r.version}={r.build}": arcname for arcname, r in records.items()
    }
    for spec in sorted(set(channel) - listed):
        findings.append(
            Finding(
                "environment-yml",
                channel[spec],
                f"{where} does not name {spec}, which the channel holds ({channel[spec]})",
                TAMPERED,
            )
        )
    for spec in sorted(listed - set(channel)):
        findings.append(
            Finding(
                "environment-yml",
                ENVIRONMENT_YML,
                f"{where} names {spec}, which the channel does not hold",
                TAMPERED,
            )
        )
    present = {pin: arcname for arcname in wheels if (pin := _wheel_pin(arcname)) is not None}
    for pin in sorted(set(present) - pins):
        findings.append(
            Finding(
                "environment-yml",
                present[pin],
                f"{where} does not name {pin[0]}=={pin[1]}, which {present[pin]} is",
                TAMPERED,
            )
        )
    for pin in sorted(pins - set(present)):
        findings.append(
            Finding(
                "environment-yml",
                ENVIRONMENT_YML,
                f"{where} names {pin[0]}=={pin[1]}, but {label} has no such wheel",
                TAMPERED,
            )
        )
    return findings


# -- 6. dependencies --------------------------------------------------------------------------


def _spec(text: str) -> MatchSpec | None:
    try:
        return MatchSpec(text)
    except Exception:  # noqa: BLE001 - py-rattler raises several types for a bad spec
        return None


def dependency_findings(records: Mapping[str, RepoDataRecord], label: str) -> list[Finding]:
    """Every ``depends`` satisfied and every ``constrains`` respected inside the pack."""
    by_name = {r.name.normalized: (arcname, r) for arcname, r in records.items()}
    findings: list[Finding] = []
    for arcname, record in sorted(records.items()):
        who = f"{record.name.normalized}-{record.version}-{record.build}"
        problems: list[str] = []
        for text in record.depends:
            spec = _spec(text)
            name = spec.name.normalized if spec is not None and spec.name is not None else None
            if name is None:
                problems.append(f"cannot read its dependency {text!r}")
                continue
            if name.startswith("__"):
                continue  # virtual: the installing machine's (unpack checks them)
            found = by_name.get(name)
            if found is None:
                problems.append(f"its dependency `{text}` is not in {label}")
            elif not spec.matches(found[1]):  # type: ignore[union-attr]
                other = found[1]
                problems.append(
                    f"its dependency `{text}` is not satisfied by "
                    f"{name}-{other.version}-{other.build}"
                )
        for text in record.constrains:
            spec = _spec(text)
            if spec is None or spec.name is None:
                continue
            found = by_name.get(spec.name.normalized)
            if found is not None and not spec.matches(found[1]):
                other = found[1]
                problems.append(
                    f"its constraint `{text}` is violated by "
                    f"{spec.name.normalized}-{other.version}-{other.build}"
                )
        if problems:
            findings.append(
                Finding(
                    "dependency",
                    arcname,
                    f"{who} ({arcname}): " + "; ".join(problems),
                    "the pack is incomplete: pack it again from a consistent lock, or inject "
                    "the missing package",
                )
            )
    return findings
