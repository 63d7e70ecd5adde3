"""The content-addressed download cache (``--use-cache DIR``).

Layout under the root::

    CACHEDIR.TAG                          written on first store (https://bford.info/cachedir/)
    pkgs/sha256/<ab>/<sha256>             the bytes, named by their sha256
    pkgs/sha256/<ab>/<sha256>.json        {"size": ..., "md5": ...} for those bytes
    pkgs/sha256/<ab>/<sha256>.lock        per-entry lock file (empty)
    pkgs/md5/<ab>/<md5>                   text: the sha256 of an entry (md5-only lock entries)
    pkgs/url/<ab>/<sha256 of the URL>     text: the sha256 of an entry (lock entries without
                                          any hash; keyed by the lock URL)
    tmp/                                  partial downloads, renamed into pkgs/ when verified

**Verified once, then trusted by its record.** Every entry is hashed when it enters the cache
(the download hashes the bytes as they arrive). Its sidecar ``.json`` records, beside the md5,
what identifies that exact file on disk: size, ``mtime_ns``, ``ctime_ns``, inode and device (as
git's index and ccache do). A hit whose file still has the recorded identity is used without
re-hashing; any difference (a write moves ``ctime``, which cannot be set back; a replacement
changes the inode) re-hashes the entry, evicts it on a wrong digest and re-records it
otherwise. ``ContentCache(root, verify=True)`` (``pack --verify-cache``) re-hashes every hit
and :func:`verify_cache` (``pixi-pack-src cache verify``) the whole cache, for the cautious:
what a record cannot see is a change below the file system (media corruption) or someone who
rewrites the record too. (Unpack still checks every package against the lock's sha256.)
A hit carries its :class:`~pixi_pack_src.hashing.Verified` identity, so the archive writer can
check, at no cost, that the file is still the one that was verified.

**Concurrency.** Entries are written to ``tmp/`` and moved into place with ``os.replace``
(atomic on one filesystem), so readers see either nothing or a complete file. Two processes
storing the same entry both succeed: the content is identical by construction. Removing a
corrupt entry and storing one take the per-entry lock (``fcntl.flock`` where available), and
removal only happens if the file is still the very inode that failed verification, so a good
entry stored meanwhile by another process is never deleted. Index files (md5, url) are pointers
that are always re-verified through the sha256 entry.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pixi_pack_src.atomicfile import write_atomically
from pixi_pack_src.errors import PixiPackSrcError
from pixi_pack_src.hashing import FileIdentity, Verified, hash_stream
from pixi_pack_src.lock.model import Hashes
from pixi_pack_src.safepath import is_plain_directory, under

log = logging.getLogger(__name__)

CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by pixi-pack-src.\n"
    "# For information about cache directory tags see https://bford.info/cachedir/\n"
)
STALE_TMP_SECONDS = 24 * 3600

try:  # POSIX
    import fcntl

    def _lock_fd(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)

except ImportError:  # pragma: no cover - Windows: atomic renames and inode checks only

    def _lock_fd(fd: int) -> None:
        return None


class CacheDirError(PixiPackSrcError):
    """A ``--use-cache`` directory that is not (only) a cache this tool made."""


@dataclass(frozen=True)
class CacheEntry:
    """A verified cache entry: hashed now, or trusted by its record (``rehashed`` False)."""

    path: Path
    sha256: str
    md5: str
    size: int
    verified: Verified | None = field(default=None, compare=False)
    rehashed: bool = field(default=True, compare=False)


@dataclass(frozen=True)
class _Record:
    """An entry's sidecar: its md5 and the identity of the file when it was hashed."""

    md5: str | None
    identity: FileIdentity | None
    recorded_ns: int

    def vouches_for(self, st: os.stat_result) -> bool:
        return (
            self.identity is not None
            and self.identity == FileIdentity.of(st)
            and not self.identity.racy(self.recorded_ns)
        )


