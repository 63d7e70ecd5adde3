"""A package index of build requirements, for the builds that need some (served on 127.0.0.1).

Written by :func:`write_buildreq_index` under one root and served by a
:class:`testworld.server.WorldServer`:

===========================  ===============================================================
path                         what
===========================  ===============================================================
``files/``                   the distributions below
``simple/<name>/``           PEP 503 HTML pages (``#sha256=``, ``data-requires-python``)
``json/<name>/``             the same as PEP 691 JSON pages only (``index.json``)
``links/``                   a flat find-links page with :data:`LINKED` only (not in an index)
``private/simple/<name>/``   an index of :data:`PRIVATE` only, its files in ``private/files/``
                             (the tests put it behind basic auth)
===========================  ===============================================================

Distributions (each an importable module ``buildreq_<x>`` with ``__version__``):

- ``buildreq-a`` 1.0 needs ``buildreq-b<2``, 2.0 needs ``buildreq-b>=2``; ``buildreq-b`` 1.0
  and 2.0; ``buildreq-c`` 1.0 needs ``buildreq-b<2``: requiring ``a`` and ``c`` resolves only
  by backtracking, to ``a==1.0 b==1.0 c==1.0`` (wheels);
- ``buildreq-sdistonly`` 1.0: an sdist only (world backend), so the installer must build it;
- ``buildreq-linked`` 1.0: a wheel on the find-links page only;
- ``buildreq-private`` 1.0: a wheel in the private index only.

:func:`needing_project` writes a project whose in-tree backend imports its build requirements
(so a build without them fails) and records their versions in ``<module>/_built_with.py``;
:func:`sdist_of` packs such a project as an sdist.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

from testworld import pep517_backend
from testworld.layout import PypiDist
from testworld.pypi import ProjectDef, write_project, write_simple_index

WHEELS: tuple[ProjectDef, ...] = (
    ProjectDef("buildreq-a", "1.0", dependencies=("buildreq-b<2",)),
    ProjectDef("buildreq-a", "2.0", dependencies=("buildreq-b>=2",)),
    ProjectDef("buildreq-b", "1.0"),
    ProjectDef("buildreq-b", "2.0"),
    ProjectDef("buildreq-c", "1.0", dependencies=("buildreq-b<2",)),
)
SDIST_ONLY = ProjectDef("buildreq-sdistonly", "1.0")
LINKED = ProjectDef("buildreq-linked", "1.0")
PRIVATE = ProjectDef("buildreq-private", "1.0")


@dataclass(frozen=True)
class BuildreqIndex:
    root: Path
    dists: tuple[PypiDist, ...]

    def simple(self, server_url: str) -> str:
        return f"{server_url}/simple"

    def json(self, server_url: str) -> str:
        return f"{server_url}/json"

    def links(self, server_url: str) -> str:
        return f"{server_url}/links/"

    def private(self, server_url: str) -> str:
        return f"{server_url}/private/simple"


def _record(d: ProjectDef, path: Path, kind: str) -> PypiDist:
    return PypiDist(
        name=d.name,
        version=d.version or d.dynamic_version,
        kind=kind,
        file_name=path.name,
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        size=path.stat().st_size,
        requires_dist=d.dependencies,
        requires_python=d.requires_python,
    )


def _build(d: ProjectDef, root: Path, files: Path, kind: str) -> PypiDist:
    tree = write_project(d, root / "projects" / f"{d.name}-{d.version}")
    make = pep517_backend.wheel_from if kind == "wheel" else pep517_backend.sdist_from
    return _record(d, files / make(tree, files), kind)


def write_json_index(directory: Path, dists: list[PypiDist], files_href: str) -> None:
    """PEP 691 project pages ``<directory>/<name>/index.json`` (no HTML)."""
    by_project: dict[str, list[PypiDist]] = {}
    for d in dists:
        by_project.setdefault(d.normalized_name, []).append(d)
    for name, group in by_project.items():
        doc = {
            "meta": {"api-version": "1.0"},
            "name": name,
            "files": [
                {
                    "filename": d.file_name,
                    "url": f"{files_href}/{d.file_name}",
                    "hashes": {"sha256": d.sha256},
                    "requires-python": d.requires_python,
                }
                for d in sorted(group, key=lambda x: x.file_name)
            ],
        }
        (directory / name).mkdir(parents=True, exist_ok=True)
        (directory / name / "index.json").write_text(json.dumps(doc, indent=1))


def write_links_page(page_dir: Path, dists: list[PypiDist], files_href: str) -> None:
    """A flat find-links page: one ``<a>`` per file."""
    rows = "".join(
        f'<a href="{html.escape(files_href)}/{d.file_name}#sha256={d.sha256}">{d.file_name}</a>\n'
        for d in dists
    )
    page_dir.mkdir(parents=True, exist_ok=True)
    (page_dir / "index.html").write_text(f"<!DOCTYPE html>\n<html><body>\n{rows}</body></html>\n")


def write_buildreq_index(root: Path) -> BuildreqIndex:
    """Write the index described in the module docstring under ``root``."""
    files = root / "files"
    indexed = [_build(d, root, files, "wheel") for d in WHEELS]
    indexed.append(_build(SDIST_ONLY, root, files, "sdist"))
    linked = [_build(LINKED, root, files, "wheel")]
    private = [_build(PRIVATE, root, root / "private" / "files", "wheel")]
    write_simple_index(root / "simple", indexed)
    write_json_index(root / "json", indexed, "../../files")
    write_links_page(root / "links", linked, "../files")
    write_simple_index(root / "private" / "simple", private)
    return BuildreqIndex(root, tuple(indexed + linked + private))


NEEDS_BACKEND = '''\
"""Imports every build requirement (a build without them fails), records their versions."""
import importlib
import pathlib

from world_backend import *  # noqa: F403
import world_backend

MODULES = @MODULES@
PACKAGE = @PACKAGE@


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    versions = {m: importlib.import_module(m).__version__ for m in MODULES}
    out = pathlib.Path(PACKAGE) / "_built_with.py"
    out.write_text(f"BUILT_WITH = {versions!r}\\n")
    return world_backend.build_wheel(wheel_directory, config_settings, metadata_directory)
'''


def needing_project(
    dest: Path, name: str, requires: tuple[str, ...], modules: tuple[str, ...]
) -> Path:
    """A project ``name`` 1.0 whose build needs ``requires`` and imports ``modules``."""
    d = ProjectDef(name, "1.0")
    write_project(d, dest)
    (dest / "needs_backend.py").write_text(
        NEEDS_BACKEND.replace("@MODULES@", repr(modules)).replace("@PACKAGE@", repr(d.module))
    )
    text = (dest / "pyproject.toml").read_text()
    requires_toml = "[" + ", ".join(json.dumps(r) for r in requires) + "]"
    text = text.replace("requires = []", f"requires = {requires_toml}", 1)
    text = text.replace('build-backend = "world_backend"', 'build-backend = "needs_backend"', 1)
    (dest / "pyproject.toml").write_text(text)
    init = dest / d.module / "__init__.py"
    init.write_text(
        init.read_text()
        + "\n\ndef built_with() -> dict[str, str]:\n"
        + f"    from {d.module}._built_with import BUILT_WITH\n\n    return BUILT_WITH\n"
    )
    return dest


def sdist_of(project: Path, dest: Path, name: str, version: str = "1.0") -> Path:
    """A deterministic ``<name>-<version>.tar.gz`` of every file of ``project``."""
    dest.mkdir(parents=True, exist_ok=True)
    base = f"{name.replace('-', '_')}-{version}"
    out = dest / f"{base}.tar.gz"
    with (
        out.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w") as tf,
    ):
        for path in sorted(project.rglob("*")):
            if not path.is_file() or "__pycache__" in path.parts:
                continue
            info = tarfile.TarInfo(f"{base}/{path.relative_to(project).as_posix()}")
            data = path.read_bytes()
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tf.addfile(info, io.BytesIO(data))
    return out
