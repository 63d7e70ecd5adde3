"""A disk cache for expensive world artifacts, keyed by a hash of their inputs.

Each entry is a directory ``<root>/<kind>/<key>/``. It is built in a temporary sibling and
renamed into place when complete, so two processes building the same entry at once both
succeed (the loser throws its copy away) and a crash never leaves a half-built entry.

The root is ``$WORLD_CACHE_DIR`` or ``<repo>/.cache/world``. Keys cover the inputs the
caller passes plus :func:`tool_fingerprint` (py-rattler, py-rattler-build, the host Python's
path and version, gcc's version and :data:`SCHEMA`), so upgrading a tool rebuilds.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

# Bump to invalidate every cached artifact (e.g. after changing how the world builds).
SCHEMA = "world-1"
ENV_VAR = "WORLD_CACHE_DIR"
REPO_ROOT = Path(__file__).resolve().parents[2]

JsonValue = str | int | float | bool | None | Sequence["JsonValue"] | Mapping[str, "JsonValue"]


def cache_root() -> Path:
    """``$WORLD_CACHE_DIR`` if set, else ``<repo>/.cache/world`` (created on demand)."""
    env = os.environ.get(ENV_VAR)
    root = Path(env) if env else REPO_ROOT / ".cache" / "world"
    root.mkdir(parents=True, exist_ok=True)
    return root.resolve()


@functools.cache
def gcc_version() -> str:
    """``gcc -dumpfullversion`` or ``"none"`` when gcc is missing."""
    gcc = shutil.which("gcc")
    if gcc is None:
        return "none"
    out = subprocess.run([gcc, "-dumpfullversion"], capture_output=True, text=True, check=False)
    return out.stdout.strip() or "unknown"


@functools.cache
def tool_fingerprint() -> dict[str, str]:
    """Everything outside the recipe text that changes what a build produces."""
    return {
        "schema": SCHEMA,
        "py-rattler": importlib.metadata.version("py-rattler"),
        "py-rattler-build": importlib.metadata.version("py-rattler-build"),
        "python": sys.version,
        "python-prefix": sys.base_prefix,
        "gcc": gcc_version(),
    }


def input_key(*parts: JsonValue) -> str:
    """A short hex digest of ``parts`` and :func:`tool_fingerprint` (stable JSON)."""
    blob = json.dumps([tool_fingerprint(), *parts], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def source_digest(*paths: Path) -> str:
    """A digest of files' bytes (e.g. the world's own modules), for keys of derived content."""
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:20]


def cached_dir(
    kind: str,
    key: str,
    build: Callable[[Path], None],
    *,
    root: Path | None = None,
) -> Path:
    """Return ``<root>/<kind>/<key>``, calling ``build(tmp_dir)`` first if it does not exist.

    ``build`` fills an empty directory; it is renamed into place atomically when it returns.
    """
    base = (root or cache_root()) / kind
    final = base / key
    if final.is_dir():
        return final
    base.mkdir(parents=True, exist_ok=True)
    tmp = base / f".tmp-{key[:8]}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        build(tmp)
        try:
            tmp.rename(final)
        except OSError:
            if not final.is_dir():
                raise
            # Another process won the race: keep its copy.
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def clear(kind: str | None = None) -> None:
    """Delete one kind of entry, or the whole cache."""
    target = cache_root() / kind if kind else cache_root()
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(target)
