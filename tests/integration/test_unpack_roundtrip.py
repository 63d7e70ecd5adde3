"""unpack installs world packs for real: tar, directory, stdin (CLI), plain format 1, --force,
and a foreign platform with --platform-check off."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from testworld.install import run_in
from testworld.layout import World
from testworld.packdir import (
    FOREIGN_SPECS,
    PackDir,
    build_pack_dir,
    make_wheel,
    quantco_repodata,
    write_pack_tar,
)

from pixi_pack_src.cli import run as cli_run
from pixi_pack_src.errors import EXIT_ERROR, PackFormatError
from pixi_pack_src.install.conda import HISTORY_LINE
from pixi_pack_src.reporter import NullReporter, Outcome
from pixi_pack_src.unpack import UnpackOptions, UnpackResult, unpack
from pixi_pack_src.wheels import WheelCompatibilityError

pytestmark = pytest.mark.integration


class Recorder(NullReporter):
    """Keeps the stage and task events (from the calling thread only)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, object]] = []

    def stage_started(self, stage: str, *, items: int, total_bytes: int | None = None) -> None:
        self.events.append(("stage", stage, items))

    def task_finished(self, key: str, *, outcome: Outcome, detail: str = "") -> None:
        self.events.append(("task", key, outcome))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree(root: Path) -> dict[str, tuple[int, str | None]]:
    """Every path under ``root`` with its mode and, for files, its sha256."""
    out: dict[str, tuple[int, str | None]] = {}
    for directory, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = Path(directory) / name
            st = path.lstat()
            digest = _sha256(path) if path.is_file() and not path.is_symlink() else None
            out[path.relative_to(root).as_posix()] = (st.st_mode, digest)
    return out


@dataclass(frozen=True)
class Unpacked:
    pack: PackDir
    tar: Path
    tar_sha256: str
    out: Path
    result: UnpackResult
    reporter: Recorder

    @property
    def env(self) -> Path:
        return self.result.environment


@pytest.fixture(scope="module")
def pack(world: World, tmp_path_factory: pytest.TempPathFactory) -> PackDir:
    return build_pack_dir(world, tmp_path_factory.mktemp("packdir") / "environment")


