"""Self-extracting scripts: ``pack --create-executable`` (see docs/self-extracting.md).

A script is a fixed header (:mod:`.headers`) followed by two raw payloads it locates by byte
offset: the unpacker bundle (:mod:`.bundle`) and the pack tar. Unix targets get a bash script
(``environment.sh``); Windows targets a batch file (``environment.cmd``), because PowerShell
reads a whole ``.ps1`` into memory before running it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import BinaryIO

from pixi_pack_src import __version__
from pixi_pack_src.archive.members import BinaryWriter
from pixi_pack_src.selfextract.bundle import Bundle, build_bundle
from pixi_pack_src.selfextract.headers import BASH, CMD, NUMBER_WIDTH
from pixi_pack_src.shellquote import quote_posix

__all__ = ["Bundle", "build_bundle", "header", "script_suffix", "write_script"]


def script_suffix(subdir: str) -> str:
    return ".cmd" if subdir.startswith("win") else ".sh"


def header(*, subdir: str, name: str, python: str, bundle_length: int, pack_length: int) -> bytes:
    """The header for these payload lengths (its own length does not depend on them)."""
    template = CMD if subdir.startswith("win") else BASH

    def render(bundle_offset: int) -> bytes:
        text = template
        values = {
            "@BUNDLE_OFFSET@": bundle_offset,
            "@BUNDLE_LENGTH@": bundle_length,
            "@PACK_OFFSET@": bundle_offset + bundle_length,
            "@PACK_LENGTH@": pack_length,
        }
        for key, value in values.items():
            text = text.replace(key, str(value).rjust(NUMBER_WIDTH, "0"))
        text = (
            text.replace("@PLATFORM@", subdir)
            .replace("@VERSION@", __version__)
            .replace("@NAME@", quote_posix(name))
            .replace("@PYTHON@", python.replace("/", "\\") if subdir.startswith("win") else python)
        )
        if subdir.startswith("win"):
            text = text.replace("\r\n", "\n").replace("\n", "\r\n")
        return text.encode("utf-8")

    length = len(render(0))
    data = render(length)
    assert len(data) == length
    return data


def write_script(
    out: BinaryWriter | BinaryIO, *, pack: Path, bundle: Bundle, subdir: str, name: str
) -> None:
    """Header, then the bundle, then the pack, streamed in chunks."""
    bundle_length = bundle.path.stat().st_size
    pack_length = pack.stat().st_size
    out.write(
        header(
            subdir=subdir,
            name=name,
            python=bundle.python,
            bundle_length=bundle_length,
            pack_length=pack_length,
        )
    )
    for part in (bundle.path, pack):
        with part.open("rb") as fh:
            shutil.copyfileobj(fh, out, 1 << 20)
