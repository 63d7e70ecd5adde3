"""What a pack holds (:class:`PackContents`) and what its checks found (:class:`Finding`).

A :class:`PackContents` is built once per pack -- from a tar stream, a self-extracting
script, a directory, or the files ``unpack`` extracted -- and the checks
(:mod:`pixi_pack_src.verify.checks` with :mod:`.channel` and :mod:`.environment`) only read it:
``verify`` and ``unpack`` run the same checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from pixi_pack_src.layout import TAMPERED

FindingCode: TypeAlias = Literal[
    "unsafe-member",  # refused by the extraction checks (links, traversal, duplicates, limits)
    "unreadable",  # not a tar, truncated, trailing data
    "metadata",  # pixi-pack.json / pixi-pack-src.json invalid or contradicting each other
    "not-listed",  # a file that pixi-pack-src.json (or its subdir's repodata.json) does not list
    "missing",  # listed, but the pack has no such file
    "mismatch",  # sha256, md5 or size differs from pixi-pack-src.json or repodata.json
    "layout",  # channel/ and pypi/: a foreign subdir, a non-package file, two of one name
    "environment-yml",  # environment.yml disagrees with the channel and the wheels
    "dependency",  # a conda dependency or constraint not satisfied inside the pack
    "lock-missing",  # --lock: the lock names it, the pack does not hold it
    "lock-extra",  # --lock: the pack holds it, the lock does not name it
    "lock-different",  # --lock: both have it, with other bytes or another version
]
FINDING_CODES: tuple[FindingCode, ...] = (
    "unsafe-member",
    "unreadable",
    "metadata",
    "not-listed",
    "missing",
    "mismatch",
    "layout",
    "environment-yml",
    "dependency",
    "lock-missing",
    "lock-extra",
    "lock-different",
)


@dataclass(frozen=True)
class Finding:
    """One problem: its code, the archive path it is about (if one), a message, a hint."""

    code: FindingCode
    path: str | None
    message: str
    hint: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {"code": self.code, "path": self.path, "message": self.message, "hint": self.hint}


def mismatch_finding(
    path: str, label: str, kind: str, recorded: str, actual: str, by: str
) -> Finding:
    """The finding for a file whose ``kind`` (sha256, md5, size) differs from what ``by`` (the
    document that records it) says."""
    return Finding(
        "mismatch",
        path,
        f"{kind} mismatch for {path} in {label}: {by} records {recorded}, the file has {actual}",
        TAMPERED,
    )


@dataclass(frozen=True)
class MemberDigest:
    """A regular file of the pack: sha256, size, and md5 when it was computed."""

    sha256: str
    size: int
    md5: str | None = None


@dataclass(frozen=True)
class WheelDetails:
    """What the SBOM needs from a wheel's METADATA (read only when asked for)."""

    license_expression: str | None = None
    license: str | None = None
    classifiers: tuple[str, ...] = ()
    requires_dist: tuple[str, ...] = ()


@dataclass
class PackContents:
    """Every regular file of a pack with its digest; the small documents' bytes.

    ``documents`` holds ``pixi-pack.json``, ``pixi-pack-src.json``, ``environment.yml``,
    ``sbom.cdx.json`` and every ``channel/<subdir>/repodata.json`` (bounded by the metadata
    limit of the member checks). ``refused`` are the findings made while reading (unsafe
    members, a damaged tar); ``mtime`` the tar's member time (``None`` for a directory).
    """

    label: str
    files: dict[str, MemberDigest] = field(default_factory=dict)
    documents: dict[str, bytes] = field(default_factory=dict)
    wheels: dict[str, WheelDetails] = field(default_factory=dict)
    refused: list[Finding] = field(default_factory=list)
    mtime: int | None = None
