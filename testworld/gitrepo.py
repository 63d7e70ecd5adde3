"""Git repositories for the world: deterministic commits, bare clones, ``file://`` URLs.

- :func:`git` - run ``git`` with a fixed author, committer and dates and no user or system
  configuration, so the same tree always gives the same commit; a failure raises
  ``RuntimeError`` with git's message.
- :func:`make_git_repo` - a bare repository whose single (tagged) commit holds a copy of a
  tree; returns a :class:`GitRepo`.
- :func:`make_bare_repo` - commit a tree in place, add a later commit on top (so the locked
  commit is not the branch tip) and clone it bare; returns ``(file:// URL, locked commit)``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

GIT_ENV = {
    "GIT_AUTHOR_NAME": "World",
    "GIT_AUTHOR_EMAIL": "world@example.invalid",
    "GIT_COMMITTER_NAME": "World",
    "GIT_COMMITTER_EMAIL": "world@example.invalid",
    "GIT_AUTHOR_DATE": "2024-01-01T00:00:00+00:00",
    "GIT_COMMITTER_DATE": "2024-01-01T00:00:00+00:00",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


@dataclass(frozen=True)
class GitRepo:
    path: Path  # the bare repository
    url: str  # file:// URL
    sha: str  # the commit holding the tree
    tag: str | None = None


def git(args: Sequence[str], cwd: Path) -> str:
    """``git *args`` in ``cwd``; its stdout, stripped."""
    env = {**os.environ, **GIT_ENV}
    out = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {out.stderr.strip()}")
    return out.stdout.strip()


def _commit_all(work: Path, message: str) -> str:
    git(["add", "-A"], work)
    git(["commit", "--quiet", "-m", message], work)
    return git(["rev-parse", "HEAD"], work)


def make_git_repo(tree: Path, dest: Path, *, tag: str | None = "v1") -> GitRepo:
    """A bare repository at ``dest`` whose single commit holds ``tree`` (deterministic sha)."""
    work = dest.with_name(dest.name + ".work")
    shutil.copytree(tree, work, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    git(["init", "--quiet", "--initial-branch", "main"], work)
    sha = _commit_all(work, f"import {tree.name}")
    if tag:
        git(["tag", tag], work)
    git(["clone", "--quiet", "--bare", str(work), str(dest)], dest.parent)
    shutil.rmtree(work)
    return GitRepo(path=dest, url=dest.resolve().as_uri(), sha=sha, tag=tag)


def make_bare_repo(tree: Path, bare: Path) -> tuple[str, str]:
    """Commit ``tree`` (a git repository is created in it) and clone it to ``bare``.

    Returns ``(file:// URL of the bare repository, commit sha)``. A second commit on top
    changes a file, so the locked commit is not the branch tip.
    """
    git(["init", "--quiet", "--initial-branch", "main"], tree)
    sha = _commit_all(tree, "locked")
    (tree / "CHANGELOG").write_text("after the locked commit\n")
    _commit_all(tree, "later")
    git(["clone", "--quiet", "--bare", str(tree), str(bare)], tree.parent)
    return bare.resolve().as_uri(), sha
