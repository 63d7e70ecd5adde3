"""uv, the installer of every build environment: the venv and its build requirements.

pixi resolves and installs PyPI packages with uv; builds here do the same. The ``uv`` package
on PyPI ships the binary (:func:`uv_binary`); it runs only through :func:`pixi_pack_src.proc.run`.
For one build, :class:`Uv` runs

- ``uv venv --python <the target interpreter> <dir>``, then
- ``uv pip install --python <dir>/bin/python --default-index I --index E… --find-links F… --
  <requirements>`` for the ``[build-system] requires`` and again for what the backend's
  ``get_requires_for_build_wheel`` adds.

``--default-index``/``--index`` are uv's names for pip's ``--index-url``/``--extra-index-url``
with the same priorities: the lock's ``indexes`` list is ``[index-url, *extra-index-urls]`` as
pixi writes it, so the first is the default index and the others are searched before it
(uv's ``first-index`` strategy, as pixi). Without any index, ``--no-index`` and only the
find-links. uv resolves with backtracking, reads PEP 503 and PEP 691 pages and PEP 658
metadata, and builds a requirement that is published only as an sdist (with the same
indexes, in its own isolated environment).

Offline and reproducible:

- ``--no-config`` and an environment without any ``UV_*`` variable, ``VIRTUAL_ENV``,
  ``CONDA_PREFIX``, ``PYTHONPATH``/``PYTHONHOME``: nothing of the user's uv setup leaks in;
  ``XDG_CONFIG_HOME``/``XDG_DATA_HOME`` point into a private directory, so neither uv's
  user configuration nor its credentials store nor its managed Pythons are seen;
  ``--no-python-downloads``: the only interpreter is the one given;
- uv's cache lives in ``<cache>/uv-v1`` (``--use-cache``), else in the work directory;
- credentials come from our stores only (:class:`pixi_pack_src.fetch.auth.AuthStore`:
  ``--auth-file``, rattler's files, netrc, keyring), written as a private netrc file (mode
  0600) that uv reads through ``NETRC``; never on a command line, never in a log. uv's
  order is the URL's own ``user:password@``, then netrc; a bearer token cannot be given to uv
  (it takes basic credentials only) and is left out with a log line;
- everything uv fetches comes from these indexes and find-links (and the files their pages
  link to); a build requirement given as a direct URL is refused before uv runs.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from packaging.requirements import InvalidRequirement, Requirement

from pixi_pack_src import proc
from pixi_pack_src.errors import BuildError, CommandError
from pixi_pack_src.fetch.auth import AuthStore
from pixi_pack_src.lock.model import LockedEnvironment
from pixi_pack_src.redact import redact_url

log = logging.getLogger(__name__)

CACHE_DIRNAME = "uv-v1"
_SCRUBBED_PREFIXES = ("UV_", "PIP_")
_SCRUBBED = frozenset(
    {
        "VIRTUAL_ENV",
        "CONDA_PREFIX",
        "CONDA_DEFAULT_ENV",
        "PYTHONPATH",
        "PYTHONHOME",
        "PYTHONSTARTUP",
        "PYTHONUSERBASE",
        "NETRC",
        "XDG_CONFIG_HOME",
        "XDG_DATA_HOME",
    }
)
# A netrc value must be one word without quotes (uv's parser does not unquote).
_NETRC_WORD = re.compile(r"^[^\s\"'#]+$")


def uv_binary() -> Path:
    """The uv executable of the ``uv`` package installed with pixi-pack-src."""
    try:
        import uv
    except ImportError as exc:  # a broken install: uv is a dependency
        raise BuildError(
            "uv is not installed (the `uv` package)",
            hint="reinstall pixi-pack-src with its dependencies",
        ) from exc
    return Path(uv.find_uv_bin())


def uv_version() -> str:
    try:
        return importlib.metadata.version("uv")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class PackageSources:
    """Where build requirements come from: the lock's indexes, in order, and find-links."""

    indexes: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()  # URLs or absolute directories

    @property
    def empty(self) -> bool:
        return not self.indexes and not self.find_links

    def arguments(self) -> list[str]:
        """uv's options for these sources."""
        # ``--opt=value``: a value from the lock is never read as an option of its own.
        args: list[str] = []
        if self.indexes:
            args.append(f"--default-index={self.indexes[0]}")
            args += [f"--index={extra}" for extra in self.indexes[1:]]
        else:
            args.append("--no-index")
        args += [f"--find-links={link}" for link in self.find_links]
        return args

    def shown(self) -> str:
        """For messages: the redacted URLs (``and``-joined)."""
        parts = [redact_url(u) for u in self.indexes]
        parts += [f"find-links {redact_url(f)}" for f in self.find_links]
        return " and ".join(parts) or "no index"

    def urls(self) -> list[str]:
        return [u for u in (*self.indexes, *self.find_links) if "://" in u]


def find_links_of(env: LockedEnvironment) -> tuple[str, ...]:
    """The environment's ``find-links``: URLs as they are, paths made absolute (workspace)."""
    out = []
    for item in env.find_links:
        if "://" in item:
            out.append(item)
        else:
            out.append(str((env.workspace_root / item).resolve()))
    return tuple(out)


def checked_requirements(requirements: Sequence[str], *, package: str) -> list[Requirement]:
    """Parse build requirements; refuse a direct URL (everything comes from the indexes)."""
    out = []
    for text in requirements:
        try:
            req = Requirement(text)
        except InvalidRequirement as exc:
            raise BuildError(f"{package}: invalid build requirement {text!r}: {exc}") from exc
        if req.url is not None:
            raise BuildError(
                f"{package}: the build requirement {req.name} is a direct URL "
                f"({redact_url(req.url)}); build requirements come from the lock's indexes",
                hint="publish it on an index of the lock, or build with --no-build-isolation",
            )
        out.append(req)
    return out


