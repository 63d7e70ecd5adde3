"""The PyPI side of the world: projects, wheels, sdists, a PEP 503 simple index, git repos.

Projects (source trees under ``pypi/projects/<name>/``, each with the in-tree backend
:mod:`testworld.pep517_backend` as ``world_backend.py``; ``requires = []``, so building
needs no index):

================  =======  ======  ======  ==============================================
project           version  wheel   sdist   notes
================  =======  ======  ======  ==============================================
worldpkg-a        1.0.0    yes     yes     console script ``worldpkg-a``
worldpkg-b        2.0.1    yes     yes     requires ``worldpkg-a>=1.0``
worldpkg-c        0.5.0    yes     yes     ``requires-python >=3.9``; extra ``a``
worldpkg-flavor   1.0.0    no      yes     builds only after :data:`FLAVOR_PATCH` and with
                                           ``WORLDPKG_FLAVOR`` set (written into the module)
worldpkg-local    dynamic  no      no      a source tree; version from its ``VERSION`` file
================  =======  ======  ======  ==============================================

Each has an importable module (``worldpkg_a`` ...) with ``__version__`` and ``hello()``, so
``python -c "import worldpkg_a; print(worldpkg_a.hello())"`` prints
``hello from worldpkg-a 1.0.0``. Files are served from ``/pypi/files/``, the index from
``/pypi/simple/<name>/`` (links carry ``#sha256=`` and ``data-requires-python``).

Lock-entry helpers: :func:`index_entry`, :func:`local_entry`, :func:`tree_entry`,
:func:`git_entry` (for a repository made by :func:`testworld.gitrepo.make_git_repo`).
"""

from __future__ import annotations

import difflib
import hashlib
import html
from dataclasses import dataclass, field
from pathlib import Path

from testworld import pep517_backend
from testworld.gitrepo import GitRepo
from testworld.layout import PypiDist, World
from testworld.locks import PypiEntry

FLAVOR_ENV = "WORLDPKG_FLAVOR"
FLAVOR_PATCH = "worldpkg-flavor-fix-package-name.patch"
PROJECTS = ("worldpkg-a", "worldpkg-b", "worldpkg-c", "worldpkg-flavor", "worldpkg-local")
WHEELS = ("worldpkg-a", "worldpkg-b", "worldpkg-c")
SDISTS = ("worldpkg-a", "worldpkg-b", "worldpkg-c", "worldpkg-flavor")


@dataclass(frozen=True)
class ProjectDef:
    name: str
    version: str | None  # None: dynamic, from a VERSION file
    dependencies: tuple[str, ...] = ()
    requires_python: str | None = ">=3.8"
    extras: dict[str, tuple[str, ...]] = field(default_factory=dict)
    scripts: dict[str, str] = field(default_factory=dict)
    tool: str = ""  # extra lines for [tool.world-backend]
    dynamic_version: str = "0.9.0"

    @property
    def module(self) -> str:
        return self.name.replace("-", "_")


DEFS: dict[str, ProjectDef] = {
    "worldpkg-a": ProjectDef("worldpkg-a", "1.0.0", scripts={"worldpkg-a": "worldpkg_a:main"}),
    "worldpkg-b": ProjectDef("worldpkg-b", "2.0.1", dependencies=("worldpkg-a>=1.0",)),
    "worldpkg-c": ProjectDef(
        "worldpkg-c", "0.5.0", requires_python=">=3.9", extras={"a": ("worldpkg-a>=1.0",)}
    ),
    # Published with a typo in its package list: building fails until FLAVOR_PATCH is applied.
    "worldpkg-flavor": ProjectDef(
        "worldpkg-flavor",
        "1.0.0",
        tool=f'packages = ["worldpkg_flavour"]\nflavor-env = "{FLAVOR_ENV}"\n',
    ),
    "worldpkg-local": ProjectDef("worldpkg-local", None),
}


