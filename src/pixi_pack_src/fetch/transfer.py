"""One attempt at one URL: the request (redirects hop by hop, each with its own credentials),
the body streamed raw into a temp file while it is hashed and bounded by the lock's size.

``http(s)://`` through the one client (:mod:`.client`), ``oci://``, ``s3://`` and ``gcs://``
through py-rattler's (:mod:`.protocols`), ``file://`` (local mirrors) copied: all three feed
the same hashing sink. A failure is raised as :class:`~.failures.AttemptError` with its kind;
whether and where to try again is :func:`pixi_pack_src.fetch.http.download_file`'s decision.
"""

from __future__ import annotations

import asyncio
import hashlib
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import httpx

from pixi_pack_src.fetch.auth import AuthStore
from pixi_pack_src.fetch.client import MAX_REDIRECTS
from pixi_pack_src.fetch.failures import (
    AttemptError,
    FailureKind,
    connect_failure,
    describe,
    status_reason,
    too_big,
)
from pixi_pack_src.fetch.protocols import ProtocolClient, ProtocolError, is_protocol_url
from pixi_pack_src.fetch.redirects import REDIRECT_STATUSES, follow, hop_credentials
from pixi_pack_src.fetch.retry import DEADLINE_ENV, RetryPolicy, parse_retry_after
from pixi_pack_src.lock.locations import file_url_path

CHUNK_SIZE = 1 << 20  # for local files
# Network bodies are consumed as httpx reads them (64 KiB; re-chunking to 1 MiB costs a copy)
# and handed to the disk thread (:class:`_DiskThread`) in batches of about BATCH bytes: one
# hand-over per batch, not per chunk (a worker-thread call per chunk ran at ~200 MiB/s).
BATCH = 256 << 10
# Bytes received but not yet written and hashed, over all downloads, before they wait.
BACKLOG = 16 << 20


@dataclass(frozen=True)
class Got:
    """What one attempt delivered."""

    sha256: str
    md5: str | None
    size: int


class _Sink:
    """Writes and hashes chunks, bounded by the lock's size, reporting progress."""

    def __init__(
        self,
        fh: BinaryIO,
        *,
        md5: bool,
        expected_size: int | None,
        on_bytes: Callable[[int], None] | None,
    ) -> None:
        self.fh = fh
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5(usedforsecurity=False) if md5 else None
        self.size = 0
        self.expected_size = expected_size
        self.on_bytes = on_bytes

    def write(self, chunk: bytes) -> None:
        """Take ``chunk``; a body that grows past the lock's size fails at once."""
        if self.expected_size is not None and self.size + len(chunk) > self.expected_size:
            raise too_big(self.expected_size)
        self.fh.write(chunk)
        self.sha256.update(chunk)
        if self.md5 is not None:
            self.md5.update(chunk)
        self.size += len(chunk)
        if self.on_bytes is not None:
            self.on_bytes(len(chunk))

    def result(self) -> Got:
        md5 = self.md5.hexdigest() if self.md5 is not None else None
        return Got(self.sha256.hexdigest(), md5, self.size)


