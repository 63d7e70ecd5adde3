"""Conda source packages built with ``pixi build``, matched to the lock, cached."""
