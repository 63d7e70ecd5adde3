"""Build wheels from PyPI sdists, git sources and local source trees (PEP 517).

For the caller (``pack``):

1. :func:`job_for` turns each non-wheel ``pypi:`` entry into a :class:`WheelBuildJob`: an
   sdist (downloaded or local, already verified by the fetch stage), a git source (checked
   out at exactly the locked commit, lazily) or a source tree (hashed now, see
   :mod:`.sourcetree`);
2. :func:`build_wheels` builds them for one target (:class:`.env.TargetInterpreter`) and
   returns a :class:`BuiltWheel` per package name.

Per job: the package's :mod:`overrides <.overrides>` for the target are merged; the cache
(:mod:`.wheelcache`) is consulted with :func:`cache_key`; on a miss the source is staged in
``<work_dir>/wheel-builds/<name>-<key>/`` (sdists extracted safely, trees and checkouts
copied: the user's tree is never written to), the override patches are applied, an isolated
venv is made by the target interpreter (:mod:`.env`) and the build requirements installed
into it (:mod:`.pyindex`; none for ``requires = []``), and the backend's hooks run through
:mod:`pyproject_hooks` with every command going through :func:`pixi_pack_src.proc.run`.
The environment of the build: the process environment without ``PYTHONPATH``/``PYTHONHOME``,
the override's ``env``, ``SOURCE_DATE_EPOCH`` (from the environment, else 1980-01-01, so
backends that honour it make identical wheels), and the venv first on ``PATH``.

The wheel is then checked (:mod:`.wheel_check`): exactly one, the locked name and version,
tags the target accepts; a platform-specific wheel for a foreign target is refused with the
hint to build on a runner of that platform. Builds run in parallel (``jobs`` at a time);
each has its log at ``<work_dir>/logs/wheel-<name>.log``, whose tail a
:class:`~pixi_pack_src.errors.BuildError` carries (exit code 4).

Source trees are built from a copy of exactly the files their hash covers; when the tree is
a repository's root, the copy gets a ``.git`` file pointing at the repository, so versions
computed from git tags work. A version computed from VCS metadata in a *sub*
directory of a repository (setuptools-scm) is not available there: set it with an override,
e.g. ``env = { SETUPTOOLS_SCM_PRETEND_VERSION = "1.2.3" }``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import tarfile
import threading
import warnings
import zipfile
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import pyproject_hooks
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from pixi_pack_src import proc, tomlfile
from pixi_pack_src._version import __version__
from pixi_pack_src.builders import git as git_checkout
from pixi_pack_src.builders.sourcetree import list_tree, tree_sha256
from pixi_pack_src.builders.wheel.env import (
    BuildEnvironment,
    TargetInterpreter,
    create_isolated_env,
    environment_of,
    install_wheels,
    installed_names,
    python_tag,
)
from pixi_pack_src.builders.wheel.overrides import Overrides, PackageOverride
from pixi_pack_src.builders.wheel.patch import apply_patch
from pixi_pack_src.builders.wheel.pyindex import IndexClient, resolve
from pixi_pack_src.builders.wheel.wheel_check import check_wheel, find_built_wheel
from pixi_pack_src.builders.wheel.wheelcache import WheelCache
from pixi_pack_src.errors import BuildError, CommandError, PixiPackSrcError, UnsupportedPackageError
from pixi_pack_src.fetch.auth import AuthStore
from pixi_pack_src.fetch.http import RetryPolicy, make_client, redact_url
from pixi_pack_src.hashing import file_sha256
from pixi_pack_src.lock.model import GitLocation, PypiPackage
from pixi_pack_src.redact import redact_text
from pixi_pack_src.reporter import NullReporter, Reporter

log = logging.getLogger(__name__)

SourceKind = Literal["sdist", "git", "source-tree"]
CACHE_SCHEMA = 1
DEFAULT_SOURCE_DATE_EPOCH = "315532800"  # 1980-01-01, the earliest time a zip can hold
LEGACY_BACKEND = "setuptools.build_meta:__legacy__"
LEGACY_REQUIRES = ("setuptools>=40.8.0",)
TAIL_LINES = 40
_SCRUBBED_ENV = (
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "PYTHONUSERBASE",
    "PIP_REQUIRE_VIRTUALENV",
)


@dataclass(frozen=True)
class WheelBuildOptions:
    """How wheels are built; one value for a whole pack."""

    work_dir: Path
    cache_root: Path | None = None  # None: no build cache (and git checkouts in work_dir)
    build_isolation: bool = True
    pypi_index: str | None = None  # --pypi-index: replaces every locked index
    default_index: str | None = None  # the environment's first index (lock `indexes`)
    overrides: Overrides = field(default_factory=Overrides)
    jobs: int = 2
    keep_build_dir: bool = False
    verbosity: int = 0
    timeout: float | None = None  # per backend hook
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    auth: AuthStore = field(default_factory=AuthStore)


@dataclass(frozen=True)
class WheelBuildJob:
    """One PyPI entry to build, with its verified source."""

    package: PypiPackage
    kind: SourceKind
    source: Path | None  # the sdist file or the tree; None for git (checked out on a miss)
    source_hash: str  # sdist sha256, tree sha256, or the git commit
    origin: Mapping[str, object]  # provenance "origin" (archive-format.md §10.1)
    exclude: tuple[Path, ...] = ()  # left out of a source tree's hash and copy

    @property
    def name(self) -> str:
        return str(canonicalize_name(self.package.name))


@dataclass(frozen=True)
class BuiltWheel:
    """A wheel for one package, built now or taken from the cache."""

    package: str  # the locked name
    path: Path
    file_name: str
    name: str
    version: str
    sha256: str
    size: int
    from_cache: bool
    provenance: Mapping[str, object]  # {"origin": {...}, "builder": {...}}
    log_file: Path | None = None

    @property
    def archive_path(self) -> str:
        return f"pypi/{self.file_name}"


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix() or "."
    except ValueError:
        return path.name


def job_for(
    package: PypiPackage,
    *,
    workspace_root: Path,
    sdist_file: Path | None = None,
    exclude: Sequence[Path] = (),
) -> WheelBuildJob:
    """The build job of a non-wheel PyPI entry.

    ``sdist_file``: the verified local copy of an sdist (URL or local file); ``exclude``:
    paths to leave out of a source tree's hash and copy (our output, work and cache dirs).
    """
    if package.kind in ("sdist", "local-sdist"):
        if sdist_file is None:
            raise ValueError(f"the sdist of {package.name} must be fetched before building")
        sha = source_hash(package, sdist_file=sdist_file)
        assert sha is not None
        origin: dict[str, object] = {"type": "sdist", "sha256": sha}
        if package.url is not None:
            origin["url"] = redact_url(package.url)
        else:
            origin["path"] = _relative(package.path or sdist_file, workspace_root)
        return WheelBuildJob(package, "sdist", sdist_file, sha, origin)
    if package.kind == "git":
        assert package.git is not None
        g = package.git
        origin = {"type": "pypi-git", "url": redact_url(g.url), "rev": g.rev}
        if g.subdirectory:
            origin["subdirectory"] = g.subdirectory
        return WheelBuildJob(package, "git", None, _git_hash(g), origin)
    if package.kind == "source-tree":
        assert package.path is not None
        if not package.path.is_dir():
            raise BuildError(
                f"the source tree of {package.name} is missing: {package.path}",
                hint="check the `pypi:` location in pixi.lock (relative to the workspace)",
            )
        digest = source_hash(package, exclude=exclude)
        assert digest is not None
        origin = {
            "type": "pypi-source-tree",
            "path": _relative(package.path, workspace_root),
            "source-tree-sha256": digest,
        }
        return WheelBuildJob(
            package, "source-tree", package.path, digest, origin, exclude=tuple(exclude)
        )
    raise ValueError(f"{package.name} is a {package.kind}, not something to build")


def _git_hash(g: GitLocation) -> str:
    return f"{g.rev}:{g.subdirectory or ''}"


def source_hash(
    package: PypiPackage, *, sdist_file: Path | None = None, exclude: Sequence[Path] = ()
) -> str | None:
    """What a wheel build's cache key says of its source: the sdist's sha256, the git commit
    (and subdirectory) or the source tree's hash; ``None`` when it cannot be known without
    fetching (a remote sdist whose lock entry has no sha256). ``sdist_file``: the verified
    sdist (else a local sdist is read where it is, a remote one taken from the lock)."""
    if package.kind in ("sdist", "local-sdist"):
        if sdist_file is None and package.path is not None and package.path.is_file():
            sdist_file = package.path
        return file_sha256(sdist_file) if sdist_file is not None else package.hashes.sha256
    if package.kind == "git" and package.git is not None:
        return _git_hash(package.git)
    if package.kind == "source-tree" and package.path is not None:
        return tree_sha256(package.path, exclude=exclude)
    return None


def wheel_cache_key(
    *,
    kind: SourceKind,
    source: str,
    python_version: str,
    platform: str,
    override_digest: str,
    isolated: bool,
    environment_fingerprint: str = "",
) -> str:
    """The build-cache key of a wheel build from plain values (see :func:`cache_key`)."""
    doc = {
        "schema": CACHE_SCHEMA,
        "tool": __version__,
        "kind": kind,
        "source": source,
        "python": python_tag(python_version),
        "platform": platform,
        "overrides": override_digest,
        "isolated": isolated,
        "environment": "" if isolated else environment_fingerprint,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def cache_key(
    job: WheelBuildJob,
    *,
    target: TargetInterpreter,
    override_digest: str,
    isolated: bool,
    platform: str | None = None,
) -> str:
    """The build-cache key (``platform`` defaults to the target's; ``"any"`` for pure)."""
    return wheel_cache_key(
        kind=job.kind,
        source=job.source_hash,
        python_version=target.version,
        platform=platform or target.subdir,
        override_digest=override_digest,
        isolated=isolated,
        environment_fingerprint=target.environment_fingerprint,
    )


# -- sources ------------------------------------------------------------------------------------


def _extract_sdist(sdist: Path, dest: Path) -> Path:
    """Extract ``sdist`` safely into ``dest``; return the project root inside it."""
    dest.mkdir(parents=True)
    name = sdist.name.lower()
    try:
        if name.endswith(".zip"):
            with zipfile.ZipFile(sdist) as zf:
                for member in zf.namelist():
                    parts = Path(member).parts
                    if member.startswith(("/", "\\")) or ".." in parts or ":" in member:
                        raise BuildError(f"refusing {sdist.name}: unsafe member {member!r}")
                zf.extractall(dest)  # noqa: S202 (names checked above)
        else:
            if not hasattr(tarfile, "data_filter"):
                raise BuildError(
                    f"cannot extract {sdist.name} safely with this Python (no tarfile data filter)",
                    hint="run pixi-pack-src with Python 3.11.4 or newer",
                )
            with tarfile.open(sdist, "r:*") as tf:
                tf.extractall(dest, filter="data")
    except (OSError, tarfile.TarError, zipfile.BadZipFile) as exc:
        raise BuildError(f"cannot extract the sdist {sdist.name}: {exc}") from exc
    entries = [p for p in dest.iterdir() if p.name not in ("pax_global_header",)]
    root = entries[0] if len(entries) == 1 and entries[0].is_dir() else dest
    if not ((root / "pyproject.toml").is_file() or (root / "setup.py").is_file()):
        raise BuildError(f"{sdist.name} has no pyproject.toml or setup.py at its top level")
    return root


def _copy_files(src: Path, dest: Path, files: Sequence[str]) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        origin = src / rel
        if origin.is_symlink():
            target.symlink_to(origin.readlink())
        else:
            shutil.copy2(origin, target)


def _stage_source(job: WheelBuildJob, build_dir: Path, options: WheelBuildOptions) -> Path:
    """A private, writable copy of the job's source; returns the project directory."""
    if job.kind == "sdist":
        assert job.source is not None
        return _extract_sdist(job.source, build_dir / "src")
    if job.kind == "git":
        g = job.package.git
        assert g is not None
        root = options.cache_root if options.cache_root is not None else options.work_dir
        checkout = git_checkout.checkout(g.url, g.rev, root=root)
        dest = build_dir / "src"
        shutil.copytree(checkout, dest, symlinks=True)
        project = dest / g.subdirectory if g.subdirectory else dest
        if not project.is_dir():
            raise BuildError(
                f"{g.short}: the subdirectory {g.subdirectory!r} does not exist at that commit"
            )
        return project
    assert job.source is not None
    dest = build_dir / "src"
    _copy_files(job.source, dest, list_tree(job.source, exclude=job.exclude))
    git_dir = _git_dir_of(job.source)
    if git_dir is not None:
        # A "gitfile" pointing at the real repository: VCS-versioned projects (setuptools-scm)
        # see their tags without copying the history; builds run with GIT_OPTIONAL_LOCKS=0.
        (dest / ".git").write_text(f"gitdir: {git_dir}\n", encoding="utf-8")
    return dest


def _git_dir_of(tree: Path) -> Path | None:
    """The git directory of a tree that is a repository's root (``.git`` dir or gitfile)."""
    dot_git = tree / ".git"
    if dot_git.is_dir():
        return dot_git.resolve()
    if dot_git.is_file():
        text = dot_git.read_text(encoding="utf-8", errors="replace").strip()
        if text.startswith("gitdir:"):
            return (tree / text.removeprefix("gitdir:").strip()).resolve()
    return None


def _build_system(project: Path, package: str) -> tuple[list[str], str, list[str] | None]:
    """``requires``, ``build-backend`` and ``backend-path`` (PEP 517/518 defaults)."""
    pyproject = project / "pyproject.toml"
    if not pyproject.is_file():
        return list(LEGACY_REQUIRES), LEGACY_BACKEND, None
    try:
        doc = tomlfile.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomlfile.TOMLDecodeError) as exc:
        raise BuildError(f"{package}: cannot read pyproject.toml: {exc}") from exc
    table = doc.get("build-system")
    if table is None:
        return list(LEGACY_REQUIRES), LEGACY_BACKEND, None
    if not isinstance(table, dict) or not isinstance(table.get("requires"), list):
        raise BuildError(f"{package}: pyproject.toml [build-system] has no `requires` list")
    requires = [str(r) for r in table["requires"]]
    backend = table.get("build-backend")
    if backend is None:
        return requires, LEGACY_BACKEND, None
    path = table.get("backend-path")
    if path is not None and not (isinstance(path, list) and all(isinstance(p, str) for p in path)):
        raise BuildError(f"{package}: pyproject.toml `backend-path` must be a list of paths")
    return requires, str(backend), path


