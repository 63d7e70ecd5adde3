"""One quoting function per shell: data never becomes a shell word unquoted.

Every text that comes from data or from the user and is written into a script we generate
(activation scripts for bash, zsh, fish, xonsh, cmd, PowerShell and nushell; the headers of
self-extracting scripts) goes through the function for that shell. Each returns one complete,
literal word: no expansion (``$``, backticks, ``%``), no command separators, no end of line
that the shell would act on. A text that a shell cannot hold literally is refused with
:class:`UnquotableError` (a ``"`` or a line break in a cmd word, a NUL anywhere).

Variable names are not quoted but checked: :func:`check_identifier` accepts
``[A-Za-z_][A-Za-z0-9_]*`` only.
"""

from __future__ import annotations

import re

from pixi_pack_src.errors import PixiPackSrcError

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_POSIX_SAFE = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class UnquotableError(PixiPackSrcError, ValueError):
    """A text that cannot be written as a literal word for a shell (exit code 1)."""


def _no_nul(text: str, shell: str) -> None:
    if "\x00" in text:
        raise UnquotableError(f"{text!r} has a NUL byte, which no {shell} word can hold")


def is_identifier(name: str) -> bool:
    return _IDENTIFIER.fullmatch(name) is not None


def check_identifier(name: str, *, what: str = "variable name") -> str:
    """``name`` if it is a portable variable name, else :class:`UnquotableError`."""
    if not is_identifier(name):
        raise UnquotableError(
            f"{what} {name!r} is not a valid identifier (letters, digits and '_', not "
            "starting with a digit)"
        )
    return name


def quote_posix(text: str) -> str:
    """bash/zsh: ``'...'``; text with control characters as ANSI-C ``$'...'`` (one line)."""
    _no_nul(text, "bash")
    if _POSIX_SAFE.fullmatch(text):
        return text
    if not _CONTROL.search(text):
        return "'" + text.replace("'", "'\\''") + "'"
    out = []
    for ch in text:
        if ch in "\\'":
            out.append("\\" + ch)
        elif _CONTROL.match(ch):
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "$'" + "".join(out) + "'"


def quote_fish(text: str) -> str:
    """fish: ``'...'`` (only ``\\\\`` and ``\\'`` are escapes there)."""
    _no_nul(text, "fish")
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote_xonsh(text: str) -> str:
    """xonsh: a Python string literal (no ``$`` expansion in Python mode)."""
    _no_nul(text, "xonsh")
    return repr(text)


def quote_powershell(text: str) -> str:
    """PowerShell: ``'...'``; every single-quote character (ASCII and the typographic ones
    PowerShell also accepts) doubled."""
    _no_nul(text, "PowerShell")
    out = []
    for ch in text:
        out.append(ch * 2 if ch in "'\u2018\u2019\u201a\u201b" else ch)
    return "'" + "".join(out) + "'"


def quote_cmd(text: str) -> str:
    """cmd.exe: ``"..."`` with ``%`` doubled (batch files expand ``%x%`` even inside quotes);
    a ``"``, a line break or a NUL cannot be held and is refused. Used with delayed
    expansion off (``!`` is then literal)."""
    if any(c in text for c in '"\r\n\x00'):
        raise UnquotableError(
            f"{text!r} has a double quote or a line break, which a cmd.exe word cannot hold"
        )
    return '"' + text.replace("%", "%%") + '"'


def quote_nushell(text: str) -> str:
    """nushell: ``"..."`` with backslash escapes; other control characters refused."""
    _no_nul(text, "nushell")
    escapes = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    out = []
    for ch in text:
        if ch in escapes:
            out.append(escapes[ch])
        elif _CONTROL.match(ch):
            raise UnquotableError(f"{text!r} has a control character nushell cannot hold")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'
