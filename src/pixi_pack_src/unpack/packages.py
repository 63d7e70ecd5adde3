"""The conda packages of a tar pack, extracted straight into the package-cache layout while the
tar is read (step 1): the package files themselves are never written.

Each package member is handed to a worker as a byte range of the open archive
(:class:`pixi_pack_src.archive.reader.Diversion`): the worker hashes the range (sha256, the
digest step 2 checks against ``pixi-pack-src.json`` and ``repodata.json``) and extracts it with
:func:`pixi_pack_src.install.extract.extract_package`. An extraction error is held back until
the checks have passed, so that a tampered package is reported as a digest mismatch. Nothing
extracted here is linked before the checks pass (:func:`.steps.check`), and the extractor
treats every package as hostile in any case: a package the lock pins may be hostile too.

Packs whose files must stay on disk are read as before, every member written: a delta (it is
completed from its base by file), ``--keep-packages`` (the files are kept), and a pack without
``pixi-pack-src.json`` (a record may carry only an md5, computed from the file).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pixi_pack_src.archive.metadata import PROVENANCE_JSON
from pixi_pack_src.archive.reader import Diversion
from pixi_pack_src.delta.manifest import DELTA_JSON
from pixi_pack_src.errors import ArchiveError
from pixi_pack_src.install.extract import CHUNK, Budget, extract_package, is_package
from pixi_pack_src.layout import CHANNEL_DIR


def sha256_range(fd: int, offset: int, size: int) -> str:
    """The sha256 of ``size`` bytes of ``fd`` at ``offset`` (hashlib releases the GIL)."""
    digest = hashlib.sha256()
    view = memoryview(bytearray(min(CHUNK, max(size, 1))))
    done = 0
    while done < size:
        n = os.preadv(fd, [view[: min(len(view), size - done)]], offset + done)
        if not n:
            raise ArchiveError("the archive ended inside a member (truncated)")
        digest.update(view[:n])
        done += n
    return digest.hexdigest()


def _channel_package(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 3 and parts[0] == CHANNEL_DIR and is_package(parts[2])


@dataclass
class PackageReader:
    """Extracts the diverted packages of one unpack into ``staging`` (``<n>/`` each)."""

    staging: Path
    label: str
    budget: Budget = field(default_factory=Budget)
    extracted: dict[str, Path] = field(default_factory=dict)  # arcname -> directory
    failures: dict[str, ArchiveError] = field(default_factory=dict)
    _pool: concurrent.futures.ThreadPoolExecutor | None = None

    def diversion(self, pool: concurrent.futures.ThreadPoolExecutor) -> Diversion:
        self._pool = pool
        return Diversion(select=self.select, start=self.start)

    @staticmethod
    def select(names: Sequence[str]) -> list[str]:
        if DELTA_JSON in names or PROVENANCE_JSON not in names:
            return []
        return [n for n in names if _channel_package(n)]

    def start(
        self, fd: int, name: str, offset: int, size: int
    ) -> concurrent.futures.Future[tuple[str, int]]:
        assert self._pool is not None
        dest = self.staging / str(len(self.extracted))
        self.extracted[name] = dest
        return self._pool.submit(self._one, fd, name, offset, size, dest)

    def _one(self, fd: int, name: str, offset: int, size: int, dest: Path) -> tuple[str, int]:
        sha = sha256_range(fd, offset, size)
        try:
            extract_package(
                fd,
                offset,
                size,
                dest,
                file_name=name.rsplit("/", 1)[-1],
                what=f"{name} in {self.label}",
                budget=self.budget,
            )
        except ArchiveError as exc:
            self.failures[name] = exc
        return sha, size

    def raise_failure(self) -> None:
        """The first extraction error, once the digests were found right."""
        for name in sorted(self.failures):
            raise self.failures[name]
