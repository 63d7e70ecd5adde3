"""The one HTTP client factory and the one retry policy.

Every download goes through :func:`download_file`:

- the URLs (an artifact's mirrors) are tried in order;
- transient failures are retried on the same URL with exponential backoff and jitter, or after
  the server's ``Retry-After``: connection errors, timeouts (the *read* timeout, between two
  reads, not a total; the *connect* timeout), resets, bodies shorter than their
  ``Content-Length``, HTTP 408, 429 and 5xx. A connection error moves on to the next mirror at
  once when there is one;
- a host that does not resolve (DNS) or refuses the connection is named as such and retried
  at most once: patience does not fix a wrong URL, mirror or proxy, configuration does;
- other HTTP errors (404, 401, ...) are not retried on the same URL; the next mirror is tried;
- the body is streamed raw (no content decoding) to a temp file next to ``dest``, hashed while
  streaming, checked against the expected size and hash (sha256, else md5) and renamed into
  place. sha256 is always computed; md5 only when the lock lacks sha256 or md5 (when it has
  both, the bytes are proven by sha256 and the lock's md5 is reported). A mismatch is retried once from the network (the
  next mirror if there is one), then raises :class:`ChecksumMismatchError`. Nothing is left
  behind on failure.

Redirects are followed here, hop by hop, so that credentials from :class:`AuthStore` are
computed for every hop's own host: a redirect to another host never carries the first host's
``Authorization`` header (or conda token); after a redirect from ``https`` to plain ``http``
no credentials are sent at all, and a redirect to another port gets credentials only from an
entry for exactly that ``host:port``.

Bounds: the lock's ``size`` bounds the body while it streams (a larger ``Content-Length`` is
refused before reading, a longer body as soon as it passes the size), and one attempt at one
file has a total deadline (:attr:`RetryPolicy.deadline`, one hour by default,
``PIXI_PACK_SRC_DOWNLOAD_DEADLINE`` seconds when set, ``0`` for none), since the read timeout
alone lets a server drip a byte at a time forever.

``file://`` URLs (local mirrors) are copied with the same hashing and checks.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import logging
import os
import random
import secrets
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal
from urllib.parse import unquote, urljoin, urlsplit
from urllib.request import getproxies, proxy_bypass, url2pathname

import httpx

from pixi_pack_src._version import __version__
from pixi_pack_src.errors import (
    ChecksumMismatchError,
    DownloadError,
    PixiPackSrcError,
    UsageError,
)
from pixi_pack_src.fetch.auth import AuthStore
from pixi_pack_src.fetch.config import FetchConfig
from pixi_pack_src.fetch.protocols import ProtocolClient, ProtocolError, is_protocol_url
from pixi_pack_src.lock.model import Hashes
from pixi_pack_src.redact import redact_url as redact_url  # re-exported: older imports

log = logging.getLogger(__name__)

USER_AGENT = f"pixi-pack-src/{__version__}"
CHUNK_SIZE = 1 << 20  # for local files
# Network bodies are consumed as httpx reads them (64 KiB): on 127.0.0.1 with a 200 MiB file
# that runs at ~250 MiB/s (sha256+md5) / ~360 MiB/s (sha256) against ~160 MiB/s when httpx
# re-chunks to 1 MiB (its ByteChunker copies) and ~200 MiB/s when hashing in a worker thread.
MAX_REDIRECTS = 10
_REDIRECTS = frozenset({301, 302, 303, 307, 308})

Sleep = Callable[[float], Awaitable[None]]
DEFAULT_DEADLINE = 3600.0
DEADLINE_ENV = "PIXI_PACK_SRC_DOWNLOAD_DEADLINE"


def _deadline_from_env() -> float | None:
    raw = os.environ.get(DEADLINE_ENV, "").strip()
    if not raw:
        return DEFAULT_DEADLINE
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(
            f"{DEADLINE_ENV}={raw!r} is not a number of seconds",
            hint="set it to the seconds one file may take to download (0: no deadline)",
        ) from None
    if value != value or value < 0:
        raise UsageError(f"{DEADLINE_ENV}={raw!r} is not a number of seconds")
    return value or None


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a download is retried.

    ``retries`` counts attempts after the first, per URL. The delay before retry ``n`` (0-based)
    is ``min(backoff_max, backoff_base * 2**n)`` scaled by a random factor in
    ``[1 - jitter, 1 + jitter]``; a ``Retry-After`` header replaces it (capped at
    ``retry_after_max``).
    """

    retries: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    jitter: float = 0.25
    retry_after_max: float = 300.0
    # Seconds one attempt at one file may take in all (a body dripping one byte at a time
    # never trips the read timeout); ``PIXI_PACK_SRC_DOWNLOAD_DEADLINE`` overrides it.
    deadline: float | None = field(default_factory=lambda: _deadline_from_env())

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError("retries must be >= 0")
        if self.deadline is not None and self.deadline <= 0:
            raise ValueError("deadline must be > 0")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must be within [0, 1]")

    def backoff(self, attempt: int, *, rand: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based); ``rand`` in [0, 1)."""
        base = min(self.backoff_max, self.backoff_base * (2.0 ** min(attempt, 62)))
        r = random.random() if rand is None else rand  # noqa: S311 (jitter, not crypto)
        return max(0.0, base * (1.0 + self.jitter * (2.0 * r - 1.0)))

    @staticmethod
    def retryable_status(status: int) -> bool:
        return status in (408, 429) or 500 <= status <= 599


@dataclass(frozen=True)
class DownloadResult:
    path: Path
    sha256: str
    md5: str  # computed, or the lock's own md5 when sha256 proved the bytes
    size: int
    url_used: str  # the URL (mirror) that delivered the bytes; never carries a conda token
    retries: int  # attempts after the first, across mirrors
    md5_computed: bool = True


def make_client(
    *,
    timeout: float = 60.0,
    connect_timeout: float = 30.0,
    max_connections: int = 50,
    config: FetchConfig | None = None,
) -> httpx.AsyncClient:
    """The HTTP client: ``pixi-pack-src/<version>`` user agent, no content encoding, proxies and
    CA settings from the environment (``HTTP(S)_PROXY``, ``NO_PROXY``, ``SSL_CERT_FILE``...),
    ``timeout`` seconds between two reads (not a total), no pool timeout (waiting for a free
    connection is not a network failure).

    With ``config`` (the pixi configuration), as pixi: ``[proxy-config]`` applies when no proxy
    environment variable is set (those win); ``tls-no-verify`` turns certificate checks off;
    ``tls-root-certs = "system"`` uses the system store (``SSL_CERT_FILE``/``SSL_CERT_DIR`` win).
    """
    verify: ssl.SSLContext | bool = True
    mounts: dict[str, httpx.AsyncBaseTransport | None] | None = None
    if config is not None:
        env_ssl = os.environ.get("SSL_CERT_FILE") or os.environ.get("SSL_CERT_DIR")
        if config.tls_no_verify:
            verify = False
        elif config.tls_root_certs == "system" and not env_ssl:
            verify = ssl.create_default_context()
        mounts = _proxy_mounts(config, verify, max_connections)
    return httpx.AsyncClient(
        verify=verify,
        mounts=mounts,
        headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
        timeout=httpx.Timeout(timeout, connect=connect_timeout, pool=None),
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
        trust_env=True,
        follow_redirects=True,
        max_redirects=MAX_REDIRECTS,
    )


_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def _proxy_mounts(
    config: FetchConfig, verify: ssl.SSLContext | bool, max_connections: int
) -> dict[str, httpx.AsyncBaseTransport | None] | None:
    if not config.uses_proxy or any(os.environ.get(v) for v in _PROXY_VARS):
        return None
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    mounts: dict[str, httpx.AsyncBaseTransport | None] = {}
    for host in config.non_proxy_hosts:  # ".cn", "localhost", "[::1]", "*.corp"
        pattern = "*" + host if host.startswith(".") else host
        mounts[f"all://{pattern}"] = None
    if config.proxy_http:
        mounts["http://"] = httpx.AsyncHTTPTransport(
            proxy=config.proxy_http, verify=verify, limits=limits
        )
    if config.proxy_https:
        mounts["https://"] = httpx.AsyncHTTPTransport(
            proxy=config.proxy_https, verify=verify, limits=limits
        )
    return mounts


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


# -- one attempt --------------------------------------------------------------------------

# "unreachable": the host does not resolve or refuses connections (retried at most once)
FailureKind = Literal["connect", "unreachable", "transient", "permanent"]


class _AttemptError(Exception):
    def __init__(
        self,
        kind: FailureKind,
        reason: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class _Got:
    sha256: str
    md5: str | None
    size: int


class _Sink:
    """Writes and hashes chunks."""

    def __init__(self, fh: BinaryIO, *, md5: bool) -> None:
        self.fh = fh
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5(usedforsecurity=False) if md5 else None
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.fh.write(chunk)
        self.sha256.update(chunk)
        if self.md5 is not None:
            self.md5.update(chunk)
        self.size += len(chunk)

    def result(self) -> _Got:
        md5 = self.md5.hexdigest() if self.md5 is not None else None
        return _Got(self.sha256.hexdigest(), md5, self.size)


def _status_reason(response: httpx.Response) -> str:
    phrase = response.reason_phrase
    return f"HTTP {response.status_code}" + (f" {phrase}" if phrase else "")


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme)


def _hop_credentials(auth: AuthStore, first: str, hop: str) -> tuple[str, dict[str, str]]:
    """The URL to request and the headers to send for ``hop``, reached by redirects from
    ``first`` (the URL the lock names).

    The lock's own origin gets its credentials. A redirect elsewhere gets the credentials
    stored for the hop's own host, except: never after a downgrade from ``https`` to plain
    ``http`` (on any hop so far is checked by the caller), and a port other than the
    scheme's default only with an entry for exactly ``host:port`` (the store matches a bare
    ``host`` on every port).
    """
    try:
        same = _origin(first) == _origin(hop)
        scheme, host, port = _origin(hop)
    except ValueError:
        return hop, {}
    if same:
        return auth.url_for(hop), auth.headers_for(hop)
    found = auth.lookup(hop)
    if found is None:
        return hop, {}
    if port != _DEFAULT_PORTS.get(scheme) and found[0] != f"{host}:{port}":
        log.debug("no credentials for %s: only %s has an entry", redact_url(hop), found[0])
        return hop, {}
    return auth.url_for(hop), auth.headers_for(hop)


async def _attempt(
    client: httpx.AsyncClient,
    url: str,
    tmp: Path,
    auth: AuthStore,
    on_bytes: Callable[[int], None] | None,
    md5: bool,
    expected_size: int | None = None,
    deadline: float | None = None,
    protocols: ProtocolClient | None = None,
) -> _Got:
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
        raise _AttemptError(
            "permanent",
            f"took longer than {deadline:g} s in all (set {DEADLINE_ENV} to allow more)",
        ) from exc


def _too_big(expected_size: int) -> _AttemptError:
    return _AttemptError(
        "permanent", f"the body is larger than the {expected_size} bytes the lock records"
    )


async def _attempt_http(
    client: httpx.AsyncClient,
    url: str,
    tmp: Path,
    auth: AuthStore,
    on_bytes: Callable[[int], None] | None,
    md5: bool,
    expected_size: int | None,
) -> _Got:
    hop = url
    downgraded = False
    for _ in range(MAX_REDIRECTS + 1):
        try:
            headers: dict[str, str]
            if downgraded:
                target, headers = hop, {}
            else:
                target, headers = _hop_credentials(auth, url, hop)
            async with client.stream(
                "GET", target, headers=headers, follow_redirects=False
            ) as response:
                status = response.status_code
                if status in _REDIRECTS and "location" in response.headers:
                    following = urljoin(hop, response.headers["location"])
                    log.debug("%s redirects to %s", redact_url(hop), redact_url(following))
                    if urlsplit(hop).scheme.lower() == "https" and (
                        urlsplit(following).scheme.lower() != "https"
                    ):
                        downgraded = True  # no credentials from here on
                    hop = following
                    continue
                if status != 200:
                    reason = _status_reason(response)
                    if RetryPolicy.retryable_status(status):
                        retry_after = parse_retry_after(response.headers.get("retry-after"))
                        raise _AttemptError(
                            "transient", reason, status=status, retry_after=retry_after
                        )
                    raise _AttemptError("permanent", reason, status=status)
                announced = response.headers.get("content-length")
                if (
                    expected_size is not None
                    and announced is not None
                    and announced.isdigit()
                    and int(announced) > expected_size
                ):
                    raise _too_big(expected_size)
                with tmp.open("wb") as fh:
                    sink = _Sink(fh, md5=md5)
                    async for chunk in response.aiter_raw():
                        sink.write(chunk)
                        if expected_size is not None and sink.size > expected_size:
                            raise _too_big(expected_size)
                        if on_bytes is not None:
                            on_bytes(len(chunk))
                if announced is not None and announced.isdigit() and int(announced) != sink.size:
                    raise _AttemptError(
                        "transient", f"truncated body ({sink.size} of {announced} bytes)"
                    )
                return sink.result()
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise _AttemptError("permanent", f"unsupported URL ({_describe(exc)})") from exc
        except httpx.ConnectTimeout as exc:
            seconds = client.timeout.connect
            raise _AttemptError(
                "connect", f"no connection within {seconds:g} s (--connect-timeout)"
            ) from exc
        except httpx.ConnectError as exc:
            raise _connect_failure(exc, hop) from exc
        except httpx.ReadTimeout as exc:
            seconds = client.timeout.read
            raise _AttemptError(
                "transient", f"nothing received for {seconds:g} s (--timeout)"
            ) from exc
        except httpx.TimeoutException as exc:
            raise _AttemptError("transient", f"timed out ({_describe(exc)})") from exc
        except httpx.TransportError as exc:
            raise _AttemptError("transient", _describe(exc)) from exc
    raise _AttemptError("permanent", f"more than {MAX_REDIRECTS} redirects")


def _proxy_for(url: str) -> str | None:
    """The proxy the environment sets for ``url`` (httpx honours the same variables)."""
    parts = urlsplit(url)
    if parts.hostname is None or proxy_bypass(parts.hostname):
        return None
    return getproxies().get(parts.scheme.lower())


def _connect_failure(exc: httpx.ConnectError, url: str) -> _AttemptError:
    """A failed connection, named: the host does not resolve, or nothing listens there."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    proxy = _proxy_for(url)
    via = f" (through the proxy {redact_url(proxy)})" if proxy else ""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, socket.gaierror):
            what = f"the proxy host of {redact_url(proxy)}" if proxy else f"host {host}"
            return _AttemptError(
                "unreachable", f"cannot resolve {what} (DNS: {cause.strerror or cause})"
            )
        if isinstance(cause, ConnectionRefusedError):
            port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower(), 0)
            where = f"the proxy {redact_url(proxy)}" if proxy else f"{host}:{port}"
            return _AttemptError("unreachable", f"connection refused by {where}")
        cause = cause.__cause__ or cause.__context__
    return _AttemptError("connect", f"cannot connect{via} ({_describe(exc)})")


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def _protocol_attempt(
    protocols: ProtocolClient | None,
    url: str,
    tmp: Path,
    on_bytes: Callable[[int], None] | None,
    *,
    md5: bool,
    expected_size: int | None = None,
) -> _Got:
    """``oci://``, ``s3://``, ``gcs://``: py-rattler's client, our sink and our checks (the
    lock's size bounds the body while it streams)."""
    if protocols is None:
        raise _AttemptError("permanent", "unsupported URL (no client for this scheme here)")
    with tmp.open("wb") as fh:
        sink = _Sink(fh, md5=md5)

        def write(chunk: bytes) -> None:
            if expected_size is not None and sink.size + len(chunk) > expected_size:
                raise _too_big(expected_size)
            sink.write(chunk)
            if on_bytes is not None:
                on_bytes(len(chunk))

        try:
            await protocols.download(url, write)
        except _AttemptError:
            raise
        except ProtocolError as exc:
            kind: FailureKind = (
                "connect"
                if exc.kind == "connect"
                else "transient"
                if exc.kind == "transient"
                else "permanent"
            )
            raise _AttemptError(kind, exc.reason, status=exc.status) from exc
    return sink.result()


