"""The SBOM's bytes: :func:`sbom_json` serialises :func:`~.document.build_bom`'s document
with the library's own JSON writer (without its quadratic re-validation where the document is
already what it would make), and :func:`sbom_of_pack` makes the SBOM of a finished pack."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from cyclonedx.exception.model import (
    LicenseExpressionAlongWithOthersException,
    UnknownComponentDependencyException,
)
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component
from cyclonedx.model.license import LicenseExpression
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.schema.schema import SCHEMA_VERSIONS

from pixi_pack_src.archive.metadata import (
    SBOM_JSON,
)
from pixi_pack_src.errors import ArchiveError
from pixi_pack_src.sbom.document import build_bom
from pixi_pack_src.sbom.inputs import SbomInput, input_from_pack
from pixi_pack_src.verify import VerifyOptions, VerifyReport, verify


def sbom_json(inp: SbomInput) -> bytes:
    """``sbom.cdx.json``: CycloneDX 1.6 JSON, 2-space indent, final newline."""
    return (_FastJson(build_bom(inp)).output_as_string(indent=2) + "\n").encode("utf-8")


class _FastJson(JsonV1Dot6):
    """cyclonedx-python-lib's CycloneDX 1.6 JSON output, the same bytes, in linear time for
    the boms :func:`build_bom` makes.

    The library's ``generate`` first runs ``Bom.validate`` (which looks every component up in
    the dependency list: quadratic, 0.6 s for 2,000 packages), then rebuilds the dependency
    graph flat and merged, and gives duplicate bom-refs unique ones. :func:`_problem` makes
    the same checks as ``validate`` in linear time; when the bom-refs are unique and the graph
    is already flat and merged (as :func:`build_bom` makes it) both rewrites would give back
    the same bom, so the library's serializer runs on it directly. Any other bom goes through
    the library's own path. (``tests/unit/test_sbom.py`` compares both outputs.)
    """

    def generate(self, force_regeneration: bool = False) -> None:
        if self.generated and not force_regeneration:
            return
        bom = self.get_bom()
        everything = _all_components(bom)
        if not _fast_path_holds(bom, everything):
            super().generate(force_regeneration=force_regeneration)
            return
        problem = _problem(bom, everything)
        if problem is not None:
            raise problem
        text = bom.as_json(view_=SCHEMA_VERSIONS[self.schema_version_enum])  # type: ignore[attr-defined]
        doc: dict[str, object] = json.loads(text)
        doc.update(
            {
                "$schema": self._get_schema_uri(),
                "bomFormat": "CycloneDX",
                "specVersion": self.schema_version.to_version(),
            }
        )
        self._bom_json = doc
        self.generated = True


def _fast_path_holds(bom: Bom, everything: Sequence[Component]) -> bool:
    """Unique, non-empty bom-refs; every component and the root with exactly one dependency
    entry; no entry that depends on something with dependencies of its own (flat)."""
    refs: set[str] = set()
    for component in everything:
        value = component.bom_ref.value
        if value is None or value in refs:
            return False
        refs.add(value)
    if bom.services or bom.vulnerabilities:
        return False
    listed: set[str] = set()
    for dep in bom.dependencies:
        value = dep.ref.value
        if value is None or value in listed or any(d.dependencies for d in dep.dependencies):
            return False
        listed.add(value)
    top = [c.bom_ref.value for c in bom.components]
    if bom.metadata.component is not None:
        top.append(bom.metadata.component.bom_ref.value)
    return listed == set(top)


def _all_components(bom: Bom) -> list[Component]:
    """The root, the components and their nested components (not through sets: a
    component's hash is that of all its fields)."""
    found: list[Component] = []
    todo = [bom.metadata.component] if bom.metadata.component is not None else []
    todo.extend(bom.components)
    while todo:
        component = todo.pop()
        found.append(component)
        todo.extend(component.components)
    return found


def _problem(bom: Bom, everything: Sequence[Component]) -> Exception | None:
    """What ``Bom.validate`` raises for ``bom`` (its checks 1 and 3; check 0 holds on the
    fast path), in linear time."""
    known = {c.bom_ref for c in everything}
    used = {d.ref for d in bom.dependencies} | {
        child.ref for d in bom.dependencies for child in d.dependencies
    }
    if used - known:
        return UnknownComponentDependencyException(
            "One or more Components have Dependency references to Components/Services that "
            f"are not known in this BOM. They are: {used - known}"
        )
    elements: list[BomMetaData | Component] = [bom.metadata, *everything]
    for element in elements:
        licenses = element.licenses
        if len(licenses) > 1 and any(isinstance(li, LicenseExpression) for li in licenses):
            return LicenseExpressionAlongWithOthersException(
                f"Found LicenseExpression along with others licenses in: {element!r}"
            )
    return None


# -- for a pack that is already written -------------------------------------------------------


@dataclass(frozen=True)
class PackSbom:
    """The SBOM of a written pack: the embedded one when ``pixi-pack-src.json`` vouches for
    it, else one made from what the pack holds (``embedded`` says which)."""

    data: bytes
    embedded: bool
    report: VerifyReport


def sbom_of_pack(pack: Path | Literal["-"], *, stdin: BinaryIO | None = None) -> PackSbom:
    """Verify ``pack`` and return its SBOM; a pack with findings raises :class:`ArchiveError`
    (an SBOM of bytes that are not what they claim would vouch for the wrong thing)."""
    report = verify(VerifyOptions(pack=pack), stdin=stdin, wheel_details=True)
    if not report.ok:
        first = report.findings[0]
        raise ArchiveError(
            f"{report.label} does not verify ({len(report.findings)} finding(s)); the first: "
            f"{first.message}",
            hint="run `pixi-pack-src verify` on it for the whole list",
        )
    contents, inspection = report.contents, report.inspection
    assert contents is not None
    assert inspection is not None
    embedded = contents.documents.get(SBOM_JSON)
    provenance = inspection.provenance
    if embedded is not None and provenance is not None and SBOM_JSON in provenance.covered_paths():
        return PackSbom(embedded, True, report)
    return PackSbom(sbom_json(input_from_pack(contents, inspection)), False, report)
