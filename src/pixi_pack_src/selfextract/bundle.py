"""The unpacker bundle a self-extracting script carries (a deterministic, gzipped tar).

Layout::

    run.py                     entry point (pixi_pack_src.selfextract.main)
    site/pixi_pack_src/...     our own code (.py files)
    site/packaging/, site/installer/, site/yaml/   pure-Python dependencies of unpack
    site/rattler/...           py-rattler for the *target* platform (native library)
    python/...                 the environment's python and its dependencies, pre-extracted
                               (absent when the environment has no python >= 3.11)

py-rattler for the target comes from the running installation when the target is this machine,
else from a ``py_rattler-<version>-*.whl`` for the target in ``--unpacker-wheels DIR``.
"""

from __future__ import annotations

import gzip
import importlib.metadata
import os
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import Version
from rattler import RepoDataRecord

from pixi_pack_src.archive.members import Entry
from pixi_pack_src.archive.tar import write_tar
from pixi_pack_src.errors import PixiPackSrcError, UsageError
from pixi_pack_src.host import host_subdir
from pixi_pack_src.selfextract.headers import RUN_PY
from pixi_pack_src.wheels import platform_tags

MIN_PYTHON = Version("3.11")
BUNDLE_MTIME = 1153704088
_PURE_PACKAGES = ("packaging", "installer", "yaml")  # yaml: pure Python without _yaml
_SKIP_DIRS = {"__pycache__"}
# not needed to run the installer (and terminfo has names that differ only in case)
_PYTHON_SKIP = tuple(
    f"python/{d}/" for d in ("info", "share", "include", "man", "conda-meta", "Library/share")
)


@dataclass(frozen=True)
class Bundle:
    path: Path  # the gzipped tar
    python: str  # the bundled interpreter relative to the bundle root, or ""


def _package_dir(module: str) -> Path:
    mod = __import__(module)
    file = getattr(mod, "__file__", None)
    if file is None:
        raise PixiPackSrcError(f"cannot find the installed {module} package")
    return Path(file).parent


def _tree_entries(
    root: Path, prefix: str, *, python_only: bool, confined: bool = False
) -> Iterator[Entry]:
    """The files below ``root``. ``confined`` (a tree extracted from packages): only regular
    files, and a symbolic link is followed only when its target is a regular file inside
    ``root`` -- a link out of it (``lib/leak.txt -> ~/.netrc``) is an error, so nothing of
    the packing machine can enter the script."""
    real_root = os.path.realpath(root)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        if confined:
            for d in dirnames:
                _check_confined(Path(dirpath) / d, root, real_root)
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if python_only and path.suffix not in (".py", ".typed"):
                continue
            rel = path.relative_to(root).as_posix()
            if confined:
                _check_confined(path, root, real_root)
            elif path.is_symlink() and not path.is_file():
                continue  # dangling
            yield Entry(f"{prefix}/{rel}", path, executable=os.access(path, os.X_OK))


def _check_confined(path: Path, root: Path, real_root: str) -> None:
    rel = path.relative_to(root).as_posix()
    if path.is_symlink():
        target = os.path.realpath(path)
        if not target.startswith(real_root + os.sep):
            raise PixiPackSrcError(
                f"refusing to bundle {rel} of the python closure: it is a symbolic link to "
                f"{path.readlink()}, outside the extracted packages",
                hint="a package of the environment is damaged or hostile; the self-extracting "
                "script would carry a file of this machine",
            )
    if not (path.is_file() or path.is_dir()):
        raise PixiPackSrcError(
            f"refusing to bundle {rel} of the python closure: not a regular file",
            hint="a package of the environment is damaged or hostile",
        )


def _rattler_version() -> str:
    return importlib.metadata.version("py-rattler")


def _wheel_for(subdir: str, wheels_dir: Path | None) -> Path:
    version = _rattler_version()
    tags = set(platform_tags(subdir))
    if wheels_dir is not None:
        for wheel in sorted(wheels_dir.glob("py_rattler-*.whl")):
            try:
                _, wversion, _, wtags = parse_wheel_filename(wheel.name)
            except InvalidWheelFilename:
                continue
            if str(wversion) == version and any(t.platform in tags for t in wtags):
                return wheel
    raise UsageError(
        f"the self-extracting script for {subdir} needs py-rattler {version} built for {subdir}",
        hint=f"download it (`pip download py-rattler=={version} --only-binary=:all: "
        f"--no-deps --platform <tag for {subdir}> -d DIR`) and pass --unpacker-wheels DIR",
    )


def _wheel_entries(wheel: Path, package: str) -> Iterator[Entry]:
    with zipfile.ZipFile(wheel) as zf:
        for info in sorted(zf.infolist(), key=lambda i: i.filename):
            name = info.filename
            if info.is_dir() or not name.startswith(f"{package}/"):
                continue
            executable = bool((info.external_attr >> 16) & 0o111)
            yield Entry(f"site/{name}", zf.read(info), executable=executable)


def _python_entries(
    conda: Sequence[tuple[RepoDataRecord, Path]], work_dir: Path
) -> tuple[list[Entry], str]:
    """The environment's python closure, extracted (``info/`` left out)."""
    from rattler.package_streaming import extract

    from pixi_pack_src.builders.wheel.interpreter import dependency_closure, named_copy

    records = [r for r, _ in conda]
    pythons = [r for r in records if r.name.normalized == "python"]
    if not pythons or Version(str(pythons[0].version)) < MIN_PYTHON:
        return [], ""
    files = {id(r): p for r, p in conda}
    root = work_dir / "python"
    named = work_dir / "archives"
    named.mkdir(parents=True, exist_ok=True)
    for record in dependency_closure(records, "python"):
        extract(named_copy(files[id(record)], named / record.file_name), root)
    entries = [
        e
        for e in _tree_entries(root, "python", python_only=False, confined=True)
        if not e.arcname.startswith(_PYTHON_SKIP)
    ]
    windows = pythons[0].subdir.startswith("win")
    return entries, "python/python.exe" if windows else "python/bin/python3"


def build_bundle(
    *,
    subdir: str,
    conda: Sequence[tuple[RepoDataRecord, Path]],
    work_dir: Path,
    wheels_dir: Path | None = None,
) -> Bundle:
    """Write the bundle for ``subdir`` into ``work_dir`` (deterministic bytes)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    entries: list[Entry] = [Entry("run.py", RUN_PY.encode())]
    entries += _tree_entries(_package_dir("pixi_pack_src"), "site/pixi_pack_src", python_only=True)
    for name in _PURE_PACKAGES:
        entries += _tree_entries(_package_dir(name), f"site/{name}", python_only=True)
    if subdir == host_subdir():
        entries += _tree_entries(_package_dir("rattler"), "site/rattler", python_only=False)
    else:
        entries += _wheel_entries(_wheel_for(subdir, wheels_dir), "rattler")
    python_entries, python = _python_entries(conda, work_dir / "python-closure")
    entries += python_entries
    path = work_dir / f"bundle-{subdir}.tar.gz"
    with (
        path.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0) as gz,
    ):
        # kernel_copy=False: GzipFile.fileno() is the raw file; a kernel copy would bypass gzip
        write_tar(_dedupe(entries), gz, mtime=BUNDLE_MTIME, kernel_copy=False)
    return Bundle(path, python)


def _dedupe(entries: Iterable[Entry]) -> list[Entry]:
    seen: dict[str, Entry] = {}
    for entry in entries:
        seen.setdefault(entry.arcname, entry)
    return list(seen.values())
