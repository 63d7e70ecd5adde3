"""The one warnings collector: logged when they happen, listed again in a command's result."""

from __future__ import annotations

import logging


class WarningList:
    """Call it with a message: logged once on ``logger`` and kept (in order, each once)."""

    def __init__(self, logger: logging.Logger) -> None:
        self.items: list[str] = []
        self._logger = logger

    def __call__(self, message: str) -> None:
        if message not in self.items:
            self.items.append(message)
            self._logger.warning("%s", message)

    def keep(self, message: str) -> None:
        """Listed in the result without being logged (the caller has shown it)."""
        if message not in self.items:
            self.items.append(message)

    def extend(self, messages: tuple[str, ...] | list[str]) -> None:
        for message in messages:
            self(message)
