"""Baseline of case 1: download files with plain httpx (same concurrency), then ``tar cf``.

``python -m benchmarks.baseline_fetch URLS DEST_DIR OUT_TAR [--concurrency N]``: ``URLS`` is a
text file of ``<url> <relative path>`` lines. Every body is streamed to ``DEST_DIR/<path>`` (no
hashing, no retries, no cache: the least a downloader can do), then GNU tar archives the tree.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
from pathlib import Path

import httpx


async def download_all(pairs: list[tuple[str, Path]], concurrency: int) -> None:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    semaphore = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60.0) as client:

        async def one(url: str, dest: Path) -> None:
            async with semaphore, client.stream("GET", url) as response:
                response.raise_for_status()
                dest.parent.mkdir(parents=True, exist_ok=True)
                with dest.open("wb") as fh:
                    async for chunk in response.aiter_raw():
                        fh.write(chunk)

        async with asyncio.TaskGroup() as group:
            for url, dest in pairs:
                group.create_task(one(url, dest))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.baseline_fetch")
    parser.add_argument("urls", type=Path)
    parser.add_argument("dest", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args(argv)
    pairs = []
    for line in args.urls.read_text().splitlines():
        url, rel = line.split()
        pairs.append((url, args.dest / rel))
    asyncio.run(download_all(pairs, args.concurrency))
    subprocess.run(["tar", "cf", str(args.out), "-C", str(args.dest), "."], check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
