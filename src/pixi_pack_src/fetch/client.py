"""The one HTTP client (:func:`make_client`): its user agent, timeouts, connection limits,
proxies and TLS settings, from the environment and the pixi configuration.

Every request of the tool goes through a client made here; the requests themselves (one
attempt, redirects hop by hop) are :mod:`.transfer`, the retries :mod:`.http`.
"""

from __future__ import annotations

import os
import ssl

import httpx

from pixi_pack_src._version import __version__
from pixi_pack_src.fetch.config import FetchConfig

USER_AGENT = f"pixi-pack-src/{__version__}"
MAX_REDIRECTS = 10


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
