"""Find the workspace (manifest and ``pixi.lock``), and read package manifests' build backends.

``MANIFEST_PATH`` may be a ``pixi.toml``, a ``pyproject.toml`` with ``[tool.pixi]``, a
``pixi.lock``, or a directory. Without one, the search starts at the working directory and goes
upwards, like pixi. A ``pixi.toml`` that declares only a ``[package]`` is a package manifest, not
a workspace: the search continues above it. A directory holding a ``pixi.lock`` but no manifest
is accepted (``manifest`` is then ``None``); only the lock matters for packing.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from pixi_pack_src import tomlfile
from pixi_pack_src.errors import LockfileError, UsageError, WorkspaceError

log = logging.getLogger(__name__)

LOCK_NAME = "pixi.lock"
PIXI_MANIFEST = "pixi.toml"
PYPROJECT = "pyproject.toml"
_MANIFEST_HINT = "pass a pixi.toml, a pyproject.toml with [tool.pixi], or the workspace directory"


@dataclass(frozen=True)
class Workspace:
    """A pixi workspace: its root directory, its manifest (if any) and its lock file."""

    root: Path
    manifest: Path | None
    lock_path: Path


@dataclass(frozen=True)
class BackendSpec:
    """A package's ``[package.build.backend]`` (or inline ``[package.build] backend = {...}``)."""

    name: str
    version: str | None  # the spec as written: "==0.5.0", ">=0.1", "*", or None (any)
    channels: tuple[str, ...]
    manifest: Path
    version_line: int | None  # 1-based line of the ``version`` key, when there is one
    backend_line: int | None = None  # 1-based line declaring the backend (table or inline)
    build: str | None = None  # optional build-string spec
    channel: str | None = None  # optional channel in the spec itself
    workspace: bool = False  # ``workspace = true``: inherited from [workspace.dependencies]
    deprecated_channels: bool = False  # channels came from the deprecated [package.build]

    @property
    def is_pinned(self) -> bool:
        """An exact ``==x.y.z`` pin (what docs/pixi-build.md §6 requires)."""
        if self.version is None:
            return False
        spec = self.version.strip()
        if not spec.startswith("=="):
            return False
        rest = spec[2:].strip()
        return bool(rest) and not any(c in rest for c in "*,|<>!= ")

    @property
    def where(self) -> str:
        """``manifest:line`` of the version key (or of the backend) for messages."""
        line = self.version_line or self.backend_line
        return f"{self.manifest}:{line}" if line else str(self.manifest)


def locate_workspace(manifest_path: Path | None = None) -> Workspace:
    """Resolve ``MANIFEST_PATH`` (or the working directory) to a :class:`Workspace`."""
    if manifest_path is None:
        start = Path.cwd()
        found = _search_upwards(start)
        if found is None:
            raise WorkspaceError(
                f"no pixi workspace found in {start} or any parent directory", hint=_MANIFEST_HINT
            )
        return _with_lock(*found)

    path = Path(manifest_path).absolute()
    if not path.exists():
        # a MANIFEST_PATH that names nothing is a usage error (exit 2), as for any argument
        raise UsageError(f"{manifest_path} does not exist", hint=_MANIFEST_HINT)
    if path.is_dir():
        found = _search_upwards(path)
        if found is None:
            raise WorkspaceError(
                f"no pixi.toml, pyproject.toml with [tool.pixi] or pixi.lock in {manifest_path}",
                hint=_MANIFEST_HINT,
            )
        return _with_lock(*found)
    if path.name == LOCK_NAME or path.suffix == ".lock":
        return Workspace(root=path.parent, manifest=_manifest_in(path.parent), lock_path=path)
    kind = _manifest_kind(path)
    if kind == "workspace":
        return _with_lock(path.parent, path)
    if kind == "package":
        found = _search_upwards(path.parent.parent)
        if found is not None:
            return _with_lock(*found)
        raise WorkspaceError(
            f"{manifest_path} is a package manifest and no workspace was found above it",
            hint=_MANIFEST_HINT,
        )
    raise WorkspaceError(
        f"{manifest_path} is not a pixi manifest"
        + (" (no [tool.pixi] table)" if path.name == PYPROJECT else " (no [workspace] table)"),
        hint=_MANIFEST_HINT,
    )


