"""The tar writer's output (:class:`Sink`) and the archive's own sha256
(:class:`_ArchiveHash`).

Headers, padding and small files go into our own buffer, written straight to the output's
descriptor; large verified files are copied in the kernel (:mod:`.kernel_copy`) between two
writes. An output without a plain descriptor (a wrapper) gets every byte through ``write``;
the bytes are the same either way. The archive's hash is taken on a helper thread in archive
order, reading a kernel-copied file again through its own descriptor, so asking for it does
not force the bytes through Python. The sink can be cut back to an earlier offset (a
regular-file output only): :meth:`.tar.TarWriter.rewind`.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import hashlib
import os
import stat
from collections.abc import Callable

from pixi_pack_src.archive.kernel_copy import SMALL, KernelCopy, fileno, write_fd
from pixi_pack_src.archive.members import CHUNK, BinaryWriter, write_all
from pixi_pack_src.errors import ArchiveError
from pixi_pack_src.hashing import FileIdentity


class _ArchiveHash:
    """The archive's own sha256, computed on a helper thread in archive order, so that the
    bytes can still be copied in the kernel: headers and buffered data are handed over as
    copies, a kernel-copied file is read again by the helper through its own descriptor (the
    writer checks the file's identity after the copy, so both read the same bytes). At most
    :data:`_HASH_BACKLOG` bytes of copies wait for the helper."""

    def __init__(self) -> None:
        self.sha = hashlib.sha256()
        self.pool = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="pixi-pack-src-archive-sha256"
        )
        self.pending: collections.deque[tuple[concurrent.futures.Future[None], int]] = (
            collections.deque()
        )
        self.backlog = 0

    def data(self, data: bytes | bytearray | memoryview) -> None:
        blob = bytes(data)
        self._submit(self.pool.submit(self.sha.update, blob), len(blob))

    def file(self, fd: int, size: int) -> None:
        identity = FileIdentity.of(os.fstat(fd))
        self._submit(self.pool.submit(_hash_fd, self.sha, os.dup(fd), size, identity), 0)

    def _submit(self, future: concurrent.futures.Future[None], cost: int) -> None:
        self.pending.append((future, cost))
        self.backlog += cost
        while self.backlog > _HASH_BACKLOG or (self.pending and self.pending[0][0].done()):
            done, cost = self.pending.popleft()
            done.result()
            self.backlog -= cost

    def digest(self) -> str:
        while self.pending:
            self.pending.popleft()[0].result()
        self.backlog = 0
        return self.sha.hexdigest()

    def close(self) -> None:
        for future, _ in self.pending:
            future.cancel()
        self.pool.shutdown(wait=True)


_HASH_BACKLOG = 64 * 1024 * 1024


def _hash_fd(sha: hashlib._Hash, fd: int, size: int, identity: FileIdentity) -> None:
    """Feed ``size`` bytes of ``fd`` from its start into ``sha``; close ``fd``. The file must
    keep ``identity`` (what it had when it was copied) until then."""
    try:
        buffer = memoryview(bytearray(min(CHUNK, max(size, 1))))
        offset = 0
        while offset < size:
            n = os.preadv(fd, [buffer[: min(len(buffer), size - offset)]], offset)
            if not n:
                raise ArchiveError(
                    f"a file shrank while being archived (expected {size} bytes, got {offset})",
                    hint="do not modify the cache or inputs while packing",
                )
            sha.update(buffer[:n])
            offset += n
        if FileIdentity.of(os.fstat(fd)) != identity:
            raise ArchiveError(
                "a file changed while being archived (after its copy, before its hash)",
                hint="do not modify the cache or inputs while packing",
            )
    finally:
        os.close(fd)


def _hash_range(fd: int, size: int) -> str:
    """The sha256 of the first ``size`` bytes of ``fd`` (read with ``pread``)."""
    sha = hashlib.sha256()
    buffer = memoryview(bytearray(CHUNK))
    offset = 0
    while offset < size:
        n = os.preadv(fd, [buffer[: min(CHUNK, size - offset)]], offset)
        if not n:
            raise ArchiveError(f"the archive shrank while being written ({offset} of {size})")
        sha.update(buffer[:n])
        offset += n
    return sha.hexdigest()


class Sink:
    """The tar output: our own buffer for headers, padding and small files, written straight
    to the descriptor; large verified files are copied in the kernel between two writes.
    With ``sha256``, the archive's own hash on the way (:class:`_ArchiveHash`)."""

    def __init__(self, out: BinaryWriter, *, kernel: bool, sha256: bool = False) -> None:
        self.out = out
        self.fd = fileno(out) if kernel else None
        if self.fd is not None:
            out.flush()  # what the caller wrote before us goes first
        self.kernel = KernelCopy(self.fd is not None)
        self.buffer = bytearray()
        self.offset = 0
        self.hash = _ArchiveHash() if sha256 else None
        self.rehash = False  # rewound with a hash on the way: hash the finished file instead

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.offset += len(data)
        if self.fd is None:
            write_all(self.out, data)
            if self.hash is not None:
                self.hash.data(data)
        elif len(data) >= SMALL:
            self.drain()
            write_fd(self.fd, data)
            if self.hash is not None:
                self.hash.data(data)
        else:
            self.buffer += data
            if len(self.buffer) >= CHUNK:
                self.drain()

    def drain(self) -> None:
        if self.fd is not None and self.buffer:
            write_fd(self.fd, self.buffer)
            if self.hash is not None:
                self.hash.data(self.buffer)
            self.buffer.clear()

    def copy_from(self, src: int, size: int, on_bytes: Callable[[int], None] | None) -> int:
        """Kernel-copy up to ``size`` bytes of ``src``; 0 when not possible here."""
        if self.fd is None or size < SMALL:
            return 0
        self.drain()
        done = self.kernel.copy(src, self.fd, size, on_bytes)
        self.offset += done
        if done and self.hash is not None:
            self.hash.file(src, done)
        return done

    def rewind(self, offset: int) -> None:
        """Cut the output back to ``offset``: what followed is written again. Only for a
        regular file written through our own descriptor. The archive's hash, if asked, is
        then taken from the finished file (one more read, only on this rare path: the file
        must be open for reading too, as :func:`~.atomic.atomic_file` opens it)."""
        if self.fd is None or not stat.S_ISREG(os.fstat(self.fd).st_mode):
            raise ArchiveError("cannot rewind an archive that is not written to a file")
        self.drain()
        os.ftruncate(self.fd, offset)
        os.lseek(self.fd, offset, os.SEEK_SET)
        self.offset = offset
        if self.hash is not None:
            with contextlib.suppress(Exception):  # let its pending reads end (they own fds)
                self.hash.digest()
            self.hash.close()
            self.hash = None
            self.rehash = True

    def finish(self) -> str | None:
        """Write what is buffered, flush; the archive's sha256 if asked."""
        self.drain()
        self.out.flush()
        if self.rehash:
            assert self.fd is not None
            return _hash_range(self.fd, self.offset)
        return self.hash.digest() if self.hash is not None else None

    def close(self) -> None:
        if self.hash is not None:
            self.hash.close()
