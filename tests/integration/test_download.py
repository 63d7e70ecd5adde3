"""fetch_all: bounded concurrency, the verified cache, local files, retries reported, clean
cancellation. Against the fault-injecting server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from testworld import server as world_server
from testworld.server import WorldServer

from pixi_pack_src.errors import (
    ChecksumMismatchError,
    DownloadError,
    UnsupportedPackageError,
    UsageError,
    WorkspaceError,
)
from pixi_pack_src.fetch import download
from pixi_pack_src.fetch.auth import AuthStore
from pixi_pack_src.fetch.cache import ContentCache
from pixi_pack_src.fetch.config import FetchConfig
from pixi_pack_src.fetch.download import Artifact, DownloadSettings, Fetched, fetch_all
from pixi_pack_src.fetch.http import RetryPolicy, make_client
from pixi_pack_src.lock.lockfile import load_lock
from pixi_pack_src.lock.model import Hashes
from pixi_pack_src.reporter import Outcome

pytestmark = pytest.mark.integration  # starts a server

LOCKS = Path(__file__).resolve().parent.parent / "data" / "locks"
N_FILES = 30


@dataclass
class Recorder:
    """A Reporter that keeps every call."""

    events: list[tuple[str, ...]] = field(default_factory=list)
    advanced: dict[str, int] = field(default_factory=dict)

    def stage_started(self, stage: str, *, items: int, total_bytes: int | None = None) -> None:
        self.events.append(("stage_started", stage, str(items), str(total_bytes)))

    def stage_finished(self, stage: str) -> None:
        self.events.append(("stage_finished", stage))

    def task_started(self, key: str, *, label: str, total_bytes: int | None = None) -> None:
        self.events.append(("task_started", key, label))

    def task_advanced(self, key: str, nbytes: int) -> None:
        self.advanced[key] = self.advanced.get(key, 0) + nbytes

    def task_reset(self, key: str) -> None:
        self.events.append(("task_reset", key))
        self.advanced[key] = 0

    def task_waiting(self, key: str, *, reason: str, retry_in: float | None = None) -> None:
        self.events.append(("task_waiting", key, reason, f"{retry_in}"))

    def task_finished(self, key: str, *, outcome: Outcome, detail: str = "") -> None:
        self.events.append(("task_finished", key, outcome, detail))

    def status(self, message: str) -> None:
        self.events.append(("status", message))

    def finished(self) -> dict[str, tuple[str, str]]:
        return {e[1]: (e[2], e[3]) for e in self.events if e[0] == "task_finished"}


class FakeSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@dataclass(frozen=True)
class Served:
    server: WorldServer
    root: Path
    files: dict[str, bytes]  # URL path -> bytes


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("srv")
    (root / "ch" / "noarch").mkdir(parents=True)
    files: dict[str, bytes] = {}
    for i in range(N_FILES):
        data = hashlib.sha256(str(i).encode()).digest() * (100 + 37 * i)
        (root / "ch" / "noarch" / f"pkg{i}-1.0-0.conda").write_bytes(data)
        files[f"/ch/noarch/pkg{i}-1.0-0.conda"] = data
    with WorldServer(root) as server:
        yield Served(server, root, files)


@pytest.fixture
def srv(served: Served) -> Iterator[WorldServer]:
    served.server.clear_faults()
    served.server.reset_log()
    served.server.latency = 0.0
    yield served.server
    served.server.clear_faults()
    served.server.latency = 0.0


def _artifacts(
    served: Served, *, n: int = N_FILES, md5_only: bool = False, no_hash: bool = False
) -> list[Artifact]:
    out = []
    for path, data in list(served.files.items())[:n]:
        if no_hash:
            hashes = Hashes()
        elif md5_only:
            hashes = Hashes(md5=hashlib.md5(data).hexdigest(), size=len(data))
        else:
            hashes = Hashes(
                sha256=hashlib.sha256(data).hexdigest(),
                md5=hashlib.md5(data).hexdigest(),
                size=len(data),
            )
        name = path.rsplit("/", 1)[1]
        out.append(
            Artifact.for_url(served.server.url + path, file_name=name, hashes=hashes, kind="conda")
        )
    return out


def _fetch(
    artifacts: Sequence[Artifact],
    tmp_path: Path,
    *,
    cache: ContentCache | None = None,
    settings: DownloadSettings | None = None,
    reporter: Recorder | None = None,
    sleep: FakeSleep | None = None,
    client: httpx.AsyncClient | None = None,
) -> dict[str, Fetched]:
    return asyncio.run(
        fetch_all(
            artifacts,
            work_dir=tmp_path / "work",
            cache=cache,
            settings=settings or DownloadSettings(policy=RetryPolicy(jitter=0.0)),
            auth=AuthStore(),
            reporter=reporter or Recorder(),
            client=client,
            sleep=sleep or FakeSleep(),
        )
    )


def test_downloads_verified_into_work_dir(srv: WorldServer, served: Served, tmp_path: Path) -> None:
    arts = _artifacts(served, n=3)
    rec = Recorder()
    got = _fetch([*arts, arts[0]], tmp_path, reporter=rec)  # duplicates are fetched once
    assert list(got) == [a.key for a in arts]
    for art in arts:
        f = got[art.key]
        data = served.files[art.key.removeprefix(srv.url)]
        assert f.path.read_bytes() == data
        assert f.path.is_relative_to(tmp_path / "work")
        assert f.path.name == art.file_name
        assert (f.sha256, f.size, f.origin, f.retries) == (
            hashlib.sha256(data).hexdigest(),
            len(data),
            "download",
            0,
        )
        assert (f.url, f.verified_against) == (art.lock_url, "lock-sha256")
        assert rec.advanced[art.key] == len(data)
    assert srv.counts() == {a.key.removeprefix(srv.url): 1 for a in arts}
    total = sum(a.hashes.size or 0 for a in arts)
    assert rec.events[0] == ("stage_started", "download", "3", str(total))
    assert rec.events[-1] == ("stage_finished", "download")
    assert rec.finished() == {a.key: ("downloaded", "") for a in arts}


def test_concurrency_is_bounded(
    srv: WorldServer, served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counted on the server: from receiving a request to starting its answer (the client
    cannot start another request for that slot before the answer starts)."""
    lock = threading.Lock()
    gauge = {"now": 0, "peak": 0}
    handler = world_server._Handler
    serve, send_response = handler._serve, handler.send_response
    open_requests: set[int] = set()

    def leave(h: world_server._Handler) -> None:
        with lock:
            if id(h) in open_requests:
                open_requests.discard(id(h))
                gauge["now"] -= 1

    def counting_serve(self: world_server._Handler, *, head: bool) -> None:
        with lock:
            open_requests.add(id(self))
            gauge["now"] += 1
            gauge["peak"] = max(gauge["peak"], gauge["now"])
        try:
            serve(self, head=head)
        finally:
            leave(self)

    def counting_send_response(
        self: world_server._Handler, code: int, message: str | None = None
    ) -> None:
        leave(self)
        send_response(self, code, message)

    monkeypatch.setattr(handler, "_serve", counting_serve)
    monkeypatch.setattr(handler, "send_response", counting_send_response)
    srv.latency = 0.05
    got = _fetch(
        _artifacts(served),
        tmp_path,
        settings=DownloadSettings(concurrency=4, policy=RetryPolicy(jitter=0.0)),
    )
    assert len(got) == N_FILES
    assert srv.hits() == N_FILES
    assert gauge["peak"] == 4


