"""An S3 server on 127.0.0.1: moto's server mode (``moto[server]``), in a thread of the test
process.

It holds buckets of conda channel files (:meth:`S3Server.upload_channel`) and records the
request lines it answered (:attr:`S3Server.requests`), so a test can tell which access key
signed them (``X-Amz-Credential=<key id>/...``) without any secret in the log. moto accepts any
signature; a client without credentials fails to sign before it sends anything.

:func:`unavailable` says why it cannot run here, for a visible skip.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Self

from testworld.service import Service

REGION = "us-east-1"
# What the harness itself signs with (moto does not check); tests use their own keys.
_HARNESS_KEY = ("AKIDHARNESS", "harness-secret")


def unavailable() -> str | None:
    try:
        import boto3  # noqa: F401
        from moto.server import ThreadedMotoServer  # noqa: F401
    except ImportError as exc:
        return f"{exc.name} is not installed (moto[server] is in the test extra)"
    return None


class _Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if '"' in message:
            with self._lock:
                self.lines.append(message.split('"')[1])  # 'GET /bucket/key?... HTTP/1.1'


class S3Server(Service):
    """``ThreadedMotoServer`` on 127.0.0.1:<free port>."""

    def __init__(self) -> None:
        self._server: Any = None
        self._recorder = _Recorder()
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        from moto.server import ThreadedMotoServer

        werkzeug = logging.getLogger("werkzeug")
        werkzeug.addHandler(self._recorder)
        werkzeug.setLevel(logging.INFO)
        werkzeug.propagate = False  # keep the request log off the console
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        _host, self.port = self._server.get_host_and_port()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        werkzeug = logging.getLogger("werkzeug")
        werkzeug.removeHandler(self._recorder)
        werkzeug.propagate = True

    def _client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=_HARNESS_KEY[0],
            aws_secret_access_key=_HARNESS_KEY[1],
        )

    def create_bucket(self, bucket: str) -> None:
        self._client().create_bucket(Bucket=bucket)

    def upload(self, bucket: str, key: str, path: Path) -> None:
        self._client().upload_file(str(path), bucket, key)

    def put_bytes(self, bucket: str, key: str, data: bytes) -> None:
        self._client().put_object(Bucket=bucket, Key=key, Body=data)

    def upload_channel(self, bucket: str, prefix: str, channel_dir: Path) -> int:
        """Every file below ``channel_dir`` as ``<prefix>/<relative path>``; returns the count."""
        count = 0
        for path in sorted(channel_dir.rglob("*")):
            if path.is_file():
                rel = path.relative_to(channel_dir).as_posix()
                self.upload(bucket, f"{prefix.strip('/')}/{rel}", path)
                count += 1
        return count

    @property
    def requests(self) -> list[str]:
        """Request lines answered so far (the harness's own uploads included)."""
        return list(self._recorder.lines)

    def reset_log(self) -> None:
        self._recorder.lines.clear()
