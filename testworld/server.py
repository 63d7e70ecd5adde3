"""A threaded HTTP server on 127.0.0.1 with fault knobs per URL path.

It serves a directory (``GET``/``HEAD``; ``dir/`` -> ``dir/index.html``, or ``dir/index.json``
as a PEP 691 simple-API page when the client accepts it or there is no HTML page) and records
every request. Faults are attached to paths (exact, or ``fnmatch`` patterns) and fire for the first
``times`` requests of that path (``None`` = always):

- ``status``: answer ``status`` (500, 503, 404...) with a short body;
- ``retry_after``: 429 with a ``Retry-After: <seconds>`` header;
- ``reset``: close the connection without an answer (RST);
- ``truncate``: announce the full Content-Length, send half the body, close;
- ``wrong_bytes``: the right length, different bytes;
- ``slow``: sleep ``delay`` seconds between 64 KiB chunks;
- ``stall``: send the headers and half the body, then sleep ``delay`` seconds (read timeout);
- ``endless``: no Content-Length, then zeros until the client hangs up (a body without end);
- ``drip``: the right Content-Length, then one byte every ``delay`` seconds (never trips a
  read timeout).

``random_faults(rate, seed)`` makes any request fail with probability ``rate`` using one of
the kinds above (seeded, so runs are reproducible). ``latency`` delays every answer, to model a
real network in benchmarks; ``cache_control`` sends PyPI's ``Cache-Control`` headers (pages
10 minutes, files a year). ``require_auth(prefix, header)`` answers 401 unless the
``Authorization`` header equals ``header``.
"""

from __future__ import annotations

import fnmatch
import random
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from testworld.service import ThreadedHTTPService

FaultKind = Literal[
    "status", "retry_after", "reset", "truncate", "wrong_bytes", "slow", "stall", "endless", "drip"
]
RANDOM_KINDS: tuple[FaultKind, ...] = ("status", "retry_after", "reset", "truncate", "stall")
CHUNK = 64 * 1024
PEP691_JSON = "application/vnd.pypi.simple.v1+json"


def _directory_page(directory: Path, accept: str) -> Path:
    """``dir/``: ``index.html``, or ``index.json`` (a PEP 691 page) when the client asks for
    JSON or there is no HTML page."""
    html, js = directory / "index.html", directory / "index.json"
    if js.is_file() and (PEP691_JSON in accept or not html.is_file()):
        return js
    return html


@dataclass
class Fault:
    kind: FaultKind
    times: int | None = 1
    status: int = 503
    retry_after: float = 0.0
    delay: float = 0.0
    fired: int = 0

    def take(self) -> bool:
        if self.times is not None and self.fired >= self.times:
            return False
        self.fired += 1
        return True


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    status: int
    fault: str | None


@dataclass
class _Random:
    rate: float
    rng: random.Random
    kinds: tuple[FaultKind, ...]
    stall_delay: float
    paths: str