def test_retries_are_reported(srv: WorldServer, served: Served, tmp_path: Path) -> None:
    arts = _artifacts(served, n=4)
    flaky = arts[2]
    srv.add_fault(flaky.key.removeprefix(srv.url), "status", times=2, status=503)
    srv.add_fault(arts[3].key.removeprefix(srv.url), "truncate", times=1)
    rec, sleep = Recorder(), FakeSleep()
    got = _fetch(arts, tmp_path, reporter=rec, sleep=sleep)
    assert [got[a.key].retries for a in arts] == [0, 0, 2, 1]
    assert sorted(sleep.calls) == [0.5, 0.5, 1.0]
    assert rec.finished()[flaky.key] == ("downloaded", "2 retries")
    assert rec.finished()[arts[3].key] == ("downloaded", "1 retry")
    assert rec.events.count(("task_reset", flaky.key)) == 2
    assert rec.advanced[arts[3].key] == arts[3].hashes.size


def test_second_run_downloads_nothing_and_corruption_is_redownloaded(
    srv: WorldServer, served: Served, tmp_path: Path
) -> None:
    cache = ContentCache(tmp_path / "cache")
    arts = _artifacts(served, n=6)
    first = _fetch(arts, tmp_path, cache=cache)
    assert {f.origin for f in first.values()} == {"download"}
    for art in arts:
        assert first[art.key].path == cache.path_for(art.hashes.sha256 or "")
    assert not (tmp_path / "work").exists()  # downloads went straight into the cache
    assert (tmp_path / "cache" / "CACHEDIR.TAG").is_file()
    srv.reset_log()
    rec = Recorder()
    second = _fetch(arts, tmp_path, cache=ContentCache(tmp_path / "cache"), reporter=rec)
    assert srv.hits() == 0
    assert {f.origin for f in second.values()} == {"cache"}
    assert [second[a.key].md5 for a in arts] == [first[a.key].md5 for a in arts]
    assert rec.finished() == {a.key: ("cached", "") for a in arts}
    assert second[arts[0].key].url == arts[0].lock_url
    # flip one byte of one entry: detected on the next hit, re-downloaded, others cached
    victim = cache.path_for(arts[1].hashes.sha256 or "")
    data = bytearray(victim.read_bytes())
    data[7] ^= 0xFF
    victim.write_bytes(bytes(data))
    third = _fetch(arts, tmp_path, cache=cache)
    assert srv.counts() == {arts[1].key.removeprefix(srv.url): 1}
    assert third[arts[1].key].origin == "download"
    assert victim.read_bytes() == served.files[arts[1].key.removeprefix(srv.url)]
    assert sum(f.origin == "cache" for f in third.values()) == 5


