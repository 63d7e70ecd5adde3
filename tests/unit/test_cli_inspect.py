"""`pixi-pack-src inspect`, run in-process (and once as a subprocess) on the lock samples."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pixi_pack_src import __version__
from pixi_pack_src.cli import run
from pixi_pack_src.plan import builds as plan_builds
from pixi_pack_src.plan import planner

DATA = Path(__file__).resolve().parent.parent / "data"
SAMPLES = DATA / "lock-samples"
REPO = Path(__file__).resolve().parents[2]
PIXI_TOML = '[workspace]\nname = "sample"\nchannels = ["conda-forge"]\nplatforms = []\n'


@pytest.fixture(autouse=True)
def _no_pixi(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever pixi this machine has, inspect finds none (the output must not depend on it)."""
    monkeypatch.setenv("PIXI_PACK_SRC_PIXI", "/nonexistent/pixi")
    # the manifest is a placeholder next to a real lock: take the lock as it is
    monkeypatch.setenv("PIXI_FROZEN", "1")


def _workspace(tmp_path: Path, sample: str) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    shutil.copyfile(SAMPLES / sample, root / "pixi.lock")
    (root / "pixi.toml").write_text(PIXI_TOML)
    return root


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict[str, Any]:
    code = run(argv)
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert isinstance(doc, dict)
    # exit code 1 exactly when a pack would fail, with the error pack would stop with
    assert code == (1 if doc["problems"] else 0), err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == (1 if doc["problems"] else 0), err
    return doc


