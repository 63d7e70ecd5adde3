"""Real conda packages (``.conda`` and ``.tar.bz2``), made with py-rattler-build.

Two ways in:

- :func:`assemble` turns a :class:`PackageSpec` (files as bytes, metadata) into an archive with
  ``rattler_build.assemble_package``: 1-3 ms, byte-deterministic (fixed timestamp), any subdir.
  No prefix placeholders, no entry points.
- :func:`build_recipe` runs a ``recipe.yaml`` with ``rattler_build`` (offline; requirements only
  from channels you pass) and caches the output on disk by input hash. Gives the real features:
  text and binary prefix placeholders, ELF rpaths rewritten, noarch-python entry points. Recipe
  builds are not byte-deterministic (rattler-build stamps the wall clock), so their bytes are
  fixed by the cache instead.

:func:`describe` reads an archive back into a :class:`BuiltPackage` (hashes, index.json).
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from rattler.package import IndexJson

from testworld.cache import cached_dir, input_key

ArchiveKind = Literal["conda", "tar.bz2"]
NoArch = Literal["generic", "python"]

SUBDIRS: tuple[str, ...] = ("linux-64", "linux-aarch64", "osx-64", "osx-arm64", "win-64")
ALL_SUBDIRS: tuple[str, ...] = (*SUBDIRS, "noarch")
# 2024-01-01T00:00:00Z: every assembled package carries this timestamp.
WORLD_EPOCH = 1_704_067_200
WORLD_TIMESTAMP = datetime.fromtimestamp(WORLD_EPOCH, tz=UTC)


@dataclass(frozen=True)
class PackageSpec:
    """What to assemble. ``files`` maps package-relative paths to contents."""

    name: str
    version: str
    subdir: str
    depends: tuple[str, ...] = ()
    constrains: tuple[str, ...] = ()
    files: Mapping[str, bytes] = field(default_factory=dict)
    symlinks: Mapping[str, str] = field(default_factory=dict)  # link path -> target
    # path -> (size, seed): seeded incompressible bytes, generated while assembling (so large
    # payloads are never held in memory).
    random_files: Mapping[str, tuple[int, str]] = field(default_factory=dict)
    archive: ArchiveKind = "conda"
    noarch: NoArch | None = None  # defaults to "generic" for subdir "noarch"
    build_number: int = 0
    build: str | None = None  # default: h<7 hex of the spec>_<build_number>
    license: str = "BSD-3-Clause"
    summary: str | None = None
    compression_level: int = 9
    timestamp: datetime = WORLD_TIMESTAMP

    @property
    def effective_noarch(self) -> NoArch | None:
        if self.noarch is not None:
            return self.noarch
        return "generic" if self.subdir == "noarch" else None

    def digest(self) -> str:
        h = hashlib.sha256()
        meta = [
            self.name,
            self.version,
            self.subdir,
            list(self.depends),
            list(self.constrains),
            self.effective_noarch,
            self.build_number,
            sorted(self.symlinks.items()),
            sorted(self.random_files.items()),
        ]
        h.update(json.dumps(meta).encode())
        for path in sorted(self.files):
            h.update(path.encode() + b"\0")
            h.update(hashlib.sha256(self.files[path]).digest())
        return h.hexdigest()

    @property
    def build_string(self) -> str:
        if self.build is not None:
            return self.build
        prefix = "pyh" if self.effective_noarch == "python" else "h"
        return f"{prefix}{self.digest()[:7]}_{self.build_number}"

    @property
    def file_name(self) -> str:
        return f"{self.name}-{self.version}-{self.build_string}.{self.archive}"


@dataclass(frozen=True)
class BuiltPackage:
    """An archive on disk and what a repodata record needs to know about it."""

    path: Path
    name: str
    version: str
    build: str
    build_number: int
    subdir: str
    noarch: str | None
    depends: tuple[str, ...]
    sha256: str
    md5: str
    size: int

    @property
    def file_name(self) -> str:
        return self.path.name

    @property
    def archive(self) -> ArchiveKind:
        return "tar.bz2" if self.path.name.endswith(".tar.bz2") else "conda"

    @property
    def dist_name(self) -> str:
        return f"{self.name}-{self.version}-{self.build}"

    def channel_path(self) -> str:
        """``<subdir>/<file name>``, relative to a channel root."""
        return f"{self.subdir}/{self.file_name}"


def file_hashes(path: Path) -> tuple[str, str, int]:
    """(sha256, md5, size) of a file."""
    sha, md5 = hashlib.sha256(), hashlib.md5()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            sha.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    return sha.hexdigest(), md5.hexdigest(), size


def describe(path: Path) -> BuiltPackage:
    """Read ``info/index.json`` of an archive (via py-rattler) and hash the file."""
    index = IndexJson.from_package_archive(path)
    sha, md5, size = file_hashes(path)
    noarch = index.noarch
    noarch_str = None if noarch.none else ("python" if noarch.python else "generic")
    return BuiltPackage(
        path=path,
        name=index.name.normalized,
        version=str(index.version),
        build=str(index.build),
        build_number=index.build_number,
        subdir=index.subdir or "noarch",
        noarch=noarch_str,
        depends=tuple(index.depends),
        sha256=sha,
        md5=md5,
        size=size,
    )


def assemble(spec: PackageSpec, output_dir: Path) -> Path:
    """Write ``spec`` as an archive into ``output_dir`` (flat) and return its path."""
    from rattler_build import ArchiveType, assemble_package

    output_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="world-pkg-") as tmp:
        stage = Path(tmp) / "files"
        stage.mkdir()
        for rel, data in spec.files.items():
            target = stage / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            if rel.startswith("bin/") or rel.endswith((".sh", ".so")):
                target.chmod(0o755)
        for rel, (size, seed) in spec.random_files.items():
            target = stage / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            write_random(target, size, seed)
        for rel, dest in spec.symlinks.items():
            link = stage / rel
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(dest)
        out = Path(tmp) / "out"
        result = assemble_package(
            name=spec.name,
            version=spec.version,
            target_platform=spec.subdir,
            build_string=spec.build_string,
            output_dir=out,
            files_dir=stage,
            depends=list(spec.depends) or None,
            constrains=list(spec.constrains) or None,
            build_number=spec.build_number,
            noarch=spec.effective_noarch,
            license=spec.license,
            summary=spec.summary,
            compression_level=spec.compression_level,
            archive_type=ArchiveType.TarBz2 if spec.archive == "tar.bz2" else ArchiveType.Conda,
            timestamp=spec.timestamp,
            detect_prefix=False,
        )
        final = output_dir / spec.file_name
        produced = Path(result.path)
        if produced.name != final.name:
            raise RuntimeError(f"assemble_package wrote {produced.name}, expected {final.name}")
        shutil.move(produced, final)
        final.chmod(0o644)
    return final


# -- placeholder content for platforms we cannot build for --------------------------------

_MAGIC = {
    "linux": b"\x7fELF\x02\x01\x01\x00",
    "osx": b"\xcf\xfa\xed\xfe\x0c\x00\x00\x01",
    "win": b"MZ\x90\x00\x03\x00\x00\x00",
}


def _os_of(subdir: str) -> str:
    return subdir.split("-", 1)[0]


def placeholder_binary(name: str, subdir: str, size: int = 256) -> bytes:
    """Bytes that look like an executable header of ``subdir``'s OS, then a marker and noise."""
    magic = _MAGIC.get(_os_of(subdir), b"\0" * 8)
    marker = f"\nplaceholder {name} for {subdir}\n".encode()
    rng = random.Random(f"{name}/{subdir}")
    pad = max(0, size - len(magic) - len(marker))
    return magic + marker + rng.randbytes(pad)


