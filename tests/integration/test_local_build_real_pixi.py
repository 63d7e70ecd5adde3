"""examples/local-build with the real pixi: lock it, build every source package, install.

Needs ``pixi`` (>= 0.68) on PATH and network access to prefix.dev (``pixi lock`` solves
against conda-forge and ``pixi build`` installs the pinned backend); skipped, visibly, with
"pixi not on PATH" otherwise. The same example is built with the stand-in pixi in
``test_conda_source_build.py``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from testworld.install import install_records

from pixi_pack_src.builders.conda import (
    SourceBuildOptions,
    build_sources,
    check_environment,
    plan_source_builds,
)
from pixi_pack_src.host import host_subdir
from pixi_pack_src.lock.lockfile import load_lock
from pixi_pack_src.reporter import NullReporter

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "local-build"
PLATFORMS = ("linux-64", "osx-arm64")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.needs_pixi,
]


@pytest.mark.timeout(1800)
def test_local_build_example_with_real_pixi(real_pixi: Path, tmp_path: Path) -> None:
    ws = tmp_path / "local-build"
    shutil.copytree(EXAMPLE, ws, ignore=shutil.ignore_patterns(".pixi", "*.tar", "env"))
    if not (ws / "pixi.lock").exists():
        subprocess.run([str(real_pixi), "lock"], cwd=ws, check=True, timeout=1200)
    lock = load_lock(ws / "pixi.lock")
    envs = {p: lock.select("default", p) for p in PLATFORMS}
    names = {p: sorted(s.name for s in e.sources) for p, e in envs.items()}
    assert names == {
        p: ["local-build-main", "local-build-pkg", "local-build-pkg2"] for p in PLATFORMS
    }

    jobs = plan_source_builds({p: e.sources for p, e in envs.items()}, workspace_root=ws)
    assert sorted((j.names[0], j.target) for j in jobs) == [
        ("local-build-main", "linux-64"),
        ("local-build-main", "osx-arm64"),
        ("local-build-pkg", "noarch"),
        ("local-build-pkg2", "noarch"),
    ]
    options = SourceBuildOptions(
        work_dir=tmp_path / "work", cache_root=tmp_path / "cache", pixi=str(real_pixi)
    )
    built = build_sources(jobs, options=options, reporter=NullReporter())
    assert set(built) == {s.lock_id for e in envs.values() for s in e.sources}
    for artifact in built.values():
        builder = artifact.provenance["builder"]
        assert isinstance(builder, dict)
        assert builder["backend"] == {"name": "pixi-build-rattler-build", "spec": "==0.4.5"}

    again = build_sources(jobs, options=options, reporter=NullReporter())
    assert all(a.from_cache for a in again.values())

    host = host_subdir()
    if host in envs:
        env = envs[host]
        mine = {s.lock_id: built[s.lock_id] for s in env.sources}
        binaries = [c.record for c in env.conda]
        check_environment(binaries, mine)
        records = [*binaries, *{id(a): a.record for a in mine.values()}.values()]
        prefix = install_records(records, tmp_path / "env")
        out = subprocess.run(
            [str(prefix / "bin" / "local-build-hello")], capture_output=True, text=True, check=True
        )
        assert out.stdout.splitlines() == [
            "local-build-main 0.1.0",
            "local-build-pkg 0.1.0",
            "local-build-pkg2 0.1.0",
            f"built for {host}",
        ]
