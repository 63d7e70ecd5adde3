"""The parts of a pixi/rattler config TOML (``-c/--config``) that matter for fetching.

Read, as pixi and rattler read them (``rattler_config::CommonConfig``):

- ``[mirrors]``: a channel URL prefix -> a list of mirror URLs, tried in order. A mirror list
  *replaces* the original URL; list the original too if it should be a fallback. When several
  prefixes match, the longest one wins. Prefixes and mirrors are compared with a trailing ``/``
  so that ``https://host/conda-forge`` never matches ``https://host/conda-forge-extra/...``.
- ``[concurrency] downloads``: how many downloads run at once (pixi's default is 50).
- ``authentication-override-file`` (also ``authentication_override_file``): a rattler
  credentials JSON; exposed as :attr:`FetchConfig.authentication_override_file`.

Every other key (``default-channels``, ``pypi-config``, ``s3-options``, ...) is ignored, as the
file is shared with pixi; it is logged at DEBUG level.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urlsplit, urlunsplit

from pixi_pack_src import tomlfile
from pixi_pack_src.errors import ConfigError

log = logging.getLogger(__name__)

_KNOWN = {"mirrors", "concurrency", "authentication-override-file", "authentication_override_file"}


@dataclass(frozen=True)
class FetchConfig:
    """Mirrors and download concurrency from a pixi/rattler config file."""

    mirrors: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )  # prefix (with trailing "/") -> mirrors (with trailing "/"), in order
    concurrent_downloads: int | None = None
    authentication_override_file: Path | None = None
    source: Path | None = None  # the config file, for messages

    def __post_init__(self) -> None:
        normalized = {
            _normalize(prefix, slash=True): tuple(_normalize(m, slash=True) for m in mirrors)
            for prefix, mirrors in self.mirrors.items()
        }
        object.__setattr__(self, "mirrors", MappingProxyType(normalized))

    def mirror_urls(self, url: str) -> tuple[str, ...]:
        """The URLs to try for ``url``, in order: its mirrors, or ``(url,)`` when none apply."""
        if not self.mirrors or url.lower().startswith("file:"):
            return (url,)
        normalized = _normalize(url, slash=False)
        best: str | None = None
        for prefix in self.mirrors:
            if normalized.startswith(prefix) and (best is None or len(prefix) > len(best)):
                best = prefix
        if best is None:
            return (url,)
        rest = normalized[len(best) :].lstrip("/")
        return tuple(mirror + rest for mirror in self.mirrors[best])


def load_config(path: Path | None) -> FetchConfig:
    """Read ``path`` (a pixi/rattler ``config.toml``); ``None`` gives the defaults.

    Raises :class:`ConfigError` naming the file for anything unreadable or malformed.
    """
    if path is None:
        return FetchConfig()
    if not path.exists():
        raise ConfigError(
            f"config file {path} does not exist",
            hint="pass the path of a pixi/rattler config.toml to -c/--config",
        )
    data = tomlfile.read(
        path,
        what="config file",
        hint="fix the syntax; see https://pixi.sh/latest/reference/pixi_configuration/",
    )
    ignored = sorted(k for k in data if k not in _KNOWN)
    if ignored:
        log.debug("config %s: ignoring %s", path, ", ".join(ignored))
    return FetchConfig(
        mirrors=MappingProxyType(_mirrors(data.get("mirrors"), path)),
        concurrent_downloads=_downloads(data.get("concurrency"), path),
        authentication_override_file=_auth_file(data, path),
        source=path,
    )


def _bad(path: Path, what: str) -> ConfigError:
    return ConfigError(
        f"config file {path}: {what}",
        hint="see https://pixi.sh/latest/reference/pixi_configuration/ for the format",
    )


def _is_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme.lower() in ("http", "https", "file") and bool(
        parts.netloc or parts.scheme.lower() == "file"
    )


def _normalize(url: str, *, slash: bool) -> str:
    """Scheme and host lower-cased (as ``url::Url`` does); a trailing ``/`` when ``slash``."""
    parts = urlsplit(url)
    path = parts.path
    if slash and not path.endswith("/"):
        path += "/"
    userinfo, at, hostport = parts.netloc.rpartition("@")
    netloc = f"{userinfo}{at}{hostport.lower()}"
    return urlunsplit((parts.scheme.lower(), netloc, path, parts.query, parts.fragment))


def _mirrors(value: object, path: Path) -> dict[str, tuple[str, ...]]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _bad(path, "[mirrors] must be a table of URL = [mirror URLs]")
    out: dict[str, tuple[str, ...]] = {}
    for prefix, mirrors in value.items():
        if not _is_url(prefix):
            raise _bad(path, f"[mirrors] key {prefix!r} is not an http(s) or file URL")
        if isinstance(mirrors, str):
            mirrors = [mirrors]
        if not isinstance(mirrors, list) or not mirrors:
            raise _bad(path, f"[mirrors] {prefix!r} must be a non-empty list of URLs")
        urls: list[str] = []
        for mirror in mirrors:
            if not isinstance(mirror, str) or not _is_url(mirror):
                raise _bad(path, f"[mirrors] {prefix!r}: {mirror!r} is not an http(s) or file URL")
            urls.append(_normalize(mirror, slash=True))
        out[_normalize(prefix, slash=True)] = tuple(urls)
    return out


def _downloads(value: object, path: Path) -> int | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _bad(path, "[concurrency] must be a table")
    downloads = value.get("downloads")
    if downloads is None:
        return None
    if isinstance(downloads, bool) or not isinstance(downloads, int) or downloads < 1:
        raise _bad(path, f"[concurrency] downloads must be a positive integer, not {downloads!r}")
    return downloads


def _auth_file(data: Mapping[str, object], path: Path) -> Path | None:
    value = data.get("authentication-override-file", data.get("authentication_override_file"))
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise _bad(path, "authentication-override-file must be a path")
    return Path(value).expanduser()
