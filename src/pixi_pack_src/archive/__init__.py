"""The pack itself: its channel (repodata, environment.yml), metadata files and tar/directory I/O.

Modules: :mod:`.channel`, :mod:`.metadata` (pixi-pack.json, pixi-pack-src.json), :mod:`.tar`
(the deterministic writer, the directory writer, atomic outputs, the safe reader).
"""
