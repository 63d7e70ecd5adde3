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

This module runs them in that order (:func:`check_pack`) and holds steps 1-3; step 4 is
:mod:`.channel`, steps 5 and 6 :mod:`.environment`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from rattler import RepoDataRecord

from pixi_pack_src.archive.metadata import (
    PIXI_PACK_JSON,
    PROVENANCE_JSON,
    SBOM_JSON,
    PackMetadata,
    Provenance,
    read_pixi_pack_json,
    read_provenance,
)
from pixi_pack_src.errors import ArchiveError, PackFormatError
from pixi_pack_src.layout import CHANNEL_DIR, PYPI_DIR, TAMPERED
from pixi_pack_src.verify.channel import (
    list_wheels,
    load_channel,
    record_findings,
)
from pixi_pack_src.verify.environment import dependency_findings, environment_findings
from pixi_pack_src.verify.model import Finding, MemberDigest, PackContents, mismatch_finding
from pixi_pack_src.verify.scan import ENVIRONMENT_YML

logger = logging.getLogger(__name__)

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
    md5_of: Callable[[str], str | None] | None = None,
) -> Inspection:
    """Run every check on ``contents`` (see the module doc).

    ``channel_root`` is where the pack's ``channel/`` is on disk (``unpack``: the records'
    URLs point there); by default a placeholder. ``after_metadata`` runs once
    ``pixi-pack.json`` was read (``unpack`` checks the platform there, before the rest).
    ``md5_of`` computes the md5 of a file whose digest lacks it, when a record has only md5
    (``None``: the file is not on disk, as unpack reads packages straight from the tar only
    when ``pixi-pack-src.json`` gives every file's sha256).
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
                mismatch_finding(name, label, "sha256", sha256, digest.sha256, PROVENANCE_JSON)
            )
        elif size is not None and size != digest.size:
            findings.append(
                mismatch_finding(
                    name, label, "size", f"{size} bytes", f"{digest.size}", PROVENANCE_JSON
                )
            )
    return findings
