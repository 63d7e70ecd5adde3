"""What went wrong with a download, named: the kinds of failure of one attempt, and the
message and ``help:`` hint of the error that ends the download.

An attempt fails as ``connect`` (no connection: the next mirror at once), ``unreachable``
(the host does not resolve or refuses connections: retried at most once, since patience does
not fix a wrong URL, mirror or proxy), ``transient`` (retried with backoff) or ``permanent``
(the next mirror, never the same URL again). :func:`pixi_pack_src.fetch.http.download_file`
acts on the kind; the hint of :func:`download_error` tells the user what would help.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

import httpx

from pixi_pack_src.errors import DownloadError, PixiPackSrcError
from pixi_pack_src.fetch.redirects import DEFAULT_PORTS
from pixi_pack_src.redact import redact_url

# "unreachable": the host does not resolve or refuses connections (retried at most once)
FailureKind = Literal["connect", "unreachable", "transient", "permanent"]


class AttemptError(Exception):
    """One failed attempt at one URL."""

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


def status_reason(response: httpx.Response) -> str:
    phrase = response.reason_phrase
    return f"HTTP {response.status_code}" + (f" {phrase}" if phrase else "")


def too_big(expected_size: int) -> AttemptError:
    return AttemptError(
        "permanent", f"the body is larger than the {expected_size} bytes the lock records"
    )


def _proxy_for(url: str) -> str | None:
    """The proxy the environment sets for ``url`` (httpx honours the same variables)."""
    parts = urlsplit(url)
    if parts.hostname is None or proxy_bypass(parts.hostname):
        return None
    return getproxies().get(parts.scheme.lower())


def connect_failure(exc: httpx.ConnectError, url: str) -> AttemptError:
    """A failed connection, named: the host does not resolve, or nothing listens there."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    proxy = _proxy_for(url)
    via = f" (through the proxy {redact_url(proxy)})" if proxy else ""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, socket.gaierror):
            what = f"the proxy host of {redact_url(proxy)}" if proxy else f"host {host}"
            return AttemptError(
                "unreachable", f"cannot resolve {what} (DNS: {cause.strerror or cause})"
            )
        if isinstance(cause, ConnectionRefusedError):
            port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower(), 0)
            where = f"the proxy {redact_url(proxy)}" if proxy else f"{host}:{port}"
            return AttemptError("unreachable", f"connection refused by {where}")
        cause = cause.__cause__ or cause.__context__
    return AttemptError("connect", f"cannot connect{via} ({describe(exc)})")


def describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def write_error(directory: Path, name: str, exc: OSError) -> PixiPackSrcError:
    return PixiPackSrcError(
        f"cannot write to {directory} while downloading {name}: {exc}",
        hint="free some disk space, or point --use-cache / the work directory elsewhere",
    )


def download_error(
    name: str, url: str, failure: AttemptError, retries: int, failures: dict[str, str]
) -> DownloadError:
    """The error that ends a download: the last failure, the retries, the other mirrors tried,
    and a hint for what would help."""
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
