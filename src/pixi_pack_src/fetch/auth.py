"""Credentials, read the way rattler (and so pixi and pixi-pack) reads them.

Sources, highest priority first (for each host the first source that knows it wins, as in
``rattler_networking::AuthenticationStorage``):

1. ``--auth-file PATH`` (must exist);
2. ``$RATTLER_AUTH_FILE``;
3. ``~/.rattler/credentials.json``;
4. netrc: ``$NETRC``, else ``~/.netrc`` (``~/_netrc`` on Windows), as HTTP basic auth.

(rattler also reads the system keyring between 2 and 3; we do not.)

A credentials file is JSON: ``{"<host>": {"BearerToken": "..."} | {"BasicHTTP": {"username":
"...", "password": "..."}} | {"CondaToken": "..."}}``. Keys are host names, ``*.example.com``
wildcards (matching any sub-domain), or -- our extension -- ``host:port``.

Lookup for a URL: ``host:port``, then ``host``, then ``*.<domain>`` for each parent domain.
Credentials are applied per request to the URL being requested, so they reach only their own
host, across redirects and mirrors alike (:func:`pixi_pack_src.fetch.http.download_file` follows
redirects itself for this reason). Secrets never appear in ``repr`` or in log messages.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import netrc
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pixi_pack_src.errors import ConfigError

log = logging.getLogger(__name__)

CredentialKind = Literal["bearer", "basic", "conda-token"]


@dataclass(frozen=True)
class Credential:
    """One host's credentials; ``source`` says where they were read (for ``-v`` messages)."""

    kind: CredentialKind
    token: str = field(default="", repr=False)
    username: str = ""
    password: str = field(default="", repr=False)
    source: str = ""

    def authorization(self) -> str | None:
        """The ``Authorization`` header value, or ``None`` (conda tokens go into the URL)."""
        if self.kind == "bearer":
            return f"Bearer {self.token}"
        if self.kind == "basic":
            raw = f"{self.username}:{self.password}".encode()
            return "Basic " + base64.b64encode(raw).decode("ascii")
        return None


