"""Write a platform's archive while its files are still being fetched (issue 15).

The archive's order is fixed by its names (sorted at each directory level, see
:mod:`pixi_pack_src.archive.members`), and most names are known before anything is fetched: the
plan's conda downloads and copies. So the archive is started before the downloads: a writer
thread appends each item as soon as it and every item before it are there (directories at
once, a file when its download is verified), up to the first item that only exists once
everything is collected (a ``repodata.json``, the metadata files, a package still to be
built). :func:`~pixi_pack_src.pack.write.write_platform` then compares what was written with
the final list of items, cuts the archive back to the first item that differs (a prediction
that did not hold, e.g. an ``--inject`` of the same name), and writes the rest. The bytes are
the same as a pack written in one go; the files are copied from where they were downloaded
(in the kernel, without hashing them again: :class:`~pixi_pack_src.hashing.Verified`), never
held in memory.

The output is :func:`~pixi_pack_src.archive.atomic.atomic_file` from the start: nameless until
the pack succeeds, so a failure or Ctrl-C leaves nothing behind. Only plain archive files are
written early (not stdout, ``--create-executable``, ``--directory-only`` or a delta).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import cast

from pixi_pack_src.archive.atomic import atomic_file
from pixi_pack_src.archive.channel import REPODATA_JSON
from pixi_pack_src.archive.members import Entry, WrittenArchive
from pixi_pack_src.archive.tar import TarWriter, archive_order
from pixi_pack_src.errors import ArchiveError, PixiPackSrcError
from pixi_pack_src.fetch.config import FetchConfig
from pixi_pack_src.fetch.download import Artifact, Fetched
from pixi_pack_src.layout import conda_path
from pixi_pack_src.lock.model import CondaBinary, CondaSource
from pixi_pack_src.pack.collect import PlatformWork
from pixi_pack_src.pack.options import PackOptions

log = logging.getLogger(__name__)

# The first metadata file at the top of the archive: everything after it waits for the end.
_FIRST_METADATA = "environment.yml"


class _AbandonedError(Exception):
    """The pack failed elsewhere: the writer thread stops between two chunks."""


def early_order(work: PlatformWork, config: FetchConfig) -> list[tuple[str, str | None]]:
    """The first items of ``work``'s archive that the fetch alone completes: ``(name, key)``
    with ``key`` the artifact's fetch key, or ``None`` for a directory. Ends before the first
    item that is made later (a ``repodata.json``, a built package, the metadata files)."""
    plan = work.plan
    keys: dict[str, str] = {}
    entries: list[Entry] = []
    subdirs = {plan.platform.subdir, "noarch"}
    for item in plan.items:
        entry = item.entry
        if item.action in ("download", "copy") and isinstance(entry, CondaBinary):
            name = entry.archive_path
            keys[name] = Artifact.from_conda(entry, config).key
            entries.append(Entry(name, Path(name)))
            subdirs.add(entry.record.subdir)
        elif item.action == "build-conda":
            source = cast("CondaSource", entry)
            # a built package is named "<name>-<version>-<build>...": it sorts after "<name>-"
            for subdir in {source.subdir or plan.platform.subdir, "noarch"}:
                entries.append(Entry(conda_path(subdir, f"{source.name}-"), b""))
    entries += [Entry(conda_path(subdir, REPODATA_JSON), b"") for subdir in subdirs]
    entries.append(Entry(_FIRST_METADATA, b""))
    try:
        ordered = archive_order(entries)
    except ArchiveError:  # names the final writer refuses (and explains): nothing early
        return []
    order: list[tuple[str, str | None]] = []
    for name, item_entry in ordered:
        if item_entry is None:
            order.append((name, None))
        elif name in keys:
            order.append((name, keys[name]))
        else:  # made later: everything from here on waits
            break
    return order


class EarlyArchive:
    """One platform's archive file, written by a thread as the fetch completes its items."""

    def __init__(
        self, target: Path, order: Sequence[tuple[str, str | None]], *, sha256: bool
    ) -> None:
        self._order = list(order)
        self._stack = contextlib.ExitStack()
        target.parent.mkdir(parents=True, exist_ok=True)
        fh = self._stack.enter_context(atomic_file(target))
        try:
            self._writer = TarWriter(fh, sha256=sha256, on_bytes=self._check)
        except BaseException as exc:
            self._stack.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self._cond = threading.Condition()
        self._ready: dict[str, Fetched] = {}
        self._fetching = True
        self._stopped = False
        self._closed = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, name="pixi-pack-src-early-archive", daemon=True
        )
        self._thread.start()

    # -- the event loop's side ----------------------------------------------------------------

    def fetched(self, got: Fetched) -> None:
        """A file is fetched and verified (called for every artifact; the unknown ignored)."""
        with self._cond:
            self._ready[got.artifact.key] = got
            self._cond.notify()

    def fetching_done(self) -> None:
        """No more files will come: the thread writes what it can and ends."""
        with self._cond:
            self._fetching = False
            self._cond.notify()

    # -- the writer thread ----------------------------------------------------------------------

    def _check(self, _n: int) -> None:
        if self._stopped:
            raise _AbandonedError

    def _next(self, index: int) -> tuple[str, Entry | None] | None:
        with self._cond:
            while not self._stopped and index < len(self._order):
                name, key = self._order[index]
                if key is None:
                    return name, None
                got = self._ready.get(key)
                if got is not None:
                    return name, Entry(name, got.path, verified=got.verified)
                if not self._fetching:
                    return None
                self._cond.wait()
            return None

    def _run(self) -> None:
        index = 0
        try:
            while (item := self._next(index)) is not None:
                self._writer.add(*item)
                index += 1
        except _AbandonedError:
            pass
        except BaseException as exc:  # noqa: BLE001 (the final pass writes it again, and reports)
            self._error = exc

    # -- the end --------------------------------------------------------------------------------

    def finish(
        self, entries: Sequence[Entry], on_bytes: Callable[[int], None] | None
    ) -> WrittenArchive:
        """Write the rest of the archive of ``entries`` (the final list): keep what was
        written early while it matches, cut back to the first item that differs."""
        self.fetching_done()
        self._thread.join()
        if self._error is not None:
            log.debug("writing the archive early stopped: %s", self._error)
        writer = self._writer
        final = archive_order(entries)
        keep = 0
        for done, (name, entry) in zip(writer.items, final, strict=False):
            if done.name != name or done.entry != entry:
                break
            keep += 1
        log.debug(
            "%d of %d items (%d bytes) were written while fetching; %d kept",
            len(writer.items),
            len(final),
            writer.content_bytes,
            keep,
        )
        writer.rewind(keep)
        writer.on_bytes = on_bytes
        if on_bytes is not None and writer.content_bytes:
            on_bytes(writer.content_bytes)
        for name, entry in final[keep:]:
            writer.add(name, entry)
        return writer.finish()

    def commit(self) -> None:
        """The archive is complete and checked: give it its name."""
        if self._closed:
            return
        self._closed = True
        self._writer.close()
        self._stack.close()

    def abort(self, exc: BaseException | None = None) -> None:
        """The pack failed: stop the thread, and leave nothing behind."""
        if self._closed:
            return
        self._closed = True
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._thread.join()
        self._writer.close()
        reason = exc if exc is not None else PixiPackSrcError("the pack did not complete")
        self._stack.__exit__(type(reason), reason, reason.__traceback__)


