"""A tiny, stdlib-only PEP 517 build backend for the world's PyPI projects.

Copied verbatim into every world project as ``world_backend.py`` and named in its
``pyproject.toml``::

    [build-system]
    requires = []
    build-backend = "world_backend"
    backend-path = ["."]

so an isolated build needs no index. It reads ``[project]`` (name, version or
``dynamic = ["version"]`` with a ``VERSION`` file, dependencies, optional-dependencies,
requires-python, scripts) and ``[tool.world-backend]``:

- ``packages``: the import packages to ship (directories next to ``pyproject.toml``);
- ``flavor-env``: an environment variable that must be set at build time; its value is
  written into ``<first package>/_flavor.py`` as ``FLAVOR = "<value>"``.

Wheels and sdists are deterministic: sorted entries, fixed permissions, timestamps from
``SOURCE_DATE_EPOCH`` (default 2024-01-01).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import os
import re
import tarfile
import time
import tomllib
import zipfile
from pathlib import Path
from typing import Any

DEFAULT_EPOCH = 1_704_067_200
SDIST_FILES = ("pyproject.toml", "world_backend.py", "VERSION", "README.md")


def _epoch() -> int:
    return int(os.environ.get("SOURCE_DATE_EPOCH", DEFAULT_EPOCH))


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _dist_name(name: str) -> str:
    return _normalize(name).replace("-", "_")


class Project:
    """The metadata of the project rooted at ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        doc = tomllib.loads((root / "pyproject.toml").read_text())
        project: dict[str, Any] = doc["project"]
        self.tool: dict[str, Any] = doc.get("tool", {}).get("world-backend", {})
        self.name: str = project["name"]
        if "version" in project:
            self.version: str = project["version"]
        else:
            self.version = (root / "VERSION").read_text().strip()
        self.summary: str = project.get("description", "")
        self.requires_python: str | None = project.get("requires-python")
        self.dependencies: list[str] = list(project.get("dependencies", []))
        self.extras: dict[str, list[str]] = dict(project.get("optional-dependencies", {}))
        self.scripts: dict[str, str] = dict(project.get("scripts", {}))
        self.packages: list[str] = list(self.tool.get("packages", [_dist_name(self.name)]))

    @property
    def dist(self) -> str:
        return f"{_dist_name(self.name)}-{self.version}"

    def metadata(self) -> str:
        lines = [
            "Metadata-Version: 2.1",
            f"Name: {self.name}",
            f"Version: {self.version}",
        ]
        if self.summary:
            lines.append(f"Summary: {self.summary}")
        if self.requires_python:
            lines.append(f"Requires-Python: {self.requires_python}")
        lines += [f"Requires-Dist: {d}" for d in self.dependencies]
        for extra, deps in sorted(self.extras.items()):
            lines.append(f"Provides-Extra: {extra}")
            lines += [f'Requires-Dist: {d}; extra == "{extra}"' for d in deps]
        return "\n".join(lines) + "\n"

    def module_files(self) -> dict[str, bytes]:
        """Every file to ship in the wheel, by archive path (after checks and flavoring)."""
        files: dict[str, bytes] = {}
        for package in self.packages:
            pkg_dir = self.root / package
            if not pkg_dir.is_dir():
                raise RuntimeError(f"{self.name}: package directory {package!r} not found")
            for path in sorted(pkg_dir.rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                    files[path.relative_to(self.root).as_posix()] = path.read_bytes()
        env_var = self.tool.get("flavor-env")
        if env_var:
            value = os.environ.get(env_var)
            if not value:
                raise RuntimeError(f"{self.name}: set {env_var} to build this project")
            files[f"{self.packages[0]}/_flavor.py"] = f"FLAVOR = {value!r}\n".encode()
        return files


def _zip_write(zf: zipfile.ZipFile, name: str, data: bytes, date: tuple[int, ...]) -> None:
    info = zipfile.ZipInfo(name, date_time=date[:6])  # type: ignore[arg-type]
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, data)


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def wheel_from(root: Path, wheel_directory: Path) -> str:
    """Build the wheel of the project at ``root`` into ``wheel_directory``; return its name."""
    project = Project(root)
    info = f"{project.dist}.dist-info"
    files = dict(sorted(project.module_files().items()))
    files[f"{info}/METADATA"] = project.metadata().encode()
    files[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: world_backend\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    if project.scripts:
        body = "".join(f"{k} = {v}\n" for k, v in sorted(project.scripts.items()))
        files[f"{info}/entry_points.txt"] = ("[console_scripts]\n" + body).encode()
    record = [_record_line(name, data) for name, data in files.items()]
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel_name = f"{project.dist}-py3-none-any.whl"
    date = time.gmtime(max(_epoch(), 315_532_800))
    wheel_directory.mkdir(parents=True, exist_ok=True)
    tmp = wheel_directory / (wheel_name + ".part")
    with zipfile.ZipFile(tmp, "w") as zf:
        for name, data in files.items():
            _zip_write(zf, name, data, tuple(date))
    tmp.replace(wheel_directory / wheel_name)
    return wheel_name


def sdist_from(root: Path, sdist_directory: Path) -> str:
    """Build the sdist of the project at ``root``; return its file name."""
    project = Project(root)
    files: dict[str, bytes] = {}
    for name in SDIST_FILES:
        if (root / name).is_file():
            files[name] = (root / name).read_bytes()
    for pkg_dir in sorted(p.parent for p in root.glob("*/__init__.py")):
        if pkg_dir.is_dir():
            for path in sorted(pkg_dir.rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                    files[path.relative_to(root).as_posix()] = path.read_bytes()
    files["PKG-INFO"] = project.metadata().encode()
    base = project.dist
    sdist_name = f"{base}.tar.gz"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = sorted({str(Path(base, n).parent) for n in files} | {base})
        entries = [(d, None) for d in dirs] + [(f"{base}/{n}", d) for n, d in files.items()]
        for name, data in sorted(entries, key=lambda e: e[0]):
            info = tarfile.TarInfo(name)
            info.mtime = _epoch()
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if data is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.mode = 0o644
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    sdist_directory.mkdir(parents=True, exist_ok=True)
    tmp = sdist_directory / (sdist_name + ".part")
    with tmp.open("wb") as raw, gzip.GzipFile("", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write(buf.getvalue())
    tmp.replace(sdist_directory / sdist_name)
    return sdist_name


# -- PEP 517 hooks -----------------------------------------------------------------------


def get_requires_for_build_wheel(config_settings: dict[str, Any] | None = None) -> list[str]:
    return []


def get_requires_for_build_sdist(config_settings: dict[str, Any] | None = None) -> list[str]:
    return []


def prepare_metadata_for_build_wheel(
    metadata_directory: str, config_settings: dict[str, Any] | None = None
) -> str:
    project = Project(Path.cwd())
    info = Path(metadata_directory) / f"{project.dist}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(project.metadata())
    return info.name


def build_wheel(
    wheel_directory: str,
    config_settings: dict[str, Any] | None = None,
    metadata_directory: str | None = None,
) -> str:
    return wheel_from(Path.cwd(), Path(wheel_directory))


def build_sdist(sdist_directory: str, config_settings: dict[str, Any] | None = None) -> str:
    return sdist_from(Path.cwd(), Path(sdist_directory))
