"""Downloading one file: the mirrors in order, the one retry policy applied, the bytes verified.

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

Bounds: the lock's ``size`` bounds the body while it streams (a larger ``Content-Length`` is
refused before reading, a longer body as soon as it passes the size), and one attempt at one
file has a total deadline (:attr:`RetryPolicy.deadline`, one hour by default,
``PIXI_PACK_SRC_DOWNLOAD_DEADLINE`` seconds when set, ``0`` for none), since the read timeout
alone lets a server drip a byte at a time forever.

The parts: :mod:`.client` (the one HTTP client), :mod:`.retry` (the one retry policy),
:mod:`.transfer` (one attempt: request, streaming, hashing; ``file://`` and py-rattler's
protocols too), :mod:`.redirects` (which credentials follow a redirect), :mod:`.failures`
(failure kinds, messages and hints). This module is the loop that ties them together.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from pixi_pack_src.errors import ChecksumMismatchError
from pixi_pack_src.fetch.auth import AuthStore
from pixi_pack_src.fetch.client import make_client as make_client  # re-exported
from pixi_pack_src.fetch.failures import AttemptError, download_error, write_error
from pixi_pack_src.fetch.protocols import ProtocolClient
from pixi_pack_src.fetch.retry import RetryPolicy as RetryPolicy  # re-exported
from pixi_pack_src.fetch.retry import Sleep as Sleep  # re-exported
from pixi_pack_src.fetch.retry import parse_retry_after as parse_retry_after  # re-exported
from pixi_pack_src.fetch.transfer import attempt
from pixi_pack_src.lock.model import Hashes
from pixi_pack_src.redact import redact_url

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DownloadResult:
    path: Path
    sha256: str
    md5: str  # computed, or the lock's own md5 when sha256 proved the bytes
    size: int
    url_used: str  # the URL (mirror) that delivered the bytes; never carries a conda token
    retries: int  # attempts after the first, across mirrors
    md5_computed: bool = True


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
        raise write_error(dest.parent, name, exc) from exc
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
                got = await attempt(
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
                raise write_error(tmp.parent, name, exc) from exc
            except AttemptError as failure:
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
                    raise download_error(name, url, failure, retries, failures) from failure
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
