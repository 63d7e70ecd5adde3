"""`pixi-pack-src inspect` (filled in by its issue)."""

from __future__ import annotations
