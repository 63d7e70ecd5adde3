"""Build requirements from a PyPI simple index: find, resolve and download their wheels.

Isolated builds need their ``[build-system] requires`` (and what the backend's
``get_requires_for_build_wheel`` adds) installed into a fresh venv. They come from the
environment's PyPI index as locked (the entry's ``index``, else the environment's first
index), or from ``--pypi-index URL``, through the one HTTP client and retry policy
(:func:`pixi_pack_src.fetch.http.download_file`, which also handles ``file://`` indexes).

- Pages are PEP 503 HTML (``<a href="…#sha256=…" data-requires-python=… data-yanked>``).
- **Wheels only**: a build requirement without a compatible wheel is an error (building build
  tools from source is out of scope). Compatible means a tag the *build* interpreter accepts
  on this machine, its ``Requires-Python``, not yanked (unless pinned with ``==``), and no
  pre-release unless a specifier asks for one or nothing else matches.
- Resolution is greedy (highest version first) with restarts: when a later requirement
  excludes a version already chosen, the requirement is remembered and resolution starts
  again. Build-requirement graphs are small, so this settles in a few rounds; a real conflict
  is reported with every requirement on the name.
- Downloaded wheels are verified against the index's ``sha256`` and kept, by that hash, in
  ``<cache>/build-requirements-v1/``: a second build downloads nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urldefrag, urljoin

import httpx
from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag
from packaging.utils import (
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from pixi_pack_src.aio import run_sync
from pixi_pack_src.builders.wheel.env import InterpreterInfo
from pixi_pack_src.errors import BuildError, DownloadError
from pixi_pack_src.fetch.auth import AuthStore
from pixi_pack_src.fetch.http import RetryPolicy, download_file
from pixi_pack_src.hashing import file_sha256
from pixi_pack_src.lock.model import Hashes
from pixi_pack_src.redact import redact_url
from pixi_pack_src.wheels import metadata_headers

log = logging.getLogger(__name__)

CACHE_DIRNAME = "build-requirements-v1"
MAX_ROUNDS = 30
_HASH_FRAGMENT = re.compile(r"sha256=([0-9a-fA-F]{64})")


@dataclass(frozen=True)
class Link:
    """One file on a project's simple page."""

    url: str  # without the fragment
    file_name: str
    sha256: str | None
    requires_python: str | None
    yanked: bool


