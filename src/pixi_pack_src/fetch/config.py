"""pixi's configuration, read from the files pixi reads, in pixi's order, by pixi's own reader.

Layers, lowest priority first (later files override earlier ones, key by key), as pixi's
``pixi_config::Config::load`` does:

1. the system file: ``/etc/pixi/config.toml`` (``C:\\ProgramData\\pixi\\config.toml``);
2. the user's file: ``$XDG_CONFIG_HOME/pixi/config.toml`` (default ``~/.config/pixi``; on macOS
   ``$XDG_CONFIG_HOME/pixi`` then ``~/Library/Application Support/pixi``; ``%APPDATA%\\pixi``
   on Windows);
3. ``$PIXI_HOME/config.toml`` (default ``~/.pixi/config.toml``);
4. the workspace's ``.pixi/config.toml``;
5. ``-c/--config FILE``.

``PIXI_NO_CONFIG`` skips 1-3 and ``PIXI_CONFIG_FILE`` replaces them, as in pixi. Missing files
are skipped (except ``-c``, which must exist).

Each file is parsed as TOML 1.1 by :mod:`pixi_pack_src.tomlfile` (errors name the file), then
by py-rattler's :class:`rattler.Config` (pixi's own reader: ``rattler_config``), which gives the
keys that matter for fetching:

- ``[mirrors]``: a channel URL prefix -> mirror URLs, tried in order (``http(s)://``,
  ``file://``, ``oci://``, ``s3://``, ``gcs://``). A mirror list *replaces* the original URL;
  the longest matching prefix wins; prefixes match on ``/`` boundaries.
- ``[concurrency] downloads``; ``[proxy-config]`` (``http``, ``https``, ``non-proxy-hosts``);
  ``tls-no-verify``, ``tls-root-certs``; ``authentication-override-file``;
- ``[s3-options.<bucket>]`` (``endpoint-url``, ``region``, and pixi's ``force-path-style``,
  which ``rattler_config`` calls ``addressing-style = "path"``).

Every other key (``default-channels``, ``pypi-config``, ``shell``...) belongs to pixi and is
ignored (logged at DEBUG level).
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import rattler

from pixi_pack_src import tomlfile
from pixi_pack_src.errors import ConfigError

log = logging.getLogger(__name__)

DOCS = "https://pixi.sh/latest/reference/pixi_configuration/"
# Schemes a mirror (or a lock URL) can be fetched from: httpx does http(s), we read file://,
# py-rattler's client does oci://, s3:// and gcs://.
SCHEMES = frozenset({"http", "https", "file", "oci", "s3", "gcs"})
RATTLER_SCHEMES = frozenset({"oci", "s3", "gcs"})


@dataclass(frozen=True)
class S3Options:
    """``[s3-options.<bucket>]``: a custom S3 endpoint for one bucket."""

    endpoint_url: str
    region: str
    path_style: bool = False


@dataclass(frozen=True)
class FetchConfig:
    """What the pixi configuration says about fetching (see the module docstring)."""

    mirrors: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )  # prefix (with trailing "/") -> mirrors (with trailing "/"), in order
    concurrent_downloads: int | None = None
    authentication_override_file: Path | None = None
    source: Path | None = None  # the -c file, for messages
    sources: tuple[Path, ...] = ()  # every file read, lowest priority first
    s3_options: Mapping[str, S3Options] = field(default_factory=lambda: MappingProxyType({}))
    proxy_http: str | None = None
    proxy_https: str | None = None
    non_proxy_hosts: tuple[str, ...] = ()
    tls_no_verify: bool = False
    tls_root_certs: str | None = None  # "webpki" | "system" | None

    def __post_init__(self) -> None:
        normalized = {
            _normalize(prefix, slash=True): tuple(_normalize(m, slash=True) for m in mirrors)
            for prefix, mirrors in self.mirrors.items()
        }
        object.__setattr__(self, "mirrors", MappingProxyType(normalized))
        object.__setattr__(self, "s3_options", MappingProxyType(dict(self.s3_options)))

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

    @property
    def uses_proxy(self) -> bool:
        return self.proxy_http is not None or self.proxy_https is not None


def search_paths(
    workspace_root: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
    platform: str = sys.platform,
) -> list[Path]:
    """The config files pixi would read (existing or not), lowest priority first, without
    ``-c``."""
    env = os.environ if environ is None else environ
    home_dir = home if home is not None else Path.home()
    paths: list[Path] = []
    if env.get("PIXI_CONFIG_FILE"):
        paths.append(Path(env["PIXI_CONFIG_FILE"]))
    elif env.get("PIXI_NO_CONFIG", "").lower() not in ("1", "true", "yes", "on"):
        if platform == "win32":
            paths.append(Path("C:\\ProgramData") / "pixi" / "config.toml")
            appdata = env.get("APPDATA")
            if appdata:
                paths.append(Path(appdata) / "pixi" / "config.toml")
        else:
            paths.append(Path("/etc/pixi/config.toml"))
            xdg = env.get("XDG_CONFIG_HOME")
            if platform == "darwin":
                if xdg:
                    paths.append(Path(xdg) / "pixi" / "config.toml")
                paths.append(home_dir / "Library" / "Application Support" / "pixi" / "config.toml")
            else:
                base = Path(xdg) if xdg else home_dir / ".config"
                paths.append(base / "pixi" / "config.toml")
        pixi_home = Path(env["PIXI_HOME"]) if env.get("PIXI_HOME") else home_dir / ".pixi"
        paths.append(pixi_home / "config.toml")
    if workspace_root is not None:
        paths.append(workspace_root / ".pixi" / "config.toml")
    return paths


def load_config(
    path: Path | None = None,
    *,
    workspace_root: Path | None = None,
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
    search: bool = True,
) -> FetchConfig:
    """Read pixi's configuration: the files of :func:`search_paths` (when ``search``), then
    ``path`` (``-c``). Raises :class:`ConfigError` naming the file for anything unreadable
    or malformed."""
    files = [p for p in search_paths(workspace_root, environ=environ, home=home) if p.is_file()]
    files = files if search else []
    if path is not None:
        if not path.exists():
            raise ConfigError(
                f"config file {path} does not exist",
                hint="pass the path of a pixi/rattler config.toml to -c/--config",
            )
        files.append(path)
    if not files:
        return FetchConfig()
    merged: rattler.Config | None = None
    path_style: dict[str, bool] = {}
    downloads_set = False
    for file in files:
        layer, doc = _read_layer(file, path_style)
        concurrency = doc.get("concurrency")
        downloads_set |= isinstance(concurrency, dict) and "downloads" in concurrency
        merged = layer if merged is None else merged.merge(layer)
    assert merged is not None
    log.debug("pixi configuration read from %s", ", ".join(map(str, files)))
    config = _fetch_config(merged, files, path_style, source=path)
    if not downloads_set:  # rattler's default (50) is not a setting: keep the CLI's default
        config = replace(config, concurrent_downloads=None)
    return config


# --------------------------------------------------------------------------------------------


def _bad(path: Path, what: str) -> ConfigError:
    return ConfigError(f"config file {path}: {what}", hint=f"see {DOCS} for the format")


def _read_layer(path: Path, path_style: dict[str, bool]) -> tuple[rattler.Config, dict[str, Any]]:
    doc = tomlfile.read(path, what="config file", hint=f"fix the syntax; see {DOCS}")
    text = path.read_text(encoding="utf-8")
    try:
        layer, unused = rattler.Config.from_toml_with_unused_keys(text)
    except ValueError as exc:
        raise _bad(path, _rattler_message(exc)) from exc
    if unused:
        log.debug("config %s: not about fetching: %s", path, ", ".join(unused))
    # pixi's `force-path-style`: rattler_config's `addressing-style = "path"`
    options = doc.get("s3-options")
    if isinstance(options, dict):
        for bucket, table in options.items():
            if isinstance(table, dict) and "force-path-style" in table:
                value = table["force-path-style"]
                if not isinstance(value, bool):
                    raise _bad(path, f"s3-options.{bucket}.force-path-style must be true or false")
                path_style[bucket] = value
    _check_layer(path, doc, layer)
    return layer, doc


def _rattler_message(exc: ValueError) -> str:
    """``line L, column C: what`` from a ``toml`` crate error (a multi-line snippet)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return "invalid configuration"
    where = re.search(r"line \d+, column \d+", lines[0])
    detail = lines[-1] if len(lines) > 1 else lines[0]
    return f"{where.group(0)}: {detail}" if where else detail


