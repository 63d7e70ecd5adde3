"""Bounds for hostile input, in one place: each has a default and an environment variable.

| Variable | Default | Bounds |
| -------- | ------- | ------ |
| ``PIXI_PACK_SRC_MAX_METADATA_BYTES`` | 16 MiB | one metadata document read into memory: a pack's ``pixi-pack.json``, ``pixi-pack-src.json``, ``repodata.json``, ``environment.yml``; a package's ``info/paths.json``, ``info/files``, ``info/link.json`` |
| ``PIXI_PACK_SRC_MAX_UNPACKED_BYTES`` | 256 GiB | the bytes all packages of a pack unpack to |
| ``PIXI_PACK_SRC_MAX_COMPRESSION_RATIO`` | 500 | unpacked bytes / package file bytes, per package |

Metadata is refused as soon as it is known to be over its cap (from a tar header, before it
is read; from its size on disk). Unpacked sizes are checked from each package's own file list
before it is extracted, and the extracted bytes are counted against the same caps right after
(a package whose file list understates its content is refused then). JSON documents nested
deeper than the interpreter allows are refused as malformed, never reported as a bug.
"""

from __future__ import annotations

import os

from pixi_pack_src.errors import UsageError

MIB = 1024 * 1024
GIB = 1024 * MIB

_DEFAULTS = {
    "PIXI_PACK_SRC_MAX_METADATA_BYTES": 16 * MIB,
    "PIXI_PACK_SRC_MAX_UNPACKED_BYTES": 256 * GIB,
    "PIXI_PACK_SRC_MAX_COMPRESSION_RATIO": 500,
}


def _read(name: str) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return _DEFAULTS[name]
    if not raw.isdigit() or int(raw) <= 0:
        raise UsageError(
            f"{name}={raw!r} is not a positive whole number",
            hint=f"unset it for the default ({_DEFAULTS[name]})",
        )
    return int(raw)


def max_metadata_bytes() -> int:
    return _read("PIXI_PACK_SRC_MAX_METADATA_BYTES")


def max_unpacked_bytes() -> int:
    return _read("PIXI_PACK_SRC_MAX_UNPACKED_BYTES")


def max_compression_ratio() -> int:
    return _read("PIXI_PACK_SRC_MAX_COMPRESSION_RATIO")