class _PageParser(HTMLParser):
    def __init__(self, base_url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base_url = base_url
        self.links: list[Link] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "base":
            href = dict(attrs).get("href")
            if href:
                self.base_url = urljoin(self.base_url, href)
            return
        if tag != "a":
            return
        a = dict(attrs)
        href = a.get("href")
        if not href:
            return
        full, fragment = urldefrag(urljoin(self.base_url, href))
        m = _HASH_FRAGMENT.search(fragment)
        name = full.rstrip("/").rsplit("/", 1)[-1]
        self.links.append(
            Link(
                url=full,
                file_name=unquote(name),
                sha256=m.group(1).lower() if m else None,
                requires_python=a.get("data-requires-python") or None,
                yanked="data-yanked" in a,
            )
        )


def parse_simple_page(text: str, page_url: str) -> list[Link]:
    """The file links of a PEP 503 project page."""
    parser = _PageParser(page_url)
    parser.feed(text)
    parser.close()
    return parser.links


@dataclass(frozen=True)
class ResolvedWheel:
    name: str
    version: str
    path: Path
    sha256: str
    url: str

    @property
    def pin(self) -> str:
        return f"{self.name}=={self.version}"


class PackageIndex(Protocol):
    """What :func:`resolve` needs from an index (:class:`IndexClient`, or a fake in tests)."""

    index_url: str

    def links(self, name: str) -> list[Link]: ...

    def wheel(self, link: Link) -> Path: ...


class IndexClient:
    """Pages and wheels of one simple index, fetched on ``loop`` through the retry client.

    Methods are called from build worker threads; the coroutines run on ``loop`` (the
    caller's running event loop), or on a private loop when ``loop`` is ``None``.
    """

    def __init__(
        self,
        index_url: str,
        *,
        client: httpx.AsyncClient,
        policy: RetryPolicy,
        auth: AuthStore,
        cache_dir: Path,
        work_dir: Path,
        loop: asyncio.AbstractEventLoop | None,
    ) -> None:
        self.index_url = index_url.rstrip("/") + "/"
        self._client = client
        self._policy = policy
        self._auth = auth
        self._cache = cache_dir / CACHE_DIRNAME
        self._work = work_dir
        self._loop = loop
        self._pages: dict[str, list[Link]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    async def _links(self, name: str) -> list[Link]:
        async with self._lock(f"page:{name}"):
            if name in self._pages:
                return self._pages[name]
            url = f"{self.index_url}{name}/"
            dest = self._work / "pages" / f"{name}.html"
            try:
                await download_file(
                    self._client,
                    [url],
                    dest,
                    expected=Hashes(),
                    policy=self._policy,
                    auth=self._auth,
                    what=f"the index page of {name}",
                )
            except DownloadError as exc:
                if exc.message.endswith((": HTTP 404", ": HTTP 404 Not Found")):
                    self._pages[name] = []
                    return []
                raise
            links = parse_simple_page(dest.read_text(encoding="utf-8", errors="replace"), url)
            self._pages[name] = links
            return links

    def links(self, name: str) -> list[Link]:
        return run_sync(self._links(name), self._loop)

    async def _wheel(self, link: Link) -> Path:
        key = link.sha256 or hashlib.sha256(link.url.encode()).hexdigest()
        async with self._lock(f"wheel:{key}"):
            dest = self._cache / key[:2] / key / link.file_name
            if dest.is_file() and link.sha256 is not None:
                if file_sha256(dest) == link.sha256:
                    return dest
                dest.unlink()
            result = await download_file(
                self._client,
                [link.url],
                dest,
                expected=Hashes(sha256=link.sha256),
                policy=self._policy,
                auth=self._auth,
                what=link.file_name,
            )
            return result.path

    def wheel(self, link: Link) -> Path:
        return run_sync(self._wheel(link), self._loop)


def wheel_requires(wheel: Path) -> list[str]:
    """``Requires-Dist`` of a wheel."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            headers = metadata_headers(zf, limit=None)
    except (OSError, zipfile.BadZipFile) as exc:
        raise BuildError(f"build requirement {wheel.name} is not a valid wheel: {exc}") from exc
    if headers is None:
        raise BuildError(f"build requirement {wheel.name} has no single METADATA")
    return [str(v) for v in headers.get_all("Requires-Dist") or []]


@dataclass(frozen=True)
class _Candidate:
    version: Version
    link: Link
    rank: int  # index of the best matching tag (lower is better)


def _candidates(
    links: Sequence[Link], tags: Sequence[Tag], python_version: Version, name: NormalizedName
) -> list[_Candidate]:
    rank_of = {t: i for i, t in enumerate(tags)}
    out: list[_Candidate] = []
    for link in links:
        if not link.file_name.endswith(".whl"):
            continue
        try:
            wname, version, _, wtags = parse_wheel_filename(link.file_name)
        except InvalidWheelFilename:
            continue
        if wname != name:
            continue
        ranks = [rank_of[t] for t in wtags if t in rank_of]
        if not ranks:
            continue
        if link.requires_python:
            try:
                if python_version not in SpecifierSet(link.requires_python):
                    continue
            except InvalidSpecifier:
                pass
        out.append(_Candidate(version=version, link=link, rank=min(ranks)))
    return out


def _pick(candidates: list[_Candidate], reqs: Sequence[Requirement]) -> _Candidate | None:
    pinned = any(s.operator in ("==", "===") for r in reqs for s in r.specifier)
    asks_pre = any(s.prereleases for r in reqs for s in r.specifier)

    def allowed(c: _Candidate, prereleases: bool) -> bool:
        if c.link.yanked and not pinned:
            return False
        if c.version.is_prerelease and not prereleases:
            return False
        return all(r.specifier.contains(c.version, prereleases=True) for r in reqs)

    ordered = sorted(candidates, key=lambda c: (c.version, -c.rank), reverse=True)
    for prereleases in dict.fromkeys((asks_pre, True)):
        for c in ordered:
            if allowed(c, prereleases):
                return c
    return None


def _env_for(interpreter: InterpreterInfo, extra: str) -> dict[str, str]:
    return {**interpreter.markers, "extra": extra}


def _applies(req: Requirement, interpreter: InterpreterInfo, extras: set[str]) -> bool:
    if req.marker is None:
        return True
    marker: Marker = req.marker
    return any(marker.evaluate(_env_for(interpreter, e)) for e in (extras or {""}))


def resolve(
    requirements: Sequence[str],
    *,
    index: PackageIndex,
    interpreter: InterpreterInfo,
    skip: set[str] | None = None,
    say: Callable[[str], None] = lambda _msg: None,
) -> list[ResolvedWheel]:
    """Resolve ``requirements`` to wheels for ``interpreter`` and download them.

    ``skip``: normalised names already present (not resolved again). ``say`` receives one
    line per decision, for the build log.
    """
    parsed: list[Requirement] = []
    for text in requirements:
        try:
            parsed.append(Requirement(text))
        except InvalidRequirement as exc:
            raise BuildError(f"invalid build requirement {text!r}: {exc}") from exc
    tags = interpreter.host_tags()
    try:
        py_version = Version(interpreter.version)
    except InvalidVersion:
        py_version = Version(".".join(str(p) for p in interpreter.major_minor))
    remembered: dict[str, list[Requirement]] = {}
    skip = skip or set()
    for _round in range(MAX_ROUNDS):
        chosen: dict[str, tuple[_Candidate, set[str]]] = {}
        wheels: dict[str, Path] = {}
        constraints: dict[str, list[Requirement]] = {k: list(v) for k, v in remembered.items()}
        queue: list[tuple[Requirement, set[str]]] = [(r, set()) for r in parsed]
        restart = False
        while queue:
            req, parent_extras = queue.pop(0)
            if not _applies(req, interpreter, parent_extras):
                continue
            name = canonicalize_name(req.name)
            if name in skip:
                continue
            reqs = constraints.setdefault(name, [])
            if req not in reqs:
                reqs.append(req)
            if name in chosen:
                cand, extras = chosen[name]
                if not all(r.specifier.contains(cand.version, prereleases=True) for r in reqs):
                    say(f"  {name} {cand.version} conflicts with {req}; starting over")
                    remembered.setdefault(name, []).append(req)
                    restart = True
                    break
                new = set(req.extras) - extras
                if new:
                    extras |= new
                    queue += [(Requirement(d), new) for d in wheel_requires(wheels[name])]
                continue
            links = index.links(name)
            cand_opt = _pick(_candidates(links, tags, py_version, name), reqs)
            if cand_opt is None:
                wanted = ", ".join(str(r) for r in reqs)
                raise BuildError(
                    f"no wheel for the build requirement {wanted} (python "
                    f"{interpreter.version}) on {redact_url(index.index_url)}",
                    hint="build requirements are installed from wheels only: use an index "
                    "that has one (--pypi-index URL), or --no-build-isolation with the "
                    "requirement in the environment",
                )
            extras = set(req.extras)
            chosen[name] = (cand_opt, extras)
            say(f"  {name}=={cand_opt.version} ({cand_opt.link.file_name}) for {req}")
            wheel = index.wheel(cand_opt.link)
            wheels[name] = wheel
            for dep in wheel_requires(wheel):
                try:
                    queue.append((Requirement(dep), extras | {""}))
                except InvalidRequirement:
                    log.debug("ignoring the invalid requirement %r of %s", dep, wheel.name)
        if restart:
            continue
        return [
            ResolvedWheel(
                name=str(name),
                version=str(cand.version),
                path=wheels[name],
                sha256=cand.link.sha256 or file_sha256(wheels[name]),
                url=cand.link.url,
            )
            for name, (cand, _) in sorted(chosen.items())
        ]
    conflicts = "; ".join(
        f"{n}: " + ", ".join(str(r) for r in rs) for n, rs in sorted(remembered.items())
    )
    raise BuildError(f"cannot resolve the build requirements {list(requirements)}: {conflicts}")
