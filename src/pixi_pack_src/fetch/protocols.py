"""``oci://``, ``s3://`` and ``gcs://`` downloads, through py-rattler's client.

py-rattler's networking client carries rattler's middlewares for these protocols (the OCI
registry's token challenge, manifest and blob lookup; S3 request presigning with
``[s3-options]``, stored ``S3Credentials`` or the AWS SDK's own chain; GCS), so they are not
re-implemented here. Everything around the bytes stays ours (:mod:`.http`): the mirror order,
the retry policy (:mod:`.retry`; py-rattler's own retries are off), streaming into the hashing sink, and the
check against the lock's sha256/size.

Credentials come from our one resolver (:class:`~pixi_pack_src.fetch.auth.AuthStore`: auth
files, the OS keyring, netrc): the entries for the hosts and buckets of this run are handed to
py-rattler as its ``authentication-override-file``, a private file (mode 0600) in the run's
work directory, deleted when the client closes. The pixi configuration's TLS settings, proxies
and ``[s3-options]`` are handed over as a rattler ``Config``.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import urlsplit

import rattler
from rattler.networking import Client
from rattler.package_streaming import download_to_writer

from pixi_pack_src.fetch.auth import AuthStore
from pixi_pack_src.fetch.client import USER_AGENT
from pixi_pack_src.fetch.config import RATTLER_SCHEMES, FetchConfig

log = logging.getLogger(__name__)

_STATUS = re.compile(r"\((\d{3})\b[^)]*\)")


def is_protocol_url(url: str) -> bool:
    """Whether ``url`` is fetched by py-rattler's client (``oci://``, ``s3://``, ``gcs://``)."""
    return urlsplit(url).scheme.lower() in RATTLER_SCHEMES


class ProtocolError(Exception):
    """One failed attempt; ``kind`` as in :mod:`.failures` (connect, transient, permanent)."""

    def __init__(self, kind: str, reason: str, *, status: int | None = None) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.status = status


def classify(message: str) -> ProtocolError:
    """Our failure kind for py-rattler's error text (it raises ``RuntimeError`` with reqwest's
    message). The text can hold presigned URLs: only the status and a fixed phrase are kept."""
    found = _STATUS.search(message)
    if found is not None:
        status = int(found.group(1))
        transient = status in (408, 429) or 500 <= status <= 599
        return ProtocolError(
            "transient" if transient else "permanent", f"HTTP {status}", status=status
        )
    lowered = message.lower()
    if "presign" in lowered:
        return ProtocolError(
            "permanent",
            "cannot sign the S3 request (no S3 credentials for this bucket: "
            "`pixi auth login s3://BUCKET`, an S3Credentials entry in the auth file, or "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)",
        )
    if "layer not found" in lowered or "invalid oci url" in lowered:
        return ProtocolError("permanent", "not in the OCI registry")
    if "error sending request" in lowered or "connect" in lowered or "dns" in lowered:
        return ProtocolError("connect", "cannot connect")
    if "timed out" in lowered or "timeout" in lowered:
        return ProtocolError("transient", "timed out")
    return ProtocolError("transient", "transfer failed")


class ProtocolClient:
    """py-rattler's client set up from the pixi configuration and our credentials."""

    def __init__(
        self,
        config: FetchConfig,
        auth: AuthStore,
        urls: Iterable[str],
        *,
        secrets_dir: Path,
    ) -> None:
        entries = auth.rattler_entries(u for u in urls if is_protocol_url(u))
        secrets_dir.mkdir(parents=True, exist_ok=True)
        self._auth_file: Path | None = secrets_dir / "rattler-credentials.json"
        fd = os.open(self._auth_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(entries, fh)
        if entries:
            log.debug("credentials for py-rattler's client: %s", ", ".join(sorted(entries)))
        self._client = Client.from_config(
            _rattler_config(config, self._auth_file), max_retries=0, user_agent=USER_AGENT
        )

    async def download(self, url: str, write: Callable[[bytes], object]) -> None:
        """Stream ``url`` into ``write``; raises :class:`ProtocolError`, or what ``write``
        raised (e.g. a body larger than the lock says)."""
        stopped: list[Exception] = []

        class _Writer:
            def write(self, chunk: bytes) -> int:
                try:
                    write(bytes(chunk))
                except Exception as exc:
                    stopped.append(exc)
                    raise
                return len(chunk)

        try:
            await download_to_writer(self._client, url, _Writer())
        except Exception as exc:
            if stopped:
                raise stopped[0] from None
            if isinstance(exc, RuntimeError):
                raise classify(str(exc)) from None
            raise

    def close(self) -> None:
        if self._auth_file is not None:
            self._auth_file.unlink(missing_ok=True)
            self._auth_file = None


def _rattler_config(config: FetchConfig, auth_file: Path) -> rattler.Config:
    def quote(value: str) -> str:
        return json.dumps(value)  # a JSON string is a valid TOML basic string

    lines = [f"authentication-override-file = {quote(str(auth_file))}"]
    if config.tls_no_verify:
        lines.append("tls-no-verify = true")
    # SSL_CERT_FILE/SSL_CERT_DIR, as in pixi, take precedence: the system store reads them
    roots = config.tls_root_certs
    if os.environ.get("SSL_CERT_FILE") or os.environ.get("SSL_CERT_DIR"):
        roots = "system"
    if roots is not None:
        lines.append(f"tls-root-certs = {quote(roots)}")
    proxies = []
    if config.proxy_http:
        proxies.append(f"http = {quote(config.proxy_http)}")
    if config.proxy_https:
        proxies.append(f"https = {quote(config.proxy_https)}")
    if config.non_proxy_hosts:
        proxies.append(f"non-proxy-hosts = {json.dumps(list(config.non_proxy_hosts))}")
    if proxies:
        lines += ["[proxy-config]", *proxies]
    for bucket, options in config.s3_options.items():
        lines += [
            f"[s3-options.{quote(bucket)}]",
            f"endpoint-url = {quote(options.endpoint_url)}",
            f"region = {quote(options.region)}",
            f'addressing-style = "{"path" if options.path_style else "virtual-host"}"',
        ]
    return rattler.Config.from_toml("\n".join(lines) + "\n")