def test_json_for_one_platform(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _workspace(tmp_path, "v7-pixi-real-partial-source-variants.lock")
    doc = _json(capsys, ["inspect", str(root), "-p", "linux-64", "--json"])
    assert doc["version"] == 1
    assert doc["tool"] == {"name": "pixi-pack-src", "version": __version__}
    assert doc["environment"] == "default"
    lock = doc["lock"]
    assert isinstance(lock, dict)
    assert lock["path"] == str(root / "pixi.lock")
    assert lock["version"] == 7
    assert lock["sha256"] == "eb96dc9498216a2cea75a9252a525b206c4c376626892f68f5974ec535b1f5d5"
    platforms = doc["platforms"]
    assert isinstance(platforms, list)
    (plan,) = platforms
    assert plan["platform"]["name"] == "linux-64"
    assert plan["totals"]["download"] == 22
    assert plan["totals"]["build-conda"] == 2
    assert plan["totals"]["download-bytes"] == 49_666_606
    names = [(i["action"], i["name"]) for i in plan["items"]]
    assert names[-2:] == [("build-conda", "depend"), ("build-conda", "root")]
    assert [b["argv"][3] for b in doc["builds"]] == [
        "{workspace}/src/depend",
        "{workspace}/src/root",
    ]
    assert doc["problems"] == [
        f"source package depend: directory {root / 'src' / 'depend'} (location 'src/depend' in "
        "the lock) does not exist",
        f"source package root: directory {root / 'src' / 'root'} (location 'src/root' in the "
        "lock) does not exist",
    ]


def test_all_platforms_and_environment(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _workspace(tmp_path, "v7-pixi-real-workspace-variants.lock")
    doc = _json(
        capsys,
        ["inspect", "-m", str(root / "pixi.toml"), "-e", "py311", "--all-platforms", "--json"],
    )
    assert doc["environment"] == "py311"
    platforms = doc["platforms"]
    assert isinstance(platforms, list)
    assert [p["platform"]["name"] for p in platforms] == [
        "linux-64",
        "osx-64",
        "osx-arm64",
        "win-64",
    ]
    assert [p["totals"]["download"] for p in platforms] == [30, 20, 21, 21]
    builds = doc["builds"]
    assert isinstance(builds, list)
    assert len(builds) == 8  # two native packages, four platforms
    variants = {
        (i["name"], p["platform"]["name"]): i["conda-source"]["variants"]["python"]
        for p in platforms
        for i in p["items"]
        if i["kind"] == "conda-source"
    }
    assert set(variants.values()) == {"3.11.*"}
    assert len(variants) == 8


def test_platform_by_subdir_and_repeated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _workspace(tmp_path, "v7-source-path-custom-platform-names.yml")
    doc = _json(
        capsys,
        ["inspect", str(root), "-p", "linux-64", "-p", "win-64", "-p", "linux-64-foobar", "--json"],
    )
    platforms = doc["platforms"]
    assert isinstance(platforms, list)
    assert [p["platform"] for p in platforms] == [
        {"name": "linux-64-foobar", "subdir": "linux-64", "virtual-packages": ["__libc >= 32"]},
        {"name": "win-64", "subdir": "win-64", "virtual-packages": []},
    ]
    assert [b["key"] for b in doc["builds"]] == [  # the build engine's order
        "path:../a-python-project|noarch",
        "path:../minimal-project|linux-64",
        "path:../minimal-project|win-64",
    ]
    noarch = doc["builds"][0]
    assert (noarch["platforms"], noarch["subdirs"]) == (["win-64"], ["win-64"])
    assert noarch["pixi"] == {"error": "--pixi: /nonexistent/pixi is not an executable file"}
    assert noarch["cached"] is None
    assert noarch["command"] == noarch["argv"]
    assert noarch["argv"][:4] == ["pixi", "build", "--path", "{workspace}/../a-python-project"]


def test_default_platform_is_the_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _workspace(tmp_path, "v7-source-path-custom-platform-names.yml")

    class Host:
        value = "linux-64"

        @classmethod
        def current(cls) -> str:
            return cls.value

    monkeypatch.setattr(planner, "host_subdir", Host.current)  # the default platform
    monkeypatch.setattr(plan_builds, "host_subdir", Host.current)  # where noarch builds run
    doc = _json(capsys, ["inspect", str(root), "--json"])
    platforms = doc["platforms"]
    assert isinstance(platforms, list)
    assert [p["platform"]["name"] for p in platforms] == ["linux-64-foobar"]

    Host.value = "osx-arm64"
    assert run(["inspect", str(root), "--json"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert (
        "error: this machine's platform osx-arm64 is not locked for environment 'default' in pixi.lock; locked: linux-64-foobar, win-64"
        in err
    )
    assert "help: pass -p PLATFORM or --all-platforms" in err


def test_unknown_environment_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _workspace(tmp_path, "v7-pixi-real-workspace-variants.lock")
    assert run(["inspect", str(root), "-e", "prod", "-p", "linux-64", "--json"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "environment 'prod' not found in" in err
    assert "available: default, py311, py312" in err
    assert "Traceback" not in err


def test_unknown_platform_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _workspace(tmp_path, "v7-pixi-real-partial-source-variants.lock")
    assert run(["inspect", str(root), "-p", "osx-64"]) == 2
    _, err = capsys.readouterr()
    assert "platform 'osx-64' not locked for environment 'default'" in err
    assert "locked: linux-64, osx-arm64, win-64" in err


def test_malformed_lock_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "pixi.toml").write_text(PIXI_TOML)
    (root / "pixi.lock").write_text("version: 7\npackages: [\n")
    assert run(["inspect", str(root), "--json"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert lines[0].startswith(f"error: lock file {root / 'pixi.lock'} is not valid YAML at line 3")
    assert lines[1] == "help: regenerate it with `pixi lock`"
    assert "Traceback" not in err


def test_missing_lock_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pixi.toml").write_text(PIXI_TOML)
    assert run(["inspect", str(tmp_path)]) == 1
    _, err = capsys.readouterr()
    assert f"error: no pixi.lock next to {tmp_path / 'pixi.toml'}" in err
    assert f"help: run `pixi lock` in {tmp_path}" in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["-m", "pixi.toml"], "two manifests given: "),
        (
            ["--all-platforms", "-p", "win-64"],
            "--all-platforms and -p/--platform exclude each other",
        ),
    ],
)
def test_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    root = _workspace(tmp_path, "v7-pixi-real-partial-source-variants.lock")
    assert run(["inspect", str(root), *extra]) == 2
    _, err = capsys.readouterr()
    assert f"error: {message}" in err


def test_table_on_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`inspect . > plan.txt` keeps the plan: it is the result (warnings stay on stderr)."""
    # noarch builds run on the host
    monkeypatch.setattr(plan_builds, "host_subdir", lambda: "win-64")
    monkeypatch.setenv("COLUMNS", "120")
    root = _workspace(tmp_path, "v7-pixi-real-partial-source-variants.lock")
    assert run(["inspect", str(root), "-p", "win-64", "-p", "linux-64"]) == 1  # a pack would fail
    out, err = capsys.readouterr()
    assert "default on win-64\n" in out
    assert "default on linux-64\n" in out
    assert "  download from prefix.dev/conda-forge/win-64 (15 items, 33.5 MiB)\n" in out
    assert "     root    ./src/root [partial, target_platform=noarch]\n" in out
    assert (
        "$ pixi build --path {workspace}/src/root --output-dir {outdir} --target-platform win-64"
        in out
    )
    assert "  21 items: 19 download (34.0 MiB), 2 build (pixi); 2 pixi build invocation(s)\n" in out
    assert "2 pixi build invocation(s) in all; 2 noarch build(s) shared across platforms" in out
    assert "  root [noarch] for win-64, linux-64\n    from: ./src/root\n" in out
    assert "pixi was not found (--pixi: /nonexistent/pixi is not an executable file)" in out
    assert out.startswith("A pack would fail (2 problem(s)):\n  ✗ source package depend: ")
    assert "default on" not in err
    assert "error: a pack would fail for 2 reasons:\n  - source package depend: directory" in err
    assert "\n  - source package root: directory" in err


def test_pypi_sample_and_ignore_non_wheel_via_env(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _workspace(tmp_path, "v7-pypi-wheel-and-local-path.yml")
    doc = _json(capsys, ["inspect", str(root), "-p", "linux-64", "--json"])
    platforms = doc["platforms"]
    assert isinstance(platforms, list)
    items = platforms[0]["items"]
    assert [(i["action"], i["kind"], i["name"], i["index"]) for i in items] == [
        ("build-wheel", "source-tree", "local-pkg", None),
        ("download", "wheel", "numpy", "https://my-custom-index.example.com/simple"),
        ("download", "wheel", "requests", "https://my-custom-index.example.com/simple"),
    ]
    monkeypatch.setenv("PIXI_PACK_SRC_IGNORE_PYPI_NON_WHEEL", "1")
    monkeypatch.setenv("PIXI_PACK_SRC_PLATFORM", "linux-64")
    doc = _json(capsys, ["inspect", str(root), "--json"])
    platforms = doc["platforms"]
    assert isinstance(platforms, list)
    assert platforms[0]["items"][0]["action"] == "skip"
    assert platforms[0]["items"][0]["reason"] == "not a wheel (--ignore-pypi-non-wheel)"


def test_subprocess_json(tmp_path: Path) -> None:
    root = _workspace(tmp_path, "v7-source-git-located-nested-build-host.yml")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run(
        [sys.executable, "-m", "pixi_pack_src", "inspect", str(root), "-p", "linux-64", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["version"] == 1
    (plan,) = doc["platforms"]
    assert [(i["action"], i["name"]) for i in plan["items"]] == [
        ("download", "build-tool"),
        ("download", "host-lib"),
        ("build-conda", "inner"),
        ("build-conda", "outer"),
    ]
    assert [b["argv"][3] for b in doc["builds"]] == ["{checkout}", "{checkout}"]
    assert "2 conda packages have no sha256 or md5" in proc.stderr


GOLDEN = DATA / "golden" / "inspect-cpp-git-source.json"


def test_json_golden(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The whole --json document for one sample; regenerate with UPDATE_GOLDEN=1 after a
    deliberate format change (and bump "version" when it is not backwards compatible)."""
    root = _workspace(tmp_path, "v7-pixi-real-cpp-git-source.lock")
    code = run(["inspect", str(root), "-p", "osx-arm64", "-p", "win-64", "--json"])
    out, err = capsys.readouterr()
    assert code == 1, err  # the backend is not pinned: a pack would fail
    assert err.count("error: cannot tell which build backend sdl_example") == 1, err
    doc = json.loads(out.replace(str(root), "{root}"))
    assert doc["tool"]["version"] == __version__
    doc["tool"]["version"] = "{version}"
    text = json.dumps(doc, indent=2) + "\n"
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()