def _check_layer(path: Path, doc: Mapping[str, Any], layer: rattler.Config) -> None:
    for prefix, mirrors in layer.mirrors.items():
        if not mirrors:
            raise _bad(path, f"[mirrors] {prefix!r} must be a non-empty list of URLs")
        for mirror in mirrors:
            scheme = urlsplit(mirror).scheme.lower()
            if scheme not in SCHEMES:
                raise _bad(
                    path,
                    f"[mirrors] {prefix!r}: {mirror!r} uses {scheme}://, which cannot be "
                    f"fetched (use one of {', '.join(sorted(SCHEMES))})",
                )
    concurrency = doc.get("concurrency")
    downloads = concurrency.get("downloads") if isinstance(concurrency, dict) else None
    if downloads is not None and (isinstance(downloads, bool) or downloads < 1):
        raise _bad(path, f"[concurrency] downloads must be a positive integer, not {downloads!r}")


def _fetch_config(
    config: rattler.Config,
    files: list[Path],
    path_style: Mapping[str, bool],
    *,
    source: Path | None,
) -> FetchConfig:
    s3: dict[str, S3Options] = {}
    for bucket, options in config.s3_options.items():
        style = path_style.get(bucket)
        s3[bucket] = S3Options(
            endpoint_url=str(options["endpoint-url"]),
            region=str(options["region"]),
            path_style=style if style is not None else options.get("addressing-style") == "path",
        )
    auth_file = config.authentication_override_file
    return FetchConfig(
        mirrors=MappingProxyType({k: tuple(v) for k, v in config.mirrors.items()}),
        concurrent_downloads=config.concurrency_downloads,
        authentication_override_file=Path(auth_file).expanduser() if auth_file else None,
        source=source,
        sources=tuple(files),
        s3_options=MappingProxyType(s3),
        proxy_http=config.proxy_http,
        proxy_https=config.proxy_https,
        non_proxy_hosts=tuple(config.proxy_non_proxy_hosts),
        tls_no_verify=bool(config.tls_no_verify),
        tls_root_certs=config.tls_root_certs,
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
