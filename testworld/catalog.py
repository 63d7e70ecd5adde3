"""The standard content of the world: :func:`default_world`.

linux-64 + noarch (23 packages, both archive formats):

======================  =========  ==========================================================
package                 format     what it exercises
======================  =========  ==========================================================
python 3.11.x           .conda     real CPython from the host (recipe; see python_pkg.py)
relocme 1.0.0           .conda     binary + text prefix placeholders (gcc; recipes.py)
libgreet 2.1.0          .tar.bz2   gcc shared library + CLI ``greet`` (recipes.py)
chain-a 1.0.0           .conda     depends ``chain-b >=1.0``
chain-b 1.2.0           .tar.bz2   depends ``chain-c >=1.0,<2``
chain-c 1.5.0 / 2.0.0   .conda     the solve must pick 1.5.0 for chain-a
libzed 1.2.0            .tar.bz2   an older version
libzed 1.3.1            .conda
zed-tools 1.3.1         .conda     depends ``libzed >=1.3.1,<2.0a0``
patchme 1.0.0           .conda     depends ``libzed`` (locks patch it to ``libzed >=1.3,<2``)
sysdep 1.0.0            .tar.bz2   depends ``__glibc >=2.17,<3.0.a0`` (virtual package)
withlinks 1.0.0         .tar.bz2   symlinks (file and directory targets)
bigdata 1.0.0           .conda     4 MiB of incompressible bytes
multibuild 1.0.0        .conda     two builds, build numbers 0 and 1
worldcli 1.0.0          .conda     noarch python, console script ``worldcli`` (recipe)
pip 23.x                .conda     noarch python, the host's real pip (recipe)
pyworld 0.3.0           .tar.bz2   noarch python (``import pyworld; pyworld.hello()``)
pyworld-plugins 0.1.0   .conda     noarch python, depends ``pyworld >=0.3``
worlddata 2024.1        .tar.bz2   noarch generic data
worldcerts 1.0.0        .conda     noarch generic
world-meta 1.0.0        .conda     noarch metapackage: chain-a, libgreet, worldcli
======================  =========  ==========================================================

osx-arm64 and win-64 carry every arch-specific name above (placeholder bytes; ``sysdep``
depends on ``__osx``/``__win``); linux-aarch64 and osx-64 carry python, chain-a/b/c, libzed
and sysdep. So a lock of ``python chain-a libzed sysdep worldcli pyworld`` solves everywhere.

The PyPI side is built by :mod:`testworld.pypi`.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from testworld.cache import cached_dir, input_key, source_digest
from testworld.channel import add_archives, built_packages, index_channel
from testworld.layout import PypiDist, World
from testworld.packages import (
    PackageSpec,
    assemble,
    exe_path,
    file_hashes,
    incompressible,
    lib_path,
    placeholder_binary,
)
from testworld.python_pkg import foreign_python_spec

FULL_FOREIGN = ("osx-arm64", "win-64")
SMALL_FOREIGN = ("linux-aarch64", "osx-64")
SMALL_NAMES = ("python", "chain-a", "chain-b", "chain-c", "libzed", "sysdep")
BIGDATA_SIZE = 4 * 1024 * 1024

# Specs solvable on every platform of the default world.
PORTABLE_SPECS = ("python", "chain-a", "libzed", "sysdep", "worldcli", "pyworld")


def _text(s: str) -> bytes:
    return s.encode()


def _virtual_dep(subdir: str) -> str:
    if subdir.startswith("linux"):
        return "__glibc >=2.17,<3.0.a0"
    if subdir.startswith("osx"):
        return "__osx >=11.0"
    return "__win"


def arch_specs(subdir: str) -> list[PackageSpec]:
    """The assembled arch-specific packages of one subdir (recipe-built ones excluded)."""
    native = subdir == "linux-64"

    def binary(name: str) -> dict[str, bytes]:
        return {exe_path(name, subdir): placeholder_binary(name, subdir)}

    specs = [
        PackageSpec(
            "chain-a",
            "1.0.0",
            subdir,
            depends=("chain-b >=1.0",),
            files={**binary("chain-a"), "share/chain-a/README": b"chain a\n"},
        ),
        PackageSpec(
            "chain-b",
            "1.2.0",
            subdir,
            depends=("chain-c >=1.0,<2",),
            files=binary("chain-b"),
            archive="tar.bz2",
        ),
        PackageSpec("chain-c", "1.5.0", subdir, files=binary("chain-c")),
        PackageSpec("chain-c", "2.0.0", subdir, files=binary("chain-c")),
        PackageSpec(
            "libzed",
            "1.2.0",
            subdir,
            files={lib_path("zed", subdir): placeholder_binary("libzed-1.2", subdir)},
            archive="tar.bz2",
        ),
        PackageSpec(
            "libzed",
            "1.3.1",
            subdir,
            files={lib_path("zed", subdir): placeholder_binary("libzed-1.3", subdir)},
        ),
        PackageSpec(
            "sysdep",
            "1.0.0",
            subdir,
            depends=(_virtual_dep(subdir),),
            files=binary("sysdep"),
            archive="tar.bz2",
        ),
    ]
    if subdir in SMALL_FOREIGN:
        return [s for s in specs if s.name in SMALL_NAMES]
    specs += [
        PackageSpec(
            "zed-tools",
            "1.3.1",
            subdir,
            depends=("libzed >=1.3.1,<2.0a0",),
            files=binary("zed"),
        ),
        PackageSpec(
            "patchme",
            "1.0.0",
            subdir,
            depends=("libzed",),
            files={"share/patchme/info.txt": b"patched in locks\n"},
        ),
        PackageSpec(
            "bigdata",
            "1.0.0",
            subdir,
            files={
                "share/bigdata/blob.bin": incompressible(
                    BIGDATA_SIZE if native else 64 * 1024, f"bigdata/{subdir}"
                )
            },
            compression_level=1,
        ),
        PackageSpec("multibuild", "1.0.0", subdir, files=binary("multibuild"), build_number=0),
        PackageSpec(
            "multibuild",
            "1.0.0",
            subdir,
            files={**binary("multibuild"), "share/multibuild/v1": b"1\n"},
            build_number=1,
        ),
    ]
    if subdir.startswith("win"):
        specs.append(
            PackageSpec(
                "withlinks",
                "1.0.0",
                subdir,
                files={"Library/share/withlinks/data.txt": b"data\n"},
                archive="tar.bz2",
            )
        )
    else:
        specs.append(
            PackageSpec(
                "withlinks",
                "1.0.0",
                subdir,
                files={
                    "share/withlinks/data.txt": b"data\n",
                    "share/withlinks/wl.sh": b'#!/bin/sh\necho "withlinks ok"\n',
                    lib_path("wl", subdir) + ".1": placeholder_binary("libwl", subdir),
                },
                symlinks={
                    "bin/wl": "../share/withlinks/wl.sh",
                    lib_path("wl", subdir): Path(lib_path("wl", subdir)).name + ".1",
                    "share/withlinks-link": "withlinks",
                },
                archive="tar.bz2",
            )
        )
    if not native:
        specs += [
            PackageSpec("relocme", "1.0.0", subdir, files=binary("relocme")),
            PackageSpec(
                "libgreet",
                "2.1.0",
                subdir,
                files={**binary("greet"), lib_path("greet", subdir): b"placeholder"},
                archive="tar.bz2",
            ),
        ]
    return specs


PYWORLD_INIT = '''\
"""pyworld: a noarch python conda package of the offline test world."""

__version__ = "0.3.0"


def hello() -> str:
    return "hello from pyworld " + __version__
'''

PLUGINS_INIT = '''\
"""pyworld_plugins: depends on pyworld."""

import pyworld

__version__ = "0.1.0"


def hello() -> str:
    return "plugins " + __version__ + " on " + pyworld.hello()
'''


def noarch_specs() -> list[PackageSpec]:
    """The assembled noarch packages (worldcli and pip are recipe builds)."""
    return [
        PackageSpec(
            "pyworld",
            "0.3.0",
            "noarch",
            noarch="python",
            depends=("python >=3.8",),
            files={"site-packages/pyworld/__init__.py": _text(PYWORLD_INIT)},
            archive="tar.bz2",
        ),
        PackageSpec(
            "pyworld-plugins",
            "0.1.0",
            "noarch",
            noarch="python",
            depends=("python >=3.8", "pyworld >=0.3"),
            files={"site-packages/pyworld_plugins/__init__.py": _text(PLUGINS_INIT)},
        ),
        PackageSpec(
            "worlddata",
            "2024.1",
            "noarch",
            files={
                f"share/worlddata/{i:02d}.txt": _text(f"record {i}\n" * (i + 1)) for i in range(12)
            },
            archive="tar.bz2",
        ),
        PackageSpec(
            "worldcerts",
            "1.0.0",
            "noarch",
            files={"ssl/worldcerts.pem": b"-----BEGIN CERTIFICATE-----\nd29ybGQ=\n"},
        ),
        PackageSpec(
            "world-meta",
            "1.0.0",
            "noarch",
            depends=("chain-a", "libgreet", "worldcli"),
            files={"share/world-meta/README": b"metapackage\n"},
        ),
    ]


def default_specs() -> list[PackageSpec]:
    """Every assembled spec of the default world, all subdirs."""
    specs = arch_specs("linux-64") + noarch_specs()
    for subdir in FULL_FOREIGN + SMALL_FOREIGN:
        specs += arch_specs(subdir)
        specs.append(foreign_python_spec(subdir))
    return specs


def recipe_archives() -> list[Path]:
    """The recipe-built archives (python, relocme, libgreet, worldcli, pip), cached."""
    from testworld.python_pkg import build_python
    from testworld.recipes import build_libgreet, build_pip, build_relocme, build_worldcli

    python = build_python()
    return [python, build_relocme(), build_libgreet(), build_worldcli(python), build_pip(python)]


def world_sources() -> list[Path]:
    """The modules whose code decides what a world contains (part of every world key)."""
    here = Path(__file__).parent
    names = (
        "catalog.py",
        "packages.py",
        "python_pkg.py",
        "recipes.py",
        "pypi.py",
        "pep517_backend.py",
        "channel.py",
    )
    return [here / n for n in names if (here / n).exists()]


def build_world(
    name: str,
    specs: Sequence[PackageSpec],
    archives: Sequence[Path] = (),
    *,
    pypi: bool = False,
    extra_key: str = "",
    populate: Callable[[Path], None] | None = None,
) -> World:
    """Build (or load from the cache) a world of ``specs`` + prebuilt ``archives``.

    ``pypi`` adds the standard PyPI side (:func:`testworld.pypi.build_pypi_side`);
    ``populate(root)`` may add more files before the manifest is written.
    """
    spec_digest = hashlib.sha256()
    for spec in specs:
        spec_digest.update(spec.digest().encode())
        spec_digest.update(f"{spec.archive}{spec.compression_level}{spec.build}".encode())
    key = input_key(
        "world",
        name,
        source_digest(*world_sources()),
        spec_digest.hexdigest(),
        [(a.name, file_hashes(a)[0]) for a in archives],
        pypi,
        extra_key,
    )

    def build(root: Path) -> None:
        channel = root / "channel"
        staging = root / ".staging"
        for spec in specs:
            add_archives(channel, [assemble(spec, staging / spec.subdir)], move=True)
        add_archives(channel, archives)
        index_channel(channel)
        packages = tuple(built_packages(channel))
        dists: tuple[PypiDist, ...] = ()
        projects: dict[str, str] = {}
        patches: dict[str, str] = {}
        if pypi:
            from testworld.pypi import build_pypi_side

            side = build_pypi_side(root / "pypi")
            dists, projects, patches = tuple(side.dists), side.projects, side.patches
        if populate is not None:
            populate(root)
        shutil.rmtree(staging, ignore_errors=True)
        world = World(
            root=root,
            packages=packages,
            pypi=dists,
            projects=projects,
            patches=patches,
            name=name,
        )
        world.save_manifest()

    return World.load(cached_dir("worlds", key, build))


def default_world() -> World:
    """The standard world (built once, then loaded from the disk cache in ~10 ms)."""
    return build_world("default", default_specs(), recipe_archives(), pypi=_has_pypi())


def _has_pypi() -> bool:
    return (Path(__file__).parent / "pypi.py").exists()
