"""The benchmarks' data, made with the test world (:mod:`testworld`) and cached on disk.

- :func:`bulk` - N packages of mixed sizes (cases 1-3): 200 packages, 1 KiB-50 MiB, 1 GiB;
- :func:`big_one` - one package of 1 GiB (case 5);
- :func:`many` - 2,000 tiny packages (case 6);
- the default world (python, pip, relocme...) for the shipped environment (cases 4 and 7).

:class:`Scale` holds the sizes: :data:`FULL` for the real run, :data:`QUICK` for the smoke test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from testworld.bulk import GIB, KIB, MIB, bulk_specs, bulk_world
from testworld.catalog import build_world
from testworld.layout import World
from testworld.locks import Env
from testworld.packages import PackageSpec
from testworld.workspace import Workspace, write_workspace

BULK_SPECS = ("bulk-all",)
# A realistic small environment of the default world: the real CPython, pip, a binary with
# prefix placeholders, a shared library, a noarch python package with an entry point, data.
# Not pyworld/pyworld-plugins: the world assembles them without info/link.json, and
# conda-pack takes a package's noarch type only from that file (it then looks for
# site-packages/... at the prefix root and refuses the environment).
SHIP_SPECS = (
    "python",
    "pip",
    "relocme",
    "libgreet",
    "worldcli",
    "chain-a",
    "zed-tools",
    "worlddata",
    "withlinks",
    "bigdata",
)


@dataclass(frozen=True)
class Scale:
    name: str
    bulk_count: int
    bulk_bytes: int
    bulk_max: int
    big_bytes: int
    many_count: int
    runs: int  # runs per measurement (median of these)
    big_runs: int  # runs of the 1 GiB cases
    sources: int  # source packages in case 7


FULL = Scale(
    name="full",
    bulk_count=200,
    bulk_bytes=GIB,
    bulk_max=50 * MIB,
    big_bytes=GIB,
    many_count=2000,
    runs=5,
    big_runs=5,
    sources=4,
)
QUICK = Scale(
    name="quick",
    bulk_count=10,
    bulk_bytes=10 * MIB,
    bulk_max=4 * MIB,
    big_bytes=16 * MIB,
    many_count=50,
    runs=1,
    big_runs=1,
    sources=2,
)


def bulk(scale: Scale) -> World:
    return bulk_world(scale.bulk_count, scale.bulk_bytes, min_size=KIB, max_size=scale.bulk_max)


def delta_world(scale: Scale) -> tuple[World, str]:
    """The bulk world plus a version 2.0.0 of one mid-sized package (case 9): locking
    ``bulk-all`` with ``NAME <2`` and then ``NAME >=2`` changes exactly that package."""
    specs = bulk_specs(scale.bulk_count, scale.bulk_bytes, min_size=KIB, max_size=scale.bulk_max)
    packages = [s for s in specs if s.name != "bulk-all"]
    chosen = min(packages, key=lambda s: abs(_payload(s) - 4 * MIB))  # a typical package
    size = _payload(chosen)
    upgraded = replace(
        chosen,
        version="2.0.0",
        random_files={f"share/{chosen.name}/payload.bin": (size, f"v2/{chosen.name}")},
    )
    name = f"bulk-delta-{scale.bulk_count}-{scale.bulk_bytes}"
    return build_world(name, [*specs, upgraded]), chosen.name


def _payload(spec: PackageSpec) -> int:
    return sum(size for size, _ in spec.random_files.values())


def big_one(scale: Scale) -> World:
    return bulk_world(1, scale.big_bytes, min_size=scale.big_bytes, max_size=scale.big_bytes)


def many(scale: Scale) -> World:
    return bulk_world(scale.many_count, scale.many_count * 2 * KIB, min_size=KIB, max_size=4 * KIB)


def workspace(
    root: Path, world: World, server_url: str | None, specs: Sequence[str] = BULK_SPECS
) -> Workspace:
    """A one-environment linux-64 workspace locking ``specs`` at the server's channel URL."""
    return write_workspace(
        root,
        world,
        {"default": Env(conda=tuple(specs))},
        channel_url=world.channel_url(server_url) if server_url else None,
    )


def locked_files(ws: Workspace) -> list[tuple[str, str]]:
    """``(url, "<subdir>/<file name>")`` of every conda package the workspace locks."""
    out = []
    for record in ws.lock.records[("default", "linux-64")]:
        out.append((record.url, f"{record.subdir}/{record.file_name}"))
    return out
