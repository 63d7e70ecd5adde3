"""Reading the workspace: ``pixi.lock`` (v7, v6) into the typed model, and the manifest.

Modules: :mod:`.lockfile` (the public API: pixi.lock -> :class:`~.model.LockedEnvironment`) over
:mod:`.raw` (the document as PyYAML and py-rattler read it, shape checks), :mod:`.entries` (one
environment's entries from both views, py-rattler workarounds) and :mod:`.locations` (where an
entry points: URLs, paths, git, PyPI kinds); :mod:`.model` (the typed, immutable model of one
environment on one platform), :mod:`.workspace` (manifest path -> workspace root and lock;
package manifests' build backends).
"""
