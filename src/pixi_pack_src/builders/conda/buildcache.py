"""The build cache for conda source packages, in the ``--use-cache`` directory.

Layout: ``<cache>/conda-builds-v1/<key[:2]>/<key>/`` holds the ``.conda`` files one ``pixi
build`` produced (all of them: matching runs again on every hit) and ``entry.json`` (schema,
key, file names with sha256 and size, and what built them: pixi version, command, argv with
placeholders, backend). The key is :meth:`BuildJob.cache_key
<pixi_pack_src.builders.conda.jobs.BuildJob.cache_key>`: source content, target, variants,
backend spec and pixi version.

Entries are written to a temporary sibling and renamed into place, so a crash never leaves a
half entry and concurrent packs both succeed (the second keeps the first's entry). Every hit
is verified (size and sha256 of each file); a damaged entry is removed and reported as a miss.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pixi_pack_src.hashing import file_sha256

log = logging.getLogger(__name__)

SCHEMA = 1
DIRNAME = "conda-builds-v1"
ENTRY = "entry.json"
CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by pixi-pack-src.\n"
    "# For information about cache directory tags, see https://bford.info/cachedir/\n"
)


@dataclass(frozen=True)
class CachedBuild:
    """A verified cache entry: its artifact files and the metadata stored with them."""

    key: str
    directory: Path
    files: tuple[Path, ...]
    meta: Mapping[str, Any]


class BuildCache:
    """``<cache_root>/conda-builds-v1``: built artifacts by build key."""

    def __init__(self, cache_root: Path) -> None:
        self.root = cache_root / DIRNAME

    def entry_dir(self, key: str) -> Path:
        return self.root / key[:2] / key

    def contains(self, key: str) -> bool:
        """Whether an entry exists (not verified: for ``inspect``)."""
        return (self.entry_dir(key) / ENTRY).is_file()

    def lookup(self, key: str) -> CachedBuild | None:
        """The verified entry for ``key``, or ``None`` (a damaged entry is removed)."""
        directory = self.entry_dir(key)
        entry = directory / ENTRY
        if not entry.is_file():
            return None
        try:
            meta = json.loads(entry.read_text(encoding="utf-8"))
            if meta.get("schema") != SCHEMA or meta.get("key") != key:
                raise ValueError("schema or key mismatch")
            files = []
            for item in meta["files"]:
                path = directory / str(item["name"])
                if path.name != item["name"] or not path.is_file():
                    raise ValueError(f"{item['name']} is missing")
                if path.stat().st_size != int(item["size"]) or file_sha256(path) != item["sha256"]:
                    raise ValueError(f"{item['name']} does not match its recorded hash")
                files.append(path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("dropping the damaged build-cache entry %s: %s", directory, exc)
            self._remove(directory)
            return None
        return CachedBuild(key=key, directory=directory, files=tuple(files), meta=meta)

    def store(self, key: str, files: Sequence[Path], meta: Mapping[str, Any]) -> CachedBuild:
        """Copy ``files`` into the entry for ``key`` (atomically) and return it."""
        directory = self.entry_dir(key)
        directory.parent.mkdir(parents=True, exist_ok=True)
        self._tag()
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=directory.parent))
        try:
            listed = []
            for src in sorted(files, key=lambda p: p.name):
                dest = tmp / src.name
                shutil.copyfile(src, dest)
                listed.append(
                    {"name": src.name, "sha256": file_sha256(dest), "size": dest.stat().st_size}
                )
            doc = {"schema": SCHEMA, "key": key, **dict(meta), "files": listed}
            (tmp / ENTRY).write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
            if directory.exists():  # stale or concurrent: replace it
                self._remove(directory)
            try:
                tmp.rename(directory)
            except OSError:
                if not (directory / ENTRY).is_file():
                    raise
                log.debug("another process stored build %s first", key[:12])
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        found = self.lookup(key)
        if found is None:
            raise OSError(f"the build cache entry {directory} vanished after it was written")
        return found

    def _tag(self) -> None:
        tag = self.root / "CACHEDIR.TAG"
        if not tag.exists():
            with contextlib.suppress(OSError):
                tag.write_text(CACHEDIR_TAG)

    @staticmethod
    def _remove(directory: Path) -> None:
        trash = directory.with_name(f".trash-{uuid.uuid4().hex[:8]}")
        try:
            directory.rename(trash)
        except OSError:
            return
        shutil.rmtree(trash, ignore_errors=True)