async def _copy_local(
    url: str,
    tmp: Path,
    on_bytes: Callable[[int], None] | None,
    *,
    md5: bool,
    expected_size: int | None = None,
) -> _Got:
    source = Path(url2pathname(unquote(urlsplit(url).path)))

    def copy() -> _Got:
        try:
            src = source.open("rb")
        except FileNotFoundError as exc:
            raise _AttemptError("permanent", f"no such file {source}") from exc
        except OSError as exc:
            raise _AttemptError("permanent", f"cannot read {source}: {exc}") from exc
        with src, tmp.open("wb") as fh:
            sink = _Sink(fh, md5=md5)
            while chunk := src.read(CHUNK_SIZE):
                sink.write(chunk)
                if expected_size is not None and sink.size > expected_size:
                    raise _too_big(expected_size)
                if on_bytes is not None:
                    on_bytes(len(chunk))
        return sink.result()

    return await asyncio.to_thread(copy)


def hash_mismatch(
    expected: Hashes, *, sha256: str, md5: str | None, size: int
) -> tuple[str, str, str] | None:
    """``(check, expected, actual)`` for the first check of ``expected`` that the bytes fail
    (``size``, then ``sha256``, else ``md5`` when the lock has no sha256), or ``None``."""
    if expected.size is not None and expected.size != size:
        return "size", str(expected.size), str(size)
    if expected.sha256 is not None:
        if expected.sha256.lower() != sha256:
            return "sha256", expected.sha256.lower(), sha256
    elif expected.md5 is not None and expected.md5.lower() != md5:
        return "md5", expected.md5.lower(), md5 or "(not computed)"
    return None