@dataclass
class _State:
    root: Path
    latency: float = 0.0
    cache_control: bool = False
    faults: list[tuple[str, Fault]] = field(default_factory=list)
    random: _Random | None = None
    auth: list[tuple[str, str]] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        return None

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    # -- helpers
    def _record(self, path: str, status: int, fault: str | None) -> None:
        st = self.server.state
        with st.lock:
            st.requests.append(
                Request(
                    self.command,
                    path,
                    {k.lower(): v for k, v in self.headers.items()},
                    status,
                    fault,
                )
            )

    def _pick_fault(self, path: str) -> Fault | None:
        st = self.server.state
        with st.lock:
            for pattern, fault in st.faults:
                if (pattern == path or fnmatch.fnmatchcase(path, pattern)) and fault.take():
                    return Fault(fault.kind, None, fault.status, fault.retry_after, fault.delay)
            r = st.random
            if r is not None and fnmatch.fnmatchcase(path, r.paths) and r.rng.random() < r.rate:
                kind = r.kinds[r.rng.randrange(len(r.kinds))]
                status = (500, 503, 502)[r.rng.randrange(3)]
                return Fault(kind, None, status=status, retry_after=0.05, delay=r.stall_delay)
        return None

    def _reset(self) -> None:
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        finally:
            self.close_connection = True
            self.connection.close()

    def _send_error(
        self, path: str, status: int, fault: str | None, extra: dict[str, str] | None = None
    ) -> None:
        body = f"{status}\n".encode()
        self.send_response(status)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self._record(path, status, fault)

    def _serve(self, *, head: bool) -> None:
        st = self.server.state
        path = unquote(urlsplit(self.path).path)
        if st.latency:
            time.sleep(st.latency)
        for prefix, expected in st.auth:
            if path.startswith(prefix) and self.headers.get("Authorization") != expected:
                self._send_error(path, 401, "auth", {"WWW-Authenticate": 'Basic realm="world"'})
                return
        target = (st.root / path.lstrip("/")).resolve()
        if path.endswith("/"):
            target = _directory_page(target, self.headers.get("Accept", ""))
        if not target.is_relative_to(st.root.resolve()) or not target.is_file():
            self._send_error(path, 404, None)
            return
        fault = self._pick_fault(path)
        if fault is not None and fault.kind == "reset":
            self._record(path, 0, "reset")
            self._reset()
            return
        if fault is not None and fault.kind == "status":
            self._send_error(path, fault.status, "status")
            return
        if fault is not None and fault.kind == "retry_after":
            self._send_error(path, 429, "retry_after", {"Retry-After": f"{fault.retry_after:g}"})
            return
        if fault is not None and fault.kind == "endless":
            self._endless(path)
            return
        data = target.read_bytes()
        if fault is not None and fault.kind == "wrong_bytes":
            data = bytes(b ^ 0x5A for b in data) if data else b"x"
        ctype = "text/html" if target.suffix == ".html" else "application/octet-stream"
        if target.suffix == ".json":
            ctype = PEP691_JSON if target.name == "index.json" else "application/json"
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        if st.cache_control:
            # What PyPI sends: pages for 10 minutes, files (named by version) for ever.
            page = target.name in ("index.html", "index.json")
            self.send_header("Cache-Control", "max-age=600" if page else "max-age=31536000")
        self.end_headers()
        self._record(path, 200, fault.kind if fault else None)
        if head:
            return
        try:
            if fault is not None and fault.kind in ("truncate", "stall"):
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                if fault.kind == "stall":
                    time.sleep(fault.delay)
                self.close_connection = True
                self._reset()
                return
            if fault is not None and fault.kind == "drip":
                for i in range(len(data)):
                    self.wfile.write(data[i : i + 1])
                    self.wfile.flush()
                    time.sleep(fault.delay)
                return
            for i in range(0, len(data), CHUNK):
                self.wfile.write(data[i : i + CHUNK])
                if fault is not None and fault.kind == "slow":
                    self.wfile.flush()
                    time.sleep(fault.delay)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _endless(self, path: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self._record(path, 200, "endless")
        self.close_connection = True
        zeros = bytes(CHUNK)
        try:
            while True:
                self.wfile.write(zeros)
        except OSError:
            return


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, state: _State) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state


class WorldServer(ThreadedHTTPService):
    """``with WorldServer(root) as srv: srv.url + "/channel/linux-64/x.conda"``."""

    def __init__(self, root: Path, *, latency: float = 0.0, cache_control: bool = False) -> None:
        self.root = Path(root)
        self._state = _State(self.root, latency=latency, cache_control=cache_control)

    def make_server(self) -> _Server:
        return _Server(self._state)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- knobs
    @property
    def latency(self) -> float:
        return self._state.latency

    @latency.setter
    def latency(self, value: float) -> None:
        self._state.latency = value

    def add_fault(
        self,
        path: str,
        kind: FaultKind,
        *,
        times: int | None = 1,
        status: int = 503,
        retry_after: float = 0.0,
        delay: float = 0.0,
    ) -> Fault:
        """Attach a fault to ``path`` (a URL path like ``/channel/linux-64/a.conda``, or a glob)."""
        fault = Fault(kind, times, status, retry_after, delay)
        with self._state.lock:
            self._state.faults.append((path, fault))
        return fault

    def random_faults(
        self,
        rate: float,
        *,
        seed: int = 0,
        kinds: tuple[FaultKind, ...] = RANDOM_KINDS,
        stall_delay: float = 2.0,
        paths: str = "*",
    ) -> None:
        with self._state.lock:
            self._state.random = _Random(rate, random.Random(seed), kinds, stall_delay, paths)

    def require_auth(self, prefix: str, header_value: str) -> None:
        with self._state.lock:
            self._state.auth.append((prefix, header_value))

    def clear_faults(self) -> None:
        with self._state.lock:
            self._state.faults.clear()
            self._state.random = None
            self._state.auth.clear()

    # -- observations
    @property
    def requests(self) -> list[Request]:
        with self._state.lock:
            return list(self._state.requests)

    def hits(self, path: str | None = None, *, method: str = "GET") -> int:
        reqs = [r for r in self.requests if r.method == method]
        if path is None:
            return len(reqs)
        return sum(1 for r in reqs if r.path == path or fnmatch.fnmatchcase(r.path, path))

    def counts(self) -> Counter[str]:
        return Counter(r.path for r in self.requests if r.method == "GET")

    def reset_log(self) -> None:
        with self._state.lock:
            self._state.requests.clear()

    def url_for(self, path: Path | str) -> str:
        """The URL of a file under the served root."""
        rel = (
            Path(path).resolve().relative_to(self.root.resolve())
            if Path(path).is_absolute()
            else Path(path)
        )
        return f"{self.url}/{rel.as_posix()}"