class ContentCache:
    """A content-addressed store of verified artifacts (see the module docstring)."""

    def __init__(self, root: Path, *, verify: bool = False) -> None:
        self.root = Path(root)
        self.verify = verify  # re-hash every hit, whatever its record says
        self._ensured = False

    def __repr__(self) -> str:
        return f"ContentCache({str(self.root)!r})"

    # -- paths
    def path_for(self, sha256: str) -> Path:
        sha256 = sha256.lower()
        return self.root / "pkgs" / "sha256" / sha256[:2] / sha256

    def _index_path(self, namespace: str, key: str) -> Path:
        return self.root / "pkgs" / namespace / key[:2] / key

    @staticmethod
    def _url_key(url: str) -> str:
        return hashlib.sha256(url.encode()).hexdigest()

    @property
    def tmp_dir(self) -> Path:
        """Where partial downloads go (same filesystem as the entries)."""
        return self.root / "tmp"

    def new_tmp_path(self, name: str) -> Path:
        """A fresh path in :attr:`tmp_dir` for a download of ``name``."""
        self.ensure()
        return under(self.tmp_dir, f"{secrets.token_hex(8)}-{name}", what="a download")

    def ensure(self) -> None:
        """Create the root, ``tmp/`` and ``CACHEDIR.TAG`` (idempotent, race-free); the first
        time, also remove partial files left in ``tmp/`` by runs that died a day ago or more.

        Checked first, since a cache directory may have been restored from somewhere else:
        a directory holding anything but ``tmp/``/``pkgs/`` without our ``CACHEDIR.TAG`` is
        not taken for a cache (nothing in it is written or removed), ``tmp/`` and ``pkgs/``
        must be real directories, not symbolic links, and ``tmp/`` is cleaned only when the
        tag was there before this run. Cleaning works on ``tmp/`` through a descriptor opened without
        following links, and removes only files (never what a link points to)."""
        tagged = False
        if not self._ensured:
            tagged = self._check_root()
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        tag = self.root / "CACHEDIR.TAG"
        if not tag.exists():
            write_atomically(tag, CACHEDIR_TAG.encode(), tmp_dir=self.tmp_dir)
        if not self._ensured:
            self._ensured = True
            if tagged:  # never clean a directory this tool did not make
                self._clean_tmp()

    def _check_root(self) -> bool:
        """Refuse a root that is not a cache; return whether it has our CACHEDIR.TAG."""
        for sub in ("tmp", "pkgs"):
            path = self.root / sub
            if path.is_symlink() or (path.exists() and not is_plain_directory(path)):
                raise CacheDirError(
                    f"refusing the cache {self.root}: {sub}/ is a symbolic link or not a directory",
                    hint="a cache holds only directories it made; remove it and run again",
                )
        try:
            children = {p.name for p in self.root.iterdir()}
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise CacheDirError(f"cannot read the cache {self.root}: {exc}") from exc
        tagged = self._tagged()
        # a cache another run is creating right now has tmp/ (and pkgs/) before its tag
        if not tagged and children - {"tmp", "pkgs", "CACHEDIR.TAG"}:
            raise CacheDirError(
                f"refusing the cache {self.root}: it is not empty and has no CACHEDIR.TAG "
                "written by pixi-pack-src",
                hint="point --use-cache at an empty or new directory, or at a cache this tool made",
            )
        return tagged

    def _tagged(self) -> bool:
        try:
            head = (self.root / "CACHEDIR.TAG").read_bytes()[:64]
        except OSError:
            return False
        return head.startswith(CACHEDIR_TAG.split("\n", 1)[0].encode())

    def _clean_tmp(self) -> None:
        cutoff = time.time() - STALE_TMP_SECONDS
        flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(self.tmp_dir, flags)
        except OSError:
            return
        try:
            if os.listdir not in os.supports_fd:  # pragma: no cover - Windows
                return
            for name in os.listdir(fd):  # noqa: PTH208 (a descriptor, no path)
                with contextlib.suppress(OSError):
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                    if st.st_mtime < cutoff and not stat.S_ISDIR(st.st_mode):
                        os.unlink(name, dir_fd=fd)
        finally:
            os.close(fd)

    # -- lookups
    def lookup(self, sha256: str, *, size: int | None) -> Path | None:
        """The entry for ``sha256`` after re-hashing it, or ``None``.

        A corrupt entry (content no longer matching its name) is removed and ``None`` returned.
        A good entry whose size differs from ``size`` (an inconsistent lock) is kept, but is a
        miss.
        """
        entry = self._verified(sha256.lower(), size=size, want_md5=None, lock_md5="")
        return entry.path if entry is not None else None

    def find(self, hashes: Hashes, *, url: str | None = None) -> CacheEntry | None:
        """The verified entry for what a lock records: by sha256, else md5, else ``url``.

        The entry's md5 comes from its sidecar, or is the lock's own md5 when the sha256 check
        proved the bytes, or is computed.
        """
        lock_md5 = hashes.md5.lower() if hashes.md5 is not None else None
        if hashes.sha256 is not None:
            return self._verified(
                hashes.sha256.lower(), size=hashes.size, want_md5=None, lock_md5=lock_md5
            )
        if hashes.md5 is not None:
            pointer = self._read_pointer(self._index_path("md5", hashes.md5.lower()))
            if pointer is None:
                return None
            return self._verified(pointer, size=hashes.size, want_md5=lock_md5, lock_md5=None)
        if url is not None:
            pointer = self._read_pointer(self._index_path("url", self._url_key(url)))
            if pointer is None:
                return None
            return self._verified(pointer, size=hashes.size, want_md5=None, lock_md5=None)
        return None

    def _read_pointer(self, path: Path) -> str | None:
        try:
            text = path.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            return None
        if len(text) == 64 and all(c in "0123456789abcdef" for c in text):
            return text
        return None

    def _verified(
        self, sha256: str, *, size: int | None, want_md5: str | None, lock_md5: str | None
    ) -> CacheEntry | None:
        """The entry, trusted by its record or re-hashed. ``want_md5``: an md5 the bytes must
        have; ``lock_md5``: an md5 to report when no record has one (``None``: compute it)."""
        path = self.path_for(sha256)
        try:
            fh = path.open("rb")
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("cache entry %s cannot be read (%s); ignoring it", path, exc)
            return None
        with fh:
            stat = os.fstat(fh.fileno())
            record = self._read_record(path)
            if (
                not self.verify
                and record is not None
                and record.vouches_for(stat)
                and (record.md5 is not None or (want_md5 is None and lock_md5 is not None))
            ):
                md5 = record.md5 or lock_md5 or ""
                trusted = Verified(sha256, FileIdentity.of(stat))
                return self._accept(path, sha256, md5, stat.st_size, size, want_md5, trusted)
            recorded_ns = time.time_ns()
            need_md5 = want_md5 is not None or (
                (record is None or record.md5 is None) and lock_md5 is None
            )
            got_sha, computed, got = hash_stream(fh, md5=need_md5)
            after = os.fstat(fh.fileno())
        if got_sha != sha256:
            log.warning("cache entry %s is corrupt (sha256 mismatch); removing it", path)
            self._remove_if_same(path, stat)
            return None
        md5 = computed or (record.md5 if record is not None else None) or lock_md5 or ""
        identity = FileIdentity.of(after)
        verified = Verified(sha256, identity) if identity == FileIdentity.of(stat) else None
        entry = self._accept(path, sha256, md5, got, size, want_md5, verified, rehashed=True)
        known_md5 = computed or (record.md5 if record is not None else None)
        if entry is not None and verified is not None:
            self._write_record(path, known_md5, got, identity, recorded_ns)
        return entry

    @staticmethod
    def _accept(
        path: Path,
        sha256: str,
        md5: str,
        got: int,
        size: int | None,
        want_md5: str | None,
        verified: Verified | None,
        *,
        rehashed: bool = False,
    ) -> CacheEntry | None:
        if want_md5 is not None and md5 != want_md5:
            log.debug("cache entry %s does not have md5 %s; a miss", path, want_md5)
            return None
        if size is not None and size != got:
            log.debug("cache entry %s has %d bytes, the lock says %d; a miss", path, got, size)
            return None
        return CacheEntry(path, sha256, md5, got, verified, rehashed)

    def _read_record(self, path: Path) -> _Record | None:
        try:
            data = json.loads(path.with_name(path.name + ".json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict):
            return None
        md5 = data.get("md5")
        recorded = data.get("recorded_ns")
        return _Record(
            md5 if isinstance(md5, str) and len(md5) == 32 else None,
            FileIdentity.from_json(data.get("file")),
            recorded if isinstance(recorded, int) else 0,
        )

    def _write_record(
        self,
        path: Path,
        md5: str | None,
        size: int,
        identity: FileIdentity | None,
        recorded_ns: int,
    ) -> None:
        with contextlib.suppress(OSError):
            self.ensure()
            write_atomically(
                path.with_name(path.name + ".json"),
                _record_json(md5, size, identity, recorded_ns),
                tmp_dir=self.tmp_dir,
            )

    def _remove_if_same(self, path: Path, stat: os.stat_result) -> None:
        with self._entry_lock(path):
            try:
                now = path.stat()
            except FileNotFoundError:
                return
            if (now.st_dev, now.st_ino) == (stat.st_dev, stat.st_ino):
                path.unlink(missing_ok=True)

    @contextlib.contextmanager
    def _entry_lock(self, path: Path) -> Iterator[None]:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o666)
        try:
            _lock_fd(fd)
            yield
        finally:
            os.close(fd)  # releases the lock

    # -- stores
    def store_entry(
        self,
        tmp: Path,
        sha256: str,
        *,
        md5: str | None = None,
        size: int | None = None,
        url: str | None = None,
    ) -> CacheEntry:
        """Move the verified file ``tmp`` into the cache as ``sha256``; return the entry.

        ``tmp`` must be on the cache's filesystem (use :meth:`new_tmp_path`); it is renamed,
        never copied. ``md5``/``size`` (computed from the same bytes, never a lock's claim)
        fill the sidecar and the md5 index;
        ``url`` adds a URL index entry (for lock entries without a hash).
        """
        self.ensure()
        sha256 = sha256.lower()
        final = self.path_for(sha256)
        final.parent.mkdir(parents=True, exist_ok=True)
        with self._entry_lock(final):
            kept = None if self.verify else self._recorded_stat(final)
            if kept is not None:
                # Another run stored these bytes first and may be archiving that very file:
                # keep it (same digest, so same content) rather than replace it under that run.
                tmp.unlink(missing_ok=True)
                record, stat = kept
                identity = FileIdentity.of(stat)
                trusted = Verified(sha256, identity) if record.vouches_for(stat) else None
                kept_entry = CacheEntry(final, sha256, md5 or "", identity.size, trusted, False)
            else:
                kept_entry = None
                recorded_ns = time.time_ns()
                tmp.replace(final)
                identity = FileIdentity.of_path(final)
                # Under the entry's lock, so that a record never describes another process's
                # file.
                write_atomically(
                    final.with_name(final.name + ".json"),
                    _record_json(
                        md5, size if size is not None else identity.size, identity, recorded_ns
                    ),
                    tmp_dir=self.tmp_dir,
                )
        if md5 is not None:
            self._write_pointer(self._index_path("md5", md5.lower()), sha256)
        if url is not None:
            self._write_pointer(self._index_path("url", self._url_key(url)), sha256)
        if kept_entry is not None:
            return kept_entry
        return CacheEntry(
            final, sha256, md5 or "", identity.size, Verified(sha256, identity), rehashed=False
        )

    def _recorded_stat(self, path: Path) -> tuple[_Record, os.stat_result] | None:
        """The entry at ``path`` with its record, when the record describes that very file
        (its identity; the racy-clean rule decides later whether it is trusted unhashed)."""
        try:
            stat = path.stat()
        except OSError:
            return None
        record = self._read_record(path)
        if record is None or record.identity != FileIdentity.of(stat):
            return None
        return record, stat

    def _write_pointer(self, path: Path, sha256: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, sha256.encode("ascii"), tmp_dir=self.tmp_dir)


def _record_json(
    md5: str | None, size: int, identity: FileIdentity | None, recorded_ns: int
) -> bytes:
    doc: dict[str, object] = {"size": size, "recorded_ns": recorded_ns}
    if md5 is not None:
        doc["md5"] = md5
    if identity is not None:
        doc["file"] = identity.to_json()
    return json.dumps(doc, sort_keys=True).encode()


@dataclass(frozen=True)
class CacheCheck:
    """What :func:`verify_cache` found: entries re-hashed, their bytes, the ones removed."""

    root: Path
    checked: int
    size: int
    removed: tuple[str, ...]  # sha256 of the entries whose bytes no longer matched their name

    def to_json(self) -> dict[str, object]:
        return {
            "cache": str(self.root),
            "checked": self.checked,
            "bytes": self.size,
            "removed": list(self.removed),
        }


def verify_cache(root: Path, *, on_entry: Callable[[str], None] | None = None) -> CacheCheck:
    """Re-hash every entry of the cache at ``root`` (``pixi-pack-src cache verify``).

    A corrupt entry is removed; a good one gets a fresh record (so later hits trust it).
    ``on_entry`` is called with each entry's sha256 before it is hashed (progress).
    """
    cache = ContentCache(root, verify=True)
    base = cache.root / "pkgs" / "sha256"
    names: list[str] = []
    with contextlib.suppress(FileNotFoundError):
        for shard in sorted(base.iterdir()):
            if not shard.is_dir() or shard.is_symlink():
                continue
            names += sorted(p.name for p in shard.iterdir() if _is_digest(p.name))
    checked, size, removed = 0, 0, []
    for sha256 in names:
        if on_entry is not None:
            on_entry(sha256)
        entry = cache._verified(sha256, size=None, want_md5=None, lock_md5=None)
        if entry is None:
            if not cache.path_for(sha256).exists():
                removed.append(sha256)
            continue
        checked += 1
        size += entry.size
    return CacheCheck(cache.root, checked, size, tuple(removed))


def _is_digest(name: str) -> bool:
    return len(name) == 64 and all(c in "0123456789abcdef" for c in name)
