"""Credentials, found wherever pixi finds them.

Sources, highest priority first (for a URL, the first source that knows its host wins, as in
``rattler_networking::AuthenticationStorage`` built by pixi's ``pixi_auth::get_auth_store``):

1. ``$RATTLER_AUTH_FILE`` (a missing file is a warning, as in pixi);
2. ``--auth-file PATH`` (must exist), else the config's ``authentication-override-file`` (a
   missing file is a warning);
3. the OS keyring, where ``pixi auth login`` stores credentials by default: service
   ``rattler``, user name = the host (or ``s3://bucket``), password = the JSON credential
   (read with the ``keyring`` library; its backend is chosen as usual, e.g. by
   ``PYTHON_KEYRING_BACKEND``; an unusable keyring is skipped);
4. ``~/.rattler/credentials.json``;
5. netrc: ``$NETRC``, else ``~/.netrc`` (``~/_netrc`` on Windows), as HTTP basic auth.

S3 buckets without stored credentials fall back to the AWS SDK's own chain
(``AWS_ACCESS_KEY_ID``... see :mod:`pixi_pack_src.fetch.protocols`).

A credentials file is JSON: ``{"<host>": {"BearerToken": "..."} | {"BasicHTTP": {"username":
"...", "password": "..."}} | {"CondaToken": "..."} | {"S3Credentials": {"access_key_id":
"...", "secret_access_key": "...", "session_token": null}}}``. Keys are host names,
``*.example.com`` wildcards (matching any sub-domain), ``s3://bucket[/prefix]``, or -- our
extension -- ``host:port``.

Lookup for a URL: ``host:port``, then ``host``, then ``*.<domain>`` for each parent domain; for
``s3://`` URLs also the URL and each of its parent prefixes (``s3://bucket/a``, ``s3://bucket``).
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
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pixi_pack_src.errors import ConfigError

log = logging.getLogger(__name__)

CredentialKind = Literal["bearer", "basic", "conda-token", "s3"]
KEYRING_SERVICE = "rattler"  # rattler's KeyringAuthenticationStorage store key


@dataclass(frozen=True)
class Credential:
    """One host's credentials; ``source`` says where they were read (for ``-v`` messages).

    For ``s3``: ``username`` is the access key id, ``password`` the secret access key and
    ``token`` the session token (may be empty).
    """

    kind: CredentialKind
    token: str = field(default="", repr=False)
    username: str = ""
    password: str = field(default="", repr=False)
    source: str = ""

    def authorization(self) -> str | None:
        """The ``Authorization`` header value, or ``None`` (conda tokens go into the URL, S3
        credentials sign requests)."""
        if self.kind == "bearer":
            return f"Bearer {self.token}"
        if self.kind == "basic":
            raw = f"{self.username}:{self.password}".encode()
            return "Basic " + base64.b64encode(raw).decode("ascii")
        return None

    def to_rattler(self) -> dict[str, object]:
        """The credential as rattler's JSON (a credentials-file value)."""
        if self.kind == "bearer":
            return {"BearerToken": self.token}
        if self.kind == "conda-token":
            return {"CondaToken": self.token}
        if self.kind == "basic":
            return {"BasicHTTP": {"username": self.username, "password": self.password}}
        return {
            "S3Credentials": {
                "access_key_id": self.username,
                "secret_access_key": self.password,
                "session_token": self.token or None,
            }
        }