@pytest.fixture(scope="module")
def tar(pack: PackDir, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pack_tar(pack.root, tmp_path_factory.mktemp("tar") / "environment.tar")


@pytest.fixture(scope="module")
def unpacked(pack: PackDir, tar: Path, tmp_path_factory: pytest.TempPathFactory) -> Unpacked:
    # A space in the path: shebangs, activation quoting and relocation must cope.
    out = tmp_path_factory.mktemp("out") / "unpacked here"
    before = _sha256(tar)
    recorder = Recorder()
    result = unpack(UnpackOptions(pack=tar, output_dir=out, shell="bash"), reporter=recorder)
    return Unpacked(pack, tar, before, out, result, recorder)


def test_result(unpacked: Unpacked) -> None:
    r = unpacked.result
    n = len(unpacked.pack.records)
    assert n == 11
    assert (r.environment, r.activation_script) == (
        unpacked.out / "env",
        unpacked.out / "activate.sh",
    )
    assert (r.shell, r.platform, r.conda_packages, r.wheels) == ("bash", "linux-64", n, 3)
    assert (r.verified, r.verified_against, r.warnings) == (n + 3, "pixi-pack-src.json", ())
    events = unpacked.reporter.events
    assert ("stage", "install", n + 3) in events
    assert ("task", "conda", "installed") in events
    wheel_tasks = [e for e in events if e[1].startswith("wheel:")]
    assert wheel_tasks == [
        ("task", f"wheel:{w}", "installed") for w in sorted(unpacked.pack.wheels)
    ]


def test_only_the_environment_and_the_script_are_left(unpacked: Unpacked) -> None:
    assert sorted(p.name for p in unpacked.out.iterdir()) == ["activate.sh", "env"]
    assert _sha256(unpacked.tar) == unpacked.tar_sha256
    assert not (unpacked.env / "CACHEDIR.TAG").exists()


def test_conda_meta(unpacked: Unpacked) -> None:
    meta = unpacked.env / "conda-meta"
    for record in unpacked.pack.records:
        name = f"{record.name.normalized}-{record.version}-{record.build}.json"
        doc = json.loads((meta / name).read_text())
        assert record.sha256 is not None
        assert (doc["name"], doc["sha256"]) == (record.name.normalized, record.sha256.hex())
        assert doc["url"] == record.url  # where pack got it (pixi-pack-src.json), not a temp copy
        assert "extracted_package_dir" not in doc
    assert (meta / "history").read_text() == HISTORY_LINE


def test_python_imports_conda_and_pypi_packages(unpacked: Unpacked) -> None:
    env = unpacked.env
    code = (
        "import sys, worldpkg_b, worldpkg_c, pyworld_plugins; print(sys.prefix); "
        "print(worldpkg_b.hello()); print(worldpkg_c.hello()); print(pyworld_plugins.hello())"
    )
    out = run_in(env, [str(env / "bin" / "python"), "-c", code]).stdout
    assert out.splitlines() == [
        str(env),
        "hello from worldpkg-b 2.0.1 with hello from worldpkg-a 1.0.0",
        "hello from worldpkg-c 0.5.0",
        "plugins 0.1.0 on hello from pyworld 0.3.0",
    ]


def test_prefixes_are_relocated_to_the_new_environment(unpacked: Unpacked) -> None:
    env = unpacked.env
    assert run_in(env, [str(env / "bin" / "relocme")]).stdout == f"{env}\n"  # binary placeholder
    assert run_in(env, [str(env / "bin" / "relocme-sh")]).stdout == f"{env}\n"
    assert (env / "etc" / "relocme.conf").read_text() == f"prefix={env}\n"  # text placeholder
    assert run_in(env, [str(env / "bin" / "greet"), "x"]).stdout == "hello x from libgreet 2.1.0\n"
    assert run_in(env, [str(env / "bin" / "wl")]).stdout == "withlinks ok\n"
    assert run_in(env, [str(env / "bin" / "worldcli"), "y"]).stdout == "worldcli 1.0.0 y\n"
    mentions = [
        p.relative_to(env).as_posix()
        for p in env.rglob("*")
        if p.is_file() and not p.is_symlink() and b".pixi-pack-src-unpack-" in p.read_bytes()
    ]
    # Only rattler's `link.source` (not settable from Python) still names the temporary cache.
    assert sorted(mentions) == sorted(
        f"conda-meta/{r.name.normalized}-{r.version}-{r.build}.json" for r in unpacked.pack.records
    )


def test_wheel_console_script_and_metadata(unpacked: Unpacked) -> None:
    env = unpacked.env
    assert run_in(env, [str(env / "bin" / "worldpkg-a")]).stdout == "hello from worldpkg-a 1.0.0\n"
    dist_info = env / "lib" / "python3.11" / "site-packages" / "worldpkg_a-1.0.0.dist-info"
    assert (dist_info / "INSTALLER").read_text() == "pixi-pack-src\n"
    record = (dist_info / "RECORD").read_text().splitlines()
    assert any(line.startswith("../../../bin/worldpkg-a,sha256=") for line in record)


def test_activation_script_in_bash(unpacked: Unpacked) -> None:
    script = unpacked.result.activation_script
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONDA", "PYTHON"))}
    env["PATH"] = "/usr/bin:/bin"
    code = "import os, sys; print(os.environ['CONDA_PREFIX']); print(sys.prefix)"
    proc = subprocess.run(
        ["bash", "-c", f'source "{script}" && python -c "{code}" && command -v worldpkg-a'],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    e = unpacked.env
    assert proc.stdout.splitlines() == [str(e), str(e), str(e / "bin" / "worldpkg-a")]


def test_directory_pack_is_used_in_place_and_left_byte_identical(
    pack: PackDir, tmp_path: Path
) -> None:
    before = _tree(pack.root)
    result = unpack(
        UnpackOptions(pack=pack.root, output_dir=tmp_path / "out", env_name="fromdir"),
        reporter=NullReporter(),
    )
    assert _tree(pack.root) == before
    env = result.environment
    assert env == tmp_path / "out" / "fromdir"
    out = run_in(
        env, [str(env / "bin" / "python"), "-c", "import worldpkg_a; print(worldpkg_a.hello())"]
    )
    assert out.stdout == "hello from worldpkg-a 1.0.0\n"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["activate.sh", "fromdir"]


def test_stdin_through_the_cli(tar: Path, tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("pixi-pack-src")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "pixi_pack_src"]
    out = tmp_path / "out"
    line = f"cat {tar} | {' '.join(command)} unpack - -o {out} -s fish --json"
    proc = subprocess.run(["bash", "-c", line], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["version"] == 1
    assert (doc["environment"], doc["activation_script"]) == (
        str(out / "env"),
        str(out / "activate.fish"),
    )
    assert (doc["conda_packages"], doc["wheels"], doc["verified"]) == (11, 3, 14)
    assert doc["warnings"] == []
    assert (out / "activate.fish").read_text().startswith(f"set -gx PATH '{out / 'env'}/bin' $PATH")
    assert sorted(p.name for p in out.iterdir()) == ["activate.fish", "env"]


def test_cli_summary_and_force(
    pack: PackDir, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    args = ["unpack", str(pack.root), "-o", str(out), "-e", "e1", "-s", "zsh"]
    assert cli_run(args) == 0
    result = capsys.readouterr().out  # the summary is the result: stdout
    assert f"💫 Finished unpacking to {out / 'e1'}." in result
    assert (
        "11 conda package(s), 3 wheel(s); 14 file(s) verified against pixi-pack-src.json" in result
    )
    assert f"activate it with: source {out / 'activate.sh'}" in result
    marker = out / "e1" / "marker"
    marker.write_text("old")
    assert cli_run(args) == EXIT_ERROR
    err = capsys.readouterr().err
    assert f"error: the environment {out / 'e1'} already exists and is not empty" in err
    assert "help: pass --force to replace it" in err
    assert marker.read_text() == "old"
    assert cli_run([*args, "--force"]) == 0
    assert not marker.exists()
    assert (out / "e1" / "bin" / "python").exists()
    assert sorted(p.name for p in out.iterdir()) == ["activate.sh", "e1"]


def test_plain_format_1_pack_installs(world: World, tmp_path: Path) -> None:
    """A pack as Quantco's pixi-pack writes it: no pixi-pack-src.json, and every record (the
    .tar.bz2 ones too) under ``packages.conda``."""
    plain = build_pack_dir(
        world,
        tmp_path / "plain",
        specs=("python", "chain-a"),
        wheels=("worldpkg-a",),
        provenance=False,
    )
    quantco_repodata(plain.root)
    assert "channel/linux-64/chain-b-1.2.0-he228093_0.tar.bz2" in plain.conda_files
    assert not (plain.root / "pixi-pack-src.json").exists()
    tar = write_pack_tar(plain.root, tmp_path / "p.tar")
    result = unpack(UnpackOptions(pack=tar, output_dir=tmp_path / "o"), reporter=NullReporter())
    assert (result.verified, result.verified_against) == (len(plain.records), "repodata.json")
    assert result.warnings == (
        f"1 wheel(s) in {tar} cannot be verified: it has no pixi-pack-src.json "
        "(a plain format-1 archive records no wheel hashes)",
    )
    assert (result.environment / "bin" / "worldpkg-a").exists()
    assert (result.environment / "bin" / "chain-b").exists()


def test_foreign_platform_needs_platform_check_off(world: World, tmp_path: Path) -> None:
    foreign = build_pack_dir(
        world, tmp_path / "osx", specs=FOREIGN_SPECS, platform="osx-arm64", wheels=("worldpkg-a",)
    )
    options = UnpackOptions(pack=foreign.root, output_dir=tmp_path / "out")
    with pytest.raises(PackFormatError) as info:
        unpack(options, reporter=NullReporter())
    assert str(info.value) == (
        f"The pack was created for a different platform: {foreign.root} is for osx-arm64, "
        "this machine is linux-64"
    )
    assert info.value.hint is not None
    assert "--platform-check off" in info.value.hint
    assert not (tmp_path / "out").exists()

    result = unpack(
        UnpackOptions(pack=foreign.root, output_dir=tmp_path / "out", platform_check=False),
        reporter=NullReporter(),
    )
    env = result.environment
    assert result.platform == "osx-arm64"
    assert (env / "bin" / "chain-a").is_file()
    assert (env / "lib" / "python3.11" / "site-packages" / "worldpkg_a" / "__init__.py").is_file()
    assert (env / "bin" / "worldpkg-a").read_text().startswith(f"#!{env}/bin/python")
    assert result.warnings == (
        f"{foreign.root} is for osx-arm64, this machine is linux-64: installing anyway "
        "(--platform-check off); post-link steps and the interpreter are not run",
        f"virtual packages not checked: {foreign.root} is for osx-arm64, not linux-64",
    )


def test_a_failed_unpack_keeps_the_replaced_environment(
    world: World, pack: PackDir, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    first = unpack(UnpackOptions(pack=pack.root, output_dir=out), reporter=NullReporter())
    before = _tree(out)
    # Fails late: after the conda packages went into the staging environment.
    wheel = make_wheel(tmp_path / "w", "newer", tag="cp312-cp312-manylinux_2_17_x86_64")
    late = build_pack_dir(
        world, tmp_path / "late", specs=("python",), wheels=(), extra_wheels=[wheel]
    )
    with pytest.raises(WheelCompatibilityError, match=r"cannot be installed by the environment"):
        unpack(UnpackOptions(pack=late.root, output_dir=out, force=True), reporter=NullReporter())
    assert _tree(out) == before  # the old environment is back, nothing else is left
    assert (first.environment / "bin" / "worldpkg-a").is_file()


def test_cli_subprocess_exits_cleanly_every_time(world: World, tmp_path: Path) -> None:
    """py-rattler can crash an interpreter at exit : never with our CLI."""
    tiny = build_pack_dir(world, tmp_path / "tiny", specs=("chain-a",), wheels=())
    tar = write_pack_tar(tiny.root, tmp_path / "tiny.tar")
    command = [sys.executable, "-m", "pixi_pack_src", "-q", "unpack", str(tar), "--force"]
    codes = [
        subprocess.run(
            [*command, "-o", str(tmp_path / "out")], capture_output=True, check=False
        ).returncode
        for _ in range(4)
    ]
    assert codes == [0, 0, 0, 0]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["activate.sh", "env"]


def test_wheel_tags_come_from_the_interpreter(world: World, tmp_path: Path) -> None:
    """The lock assumed glibc 2.28, but this machine's python accepts manylinux_2_31: this
    machine's glibc (not the lock's) decides, as the interpreter would (without running it)."""
    wheel = make_wheel(tmp_path / "w", "glibcish", tag="cp311-cp311-manylinux_2_31_x86_64")
    pack = build_pack_dir(world, tmp_path / "p", specs=("python",), wheels=(), extra_wheels=[wheel])
    assert "__glibc=2.28=0" in pack.virtual_packages
    result = unpack(
        UnpackOptions(pack=pack.root, output_dir=tmp_path / "o"), reporter=NullReporter()
    )
    env = result.environment
    out = run_in(
        env, [str(env / "bin" / "python"), "-c", "import glibcish; print(glibcish.__version__)"]
    )
    assert out.stdout == "1.0\n"
    assert result.warnings == ()


def test_installed_files_match_the_hashes_of_paths_json(unpacked: Unpacked) -> None:
    """Every file a package installs unchanged (no prefix placeholder) has the sha256 and size
    its ``info/paths.json`` records: the packages were extracted straight from the tar."""
    checked = 0
    for meta in sorted((unpacked.env / "conda-meta").glob("*.json")):
        record = json.loads(meta.read_text())
        for entry in record.get("paths_data", {}).get("paths", []):
            path = unpacked.env / entry["_path"]
            if entry.get("file_mode") or entry.get("path_type") != "hardlink":
                continue
            if "sha256" not in entry or path.suffix == ".pyc":
                continue
            assert _sha256(path) == entry["sha256"], entry["_path"]
            assert path.stat().st_size == entry["size_in_bytes"], entry["_path"]
            checked += 1
    assert checked >= 20


def test_the_extractor_makes_the_tree_py_rattler_makes(world: World, tmp_path: Path) -> None:
    """On every package of the world (built by rattler-build, the real CPython among them),
    :func:`extract_package` writes the same tree as py-rattler's extractor: names, file types,
    link targets, bytes, the owner's executable bit."""
    from rattler.package_streaming import extract

    from pixi_pack_src.install.extract import Budget, extract_package

    def tree(root: Path) -> dict[str, tuple[str, str | bool]]:
        out: dict[str, tuple[str, str | bool]] = {}
        for directory, dirs, files in os.walk(root):
            for name in [*dirs, *files]:
                path = Path(directory) / name
                rel = path.relative_to(root).as_posix()
                if path.is_symlink():
                    out[rel] = ("link", str(path.readlink()))
                elif path.is_dir():
                    out[rel] = ("dir", True)
                else:
                    out[rel] = (_sha256(path), bool(path.stat().st_mode & 0o100))
        return out

    packages = sorted(world.channel_dir.glob("*/*.conda")) + sorted(
        world.channel_dir.glob("*/*.tar.bz2")
    )
    assert any(p.name.startswith("python-3") for p in packages)
    assert any(p.name.endswith(".tar.bz2") for p in packages)
    for i, package in enumerate(packages):
        ours, theirs = tmp_path / f"ours-{i}", tmp_path / f"theirs-{i}"
        fd = os.open(package, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            extract_package(
                fd, 0, size, ours, file_name=package.name, what=package.name, budget=Budget()
            )
        finally:
            os.close(fd)
        extract(package, theirs)
        assert tree(ours) == tree(theirs), package.name
