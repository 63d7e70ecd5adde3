"""Sizes for people: the one byte-size formatter (CLI tables, summaries, progress)."""

from __future__ import annotations


def human_bytes(n: int | None) -> str:
    """``1.5 MiB``, ``512 B``; ``?`` for an unknown size."""
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"  # pragma: no cover
