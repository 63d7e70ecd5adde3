"""``verify --lock``: does the pack hold exactly what one environment/platform of a lock names?

Downloaded packages are compared by archive path and hash (the lock's sha256, else md5);
built ones (conda source packages; PyPI sdists, git sources and source trees, which become
wheels) by name, and by version where the lock has one. Each difference is one finding:
``lock-missing`` (the lock names it, the pack lacks it), ``lock-extra`` (the pack holds it,
the lock does not name it -- injected packages show up here, as they should) or
``lock-different`` (both have it, with other bytes or another version).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from packaging.utils import canonicalize_name, canonicalize_version
from rattler import RepoDataRecord

from pixi_pack_src.archive.metadata import Provenance
from pixi_pack_src.layout import wheel_path
from pixi_pack_src.lock.model import Hashes, LockedEnvironment
from pixi_pack_src.verify.environment import wheel_pin
from pixi_pack_src.verify.model import Finding, MemberDigest

_HINT = "the archive was not packed from this lock (or from another environment/platform of it)"


def _where(env: LockedEnvironment) -> str:
    return f"{env.lock_path.name} ({env.environment}, {env.platform.name})"


def _differs(hashes: Hashes, digest: MemberDigest) -> str | None:
    """Why the file's bytes are not the locked ones (``None``: they are, or cannot be told)."""
    if hashes.sha256 is not None and hashes.sha256.lower() != digest.sha256:
        return f"sha256 {digest.sha256}, the lock records {hashes.sha256.lower()}"
    if (
        hashes.sha256 is None
        and hashes.md5 is not None
        and digest.md5 is not None
        and hashes.md5.lower() != digest.md5
    ):
        return f"md5 {digest.md5}, the lock records {hashes.md5.lower()}"
    return None


def _different_bytes(
    arcname: str, hashes: Hashes, digest: MemberDigest, label: str, where: str
) -> list[Finding]:
    """A ``lock-different`` finding when the file's bytes are not the locked ones."""
    why = _differs(hashes, digest)
    if why is None:
        return []
    message = f"{arcname} in {label} differs from {where}: the file has {why}"
    return [Finding("lock-different", arcname, message, _HINT)]


def lock_findings(
    env: LockedEnvironment,
    *,
    records: Mapping[str, RepoDataRecord],
    wheels: Sequence[str],
    files: Mapping[str, MemberDigest],
    provenance: Provenance | None,
    label: str,
) -> list[Finding]:
    """Every difference between ``env`` and the pack's packages and wheels."""
    where = _where(env)
    findings: list[Finding] = []
    origins = (
        {a.path: str(a.origin.get("type", "")) for a in provenance.artifacts} if provenance else {}
    )
    conda_left = dict(records)
    by_name = {r.name.normalized: arcname for arcname, r in records.items()}

    def take(arcname: str) -> None:
        conda_left.pop(arcname, None)

    for binary in sorted(env.conda, key=lambda b: b.archive_path):
        arcname = binary.archive_path
        if arcname in records:
            take(arcname)
            digest = files.get(arcname)
            if digest is not None:
                findings += _different_bytes(arcname, binary.hashes, digest, label, where)
            continue
        other = by_name.get(binary.name)
        if other is not None and other in conda_left:
            take(other)
            findings.append(
                Finding(
                    "lock-different",
                    other,
                    f"{where} names {binary.file_name}, but {label} holds {other}",
                    _HINT,
                )
            )
            continue
        findings.append(
            Finding(
                "lock-missing",
                arcname,
                f"{where} names {binary.name} {binary.version} ({binary.file_name}), which "
                f"{label} does not hold",
                _HINT,
            )
        )
    for source in sorted(env.sources, key=lambda s: s.name):
        other = by_name.get(source.name)
        if other is None or other not in conda_left:
            findings.append(
                Finding(
                    "lock-missing",
                    f"conda-source:{source.name}",
                    f"{where} names the source package {source.name} ({source.location}), "
                    f"which {label} does not hold",
                    _HINT,
                )
            )
            continue
        take(other)
        record = records[other]
        if source.version is not None and str(record.version) != source.version:
            findings.append(
                Finding(
                    "lock-different",
                    other,
                    f"{other} in {label} is version {record.version}, {where} names "
                    f"{source.name} {source.version}",
                    _HINT,
                )
            )
    findings += _extras(conda_left, origins, label, where)

    wheels_left = {a: wheel_pin(a) for a in wheels}
    by_wheel_name = {key[0]: a for a, key in wheels_left.items() if key is not None}
    for pkg in sorted(env.pypi, key=lambda p: p.name):
        name = str(canonicalize_name(pkg.name))
        if pkg.is_wheel and pkg.file_name:
            arcname = wheel_path(pkg.file_name)
            if arcname in wheels_left:
                wheels_left.pop(arcname)
                findings += _different_bytes(arcname, pkg.hashes, files[arcname], label, where)
                continue
        other = by_wheel_name.get(name)
        if other is None or other not in wheels_left:
            findings.append(
                Finding(
                    "lock-missing",
                    wheel_path(pkg.file_name) if pkg.is_wheel and pkg.file_name else f"pypi:{name}",
                    f"{where} names the PyPI package {pkg.name} {pkg.version or ''}".rstrip()
                    + f", which {label} does not hold",
                    _HINT,
                )
            )
            continue
        key = wheels_left.pop(other)
        if pkg.is_wheel or (
            pkg.version is not None
            and key is not None
            and key[1] != canonicalize_version(pkg.version)
        ):
            findings.append(
                Finding(
                    "lock-different",
                    other,
                    f"{where} names {pkg.file_name or f'{pkg.name} {pkg.version}'}, but {label} "
                    f"holds {other}",
                    _HINT,
                )
            )
    findings += _extras(wheels_left, origins, label, where)
    return findings


def _extras(
    left: Iterable[str], origins: Mapping[str, str], label: str, where: str
) -> list[Finding]:
    """A ``lock-extra`` finding for each file of the pack that the lock does not name."""
    findings = []
    for arcname in sorted(left):
        origin = origins.get(arcname)
        how = f" (origin: {origin})" if origin else ""
        findings.append(
            Finding(
                "lock-extra",
                arcname,
                f"{label} holds {arcname}{how}, which {where} does not name",
                _HINT,
            )
        )
    return findings
