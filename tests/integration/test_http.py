"""The one HTTP client and retry policy, against the fault-injecting server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest
from testworld.server import FaultKind, WorldServer

from pixi_pack_src import __version__
from pixi_pack_src.errors import ChecksumMismatchError, DownloadError, PixiPackSrcError
from pixi_pack_src.fetch.auth import AuthStore, Credential
from pixi_pack_src.fetch.http import (
    DownloadResult,
    RetryPolicy,
    download_file,
    hash_mismatch,
    make_client,
    parse_retry_after,
)
from pixi_pack_src.lock.model import Hashes
from pixi_pack_src.redact import redact_url

pytestmark = pytest.mark.integration  # starts a server

PATH = "/files/a.bin"
SIZE = 300 * 1024 + 17  # several 64 KiB server chunks


class FakeSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WorldServer, bytes, Path]]:
    """One server per module (stopping one costs 0.5 s); state is cleared per test."""
    root = tmp_path_factory.mktemp("srv")
    data = os.urandom(SIZE)
    (root / "files").mkdir()
    (root / "files" / "a.bin").write_bytes(data)
    with WorldServer(root) as server:
        yield server, data, root


@pytest.fixture
def srv(served: tuple[WorldServer, bytes, Path]) -> Iterator[WorldServer]:
    server = served[0]
    server.clear_faults()
    server.reset_log()
    yield server
    server.clear_faults()


@pytest.fixture
def payload(served: tuple[WorldServer, bytes, Path]) -> bytes:
    return served[1]


@pytest.fixture
def srv_root(served: tuple[WorldServer, bytes, Path]) -> Path:
    return served[2]


def _settled(srv: WorldServer, n: int) -> WorldServer:
    """Wait until the server has logged ``n`` requests (it logs after answering)."""
    for _ in range(500):
        if len(srv.requests) >= n:
            break
        time.sleep(0.01)
    return srv


def _hashes(data: bytes, *, sha256: bool = True, md5: bool = True) -> Hashes:
    return Hashes(
        sha256=hashlib.sha256(data).hexdigest() if sha256 else None,
        md5=hashlib.md5(data).hexdigest() if md5 else None,
        size=len(data),
    )


def _get(
    urls: Sequence[str],
    dest: Path,
    expected: Hashes,
    *,
    policy: RetryPolicy | None = None,
    auth: AuthStore | None = None,
    sleep: FakeSleep | None = None,
    timeout: float = 10.0,
) -> DownloadResult:
    async def go() -> DownloadResult:
        async with make_client(timeout=timeout, connect_timeout=5.0) as client:
            return await download_file(
                client,
                urls,
                dest,
                expected=expected,
                policy=policy or RetryPolicy(jitter=0.0),
                auth=auth or AuthStore(),
                sleep=sleep or FakeSleep(),
            )

    return asyncio.run(go())


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_download_hashes_while_streaming(srv: WorldServer, payload: bytes, tmp_path: Path) -> None:
    dest = tmp_path / "out" / "a.bin"
    seen: list[int] = []

    async def go() -> DownloadResult:
        async with make_client() as client:
            return await download_file(
                client,
                [srv.url + PATH],
                dest,
                expected=_hashes(payload, md5=False),
                policy=RetryPolicy(),
                auth=AuthStore(),
                on_bytes=seen.append,
            )

    result = asyncio.run(go())
    assert result == DownloadResult(
        dest,
        hashlib.sha256(payload).hexdigest(),
        hashlib.md5(payload).hexdigest(),
        SIZE,
        srv.url + PATH,
        0,
    )
    assert dest.read_bytes() == payload
    assert sum(seen) == SIZE
    assert sorted(p.name for p in dest.parent.iterdir()) == ["a.bin"]
    (request,) = _settled(srv, 1).requests
    assert request.headers["user-agent"] == f"pixi-pack-src/{__version__}"
    assert request.headers["accept-encoding"] == "identity"
    assert "authorization" not in request.headers


def test_md5_is_the_locks_when_sha256_proves_the_bytes(
    srv: WorldServer, payload: bytes, tmp_path: Path
) -> None:
    result = _get([srv.url + PATH], tmp_path / "a.bin", _hashes(payload))
    assert result.md5 == hashlib.md5(payload).hexdigest()
    assert result.md5_computed is False


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
def test_transient_status_is_retried_with_backoff(
    srv: WorldServer, payload: bytes, tmp_path: Path, status: int
) -> None:
    srv.add_fault(PATH, "status", times=2, status=status)
    sleep = FakeSleep()
    result = _get([srv.url + PATH], tmp_path / "a.bin", _hashes(payload), sleep=sleep)
    assert result.retries == 2
    assert sleep.calls == [0.5, 1.0]
    assert _settled(srv, 3).hits(PATH) == 3
    assert [r.status for r in srv.requests] == [status, status, 200]
    assert (tmp_path / "a.bin").read_bytes() == payload


def test_retry_after_is_honoured(srv: WorldServer, payload: bytes, tmp_path: Path) -> None:
    srv.add_fault(PATH, "retry_after", retry_after=7)
    sleep = FakeSleep()
    result = _get([srv.url + PATH], tmp_path / "a.bin", _hashes(payload), sleep=sleep)
    assert result.retries == 1
    assert sleep.calls == [7.0]


def test_retry_after_is_capped(srv: WorldServer, payload: bytes, tmp_path: Path) -> None:
    srv.add_fault(PATH, "retry_after", retry_after=3600)
    sleep = FakeSleep()
    policy = RetryPolicy(jitter=0.0, retry_after_max=20.0)
    _get([srv.url + PATH], tmp_path / "a.bin", _hashes(payload), sleep=sleep, policy=policy)
    assert sleep.calls == [20.0]


@pytest.mark.parametrize(("kind", "times"), [("reset", 2), ("truncate", 1)])
def test_broken_connections_are_retried(
    srv: WorldServer, payload: bytes, tmp_path: Path, kind: FaultKind, times: int
) -> None:
    srv.add_fault(PATH, kind, times=times)
    sleep = FakeSleep()
    result = _get([srv.url + PATH], tmp_path / "a.bin", _hashes(payload), sleep=sleep)
    assert result.retries == times
    assert sleep.calls == [0.5, 1.0][:times]
    assert (tmp_path / "a.bin").read_bytes() == payload
    assert _settled(srv, times + 1).hits(PATH) == times + 1


def test_stall_past_the_read_timeout_is_retried(
    srv: WorldServer, payload: bytes, tmp_path: Path
) -> None:
    srv.add_fault(PATH, "stall", delay=3.0)
    sleep = FakeSleep()
    result = _get([srv.url + PATH], tmp_path / "a.bin", _hashes(payload), sleep=sleep, timeout=0.3)
    assert result.retries == 1
    assert sleep.calls == [0.5]
    assert (tmp_path / "a.bin").read_bytes() == payload


def test_404_is_not_retried(srv: WorldServer, tmp_path: Path) -> None:
    sleep = FakeSleep()
    with pytest.raises(DownloadError) as info:
        _get([srv.url + "/files/gone.bin"], tmp_path / "gone.bin", Hashes(), sleep=sleep)
    assert info.value.exit_code == 3
    assert info.value.message == (
        f"could not download gone.bin from {srv.url}/files/gone.bin: HTTP 404 Not Found"
    )
    assert info.value.hint is not None
    assert "pixi lock" in info.value.hint
    assert _settled(srv, 1).hits("/files/gone.bin") == 1
    assert sleep.calls == []
    assert list(tmp_path.iterdir()) == []


def test_gives_up_after_the_retries(srv: WorldServer, payload: bytes, tmp_path: Path) -> None:
    srv.add_fault(PATH, "status", times=None, status=503)
    sleep = FakeSleep()
    with pytest.raises(DownloadError) as info:
        _get(
            [srv.url + PATH],
            tmp_path / "a.bin",
            _hashes(payload),
            sleep=sleep,
            policy=RetryPolicy(retries=2, jitter=0.0),
        )
    assert info.value.message == (
        f"could not download a.bin from {srv.url}{PATH}: HTTP 503 Service Unavailable "
        "(after 2 retries)"
    )
    assert sleep.calls == [0.5, 1.0]
    assert _settled(srv, 3).hits(PATH) == 3
    assert not (tmp_path / "a.bin").exists()


def test_wrong_bytes_retried_once_then_mismatch(
    srv: WorldServer, payload: bytes, tmp_path: Path
) -> None:
    srv.add_fault(PATH, "wrong_bytes", times=None)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ChecksumMismatchError) as info:
        _get([srv.url + PATH], out / "a.bin", _hashes(payload))
    want = hashlib.sha256(payload).hexdigest()
    got = hashlib.sha256(bytes(b ^ 0x5A for b in payload)).hexdigest()
    err = info.value
    assert (err.algorithm, err.expected, err.actual) == ("sha256", want, got)
    assert (
        err.message == f"sha256 mismatch for a.bin from {srv.url}{PATH}: expected {want}, got {got}"
    )
    assert err.exit_code == 3
    assert _settled(srv, 2).hits(PATH) == 2
    assert list(out.iterdir()) == []


def test_wrong_bytes_once_recovers(srv: WorldServer, payload: bytes, tmp_path: Path) -> None:
    srv.add_fault(PATH, "wrong_bytes", times=1)
    sleep = FakeSleep()
    result = _get([srv.url + PATH], tmp_path / "a.bin", _hashes(payload), sleep=sleep)
    assert result.retries == 1
    assert sleep.calls == []
    assert (tmp_path / "a.bin").read_bytes() == payload


def test_size_and_md5_checks(srv: WorldServer, payload: bytes, tmp_path: Path) -> None:
    md5 = hashlib.md5(payload).hexdigest()
    with pytest.raises(ChecksumMismatchError) as info:
        _get([srv.url + PATH], tmp_path / "a.bin", Hashes(size=SIZE + 1))
    assert (info.value.algorithm, info.value.expected, info.value.actual) == (
        "size",
        str(SIZE + 1),
        str(SIZE),
    )
    with pytest.raises(ChecksumMismatchError) as info:
        _get([srv.url + PATH], tmp_path / "a.bin", Hashes(md5="0" * 32))
    assert (info.value.algorithm, info.value.actual) == ("md5", md5)
    result = _get([srv.url + PATH], tmp_path / "a.bin", Hashes(md5=md5.upper()))
    assert (result.md5, result.md5_computed) == (md5, True)


def test_dead_mirror_falls_back_to_the_next(
    srv: WorldServer, payload: bytes, tmp_path: Path
) -> None:
    dead = f"http://127.0.0.1:{_closed_port()}{PATH}"
    sleep = FakeSleep()
    result = _get([dead, srv.url + PATH], tmp_path / "a.bin", _hashes(payload), sleep=sleep)
    assert result.url_used == srv.url + PATH
    assert result.retries == 1
    assert sleep.calls == []


def test_missing_on_mirror_tries_the_next_and_reports_all(
    srv: WorldServer, payload: bytes, tmp_path: Path
) -> None:
    first = srv.url + "/mirror-a" + PATH
    result = _get([first, srv.url + PATH], tmp_path / "a.bin", _hashes(payload))
    assert (result.url_used, result.retries) == (srv.url + PATH, 1)
    with pytest.raises(DownloadError) as info:
        _get([first, srv.url + "/mirror-b" + PATH], tmp_path / "b.bin", _hashes(payload))
    assert info.value.message == (
        f"could not download b.bin from {srv.url}/mirror-b{PATH}: HTTP 404 Not Found "
        f"(after 1 retry); also tried {first} (HTTP 404 Not Found)"
    )


def test_local_file_mirror(payload: bytes, srv_root: Path, tmp_path: Path) -> None:
    url = (srv_root / "files" / "a.bin").as_uri()
    result = _get([url], tmp_path / "a.bin", _hashes(payload))
    assert (result.url_used, result.size) == (url, SIZE)
    with pytest.raises(DownloadError, match="no such file"):
        _get([url + ".gone"], tmp_path / "b.bin", Hashes())


def test_auth_header_only_to_its_host(
    srv: WorldServer, payload: bytes, srv_root: Path, tmp_path: Path
) -> None:
    srv.require_auth("/files/", "Bearer tok")
    store = AuthStore({f"127.0.0.1:{srv.port}": Credential("bearer", token="tok")})
    _get([srv.url + PATH], tmp_path / "a.bin", _hashes(payload), auth=store)
    (request,) = _settled(srv, 1).requests
    assert (request.headers["authorization"], request.status) == ("Bearer tok", 200)
    with WorldServer(srv_root) as other:
        _get([other.url + PATH], tmp_path / "b.bin", _hashes(payload), auth=store)
        (request,) = _settled(other, 1).requests
        assert "authorization" not in request.headers


def test_auth_sent_to_each_mirror_by_its_own_host(
    srv: WorldServer, payload: bytes, srv_root: Path, tmp_path: Path
) -> None:
    with WorldServer(srv_root) as other:
        store = AuthStore({f"127.0.0.1:{other.port}": Credential("bearer", token="other-tok")})
        _get(
            [srv.url + "/nothing" + PATH, other.url + PATH],
            tmp_path / "a.bin",
            _hashes(payload),
            auth=store,
        )
        assert "authorization" not in _settled(srv, 1).requests[0].headers
        assert _settled(other, 1).requests[0].headers["authorization"] == "Bearer other-tok"


def test_401_is_not_retried_and_hints_at_auth(srv: WorldServer, tmp_path: Path) -> None:
    srv.require_auth("/files/", "Bearer tok")
    sleep = FakeSleep()
    with pytest.raises(DownloadError) as info:
        _get([srv.url + PATH], tmp_path / "a.bin", Hashes(), sleep=sleep)
    assert "HTTP 401" in info.value.message
    assert info.value.hint is not None
    assert "--auth-file" in info.value.hint
    assert _settled(srv, 1).hits(PATH) == 1


def test_redirects_carry_credentials_of_each_hop_only(tmp_path: Path) -> None:
    seen: list[tuple[str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers.get("authorization")))
        if request.url.host == "a.test":
            return httpx.Response(302, headers={"location": "https://b.test/real/x.bin"})
        if request.url.host == "b.test" and "/real/" in request.url.path:
            return httpx.Response(301, headers={"location": "/t2/x.bin"})
        return httpx.Response(200, stream=httpx.ByteStream(b"hello"))

    async def go(store: AuthStore) -> DownloadResult:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await download_file(
                client,
                ["https://a.test/x.bin"],
                tmp_path / "x.bin",
                expected=Hashes(sha256=hashlib.sha256(b"hello").hexdigest()),
                policy=RetryPolicy(),
                auth=store,
            )

    asyncio.run(go(AuthStore({"a.test": Credential("bearer", token="A")})))
    assert seen == [
        ("https://a.test/x.bin", "Bearer A"),
        ("https://b.test/real/x.bin", None),
        ("https://b.test/t2/x.bin", None),
    ]
    seen.clear()
    result = asyncio.run(go(AuthStore({"b.test": Credential("conda-token", token="CT")})))
    assert seen == [
        ("https://a.test/x.bin", None),
        ("https://b.test/t/CT/real/x.bin", None),
        ("https://b.test/t/CT/t2/x.bin", None),
    ]
    assert result.url_used == "https://a.test/x.bin"


def test_cancellation_leaves_no_partial_file(
    srv: WorldServer, payload: bytes, tmp_path: Path
) -> None:
    srv.add_fault(PATH, "slow", delay=0.2)
    out = tmp_path / "out"
    started = asyncio.Event

    async def go() -> None:
        got_bytes = started()
        async with make_client() as client:
            task = asyncio.create_task(
                download_file(
                    client,
                    [srv.url + PATH],
                    out / "a.bin",
                    expected=_hashes(payload),
                    policy=RetryPolicy(),
                    auth=AuthStore(),
                    on_bytes=lambda _n: got_bytes.set(),
                )
            )
            await got_bytes.wait()
            assert [p.suffix for p in out.iterdir()] == [".part"]
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(go())
    assert list(out.iterdir()) == []


def test_backoff_policy() -> None:
    policy = RetryPolicy(backoff_base=0.5, backoff_max=30.0, jitter=0.25)
    assert [policy.backoff(n, rand=0.5) for n in range(8)] == [
        0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0
    ]  # fmt: skip
    assert policy.backoff(0, rand=0.0) == 0.375
    assert policy.backoff(3, rand=0.999999) == pytest.approx(5.0, abs=1e-4)
    assert policy.backoff(1000, rand=0.5) == 30.0
    for _ in range(50):
        assert 0.375 <= policy.backoff(0) <= 0.625
    assert [s for s in range(600) if RetryPolicy.retryable_status(s)] == [
        408,
        429,
        *range(500, 600),
    ]
    with pytest.raises(ValueError, match="retries"):
        RetryPolicy(retries=-1)


def test_parse_retry_after() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 0.5 ") == 0.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("nan") is None
    when = "Wed, 21 Oct 2015 07:28:00 GMT"
    assert parse_retry_after(when, now=1445412480.0 - 90) == 90.0


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:hunter2@h.test/a.conda", "https://user:********@h.test/a.conda"),
        ("https://tok3n@h.test/a", "https://********@h.test/a"),
        ("https://h.test/t/ct-123/chan/a.conda", "https://h.test/t/********/chan/a.conda"),
        (
            "https://h.test/a.whl?X-Amz-Signature=abc&x=1&access_token=zz",
            "https://h.test/a.whl?X-Amz-Signature=********&x=1&access_token=********",
        ),
        ("https://h.test/a.conda", "https://h.test/a.conda"),
        ("file:///srv/a.conda", "file:///srv/a.conda"),
        ("http://u:p@[::1", "http://********@[::1"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_credentials_never_in_errors(srv: WorldServer, tmp_path: Path) -> None:
    url = f"http://alice:hunter2@127.0.0.1:{srv.port}/files/gone.bin"
    with pytest.raises(DownloadError) as info:
        _get([url], tmp_path / "gone.bin", Hashes())
    assert "hunter2" not in str(info.value)
    assert f"alice:********@127.0.0.1:{srv.port}" in str(info.value)


def test_hash_mismatch_order() -> None:
    sha, md5 = "a" * 64, "b" * 32
    assert hash_mismatch(Hashes(sha256=sha, md5=md5, size=3), sha256=sha, md5=None, size=3) is None
    assert hash_mismatch(Hashes(size=4), sha256=sha, md5=None, size=3) == ("size", "4", "3")
    assert hash_mismatch(Hashes(sha256="c" * 64, md5=md5), sha256=sha, md5=md5, size=1) == (
        "sha256",
        "c" * 64,
        sha,
    )
    assert hash_mismatch(Hashes(), sha256=sha, md5=None, size=0) is None


def test_proxy_from_the_environment(
    srv: WorldServer, payload: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP_PROXY is honoured (trust_env): the world server plays the proxy, so the request
    for a fake host never leaves 127.0.0.1."""
    monkeypatch.setenv("HTTP_PROXY", srv.url)
    monkeypatch.setenv("NO_PROXY", "localhost")
    url = "http://pkgs.example.test/files/a.bin"
    result = _get([url], tmp_path / "a.bin", _hashes(payload))
    assert (result.url_used, result.size) == (url, SIZE)
    # every request (one, or more if a slow machine made it retry) went through the proxy
    requests = _settled(srv, 1).requests
    assert requests
    assert {(r.path, r.headers["host"]) for r in requests} == {(PATH, "pkgs.example.test")}