class AuthStore:
    """Host -> :class:`Credential`, with rattler's lookup rules."""

    def __init__(self, entries: Mapping[str, Credential] | None = None) -> None:
        self._entries: dict[str, Credential] = {k.lower(): v for k, v in (entries or {}).items()}

    @classmethod
    def load(
        cls,
        auth_file: Path | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        home: Path | None = None,
    ) -> AuthStore:
        """Read every credentials source (see the module docstring); errors name the file."""
        env = os.environ if environ is None else environ
        home_dir = home if home is not None else Path.home()
        merged: dict[str, Credential] = {}

        def add(entries: Mapping[str, Credential]) -> None:
            for key, cred in entries.items():
                merged.setdefault(key.lower(), cred)

        if auth_file is not None:
            if not auth_file.is_file():
                raise ConfigError(
                    f"authentication file {auth_file} does not exist",
                    hint="pass a rattler credentials JSON file to --auth-file",
                )
            add(read_credentials_file(auth_file))
        env_file = env.get("RATTLER_AUTH_FILE")
        if env_file:
            path = Path(env_file)
            if path.is_file():
                add(read_credentials_file(path))
            else:
                log.debug("RATTLER_AUTH_FILE=%s does not exist; ignored", env_file)
        default = home_dir / ".rattler" / "credentials.json"
        if default.is_file():
            add(read_credentials_file(default))
        add(_read_netrc(env, home_dir))
        store = cls(merged)
        if merged:
            log.debug("credentials for: %s", ", ".join(sorted(merged)))
        return store

    # -- lookups
    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def __repr__(self) -> str:
        return f"AuthStore(hosts={sorted(self._entries)!r})"

    def lookup(self, url: str) -> tuple[str, Credential] | None:
        """``(matched key, credential)`` for ``url``, or ``None``."""
        if not self._entries:
            return None
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower()
            port = parts.port
        except ValueError:
            return None
        if not host:
            return None
        candidates: list[str] = []
        if port is not None:
            candidates.append(f"{host}:{port}")
        candidates.append(host)
        if not _is_ip(host):
            labels = host.split(".")
            candidates.extend("*." + ".".join(labels[i:]) for i in range(len(labels)))
        for key in candidates:
            cred = self._entries.get(key)
            if cred is not None:
                return key, cred
        return None

    def headers_for(self, url: str) -> dict[str, str]:
        """The headers to send with a request to ``url`` (empty when no credential applies).

        A URL that carries its own ``user:password@`` gets nothing from the store: httpx
        sends those as basic auth.
        """
        try:
            if urlsplit(url).username is not None:
                return {}
        except ValueError:
            return {}
        found = self.lookup(url)
        if found is None:
            return {}
        value = found[1].authorization()
        return {"Authorization": value} if value is not None else {}

    def url_for(self, url: str) -> str:
        """``url`` with a conda token inserted as ``/t/<token>/`` when its host has one."""
        found = self.lookup(url)
        if found is None or found[1].kind != "conda-token":
            return url
        parts = urlsplit(url)
        if parts.path.startswith("/t/"):
            return url
        path = f"/t/{found[1].token}{parts.path or '/'}"
        return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def read_credentials_file(path: Path) -> dict[str, Credential]:
    """Parse a rattler credentials JSON file (``ConfigError`` on bad input)."""

    def bad(what: str) -> ConfigError:
        return ConfigError(
            f"credentials file {path}: {what}",
            hint='expected {"host": {"BearerToken": "..."}} or {"BasicHTTP": {"username": '
            '"...", "password": "..."}} or {"CondaToken": "..."}',
        )

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read credentials file {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise bad(f"not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise bad("the top level must be an object of host -> credentials")
    out: dict[str, Credential] = {}
    source = str(path)
    for host, value in data.items():
        if not isinstance(value, dict) or len(value) != 1:
            raise bad(f"{host!r} must map to one authentication method")
        ((method, payload),) = value.items()
        if method in ("BearerToken", "CondaToken"):
            if not isinstance(payload, str) or not payload:
                raise bad(f"{host!r}: {method} must be a non-empty string")
            kind: CredentialKind = "bearer" if method == "BearerToken" else "conda-token"
            out[host] = Credential(kind, token=payload, source=source)
        elif method == "BasicHTTP":
            if not isinstance(payload, dict):
                raise bad(f"{host!r}: BasicHTTP must be an object with username and password")
            user, password = payload.get("username"), payload.get("password")
            if not isinstance(user, str) or not isinstance(password, str):
                raise bad(f"{host!r}: BasicHTTP needs string username and password")
            out[host] = Credential("basic", username=user, password=password, source=source)
        elif method == "OAuth":
            token = payload.get("access_token") if isinstance(payload, dict) else None
            if not isinstance(token, str) or not token:
                raise bad(f"{host!r}: OAuth needs an access_token")
            out[host] = Credential("bearer", token=token, source=source)
        elif method == "S3Credentials":
            log.debug("credentials file %s: %s uses S3Credentials; ignored", path, host)
        else:
            raise bad(f"{host!r}: unknown authentication method {method!r}")
    return out


def _read_netrc(env: Mapping[str, str], home: Path) -> dict[str, Credential]:
    explicit = env.get("NETRC")
    path = (
        Path(explicit) if explicit else home / ("_netrc" if sys.platform == "win32" else ".netrc")
    )
    if not path.is_file():
        if explicit:
            log.warning("NETRC=%s does not exist; ignored", explicit)
        return {}
    try:
        parsed = netrc.netrc(os.fspath(path))
    except (OSError, netrc.NetrcParseError) as exc:
        log.warning("cannot read netrc file %s: %s; ignored", path, exc)
        return {}
    return {
        host: Credential("basic", username=login or "", password=password or "", source=str(path))
        for host, (login, _account, password) in parsed.hosts.items()
    }
