"""The PyPI side of the world (wheels, sdists, a PEP 503 simple index). Work in progress."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tests.world.layout import PypiDist


@dataclass
class PypiSide:
    dists: list[PypiDist] = field(default_factory=list)
    projects: dict[str, str] = field(default_factory=dict)
    patches: dict[str, str] = field(default_factory=dict)


def build_pypi_side(root: Path) -> PypiSide:
    """Build the standard PyPI content under ``root`` (the world's ``pypi/`` directory)."""
    root.mkdir(parents=True, exist_ok=True)
    return PypiSide()