def test_unsupported_scheme_is_not_retried(tmp_path: Path) -> None:
    sleep = FakeSleep()
    with pytest.raises(DownloadError, match=r"from s3://bucket/a\.conda: unsupported URL") as info:
        _get(["s3://bucket/a.conda"], tmp_path / "a.conda", Hashes(), sleep=sleep)
    assert sleep.calls == []
    assert "after" not in info.value.message


def test_unwritable_destination_is_not_a_network_error(srv: WorldServer, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(PixiPackSrcError) as info:
        _get([srv.url + PATH], tmp_path / "file" / "a.bin", Hashes())
    assert not isinstance(info.value, DownloadError)
    assert info.value.exit_code == 1
    assert info.value.message.startswith(
        f"cannot write to {tmp_path / 'file'} while downloading a.bin"
    )


# -- issue 14: a host that cannot be reached is named, retried once, and the hint is config


def test_connection_refused_is_named_and_retried_once(tmp_path: Path) -> None:
    port = _closed_port()
    sleep = FakeSleep()
    with pytest.raises(DownloadError) as info:
        _get([f"http://127.0.0.1:{port}{PATH}"], tmp_path / "a.bin", Hashes(), sleep=sleep)
    assert info.value.message == (
        f"could not download a.bin from http://127.0.0.1:{port}{PATH}: connection refused by "
        f"127.0.0.1:{port} (after 1 retry)"
    )
    assert info.value.reason == f"connection refused by 127.0.0.1:{port}"
    assert sleep.calls == [0.5]  # one retry (not five), after the first backoff
    assert info.value.hint is not None
    assert "waiting longer will not help" in info.value.hint
    assert "[mirrors]" in info.value.hint
    assert "--retries" not in info.value.hint
    assert info.value.exit_code == 3


def test_proxy_refusing_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = _closed_port()
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with pytest.raises(DownloadError) as info:
        _get(["http://pkgs.example.test/a.conda"], tmp_path / "a.conda", Hashes())
    assert info.value.reason == f"connection refused by the proxy http://127.0.0.1:{port}"


def test_unresolvable_host_is_named_dns_and_retried_once(tmp_path: Path) -> None:
    """What httpx raises for a name that does not resolve (a gaierror under a ConnectError)."""
    error = httpx.ConnectError("[Errno -2] Name or service not known")
    error.__cause__ = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    calls: list[str] = []
    waits: list[tuple[str, float]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        raise error

    async def go() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            await download_file(
                client,
                ["https://conda.mirror.invalid/conda-forge/linux-64/a.conda"],
                tmp_path / "a.conda",
                expected=Hashes(),
                policy=RetryPolicy(jitter=0.0),
                auth=AuthStore(),
                sleep=FakeSleep(),
                on_wait=lambda reason, delay: waits.append((reason, delay)),
            )

    with pytest.raises(DownloadError) as info:
        asyncio.run(go())
    reason = "cannot resolve host conda.mirror.invalid (DNS: Name or service not known)"
    assert info.value.reason == reason
    assert len(calls) == 2  # the first attempt and one retry
    assert waits == [(reason, 0.5)]
    assert info.value.hint is not None
    assert "proxy settings (HTTPS_PROXY, NO_PROXY)" in info.value.hint


def test_retry_waits_are_announced(srv: WorldServer, payload: bytes, tmp_path: Path) -> None:
    """``on_wait`` hears every pause before a retry, with its reason (the progress display)."""
    srv.add_fault(PATH, "status", times=2, status=503)
    waits: list[tuple[str, float]] = []

    async def go() -> DownloadResult:
        async with make_client(timeout=10.0, connect_timeout=5.0) as client:
            return await download_file(
                client,
                [srv.url + PATH],
                tmp_path / "a.bin",
                expected=_hashes(payload),
                policy=RetryPolicy(jitter=0.0),
                auth=AuthStore(),
                sleep=FakeSleep(),
                on_wait=lambda reason, delay: waits.append((reason, delay)),
            )

    assert asyncio.run(go()).retries == 2
    assert waits == [("HTTP 503 Service Unavailable", 0.5), ("HTTP 503 Service Unavailable", 1.0)]


def test_connect_timeout_is_named_with_its_option(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out", request=request)

    async def go() -> None:
        async with httpx.AsyncClient(
            transport=httpx.MockTransport(handler), timeout=httpx.Timeout(60.0, connect=2.5)
        ) as client:
            await download_file(
                client,
                ["https://slow.example.test/a.conda"],
                tmp_path / "a.conda",
                expected=Hashes(),
                policy=RetryPolicy(retries=2, jitter=0.0),
                auth=AuthStore(),
                sleep=FakeSleep(),
            )

    with pytest.raises(DownloadError) as info:
        asyncio.run(go())
    assert info.value.reason == "no connection within 2.5 s (--connect-timeout)"
    assert info.value.message.endswith("(after 2 retries)")  # a timeout keeps its retries
    assert info.value.hint is not None
    assert "--connect-timeout SECONDS" in info.value.hint


def test_make_client_connect_timeout() -> None:
    client = make_client(timeout=7.0, connect_timeout=1.5)
    assert (client.timeout.read, client.timeout.connect, client.timeout.pool) == (7.0, 1.5, None)
    asyncio.run(client.aclose())