class KeyringSource:
    """The OS keyring, asked per host (a keyring cannot be listed): ``keyring`` library,
    service ``rattler``. Answers are cached; a keyring that fails is skipped from then on."""

    name = "keyring"

    def __init__(self) -> None:
        self._cache: dict[str, Credential | None] = {}
        self._broken = False

    def get(self, key: str) -> Credential | None:
        if self._broken:
            return None
        if key in self._cache:
            return self._cache[key]
        import keyring
        import keyring.errors

        try:
            secret = keyring.get_password(KEYRING_SERVICE, key)
        except keyring.errors.NoKeyringError:
            log.debug("no OS keyring available; skipped")
            self._broken = True
            return None
        except (keyring.errors.KeyringError, OSError, RuntimeError) as exc:
            log.warning("cannot read the OS keyring (%s); skipped", type(exc).__name__)
            self._broken = True
            return None
        cred: Credential | None = None
        if secret is not None:
            try:
                cred = parse_credential(key, json.loads(secret), source="keyring")
            except (json.JSONDecodeError, ConfigError):
                log.warning("the keyring entry for %s is not a rattler credential; ignored", key)
        self._cache[key] = cred
        return cred


Layer = Mapping[str, Credential] | KeyringSource


class AuthStore:
    """URL -> :class:`Credential`, from layered sources with rattler's lookup rules."""

    def __init__(
        self,
        entries: Mapping[str, Credential] | None = None,
        *,
        layers: list[Layer] | None = None,
    ) -> None:
        self._layers: list[Layer] = []
        if entries:
            self._layers.append({k.lower(): v for k, v in entries.items()})
        for layer in layers or []:
            if isinstance(layer, KeyringSource):
                self._layers.append(layer)
            else:
                self._layers.append({k.lower(): v for k, v in layer.items()})

    @classmethod
    def load(
        cls,
        auth_file: Path | None = None,
        *,
        override_file: Path | None = None,
        environ: Mapping[str, str] | None = None,
        home: Path | None = None,
        use_keyring: bool = True,
    ) -> AuthStore:
        """Read every credentials source (see the module docstring); errors name the file.

        ``auth_file`` is ``--auth-file`` (must exist); ``override_file`` the config's
        ``authentication-override-file`` (used when there is no ``auth_file``).
        """
        env = os.environ if environ is None else environ
        home_dir = home if home is not None else Path.home()
        layers: list[Layer] = []
        env_file = env.get("RATTLER_AUTH_FILE")
        if env_file:
            path = Path(env_file)
            if path.is_file():
                layers.append(read_credentials_file(path))
            else:
                log.warning(
                    "RATTLER_AUTH_FILE=%s does not exist; reading the other credential stores",
                    env_file,
                )
        if auth_file is not None:
            if not auth_file.is_file():
                raise ConfigError(
                    f"authentication file {auth_file} does not exist",
                    hint="pass a rattler credentials JSON file to --auth-file",
                )
            layers.append(read_credentials_file(auth_file))
        elif override_file is not None:
            if override_file.is_file():
                layers.append(read_credentials_file(override_file))
            else:
                log.warning(
                    "authentication-override-file %s (pixi config) does not exist; ignored",
                    override_file,
                )
        if use_keyring:
            layers.append(KeyringSource())
        default = home_dir / ".rattler" / "credentials.json"
        if default.is_file():
            layers.append(read_credentials_file(default))
        layers.append(_read_netrc(env, home_dir))
        store = cls(layers=layers)
        hosts = sorted(store)
        if hosts:
            log.debug("credentials (files, netrc) for: %s", ", ".join(hosts))
        return store

    # -- lookups
    def _files(self) -> Iterator[Mapping[str, Credential]]:
        for layer in self._layers:
            if not isinstance(layer, KeyringSource):
                yield layer

    def __len__(self) -> int:
        return len({key for layer in self._files() for key in layer})

    def __iter__(self) -> Iterator[str]:
        return iter(sorted({key for layer in self._files() for key in layer}))

    def __repr__(self) -> str:
        keyring = any(isinstance(layer, KeyringSource) for layer in self._layers)
        return f"AuthStore(hosts={sorted(self)!r}, keyring={keyring})"

    def lookup(self, url: str) -> tuple[str, Credential] | None:
        """``(matched key, credential)`` for ``url``, or ``None``."""
        if not self._layers:
            return None
        candidates = _candidates(url)
        if not candidates:
            return None
        for layer in self._layers:
            for key in candidates:
                cred = layer.get(key)
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

    def rattler_entries(self, urls: Iterable[str]) -> dict[str, dict[str, object]]:
        """rattler credentials-file entries for ``urls`` (the keys rattler looks up: the host,
        or the ``s3://`` prefix), for py-rattler's client (see :mod:`.protocols`)."""
        out: dict[str, dict[str, object]] = {}
        for url in urls:
            found = self.lookup(url)
            if found is None:
                continue
            key, cred = found
            parts = urlsplit(url)
            if parts.scheme.lower() != "s3":
                key = (parts.hostname or key).lower()  # rattler keys credentials by host only
            out.setdefault(key, cred.to_rattler())
        return out


