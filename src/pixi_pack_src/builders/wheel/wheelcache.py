"""The cache of wheels built from sdists, git checkouts and source trees.

Layout: ``<cache_root>/wheel-builds-v1/<key[:2]>/<key>/`` holds the built ``.whl`` and
``entry.json`` (what built it), written atomically and verified on every hit, exactly like
the conda build cache (:class:`.buildcache.BuildCache`, whose implementation this reuses).
The key (:func:`.sdist.cache_key`) covers the source (sdist sha256, tree hash or git
commit), the target Python and platform, the overrides, isolation and the tool version.
A pure-Python wheel is also stored under the key with the platform ``any``, so packing the
same source for several platforms builds it once.
"""

from __future__ import annotations

from pathlib import Path

from pixi_pack_src.builders.conda.buildcache import BuildCache

DIRNAME = "wheel-builds-v1"


class WheelCache(BuildCache):
    """``<cache_root>/wheel-builds-v1``: built wheels by build key."""

    def __init__(self, cache_root: Path) -> None:
        super().__init__(cache_root)
        self.root = cache_root / DIRNAME
