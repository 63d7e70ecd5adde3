"""Where a lock entry points: URLs, paths (relative to the lock's directory), ``git+`` URLs,
and the kinds of ``pypi:`` locations (docs/lockfile.md §4).

Pure string and path work, no I/O: the raw reader (:mod:`.entries`) classifies each entry with
these, and planning and builders reuse them.
"""

from __future__ import annotations

import os
import posixpath
import re
from pathlib import Path
from typing import NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit
from urllib.request import url2pathname

from pixi_pack_src.lock.model import GitLocation, PypiKind
from pixi_pack_src.safepath import RelPath

CONDA_ARCHIVE_SUFFIXES = (".conda", ".tar.bz2")
SDIST_SUFFIXES = (".tar.gz", ".zip", ".tar.bz2", ".tgz", ".tar.xz", ".tar")
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")


class PypiLocation(NamedTuple):
    """Where a ``pypi:`` entry points, classified (see :func:`classify_pypi_location`)."""

    kind: PypiKind
    url: str | None
    path: Path | None
    git: GitLocation | None
    file_name: str | None


def display_path(path: Path) -> str:
    """``path`` relative to the working directory when below it, else absolute."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def is_url(location: str) -> bool:
    """A ``scheme://`` location other than ``file://``."""
    return bool(_URL_RE.match(location)) and not location.lower().startswith("file://")


def file_url_path(url: str) -> Path:
    """The local path of a ``file://`` URL, percent-decoded exactly once (``url2pathname``
    decodes; decoding before it too would turn a ``%25`` of the URL into a second escape)."""
    return Path(url2pathname(urlsplit(url).path))


def resolve_location_path(base: Path, location: str) -> Path:
    """A lock path (relative to ``base``, absolute, or ``file://``) as a normalised absolute path."""
    if location.lower().startswith("file://"):
        path = file_url_path(location)
    else:
        path = Path(location)
        if not path.is_absolute():
            path = base / path
    return Path(os.path.normpath(path))


def parse_git_location(location: str) -> GitLocation:
    """``git+https://host/repo?subdirectory=x&tag=v1#<sha>`` -> :class:`GitLocation`.

    Raises ``ValueError`` when ``location`` is not a ``git+`` URL or lacks the pinned commit.
    """
    if not location.startswith("git+"):
        raise ValueError(f"not a git location: {location}")
    parts = urlsplit(location[len("git+") :])
    if not parts.scheme or (not parts.netloc and parts.scheme != "file"):
        raise ValueError(f"not a git URL: {location}")
    query = parse_qs(parts.query, keep_blank_values=False)

    def one(key: str) -> str | None:
        values = query.get(key)
        return values[-1] if values else None

    repo_path = parts.path
    requested: str | None = None
    last = repo_path.rsplit("/", 1)[-1]
    if "@" in last:
        repo_path, requested = repo_path.rsplit("@", 1)
    rev = unquote(parts.fragment)
    if not rev:
        raise ValueError(f"git location without a pinned commit (#<sha>): {location}")
    return GitLocation(
        url=urlunsplit((parts.scheme, parts.netloc, repo_path, "", "")),
        rev=rev,
        subdirectory=one("subdirectory"),
        branch=one("branch"),
        tag=one("tag"),
        requested_rev=one("rev") or requested,
    )


def classify_pypi_location(location: str, base: Path) -> PypiLocation:
    """Classify a ``pypi:`` location (docs/lockfile.md §4) and resolve it."""
    if location.startswith("git+"):
        return PypiLocation("git", None, None, parse_git_location(location), None)
    loc = location.removeprefix("direct+")
    parts = urlsplit(loc)
    remote = is_url(loc)
    if remote:
        url: str | None = urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, ""))
        raw_name = parts.path.rstrip("/").rsplit("/", 1)[-1]
        path = None
    else:
        url = None
        path = resolve_location_path(base, loc)
        stripped = parts.path if loc.lower().startswith("file://") else loc
        raw_name = stripped.rstrip("/").rsplit("/", 1)[-1]
    file_name = unquote(raw_name)
    lowered = file_name.lower()
    if location.rstrip().endswith("/") and not remote:
        lowered = ""  # a directory named like an archive (the v6 quirk) is a source tree
    if lowered.endswith(".whl") or lowered.endswith(SDIST_SUFFIXES):
        # The decoded name becomes a file name in the work directory, the cache and the
        # archive: the one path check, after decoding (``..%2F`` is ``../``).
        name = RelPath.file_name(file_name, what="its file name")
        kind: PypiKind
        if lowered.endswith(".whl"):
            kind = "wheel" if remote else "local-wheel"
        else:
            kind = "sdist" if remote else "local-sdist"
        return PypiLocation(kind, url, path, None, name)
    # A directory. A remote URL that names no archive keeps its URL (the plan reports it).
    return PypiLocation("source-tree", url, path, None, None)


def norm_location(location: str) -> str:
    """Compare source locations the way the lock means them (``./x`` == ``x``)."""
    if location.startswith("git+") or _URL_RE.match(location):
        return location
    return posixpath.normpath(location.replace("\\", "/"))


def is_conda_archive(location: str) -> bool:
    """Whether a ``conda:`` location names a package archive (else, in v6, a source)."""
    path = urlsplit(location).path if _URL_RE.match(location) else location
    return path.lower().endswith(CONDA_ARCHIVE_SUFFIXES)