class _DiskThread:
    """The one thread that writes and hashes the bodies the event loop receives.

    The event loop then only parses HTTP: writing a GiB to disk and hashing it (sha256, and
    md5 when needed) costs about as much CPU as receiving it, and both release the GIL, so a
    second core does them while the loop receives the next chunks. Jobs run in the order
    given (one body's batches stay in order); at most :data:`BACKLOG` bytes wait, so memory
    stays bounded whatever the network's speed against the disk's.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Condition()
        self.backlog = 0
        self._thread: threading.Thread | None = None

    def submit(self, job: Callable[[], None], cost: int = 0) -> None:
        with self._lock:
            self.backlog += cost
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="pixi-pack-src-download-disk", daemon=True
                )
                self._thread.start()
        self._jobs.put(job)

    def done(self, cost: int) -> None:
        with self._lock:
            self.backlog -= cost
            if self.backlog <= BACKLOG // 2:
                self._lock.notify_all()

    def wait_below(self, limit: int) -> None:
        with self._lock:
            while self.backlog > limit:
                self._lock.wait()

    def _run(self) -> None:
        while True:
            self._jobs.get()()


_DISK = _DiskThread()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _ThreadedSink:
    """:class:`_Sink`'s job with the writing and hashing on :data:`_DISK`: the event loop
    bounds the size and reports progress, the disk thread writes and hashes, in order.

    It owns ``tmp`` once opened: :meth:`finish` (success) or :meth:`abandon` (any failure)
    must end it, and both return only when the disk thread is done with the file, so that a
    next attempt never races a write of this one."""

    def __init__(
        self,
        tmp: Path,
        *,
        md5: bool,
        expected_size: int | None,
        on_bytes: Callable[[int], None] | None,
    ) -> None:
        self.fh = tmp.open("wb")
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5(usedforsecurity=False) if md5 else None
        self.size = 0
        self.expected_size = expected_size
        self.on_bytes = on_bytes
        self._batch: list[bytes] = []
        self._batched = 0
        self._error: OSError | None = None
        self._stopped = False
        self._closed = threading.Event()

    def _write(self, chunks: list[bytes], cost: int) -> None:  # on the disk thread
        try:
            if self._error is None and not self._stopped:
                # one buffer: one write and one update per batch, each letting the GIL go
                # once (a thread taking the GIL back waits for the event loop to yield it)
                data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                self.fh.write(data)
                self.sha256.update(data)
                if self.md5 is not None:
                    self.md5.update(data)
        except OSError as exc:
            self._error = exc
        finally:
            _DISK.done(cost)

    def _close(self) -> None:  # on the disk thread
        try:
            self.fh.close()
        except OSError as exc:
            self._error = self._error or exc
        finally:
            self._closed.set()

    def _flush_batch(self) -> None:
        batch, cost = self._batch, self._batched
        self._batch, self._batched = [], 0
        _DISK.submit(lambda: self._write(batch, cost), cost)

    async def write(self, chunk: bytes) -> None:
        """Take ``chunk``; a body that grows past the lock's size fails at once."""
        if self.expected_size is not None and self.size + len(chunk) > self.expected_size:
            raise too_big(self.expected_size)
        if self._error is not None:
            raise self._error
        self._batch.append(chunk)
        self._batched += len(chunk)
        self.size += len(chunk)
        if self._batched >= BATCH:
            self._flush_batch()
            if _DISK.backlog > BACKLOG:
                await asyncio.to_thread(_DISK.wait_below, BACKLOG // 2)
        if self.on_bytes is not None:
            self.on_bytes(len(chunk))

    async def finish(self) -> Got:
        """Everything written, hashed and the file closed: what was received."""
        if self._batch:
            self._flush_batch()
        loop = asyncio.get_running_loop()
        closed: asyncio.Future[None] = loop.create_future()

        def close() -> None:
            self._close()
            loop.call_soon_threadsafe(_resolve, closed)

        _DISK.submit(close)
        try:
            await asyncio.shield(closed)
        except BaseException:
            self._closed.wait()  # the file stays ours until the disk thread let it go
            raise
        if self._error is not None:
            raise self._error
        md5 = self.md5.hexdigest() if self.md5 is not None else None
        return Got(self.sha256.hexdigest(), md5, self.size)

    def abandon(self) -> None:
        """The attempt failed: drop what is not written yet; wait until the file is closed
        (briefly: at most the bounded backlog is ahead)."""
        if self._closed.is_set():
            return
        self._stopped = True
        self._batch = []
        _DISK.submit(self._close)
        self._closed.wait()


async def attempt(
    client: httpx.AsyncClient,
    url: str,
    tmp: Path,
    auth: AuthStore,
    on_bytes: Callable[[int], None] | None,
    md5: bool,
    expected_size: int | None = None,
    deadline: float | None = None,
    protocols: ProtocolClient | None = None,
) -> Got:
    """Fetch ``url`` once into ``tmp``, within ``deadline`` seconds in all."""
    if url.lower().startswith("file:"):
        return await _copy_local(url, tmp, on_bytes, md5=md5, expected_size=expected_size)
    try:
        async with asyncio.timeout(deadline):
            if is_protocol_url(url):
                return await _protocol_attempt(
                    protocols, url, tmp, on_bytes, md5=md5, expected_size=expected_size
                )
            return await _attempt_http(client, url, tmp, auth, on_bytes, md5, expected_size)
    except TimeoutError as exc:
        raise AttemptError(
            "permanent",
            f"took longer than {deadline:g} s in all (set {DEADLINE_ENV} to allow more)",
        ) from exc


async def _attempt_http(
    client: httpx.AsyncClient,
    url: str,
    tmp: Path,
    auth: AuthStore,
    on_bytes: Callable[[int], None] | None,
    md5: bool,
    expected_size: int | None,
) -> Got:
    hop = url
    downgraded = False
    for _ in range(MAX_REDIRECTS + 1):
        try:
            headers: dict[str, str]
            if downgraded:
                target, headers = hop, {}
            else:
                target, headers = hop_credentials(auth, url, hop)
            async with client.stream(
                "GET", target, headers=headers, follow_redirects=False
            ) as response:
                status = response.status_code
                if status in REDIRECT_STATUSES and "location" in response.headers:
                    hop, downgrade = follow(hop, response.headers["location"])
                    downgraded = downgraded or downgrade  # no credentials from here on
                    continue
                if status != 200:
                    reason = status_reason(response)
                    if RetryPolicy.retryable_status(status):
                        retry_after = parse_retry_after(response.headers.get("retry-after"))
                        raise AttemptError(
                            "transient", reason, status=status, retry_after=retry_after
                        )
                    raise AttemptError("permanent", reason, status=status)
                announced = response.headers.get("content-length")
                if (
                    expected_size is not None
                    and announced is not None
                    and announced.isdigit()
                    and int(announced) > expected_size
                ):
                    raise too_big(expected_size)
                sink = _ThreadedSink(tmp, md5=md5, expected_size=expected_size, on_bytes=on_bytes)
                try:
                    async for chunk in response.aiter_raw():
                        await sink.write(chunk)
                    got = await sink.finish()
                finally:
                    sink.abandon()
                if announced is not None and announced.isdigit() and int(announced) != sink.size:
                    raise AttemptError(
                        "transient", f"truncated body ({sink.size} of {announced} bytes)"
                    )
                return got
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise AttemptError("permanent", f"unsupported URL ({describe(exc)})") from exc
        except httpx.ConnectTimeout as exc:
            seconds = client.timeout.connect
            raise AttemptError(
                "connect", f"no connection within {seconds:g} s (--connect-timeout)"
            ) from exc
        except httpx.ConnectError as exc:
            raise connect_failure(exc, hop) from exc
        except httpx.ReadTimeout as exc:
            seconds = client.timeout.read
            raise AttemptError(
                "transient", f"nothing received for {seconds:g} s (--timeout)"
            ) from exc
        except httpx.TimeoutException as exc:
            raise AttemptError("transient", f"timed out ({describe(exc)})") from exc
        except httpx.TransportError as exc:
            raise AttemptError("transient", describe(exc)) from exc
    raise AttemptError("permanent", f"more than {MAX_REDIRECTS} redirects")


async def _protocol_attempt(
    protocols: ProtocolClient | None,
    url: str,
    tmp: Path,
    on_bytes: Callable[[int], None] | None,
    *,
    md5: bool,
    expected_size: int | None = None,
) -> Got:
    """``oci://``, ``s3://``, ``gcs://``: py-rattler's client, our sink and our checks (the
    lock's size bounds the body while it streams)."""
    if protocols is None:
        raise AttemptError("permanent", "unsupported URL (no client for this scheme here)")
    with tmp.open("wb") as fh:
        sink = _Sink(fh, md5=md5, expected_size=expected_size, on_bytes=on_bytes)
        try:
            await protocols.download(url, sink.write)
        except AttemptError:
            raise
        except ProtocolError as exc:
            kind: FailureKind = (
                "connect"
                if exc.kind == "connect"
                else "transient"
                if exc.kind == "transient"
                else "permanent"
            )
            raise AttemptError(kind, exc.reason, status=exc.status) from exc
    return sink.result()


async def _copy_local(
    url: str,
    tmp: Path,
    on_bytes: Callable[[int], None] | None,
    *,
    md5: bool,
    expected_size: int | None = None,
) -> Got:
    source = file_url_path(url)

    def copy() -> Got:
        try:
            src = source.open("rb")
        except FileNotFoundError as exc:
            raise AttemptError("permanent", f"no such file {source}") from exc
        except OSError as exc:
            raise AttemptError("permanent", f"cannot read {source}: {exc}") from exc
        with src, tmp.open("wb") as fh:
            sink = _Sink(fh, md5=md5, expected_size=expected_size, on_bytes=on_bytes)
            while chunk := src.read(CHUNK_SIZE):
                sink.write(chunk)
        return sink.result()

    return await asyncio.to_thread(copy)
