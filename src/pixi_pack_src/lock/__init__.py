"""Reading the workspace: ``pixi.lock`` (v7, v6) into the typed model, and the manifest.

Modules: :mod:`.lockfile` (pixi.lock -> :class:`~.model.LockedEnvironment`), :mod:`.model` (the
typed, immutable model of one environment on one platform), :mod:`.workspace` (manifest path ->
workspace root and lock; package manifests' build backends).
"""