# -- one build ----------------------------------------------------------------------------------


class _BuildLog:
    """The per-build log file: our own notes plus every hook's output, appended in order."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("", encoding="utf-8")
        self._lock = threading.Lock()

    def note(self, line: str) -> None:
        with self._lock, self.path.open("a", encoding="utf-8") as fh:
            fh.write(redact_text(f"# {line}\n"))  # kept on failure: no URL credentials

    def append_file(self, other: Path) -> None:
        if not other.is_file():
            return
        with self._lock, self.path.open("a", encoding="utf-8") as fh:
            fh.write(redact_text(other.read_text(encoding="utf-8", errors="replace")))

    def tail(self, lines: int = TAIL_LINES) -> str:
        try:
            with self.path.open(encoding="utf-8", errors="replace") as fh:
                return "".join(deque(fh, maxlen=lines)).rstrip("\n")
        except OSError:
            return ""


@dataclass
class _Context:
    target: TargetInterpreter
    options: WheelBuildOptions
    reporter: Reporter
    loop: asyncio.AbstractEventLoop | None
    client: httpx.AsyncClient | None
    cache: WheelCache | None
    cancelled: threading.Event = field(default_factory=threading.Event)
    indexes: dict[str, IndexClient] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def index_for(self, package: PypiPackage) -> IndexClient:
        url = self.options.pypi_index or package.index or self.options.default_index
        if url is None:
            raise BuildError(
                f"{package.name} needs build requirements, and the environment has no PyPI index",
                hint="pass --pypi-index URL",
            )
        with self.lock:
            if url not in self.indexes:
                assert self.client is not None
                self.indexes[url] = IndexClient(
                    url,
                    client=self.client,
                    policy=self.options.retry_policy,
                    auth=self.options.auth,
                    cache_dir=self.options.cache_root or self.options.work_dir,
                    work_dir=self.options.work_dir
                    / "index"
                    / hashlib.sha256(url.encode()).hexdigest()[:12],
                    loop=self.loop,
                )
            return self.indexes[url]


def _hook_env(
    override: PackageOverride, env: BuildEnvironment
) -> tuple[dict[str, str], dict[str, str]]:
    base = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    overlay = {
        "SOURCE_DATE_EPOCH": os.environ.get("SOURCE_DATE_EPOCH", DEFAULT_SOURCE_DATE_EPOCH),
        "PYTHONNOUSERSITE": "1",
        "GIT_OPTIONAL_LOCKS": "0",
        **env.env_overlay(),
        **override.expanded_env(),
    }
    return base, overlay


def _frontend() -> str:
    return f"pixi-pack-src {__version__} (pyproject-hooks {importlib.metadata.version('pyproject-hooks')})"


def _install_requirements(
    requirements: Sequence[str],
    *,
    env: BuildEnvironment,
    ctx: _Context,
    job: WheelBuildJob,
    blog: _BuildLog,
) -> list[str]:
    if not requirements:
        return []
    if not env.isolated:
        present = installed_names(env)
        wanted: set[str] = set()
        for text in requirements:
            try:
                req = Requirement(text)
            except InvalidRequirement as exc:
                raise BuildError(f"invalid build requirement {text!r}: {exc}") from exc
            if req.marker is None or req.marker.evaluate({**env.info.markers, "extra": ""}):
                wanted.add(str(canonicalize_name(req.name)))
        absent = sorted(wanted - present)
        if absent:
            blog.note("not installed in the environment (no isolation): " + ", ".join(absent))
            log.warning(
                "%s: build requirements missing from the environment (--no-build-isolation): %s",
                job.package.name,
                ", ".join(absent),
            )
        return []
    index = ctx.index_for(job.package)
    blog.note(f"resolving {', '.join(requirements)} from {redact_url(index.index_url)}")
    resolved = resolve(
        requirements,
        index=index,
        interpreter=env.info,
        skip=installed_names(env),
        say=blog.note,
    )
    return install_wheels(env, [w.path for w in resolved])


def _build_one(job: WheelBuildJob, ctx: _Context) -> BuiltWheel:
    options, target = ctx.options, ctx.target
    name = job.name
    override = options.overrides.for_package(
        name, subdir=target.subdir, python_version=target.version
    )
    digest = override.digest()
    key = cache_key(job, target=target, override_digest=digest, isolated=options.build_isolation)
    any_key = cache_key(
        job, target=target, override_digest=digest, isolated=options.build_isolation, platform="any"
    )
    task = f"wheel:{target.subdir}:{name}"
    ctx.reporter.task_started(task, label=f"{job.package.name} ({job.kind} -> wheel)")
    if ctx.cache is not None:
        hit = ctx.cache.lookup(key) or ctx.cache.lookup(any_key)
        if hit is not None and len(hit.files) == 1:
            wheel = hit.files[0]
            info = check_wheel(
                wheel,
                package=job.package.name,
                locked_version=job.package.version,
                python_version=target.version,
                subdir=target.subdir,
                virtual_packages=target.virtual_packages,
                foreign=not target.is_host,
            )
            builder = hit.meta.get("builder", {})
            ctx.reporter.task_finished(task, outcome="reused", detail="from the build cache")
            log.info("%s: wheel %s from the build cache", job.package.name, wheel.name)
            return BuiltWheel(
                package=job.package.name,
                path=wheel,
                file_name=wheel.name,
                name=info.name,
                version=info.version,
                sha256=file_sha256(wheel),
                size=wheel.stat().st_size,
                from_cache=True,
                provenance={"origin": dict(job.origin), "builder": builder},
            )
    if ctx.cancelled.is_set():
        ctx.reporter.task_finished(task, outcome="skipped")
        raise BuildError(f"{job.package.name}: not built (another build failed)")
    build_dir = options.work_dir / "wheel-builds" / f"{name}-{key[:12]}"
    if build_dir.exists():
        shutil.rmtree(build_dir)
    build_dir.mkdir(parents=True)
    blog = _BuildLog(options.work_dir / "logs" / f"wheel-{target.subdir}-{name}.log")
    try:
        result = _build_fresh(job, ctx, override, key, any_key, build_dir, blog)
    except PixiPackSrcError as exc:
        ctx.reporter.task_finished(task, outcome="failed")
        blog.note(f"FAILED: {exc.message}")
        if isinstance(exc, UnsupportedPackageError):
            raise
        raise BuildError(
            f"building a wheel of {job.package.name} ({job.package.location}) failed: "
            f"{exc.message}",
            log_file=blog.path,
            output_tail=getattr(exc, "output_tail", "") or blog.tail(),
            hint=exc.hint
            or f"see the log at {blog.path}; pass --keep-build-dir to keep {build_dir}",
        ) from exc
    except OSError as exc:
        ctx.reporter.task_finished(task, outcome="failed")
        blog.note(f"FAILED: {exc}")
        raise BuildError(
            f"building a wheel of {job.package.name} ({job.package.location}) failed: {exc}",
            log_file=blog.path,
            output_tail=blog.tail(),
            hint=f"see the log at {blog.path}; pass --keep-build-dir to keep {build_dir}",
        ) from exc
    finally:
        if not options.keep_build_dir:
            shutil.rmtree(build_dir, ignore_errors=True)
    ctx.reporter.task_finished(task, outcome="built")
    return result


def _build_fresh(
    job: WheelBuildJob,
    ctx: _Context,
    override: PackageOverride,
    key: str,
    any_key: str,
    build_dir: Path,
    blog: _BuildLog,
) -> BuiltWheel:
    options, target = ctx.options, ctx.target
    pkg = job.package
    blog.note(f"package {pkg.name} {pkg.version or '(dynamic version)'} from {pkg.location}")
    blog.note(f"target {target.subdir}, python {target.version}; cache key {key}")
    project = _stage_source(job, build_dir, options)
    for ref in override.patches:
        blog.note(f"applying patch {ref.label}")
        applied = apply_patch(ref.path, project, label=ref.label)
        for rel, off in zip(applied.changed, applied.offsets, strict=False):
            if off:
                blog.note(f"  {rel}: hunk applied at an offset of {off} lines")
    if override.env:
        blog.note("override env: " + ", ".join(f"{k}={v}" for k, v in sorted(override.env.items())))
    requires, backend, backend_path = _build_system(project, pkg.name)
    blog.note(f"backend {backend}; requires {requires}")
    base_python = target.python(ctx.loop)
    if options.build_isolation:
        env = create_isolated_env(base_python, build_dir / "env", log_file=build_dir / "venv.log")
        blog.append_file(build_dir / "venv.log")
    else:
        env = environment_of(base_python)
    blog.note(f"build python {env.info.version} at {env.python} (isolated: {env.isolated})")
    installed = _install_requirements(requires, env=env, ctx=ctx, job=job, blog=blog)
    base_env, overlay = _hook_env(override, env)
    steps = iter(range(1, 1000))
    current = {"hook": ""}

    def runner(
        cmd: Sequence[str], cwd: str | None = None, extra_environ: Mapping[str, str] | None = None
    ) -> None:
        step_log = build_dir / f"hook-{next(steps):02d}.log"
        try:
            proc.run(
                cmd,
                cwd=Path(cwd) if cwd else None,
                env=base_env,
                env_overlay={**overlay, **(extra_environ or {})},
                log_file=step_log,
                stream=options.verbosity >= 3,
                timeout=options.timeout,
                what=f"{current['hook']} of {pkg.name}",
                cancel=ctx.cancelled,
            )
        finally:
            blog.append_file(step_log)

    hooks = pyproject_hooks.BuildBackendHookCaller(
        str(project),
        backend,
        backend_path=backend_path,
        runner=runner,
        python_executable=str(env.python),
    )
    config: dict[str, Any] = override.config_settings_dict() or {}
    out_dir = build_dir / "dist"
    out_dir.mkdir()
    try:
        current["hook"] = "get_requires_for_build_wheel"
        extra = list(hooks.get_requires_for_build_wheel(config or None))
        blog.note(f"backend asks for {extra}")
        installed += _install_requirements(
            [r for r in extra if r not in requires], env=env, ctx=ctx, job=job, blog=blog
        )
        current["hook"] = "build_wheel"
        returned = hooks.build_wheel(str(out_dir), config or None)
    except CommandError as exc:
        raise BuildError(
            f"the {current['hook']} hook failed (exit code {exc.returncode})",
            log_file=blog.path,
            output_tail=blog.tail(),
        ) from exc
    except pyproject_hooks.BackendUnavailable as exc:
        raise BuildError(
            f"the build backend {backend!r} cannot be imported: {exc}",
            log_file=blog.path,
            output_tail=(exc.traceback or "").rstrip()[-4000:] or blog.tail(),
        ) from exc
    except (pyproject_hooks.HookMissing, pyproject_hooks.BackendInvalid) as exc:
        raise BuildError(f"the build backend {backend!r} is unusable: {exc}") from exc
    wheel = find_built_wheel(out_dir, returned, package=pkg.name)
    info = check_wheel(
        wheel,
        package=pkg.name,
        locked_version=pkg.version,
        python_version=target.version,
        subdir=target.subdir,
        virtual_packages=target.virtual_packages,
        foreign=not target.is_host,
    )
    builder: dict[str, object] = {
        "frontend": _frontend(),
        "backend": backend,
        "build-requires": sorted(installed) if env.isolated else sorted(requires),
        "python": env.info.version,
        "isolated": env.isolated,
        "platform": target.subdir,
    }
    if not override.empty:
        builder["overrides"] = override.provenance()
    blog.note(f"built {wheel.name}")
    final = wheel
    if ctx.cache is not None:
        meta = {"builder": builder, "name": info.name, "version": info.version}
        stored = ctx.cache.store(key, [wheel], meta)
        if info.pure:
            ctx.cache.store(any_key, [wheel], meta)
        final = stored.files[0]
    else:
        kept = options.work_dir / "wheels" / target.subdir / job.name
        kept.mkdir(parents=True, exist_ok=True)
        final = kept / wheel.name
        shutil.copyfile(wheel, final)
    return BuiltWheel(
        package=pkg.name,
        path=final,
        file_name=final.name,
        name=info.name,
        version=info.version,
        sha256=file_sha256(final),
        size=final.stat().st_size,
        from_cache=False,
        provenance={"origin": dict(job.origin), "builder": builder},
        log_file=blog.path,
    )


# -- many builds --------------------------------------------------------------------------------


async def build_wheels(
    jobs: Sequence[WheelBuildJob],
    *,
    target: TargetInterpreter,
    options: WheelBuildOptions,
    reporter: Reporter | None = None,
    client: httpx.AsyncClient | None = None,
) -> dict[str, BuiltWheel]:
    """Build (or take from the cache) a wheel for every job; keyed by the locked name.

    Runs ``options.jobs`` builds at a time in worker threads; index requests and downloads
    of build requirements run on the caller's event loop through ``client`` (made here and
    closed when not given). The first failure stops jobs not yet started, waits for the
    running ones and is raised (:class:`BuildError`, exit code 4; or
    :class:`UnsupportedPackageError` for a native wheel on a foreign target).
    """
    reporter = reporter or NullReporter()
    if not jobs:
        return {}
    names = [j.name for j in jobs]
    if len(set(names)) != len(names):
        raise ValueError("build_wheels: one job per package name")
    loop = asyncio.get_running_loop()
    own_client = client is None
    http = client or make_client()
    ctx = _Context(
        target=target,
        options=options,
        reporter=reporter,
        loop=loop,
        client=http,
        cache=WheelCache(options.cache_root) if options.cache_root is not None else None,
    )
    reporter.stage_started("build-wheels", items=len(jobs))
    executor = concurrent.futures.ThreadPoolExecutor(
        max_workers=max(1, options.jobs), thread_name_prefix="wheel-build"
    )
    # pyproject-hooks re-raises the backends' warnings in this process: collect them for
    # the log instead of letting them reach the user's terminal (or a test's error filter).
    caught = warnings.catch_warnings(record=True)
    recorded = caught.__enter__()
    warnings.simplefilter("always", pyproject_hooks.BuildBackendWarning)
    try:
        futures = {loop.run_in_executor(executor, _build_one, job, ctx): job for job in jobs}
        try:
            done, pending = await asyncio.wait(futures, return_when=asyncio.FIRST_EXCEPTION)
        except asyncio.CancelledError:
            # Ctrl-C: stop the running hooks and the jobs not started, and wait for the
            # workers with the loop still running -- they may be waiting for a coroutine on
            # it (run_sync); blocking the loop in executor.shutdown(wait=True) deadlocks.
            ctx.cancelled.set()
            await _settle(list(futures))
            raise
        failed = [f for f in done if f.exception() is not None]
        if failed:
            ctx.cancelled.set()
            if pending:
                await asyncio.wait(pending)
            order = {id(j): i for i, j in enumerate(jobs)}
            first = min(
                (f for f in futures if f.done() and f.exception() is not None),
                key=lambda f: order[id(futures[f])],
            )
            real = [
                f
                for f in futures
                if f.done()
                and f.exception() is not None
                and "another build failed" not in str(f.exception())
            ]
            if real:
                first = min(real, key=lambda f: order[id(futures[f])])
            exc = first.exception()
            assert exc is not None
            raise exc
        return {futures[f].package.name: f.result() for f in futures}
    finally:
        # Every worker has ended on the paths above; never block the loop here (a second
        # Ctrl-C cancels _settle, and a worker may still wait for this loop).
        executor.shutdown(wait=False, cancel_futures=True)
        caught.__exit__(None, None, None)
        for w in recorded:
            if issubclass(w.category, pyproject_hooks.BuildBackendWarning):
                log.info("build backend warning: %s", w.message)
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        reporter.stage_finished("build-wheels")
        if own_client:
            await http.aclose()


async def _settle(futures: Sequence[asyncio.Future[BuiltWheel]]) -> None:
    """Wait until every worker has ended; their results and errors are dropped."""
    running = [f for f in futures if not f.done()]
    if running:
        await asyncio.wait(running)
    for f in futures:
        if not f.cancelled():
            f.exception()  # retrieved: no "exception was never retrieved" at exit


def build_wheels_sync(
    jobs: Sequence[WheelBuildJob],
    *,
    target: TargetInterpreter,
    options: WheelBuildOptions,
    reporter: Reporter | None = None,
) -> dict[str, BuiltWheel]:
    """:func:`build_wheels` for callers without an event loop."""
    return asyncio.run(build_wheels(jobs, target=target, options=options, reporter=reporter))


_SOURCE_KINDS: dict[str, SourceKind] = {
    "sdist": "sdist",
    "local-sdist": "sdist",
    "git": "git",
    "source-tree": "source-tree",
}


def describe_build(
    package: PypiPackage,
    *,
    overrides: Overrides,
    subdir: str,
    python_version: str | None,
    cache_root: Path | None = None,
    isolated: bool = True,
    environment_fingerprint: str = "",
    exclude: Sequence[Path] = (),
) -> dict[str, object]:
    """What ``inspect`` shows for a PyPI entry that will be built.

    No I/O without ``cache_root``; with it, ``cached`` tells whether the wheel cache already
    holds the wheel (the key is :func:`cache_key`'s: the source is hashed - a local sdist or a
    source tree is read, a git source is its commit - never fetched or checked out; ``None``
    when it cannot be known without fetching or without the locked python's version).
    """
    kind = _SOURCE_KINDS.get(package.kind)
    override = overrides.for_package(package.name, subdir=subdir, python_version=python_version)
    doc: dict[str, object] = {
        "build": f"{kind or package.kind} -> wheel",
        "source": package.git.short if package.git is not None else package.location,
    }
    if not override.empty:
        doc["overrides"] = {
            "env": sorted(override.env),
            "patches": [p.label for p in override.patches],
            "config-settings": sorted(override.config_settings),
        }
    if cache_root is not None:
        source = source_hash(package, exclude=exclude) if kind is not None else None
        cached: bool | None = None
        if kind is not None and source is not None and python_version is not None:
            cache = WheelCache(cache_root)
            cached = any(
                cache.contains(
                    wheel_cache_key(
                        kind=kind,
                        source=source,
                        python_version=python_version,
                        platform=platform,
                        override_digest=override.digest(),
                        isolated=isolated,
                        environment_fingerprint=environment_fingerprint,
                    )
                )
                for platform in (subdir, "any")
            )
        doc["cached"] = cached
    return doc
