"""`pixi-pack-src unpack` (filled in by its issue)."""

from __future__ import annotations