# -- the retry loop -----------------------------------------------------------------------


async def download_file(
    client: httpx.AsyncClient,
    urls: Sequence[str],
    dest: Path,
    *,
    expected: Hashes,
    policy: RetryPolicy,
    auth: AuthStore,
    on_bytes: Callable[[int], None] | None = None,
    on_retry: Callable[[], None] | None = None,
    on_wait: Callable[[str, float], None] | None = None,
    sleep: Sleep = asyncio.sleep,
    what: str | None = None,
    protocols: ProtocolClient | None = None,
) -> DownloadResult:
    """Download the first of ``urls`` that works to ``dest``, verified (see the module doc).

    ``oci://``, ``s3://`` and ``gcs://`` URLs go through ``protocols`` (py-rattler's client,
    see :mod:`.protocols`) with the same retries, sink and checks.

    ``what`` names the file in messages (default: ``dest.name``). ``on_retry`` is called before
    every new attempt (progress restarts from zero); ``on_wait(reason, seconds)`` before the
    pause ahead of a retry (so that the waiting can be shown). Raises :class:`DownloadError` or
    :class:`ChecksumMismatchError` with redacted URLs.
    """
    if not urls:
        raise ValueError("download_file needs at least one URL")
    name = what or dest.name
    need_md5 = expected.sha256 is None or expected.md5 is None
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _write_error(dest.parent, name, exc) from exc
    tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.part")
    index = 0
    url_retries = 0
    retries = 0
    mismatched = False
    failures: dict[str, str] = {}
    try:
        while True:
            url = urls[index]
            try:
                got = await _attempt(
                    client,
                    url,
                    tmp,
                    auth,
                    on_bytes,
                    need_md5,
                    expected_size=expected.size,
                    deadline=policy.deadline,
                    protocols=protocols,
                )
            except OSError as exc:  # writing the temp file (disk full, permissions...)
                raise _write_error(tmp.parent, name, exc) from exc
            except _AttemptError as failure:
                failures[url] = failure.reason
                has_next = index + 1 < len(urls)
                if failure.kind in ("connect", "unreachable") and has_next:
                    delay = None
                    index, url_retries = index + 1, 0
                elif failure.kind == "unreachable" and url_retries < min(1, policy.retries):
                    delay = policy.backoff(0)  # once: a blip of the resolver or the server
                    url_retries += 1
                elif failure.kind not in ("permanent", "unreachable") and (
                    url_retries < policy.retries
                ):
                    delay = (
                        min(failure.retry_after, policy.retry_after_max)
                        if failure.retry_after is not None
                        else policy.backoff(url_retries)
                    )
                    url_retries += 1
                elif has_next:
                    delay = None
                    index, url_retries = index + 1, 0
                else:
                    raise _download_error(name, url, failure, retries, failures) from failure
                retries += 1
                log.info(
                    "retrying %s: %s from %s%s",
                    name,
                    failure.reason,
                    redact_url(url),
                    f" (waiting {delay:.2f} s)" if delay else "",
                )
                if on_retry is not None:
                    on_retry()
                if delay is not None:
                    if on_wait is not None:
                        on_wait(failure.reason, delay)
                    await sleep(delay)
                continue
            bad = hash_mismatch(expected, sha256=got.sha256, md5=got.md5, size=got.size)
            if bad is not None:
                algorithm, want, actual = bad
                if mismatched:
                    raise ChecksumMismatchError(
                        what=name,
                        source=redact_url(url),
                        algorithm=algorithm,
                        expected=want,
                        actual=actual,
                        hint="the server sent the same wrong bytes twice: the lock may be stale "
                        "(run `pixi lock`), or a mirror or proxy serves other content",
                    )
                mismatched = True
                failures[url] = f"{algorithm} mismatch"
                log.warning(
                    "%s mismatch for %s from %s (expected %s, got %s); downloading it again",
                    algorithm,
                    name,
                    redact_url(url),
                    want,
                    actual,
                )
                if index + 1 < len(urls):
                    index, url_retries = index + 1, 0
                retries += 1
                if on_retry is not None:
                    on_retry()
                continue
            tmp.replace(dest)
            md5 = got.md5 if got.md5 is not None else (expected.md5 or "").lower()
            return DownloadResult(
                dest, got.sha256, md5, got.size, url, retries, md5_computed=got.md5 is not None
            )
    finally:
        tmp.unlink(missing_ok=True)