def _candidates(url: str) -> list[str]:
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        return []
    if not host:
        return []
    candidates: list[str] = []
    if port is not None:
        candidates.append(f"{host}:{port}")
    candidates.append(host)
    if not _is_ip(host):
        labels = host.split(".")
        candidates.extend("*." + ".".join(labels[i:]) for i in range(len(labels)))
    if parts.scheme.lower() == "s3":
        path = parts.path.rstrip("/")
        while True:
            candidates.append(f"s3://{host}{path}".lower())
            if not path:
                break
            path = path.rsplit("/", 1)[0]
    return candidates


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
    for host, value in data.items():
        out[host] = parse_credential(
            host, value, source=str(path), where=f"credentials file {path}"
        )
    return out


def parse_credential(
    host: str, value: object, *, source: str, where: str | None = None
) -> Credential:
    """One rattler credential (``{"BearerToken": ...}``...); ``ConfigError`` on bad input."""

    def bad(what: str) -> ConfigError:
        return ConfigError(
            f"{where or source}: {what}",
            hint='expected {"host": {"BearerToken": "..."}} or {"BasicHTTP": {"username": '
            '"...", "password": "..."}} or {"CondaToken": "..."} or {"S3Credentials": {...}}',
        )

    if not isinstance(value, dict) or len(value) != 1:
        raise bad(f"{host!r} must map to one authentication method")
    ((method, payload),) = value.items()
    if method in ("BearerToken", "CondaToken"):
        if not isinstance(payload, str) or not payload:
            raise bad(f"{host!r}: {method} must be a non-empty string")
        kind: CredentialKind = "bearer" if method == "BearerToken" else "conda-token"
        return Credential(kind, token=payload, source=source)
    if method == "BasicHTTP":
        if not isinstance(payload, dict):
            raise bad(f"{host!r}: BasicHTTP must be an object with username and password")
        user, password = payload.get("username"), payload.get("password")
        if not isinstance(user, str) or not isinstance(password, str):
            raise bad(f"{host!r}: BasicHTTP needs string username and password")
        return Credential("basic", username=user, password=password, source=source)
    if method == "OAuth":
        token = payload.get("access_token") if isinstance(payload, dict) else None
        if not isinstance(token, str) or not token:
            raise bad(f"{host!r}: OAuth needs an access_token")
        return Credential("bearer", token=token, source=source)
    if method == "S3Credentials":
        if not isinstance(payload, dict):
            raise bad(f"{host!r}: S3Credentials must be an object")
        key_id, secret = payload.get("access_key_id"), payload.get("secret_access_key")
        session = payload.get("session_token")
        if not isinstance(key_id, str) or not key_id or not isinstance(secret, str) or not secret:
            raise bad(f"{host!r}: S3Credentials needs access_key_id and secret_access_key")
        if session is not None and not isinstance(session, str):
            raise bad(f"{host!r}: S3Credentials session_token must be a string or null")
        return Credential(
            "s3", username=key_id, password=secret, token=session or "", source=source
        )
    raise bad(f"{host!r}: unknown authentication method {method!r}")


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
