"""plan/: pack plans from the real samples and hand-made environments."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

from pixi_pack_src.lock.lockfile import load_lock
from pixi_pack_src.lock.model import LockedEnvironment
from pixi_pack_src.plan import PackPlan, make_plan, make_plans

DATA = Path(__file__).resolve().parent.parent / "data"
SAMPLES = DATA / "lock-samples"
LOCKS = DATA / "locks"

BACKEND_PINNED = (
    '[package]\nname = "{name}"\nversion = "0.1.0"\n\n[package.build.backend]\n'
    'name = "pixi-build-python"\nversion = "==0.5.0"\n'
)
BACKEND_RANGE = '[package]\nname = "{name}"\n\n[package.build]\nbackend = {{ name = "pixi-build-python", version = ">=0.4" }}\n'


def _env(path: Path, platform: str, environment: str = "default") -> LockedEnvironment:
    return load_lock(path).select(environment, platform)


def _workspace(tmp_path: Path, sample: str, packages: dict[str, str]) -> Path:
    """A copy of a sample lock as ``pixi.lock`` with package directories and manifests."""
    shutil.copyfile(SAMPLES / sample, tmp_path / "pixi.lock")
    for rel, manifest in packages.items():
        directory = tmp_path / rel
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "pixi.toml").write_text(manifest.format(name=directory.name))
    return tmp_path / "pixi.lock"


def test_partial_source_plan(tmp_path: Path) -> None:
    lock = _workspace(
        tmp_path,
        "v7-pixi-real-partial-source-variants.lock",
        {"src/root": BACKEND_PINNED, "src/depend": BACKEND_RANGE},
    )
    plan = make_plan(_env(lock, "linux-64"))
    assert [i.action for i in plan.items] == ["download"] * 22 + ["build-conda"] * 2
    first = plan.items[0]
    assert (first.name, first.archive_path) == (
        "_openmp_mutex",
        "channel/linux-64/_openmp_mutex-4.5-20_gnu.conda",
    )
    assert plan.items[21].archive_path == "channel/noarch/tzdata-2025c-hc9c84f9_1.conda"
    _depend, root = plan.items[22:]
    assert (root.name, root.version, root.source, root.archive_path) == (
        "root",
        None,
        str(tmp_path / "src" / "root"),
        None,
    )
    assert root.build_key == "path:src/root|noarch"
    assert plan.totals.by_action == {"download": 22, "build-conda": 2}
    assert plan.totals.download_bytes == sum(i.hashes.size or 0 for i in plan.items[:22])
    assert plan.totals.download_bytes == 49_666_606  # the sum of the lock's `size:` fields
    assert (plan.totals.unknown_size, plan.totals.builds, plan.totals.items) == (0, 2, 24)
    assert [b.argv for b in plan.builds] == [
        (
            "pixi",
            "build",
            "--path",
            "{workspace}/src/depend",
            "--output-dir",
            "{outdir}",
            "--target-platform",
            "linux-64",
            "--color",
            "never",
            "--no-progress",
        ),
        (
            "pixi",
            "build",
            "--path",
            "{workspace}/src/root",
            "--output-dir",
            "{outdir}",
            "--target-platform",
            "linux-64",
            "--color",
            "never",
            "--no-progress",
        ),
    ]
    depend_build, root_build = plan.builds
    assert root_build.noarch
    assert root_build.backend.spec is not None
    assert root_build.backend.spec.version == "==0.5.0"
    assert root_build.backend.use is not None
    assert root_build.backend.use.pinned
    assert depend_build.backend.spec is not None
    assert depend_build.backend.use is None  # a pack refuses it (the rule of check_backend)
    assert plan.warnings == ()
    assert plan.problems == (
        "the build backend pixi-build-python of depend (src/depend) is not pinned (version "
        f"'>=0.4') in {tmp_path / 'src' / 'depend' / 'pixi.toml'}, line 5",
    )


def test_noarch_builds_are_shared_across_platforms(tmp_path: Path) -> None:
    lock = _workspace(
        tmp_path,
        "v7-pixi-real-partial-source-variants.lock",
        {"src/root": BACKEND_PINNED, "src/depend": BACKEND_PINNED},
    )
    loaded = load_lock(lock)
    plans = make_plans([loaded.select("default", p) for p in ("linux-64", "osx-arm64", "win-64")])
    assert [len(p.builds) for p in plans.plans] == [2, 2, 2]
    assert [b.key for b in plans.builds] == ["path:src/depend|noarch", "path:src/root|noarch"]
    root = plans.builds[1]
    assert root.lock_ids == (
        "root[444b3894] @ src/root",
        "root[7307c985] @ src/root",
        "root[cceca1b5] @ src/root",
    )
    assert root.platforms == ("linux-64", "osx-arm64", "win-64")
    assert root.target_platform == "linux-64"
    assert plans.warnings == ()


def test_native_builds_per_platform_with_git_build_source() -> None:
    lock = load_lock(SAMPLES / "v7-pixi-real-cpp-git-source.lock")
    plans = make_plans([lock.select("default", p) for p in ("linux-64", "osx-arm64", "win-64")])
    assert [b.key for b in plans.builds] == ["path:.|linux-64", "path:.|osx-arm64", "path:.|win-64"]
    assert [b.argv[3] for b in plans.builds] == ["{workspace}"] * 3
    assert [b.argv[7] for b in plans.builds] == ["linux-64", "osx-arm64", "win-64"]
    assert [p.totals.by_action["download"] for p in plans.plans] == [56, 14, 8]
    item = next(i for i in plans.plans[0].items if i.action == "build-conda")
    conda_source = item.to_json()["conda-source"]
    assert isinstance(conda_source, dict)
    assert conda_source["record"] == "partial"
    assert conda_source["build-source"] == {
        "git": "https://github.com/prefix-dev/pixi-build-testsuite",
        "rev": "34d90eaf81fa042ace51ec27af28b1e487c79f32",
        "subdir": "tests/data/pixi_build/cpp-with-path-to-source/project",
    }
    assert conda_source["variants"] == {
        "c_stdlib": "sysroot",
        "c_stdlib_version": "2.28",
        "target_platform": "linux-64",
    }
    # "." is the sample directory itself: it exists, without a package manifest, so a pack
    # cannot tell which backend pixi would pick (unpinned): it refuses the build.
    assert plans.builds[0].backend.spec is None
    assert plans.problems == (
        f"cannot tell which build backend sdl_example (.) uses: {SAMPLES} declares no "
        "[package.build.backend] in a pixi.toml or pyproject.toml, so pixi picks one (unpinned)",
    )
    assert plans.warnings == ()


def test_multi_output_location_is_one_invocation_and_outside_workspace_warns() -> None:
    plan = make_plan(_env(SAMPLES / "v7-source-path-custom-platform-names.yml", "win-64"))
    assert [(b.key, b.names, b.noarch) for b in plan.builds] == [
        ("path:../a-python-project|noarch", ("a-python-project", "b-python-project"), True),
        ("path:../minimal-project|win-64", ("minimal-project",), False),
    ]
    assert plan.builds[0].argv[3] == "{workspace}/../a-python-project"
    assert plan.builds[0].origin == str(SAMPLES.parent / "a-python-project")
    assert plan.builds[0].target_platform == "win-64"
    items = [i for i in plan.items if i.action == "build-conda"]
    assert [(i.name, i.version) for i in items] == [
        ("a-python-project", "0.1"),
        ("b-python-project", "0.1"),
        ("minimal-project", "0.1"),
    ]
    assert (
        f"source package a-python-project: ../a-python-project is outside the workspace {SAMPLES}"
        in plan.warnings
    )
    assert len(plan.problems) == 2  # neither directory exists next to the sample
    assert all("does not exist" in p for p in plan.problems)


def test_git_located_sources_use_a_checkout_and_unhashed_binaries_warn() -> None:
    plan = make_plan(_env(SAMPLES / "v7-source-git-located-nested-build-host.yml", "linux-64"))
    assert [i.action for i in plan.items] == ["download", "download", "build-conda", "build-conda"]
    inner = plan.builds[0]
    assert inner.key == (
        "git:https://github.com/example/inner.git@0000000000000000000000000000000000000011#|noarch"
    )
    assert inner.argv[3] == "{checkout}"
    assert inner.origin == "https://github.com/example/inner.git@000000000000"
    assert not inner.backend.checked  # read from the checkout at build time
    assert inner.to_json()["git"] == {
        "url": "https://github.com/example/inner.git",
        "rev": "0000000000000000000000000000000000000011",
        "subdirectory": None,
    }
    assert plan.items[3].version == "2.0.0"
    assert plan.totals.unknown_size == 2
    assert plan.warnings == (
        "2 conda packages have no sha256 or md5 in the lock and cannot be verified: "
        "build-tool, host-lib",
    )
    assert plan.problems == ()


def test_pypi_actions_and_warnings() -> None:
    env = _env(LOCKS / "v7-pypi-kinds.lock", "linux-64")
    plan = make_plan(env)
    got = [(i.action, i.kind, i.name, i.archive_path) for i in plan.items]
    assert got == [
        ("download", "conda", "pip", "channel/linux-64/pip-1.0-h0_0.conda"),
        ("copy", "conda", "foo", "channel/noarch/foo-1.0-h0_0.conda"),
        ("download", "wheel", "a-b", "pypi/a+b-1.0-py3-none-any.whl"),
        ("build-wheel", "local-sdist", "bar", None),
        ("build-wheel", "sdist", "baz", None),
        ("copy", "local-wheel", "foo", "pypi/foo-1.0-py3-none-any.whl"),
        ("build-wheel", "source-tree", "me", None),
        ("build-wheel", "git", "recovar", None),
    ]
    assert plan.items[1].source == str(LOCKS / "local" / "noarch" / "foo-1.0-h0_0.conda")
    assert plan.items[7].source == "https://github.com/ma-gilles/recovar@c60e3c26f893"
    assert plan.totals.copy_bytes == 10
    assert plan.totals.unknown_size == 3  # pip (no size) and two wheels (PyPI has no sizes)
    assert plan.warnings == (
        "PyPI packages are locked but python is not a conda package of this environment: "
        "unpack cannot install the wheels",
        "1 conda packages have no sha256 or md5 in the lock and cannot be verified: pip",
        "2 PyPI files have no sha256 or md5 in the lock and cannot be verified: baz, foo",
    )


def test_ignore_pypi_non_wheel_skips_with_a_reason() -> None:
    env = _env(LOCKS / "v7-pypi-kinds.lock", "linux-64")
    plan = make_plan(env, ignore_pypi_non_wheel=True)
    skipped = [i for i in plan.items if i.action == "skip"]
    assert [i.name for i in skipped] == ["bar", "baz", "me", "recovar"]
    assert {i.reason for i in skipped} == {"not a wheel (--ignore-pypi-non-wheel)"}
    assert plan.totals.by_action == {"copy": 2, "download": 2, "skip": 4}
    assert (
        "PyPI package baz (sdist at https://example.com/packages/baz-1.0.tar.gz#sha256=abc) is "
        "not a wheel: skipped (--ignore-pypi-non-wheel)" in plan.warnings
    )
    assert "1 PyPI files have no sha256 or md5 in the lock and cannot be verified: foo" in (
        plan.warnings
    )


def test_pip_warning_when_wheels_and_python_without_pip() -> None:
    env = _env(LOCKS / "v6-conda-pypi-source.lock", "osx-arm64")
    python = dataclasses.replace(env.conda[0], name="python")
    plan = make_plan(dataclasses.replace(env, conda=(*env.conda, python)))
    assert plan.warnings == (
        "PyPI packages are locked but pip is not: conda and micromamba cannot install the "
        "archive's environment.yml (pixi-unpack can); add pip to the environment",
    )


def test_duplicates_are_planned_once() -> None:
    env = _env(LOCKS / "v6-conda-pypi-source.lock", "osx-arm64")
    doubled = dataclasses.replace(env, conda=env.conda + env.conda, pypi=env.pypi + env.pypi)
    plan = make_plan(doubled, read_backends=False)
    assert plan.totals.by_action == {"download": 5, "build-conda": 2}


def test_url_located_source_is_a_problem_and_branch_source_warns() -> None:
    env = _env(SAMPLES / "v7-source-build-source-git-tag.yml", "linux-64")
    (src,) = env.sources
    url_src = dataclasses.replace(
        src,
        lock_id="u[12345678] @ https://example.com/u.tar.gz",
        name="u",
        location="https://example.com/u.tar.gz",
        location_kind="url",
        path=None,
    )
    branchy = dataclasses.replace(
        src,
        version=None,
        subdir=None,
        source={"git": "https://github.com/example/p.git", "branch": "main", "rev": "abc123"},
    )
    plan = make_plan(dataclasses.replace(env, sources=(branchy, url_src)), read_backends=False)
    assert [(i.action, i.name, i.reason) for i in plan.items] == [
        ("build-conda", "pixi-tag-package", None),
        ("skip", "u", "unsupported source location"),
    ]
    assert plan.problems == (
        "source package u at https://example.com/u.tar.gz: URL-located source packages are not "
        "supported (pixi does not write them)",
    )
    assert plan.warnings == (
        "source package pixi-tag-package: its build source follows branch 'main' of "
        "https://github.com/example/p.git; `pixi build` re-resolves it, so the artifact may "
        "differ from the locked commit abc123",
    )


def test_json_document(tmp_path: Path) -> None:
    lock = _workspace(
        tmp_path, "v7-pixi-real-partial-source-variants.lock", {"src/root": BACKEND_PINNED}
    )
    plan: PackPlan = make_plan(_env(lock, "win-64"))
    doc = json.loads(json.dumps(plan.to_json()))
    assert doc["version"] == 1
    assert doc["environment"] == "default"
    assert doc["platform"] == {
        "name": "win-64",
        "subdir": "win-64",
        "virtual-packages": ["__win=10.0", "__archspec=0=x86_64"],
    }
    assert doc["lock"]["version"] == 7
    assert doc["lock"]["sha256"] == plan.lock_sha256
    assert doc["totals"] == {
        "items": 21,
        "download": 19,
        "copy": 0,
        "build-conda": 2,
        "build-wheel": 0,
        "skip": 0,
        "download-bytes": plan.totals.download_bytes,
        "copy-bytes": 0,
        "unknown-size": 0,
        "builds": 2,
    }
    root = next(i for i in doc["items"] if i["name"] == "root")
    assert root["conda-source"] == {
        "lock-id": "root[cceca1b5] @ src/root",
        "location": "src/root",
        "location-kind": "path",
        "record": "partial",
        "variants": {"target_platform": "noarch"},
        "build": None,
        "build-number": None,
        "subdir": None,
        "noarch": None,
        "build-source": None,
        "source-depends": {"depend": {"path": "../depend"}},
        "build-key": "path:src/root|noarch",
    }
    build = next(b for b in doc["builds"] if b["names"] == ["root"])
    assert build["backend"] == {
        "name": "pixi-build-python",
        "version": "==0.5.0",
        "pinned": True,
        "manifest": str(tmp_path / "src" / "root" / "pixi.toml"),
        "line": 7,
    }
    assert doc["problems"] == [
        f"source package depend: directory {tmp_path / 'src' / 'depend'} (location 'src/depend' "
        "in the lock) does not exist"
    ]
    python = next(i for i in doc["items"] if i["name"] == "python")
    assert python == {
        "action": "download",
        "kind": "conda",
        "name": "python",
        "version": "3.14.6",
        "file-name": "python-3.14.6-h4b44e0e_100_cp314.conda",
        "source": "https://prefix.dev/conda-forge/win-64/python-3.14.6-h4b44e0e_100_cp314.conda",
        "archive-path": "channel/win-64/python-3.14.6-h4b44e0e_100_cp314.conda",
        "sha256": python["sha256"],
        "md5": python["md5"],
        "size": python["size"],
        "reason": None,
    }
    assert len(python["sha256"]) == 64


def test_plans_json_merges(tmp_path: Path) -> None:
    lock = load_lock(SAMPLES / "v7-pixi-real-array-api-extra.lock")
    plans = make_plans([lock.select("default", p) for p in lock.platforms("default")])
    doc: dict[str, Any] = json.loads(json.dumps(plans.to_json(tool_version="9.9.9")))
    assert doc["version"] == 1
    assert doc["tool"] == {"name": "pixi-pack-src", "version": "9.9.9"}
    assert doc["environment"] == "default"
    assert [p["platform"]["name"] for p in doc["platforms"]] == [
        "linux-64",
        "osx-64",
        "osx-arm64",
        "win-64",
    ]
    assert len(plans.builds) == 1
    assert plans.builds[0].platforms == ("linux-64", "osx-64", "osx-arm64", "win-64")
    totals = doc["totals"]
    assert isinstance(totals, dict)
    assert (totals["download"], totals["build-conda"], totals["builds"]) == (77, 4, 1)
