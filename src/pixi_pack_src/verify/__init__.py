"""``verify``: is a pack what it says it is, and (``--lock``) what a lock says it should be?

Offline and without installing anything: the pack (a tar, a self-extracting script, standard
input, or a directory) is read once as a stream (:mod:`.scan`), then the checks ``unpack``
runs too (:mod:`.checks`: metadata and every byte; :mod:`.channel`: the channel and wheels;
:mod:`.environment`: environment.yml and dependencies) and, with a lock, the comparison with one of its
environment/platforms (:mod:`.lockdiff`). Every problem is a :class:`Finding`; the report
lists them all (docs/verify.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

from pixi_pack_src import __version__
from pixi_pack_src.errors import UsageError
from pixi_pack_src.verify.checks import Inspection, VerifiedAgainst, check_pack
from pixi_pack_src.verify.lockdiff import lock_findings
from pixi_pack_src.verify.model import (
    FINDING_CODES,
    Finding,
    FindingCode,
    MemberDigest,
    PackContents,
)
from pixi_pack_src.verify.scan import STDIN_LABEL, scan

if TYPE_CHECKING:
    from pixi_pack_src.lock.model import LockedEnvironment

JSON_VERSION = 1
LOCK_FILE = "pixi.lock"

__all__ = [
    "FINDING_CODES",
    "Finding",
    "FindingCode",
    "Inspection",
    "MemberDigest",
    "PackContents",
    "VerifyOptions",
    "VerifyReport",
    "check_pack",
    "verify",
]


@dataclass(frozen=True)
class VerifyOptions:
    """What ``pixi-pack-src verify`` was asked (see the CLI for the flags)."""

    pack: Path | Literal["-"]
    lock: Path | None = None  # pixi.lock, or the directory holding it
    environment: str | None = None  # default: the pack's (pixi-pack-src.json), else "default"
    platform: str | None = None  # default: the pack's platform


@dataclass(frozen=True)
class LockSelection:
    file: str
    environment: str
    platform: str


@dataclass(frozen=True)
class VerifyReport:
    """The outcome: ``ok`` when there are no findings (warnings do not count)."""

    label: str
    platform: str | None
    environment: str | None
    files: int
    bytes: int
    conda_packages: int
    wheels: int
    verified: int
    verified_against: VerifiedAgainst | None
    findings: tuple[Finding, ...]
    warnings: tuple[str, ...]
    lock: LockSelection | None = None
    inspection: Inspection | None = field(default=None, compare=False, repr=False)
    contents: PackContents | None = field(default=None, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_json(self) -> dict[str, Any]:
        """The versioned ``--json`` document (docs/json.md)."""
        return {
            "version": JSON_VERSION,
            "tool": {"name": "pixi-pack-src", "version": __version__},
            "archive": self.label,
            "ok": self.ok,
            "platform": self.platform,
            "environment": self.environment,
            "files": self.files,
            "bytes": self.bytes,
            "conda_packages": self.conda_packages,
            "wheels": self.wheels,
            "verified": self.verified,
            "verified_against": self.verified_against,
            "lock": None
            if self.lock is None
            else {
                "file": self.lock.file,
                "environment": self.lock.environment,
                "platform": self.lock.platform,
            },
            "findings": [f.to_json() for f in self.findings],
            "warnings": list(self.warnings),
        }


def _lock_path(path: Path) -> Path:
    if path.is_dir():
        return path / LOCK_FILE
    return path


def _select(options: VerifyOptions, inspection: Inspection) -> LockedEnvironment | None:
    if options.lock is None:
        if options.environment is not None or options.platform is not None:
            raise UsageError(
                "-e/--environment and -p/--platform select what to compare in --lock",
                hint="pass --lock pixi.lock too, or leave them out",
            )
        return None
    # here, not at the top: unpack (and the self-extracting unpacker) import this package
    from pixi_pack_src.lock.lockfile import load_lock

    lock = load_lock(_lock_path(options.lock))
    provenance = inspection.provenance
    environment = options.environment or (provenance.environment if provenance else "default")
    platform = options.platform
    if platform is None:
        if provenance is not None:
            platform = provenance.platform.name
        elif inspection.meta is not None:
            platform = inspection.meta.platform
        else:
            raise UsageError(
                "the pack does not say its platform: pass -p/--platform to compare with --lock"
            )
    return lock.select(environment, platform)


def verify(
    options: VerifyOptions, *, stdin: BinaryIO | None = None, wheel_details: bool = False
) -> VerifyReport:
    """Read and check the pack ``options.pack`` (see the module doc); never raises for what
    the pack holds -- that is the report's findings -- only for bad options or a lock that
    cannot be read. ``wheel_details`` also reads each wheel's METADATA (for the SBOM)."""
    if options.lock is not None and not _lock_path(options.lock).exists():
        raise UsageError(
            f"{_lock_path(options.lock)} does not exist",
            hint="pass --lock with the pixi.lock the archive was packed from",
        )
    if options.pack == "-" or str(options.pack) == "-":
        if stdin is None:
            raise UsageError(
                "no standard input to read the pack from",
                hint="pipe an archive in (`cat environment.tar | pixi-pack-src verify -`)",
            )
        contents = scan(stdin, label=STDIN_LABEL, wheel_details=wheel_details)
    else:
        contents = scan(Path(options.pack), wheel_details=wheel_details)
    inspection = check_pack(contents)
    findings = list(inspection.findings)
    env = _select(options, inspection)
    if env is not None:
        seen = {f.path for f in findings if f.path is not None}
        for finding in lock_findings(
            env,
            records=inspection.records,
            wheels=inspection.wheels,
            files=contents.files,
            provenance=inspection.provenance,
            label=contents.label,
        ):
            if finding.path not in seen:
                findings.append(finding)
    provenance = inspection.provenance
    return VerifyReport(
        label=contents.label,
        platform=inspection.meta.platform if inspection.meta else None,
        environment=provenance.environment if provenance else None,
        files=len(contents.files),
        bytes=sum(d.size for d in contents.files.values()),
        conda_packages=len(inspection.records),
        wheels=len(inspection.wheels),
        verified=inspection.verified,
        verified_against=inspection.verified_against if inspection.meta else None,
        findings=tuple(findings),
        warnings=tuple(inspection.warnings),
        lock=None
        if env is None
        else LockSelection(env.lock_path.name, env.environment, env.platform.name),
        inspection=inspection,
        contents=contents,
    )
