"""`pixi-pack-src manifest`: what a base holds, for `pack --base` away from the archive.

Only parses options, calls :func:`pixi_pack_src.delta.manifest.read_base` and prints: the
manifest (or with ``--identity`` only the identity) on stdout, a one-line summary on stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from pixi_pack_src.cli import STATE, app
from pixi_pack_src.delta.manifest import read_base, short


@app.command("manifest")
def manifest_command(
    base: Annotated[
        Path,
        typer.Argument(
            metavar="BASE",
            help="A pack (tar or directory), an environment unpacked by pixi-pack-src, or a "
            "manifest file.",
        ),
    ],
    identity: Annotated[
        bool,
        typer.Option("--identity", help="Print only the identity (sha256) of the base."),
    ] = False,
) -> None:
    """Print the manifest of BASE (what a site has) for `pack --base`.

    `pixi-pack-src manifest environment.tar > base.json` once; later
    `pixi-pack-src pack --base base.json` makes a delta against it without the archive.
    """
    manifest = read_base(base)
    if identity:
        sys.stdout.write(manifest.identity + "\n")
    else:
        sys.stdout.buffer.write(manifest.to_json())
        sys.stdout.flush()
    STATE.reporter().status(
        f"{base}: {manifest.kind} pack for {manifest.platform}, {len(manifest.files)} files, "
        f"identity {short(manifest.identity)}"
    )