def _pyproject(d: ProjectDef) -> str:
    lines = ["[build-system]", "requires = []", 'build-backend = "world_backend"']
    lines += ['backend-path = ["."]', "", "[project]", f'name = "{d.name}"']
    if d.version is None:
        lines.append('dynamic = ["version"]')
    else:
        lines.append(f'version = "{d.version}"')
    lines.append(f'description = "{d.name}: a project of the offline test world"')
    if d.requires_python:
        lines.append(f'requires-python = "{d.requires_python}"')
    lines.append("dependencies = [" + ", ".join(f'"{x}"' for x in d.dependencies) + "]")
    if d.extras:
        lines += ["", "[project.optional-dependencies]"]
        lines += [f"{k} = [" + ", ".join(f'"{x}"' for x in v) + "]" for k, v in d.extras.items()]
    if d.scripts:
        lines += ["", "[project.scripts]"]
        lines += [f'{k} = "{v}"' for k, v in d.scripts.items()]
    lines += ["", "[tool.world-backend]", d.tool or f'packages = ["{d.module}"]\n']
    return "\n".join(lines).rstrip("\n") + "\n"


def _module_init(d: ProjectDef) -> str:
    version = repr(d.version) if d.version else "_version()"
    head = f'"""{d.name}: a project of the offline test world."""\n\n'
    if d.version is None:
        head += (
            "from pathlib import Path\n\n\ndef _version() -> str:\n"
            '    here = Path(__file__).resolve().parent.parent / "VERSION"\n'
            f'    return here.read_text().strip() if here.exists() else "{d.dynamic_version}"\n\n\n'
        )
    body = f"__version__ = {version}\n"
    if d.name == "worldpkg-flavor":
        body += "from worldpkg_flavor._flavor import FLAVOR\n"
        hello = 'return f"hello from worldpkg-flavor {__version__} ({FLAVOR})"'
    elif d.name == "worldpkg-b":
        body += "import worldpkg_a\n"
        hello = 'return f"hello from worldpkg-b {__version__} with " + worldpkg_a.hello()'
    else:
        hello = f'return f"hello from {d.name} {{__version__}}"'
    return (
        head
        + body
        + f"\n\ndef hello() -> str:\n    {hello}\n\n\n"
        + "def main() -> None:\n    print(hello())\n"
    )


def write_project(d: ProjectDef, dest: Path) -> Path:
    """Write the source tree of ``d`` (unpatched, as published) into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "pyproject.toml").write_text(_pyproject(d))
    (dest / "world_backend.py").write_text(Path(pep517_backend.__file__).read_text())
    (dest / "README.md").write_text(f"# {d.name}\n")
    if d.version is None:
        (dest / "VERSION").write_text(d.dynamic_version + "\n")
    pkg = dest / d.module
    pkg.mkdir(exist_ok=True)
    (pkg / "__init__.py").write_text(_module_init(d))
    return dest


def flavor_patch_text() -> str:
    """The fix for worldpkg-flavor's package list, as a ``patch -p1`` unified diff."""
    before = _pyproject(DEFS["worldpkg-flavor"])
    after = before.replace('packages = ["worldpkg_flavour"]', 'packages = ["worldpkg_flavor"]')
    diff = difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        "a/pyproject.toml",
        "b/pyproject.toml",
    )
    return "".join(diff)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _dist(d: ProjectDef, path: Path, kind: str) -> PypiDist:
    reqs = [*d.dependencies]
    for extra, deps in sorted(d.extras.items()):
        reqs += [f'{dep}; extra == "{extra}"' for dep in deps]
    return PypiDist(
        name=d.name,
        version=d.version or d.dynamic_version,
        kind=kind,
        file_name=path.name,
        sha256=_sha256(path),
        size=path.stat().st_size,
        requires_dist=tuple(reqs),
        requires_python=d.requires_python,
    )


@dataclass
class PypiSide:
    dists: list[PypiDist] = field(default_factory=list)
    projects: dict[str, str] = field(default_factory=dict)
    patches: dict[str, str] = field(default_factory=dict)


