"""The pack itself: its channel (repodata, environment.yml), metadata files and tar/directory I/O.

Modules: :mod:`.channel`, :mod:`.metadata` (pixi-pack.json, pixi-pack-src.json),
:mod:`.members` (members, their names, order and headers), :mod:`.tar` (the deterministic tar
and directory writers), :mod:`.kernel_copy` (one file's bytes into the output),
:mod:`.sink` (the tar output and the archive's hash), :mod:`.reader` (the safe reader and
extractor), :mod:`.atomic` (outputs that appear only when complete).
"""