class Uv:
    """Runs uv for the builds of one pack (thread-safe: builds run in parallel).

    ``home``: a private directory (the netrc file and uv's XDG directories); ``cache_dir``:
    uv's cache; ``auth``: our credential stores; ``sources``: every index and find-links
    these builds use (their hosts' credentials go into the netrc file).
    """

    def __init__(
        self,
        *,
        home: Path,
        cache_dir: Path,
        auth: AuthStore,
        sources: Sequence[PackageSources] = (),
        timeout: float | None = None,
    ) -> None:
        self.binary = uv_binary()
        self.home = home
        self.cache_dir = cache_dir
        self.timeout = timeout
        self._auth = auth
        self._urls = [u for s in sources for u in s.urls()]
        self._env: dict[str, str] | None = None
        self._lock = threading.Lock()

    # -- environment
    def environment(self) -> dict[str, str]:
        """The process environment of every uv command (see the module docstring)."""
        with self._lock:
            if self._env is None:
                self.home.mkdir(parents=True, exist_ok=True)
                netrc = self.home / "netrc"
                _write_private(netrc, netrc_text(self._auth, self._urls))
                env = scrubbed(os.environ)
                env.update(
                    {
                        "NETRC": str(netrc),
                        "XDG_CONFIG_HOME": str(self.home / "config"),
                        "XDG_DATA_HOME": str(self.home / "data"),
                        "UV_PYTHON_DOWNLOADS": "never",
                    }
                )
                self._env = env
            return self._env

    def close(self) -> None:
        """Remove the netrc file (a failed pack keeps its work directory for the logs)."""
        with self._lock:
            (self.home / "netrc").unlink(missing_ok=True)
            self._env = None

    def _common(self) -> list[str]:
        return [
            "--no-config",
            f"--cache-dir={self.cache_dir}",
            "--no-python-downloads",
            "--color",
            "never",
            "--no-progress",
        ]

    # -- commands
    def venv(
        self, python: Path, dest: Path, *, log_file: Path, cancel: threading.Event | None = None
    ) -> None:
        """A fresh venv at ``dest`` for the interpreter ``python`` (nothing installed)."""
        argv: list[str | os.PathLike[str]] = [
            self.binary,
            "venv",
            *self._common(),
            f"--python={python}",
            "--",
            dest,
        ]
        try:
            proc.run(
                argv,
                env=self.environment(),
                log_file=log_file,
                timeout=self.timeout or 300,
                what="uv venv",
                cancel=cancel,
            )
        except CommandError as exc:
            raise BuildError(
                f"cannot create the isolated build environment with {python}: {exc.message}",
                log_file=exc.log_file,
                output_tail=exc.output_tail,
            ) from exc

    def install(
        self,
        python: Path,
        requirements: Sequence[Requirement],
        sources: PackageSources,
        *,
        log_file: Path,
        cancel: threading.Event | None = None,
    ) -> None:
        """Install ``requirements`` into the environment of ``python`` from ``sources``."""
        wanted = [str(r) for r in requirements]
        argv: list[str | os.PathLike[str]] = [
            self.binary,
            "pip",
            "install",
            *self._common(),
            f"--python={python}",
            *sources.arguments(),
            "--",
            *wanted,
        ]
        try:
            proc.run(
                argv,
                env=self.environment(),
                log_file=log_file,
                timeout=self.timeout,
                what="uv pip install",
                cancel=cancel,
            )
        except CommandError as exc:
            if exc.returncode == -9:
                raise BuildError(exc.message, log_file=exc.log_file) from exc
            raise BuildError(
                f"cannot install the build requirement{'s' if len(wanted) > 1 else ''} "
                f"{', '.join(wanted)} from {sources.shown()} (uv's message is in the build log)",
                log_file=exc.log_file,
                output_tail=exc.output_tail,
                hint="check that the lock's indexes have them (or pass --pypi-index URL)",
            ) from exc


def netrc_text(auth: AuthStore, urls: Sequence[str]) -> str:
    """A netrc file with the basic credentials our stores hold for the hosts of ``urls``.

    uv matches netrc entries by host name (no port): the first credential found for a host
    wins. Bearer and conda tokens cannot be expressed for uv and are left out.
    """
    lines: list[str] = []
    seen: set[str] = set()
    for url in urls:
        try:
            host = urlsplit(url).hostname
        except ValueError:
            continue
        if not host or host in seen:
            continue
        found = auth.lookup(url)
        if found is None:
            continue
        key, cred = found
        seen.add(host)
        if cred.kind != "basic":
            log.info("credentials for %s are a %s; uv takes basic credentials only", key, cred.kind)
            continue
        if not (_NETRC_WORD.match(cred.username) and _NETRC_WORD.match(cred.password)):
            log.warning("credentials for %s contain spaces or quotes; not given to uv", key)
            continue
        lines.append(f"machine {host} login {cred.username} password {cred.password}")
    return "".join(f"{line}\n" for line in lines)


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` readable by this user only (never widened, even for a moment)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    path.chmod(0o600)


def scrubbed(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` without the variables uv (or a Python) would take configuration from."""
    return {
        k: v
        for k, v in environ.items()
        if k not in _SCRUBBED and not k.startswith(_SCRUBBED_PREFIXES)
    }
