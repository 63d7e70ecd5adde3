"""Fetch every binary artifact of a pack: concurrently, verified, through the cache.

:func:`fetch_all` takes :class:`Artifact` s (built from lock entries with mirrors applied),
and returns a :class:`Fetched` per artifact key:

- ``file://`` artifacts (lock paths) are hashed in place, never copied: origin ``local-file``;
- with a cache, a verified hit (trusted by its record or re-hashed, see
  :mod:`pixi_pack_src.fetch.cache`): origin ``cache``;
- otherwise a download (:func:`pixi_pack_src.fetch.http.download_file`): into the cache when there is
  one (the archive writer then reads it from there), else into ``work_dir``.

Every file is checked against the lock's sha256 (md5 when that is all it has) and size. An
artifact without any hash is downloaded, its sha256 recorded, and ``verified_against`` is
``"none"``: the caller warns. The first fatal error cancels the other downloads, waits for them
(no request stays in flight) and is raised.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

import httpx

from pixi_pack_src.errors import (
    ChecksumMismatchError,
    PixiPackSrcError,
    UnsupportedPackageError,
    UsageError,
    WorkspaceError,
)
from pixi_pack_src.fetch.auth import AuthStore
from pixi_pack_src.fetch.cache import ContentCache
from pixi_pack_src.fetch.config import FetchConfig
from pixi_pack_src.fetch.http import (
    RetryPolicy,
    Sleep,
    download_file,
    hash_mismatch,
    make_client,
)
from pixi_pack_src.fetch.protocols import ProtocolClient, is_protocol_url
from pixi_pack_src.hashing import FileIdentity, Verified, hash_stream
from pixi_pack_src.lock.locations import file_url_path
from pixi_pack_src.lock.model import CondaBinary, Hashes, PypiPackage
from pixi_pack_src.redact import redact_url
from pixi_pack_src.reporter import Reporter
from pixi_pack_src.safepath import RelPath, under

log = logging.getLogger(__name__)

ArtifactKind = Literal["conda", "wheel", "sdist", "source"]
Origin = Literal["download", "cache", "local-file"]
VerifiedAgainst = Literal["lock-sha256", "lock-md5", "none"]


@dataclass(frozen=True)
class Artifact:
    """One file to fetch. ``key`` is the redacted lock URL (unique per file)."""

    key: str
    file_name: str
    urls: tuple[str, ...]  # to try in order: the mirrors, or the lock URL itself
    hashes: Hashes
    kind: ArtifactKind
    url: str | None = None  # the lock's URL before mirrors (default: ``urls[0]``)

    @property
    def lock_url(self) -> str:
        return self.url if self.url is not None else self.urls[0]

    @property
    def is_local(self) -> bool:
        return self.lock_url.lower().startswith("file:")

    @property
    def verified_against(self) -> VerifiedAgainst:
        if self.hashes.sha256 is not None:
            return "lock-sha256"
        if self.hashes.md5 is not None:
            return "lock-md5"
        return "none"

    @classmethod
    def for_url(
        cls,
        url: str,
        *,
        file_name: str,
        hashes: Hashes,
        kind: ArtifactKind,
        config: FetchConfig | None = None,
    ) -> Artifact:
        urls = (url,) if config is None else config.mirror_urls(url)
        # The name becomes a file in the work directory or the cache: the one path check.
        name = RelPath.file_name(file_name, what=f"the file name of {redact_url(url)}")
        return cls(redact_url(url), name, urls, hashes, kind, url)

    @classmethod
    def from_conda(cls, b: CondaBinary, cfg: FetchConfig) -> Artifact:
        return cls.for_url(b.url, file_name=b.file_name, hashes=b.hashes, kind="conda", config=cfg)

    @classmethod
    def from_pypi(cls, p: PypiPackage, cfg: FetchConfig) -> Artifact:
        if p.kind in ("wheel", "sdist") and p.url is not None:
            url = p.url
        elif p.kind in ("local-wheel", "local-sdist") and p.path is not None:
            url = p.path.as_uri()
        else:
            raise UnsupportedPackageError(
                f"PyPI package {p.name} ({p.location}) is a {p.kind}, not a file to download"
            )
        kind: ArtifactKind = "wheel" if p.is_wheel else "sdist"
        file_name = p.file_name or Path(unquote(urlsplit(url).path)).name
        return cls.for_url(url, file_name=file_name, hashes=p.hashes, kind=kind, config=cfg)


@dataclass(frozen=True)
class Fetched:
    artifact: Artifact
    path: Path
    sha256: str  # always computed from the bytes
    md5: str  # computed, or the lock's md5 when the lock has both and sha256 proved the bytes
    size: int
    origin: Origin
    url: str | None  # the URL that delivered the bytes (the lock URL for cache hits)
    retries: int
    verified_against: VerifiedAgainst
    # the file's identity when its bytes were hashed (this run, or the cache's record): the
    # archive writer copies it without hashing again while it is still that very file
    verified: Verified | None = None


@dataclass(frozen=True)
class DownloadSettings:
    """``policy`` (when given) wins over ``retries``; ``timeout`` is the read timeout."""

    concurrency: int = 50
    retries: int = 5
    timeout: float = 60.0
    policy: RetryPolicy | None = None
    connect_timeout: float = 30.0

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise UsageError(f"concurrent downloads must be at least 1, not {self.concurrency}")
        if self.retries < 0:
            raise UsageError(f"retries must be 0 or more, not {self.retries}")
        if not self.timeout > 0 or not self.connect_timeout > 0:
            raise UsageError(f"timeouts must be positive, not {self.timeout}")

    @property
    def retry_policy(self) -> RetryPolicy:
        return self.policy if self.policy is not None else RetryPolicy(retries=self.retries)


async def fetch_all(
    artifacts: Sequence[Artifact],
    *,
    work_dir: Path,
    cache: ContentCache | None,
    settings: DownloadSettings,
    auth: AuthStore,
    reporter: Reporter,
    client: httpx.AsyncClient | None = None,
    sleep: Sleep = asyncio.sleep,
    config: FetchConfig | None = None,
    on_fetched: Callable[[Fetched], None] | None = None,
) -> dict[str, Fetched]:
    """Fetch and verify every artifact (de-duplicated by key); see the module docstring.

    Returns ``key -> Fetched`` in the order the artifacts were given. ``client`` is reused when
    given (and left open), else one is made (at the first download: a pack served from the cache
    makes none) and closed here (with ``config``'s proxies and TLS
    settings). ``oci://``, ``s3://`` and ``gcs://`` URLs (lock URLs or mirrors) go through
    py-rattler's client (:mod:`pixi_pack_src.fetch.protocols`), set up from ``config``.
    ``on_fetched`` is called (in the event loop) as soon as each file is verified.
    """
    unique: dict[str, Artifact] = {}
    for artifact in artifacts:
        unique.setdefault(artifact.key, artifact)
    if not unique:
        return {}
    sizes = [a.hashes.size for a in unique.values()]
    total = sum(s for s in sizes if s is not None) if None not in sizes else None
    reporter.stage_started("download", items=len(unique), total_bytes=total)

    def new_client() -> httpx.AsyncClient:  # on the first download only: its TLS set-up costs
        return make_client(
            timeout=settings.timeout,
            connect_timeout=settings.connect_timeout,
            max_connections=settings.concurrency,
            config=config,
        )

    protocol_urls = [u for a in unique.values() for u in a.urls if is_protocol_url(u)]
    protocols = (
        ProtocolClient(
            config or FetchConfig(), auth, protocol_urls, secrets_dir=work_dir / ".credentials"
        )
        if protocol_urls
        else None
    )
    job = _Job(
        work_dir, cache, settings.retry_policy, auth, reporter, client, new_client, sleep, protocols
    )
    semaphore = asyncio.Semaphore(settings.concurrency)
    results: dict[str, Fetched] = {}

    async def one(artifact: Artifact) -> None:
        async with semaphore:
            got = results[artifact.key] = await job.obtain(artifact)
        if on_fetched is not None:
            on_fetched(got)

    error: BaseException | None = None
    try:
        try:
            async with asyncio.TaskGroup() as group:
                for artifact in unique.values():
                    group.create_task(one(artifact))
        except BaseExceptionGroup as failed:
            error = _first_error(failed)
    finally:
        if client is None and job.client is not None:
            await job.client.aclose()
        if protocols is not None:
            protocols.close()
        reporter.stage_finished("download")
    if error is not None:
        raise error
    return {key: results[key] for key in unique}


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    for exc in leaves:
        if isinstance(exc, PixiPackSrcError):
            return exc
    return leaves[0] if leaves else group


@dataclass
class _Job:
    work_dir: Path
    cache: ContentCache | None
    policy: RetryPolicy
    auth: AuthStore
    reporter: Reporter
    client: httpx.AsyncClient | None  # made by ``new_client`` when the first download needs it
    new_client: Callable[[], httpx.AsyncClient]
    sleep: Sleep
    protocols: ProtocolClient | None = None

    def http(self) -> httpx.AsyncClient:
        if self.client is None:
            self.client = self.new_client()
        return self.client

    async def obtain(self, artifact: Artifact) -> Fetched:
        if artifact.is_local:
            return await self._local(artifact)
        if self.cache is not None:
            hit = await self._cached(artifact, self.cache)
            if hit is not None:
                return hit
        return await self._download(artifact)

    async def _local(self, a: Artifact) -> Fetched:
        path = file_url_path(a.lock_url)
        self.reporter.task_started(a.key, label=a.file_name, total_bytes=a.hashes.size)
        try:
            need_md5 = a.hashes.md5 is None or a.hashes.sha256 is None
            sha256, computed, size, identity = await asyncio.to_thread(
                _hash_local, path, md5=need_md5
            )
        except OSError as exc:
            self.reporter.task_finished(a.key, outcome="failed", detail="missing")
            raise WorkspaceError(
                f"{a.file_name}: the lock points to {path}, which cannot be read ({exc})",
                hint="build or restore that file, or update the lock with `pixi lock`",
            ) from exc
        self.reporter.task_advanced(a.key, size)
        bad = hash_mismatch(a.hashes, sha256=sha256, md5=computed, size=size)
        md5 = computed or (a.hashes.md5 or "").lower()
        if bad is not None:
            self.reporter.task_finished(a.key, outcome="failed", detail=f"{bad[0]} mismatch")
            raise ChecksumMismatchError(
                what=a.file_name,
                source=str(path),
                algorithm=bad[0],
                expected=bad[1],
                actual=bad[2],
                hint="the local file differs from what pixi.lock records: rebuild it, or "
                "update the lock with `pixi lock`",
            )
        self.reporter.task_finished(a.key, outcome="copied")
        verified = Verified(sha256, identity) if identity is not None else None
        return Fetched(
            a, path, sha256, md5, size, "local-file", a.lock_url, 0, a.verified_against, verified
        )

    async def _cached(self, a: Artifact, cache: ContentCache) -> Fetched | None:
        url = a.lock_url if not a.hashes.verifiable else None
        entry = await asyncio.to_thread(cache.find, a.hashes, url=url)
        if entry is None:
            return None
        self.reporter.task_started(a.key, label=a.file_name, total_bytes=entry.size)
        self.reporter.task_advanced(a.key, entry.size)
        self.reporter.task_finished(a.key, outcome="cached")
        return Fetched(
            a,
            entry.path,
            entry.sha256,
            entry.md5,
            entry.size,
            "cache",
            a.lock_url,
            0,
            a.verified_against,
            entry.verified,
        )

    def _dest(self, a: Artifact) -> Path:
        if self.cache is not None:
            try:
                return self.cache.new_tmp_path(a.file_name)
            except OSError as exc:
                raise _cache_error(self.cache, exc) from exc
        digest = hashlib.sha256(a.key.encode()).hexdigest()[:16]
        return under(self.work_dir, f"{digest}/{a.file_name}", what="a download")

    async def _download(self, a: Artifact) -> Fetched:
        key = a.key
        self.reporter.task_started(key, label=a.file_name, total_bytes=a.hashes.size)
        try:
            result = await download_file(
                self.http(),
                a.urls,
                self._dest(a),
                expected=a.hashes,
                policy=self.policy,
                auth=self.auth,
                on_bytes=lambda n: self.reporter.task_advanced(key, n),
                on_retry=lambda: self.reporter.task_reset(key),
                on_wait=lambda reason, delay: self.reporter.task_waiting(
                    key, reason=reason, retry_in=delay
                ),
                sleep=self.sleep,
                what=a.file_name,
                protocols=self.protocols,
            )
        except PixiPackSrcError as exc:
            self.reporter.task_finished(key, outcome="failed", detail=_short(exc))
            raise
        path = result.path
        if self.cache is not None:
            url = a.lock_url if not a.hashes.verifiable else None
            # In the event loop on purpose: a few renames and tiny writes, and not cancellable
            # half-way (a cancelled worker-thread job would leave the download in tmp/).
            try:
                entry = self.cache.store_entry(
                    result.path,
                    result.sha256,
                    md5=result.md5 if result.md5_computed else None,
                    size=result.size,
                    url=url,
                )
            except OSError as exc:
                result.path.unlink(missing_ok=True)
                raise _cache_error(self.cache, exc) from exc
            path, verified = entry.path, entry.verified
        else:
            # the download hashed every byte on its way into our private work directory
            verified = Verified(result.sha256, FileIdentity.of_path(path))
        if not a.hashes.verifiable:
            log.info("%s has no hash in the lock; recorded sha256 %s", a.file_name, result.sha256)
        detail = ""
        if result.retries:
            detail = f"{result.retries} {'retry' if result.retries == 1 else 'retries'}"
        self.reporter.task_finished(key, outcome="downloaded", detail=detail)
        return Fetched(
            a,
            path,
            result.sha256,
            result.md5,
            result.size,
            "download",
            result.url_used,
            result.retries,
            a.verified_against,
            verified,
        )


def _hash_local(path: Path, *, md5: bool) -> tuple[str, str | None, int, FileIdentity | None]:
    """Hash a lock's local file; its identity too when it did not change while being read."""
    with path.open("rb") as fh:
        before = FileIdentity.of(os.fstat(fh.fileno()))
        sha256, computed, size = hash_stream(fh, md5=md5)
        after = FileIdentity.of(os.fstat(fh.fileno()))
    return sha256, computed, size, (after if after == before else None)


def _short(exc: PixiPackSrcError) -> str:
    """Why a file failed, in a few words (``❌ failed x.conda (HTTP 404 Not Found)``)."""
    if isinstance(exc, ChecksumMismatchError):
        return f"{exc.algorithm} mismatch"
    return getattr(exc, "reason", "")


def _cache_error(cache: ContentCache, exc: OSError) -> PixiPackSrcError:
    return PixiPackSrcError(
        f"cannot write to the cache {cache.root}: {exc}",
        hint="pass a writable directory to --use-cache, or leave the option out",
    )
