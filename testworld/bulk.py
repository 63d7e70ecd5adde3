"""A bulk world for benchmarks: N packages of mixed sizes, seeded incompressible payloads.

``bulk_world(count=200, total_bytes=1 GiB, seed=0)`` builds (once; then it is loaded from the
disk cache) a linux-64 channel of packages ``bulk-0000`` ... with log-uniformly distributed
payload sizes between ``min_size`` and ``max_size``, scaled so they add up to about
``total_bytes``. Packages under 1 MiB are ``.tar.bz2``, the rest ``.conda`` (zstd level 0,
which costs little on random bytes). Each package depends on up to two later ones (a seeded
DAG) and ``bulk-all`` depends on every one, so ``Env(conda=("bulk-all",))`` locks them all.

1 GiB builds in roughly 10-20 s on two cores and takes 2 GiB of cache while building.
"""

from __future__ import annotations

import math
import random

from testworld.catalog import build_world
from testworld.layout import World
from testworld.packages import PackageSpec

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB


def bulk_sizes(
    count: int, total_bytes: int, *, seed: int = 0, min_size: int = KIB, max_size: int = 50 * MIB
) -> list[int]:
    """``count`` log-uniform sizes in ``[min_size, max_size]`` adding up to ~``total_bytes``."""
    if count <= 0:
        return []
    rng = random.Random(seed)
    lo, hi = math.log(min_size), math.log(max_size)
    sizes = [math.exp(rng.uniform(lo, hi)) for _ in range(count)]
    for _ in range(20):  # scale towards the total, respecting the bounds
        factor = total_bytes / sum(sizes)
        sizes = [min(max_size, max(min_size, s * factor)) for s in sizes]
        if abs(sum(sizes) - total_bytes) < total_bytes * 0.01:
            break
    return [int(s) for s in sizes]


def bulk_specs(
    count: int,
    total_bytes: int,
    *,
    seed: int = 0,
    min_size: int = KIB,
    max_size: int = 50 * MIB,
    subdir: str = "linux-64",
) -> list[PackageSpec]:
    rng = random.Random(f"deps/{seed}")
    sizes = bulk_sizes(count, total_bytes, seed=seed, min_size=min_size, max_size=max_size)
    names = [f"bulk-{i:04d}" for i in range(count)]
    specs = []
    for i, size in enumerate(sizes):
        later = names[i + 1 :]
        deps = tuple(sorted(rng.sample(later, min(len(later), rng.randint(0, 2)))))
        specs.append(
            PackageSpec(
                name=names[i],
                version=f"1.{i % 7}.{i % 3}",
                subdir=subdir,
                depends=deps,
                random_files={f"share/{names[i]}/payload.bin": (size, f"{seed}/{names[i]}")},
                archive="tar.bz2" if size < MIB else "conda",
                compression_level=1 if size < MIB else 0,
            )
        )
    specs.append(
        PackageSpec(
            name="bulk-all",
            version="1.0.0",
            subdir="noarch",
            depends=tuple(names),
            files={"share/bulk-all/README": f"{count} packages, seed {seed}\n".encode()},
        )
    )
    return specs


def bulk_world(
    count: int = 200,
    total_bytes: int = GIB,
    *,
    seed: int = 0,
    min_size: int = KIB,
    max_size: int = 50 * MIB,
) -> World:
    """Build (or load from the cache) the bulk world described in the module docstring."""
    specs = bulk_specs(count, total_bytes, seed=seed, min_size=min_size, max_size=max_size)
    return build_world(f"bulk-{count}-{total_bytes}-{seed}", specs)
