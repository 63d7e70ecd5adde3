"""Credentials across redirects (issue 18 item 7): never after a downgrade to plain http,
never to another port of the same host without an entry for exactly that ``host:port``."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import httpx
import pytest

from pixi_pack_src.errors import DownloadError
from pixi_pack_src.fetch.auth import AuthStore, Credential
from pixi_pack_src.fetch.http import RetryPolicy, download_file
from pixi_pack_src.lock.model import Hashes

BODY = b"package bytes"


def _fetch(first: str, location: str, store: AuthStore, tmp_path: Path) -> dict[str, str | None]:
    seen: dict[str, str | None] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        seen[url] = request.headers.get("authorization")
        if url == first:
            return httpx.Response(302, headers={"Location": location})
        return httpx.Response(200, stream=httpx.ByteStream(BODY))

    async def go() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            await download_file(
                client,
                [first],
                tmp_path / "a.conda",
                expected=Hashes(sha256=hashlib.sha256(BODY).hexdigest(), size=len(BODY)),
                policy=RetryPolicy(retries=0),
                auth=store,
            )

    asyncio.run(go())
    return seen


@pytest.mark.parametrize(
    ("first", "location", "second_gets"),
    [
        ("https://h.test/a.conda", "http://h.test/b.conda", None),  # downgrade
        ("https://h.test/a.conda", "http://h.test:8080/b.conda", None),  # downgrade + port
        ("https://h.test/a.conda", "https://h.test:8443/b.conda", None),  # another port
        ("https://h.test/a.conda", "https://h.test/b.conda", "Bearer T"),  # same origin
        ("http://h.test/a.conda", "https://h.test/b.conda", "Bearer T"),  # upgrade
        ("https://h.test/a.conda", "https://cdn.test/b.conda", None),  # another host
    ],
)
def test_redirect_hops(first: str, location: str, second_gets: str | None, tmp_path: Path) -> None:
    store = AuthStore({"h.test": Credential("bearer", token="T")})
    seen = _fetch(first, location, store, tmp_path)
    assert seen[first] == "Bearer T"
    assert seen[location] == second_gets
    assert (tmp_path / "a.conda").read_bytes() == BODY


def test_an_exact_host_port_entry_applies_on_its_port(tmp_path: Path) -> None:
    store = AuthStore(
        {"h.test": Credential("bearer", token="T"), "h.test:8443": Credential("bearer", token="P")}
    )
    seen = _fetch("https://h.test/a.conda", "https://h.test:8443/b.conda", store, tmp_path)
    assert seen["https://h.test:8443/b.conda"] == "Bearer P"


def test_no_conda_token_after_a_downgrade(tmp_path: Path) -> None:
    store = AuthStore({"h.test": Credential("conda-token", token="CT")})
    seen = _fetch("https://h.test/t/CT/a.conda", "http://h.test/b.conda", store, tmp_path)
    assert list(seen) == ["https://h.test/t/CT/a.conda", "http://h.test/b.conda"]


def test_the_locked_size_bounds_the_body(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=httpx.ByteStream(b"x" * 100))

    async def go() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            await download_file(
                client,
                ["https://h.test/a.conda"],
                tmp_path / "a.conda",
                expected=Hashes(sha256="0" * 64, size=10),
                policy=RetryPolicy(retries=0),
                auth=AuthStore(),
            )

    with pytest.raises(DownloadError, match="larger than the 10 bytes the lock records"):
        asyncio.run(go())
    assert list(tmp_path.iterdir()) == []
