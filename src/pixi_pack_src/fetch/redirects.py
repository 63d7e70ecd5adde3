"""Which credentials follow a redirect.

Redirects are followed by :mod:`.transfer` hop by hop, not by the HTTP client, so that the
credentials from :class:`~pixi_pack_src.fetch.auth.AuthStore` are computed here for every
hop's own host: a redirect to another host never carries the first host's ``Authorization``
header (or conda token); after a redirect from ``https`` to plain ``http`` no credentials
are sent at all, and a redirect to another port gets credentials only from an entry for
exactly that ``host:port``.
"""

from __future__ import annotations

import logging
from urllib.parse import urljoin, urlsplit

from pixi_pack_src.fetch.auth import AuthStore
from pixi_pack_src.redact import redact_url

log = logging.getLogger(__name__)

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or DEFAULT_PORTS.get(scheme)


def follow(hop: str, location: str) -> tuple[str, bool]:
    """The URL a redirect from ``hop`` to ``location`` leads to, and whether it goes from
    ``https`` down to another scheme (no credentials from there on)."""
    following = urljoin(hop, location)
    log.debug("%s redirects to %s", redact_url(hop), redact_url(following))
    downgrade = urlsplit(hop).scheme.lower() == "https" and (
        urlsplit(following).scheme.lower() != "https"
    )
    return following, downgrade


def hop_credentials(auth: AuthStore, first: str, hop: str) -> tuple[str, dict[str, str]]:
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
    if port != DEFAULT_PORTS.get(scheme) and found[0] != f"{host}:{port}":
        log.debug("no credentials for %s: only %s has an entry", redact_url(hop), found[0])
        return hop, {}
    return auth.url_for(hop), auth.headers_for(hop)
