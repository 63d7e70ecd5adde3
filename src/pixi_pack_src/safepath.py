"""The one type for a path that comes from data, and the one way to turn it into a file.

Every name that a lock, a manifest, a repodata record, a package's ``info/paths.json``, a
wheel's ``RECORD``, an archive member or a cache index hands us is hostile until proven
otherwise. :class:`RelPath` is that proof: a ``/``-separated relative path of plain
components, checked once where the data enters (after any percent-decoding), refusing

- an empty path, empty, ``.`` and ``..`` components, an absolute path, a drive letter (``C:``)
  or a UNC prefix;
- backslashes, NUL and other control characters (C0, DEL, C1);
- a component over 255 bytes or a path over 4096 bytes (UTF-8).

:func:`under` joins a :class:`RelPath` to a root and proves the result stays inside it
(symbolic links already on disk included). :func:`open_under` / :func:`makedirs_under`
create files and directories below a root one component at a time through directory file
descriptors with ``O_NOFOLLOW``, so a symbolic link planted anywhere on the way is refused
rather than followed (POSIX; elsewhere they fall back to :func:`under`'s check).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
from pathlib import Path

from pixi_pack_src.errors import PixiPackSrcError

MAX_PATH_BYTES = 4096
MAX_COMPONENT_BYTES = 255
_DRIVE = re.compile(r"^[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class UnsafePathError(PixiPackSrcError, ValueError):
    """A name from data that must not become a path (exit code 1)."""


def path_problem(name: str) -> str | None:
    """Why ``name`` is not a safe relative path (``None`` if it is)."""
    if not name:
        return "is empty"
    if "\x00" in name:
        return "has a NUL byte"
    if "\\" in name:
        return "has a backslash"
    if _CONTROL.search(name):
        return "has a control character"
    if name.startswith("/"):
        return "is an absolute path"
    if _DRIVE.match(name):
        return "starts with a drive letter"
    parts = name.split("/")
    if ".." in parts:
        return "has a '..' component (path traversal)"
    if "." in parts:
        return "has a '.' component"
    if "" in parts:
        return "has an empty path component"
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid UTF-8"
    if len(encoded) > MAX_PATH_BYTES:
        return f"is longer than {MAX_PATH_BYTES} bytes"
    if any(len(p.encode("utf-8")) > MAX_COMPONENT_BYTES for p in parts):
        return f"has a component longer than {MAX_COMPONENT_BYTES} bytes"
    return None


class RelPath(str):
    """A validated relative path (``/``-separated plain components); build with :meth:`parse`
    or :meth:`file_name`, never by calling the class."""

    __slots__ = ()

    @classmethod
    def parse(cls, raw: str, *, what: str = "path") -> RelPath:
        """``raw`` (already decoded) as a :class:`RelPath`, or :class:`UnsafePathError`."""
        if isinstance(raw, RelPath):
            return raw
        problem = path_problem(raw)
        if problem:
            raise UnsafePathError(
                f"{what} {raw!r} {problem}",
                hint="the input is damaged or hostile; it was refused before anything was written",
            )
        return str.__new__(cls, raw)

    @classmethod
    def file_name(cls, raw: str, *, what: str = "file name") -> RelPath:
        """A single component: a plain file name (no ``/``)."""
        if "/" in raw:
            raise UnsafePathError(
                f"{what} {raw!r} is not a plain file name (it has a '/')",
                hint="the input is damaged or hostile; it was refused before anything was written",
            )
        return cls.parse(raw, what=what)

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.split("/"))


def under(root: Path, rel: str, *, what: str = "path") -> Path:
    """``root / rel`` after checking ``rel`` (a :class:`RelPath` or raw data) and that the
    result, symbolic links on disk resolved, is still inside ``root``."""
    path = RelPath.parse(rel, what=what)
    target = root.joinpath(*path.parts)
    real_root = os.path.realpath(root)
    real = os.path.realpath(target)
    if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
        raise UnsafePathError(
            f"{what} {str(path)!r} leads outside {root} (through a symbolic link)",
            hint="something placed a symbolic link there; remove it and run again",
        )
    return target


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_HAVE_DIR_FD = os.open in os.supports_dir_fd and bool(_NOFOLLOW) and bool(_DIRECTORY)


def _refused(root: Path, rel: str, exc: OSError) -> UnsafePathError:
    return UnsafePathError(
        f"cannot write {rel!r} below {root}: a component is a symbolic link or not a "
        f"directory ({exc.strerror or exc})",
        hint="something placed a symbolic link there; remove it and run again",
    )


def _open_parent(root: Path, parts: tuple[str, ...], *, create: bool) -> int:
    """A descriptor of ``root/parts[:-1]``, walked without following symbolic links."""
    fd = os.open(root, os.O_RDONLY | _DIRECTORY)
    try:
        for part in parts[:-1]:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
            nxt = os.open(part, os.O_RDONLY | _DIRECTORY | _NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


def makedirs_under(root: Path, rel: str, *, what: str = "path") -> Path:
    """Create ``root/rel`` and its parents as directories, refusing symbolic links."""
    path = RelPath.parse(rel, what=what)
    if not _HAVE_DIR_FD:  # pragma: no cover - Windows
        target = under(root, path, what=what)
        target.mkdir(parents=True, exist_ok=True)
        return target
    try:
        fd = _open_parent(root, (*path.parts, ""), create=True)
    except OSError as exc:
        raise _refused(root, path, exc) from exc
    os.close(fd)
    return root.joinpath(*path.parts)


def open_under(
    root: Path,
    rel: str,
    flags: int = os.O_WRONLY | os.O_CREAT | os.O_EXCL,
    mode: int = 0o644,
    *,
    what: str = "path",
) -> int:
    """``os.open`` of ``root/rel`` (parents created) without following any symbolic link
    on the way or at the end; returns the descriptor."""
    path = RelPath.parse(rel, what=what)
    if not _HAVE_DIR_FD:  # pragma: no cover - Windows
        target = under(root, path, what=what)
        target.parent.mkdir(parents=True, exist_ok=True)
        return os.open(target, flags, mode)
    try:
        parent = _open_parent(root, path.parts, create=bool(flags & os.O_CREAT))
    except OSError as exc:
        raise _refused(root, path, exc) from exc
    try:
        return os.open(path.parts[-1], flags | _NOFOLLOW, mode, dir_fd=parent)
    except OSError as exc:
        if exc.errno is not None and exc.errno in _LINK_ERRNOS:
            raise _refused(root, path, exc) from exc
        raise
    finally:
        os.close(parent)


_LINK_ERRNOS = {errno.ELOOP, errno.ENOTDIR}


def is_plain_directory(path: Path) -> bool:
    """A directory that is not a symbolic link (``lstat``)."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False
