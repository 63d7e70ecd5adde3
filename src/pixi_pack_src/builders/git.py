"""Check out exactly one commit of a git repository (docs/pixi-build.md §9).

``checkout(url, rev, root=...)`` returns ``<root>/git-v1/<url hash>/<rev>``, a work tree at
``rev`` (detached), reused when it is already there. It is made in a temporary sibling
(``git init`` + ``git fetch --depth 1 <url> <rev>``, falling back to a full fetch for servers
that refuse to serve a commit by id) and renamed into place when complete, so a crash never
leaves a half checkout and two processes racing for the same commit both succeed.

Prompts are disabled (``GIT_TERMINAL_PROMPT=0``) so private repositories fail fast; git LFS
objects are fetched when ``PIXI_GIT_LFS`` is set (as pixi does); submodules are initialised.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
import threading
from pathlib import Path

from pixi_pack_src import proc
from pixi_pack_src.errors import BuildError, CommandError

log = logging.getLogger(__name__)

GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": ""}
_FULL_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_DONE = ".git/pixi-pack-src-checkout"  # inside .git: invisible to builds
_locks: dict[Path, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock_for(path: Path) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(path, threading.Lock())


def checkout_dir(root: Path, url: str, rev: str) -> Path:
    """Where :func:`checkout` puts ``url`` at ``rev`` below ``root``."""
    return root / "git-v1" / hashlib.sha256(url.encode()).hexdigest()[:16] / rev


def _git(args: list[str | Path], *, cwd: Path, what: str, timeout: float | None) -> str:
    return proc.run(
        ["git", *args],
        cwd=cwd,
        env_overlay=GIT_ENV,
        capture_stdout=True,
        timeout=timeout,
        what=what,
    ).stdout.strip()


def _lfs_wanted() -> bool:
    return os.environ.get("PIXI_GIT_LFS", "").lower() not in ("", "0", "false", "no")


def checkout(url: str, rev: str, *, root: Path, timeout: float | None = 600.0) -> Path:
    """A work tree of ``url`` at commit ``rev`` (full sha), cached below ``root``."""
    if not _FULL_SHA.match(rev):
        raise BuildError(
            f"git source {url}: `{rev}` is not a full commit id",
            hint="the lock pins git sources by full commit (`#<40 hex>`); re-lock with pixi",
        )
    if shutil.which("git") is None:
        raise BuildError(
            f"git is needed to check out {url}, and it is not on PATH", hint="install git"
        )
    dest = checkout_dir(root, url, rev)
    with _lock_for(dest):
        if (dest / _DONE).is_file():
            log.debug("reusing the checkout of %s@%s at %s", url, rev[:12], dest)
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=dest.parent))
        try:
            _make_checkout(url, rev, tmp, timeout)
            (tmp / _DONE).write_text(f"{url}\n{rev}\n")
            try:
                tmp.rename(dest)
            except OSError:
                if not (dest / _DONE).is_file():
                    raise
                log.debug("another process checked out %s@%s first", url, rev[:12])
        except CommandError as exc:
            raise BuildError(
                f"cannot check out {url} at {rev[:12]}: {exc.message}",
                output_tail=exc.output_tail,
                hint="check that the repository is reachable without a prompt (credentials "
                "in a git credential helper) and that the locked commit still exists",
            ) from None
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _make_checkout(url: str, rev: str, tmp: Path, timeout: float | None) -> None:
    _git(["init", "--quiet", tmp], cwd=tmp, what="git init", timeout=timeout)
    try:
        _git(
            ["fetch", "--quiet", "--depth", "1", "--no-tags", url, rev],
            cwd=tmp,
            what=f"git fetch {url} {rev[:12]}",
            timeout=timeout,
        )
    except CommandError:
        log.debug("%s does not serve %s by id; fetching every branch and tag", url, rev[:12])
        _git(
            ["fetch", "--quiet", "--tags", url, "+refs/heads/*:refs/remotes/origin/*"],
            cwd=tmp,
            what=f"git fetch {url}",
            timeout=timeout,
        )
    _git(["checkout", "--quiet", "--detach", rev], cwd=tmp, what="git checkout", timeout=timeout)
    head = _git(["rev-parse", "HEAD"], cwd=tmp, what="git rev-parse", timeout=timeout)
    if head != rev:
        raise BuildError(f"git checkout of {url} gave {head}, expected {rev}")
    if (tmp / ".gitmodules").is_file():
        _git(
            ["submodule", "update", "--init", "--recursive", "--depth", "1"],
            cwd=tmp,
            what="git submodule update",
            timeout=timeout,
        )
    if _lfs_wanted():
        _git(["lfs", "pull"], cwd=tmp, what="git lfs pull", timeout=timeout)
