"""pixi-pack-src: pack a pixi.lock environment into an archive that installs offline.

The library API (lazily imported, so that ``import pixi_pack_src`` stays cheap)::

    from pixi_pack_src import PackOptions, UnpackOptions
    from pixi_pack_src.pack import pack
    from pixi_pack_src.unpack import unpack

    result = pack(PackOptions(manifest_path=Path("."), platforms=("linux-64",)))

(``pack`` and ``unpack`` are also the names of their modules, so the functions are imported
from there.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pixi_pack_src._version import __version__
from pixi_pack_src.errors import PixiPackSrcError

if TYPE_CHECKING:
    from pixi_pack_src.pack import PackOptions, PackResult
    from pixi_pack_src.unpack import UnpackOptions, UnpackResult

_LAZY = {
    "PackOptions": "pack",
    "PackResult": "pack",
    "UnpackOptions": "unpack",
    "UnpackResult": "unpack",
}

__all__ = [
    "PackOptions",
    "PackResult",
    "PixiPackSrcError",
    "UnpackOptions",
    "UnpackResult",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pixi_pack_src' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{module}"), name)
