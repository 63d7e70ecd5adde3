"""Real sdists from PyPI, downloaded once, served on 127.0.0.1 with their build requirements.

Tests never reach beyond 127.0.0.1: the download is a step of its own, run by
``scripts/test`` before pytest (``python -m testworld.realpypi fetch``); the tests that use the
files skip, saying why, when they are not there. The files are kept in ``<repo>/.cache/real-pypi``
(or ``$REAL_PYPI_DIR``): ``sdists/`` (pinned, :data:`SDISTS`) and ``wheels/`` (the build
backends of :data:`BUILD_REQUIREMENTS` and their dependencies, as wheels).

:func:`write_index` lays them out as a PEP 503 index (``files/`` and ``simple/<name>/``) for a
:class:`testworld.server.WorldServer`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import parse_sdist_filename, parse_wheel_filename

from testworld.layout import PypiDist
from testworld.pypi import write_simple_index

ENV_VAR = "REAL_PYPI_DIR"
REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class RealSdist:
    name: str
    version: str
    module: str  # what ``import`` names
    backend: str  # the build backend it uses (for test ids)
    native: bool = False  # has a C extension (needs gcc and the interpreter's headers)

    @property
    def pin(self) -> str:
        return f"{self.name}=={self.version}"


SDISTS = (
    RealSdist("six", "1.17.0", "six", "setuptools-legacy"),
    RealSdist("idna", "3.10", "idna", "flit-core"),
    RealSdist("annotated-types", "0.7.0", "annotated_types", "hatchling"),
    RealSdist("tomlkit", "0.13.2", "tomlkit", "poetry-core"),
    RealSdist("annotated-doc", "0.0.7", "annotated_doc", "pdm-backend"),
    RealSdist("markupsafe", "3.0.2", "markupsafe", "setuptools", native=True),
)
BUILD_REQUIREMENTS = (
    "setuptools>=70.1",
    "wheel",
    "flit-core>=3.2,<4",
    "hatchling",
    "poetry-core>=1.0.0a9",
    "pdm-backend",
)
MARKER = "complete"


def cache_dir() -> Path:
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else REPO_ROOT / ".cache" / "real-pypi"


def available(root: Path | None = None) -> bool:
    """Whether :func:`fetch` completed for the current :data:`SDISTS`."""
    marker = (root or cache_dir()) / MARKER
    return marker.is_file() and marker.read_text() == _fingerprint()


def _fingerprint() -> str:
    return "\n".join([*(s.pin for s in SDISTS), *BUILD_REQUIREMENTS]) + "\n"


def fetch(root: Path | None = None) -> Path:
    """Download the sdists and the build backends' wheels with pip (once)."""
    root = root or cache_dir()
    if available(root):
        return root
    pip = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q"]
    for sub in ("sdists", "wheels"):
        shutil.rmtree(root / sub, ignore_errors=True)
    subprocess.run(
        [*pip, "--no-deps", "--no-binary", ":all:", "-d", str(root / "sdists")]
        + [s.pin for s in SDISTS],
        check=True,
    )
    subprocess.run(
        [*pip, "--only-binary", ":all:", "-d", str(root / "wheels"), *BUILD_REQUIREMENTS],
        check=True,
    )
    (root / MARKER).write_text(_fingerprint())
    return root


def _record(path: Path) -> PypiDist:
    if path.name.endswith(".whl"):
        name, version, _, _ = parse_wheel_filename(path.name)
        kind = "wheel"
    else:
        name, version = parse_sdist_filename(path.name)
        kind = "sdist"
    return PypiDist(
        name=str(name),
        version=str(version),
        kind=kind,
        file_name=path.name,
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        size=path.stat().st_size,
    )


@dataclass(frozen=True)
class RealIndex:
    root: Path
    dists: tuple[PypiDist, ...]

    def sdist(self, name: str) -> PypiDist:
        (found,) = [d for d in self.dists if d.kind == "sdist" and d.normalized_name == name]
        return found


def write_index(dest: Path, root: Path | None = None) -> RealIndex:
    """``dest/files/*`` and ``dest/simple/<name>/`` for every downloaded file."""
    root = root or cache_dir()
    files = dest / "files"
    files.mkdir(parents=True, exist_ok=True)
    dists = []
    for path in sorted([*(root / "sdists").iterdir(), *(root / "wheels").iterdir()]):
        shutil.copyfile(path, files / path.name)
        dists.append(_record(files / path.name))
    write_simple_index(dest / "simple", dists)
    return RealIndex(dest, tuple(dists))


def main(argv: list[str]) -> int:
    if argv[:1] != ["fetch"] or len(argv) > 2:
        print("usage: python -m testworld.realpypi fetch [DIR]", file=sys.stderr)
        return 2
    root = fetch(Path(argv[1]) if len(argv) == 2 else None)
    print(f"real PyPI files in {root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
