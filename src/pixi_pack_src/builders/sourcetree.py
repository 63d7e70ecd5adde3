"""A content hash of a path source (``source-tree-sha256``, docs/archive-format.md, "`pixi-pack-src.json`").

Which files count:

- In a git work tree: what ``git ls-files --cached --others --exclude-standard`` lists below
  the directory, i.e. tracked files plus untracked files that no ``.gitignore`` excludes (what
  a build would see, minus what the project itself declares as noise). Tracked files that
  were deleted are skipped. If git lists nothing although the directory has files (e.g. the
  directory is ignored as a whole), the plain walk below is used instead.
- Otherwise (no git, or not a repository): every file below the directory. No ``.gitignore``
  parsing without git.
- Always excluded: the directories ``.pixi``, ``.git``, ``.hg``, ``.svn``, ``__pycache__``,
  ``.mypy_cache``, ``.pytest_cache``, ``.ruff_cache``, ``.tox``, ``.nox`` (pixi's caches,
  VCS data and tool caches); files named ``pixi.lock`` (``pixi build`` never reads it) and
  build outputs (``*.pyc``, ``*.pyo``, ``*.conda``, ``*.tar.bz2``); and any path the caller
  passes in ``exclude`` (our own output file, work and cache directories when they lie inside
  the tree).

The hash covers, in sorted order of the relative POSIX path: the path, the kind (file or
symlink), the executable bit, and the sha256 of the bytes (or the link target). Directories
themselves are not hashed, so an empty directory changes nothing.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from pixi_pack_src import proc
from pixi_pack_src.errors import CommandError
from pixi_pack_src.hashing import file_sha256

log = logging.getLogger(__name__)

EXCLUDED_DIRS = frozenset(
    {
        ".pixi",
        ".git",
        ".hg",
        ".svn",
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
        ".nox",
    }
)
EXCLUDED_NAMES = frozenset({"pixi.lock"})
EXCLUDED_SUFFIXES = (".pyc", ".pyo", ".conda", ".tar.bz2")


def _excluded(rel: str, exclude: tuple[str, ...]) -> bool:
    parts = rel.split("/")
    if any(p in EXCLUDED_DIRS for p in parts[:-1]) or parts[-1] in EXCLUDED_DIRS:
        return True
    if parts[-1] in EXCLUDED_NAMES or parts[-1].endswith(EXCLUDED_SUFFIXES):
        return True
    return any(rel == e or rel.startswith(e + "/") for e in exclude)


def _git_files(root: Path) -> list[str] | None:
    """Relative paths git lists below ``root``, or ``None`` when git cannot say."""
    if shutil.which("git") is None:
        return None
    try:
        inside = proc.run(
            ["git", "-C", root, "rev-parse", "--is-inside-work-tree"],
            capture_stdout=True,
            check=False,
            what="git rev-parse",
        )
        if inside.returncode != 0 or inside.stdout.strip() != "true":
            return None
        listed = proc.run(
            ["git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            capture_stdout=True,
            check=False,
            what="git ls-files",
        )
    except CommandError:
        return None
    if listed.returncode != 0:
        return None
    return [p for p in listed.stdout.split("\0") if p]


def _walk(root: Path, prefix: str = "") -> Iterator[str]:
    for dirpath, dirnames, filenames in os.walk(root / prefix if prefix else root):
        dirnames[:] = sorted(d for d in dirnames if d not in EXCLUDED_DIRS)
        base = Path(dirpath)
        for name in filenames:
            yield (base / name).relative_to(root).as_posix()
        # symlinked directories are not followed by os.walk: hash them as links
        for name in list(dirnames):
            if (base / name).is_symlink():
                dirnames.remove(name)
                yield (base / name).relative_to(root).as_posix()


def list_tree(root: Path, *, exclude: Iterable[Path] = ()) -> list[str]:
    """The relative POSIX paths :func:`tree_sha256` hashes, sorted."""
    root = root.resolve()
    rel_excludes = []
    for path in exclude:
        try:
            rel_excludes.append(Path(path).resolve().relative_to(root).as_posix())
        except ValueError:
            continue
    excludes = tuple(e for e in rel_excludes if e not in ("", "."))
    listed = _git_files(root)
    files: set[str] = set()
    if listed is not None:
        for rel in listed:
            full = root / rel
            if full.is_symlink() or full.is_file():
                files.add(rel)
            elif full.is_dir():  # a submodule or nested repository
                files.update(_walk(root, rel))
        if not files and any(True for _ in _walk(root)):
            log.debug("git lists no file in %s; hashing every file instead", root)
            listed = None
    if listed is None:
        files = set(_walk(root))
    return sorted(f for f in files if not _excluded(f, excludes))


def tree_sha256(root: Path, *, exclude: Iterable[Path] = ()) -> str:
    """The content hash of the source tree at ``root`` (see the module docstring)."""
    root = root.resolve()
    digest = hashlib.sha256()
    for rel in list_tree(root, exclude=exclude):
        full = root / rel
        st = full.lstat()
        if stat.S_ISLNK(st.st_mode):
            kind, mode = "L", "-"
            content = hashlib.sha256(str(full.readlink()).encode()).hexdigest()
        else:
            kind, mode = "F", "x" if st.st_mode & stat.S_IXUSR else "-"
            content = file_sha256(full)
        digest.update(f"{rel}\0{kind}\0{mode}\0{content}\n".encode())
    return digest.hexdigest()
