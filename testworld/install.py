"""Install world packages into a prefix with ``rattler.install`` (offline, ``file://`` records).

For tests of the world itself and as a reference to compare the product's ``unpack`` with.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import rattler
from rattler import RepoDataRecord

from testworld.channel import run
from testworld.layout import World
from testworld.locks import solve


def install_records(
    records: Sequence[RepoDataRecord], prefix: Path, *, cache_dir: Path | None = None
) -> Path:
    """Install ``records`` (``file://`` URLs) into ``prefix``; returns the prefix."""
    with tempfile.TemporaryDirectory(prefix="world-pkgs-") as tmp:
        run(
            rattler.install(
                list(records),
                prefix,
                cache_dir=cache_dir or Path(tmp),
                show_progress=False,
            )
        )
    return prefix


def install_specs(world: World, specs: Sequence[str], prefix: Path) -> list[RepoDataRecord]:
    """Solve ``specs`` for linux-64 against the world channel on disk and install them."""
    records = solve(world.channel_dir, specs, "linux-64")
    install_records(records, prefix)
    return records


def install_wheels(prefix: Path, wheels: Sequence[Path]) -> Path:
    """Install wheels into the ``python3.X`` site-packages of a conda ``prefix`` (installer).

    Returns the site-packages directory. Console scripts go to ``prefix/bin``.
    """
    from installer import install
    from installer.destinations import SchemeDictionaryDestination
    from installer.sources import WheelFile

    (site,) = sorted(prefix.glob("lib/python3*/site-packages"))
    scheme = {
        "purelib": str(site),
        "platlib": str(site),
        "headers": str(prefix / "include"),
        "scripts": str(prefix / "bin"),
        "data": str(prefix),
    }
    python = prefix / "bin" / "python"
    destination = SchemeDictionaryDestination(
        scheme, interpreter=str(python), script_kind="posix", bytecode_optimization_levels=()
    )
    for wheel in wheels:
        with WheelFile.open(wheel) as source:
            install(source, destination, additional_metadata={"INSTALLER": b"world\n"})
    return site


def run_in(
    prefix: Path, argv: Sequence[str], *, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` with ``prefix/bin`` first on PATH and no inherited Python settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "CONDA", "VIRTUAL"))}
    env["PATH"] = f"{prefix / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(list(argv), capture_output=True, text=True, check=check, env=env)
