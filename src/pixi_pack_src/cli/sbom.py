"""`pixi-pack-src sbom`: the CycloneDX 1.6 SBOM of a pack, on stdout (or -o FILE).

Only parses options, calls :func:`pixi_pack_src.sbom.sbom_of_pack` and prints. The pack is
verified first: one with findings gets no SBOM (exit 1).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from pixi_pack_src.archive.atomic import atomic_file
from pixi_pack_src.cli import STATE, app
from pixi_pack_src.cli.verify import PackArgument


@app.command("sbom")
def sbom_command(
    archive: PackArgument = "environment.tar",
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            metavar="FILE",
            help="Write the SBOM to FILE instead of standard output.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Print the CycloneDX 1.6 SBOM of a pack (verified first): the one pack wrote into it,
    or, for packs without one (Quantco pixi-pack's), one made from what the pack holds."""
    from pixi_pack_src.sbom import sbom_of_pack  # cyclonedx only when used

    reporter = STATE.reporter()
    result = sbom_of_pack(
        "-" if archive == "-" else Path(archive),
        stdin=sys.stdin.buffer if archive == "-" else None,
    )
    if output is None:
        sys.stdout.buffer.write(result.data)
        sys.stdout.flush()
    else:
        with atomic_file(output) as fh:
            fh.write(result.data)
    source = "written by pack" if result.embedded else "made from the pack's contents"
    reporter.status(
        f"✅ SBOM of {result.report.label} ({source}): {result.report.conda_packages} conda "
        f"package(s), {result.report.wheels} wheel(s)"
        + (f" -> {output}" if output is not None else "")
    )
