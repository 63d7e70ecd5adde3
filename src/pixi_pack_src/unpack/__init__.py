"""``unpack``: a pack (tar file, standard input or directory) -> checked -> an environment.

The steps of pixi-unpack (docs/archive-format.md, "Checking a pack"), plus the checks it leaves out:

1. **Read the pack, once.** A tar is checked member by member before anything is written
   (:func:`pixi_pack_src.archive.reader.safe_extract`) and extracted into a private work
   directory next to the target, each file hashed as it is written; its conda packages are not
   written as files but extracted straight into py-rattler's package-cache layout, hashed on
   the way (:mod:`.packages`). A directory pack is used in place and never written to (it may
   hold only regular files and directories).
2-4. **The checks of ``verify``** (:func:`pixi_pack_src.verify.checks.check_pack`, one
   implementation), refusing on the first finding: ``pixi-pack.json`` as strict as
   pixi-unpack (the platform must be this machine's unless ``platform_check`` is off);
   ``pixi-pack-src.json`` for the same platform, listing every file with its sha256 and size;
   the channel (only the pack's subdir and ``noarch``, every package listed in its subdir's
   ``repodata.json`` and equal to its record, every listed package present); ``pypi/`` only
   wheels; ``environment.yml`` naming exactly those; every dependency inside the pack. A plain
   format-1 archive has no record of its wheels: a warning says so.
5. **Virtual packages** (``__glibc``, ``__osx``, ``__cuda``, ``__linux``): the host must reach
   what the lock assumed and what the packages depend on
   (:mod:`pixi_pack_src.install.virtual_packages`).
6. **Wheels**: safe paths, ``RECORD`` hashes, ``Requires-Python``, then the tags of the
   environment's python, computed from its record (unpack runs no code of the pack: not even
   the environment's python). **Packages**: each is in the package-cache layout its installer
   links from (:mod:`pixi_pack_src.install.extract`; from its file when step 1 did not), and
   its file list is checked there (what is checked is what is installed).
7. **Install** into a staging directory inside the work directory, with every embedded path set
   to the final prefix (:mod:`pixi_pack_src.install.conda`, :mod:`pixi_pack_src.install.wheels`);
   then move it into place (replacing an existing environment only with ``force``) and write
   ``activate.<ext>`` (:mod:`pixi_pack_src.install.activation`).

The modules: :mod:`.options` (options and result), :mod:`.target` (where the environment goes),
:mod:`.steps` (one function per step), :mod:`.packages` (packages read straight from the tar),
:mod:`.run` (the job, in that order).

On any failure the work directory goes, with the staging environment; an environment that
``force`` replaced comes back, and directories created for the output are removed. No network
is used: records are ``file://`` and py-rattler's installer only reads them.
"""

from __future__ import annotations

from pixi_pack_src.unpack.options import JSON_VERSION, STDIN_LABEL, UnpackOptions, UnpackResult
from pixi_pack_src.unpack.run import unpack

__all__ = ["JSON_VERSION", "STDIN_LABEL", "UnpackOptions", "UnpackResult", "unpack"]
