"""The world server serves the world and its fault knobs really fault."""

from __future__ import annotations

import hashlib

import httpx
import pytest
from testworld.layout import World
from testworld.server import WorldServer

pytestmark = pytest.mark.integration


def _path(world: World, name: str) -> str:
    pkg = world.package(name)
    return f"/channel/{pkg.subdir}/{pkg.file_name}"


def test_serves_archives_byte_for_byte(world: World, channel_server: WorldServer) -> None:
    pkg = world.package("libgreet")
    r = httpx.get(channel_server.url + _path(world, "libgreet"))
    assert r.status_code == 200
    assert hashlib.sha256(r.content).hexdigest() == pkg.sha256
    assert int(r.headers["content-length"]) == pkg.size
    assert channel_server.hits(_path(world, "libgreet")) == 1
    assert httpx.get(channel_server.url + "/channel/linux-64/nope.conda").status_code == 404


@pytest.mark.parametrize("status", [500, 503])
def test_status_fault_fires_n_times_then_serves(
    world: World, channel_server: WorldServer, status: int
) -> None:
    path = _path(world, "chain-a")
    channel_server.add_fault(path, "status", times=2, status=status)
    codes = [httpx.get(channel_server.url + path).status_code for _ in range(3)]
    assert codes == [status, status, 200]


def test_retry_after_fault_sends_429_and_header(world: World, channel_server: WorldServer) -> None:
    path = _path(world, "chain-b")
    channel_server.add_fault(path, "retry_after", retry_after=3)
    r = httpx.get(channel_server.url + path)
    assert (r.status_code, r.headers["retry-after"]) == (429, "3")
    assert httpx.get(channel_server.url + path).status_code == 200


def test_reset_fault_breaks_the_connection(world: World, channel_server: WorldServer) -> None:
    path = _path(world, "chain-c")
    channel_server.add_fault(path, "reset")
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        httpx.get(channel_server.url + path)
    assert httpx.get(channel_server.url + path).status_code == 200


def test_truncate_fault_sends_less_than_content_length(
    world: World, channel_server: WorldServer
) -> None:
    pkg = world.package("bigdata")
    path = _path(world, "bigdata")
    channel_server.add_fault(path, "truncate")
    received = bytearray()
    announced: list[int] = []

    def read_all() -> None:
        with httpx.stream("GET", channel_server.url + path) as r:
            announced.append(int(r.headers["content-length"]))
            for chunk in r.iter_raw():
                received.extend(chunk)

    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        read_all()
    assert announced == [pkg.size]
    assert 0 < len(received) < pkg.size


def test_wrong_bytes_fault_keeps_length_changes_content(
    world: World, channel_server: WorldServer
) -> None:
    pkg = world.package("chain-a")
    path = _path(world, "chain-a")
    channel_server.add_fault(path, "wrong_bytes")
    r = httpx.get(channel_server.url + path)
    assert r.status_code == 200
    assert len(r.content) == pkg.size
    assert hashlib.sha256(r.content).hexdigest() != pkg.sha256


def test_slow_fault_still_delivers_everything(world: World, channel_server: WorldServer) -> None:
    pkg = world.package("libgreet")
    path = _path(world, "libgreet")
    channel_server.add_fault(path, "slow", delay=0.001)
    r = httpx.get(channel_server.url + path)
    assert hashlib.sha256(r.content).hexdigest() == pkg.sha256
    assert [q.fault for q in channel_server.requests] == ["slow"]


def test_faults_do_not_leak_between_tests(channel_server: WorldServer) -> None:
    assert channel_server.requests == []
    assert channel_server.latency == 0.0


def test_rattler_solves_against_the_served_channel(
    world: World, channel_server: WorldServer
) -> None:
    from testworld.locks import solve

    records = solve(world.channel_url(channel_server.url), ["chain-a"], "osx-arm64")
    expected = [
        world.package("chain-a", "osx-arm64"),
        world.package("chain-b", "osx-arm64"),
        world.package("chain-c", "osx-arm64", version="1.5.0"),
    ]
    base = f"{channel_server.url}/channel/osx-arm64/"
    assert [r.url for r in records] == [base + p.file_name for p in expected]
    assert channel_server.hits("/channel/osx-arm64/repodata.json") == 1
