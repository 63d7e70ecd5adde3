"""Running py-rattler's (and our own) coroutines from synchronous code."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from typing import Any, TypeVar

_T = TypeVar("_T")


def run_sync(coro: Coroutine[Any, Any, _T], loop: asyncio.AbstractEventLoop | None = None) -> _T:
    """Run ``coro`` to completion and return its result.

    - ``loop`` given and running (the caller is a worker thread of that loop's program): the
      coroutine runs on it, e.g. to share its HTTP client;
    - else, no event loop running in this thread: :func:`asyncio.run`;
    - else (sync code called from inside a running loop): :func:`asyncio.run` in a worker
      thread, so the caller's loop is not re-entered.
    """
    if loop is not None and loop.is_running():
        return asyncio.run_coroutine_threadsafe(coro, loop).result()
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()