def _write_error(directory: Path, name: str, exc: OSError) -> PixiPackSrcError:
    return PixiPackSrcError(
        f"cannot write to {directory} while downloading {name}: {exc}",
        hint="free some disk space, or point --use-cache / the work directory elsewhere",
    )


def _download_error(
    name: str, url: str, failure: _AttemptError, retries: int, failures: dict[str, str]
) -> DownloadError:
    message = f"could not download {name} from {redact_url(url)}: {failure.reason}"
    if retries:
        message += f" (after {retries} {'retry' if retries == 1 else 'retries'})"
    others = [f"{redact_url(u)} ({r})" for u, r in failures.items() if u != url]
    if others:
        message += "; also tried " + ", ".join(others)
    if failure.status in (401, 403):
        hint = (
            "the server wants credentials: pass --auth-file with a rattler credentials JSON, "
            "or set RATTLER_AUTH_FILE"
        )
    elif failure.status == 404:
        hint = (
            "the file is not on the server: check the channel URL and any [mirrors] in the "
            "config, or update the lock with `pixi lock`"
        )
    elif failure.kind == "permanent":
        hint = None
    elif failure.kind == "unreachable":
        hint = (
            "waiting longer will not help: check the channel URL, the [mirrors] of the pixi "
            "config (-c/--config) and the proxy settings (HTTPS_PROXY, NO_PROXY)"
        )
    else:
        hint = (
            "check the network and proxy settings (HTTPS_PROXY, NO_PROXY); "
            "--retries N, --timeout SECONDS and --connect-timeout SECONDS make downloads "
            "more patient"
        )
    return DownloadError(message, hint=hint, reason=failure.reason)
