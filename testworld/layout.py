"""The :class:`World`: a built, read-only directory tree that a server can serve.

Layout under ``World.root``::

    channel/<subdir>/{repodata.json, *.conda, *.tar.bz2}
    pypi/files/{*.whl, *.tar.gz}          (when the world has a PyPI side)
    pypi/simple/index.html, pypi/simple/<name>/index.html
    pypi/projects/<name>/                 (source trees) and pypi/patches/*.patch
    world.json                            (the manifest this class is loaded from)

Worlds live in the disk cache and are shared between tests: never modify one; copy what you
need to change (:func:`World.copy_to`).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from testworld.packages import BuiltPackage


@dataclass(frozen=True)
class PypiDist:
    """A wheel or sdist file of the world's PyPI side."""

    name: str  # the project name as published ("worldpkg-a")
    version: str
    kind: str  # "wheel" | "sdist"
    file_name: str
    sha256: str
    size: int
    requires_dist: tuple[str, ...] = ()
    requires_python: str | None = None

    @property
    def rel_path(self) -> str:
        """Path under the world root (and the served URL path without the leading ``/``)."""
        return f"pypi/files/{self.file_name}"

    @property
    def normalized_name(self) -> str:
        return self.name.lower().replace("_", "-").replace(".", "-")


@dataclass(frozen=True)
class World:
    """A built world (see the module docstring for the layout)."""

    root: Path
    packages: tuple[BuiltPackage, ...]
    pypi: tuple[PypiDist, ...] = ()
    projects: dict[str, str] = field(default_factory=dict)  # project name -> rel source dir
    patches: dict[str, str] = field(default_factory=dict)  # patch name -> rel path
    name: str = "default"

    @property
    def channel_dir(self) -> Path:
        return self.root / "channel"

    @property
    def pypi_dir(self) -> Path:
        return self.root / "pypi"

    def channel_url(self, server_url: str | None = None) -> str:
        """``<server_url>/channel`` or the ``file://`` URL of the channel directory."""
        if server_url is None:
            return self.channel_dir.resolve().as_uri()
        return server_url.rstrip("/") + "/channel"

    def simple_index_url(self, server_url: str) -> str:
        return server_url.rstrip("/") + "/pypi/simple"

    # -- lookups
    def package(
        self, name: str, subdir: str = "linux-64", version: str | None = None
    ) -> BuiltPackage:
        """Package ``name`` for ``subdir`` (or noarch): the highest version / build number."""
        found = self.find(name, subdir=subdir, version=version)
        if not found:
            raise KeyError(f"no package {name!r} (subdir={subdir}, version={version}) in world")
        return found[-1]

    def find(
        self, name: str, *, subdir: str | None = None, version: str | None = None
    ) -> list[BuiltPackage]:
        from rattler import Version

        hits = [
            p
            for p in self.packages
            if p.name == name
            and (subdir is None or p.subdir in (subdir, "noarch"))
            and (version is None or p.version == version)
        ]
        return sorted(hits, key=lambda p: (Version(p.version), p.build_number))

    def in_subdir(self, subdir: str) -> list[BuiltPackage]:
        return [p for p in self.packages if p.subdir == subdir]

    def subdirs(self) -> list[str]:
        return sorted({p.subdir for p in self.packages})

    def archive_path(self, pkg: BuiltPackage) -> Path:
        return self.channel_dir / pkg.subdir / pkg.file_name

    def dist(self, name: str, kind: str = "wheel") -> PypiDist:
        for d in self.pypi:
            if d.normalized_name == name.lower().replace("_", "-") and d.kind == kind:
                return d
        raise KeyError(f"no {kind} for {name!r} in world")

    def project_dir(self, name: str) -> Path:
        return self.root / self.projects[name]

    def patch_path(self, name: str) -> Path:
        return self.root / self.patches[name]

    def __iter__(self) -> Iterator[BuiltPackage]:
        return iter(self.packages)

    # -- persistence
    def save_manifest(self) -> None:
        doc: dict[str, Any] = {
            "name": self.name,
            "packages": [
                {**asdict(p), "path": str(p.path.relative_to(self.root))} for p in self.packages
            ],
            "pypi": [asdict(d) for d in self.pypi],
            "projects": self.projects,
            "patches": self.patches,
        }
        (self.root / "world.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")

    @classmethod
    def load(cls, root: Path) -> World:
        doc = json.loads((root / "world.json").read_text())
        packages = tuple(
            BuiltPackage(**{**p, "path": root / p["path"], "depends": tuple(p["depends"])})
            for p in doc["packages"]
        )
        pypi = tuple(
            PypiDist(**{**d, "requires_dist": tuple(d["requires_dist"])}) for d in doc["pypi"]
        )
        return cls(
            root=root,
            packages=packages,
            pypi=pypi,
            projects=dict(doc["projects"]),
            patches=dict(doc["patches"]),
            name=doc["name"],
        )

    def copy_to(self, dest: Path) -> World:
        """A private, writable copy (for tests that mutate the channel)."""
        shutil.copytree(self.root, dest, symlinks=True)
        return World.load(dest)
