"""This machine as conda sees it."""

from __future__ import annotations

from rattler import Subdir


def host_subdir() -> str:
    """The conda subdir of this machine, e.g. ``linux-64``."""
    return str(Subdir.current())
