"""Steps 5 and 6 of the checks: the environment a pack describes hangs together.

``environment.yml`` names exactly the channel's packages (``name=version=build``) and, in its
``pip:`` section, the wheels (``name==version``); every conda dependency and constraint is
satisfied inside the pack (py-rattler's ``MatchSpec``; virtual packages are the installing
machine's business, checked by ``unpack``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence

import yaml
from packaging.utils import (
    InvalidWheelFilename,
    canonicalize_name,
    canonicalize_version,
    parse_wheel_filename,
)
from rattler import MatchSpec, RepoDataRecord

from pixi_pack_src.layout import TAMPERED
from pixi_pack_src.verify.model import Finding, PackContents
from pixi_pack_src.verify.scan import ENVIRONMENT_YML


def wheel_pin(arcname: str) -> tuple[str, str] | None:
    """``(name, version)`` of a wheel's archive path, both canonical; ``None`` for a file name
    that is not a wheel's."""
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
    present = {pin: arcname for arcname in wheels if (pin := wheel_pin(arcname)) is not None}
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