def exe_path(name: str, subdir: str) -> str:
    """``bin/<name>`` on Unix subdirs, ``Library/bin/<name>.exe`` on Windows."""
    return f"Library/bin/{name}.exe" if subdir.startswith("win") else f"bin/{name}"


def lib_path(name: str, subdir: str) -> str:
    """A shared-library path in the subdir's naming convention."""
    os_name = _os_of(subdir)
    if os_name == "win":
        return f"Library/bin/{name}.dll"
    if os_name == "osx":
        return f"lib/lib{name}.dylib"
    return f"lib/lib{name}.so"


def write_random(path: Path, size: int, seed: str, chunk: int = 4 << 20) -> None:
    """Write ``size`` seeded random bytes to ``path`` in chunks."""
    rng = random.Random(seed)
    with path.open("wb") as fh:
        left = size
        while left > 0:
            n = min(chunk, left)
            fh.write(rng.randbytes(n))
            left -= n


def incompressible(size: int, seed: str) -> bytes:
    """``size`` seeded random bytes (so the archive cannot shrink them)."""
    return random.Random(seed).randbytes(size)


# -- recipe builds ------------------------------------------------------------------------


def build_recipe(
    recipe: str,
    *,
    extra_files: Mapping[str, str] | None = None,
    requirements_from: Sequence[Path] = (),
    package_format: ArchiveKind = "conda",
    label: str = "recipe",
) -> list[Path]:
    """Build ``recipe`` (the text of a ``recipe.yaml``) and return the cached archive paths.

    ``extra_files`` are written next to the recipe. Requirements are solved from a temporary
    channel holding the archives ``requirements_from`` (their hashes are part of the key).
    Archives are cached under ``<cache>/recipes/<key>/<subdir>/<file>``.
    """
    files = dict(extra_files or {})
    deps = [(p.name, file_hashes(p)[0]) for p in requirements_from]
    key = input_key("recipe", recipe, sorted(files.items()), deps, package_format)

    def build(tmp: Path) -> None:
        from rattler_build import Stage0Recipe, ToolConfiguration

        src = tmp / "src"
        src.mkdir()
        (src / "recipe.yaml").write_text(recipe)
        for rel, text in files.items():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            (src / rel).write_text(text)
        channels: list[str] | None = None
        if requirements_from:
            from testworld.channel import make_channel

            channels = [make_channel(tmp / "deps", requirements_from).as_uri()]
        out = tmp / "o"
        results = Stage0Recipe.from_file(src / "recipe.yaml").run_build(
            output_dir=out,
            channels=channels,
            tool_config=ToolConfiguration(test_strategy="skip"),
            package_format="tar-bz2" if package_format == "tar.bz2" else "conda",
            no_build_id=True,
        )
        for result in results:
            for pkg in result.packages:
                pkg_path = Path(pkg)
                dest = tmp / "pkgs" / pkg_path.parent.name / pkg_path.name
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(pkg_path, dest)
                dest.chmod(0o644)
        for scratch in (src, out, tmp / "deps"):
            shutil.rmtree(scratch, ignore_errors=True)
        (tmp / "label").write_text(label + "\n")

    entry = cached_dir("recipes", key, build)
    return sorted((entry / "pkgs").glob("*/*"))
