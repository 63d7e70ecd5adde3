"""Secrets out of every text the tool shows or writes: credentials inside URLs.

:func:`redact_text` finds URLs anywhere in a text (a message, a command line, a JSON
document, a build log line) and hides ``user:password@`` (the password), ``token@`` (a
user-only credential), conda ``/t/<token>/`` path segments and the values of query
parameters named like tokens, passwords, keys or signatures. Idempotent: redacted text stays
as it is. :func:`pixi_pack_src.fetch.http.redact_url` does the same for one URL.

Applied at the exits: the error funnel, the log formatter, the consoles (stderr and the
``inspect`` output), ``inspect --json`` and the command lines and output that
:mod:`pixi_pack_src.proc` writes to build logs.
"""

from __future__ import annotations

import re
from typing import TextIO

REDACTED = "********"

_SCHEME = r"[A-Za-z][A-Za-z0-9+.\-]*://"
_USER_PASSWORD = re.compile(rf"(?P<scheme>{_SCHEME})(?P<user>[^/@\s:'\"]*):(?P<pw>[^/@\s'\"]+)@")
_USER_ONLY = re.compile(rf"(?P<scheme>{_SCHEME})(?P<user>[^/@\s:'\"*]+)@")
_CONDA_TOKEN = re.compile(rf"(?P<head>{_SCHEME}[^/\s'\"]+)/t/(?P<token>[^/\s'\"]+)")
_SECRET_QUERY = re.compile(
    r"(?P<key>[?&][^=&\s#'\"]*(?:token|password|passwd|secret|signature|credential|key)"
    r"[^=&\s#'\"]*=)[^&\s#'\"]+",
    re.IGNORECASE,
)


def redact_text(text: str) -> str:
    """``text`` with the credentials of every URL in it replaced by ``********``."""
    if "://" not in text:
        return text
    text = _USER_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{REDACTED}@", text)
    text = _USER_ONLY.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)
    text = _CONDA_TOKEN.sub(lambda m: f"{m['head']}/t/{REDACTED}", text)
    return _SECRET_QUERY.sub(lambda m: f"{m['key']}{REDACTED}", text)


class RedactingStream:
    """A text stream wrapper that redacts what is written (everything else is delegated)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(redact_text(text))
        return len(text)

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)
