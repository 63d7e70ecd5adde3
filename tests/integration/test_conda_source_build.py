"""The conda source build driver against the stand-in pixi (docs/pixi-build.md §1-§9)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from testworld.gitrepo import make_bare_repo
from testworld.install import install_records
from testworld.layout import World
from testworld.locks import Env, Plat, SourceEntry, write_lock
from testworld.pixi_standin import StandIn
from testworld.pixi_standin.workspaces import (
    conda_source,
    write_package,
    write_workspace_manifest,
)
from testworld.workspace import write_workspace

from pixi_pack_src.builders.conda import (
    BuiltArtifact,
    SourceBuildOptions,
    build_sources,
    check_environment,
    inspect_jobs,
    plan_source_builds,
)
from pixi_pack_src.builders.git import checkout_dir
from pixi_pack_src.errors import BuildError
from pixi_pack_src.lock.lockfile import load_lock
from pixi_pack_src.lock.model import CondaSource
from pixi_pack_src.reporter import NullReporter

pytestmark = [
    pytest.mark.integration,
]


PLATFORMS = ("linux-64", "osx-arm64")


def origin(artifact: BuiltArtifact) -> dict[str, Any]:
    doc = artifact.provenance["origin"]
    assert isinstance(doc, dict)
    return doc


def builder(artifact: BuiltArtifact) -> dict[str, Any]:
    doc = artifact.provenance["builder"]
    assert isinstance(doc, dict)
    return doc


@dataclass
class Project:
    root: Path
    git_url: str
    git_rev: str
    tmp: Path

    @property
    def git_location(self) -> str:
        return f"git+{self.git_url}?subdirectory=gitpkg#{self.git_rev}"

    def entries(
        self, platform: str, *, gitpkg: Mapping[str, str] | None = None
    ) -> list[CondaSource]:
        r = self.root
        return [
            conda_source(
                "main",
                "src/main",
                root=r,
                platform=platform,
                depends=("pkg",),
                source_depends={"pkg": {"path": "../pkg"}},
            ),
            conda_source(
                "pkg",
                "src/pkg",
                root=r,
                platform=platform,
                depends=("pkg2",),
                source_depends={"pkg2": {"path": "../pkg2"}},
            ),
            conda_source("pkg2", "src/pkg2", root=r, platform=platform, noarch=True),
            conda_source(
                "gitpkg",
                self.git_location,
                root=r,
                platform=platform,
                version=(gitpkg or {}).get("version"),
                build=(gitpkg or {}).get("build"),
            ),
        ]

    def sources(self, platforms: Sequence[str] = PLATFORMS) -> dict[str, list[CondaSource]]:
        return {p: self.entries(p) for p in platforms}

    def options(self, **kw: object) -> SourceBuildOptions:
        base: dict[str, object] = {"work_dir": self.tmp / "work", "cache_root": self.tmp / "cache"}
        base.update(kw)
        return SourceBuildOptions(**base)  # type: ignore[arg-type]

    def build(
        self, sources: Mapping[str, Sequence[CondaSource]] | None = None, **kw: object
    ) -> dict[str, BuiltArtifact]:
        jobs = plan_source_builds(
            sources or self.sources(), workspace_root=self.root, host="linux-64"
        )
        return build_sources(jobs, options=self.options(**kw), reporter=NullReporter())


@pytest.fixture
def project(tmp_path: Path) -> Project:
    root = tmp_path / "ws"
    write_workspace_manifest(root, platforms=PLATFORMS)
    write_package(root / "src" / "main", "main", noarch=False, source_run={"pkg": "../pkg"})
    write_package(root / "src" / "pkg", "pkg", noarch=False, source_run={"pkg2": "../pkg2"})
    write_package(root / "src" / "pkg2", "pkg2", files={"share/pkg2/hello.txt": "hello"})
    repo = tmp_path / "gitrepo"
    write_workspace_manifest(repo, platforms=PLATFORMS, name="git-workspace")
    write_package(repo / "gitpkg", "gitpkg", noarch=False)
    url, rev = make_bare_repo(repo, tmp_path / "gitpkg.git")
    return Project(root=root, git_url=url, git_rev=rev, tmp=tmp_path)


def test_path_git_noarch_and_chain_for_two_platforms(fake_pixi: StandIn, project: Project) -> None:
    sources = project.sources()
    built = project.build(sources)
    every_id = {e.lock_id for entries in sources.values() for e in entries}
    assert set(built) == every_id

    calls = fake_pixi.builds()
    per_package = sorted((c.package or "", c.target_platform or "") for c in calls)
    assert per_package == [
        ("gitpkg", "linux-64"),
        ("gitpkg", "osx-arm64"),
        ("main", "linux-64"),
        ("main", "osx-arm64"),
        ("pkg", "linux-64"),
        ("pkg", "osx-arm64"),
        ("pkg2", "linux-64"),  # noarch: once, for the host platform
    ]
    outdirs = [c.flag("--output-dir") for c in calls]
    assert len(set(outdirs)) == len(calls)
    for call in calls:
        assert call.command == "build"
        assert call.flag("--target-platform") == call.target_platform
        assert "--color" in call.argv
        assert "--no-progress" in call.argv
        assert call.skipped == ()  # a fresh, empty output directory every time
        assert not call.opened_lock
        assert str(call.flag("--output-dir")).startswith(str(project.tmp / "work"))

    # The git package was built from the locked commit (not the branch tip), in a cached
    # checkout, with its own workspace.
    (git_call, _) = [c for c in calls if c.package == "gitpkg"]
    checkout = checkout_dir(project.tmp / "cache", project.git_url, project.git_rev)
    assert git_call.path == str(checkout / "gitpkg")
    assert git_call.workspace == str(checkout)
    assert not (checkout / "CHANGELOG").exists()

    noarch = {a for lock_id, a in built.items() if lock_id.startswith("pkg2[")}
    (pkg2,) = noarch
    assert pkg2.subdir == "noarch"
    assert len(pkg2.lock_ids) == 2
    assert pkg2.archive_path == f"channel/noarch/{pkg2.file_name}"
    assert (pkg2.record.name.normalized, str(pkg2.record.version), pkg2.record.subdir) == (
        "pkg2",
        "0.1.0",
        "noarch",
    )
    assert pkg2.path.is_relative_to(project.tmp / "cache" / "conda-builds-v1")

    main_osx = next(
        a for i, a in built.items() if i.startswith("main[") and a.subdir == "osx-arm64"
    )
    main_origin = origin(main_osx)
    assert main_origin["type"] == "conda-source"
    assert main_origin["location"] == "src/main"
    assert main_origin["match"] == ["name", "subdir", "variants"]
    assert main_origin["variants"] == {"target_platform": "osx-arm64"}
    assert len(str(main_origin["source-tree-sha256"])) == 64
    assert builder(main_osx) == {
        "argv": [
            "pixi",
            "build",
            "--path",
            "{workspace}/src/main",
            "--output-dir",
            "{outdir}",
            "--target-platform",
            "osx-arm64",
            "--color",
            "never",
            "--no-progress",
        ],
        "pixi-version": "0.77.0",
        "command": "build",
        "backend": {"name": "pixi-build-rattler-build", "spec": "==0.4.5"},
    }
    git_art = next(
        a for i, a in built.items() if i.startswith("gitpkg[") and a.subdir == "linux-64"
    )
    git_origin = origin(git_art)
    assert (git_origin["git"], git_origin["rev"], git_origin["subdirectory"]) == (
        project.git_url,
        project.git_rev,
        "gitpkg",
    )
    assert "source-tree-sha256" not in git_origin
    assert str(project.tmp) not in repr(main_osx.provenance)  # no absolute paths
    assert all(not a.from_cache and a.warnings == () for a in built.values())

    # Packing again with unchanged sources builds nothing: only `pixi --version` runs.
    before = len(fake_pixi.calls())
    again = project.build(sources)
    assert [c.command for c in fake_pixi.calls()[before:]] == ["--version"]
    assert set(again) == every_id
    assert all(a.from_cache for a in again.values())
    assert {i: a.file_name for i, a in again.items()} == {i: a.file_name for i, a in built.items()}
    assert again[main_osx.lock_ids[0]].provenance == main_osx.provenance

    jobs = plan_source_builds(sources, workspace_root=project.root, host="linux-64")
    shown = inspect_jobs(jobs, options=project.options())
    assert [d["cached"] for d in shown] == [True] * 7
    pixi_doc = shown[0]["pixi"]
    assert isinstance(pixi_doc, dict)
    assert (pixi_doc["path"], pixi_doc["version"], pixi_doc["command"]) == (
        str(fake_pixi.exe),
        "0.77.0",
        "build",
    )
    assert shown[0]["argv"] == list(jobs[0].argv_preview)

    # An edit to a path package rebuilds that package only (both platforms).
    recipe = project.root / "src" / "pkg" / "recipe.yaml"
    recipe.write_text(recipe.read_text() + "\n# edited\n")
    before = len(fake_pixi.builds())
    project.build(sources)
    assert sorted(c.package or "" for c in fake_pixi.builds()[before:]) == ["pkg", "pkg"]


def test_a_failing_build_shows_the_log_tail_and_path(fake_pixi: StandIn, project: Project) -> None:
    fake_pixi.fail("pkg", "fail")
    with pytest.raises(BuildError) as err:
        project.build({"linux-64": project.entries("linux-64")[1:2]})
    exc = err.value
    assert exc.exit_code == 4
    assert exc.message == "`pixi build` of pkg (src/pkg) for linux-64 failed with exit code 1"
    assert "error: backend failure requested for pkg" in exc.output_tail
    assert exc.output_tail.splitlines()[-1].endswith(
        "failed to build 'pkg' from '" + str(project.root / "src" / "pkg") + "'"
    )
    assert exc.log_file is not None
    assert exc.log_file.is_relative_to(project.tmp / "cache" / "build-logs")
    log_text = exc.log_file.read_text()
    assert log_text.startswith(f"$ {fake_pixi.exe} build --path {project.root / 'src' / 'pkg'}")
    assert "step 01: compiling pkg part 1" in log_text  # the whole output, not just the tail
    assert exc.hint is not None
    assert f"the full log is {exc.log_file}" in exc.hint
    assert "--keep-build-dir" in exc.hint


def test_a_crash_and_a_timeout_are_build_errors(fake_pixi: StandIn, project: Project) -> None:
    pkg2 = {"linux-64": project.entries("linux-64")[2:3]}
    fake_pixi.fail("pkg2", "crash")
    with pytest.raises(BuildError, match=r"crashed \(exit code 101"):
        project.build(pkg2, cache_root=None)
    fake_pixi.fail("pkg2", "slow:60")
    with pytest.raises(BuildError) as err:
        project.build(pkg2, cache_root=None, timeout=1.0)
    assert err.value.message == "`pixi build` of pkg2 (src/pkg2) for linux-64 timed out after 1 s"
    assert err.value.log_file is not None
    assert err.value.log_file.exists()  # kept outside the work dir, for the user


def test_an_artifact_that_contradicts_a_full_record_fails(
    fake_pixi: StandIn, project: Project
) -> None:
    first = project.build({"linux-64": project.entries("linux-64")[3:]}, cache_root=None)
    (built,) = first.values()
    locked = {"version": "0.1.0", "build": str(built.record.build)}
    full = {"linux-64": project.entries("linux-64", gitpkg=locked)[3:]}
    ok = project.build(full, cache_root=None)
    (matched,) = ok.values()
    assert origin(matched)["match"] == [
        "name",
        "subdir",
        "version",
        "build",
        "variants",
    ]

    fake_pixi.fail("gitpkg", "drift")
    with pytest.raises(BuildError) as err:
        project.build(full, cache_root=None)
    assert "drifted from the lock" in err.value.message
    assert f"0.1.0 build {locked['build']}" in err.value.message
    assert "_drift" in err.value.message
    accepted = project.build(full, cache_root=None, allow_drift=True)
    (drifted,) = accepted.values()
    drift_origin = origin(drifted)
    assert drift_origin["drift"] == {
        "lock": f"0.1.0-{locked['build']}",
        "built": f"0.1.0-{locked['build'].removesuffix('_0')}_drift",
    }
    assert drift_origin["match"] == ["name", "subdir", "variants"]
    assert any("accepted: --allow-drift" in w for w in drifted.warnings)


def test_an_unpinned_backend_fails_before_pixi_runs(fake_pixi: StandIn, project: Project) -> None:
    write_package(project.root / "src" / "pkg2", "pkg2", backend_version=">=0.4")
    pkg2 = {"linux-64": project.entries("linux-64")[2:3]}
    with pytest.raises(BuildError) as err:
        project.build(pkg2)
    manifest = project.root / "src" / "pkg2" / "pixi.toml"
    assert err.value.exit_code == 4
    assert f"is not pinned (version '>=0.4') in {manifest}, line 6" in err.value.message
    assert fake_pixi.calls() == []
    built = project.build(pkg2, allow_unpinned_backends=True)
    (artifact,) = built.values()
    assert any("is not pinned" in w for w in artifact.warnings)
    assert builder(artifact)["backend"] == {
        "name": "pixi-build-rattler-build",
        "spec": ">=0.4",
    }


def test_a_backend_override_reaches_pixi_and_the_provenance(
    fake_pixi: StandIn, project: Project
) -> None:
    write_package(project.root / "src" / "pkg2", "pkg2", backend_version=None)
    backend = project.tmp / "pixi-build-rattler-build"
    backend.write_text("#!/bin/sh\n")
    backend.chmod(0o755)
    pkg2 = {"linux-64": project.entries("linux-64")[2:3]}
    built = project.build(pkg2, backend_overrides={"pixi-build-rattler-build": backend})
    (call,) = fake_pixi.builds()
    assert call.env["PIXI_BUILD_BACKEND_OVERRIDE"] == f"pixi-build-rattler-build={backend}"
    (artifact,) = built.values()
    backend_doc = builder(artifact)["backend"]
    assert backend_doc["override-sha256"] == (
        "a8076d3d28d21e02012b20eaf7dbf75409a6277134439025f282e368e3305abf"
    )
    assert artifact.warnings == ()


def test_publish_when_build_is_gone_and_its_source_run_dependency_refusal(
    fake_pixi: StandIn, project: Project
) -> None:
    fake_pixi.remove_build()
    built = project.build({"linux-64": project.entries("linux-64")[2:3]})
    (artifact,) = built.values()
    (call,) = fake_pixi.builds()
    assert call.command == "publish"
    assert call.flag("--target-dir") is not None
    assert builder(artifact)["command"] == "publish"
    assert builder(artifact)["argv"][4] == "--target-dir"
    with pytest.raises(BuildError) as err:
        project.build({"linux-64": project.entries("linux-64")[1:2]})
    assert err.value.hint is not None
    assert "refuses packages whose run dependencies are source packages (pkg2" in err.value.hint
    assert "run dependencies on source packages (pkg2)" in err.value.output_tail


def test_pixi_older_than_068_is_refused(fake_pixi: StandIn, project: Project) -> None:
    fake_pixi.version("0.67.0")
    with pytest.raises(BuildError, match="cannot read lock files of version 7"):
        project.build()
    assert [c.command for c in fake_pixi.calls()] == ["--version"]


def test_no_hash_input_falls_back_to_name_and_subdir(fake_pixi: StandIn, project: Project) -> None:
    fake_pixi.no_hash_input("pkg2")
    built = project.build({"linux-64": project.entries("linux-64")[2:3]})
    (artifact,) = built.values()
    assert origin(artifact)["match"] == ["name", "subdir"]
    assert any("has no info/hash_input.json" in w for w in artifact.warnings)


def test_variants_and_extra_outputs(fake_pixi: StandIn, tmp_path: Path) -> None:
    root = tmp_path / "ws"
    write_workspace_manifest(root, build_variants={"flavor": ["a", "b"]})
    write_package(root / "v", "var", noarch=False, use_variants=("flavor",))
    write_package(root / "m", "multi", extra_outputs=("multi-extra",))
    entries = [
        conda_source("var", "v", root=root, variants={"flavor": "b"}),
        conda_source("multi", "m", root=root, noarch=True),
    ]
    jobs = plan_source_builds({"linux-64": entries}, workspace_root=root)
    built = build_sources(
        jobs,
        options=SourceBuildOptions(work_dir=tmp_path / "work", cache_root=tmp_path / "cache"),
        reporter=NullReporter(),
    )
    var = built[entries[0].lock_id]
    assert origin(var)["variants"] == {"flavor": "b", "target_platform": "linux-64"}
    produced = {c.package: c.outputs for c in fake_pixi.builds()}
    assert len(produced["var"]) == 2
    assert len(produced["multi"]) == 2
    assert var.file_name in produced["var"]
    assert sorted(a.record.name.normalized for a in built.values()) == ["multi", "var"]


def test_parallel_builds_across_workspaces(fake_pixi: StandIn, project: Project) -> None:
    sources = {"linux-64": [project.entries("linux-64")[i] for i in (2, 3)]}
    built = project.build(sources, build_jobs=2, cache_root=None)
    assert len(built) == 2
    assert all(a.path.is_relative_to(project.tmp / "work") for a in built.values())
    assert len(fake_pixi.builds()) == 2


def test_a_world_lock_builds_and_installs(
    fake_pixi: StandIn, world: World, tmp_path: Path, project: Project
) -> None:
    """A real lock (written by the world) with path, git, noarch and a chain, two platforms."""
    staging = tmp_path / "staging"
    write_package(staging / "main", "main", noarch=False, source_run={"pkg": "../pkg"})
    write_package(staging / "pkg", "pkg", noarch=False, source_run={"pkg2": "../pkg2"})
    write_package(
        staging / "pkg2", "pkg2", run=("chain-a",), files={"share/pkg2/hello.txt": "hello"}
    )
    sources = (
        SourceEntry(
            "main", "src/main", depends=("pkg",), source_depends={"pkg": {"path": "../pkg"}}
        ),
        SourceEntry(
            "pkg", "src/pkg", depends=("pkg2",), source_depends={"pkg2": {"path": "../pkg2"}}
        ),
        SourceEntry("pkg2", "src/pkg2", depends=("chain-a",), noarch=True),
        SourceEntry("gitpkg", project.git_location),
    )
    ws = write_workspace(
        tmp_path / "world-ws",
        world,
        {"default": Env(conda=("chain-a",), sources=sources)},
        platforms=(Plat("linux-64"), Plat("osx-arm64")),
        local_paths={f"src/{n}": staging / n for n in ("main", "pkg", "pkg2")},
    )
    lock = load_lock(ws.lock_path)
    envs = {p: lock.select("default", p) for p in PLATFORMS}
    jobs = plan_source_builds(
        {p: e.sources for p, e in envs.items()}, workspace_root=lock.workspace_root
    )
    built = build_sources(
        jobs,
        options=SourceBuildOptions(work_dir=tmp_path / "work", cache_root=tmp_path / "cache"),
        reporter=NullReporter(),
    )
    assert sorted((c.package, c.target_platform) for c in fake_pixi.builds()) == [
        ("gitpkg", "linux-64"),
        ("gitpkg", "osx-arm64"),
        ("main", "linux-64"),
        ("main", "osx-arm64"),
        ("pkg", "linux-64"),
        ("pkg", "osx-arm64"),
        ("pkg2", "linux-64"),
    ]
    assert not any(c.opened_lock for c in fake_pixi.calls())

    linux = envs["linux-64"]
    mine = {s.lock_id: built[s.lock_id] for s in linux.sources}
    binaries = [c.record for c in linux.conda]
    check_environment(binaries, mine)
    without_chain = [r for r in binaries if r.name.normalized != "chain-a"]
    with pytest.raises(BuildError) as err:
        check_environment(without_chain, mine)
    assert err.value.message.startswith("the built package pkg2-0.1.0-")
    assert "depends on `chain-a`, which is not in the environment" in err.value.message

    records = [*binaries, *{id(a): a.record for a in mine.values()}.values()]
    prefix = install_records(records, tmp_path / "env")
    assert (prefix / "share" / "pkg2" / "hello.txt").read_text() == "hello\n"
    for name in ("main", "pkg", "pkg2", "gitpkg"):
        assert (prefix / "share" / name / "VERSION").read_text() == "0.1.0\n"
    assert sorted(p.name for p in (prefix / "conda-meta").glob("*.json")) == sorted(
        f"{r.name.normalized}-{r.version}-{r.build}.json" for r in records
    )
    shutil.rmtree(prefix)


def test_the_local_build_example_with_the_standin(
    fake_pixi: StandIn, world: World, tmp_path: Path
) -> None:
    """examples/local-build (pinned backends, root package, chain of source run-deps), with a
    lock written by the world since pixi is not here to write one."""
    example = Path(__file__).resolve().parents[2] / "examples" / "local-build"
    ws = tmp_path / "local-build"
    shutil.copytree(example, ws, ignore=shutil.ignore_patterns(".pixi", "pixi.lock", "*.tar"))
    sources = (
        SourceEntry(
            "local-build-main",
            ".",
            depends=("local-build-pkg",),
            source_depends={"local-build-pkg": {"path": "pkg"}},
        ),
        SourceEntry(
            "local-build-pkg",
            "pkg",
            depends=("local-build-pkg2",),
            source_depends={"local-build-pkg2": {"path": "../pkg2"}},
            noarch=True,
        ),
        SourceEntry("local-build-pkg2", "pkg2", noarch=True),
    )
    write_lock(
        ws / "pixi.lock",
        world,
        {"default": Env(sources=sources)},
        platforms=(Plat("linux-64"), Plat("osx-arm64")),
    )
    lock = load_lock(ws / "pixi.lock")
    envs = {p: lock.select("default", p) for p in PLATFORMS}
    jobs = plan_source_builds({p: e.sources for p, e in envs.items()}, workspace_root=ws)
    assert [j.argv_preview[3] for j in jobs] == [
        "{workspace}",
        "{workspace}",
        "{workspace}/pkg",
        "{workspace}/pkg2",
    ]
    built = build_sources(
        jobs,
        options=SourceBuildOptions(work_dir=tmp_path / "work", cache_root=tmp_path / "cache"),
        reporter=NullReporter(),
    )
    assert sorted((c.package, c.target_platform) for c in fake_pixi.builds()) == [
        ("local-build-main", "linux-64"),
        ("local-build-main", "osx-arm64"),
        ("local-build-pkg", "linux-64"),
        ("local-build-pkg2", "linux-64"),
    ]
    linux = envs["linux-64"]
    mine = {s.lock_id: built[s.lock_id] for s in linux.sources}
    check_environment([], mine)
    prefix = install_records(
        [a.record for a in {id(a): a for a in mine.values()}.values()], tmp_path / "env"
    )
    out = subprocess.run(
        [str(prefix / "bin" / "local-build-hello")], capture_output=True, text=True, check=True
    )
    assert out.stdout.splitlines() == [
        "local-build-main 0.1.0",
        "local-build-pkg 0.1.0",
        "local-build-pkg2 0.1.0",
        "built for linux-64",
    ]
