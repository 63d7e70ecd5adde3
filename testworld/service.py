"""What every server of the world shares: ``start()``/``stop()``, and ``with`` doing both.

:class:`Service` is the lifecycle of :class:`~testworld.server.WorldServer`,
:class:`~testworld.chaos.RedirectServer`, :class:`~testworld.oci_registry.OciRegistry` and
:class:`~testworld.s3_server.S3Server`; :class:`ThreadedHTTPService` is the
``ThreadingHTTPServer`` answered from a daemon thread that the first two run.
"""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Self


class Service:
    """A server of the world: ``with srv:`` starts it and stops it again."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ThreadedHTTPService(Service):
    """A ``ThreadingHTTPServer`` (made by :meth:`make_server`, bound to a free port) answered
    from a daemon thread."""

    _server: ThreadingHTTPServer | None = None

    def make_server(self) -> ThreadingHTTPServer:
        raise NotImplementedError

    def start(self) -> Self:
        self._server = self.make_server()
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return int(self._server.server_address[1])
