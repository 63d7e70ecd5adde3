"""Small files written atomically: the one helper for a complete file under its name or none.

A file of bytes goes to a fresh, unguessable name beside its target (or in a given directory on
the same file system, e.g. the cache's ``tmp/``, which the cache cleans), then is renamed over
the target; a failure or Ctrl-C removes the temporary name. Streams and whole pack outputs
(which must never replace a directory that is not a pack) go through
:mod:`pixi_pack_src.archive.atomic` instead.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def write_atomically(
    path: Path, data: bytes, *, tmp_dir: Path | None = None, mode: int | None = None
) -> None:
    """Make ``path`` hold ``data``, all at once. The new file gets the permissions a plain
    ``open`` would give (``0o666`` less the umask), or ``mode``. ``tmp_dir`` must be on
    ``path``'s file system (it defaults to ``path``'s directory)."""
    tmp = (tmp_dir or path.parent) / f".{path.name}.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        if mode is not None:
            tmp.chmod(mode)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
