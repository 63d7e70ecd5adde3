"""The stand-in ``pixi`` honours docs/pixi-build.md §11 (it is only worth what it
checks: these tests pin its behaviour to the contract)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from rattler.package import IndexJson
from testworld.pixi_standin import StandIn
from testworld.pixi_standin import pixi as standin_script
from testworld.pixi_standin.workspaces import write_package, write_workspace_manifest

from pixi_pack_src.builders.conda.matching import read_artifact

pytestmark = pytest.mark.integration


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["pixi", *args], cwd=cwd, capture_output=True, text=True, check=False)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    write_workspace_manifest(root, platforms=("linux-64", "osx-arm64"))
    write_package(root / "src" / "pkg2", "pkg2", noarch=True)
    write_package(root / "src" / "pkg", "pkg", noarch=False, source_run={"pkg2": "../pkg2"})
    (root / "pixi.lock").write_text("version: 7\n")
    return root


def test_version_on_stdout_only(fake_pixi: StandIn, tmp_path: Path) -> None:
    out = run("--version", cwd=tmp_path)
    assert (out.returncode, out.stdout, out.stderr) == (0, "pixi 0.77.0\n", "")
    fake_pixi.version("0.70.1")
    assert run("--version", cwd=tmp_path).stdout == "pixi 0.70.1\n"
    assert [c.command for c in fake_pixi.calls()] == ["--version", "--version"]


def test_build_native_for_the_target_platform(fake_pixi: StandIn, ws: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    argv = ["build", "--path", "src/pkg", "--output-dir", str(out_dir)]
    argv += ["--target-platform", "osx-arm64", "--color", "never", "--no-progress"]
    argv += ["--frozen", "--locked", "--no-install", "--as-is", "--offline", "--no-config"]
    argv += ["--build-platform", "linux-64", "-v"]
    out = run(*argv, cwd=ws)
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""
    assert "WARNING: `pixi build` is deprecated" in out.stderr
    assert "\x1b[" not in out.stderr
    files = sorted(p.name for p in out_dir.iterdir())
    assert len(files) == 1
    assert files[0].startswith("pkg-0.1.0-h")
    assert files[0].endswith("_0.conda")
    info = read_artifact(out_dir / files[0])
    assert (info.name, info.version, info.subdir, info.noarch) == (
        "pkg",
        "0.1.0",
        "osx-arm64",
        None,
    )
    assert info.depends == ("pkg2",)
    assert info.used_variant == {"target_platform": "osx-arm64"}
    (call,) = fake_pixi.builds()
    assert (call.command, call.target_platform, call.package) == ("build", "osx-arm64", "pkg")
    assert call.outputs == (files[0],)
    assert call.workspace == str(ws)
    assert not call.opened_lock
    # It writes into the workspace's .pixi, like pixi.
    assert (ws / ".pixi" / ".gitignore").read_text() == "*\n"
    assert (ws / ".pixi" / "artifacts-v0" / "pkg" / files[0]).is_file()
    assert any((ws / ".pixi" / "bld").iterdir())
    assert any((ws / ".pixi" / "meta-v0").iterdir())


def test_noarch_ignores_the_target_and_hash_input_can_be_left_out(
    fake_pixi: StandIn, ws: Path, tmp_path: Path
) -> None:
    out = run("build", "--path", "src/pkg2/pixi.toml", "-o", "o1", "-t", "osx-arm64", cwd=ws)
    assert out.returncode == 0, out.stderr
    (built,) = (ws / "o1").iterdir()
    info = read_artifact(built)
    assert (info.subdir, info.noarch, info.used_variant) == (
        "noarch",
        "generic",
        {"target_platform": "noarch"},
    )
    fake_pixi.no_hash_input("pkg2")
    assert run("build", "--path", "src/pkg2/recipe.yaml", "-o", "o2", cwd=ws).returncode == 0
    (bare,) = (ws / "o2").iterdir()
    stripped = read_artifact(bare)
    assert stripped.used_variant is None
    assert (stripped.name, stripped.version, stripped.build) == (
        info.name,
        info.version,
        info.build,
    )
    assert IndexJson.from_package_archive(bare).name.normalized == "pkg2"


def test_existing_files_are_skipped_not_overwritten(
    fake_pixi: StandIn, ws: Path, tmp_path: Path
) -> None:
    out_dir = tmp_path / "out"
    assert run("build", "--path", "src/pkg2", "-o", str(out_dir), cwd=ws).returncode == 0
    (built,) = out_dir.iterdir()
    built.write_bytes(b"stale")
    again = run("build", "--path", "src/pkg2", "-o", str(out_dir), cwd=ws)
    assert again.returncode == 0
    assert f"Skipping {built} (already exists)" in again.stderr
    assert built.read_bytes() == b"stale"
    assert fake_pixi.builds()[-1].skipped == (built.name,)


def test_one_file_per_variant_and_per_output(fake_pixi: StandIn, tmp_path: Path) -> None:
    root = tmp_path / "ws"
    write_workspace_manifest(root, build_variants={"flavor": ["a", "b"], "unused": ["x"]})
    write_package(root / "v", "var", noarch=False, use_variants=("flavor",))
    write_package(root / "m", "multi", extra_outputs=("multi-extra",))
    assert run("build", "--path", "v", "-o", "ov", cwd=root).returncode == 0
    used = sorted(
        json.dumps(read_artifact(p).used_variant, sort_keys=True) for p in (root / "ov").iterdir()
    )
    assert used == [
        '{"flavor": "a", "target_platform": "linux-64"}',
        '{"flavor": "b", "target_platform": "linux-64"}',
    ]
    out = run("build", "--path", "m", "-o", "om", cwd=root)
    assert out.returncode == 0, out.stderr
    assert sorted(read_artifact(p).name for p in (root / "om").iterdir()) == [
        "multi",
        "multi-extra",
    ]


def test_usage_errors_exit_2_clap_style(fake_pixi: StandIn, ws: Path) -> None:
    out = run("build", "--path", "src/pkg", "--bogus", cwd=ws)
    assert (out.returncode, out.stdout) == (2, "")
    assert out.stderr.startswith("error: unexpected argument '--bogus' found")
    out = run("frobnicate", cwd=ws)
    assert out.returncode == 2
    assert "error: unrecognized subcommand 'frobnicate'" in out.stderr
    assert run("build", "--help", cwd=ws).returncode == 0
    fake_pixi.remove_build()
    out = run("build", "--help", cwd=ws)
    assert out.returncode == 2
    assert "unrecognized subcommand 'build'" in out.stderr
    assert fake_pixi.builds() == []


def test_publish_takes_target_dir_and_refuses_source_run_deps_from_075(
    fake_pixi: StandIn, ws: Path
) -> None:
    refused = run("publish", "--path", "src/pkg", "--target-dir", "t", cwd=ws)
    assert refused.returncode == 1
    assert "run dependencies on source packages (pkg2)" in refused.stderr
    assert "deprecated" not in refused.stderr
    ok = run("publish", "--path", "src/pkg2", "--target-dir", "t", cwd=ws)
    assert ok.returncode == 0, ok.stderr
    assert len(list((ws / "t").iterdir())) == 1
    fake_pixi.version("0.74.0")
    assert run("publish", "--path", "src/pkg", "--target-dir", "t2", cwd=ws).returncode == 0
    assert run("publish", "--path", "src/pkg", "--output-dir", "t3", cwd=ws).returncode == 2


def test_before_068_build_is_plain_and_publish_missing(fake_pixi: StandIn, ws: Path) -> None:
    fake_pixi.version("0.67.2")
    out = run("build", "--path", "src/pkg2", "-o", "o", cwd=ws)
    assert out.returncode == 0
    assert "deprecated" not in out.stderr
    assert run("publish", "--path", "src/pkg2", "--target-dir", "o", cwd=ws).returncode == 2


def test_manifest_and_workspace_discovery_failures(
    fake_pixi: StandIn, ws: Path, tmp_path: Path
) -> None:
    (ws / "empty").mkdir()
    out = run("build", "--path", "empty", cwd=ws)
    assert out.returncode == 1
    assert "could not find a package manifest" in out.stderr
    loose = tmp_path / "loose"
    write_package(loose, "loose")
    out = run("build", "--path", str(loose), cwd=tmp_path)
    assert out.returncode == 1
    assert "could not find a pixi workspace" in out.stderr
    out = run("build", "--path", "src/pkg", "-t", "win-64", cwd=ws)
    assert out.returncode == 1
    assert "no package produces outputs for platform win-64" in out.stderr


def test_failure_modes(fake_pixi: StandIn, ws: Path) -> None:
    fake_pixi.fail("pkg2", "fail")
    out = run("build", "--path", "src/pkg2", "-o", "o", cwd=ws)
    assert out.returncode == 1
    assert "error: backend failure requested for pkg2" in out.stderr
    assert not (ws / "o").exists()
    fake_pixi.fail("pkg2", "crash")
    assert run("build", "--path", "src/pkg2", "-o", "o", cwd=ws).returncode == 101
    fake_pixi.fail("pkg2", "drift")
    assert run("build", "--path", "src/pkg2", "-o", "o", cwd=ws).returncode == 0
    (drifted,) = (ws / "o").iterdir()
    assert read_artifact(drifted).build.endswith("_drift")
    assert [c.exit for c in fake_pixi.builds()] == [1, 101, 0]


def test_records_backend_override_and_never_opens_the_lock(
    fake_pixi: StandIn, ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = ws / "fake-backend"
    backend.write_text("#!/bin/sh\n")
    monkeypatch.setenv("PIXI_BUILD_BACKEND_OVERRIDE", f"pixi-build-rattler-build={backend}")
    assert run("build", "--path", "src/pkg2", "-o", "o", cwd=ws).returncode == 0
    (call,) = fake_pixi.builds()
    assert call.env["PIXI_BUILD_BACKEND_OVERRIDE"] == f"pixi-build-rattler-build={backend}"
    assert call.backend["override"] == str(backend)
    assert call.opened_lock is False
    monkeypatch.setenv("PIXI_BUILD_BACKEND_OVERRIDE", f"pixi-build-rattler-build={ws / 'nope'}")
    assert run("build", "--path", "src/pkg2", "-o", "o", cwd=ws).returncode == 1


def test_the_lock_audit_hook_notices_an_open(tmp_path: Path) -> None:
    """Positive control for ``opened_lock``: the hook flags any open of a ``pixi.lock``."""
    standin_script.RECORD.clear()
    standin_script._audit("open", (str(tmp_path / "pixi.lock"), "r", 0))
    standin_script._audit("open", (str(tmp_path / "pixi.toml"), "r", 0))
    assert standin_script.RECORD["opened_lock"] is True
    assert standin_script.RECORD["opened_lock_paths"] == [str(tmp_path / "pixi.lock")]
    standin_script.RECORD.clear()
