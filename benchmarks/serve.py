"""Serve a world directory on 127.0.0.1 from a separate process (``testworld.server``).

``python -m benchmarks.serve ROOT [--latency SECONDS]`` prints the base URL on one line and
serves until its standard input closes. :class:`ServedWorld` runs it as a context manager.
A separate process keeps the server's CPU time and memory out of the harness and out of the
measured commands (the server holds whole files in memory while sending them).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from types import TracebackType

from benchmarks.common import child_env, helper


class ServedWorld:
    """``with ServedWorld(world.root) as url: ...`` (``url`` has no trailing slash)."""

    def __init__(self, root: Path, *, latency: float = 0.0, cache_control: bool = False) -> None:
        self.root = root
        self.latency = latency
        self.cache_control = cache_control
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> str:
        self._proc = subprocess.Popen(
            helper(
                "serve",
                str(self.root),
                "--latency",
                str(self.latency),
                *(["--cache-control"] if self.cache_control else []),
            ),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=child_env(),
        )  # fmt: skip
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().strip()
        if not line.startswith("http://127.0.0.1:"):
            self.__exit__(None, None, None)
            raise RuntimeError(f"the world server did not start (said {line!r})")
        return line

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def main(argv: list[str] | None = None) -> int:
    from testworld.server import WorldServer

    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve")
    parser.add_argument("root", type=Path)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--cache-control", action="store_true", help="PyPI's Cache-Control")
    args = parser.parse_args(argv)
    with WorldServer(args.root, latency=args.latency, cache_control=args.cache_control) as server:
        print(server.url, flush=True)
        sys.stdin.read()  # until the harness closes our stdin
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
