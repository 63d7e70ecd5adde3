"""Verbosity -> logging configuration (stderr only; stdout carries data)."""

from __future__ import annotations

import logging
import sys

from rich.console import Console
from rich.logging import RichHandler

from pixi_pack_src.redact import redact_text

# verbosity = (#-v) - (#-q):  -2 errors only, -1 no status/progress, 0 default, 1 info,
# 2 debug (every command line), 3 debug + live subprocess output.
LEVELS = {-2: logging.ERROR, -1: logging.WARNING, 0: logging.WARNING, 1: logging.INFO}


def level_for(verbosity: int) -> int:
    if verbosity >= 2:
        return logging.DEBUG
    return LEVELS.get(max(verbosity, -2), logging.WARNING)


class _PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        if record.levelno >= logging.ERROR:
            prefix = "error: "
        elif record.levelno >= logging.WARNING:
            prefix = "warning: "
        elif record.levelno <= logging.DEBUG:
            prefix = "debug: "
        else:
            prefix = ""
        text = prefix + msg
        if record.exc_info and record.levelno <= logging.DEBUG:
            text += "\n" + self.formatException(record.exc_info)
        return redact_text(text)


def configure(verbosity: int, console: Console | None = None) -> None:
    """Install one handler on the ``pixi_pack_src`` logger tree."""
    root = logging.getLogger("pixi_pack_src")
    for h in list(root.handlers):
        root.removeHandler(h)
    handler: logging.Handler
    if console is not None and console.is_terminal and verbosity < 2:
        handler = RichHandler(
            console=console,
            show_time=False,
            show_path=False,
            show_level=False,
            markup=False,
            rich_tracebacks=False,
        )
        handler.setFormatter(_PlainFormatter())
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_PlainFormatter())
    root.addHandler(handler)
    root.setLevel(level_for(verbosity))
    root.propagate = False
