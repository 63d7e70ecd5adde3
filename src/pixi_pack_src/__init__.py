"""pixi-pack-src: pack a pixi.lock environment into an archive that installs offline."""

from ._version import __version__
from .errors import PixiPackSrcError

__all__ = ["PixiPackSrcError", "__version__"]
