"""Real sdists from PyPI built with their real backends, through pack, unpack and import.

setuptools (legacy ``setup.py`` and ``build_meta``, a C extension), flit-core, hatchling,
poetry-core and pdm-backend: each sdist's build requirements are installed by uv from a PEP 503
index of real wheels on 127.0.0.1 (testworld/realpypi.py). The files are downloaded once by
``scripts/test`` before pytest; without them these tests skip and say so.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from testworld import realpypi
from testworld.cli import run_json
from testworld.fixtures import WorkspaceFactory
from testworld.locks import Env, PypiEntry
from testworld.server import WorldServer

from pixi_pack_src.cli import run

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HAVE_GCC = shutil.which("gcc") is not None


@pytest.fixture(scope="module")
def real_index(tmp_path_factory: pytest.TempPathFactory) -> realpypi.RealIndex:
    if not realpypi.available():
        pytest.skip(
            f"the real PyPI sdists are not in {realpypi.cache_dir()}: run "
            "`python -m testworld.realpypi fetch` (scripts/test does) with access to PyPI"
        )
    return realpypi.write_index(tmp_path_factory.mktemp("real-pypi"))


@pytest.fixture
def real_server(real_index: realpypi.RealIndex) -> Iterator[WorldServer]:
    with WorldServer(real_index.root) as server:
        yield server


def _provenance(tar: Path) -> dict[str, Any]:
    with tarfile.open(tar) as tf:
        fh = tf.extractfile("pixi-pack-src.json")
        assert fh is not None
        doc: dict[str, Any] = json.load(fh)
    return doc


def test_real_sdists_build_with_their_backends_and_import_after_unpack(
    real_index: realpypi.RealIndex,
    real_server: WorldServer,
    channel_server: WorldServer,
    workspace_factory: WorkspaceFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sdists = [s for s in realpypi.SDISTS if HAVE_GCC or not s.native]
    entries = []
    for s in sdists:
        d = real_index.sdist(s.name)
        entries.append(
            PypiEntry(
                name=s.name,
                location=f"{real_server.url}/files/{d.file_name}",
                version=s.version,
                sha256=d.sha256,
                index=f"{real_server.url}/simple",
            )
        )
    ws = workspace_factory(
        {
            "default": Env(
                conda=("python",), pypi=tuple(entries), indexes=(f"{real_server.url}/simple",)
            )
        }
    )
    out = tmp_path / "env.tar"
    code, doc, err = run_json(capsys, "pack", str(ws.root), "-o", str(out))
    assert code == 0, err
    assert doc["stats"]["built"] == len(sdists)
    wheels = {a["name"]: a for a in _provenance(out)["artifacts"] if a["kind"] == "wheel"}
    assert sorted(wheels) == sorted(s.name for s in sdists)
    backends = {n: w["builder"]["backend"] for n, w in wheels.items()}
    assert backends["six"] == "setuptools.build_meta:__legacy__"
    assert backends["idna"] == "flit_core.buildapi"
    assert backends["annotated-types"] == "hatchling.build"
    assert backends["tomlkit"] == "poetry.core.masonry.api"
    assert backends["annotated-doc"] == "pdm.backend"
    requires = {n: w["builder"]["build-requires"] for n, w in wheels.items()}
    assert any(r.startswith("hatchling==") for r in requires["annotated-types"])
    assert any(r.startswith("pluggy==") for r in requires["annotated-types"])  # a dependency
    assert any(r.startswith("flit-core==3.") for r in requires["idna"])  # flit_core >=3.2,<4
    assert any(r.startswith("poetry-core==") for r in requires["tomlkit"])
    assert any(r.startswith("pdm-backend==") for r in requires["annotated-doc"])
    assert any(r.startswith("setuptools==") for r in requires["six"])
    # Nothing but this index was asked for.
    assert {r.path.split("/")[1] for r in real_server.requests} <= {"simple", "files"}

    target = tmp_path / "target"
    assert run(["-q", "unpack", str(out), "-o", str(target)]) == 0
    python = target / "env" / "bin" / "python"
    code_lines = [f"import {s.module}" for s in sdists]
    if HAVE_GCC:
        markupsafe = wheels["markupsafe"]
        assert markupsafe["path"].startswith("pypi/markupsafe-3.0.2-cp3")
        assert "linux_x86_64" in markupsafe["path"] or "manylinux" in markupsafe["path"]
        code_lines.append("from markupsafe import _speedups; print(_speedups.__file__)")
    code_lines.append("print(six.__version__, idna.__version__, tomlkit.__version__)")
    shown = subprocess.run(
        [str(python), "-c", "\n".join(code_lines)], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert shown[-1] == "1.17.0 3.10 0.13.2"
    if HAVE_GCC:
        assert shown[0].endswith(".so")
