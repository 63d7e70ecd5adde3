"""The one TOML reader: every TOML input (manifests, ``pyproject.toml`` of workspaces, sdists and
source trees, pixi configuration, overrides) is parsed here.

pixi reads and writes TOML 1.1 (multi-line inline tables, trailing commas in inline tables); the
standard library's ``tomllib`` (Python 3.11-3.14) is TOML 1.0 and refuses 13 of the 334
manifests in pixi's own repository. ``tomli >= 2.3`` parses TOML 1.1, so it is the parser here,
and nothing else in the package imports a TOML parser (a test checks it).

:func:`read` raises the caller's error class with one line naming the file and what went wrong:
unreadable, not UTF-8, or not TOML (with the line and column).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomli

from pixi_pack_src.errors import ConfigError, PixiPackSrcError

__all__ = ["TOMLDecodeError", "loads", "read"]

TOMLDecodeError = tomli.TOMLDecodeError

_SYNTAX_HINT = "fix the TOML syntax (pixi reads TOML 1.1)"


def loads(text: str) -> dict[str, Any]:
    """Parse TOML 1.1 text; raises :class:`TOMLDecodeError`."""
    return tomli.loads(text)


def read(
    path: Path,
    *,
    what: str = "",
    error: type[PixiPackSrcError] = ConfigError,
    hint: str | None = _SYNTAX_HINT,
) -> dict[str, Any]:
    """The TOML document in ``path``; errors are ``error("cannot parse <what> <path>: ...")``.

    ``what`` names the kind of file in messages ("config file", "manifest"...).
    """
    label = f"{what} {path}" if what else str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise error(f"{label} does not exist") from None
    except OSError as exc:
        raise error(f"cannot read {label}: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(
            f"cannot read {label}: not UTF-8 text (byte {exc.start})",
            hint="a TOML file is UTF-8 text; is this the right file?",
        ) from exc
    try:
        return tomli.loads(text)
    except tomli.TOMLDecodeError as exc:
        raise error(f"cannot parse {label}: {exc}", hint=hint) from exc