class EarlyArchives:
    """The early archives of a pack's platforms (those written to a plain file)."""

    def __init__(self) -> None:
        self._by_work: dict[int, EarlyArchive] = {}

    @classmethod
    def start(
        cls, works: Sequence[PlatformWork], options: PackOptions, config: FetchConfig
    ) -> EarlyArchives:
        early = cls()
        if options.create_executable or options.directory_only or options.inject:
            return early
        try:
            for work in works:
                if work.output == "-" or work.base is not None:
                    continue
                order = early_order(work, config)
                if any(key is not None for _, key in order):
                    early._by_work[id(work)] = EarlyArchive(
                        Path(work.output), order, sha256=options.archive_sha256
                    )
        except BaseException as exc:
            early.abort(exc)
            raise
        return early

    def get(self, work: PlatformWork) -> EarlyArchive | None:
        return self._by_work.get(id(work))

    def fetched(self, got: Fetched) -> None:
        for archive in self._by_work.values():
            archive.fetched(got)

    def fetching_done(self) -> None:
        for archive in self._by_work.values():
            archive.fetching_done()

    def abort(self, exc: BaseException | None = None) -> None:
        for archive in self._by_work.values():
            archive.abort(exc)

    def exit(self, exc_type: object, exc: BaseException | None, tb: object) -> bool:
        """For an exit stack: what was not committed is abandoned (also after success: an
        archive never finished is not a pack)."""
        self.abort(exc)
        return False
