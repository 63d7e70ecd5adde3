"""Builders: conda source packages (:mod:`.conda`, ``pixi build``) and wheels (:mod:`.wheel`, PEP 517).

Each builder's ``__init__`` re-exports what callers use. Shared by both: :mod:`.sourcetree`
(source-tree hashes) and :mod:`.git` (exact-commit checkouts).
"""
