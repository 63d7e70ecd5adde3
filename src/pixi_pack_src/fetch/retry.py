"""The one retry policy: how often and how patiently a download is retried.

:class:`RetryPolicy` holds the numbers (retries per URL, exponential backoff with jitter, the
cap on a server's ``Retry-After``, the total deadline of one attempt) and which HTTP statuses
are worth retrying; :func:`parse_retry_after` reads the header. The loop that applies the
policy (which failure moves to the next mirror, which waits) is
:func:`pixi_pack_src.fetch.http.download_file`.
"""

from __future__ import annotations

import email.utils
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from pixi_pack_src.errors import UsageError

Sleep = Callable[[float], Awaitable[None]]
DEFAULT_DEADLINE = 3600.0
DEADLINE_ENV = "PIXI_PACK_SRC_DOWNLOAD_DEADLINE"


def _deadline_from_env() -> float | None:
    raw = os.environ.get(DEADLINE_ENV, "").strip()
    if not raw:
        return DEFAULT_DEADLINE
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(
            f"{DEADLINE_ENV}={raw!r} is not a number of seconds",
            hint="set it to the seconds one file may take to download (0: no deadline)",
        ) from None
    if value != value or value < 0:
        raise UsageError(f"{DEADLINE_ENV}={raw!r} is not a number of seconds")
    return value or None


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a download is retried.

    ``retries`` counts attempts after the first, per URL. The delay before retry ``n`` (0-based)
    is ``min(backoff_max, backoff_base * 2**n)`` scaled by a random factor in
    ``[1 - jitter, 1 + jitter]``; a ``Retry-After`` header replaces it (capped at
    ``retry_after_max``).
    """

    retries: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    jitter: float = 0.25
    retry_after_max: float = 300.0
    # Seconds one attempt at one file may take in all (a body dripping one byte at a time
    # never trips the read timeout); ``PIXI_PACK_SRC_DOWNLOAD_DEADLINE`` overrides it.
    deadline: float | None = field(default_factory=lambda: _deadline_from_env())

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError("retries must be >= 0")
        if self.deadline is not None and self.deadline <= 0:
            raise ValueError("deadline must be > 0")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must be within [0, 1]")

    def backoff(self, attempt: int, *, rand: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based); ``rand`` in [0, 1)."""
        base = min(self.backoff_max, self.backoff_base * (2.0 ** min(attempt, 62)))
        r = random.random() if rand is None else rand  # noqa: S311 (jitter, not crypto)
        return max(0.0, base * (1.0 + self.jitter * (2.0 * r - 1.0)))

    @staticmethod
    def retryable_status(status: int) -> bool:
        return status in (408, 429) or 500 <= status <= 599


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)
