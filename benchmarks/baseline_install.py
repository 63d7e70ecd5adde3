"""Baseline of case 3 (and the "create the environment" step of case 4): raw ``rattler.install``.

``python -m benchmarks.baseline_install LOCK CHANNEL_DIR PREFIX CACHE_DIR``: the records of
the lock's default environment for linux-64, pointed at ``CHANNEL_DIR/<subdir>/<file>``
(``file://``; with ``--keep-urls`` the lock's own URLs, downloaded by py-rattler), installed by py-rattler into ``PREFIX`` with the package cache ``CACHE_DIR``.
No hash checks beyond what py-rattler does on its own, no archive, no activation script.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

import rattler


def locked_records(
    lock: Path, channel_dir: Path, *, keep_urls: bool = False
) -> list[rattler.RepoDataRecord]:
    lock_file = rattler.LockFile.from_path(lock)
    env = lock_file.default_environment()
    if env is None:
        raise SystemExit(f"{lock} has no default environment")
    platform = next(p for p in lock_file.platforms() if p.name == "linux-64")
    records = env.conda_repodata_records_for_platform(platform) or []
    for record in [] if keep_urls else records:
        record.url = (channel_dir / record.subdir / record.file_name).resolve().as_uri()
    return list(records)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.baseline_install")
    parser.add_argument("lock", type=Path)
    parser.add_argument("channel_dir", type=Path)
    parser.add_argument("prefix", type=Path)
    parser.add_argument("cache_dir", type=Path)
    parser.add_argument(
        "--keep-urls", action="store_true", help="download from the lock's URLs (py-rattler)"
    )
    args = parser.parse_args(argv)
    records = locked_records(args.lock, args.channel_dir, keep_urls=args.keep_urls)
    asyncio.run(
        rattler.install(
            records,
            args.prefix,
            cache_dir=args.cache_dir,
            platform=rattler.Subdir("linux-64"),
            execute_link_scripts=False,
            show_progress=False,
        )
    )
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)  # py-rattler can crash at interpreter exit