def read_build_backend(package: Path) -> BackendSpec | None:
    """The backend spec of a package directory or manifest; ``None`` when it declares none.

    Reads ``pixi.toml`` (``[package.build.backend]``) or ``pyproject.toml``
    (``[tool.pixi.package.build.backend]``); a directory with neither (e.g. only a
    ``recipe.yaml``) has no spec we can read.
    """
    manifest = package
    if package.is_dir():
        for name in (PIXI_MANIFEST, PYPROJECT):
            candidate = package / name
            if candidate.is_file() and _package_table(candidate, _load_toml(candidate)):
                manifest = candidate
                break
        else:
            return None
    elif not package.is_file():
        raise WorkspaceError(
            f"package manifest {package} does not exist", hint="check the package's path"
        )
    data = _load_toml(manifest)
    pkg = _package_table(manifest, data)
    if pkg is None:
        return None
    build = pkg.get("build")
    if not isinstance(build, dict):
        return None
    backend = build.get("backend")
    if not isinstance(backend, dict):
        return None
    backend_name = backend.get("name")
    if not isinstance(backend_name, str):
        raise WorkspaceError(
            f"{manifest}: the build backend has no `name`",
            hint='declare it: [package.build.backend] name = "pixi-build-python"',
        )
    version = backend.get("version")
    channels_value = backend.get("channels")
    deprecated = False
    if channels_value is None and "channels" in build:
        channels_value = build["channels"]
        deprecated = True
    channels = tuple(str(c) for c in channels_value) if isinstance(channels_value, list) else ()
    prefix = ("tool", "pixi") if manifest.name == PYPROJECT else ()
    table = (*prefix, "package", "build", "backend")
    text = manifest.read_text(encoding="utf-8")
    build_value = backend.get("build")
    channel_value = backend.get("channel")
    return BackendSpec(
        name=backend_name,
        version=str(version) if isinstance(version, str) else None,
        channels=channels,
        manifest=manifest,
        version_line=_key_line(text, table, "version") if version is not None else None,
        backend_line=_key_line(text, table[:-1], "backend") or _table_line(text, table),
        build=build_value if isinstance(build_value, str) else None,
        channel=channel_value if isinstance(channel_value, str) else None,
        workspace=backend.get("workspace") is True,
        deprecated_channels=deprecated,
    )


# --------------------------------------------------------------------------------------------


def _with_lock(root: Path, manifest: Path | None) -> Workspace:
    lock = root / LOCK_NAME
    if not lock.is_file():
        shown = manifest if manifest is not None else root
        raise LockfileError(f"no pixi.lock next to {shown}", hint=f"run `pixi lock` in {root}")
    return Workspace(root=root, manifest=manifest, lock_path=lock)


def _search_upwards(start: Path) -> tuple[Path, Path | None] | None:
    """The first directory from ``start`` upwards holding a workspace manifest (or a lock)."""
    for directory in (start, *start.parents):
        manifest = _manifest_in(directory)
        if manifest is not None:
            return directory, manifest
        if (directory / LOCK_NAME).is_file():
            log.debug("using %s without a workspace manifest", directory / LOCK_NAME)
            return directory, None
    return None


def _manifest_in(directory: Path) -> Path | None:
    for name in (PIXI_MANIFEST, PYPROJECT):
        candidate = directory / name
        if candidate.is_file() and _manifest_kind(candidate) == "workspace":
            return candidate
    return None


def _manifest_kind(path: Path) -> str | None:
    """``"workspace"``, ``"package"`` (a package-only pixi manifest) or ``None``."""
    data = _load_toml(path)
    if path.name == PYPROJECT:
        tool = data.get("tool")
        pixi = tool.get("pixi") if isinstance(tool, dict) else None
        if not isinstance(pixi, dict):
            return None
        data = pixi
    if isinstance(data.get("workspace"), dict) or isinstance(data.get("project"), dict):
        return "workspace"
    if isinstance(data.get("package"), dict):
        return "package"
    return None


def _package_table(path: Path, data: dict[str, object]) -> dict[str, object] | None:
    if path.name == PYPROJECT:
        tool = data.get("tool")
        pixi = tool.get("pixi") if isinstance(tool, dict) else None
        data = pixi if isinstance(pixi, dict) else {}
    pkg = data.get("package")
    return pkg if isinstance(pkg, dict) else None


def _load_toml(path: Path) -> dict[str, object]:
    if path.name not in (PIXI_MANIFEST, PYPROJECT) and path.suffix != ".toml":
        # Named by the user, but not a manifest's name: a parse failure means "wrong file".
        try:
            return tomlfile.read(path, error=WorkspaceError)
        except WorkspaceError as exc:
            if not exc.message.startswith("cannot "):
                raise
            raise WorkspaceError(
                f"{path} is not a pixi manifest (neither TOML nor a pixi.lock)",
                hint=_MANIFEST_HINT,
            ) from exc
    return tomlfile.read(path, error=WorkspaceError)


_HEADER_RE = re.compile(r"^\[\[?\s*(?P<key>[^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY_RE = re.compile(r"^(?P<key>[A-Za-z0-9_\-.\"' ]+?)\s*=")


def _split_key(key: str) -> tuple[str, ...]:
    return tuple(part.strip().strip("\"'") for part in key.split("."))


def _table_line(text: str, table: tuple[str, ...]) -> int | None:
    for lineno, line in enumerate(text.splitlines(), 1):
        match = _HEADER_RE.match(line.strip())
        if match and _split_key(match["key"]) == table:
            return lineno
    return None


def _key_line(text: str, table: tuple[str, ...], key: str) -> int | None:
    """The line setting ``table.key``: under a header, as a dotted key, or in an inline table."""
    current: tuple[str, ...] = ()
    inline = re.compile(rf"[{{,]\s*{re.escape(key)}\s*=")
    for lineno, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        header = _HEADER_RE.match(stripped)
        if header:
            current = _split_key(header["key"])
            continue
        match = _KEY_RE.match(stripped)
        if not match:
            continue
        full = current + _split_key(match["key"])
        if full == (*table, key):
            return lineno
        if full == table[: len(full)] and inline.search(stripped):
            return lineno
    return None
