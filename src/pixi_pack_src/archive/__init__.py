"""The pack itself: its channel (repodata, environment.yml), metadata files and tar/directory I/O.

Modules: :mod:`.channel`, :mod:`.metadata` (pixi-pack.json, pixi-pack-src.json), :mod:`.tar`
(the deterministic tar and directory writers), :mod:`.reader` (the safe reader and extractor),
:mod:`.atomic` (outputs that appear only when complete).
"""
