"""The deterministic tar writer and the directory writer.

(The members, their names, order and headers: :mod:`.members`; copying a file's bytes:
:mod:`.kernel_copy`; the tar output and the archive's hash: :mod:`.sink`; atomic outputs:
:mod:`.atomic`; the safe reader: :mod:`.reader`.)

Writing (docs/archive-format.md, "Determinism"): entries sorted by name at each directory level, parents
(synthesised directory entries) before children; PAX headers with mtime =
``SOURCE_DATE_EPOCH`` or a fixed non-zero constant, uid/gid 0, empty uname/gname, mode 0644
(0755 for directories and executables); no per-entry times besides mtime and no global header.
File content is streamed in chunks and hashed on the way (on a helper thread, overlapping the
writes), so memory stays flat and the caller can compare each written sha256 with what it
verified earlier (a file changed underneath is caught). The output may be a pipe.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from pixi_pack_src.archive.kernel_copy import KernelCopy, Opened, clone, hashing_thread, write_fd
from pixi_pack_src.archive.members import (
    BLOCK,
    MAX_USTAR_NUMBER,
    RECORD,
    BinaryWriter,
    Entry,
    WrittenArchive,
    WrittenEntry,
    fixed_mtime,
    header,
    plan,
)
from pixi_pack_src.archive.sink import Sink
from pixi_pack_src.errors import ArchiveError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WrittenItem:
    """One item :class:`TarWriter` wrote: a directory (``entry`` None) or a file, where its
    header starts in the output, and (files) what was written."""

    name: str
    entry: Entry | None
    start: int
    written: WrittenEntry | None


class TarWriter:
    """The deterministic tar writer, one item at a time, in the order :func:`archive_order`
    gives: :func:`write_tar` runs it over every item at once; a caller that gets its files
    one by one can write each as soon as it and all before it are there, and
    :meth:`rewind` to a point where the items it wrote turn out not to be the final ones
    (a regular-file output only). See :func:`write_tar` for the output and ``sha256``.

    ``on_bytes`` may be changed between items (the progress callback; it may raise to stop).
    """

    def __init__(
        self,
        out: BinaryWriter,
        *,
        mtime: int | None = None,
        on_bytes: Callable[[int], None] | None = None,
        kernel_copy: bool = True,
        sha256: bool = False,
    ) -> None:
        when = fixed_mtime() if mtime is None else mtime
        if not 0 <= when < MAX_USTAR_NUMBER:
            raise ArchiveError(f"mtime {when} does not fit in a tar header")
        self.mtime = when
        self.on_bytes = on_bytes
        self.items: list[WrittenItem] = []
        self._sink = Sink(out, kernel=kernel_copy, sha256=sha256)
        self._hasher = hashing_thread()
        self._end = 0  # the output's size after the last complete item

    @property
    def content_bytes(self) -> int:
        """File content written so far (what progress counts)."""
        return sum(i.written.size for i in self.items if i.written is not None)

    def add(self, name: str, entry: Entry | None) -> None:
        """Write the next item of :func:`archive_order` (``entry`` None: a directory)."""
        start = self._sink.offset
        if start != self._end:  # a failed item left a part behind
            raise ArchiveError(f"cannot add {name!r}: the previous item was not complete")
        if entry is None:
            self._sink.write(
                header(name, size=0, mtime=self.mtime, directory=True, executable=False)
            )
            self._done(WrittenItem(name, None, start, None))
            return
        opened = Opened(entry)
        try:
            self._sink.write(
                header(
                    name,
                    size=opened.size,
                    mtime=self.mtime,
                    directory=False,
                    executable=entry.executable,
                )
            )
            written = opened.write(
                self._sink.write, self._sink.copy_from, self.on_bytes, self._hasher
            )
        finally:
            opened.close()
        if opened.size % BLOCK:
            self._sink.write(bytes(BLOCK - opened.size % BLOCK))
        self._done(WrittenItem(name, entry, start, written))

    def _done(self, item: WrittenItem) -> None:
        self.items.append(item)
        self._end = self._sink.offset

    def rewind(self, count: int) -> None:
        """Keep the first ``count`` items written (and nothing of an item that failed)."""
        if count > len(self.items):
            raise ValueError(f"only {len(self.items)} items were written")
        offset = self.items[count].start if count < len(self.items) else self._end
        if offset != self._sink.offset:
            self._sink.rewind(offset)
        del self.items[count:]
        self._end = offset

    def finish(self) -> WrittenArchive:
        """End the archive (two zero blocks, padding to a whole record), flush; the files
        written, in order, with the archive's size and (if asked) sha256."""
        if self._sink.offset != self._end:
            self.rewind(len(self.items))
        self._sink.write(bytes(2 * BLOCK))
        if self._sink.offset % RECORD:
            self._sink.write(bytes(RECORD - self._sink.offset % RECORD))
        written = WrittenArchive(i.written for i in self.items if i.written is not None)
        written.sha256 = self._sink.finish()
        written.size = self._sink.offset
        return written

    def close(self) -> None:
        """Stop the helper threads (after :meth:`finish`, or to abandon the archive)."""
        self._hasher.shutdown(wait=True)
        self._sink.close()


