"""Issue 15 item 5: py-rattler's download client against ours (httpx) for conda files.

``python -m benchmarks.fetch_clients URLS DEST CLIENT [--concurrency N]``: ``URLS`` is a text
file of ``<url> <relative path> <sha256> <size>`` lines; ``CLIENT`` is

- ``httpx``: :func:`pixi_pack_src.fetch.download.fetch_all` as pack runs it (one client,
  ``N`` concurrent downloads, every byte hashed while it streams, our retry policy);
- ``rattler``: py-rattler's Rust client (``rattler.package_streaming.download_to_path``,
  ``RetryMiddleware`` with the same number of retries), ``N`` at a time, each file then
  hashed and compared (py-rattler does not hash what it downloads);
- ``rattler-stream``: py-rattler's client streaming into a Python writer that hashes each
  chunk on its way to the file (``download_to_writer``): one read of the bytes, as httpx.

Prints the seconds the downloads took (interpreter start and imports excluded).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
import time
from pathlib import Path

from pixi_pack_src.errors import ChecksumMismatchError
from pixi_pack_src.hashing import hash_file
from pixi_pack_src.lock.model import Hashes

RETRIES = 5


def _mismatch(rel: str, want: str, got: str) -> ChecksumMismatchError:
    return ChecksumMismatchError(
        what=rel, source="benchmark", algorithm="sha256", expected=want, actual=got
    )


async def with_httpx(items: list[tuple[str, Path, str, int]], concurrency: int) -> None:
    from pixi_pack_src.fetch.auth import AuthStore
    from pixi_pack_src.fetch.download import Artifact, DownloadSettings, fetch_all
    from pixi_pack_src.reporter import NullReporter

    artifacts = [
        Artifact.for_url(
            url, file_name=dest.name, hashes=Hashes(sha256=sha, size=size), kind="conda"
        )
        for url, dest, sha, size in items
    ]
    await fetch_all(
        artifacts,
        work_dir=items[0][1].parent.parent,
        cache=None,
        settings=DownloadSettings(concurrency=concurrency, retries=RETRIES),
        auth=AuthStore({}),
        reporter=NullReporter(),
    )


class _HashingFile:
    def __init__(self, path: Path) -> None:
        self.fh = path.open("wb")
        self.sha = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        return self.fh.write(data)


async def with_rattler(
    items: list[tuple[str, Path, str, int]], concurrency: int, *, stream: bool
) -> None:
    from rattler.networking import Client, RetryMiddleware
    from rattler.package_streaming import download_to_path, download_to_writer

    client = Client([RetryMiddleware(max_retries=RETRIES)])
    semaphore = asyncio.Semaphore(concurrency)

    async def one(url: str, dest: Path, sha: str, size: int) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        async with semaphore:
            if stream:
                writer = _HashingFile(dest)
                try:
                    await download_to_writer(client, url, writer)
                finally:
                    writer.fh.close()
                got = writer.sha.hexdigest()
            else:
                await download_to_path(client, url, dest)
                got = (await asyncio.to_thread(hash_file, dest, md5=False))[0]
        if got != sha or dest.stat().st_size != size:
            raise _mismatch(dest.name, sha, got)

    async with asyncio.TaskGroup() as group:
        for item in items:
            group.create_task(one(*item))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fetch_clients")
    parser.add_argument("urls", type=Path)
    parser.add_argument("dest", type=Path)
    parser.add_argument("client", choices=["httpx", "rattler", "rattler-stream"])
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args(argv)
    items = []
    for line in args.urls.read_text().splitlines():
        url, rel, sha, size = line.split()
        items.append((url, args.dest / rel, sha, int(size)))
    start = time.perf_counter()
    if args.client == "httpx":
        asyncio.run(with_httpx(items, args.concurrency))
    else:
        asyncio.run(with_rattler(items, args.concurrency, stream=args.client == "rattler-stream"))
    print(f"{time.perf_counter() - start:.3f}")
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    import os

    os._exit(code)  # py-rattler can crash at interpreter exit
