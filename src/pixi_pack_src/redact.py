"""Secrets out of every text the tool shows or writes: credentials inside URLs.

The one redactor. :func:`redact_url` hides, in one URL:

- ``user:password@`` (the password) and ``token@`` (a user-only credential);
- conda ``/t/<token>/`` path segments;
- the values of query parameters that carry secrets: names containing ``token``,
  ``password``/``passwd``, ``secret``, ``signature``, ``credential``, ``key``, ``auth`` or
  ``session`` (``access_token``, ``api_key``, ``Key-Pair-Id``, ``auth``...), ``sig`` and
  ``code``; every ``X-Amz-*`` (S3 pre-signed URLs) and ``X-Goog-*`` (GCS signed URLs)
  parameter; CloudFront's ``Policy``; and, when a ``sig`` is present (an Azure SAS), every
  SAS field (``sv``, ``se``, ``sp``, ``st``, ``sr``, ``spr``, ``skoid``...), since together
  they describe what the signature grants.

:func:`redact_text` finds URLs anywhere in a text (a message, a command line, a JSON
document, a build log line) and redacts each with :func:`redact_url`. Both are idempotent:
redacted text stays as it is, and the rest of the URL is kept byte for byte.

Applied at the exits: the error funnel, the log formatter, the consoles (stderr and the
``inspect`` output), ``inspect --json``, the archive's provenance, ``--json``/``--report``
and the command lines and output that :mod:`pixi_pack_src.proc` writes to build logs.
"""

from __future__ import annotations

import re
from typing import TextIO
from urllib.parse import unquote, urlsplit

REDACTED = "********"

_SCHEME = r"[A-Za-z][A-Za-z0-9+.\-]*://"
_URL = re.compile(rf"{_SCHEME}[^\s'\"<>`]+")
_CONDA_TOKEN = re.compile(r"^/t/[^/]+")
_SECRET_NAME = re.compile(
    r"token|password|passwd|secret|signature|credential|key|auth|session", re.IGNORECASE
)
_SECRET_EXACT = frozenset({"sig", "code", "policy"})
_SECRET_PREFIXES = ("x-amz-", "x-goog-")
# Azure shared access signature fields (present with ``sig``)
_SAS_FIELDS = frozenset(
    {"sv", "ss", "srt", "sp", "se", "st", "spr", "sr", "si", "sdd", "ses", "rscc", "rscd",
     "rsce", "rscl", "rsct", "skoid", "sktid", "skt", "ske", "sks", "skv", "saoid", "suoid",
     "scid"}
)  # fmt: skip


def _is_secret(name: str, *, sas: bool) -> bool:
    lowered = name.lower()
    return (
        lowered in _SECRET_EXACT
        or lowered.startswith(_SECRET_PREFIXES)
        or bool(_SECRET_NAME.search(lowered))
        or (sas and lowered in _SAS_FIELDS)
    )


def _redact_query(query: str) -> str:
    if not query:
        return query
    pairs = query.split("&")
    names = [unquote(p.partition("=")[0]) for p in pairs]
    sas = any(n.lower() == "sig" for n in names)
    out = []
    for pair, name in zip(pairs, names, strict=True):
        key, sep, value = pair.partition("=")
        if sep and value and _is_secret(name, sas=sas):
            value = REDACTED
        out.append(f"{key}{sep}{value}")
    return "&".join(out)


def redact_url(url: str) -> str:
    """``url`` without secrets (see the module docstring); everything else kept as is."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return re.sub(r"//[^/@]*@", f"//{REDACTED}@", url)
    if not parts.scheme or "//" not in url:
        return url
    head, _, rest = url.partition("//")
    end = len(rest)
    for stop in "/?#":
        index = rest.find(stop)
        if index != -1:
            end = min(end, index)
    netloc, tail = rest[:end], rest[end:]
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, sep, _password = userinfo.partition(":")
        netloc = f"{user}:{REDACTED}@{hostport}" if sep else f"{REDACTED}@{hostport}"
    path, qmark, after = tail.partition("?")
    fragment = ""
    if qmark:
        query, hashmark, frag = after.partition("#")
        fragment = f"{hashmark}{frag}"
    else:
        path, hashmark, frag = path.partition("#")
        query = ""
        fragment = f"{hashmark}{frag}"
    path = _CONDA_TOKEN.sub(f"/t/{REDACTED}", path)
    return f"{head}//{netloc}{path}{qmark}{_redact_query(query)}{fragment}"


def redact_text(text: str) -> str:
    """``text`` with the credentials of every URL in it replaced by ``********``."""
    if "://" not in text:
        return text
    return _URL.sub(lambda m: redact_url(m.group(0)), text)


class RedactingStream:
    """A text stream wrapper that redacts what is written (everything else is delegated)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(redact_text(text))
        return len(text)

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)
