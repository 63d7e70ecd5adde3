"""``pack``: lock -> plan -> verified artifacts (downloaded, cached, built) -> one archive per
platform.

The flow, for every selected platform at once so that shared (noarch) work happens once:

1. locate the workspace and load ``pixi.lock``; select the environment on each platform;
2. plan (:func:`pixi_pack_src.plan.plan_lock`, the plan ``inspect`` prints): what is
   downloaded, copied, built or refused. Every refusal -- unsupported entries, unpinned
   backends, ``--inject`` files, outputs that cannot be written, an empty environment -- is
   raised together here, before the first byte is downloaded (:mod:`.run`);
3. fetch the plan's downloads and copies concurrently through the verified cache;
4. build its ``build-conda`` and ``build-wheel`` items (:mod:`.collect`);
5. per platform, write a deterministic tar, folder or self-extracting script (:mod:`.write`);
   the result (:mod:`.result`) lists what was done to every plan item.
"""

from __future__ import annotations

from pixi_pack_src.errors import PixiPackSrcError
from pixi_pack_src.host import host_subdir
from pixi_pack_src.pack.options import PackOptions
from pixi_pack_src.pack.result import (
    DEFAULT_DIRECTORY,
    DEFAULT_OUTPUT,
    PLATFORM_PLACEHOLDER,
    PackedArtifact,
    PackedItem,
    PackResult,
    PackStats,
    PlatformPack,
    output_for,
)
from pixi_pack_src.pack.run import WORK_PREFIX, make_pack_plans, pack, pack_async, platforms_for

__all__ = [
    "DEFAULT_DIRECTORY",
    "DEFAULT_OUTPUT",
    "PLATFORM_PLACEHOLDER",
    "WORK_PREFIX",
    "PackOptions",
    "PackResult",
    "PackStats",
    "PackedArtifact",
    "PackedItem",
    "PixiPackSrcError",
    "PlatformPack",
    "host_subdir",
    "make_pack_plans",
    "output_for",
    "pack",
    "pack_async",
    "platforms_for",
]