def test_an_http_client_is_made_only_for_a_download(
    srv: WorldServer, served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[httpx.AsyncClient] = []

    def counting(**kwargs: object) -> httpx.AsyncClient:
        made.append(make_client(**kwargs))  # type: ignore[arg-type]
        return made[-1]

    monkeypatch.setattr(download, "make_client", counting)
    cache = ContentCache(tmp_path / "cache")
    arts = _artifacts(served, n=3)
    assert {f.origin for f in _fetch(arts, tmp_path, cache=cache).values()} == {"download"}
    assert len(made) == 1  # one client for all three downloads
    # all hits: no client at all (its TLS set-up is the cost of a warm pack that downloads nothing)
    assert {f.origin for f in _fetch(arts, tmp_path, cache=cache).values()} == {"cache"}
    assert len(made) == 1
    assert all(c.is_closed for c in made)


def test_md5_only_and_unhashed_artifacts_are_cached_too(
    srv: WorldServer, served: Served, tmp_path: Path
) -> None:
    cache = ContentCache(tmp_path / "cache")
    md5_only = _artifacts(served, n=2, md5_only=True)
    unhashed = _artifacts(served, n=4, no_hash=True)[2:]
    first = _fetch([*md5_only, *unhashed], tmp_path, cache=cache)
    for art in md5_only:
        data = served.files[art.key.removeprefix(srv.url)]
        assert first[art.key].verified_against == "lock-md5"
        assert first[art.key].sha256 == hashlib.sha256(data).hexdigest()
    for art in unhashed:
        data = served.files[art.key.removeprefix(srv.url)]
        assert first[art.key].verified_against == "none"
        assert first[art.key].sha256 == hashlib.sha256(data).hexdigest()
        assert first[art.key].md5 == hashlib.md5(data).hexdigest()
    srv.reset_log()
    second = _fetch([*md5_only, *unhashed], tmp_path, cache=cache)
    assert srv.hits() == 0
    assert {f.origin for f in second.values()} == {"cache"}
    assert [f.sha256 for f in second.values()] == [f.sha256 for f in first.values()]


@pytest.mark.parametrize("folder", ["local", "100%41 local"])  # as_uri: %2541, %20
def test_local_files_are_verified_in_place(tmp_path: Path, folder: str) -> None:
    good = tmp_path / folder / "foo-1.0-0.conda"
    good.parent.mkdir()
    good.write_bytes(b"local package")
    sha = hashlib.sha256(b"local package").hexdigest()
    art = Artifact.for_url(
        good.as_uri(),
        file_name=good.name,
        hashes=Hashes(sha256=sha, size=13),
        kind="conda",
    )
    rec = Recorder()
    got = _fetch([art], tmp_path, reporter=rec, cache=ContentCache(tmp_path / "cache"))
    f = got[art.key]
    assert (f.path, f.origin, f.sha256, f.size, f.verified_against) == (
        good,
        "local-file",
        sha,
        13,
        "lock-sha256",
    )
    assert f.md5 == hashlib.md5(b"local package").hexdigest()  # not in the lock: computed
    assert rec.finished() == {art.key: ("copied", "")}
    assert not (tmp_path / "cache").exists()
    assert not (tmp_path / "work").exists()

    bad = Artifact.for_url(
        good.as_uri(), file_name=good.name, hashes=Hashes(sha256="0" * 64), kind="conda"
    )
    with pytest.raises(ChecksumMismatchError) as info:
        _fetch([bad], tmp_path)
    assert info.value.message == (
        f"sha256 mismatch for foo-1.0-0.conda from {good}: expected {'0' * 64}, got {sha}"
    )
    assert info.value.exit_code == 3
    gone = Artifact.for_url(
        (tmp_path / "nope.whl").as_uri(), file_name="nope.whl", hashes=Hashes(), kind="wheel"
    )
    with pytest.raises(WorkspaceError, match=r"nope\.whl: the lock points to .*nope\.whl"):
        _fetch([gone], tmp_path)


class CountingTransport(httpx.AsyncBaseTransport):
    """Counts requests whose response body is still open."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.open = 0
        self.started = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.open += 1
        self.started += 1
        try:
            response = await self.inner.handle_async_request(request)
        except BaseException:
            self.open -= 1
            raise
        outer = self

        class Stream(httpx.AsyncByteStream):
            def __init__(self, inner: httpx.AsyncByteStream) -> None:
                self.inner = inner
                self.closed = False

            async def __aiter__(self) -> AsyncIterator[bytes]:
                async for chunk in self.inner:
                    yield chunk

            async def aclose(self) -> None:
                if not self.closed:
                    self.closed = True
                    outer.open -= 1
                await self.inner.aclose()

        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=Stream(response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_first_fatal_error_cancels_the_rest_cleanly(
    srv: WorldServer, served: Served, tmp_path: Path
) -> None:
    arts = _artifacts(served, n=12)
    broken = Artifact.for_url(
        srv.url + "/ch/noarch/missing-1.0-0.conda",
        file_name="missing-1.0-0.conda",
        hashes=Hashes(),
        kind="conda",
    )
    for art in arts:
        srv.add_fault(art.key.removeprefix(srv.url), "slow", delay=0.05, times=None)
    transport = CountingTransport()
    cache = ContentCache(tmp_path / "cache")
    rec = Recorder()

    async def go() -> None:
        async with httpx.AsyncClient(transport=transport) as client:
            with pytest.raises(DownloadError) as info:
                await fetch_all(
                    [*arts, broken],
                    work_dir=tmp_path / "work",
                    cache=cache,
                    settings=DownloadSettings(concurrency=13),
                    auth=AuthStore(),
                    reporter=rec,
                    client=client,
                )
            assert transport.open == 0  # nothing left in flight when fetch_all returns
            assert info.value.message == (
                f"could not download missing-1.0-0.conda from {broken.lock_url}: HTTP 404 Not Found"
            )

    asyncio.run(go())
    assert transport.started == 13
    assert list((tmp_path / "cache" / "tmp").iterdir()) == []
    assert rec.finished()[broken.key] == ("failed", "HTTP 404 Not Found")  # not "(failed)"
    assert rec.events[-1] == ("stage_finished", "download")


def test_artifacts_from_lock_entries_apply_mirrors(tmp_path: Path) -> None:
    env = load_lock(LOCKS / "v7-pypi-kinds.lock").select("default", "linux-64")
    cfg = FetchConfig(
        mirrors={
            "https://prefix.dev/conda-forge/": ("https://m1.test/cf/", "https://m2.test/cf/"),
            "https://example.com/": ("https://pypi-mirror.test/",),
        }
    )
    pip = next(c for c in env.conda if c.name == "pip")
    art = Artifact.from_conda(pip, cfg)
    assert art == Artifact(
        key="https://prefix.dev/conda-forge/linux-64/pip-1.0-h0_0.conda",
        file_name="pip-1.0-h0_0.conda",
        urls=(
            "https://m1.test/cf/linux-64/pip-1.0-h0_0.conda",
            "https://m2.test/cf/linux-64/pip-1.0-h0_0.conda",
        ),
        hashes=Hashes(),
        kind="conda",
        url="https://prefix.dev/conda-forge/linux-64/pip-1.0-h0_0.conda",
    )
    assert art.verified_against == "none"
    local = next(c for c in env.conda if c.name == "foo")
    assert Artifact.from_conda(local, cfg).urls == (local.url,)
    assert Artifact.from_conda(local, cfg).is_local
    pypi = {p.name: p for p in env.pypi}
    wheel = Artifact.from_pypi(pypi["a-b"], cfg)
    assert (wheel.kind, wheel.file_name, wheel.urls, wheel.verified_against) == (
        "wheel",
        "a+b-1.0-py3-none-any.whl",
        ("https://pypi-mirror.test/a%2Bb-1.0-py3-none-any.whl",),
        "lock-md5",
    )
    sdist = Artifact.from_pypi(pypi["bar"], cfg)
    assert (sdist.kind, sdist.urls) == ("sdist", ((LOCKS / "dist" / "bar-1.0.tar.gz").as_uri(),))
    with pytest.raises(UnsupportedPackageError, match="is a git, not a file to download"):
        Artifact.from_pypi(pypi["recovar"], cfg)


def test_keys_never_carry_credentials() -> None:
    art = Artifact.for_url(
        "https://u:pw@h.test/t/tok/ch/a.conda", file_name="a.conda", hashes=Hashes(), kind="conda"
    )
    assert art.key == "https://u:********@h.test/t/********/ch/a.conda"
    assert art.lock_url == "https://u:pw@h.test/t/tok/ch/a.conda"


def test_settings_validation() -> None:
    assert DownloadSettings(retries=2).retry_policy == RetryPolicy(retries=2)
    assert DownloadSettings(retries=2, policy=RetryPolicy(retries=9)).retry_policy.retries == 9
    with pytest.raises(UsageError, match="at least 1"):
        DownloadSettings(concurrency=0)
    with pytest.raises(UsageError, match="retries"):
        DownloadSettings(retries=-1)
    with pytest.raises(UsageError, match="timeouts"):
        DownloadSettings(timeout=0)


def test_shared_client_is_left_open(srv: WorldServer, served: Served, tmp_path: Path) -> None:
    async def go() -> bool:
        async with make_client() as client:
            await fetch_all(
                _artifacts(served, n=1),
                work_dir=tmp_path / "work",
                cache=None,
                settings=DownloadSettings(),
                auth=AuthStore(),
                reporter=Recorder(),
                client=client,
            )
            return client.is_closed

    assert asyncio.run(go()) is False
