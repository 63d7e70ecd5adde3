"""The one progress interface the core uses; it never imports rich.

The CLI passes a rich implementation (:mod:`pixi_pack_src.cli.ui`); library users get
:class:`NullReporter`. Implementations must be thread-safe: builds report from worker threads.
Messages for humans go through :mod:`logging`; this interface carries only progress.
"""

from __future__ import annotations

from typing import Literal, Protocol

Outcome = Literal[
    "downloaded",
    "cached",
    "copied",
    "built",
    "reused",
    "installed",
    "written",
    "verified",
    "failed",
    "skipped",
]


class Reporter(Protocol):
    def stage_started(self, stage: str, *, items: int, total_bytes: int | None = None) -> None:
        """A phase begins (``download``, ``build``, ``archive``, ``install``...)."""

    def stage_finished(self, stage: str) -> None:
        """The phase ended (successfully or not)."""

    def task_started(self, key: str, *, label: str, total_bytes: int | None = None) -> None:
        """One artifact starts (a download, a build)."""

    def task_advanced(self, key: str, nbytes: int) -> None:
        """Bytes were transferred or written for ``key``."""

    def task_reset(self, key: str) -> None:
        """A retry restarts ``key`` from zero bytes."""

    def task_waiting(self, key: str, *, reason: str, retry_in: float | None = None) -> None:
        """``key`` waits: ``retry_in`` seconds before its next attempt, after ``reason``."""

    def task_finished(self, key: str, *, outcome: Outcome, detail: str = "") -> None:
        """``key`` is done; ``detail`` is a short human note (``2 retries``)."""

    def status(self, message: str) -> None:
        """A status line (hidden by ``-q``)."""


class NullReporter:
    """Reports nothing."""

    def stage_started(self, stage: str, *, items: int, total_bytes: int | None = None) -> None:
        return None

    def stage_finished(self, stage: str) -> None:
        return None

    def task_started(self, key: str, *, label: str, total_bytes: int | None = None) -> None:
        return None

    def task_advanced(self, key: str, nbytes: int) -> None:
        return None

    def task_reset(self, key: str) -> None:
        return None

    def task_waiting(self, key: str, *, reason: str, retry_in: float | None = None) -> None:
        return None

    def task_finished(self, key: str, *, outcome: Outcome, detail: str = "") -> None:
        return None

    def status(self, message: str) -> None:
        return None