def archive_order(entries: Iterable[Entry]) -> list[tuple[str, Entry | None]]:
    """The names validated, and every item in archive order: ``(name, entry)``, with the
    synthesised directories as ``(name, None)``."""
    return plan(entries)


def write_tar(
    entries: Iterable[Entry],
    out: BinaryWriter,
    *,
    mtime: int | None = None,
    on_bytes: Callable[[int], None] | None = None,
    kernel_copy: bool = True,
    sha256: bool = False,
) -> WrittenArchive:
    """Write a deterministic, uncompressed tar of ``entries`` to ``out`` (may be a pipe).

    Returns one :class:`WrittenEntry` per file, in archive order, and the archive's size.
    ``on_bytes`` is called with the number of content bytes after each chunk (progress).
    ``out`` is flushed, not closed.

    When ``out`` has a descriptor (a file, a pipe) we write the headers and padding to it
    ourselves and copy large verified files in the kernel (``kernel_copy`` False: never); an
    ``out`` without one (a wrapper) gets every byte through ``write``. The bytes are the same
    either way. ``sha256``: also compute the archive's own hash, on a helper thread.
    """
    writer = TarWriter(out, mtime=mtime, on_bytes=on_bytes, kernel_copy=kernel_copy, sha256=sha256)
    try:
        for name, entry in plan(entries):
            writer.add(name, entry)
        return writer.finish()
    finally:
        writer.close()


def write_directory(
    entries: Iterable[Entry], dest: Path, *, kernel_copy: bool = True
) -> list[WrittenEntry]:
    """Write ``entries`` as a plain folder (``--directory-only``): copies, modes 0644/0755.

    ``dest`` must not exist or be empty. Returns the written files in archive order. Verified
    files are reflinked where the file system can, else copied in the kernel
    (``kernel_copy`` False: read and written); others are hashed while they are copied.
    """
    order = plan(entries)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ArchiveError(f"{dest} already exists and is not an empty directory")
    dest.mkdir(parents=True, exist_ok=True)
    dest.chmod(0o755)
    written: list[WrittenEntry] = []
    kernel = KernelCopy(kernel_copy)
    with hashing_thread() as hasher:
        for name, entry in order:
            target = dest.joinpath(*name.split("/"))
            if entry is None:
                target.mkdir()
                target.chmod(0o755)
                continue
            opened = Opened(entry)
            try:
                with target.open("xb") as fh:
                    out = fh.fileno()

                    def write(chunk: bytes | bytearray | memoryview, out: int = out) -> None:
                        write_fd(out, chunk)

                    def copy(
                        src: int,
                        size: int,
                        on_bytes: Callable[[int], None] | None,
                        out: int = out,
                    ) -> int:
                        if kernel_copy and clone(src, out):
                            os.lseek(src, size, os.SEEK_SET)
                            return size
                        return kernel.copy(src, out, size, on_bytes)

                    written.append(opened.write(write, copy, None, hasher))
            finally:
                opened.close()
            target.chmod(0o755 if entry.executable else 0o644)
    return written