def build_pypi_side(root: Path) -> PypiSide:
    """Build projects, dists, the simple index and patches under ``root`` (``<world>/pypi``)."""
    side = PypiSide()
    files = root / "files"
    for name in PROJECTS:
        d = DEFS[name]
        tree = write_project(d, root / "projects" / name)
        side.projects[name] = f"pypi/projects/{name}"
        if name in SDISTS:
            sdist = files / pep517_backend.sdist_from(tree, files)
            side.dists.append(_dist(d, sdist, "sdist"))
        if name in WHEELS:
            wheel = files / pep517_backend.wheel_from(tree, files)
            side.dists.append(_dist(d, wheel, "wheel"))
    patches = root / "patches"
    patches.mkdir(parents=True, exist_ok=True)
    (patches / FLAVOR_PATCH).write_text(flavor_patch_text())
    side.patches[FLAVOR_PATCH] = f"pypi/patches/{FLAVOR_PATCH}"
    write_simple_index(root / "simple", side.dists)
    return side


def write_simple_index(simple: Path, dists: list[PypiDist]) -> None:
    """PEP 503 pages: ``simple/index.html`` and ``simple/<name>/index.html``."""
    by_project: dict[str, list[PypiDist]] = {}
    for d in dists:
        by_project.setdefault(d.normalized_name, []).append(d)
    simple.mkdir(parents=True, exist_ok=True)
    links = "".join(f'<a href="{n}/">{n}</a>\n' for n in sorted(by_project))
    (simple / "index.html").write_text(f"<!DOCTYPE html>\n<html><body>\n{links}</body></html>\n")
    for name, group in by_project.items():
        rows = []
        for d in sorted(group, key=lambda x: x.file_name):
            rp = (
                f' data-requires-python="{html.escape(d.requires_python)}"'
                if d.requires_python
                else ""
            )
            href = f"../../files/{d.file_name}#sha256={d.sha256}"
            rows.append(f'<a href="{href}"{rp}>{d.file_name}</a><br/>\n')
        page = f"<!DOCTYPE html>\n<html><body>\n<h1>Links for {name}</h1>\n{''.join(rows)}</body></html>\n"
        (simple / name).mkdir(exist_ok=True)
        (simple / name / "index.html").write_text(page)


# -- lock entries -------------------------------------------------------------------------


def index_entry(world: World, name: str, server_url: str, kind: str = "wheel") -> PypiEntry:
    """A ``pypi:`` entry for a served wheel/sdist, with sha256 and metadata."""
    d = world.dist(name, kind)
    return _entry(d, f"{server_url.rstrip('/')}/{d.rel_path}")


def local_entry(
    world: World, name: str, kind: str = "wheel", rel_dir: str = "dist"
) -> tuple[PypiEntry, dict[str, Path]]:
    """A local-file entry ``./<rel_dir>/<file>`` and the ``local_paths`` to put the file there."""
    d = world.dist(name, kind)
    rel = f"{rel_dir}/{d.file_name}"
    return _entry(d, f"./{rel}"), {rel: world.root / d.rel_path}


def _entry(d: PypiDist, location: str) -> PypiEntry:
    """The ``pypi:`` entry of the world's dist ``d`` at ``location``."""
    return PypiEntry(
        name=d.name,
        location=location,
        version=d.version,
        sha256=d.sha256,
        requires_dist=d.requires_dist,
        requires_python=d.requires_python,
    )


def tree_entry(
    world: World, name: str = "worldpkg-local", rel_dir: str | None = None
) -> tuple[PypiEntry, dict[str, Path]]:
    """A source-tree entry (no version) and the ``local_paths`` that copy the tree in."""
    rel = rel_dir or name
    return PypiEntry(name=name, location=f"./{rel}"), {rel: world.project_dir(name)}


def git_entry(name: str, repo: GitRepo, version: str) -> PypiEntry:
    """A ``git+file:///...#<sha>`` entry for a repository made by :func:`make_git_repo`."""
    return PypiEntry(name=name, location=f"git+{repo.url}#{repo.sha}", version=version)
