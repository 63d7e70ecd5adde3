"""The archive's layout names and the words for a pack that fails its checks (one home).

A pack holds ``channel/<subdir>/<file>`` (conda packages and each subdir's
``repodata.json``), ``pypi/<file>.whl`` and the metadata files at the top (see
docs/archive-format.md, "Layout").
"""

from __future__ import annotations

CHANNEL_DIR = "channel"
PYPI_DIR = "pypi"


def tampered(what: str = "the archive", then: str = "do not install it") -> str:
    """The words for content that does not match its records: ``what`` is damaged or was
    tampered with, and what to do (the ``help:`` of every such refusal)."""
    return f"{what} is damaged or was tampered with; {then}"


#: the ``help:`` of every refusal of a pack whose content does not match its records
TAMPERED = tampered()


def conda_path(subdir: str, file_name: str) -> str:
    """``channel/<subdir>/<file>``: where a conda package goes in a pack."""
    return f"{CHANNEL_DIR}/{subdir}/{file_name}"


def wheel_path(file_name: str) -> str:
    """``pypi/<file>``: where a wheel goes in a pack."""
    return f"{PYPI_DIR}/{file_name}"
