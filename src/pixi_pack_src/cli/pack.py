"""`pixi-pack-src pack` (filled in by its issue)."""

from __future__ import annotations
