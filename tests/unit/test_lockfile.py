"""lockfile.py on every real sample (v7), a v6 lock, and hand-written edge cases."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from rattler import PackageRecord, RepoDataRecord

from pixi_pack_src.errors import EXIT_ERROR, EXIT_USAGE, LockfileError, SelectionError
from pixi_pack_src.lock.lockfile import Lock, classify_pypi_location, load_lock, parse_git_location
from pixi_pack_src.lock.model import GitLocation, Hashes, Platform

DATA = Path(__file__).resolve().parent.parent / "data"
SAMPLES = DATA / "lock-samples"
LOCKS = DATA / "locks"
ALL_SAMPLES = sorted(p.name for p in SAMPLES.iterdir() if p.suffix in (".lock", ".yml"))


def _load(name: str) -> Lock:
    return load_lock(SAMPLES / name)


# -- every sample ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_SAMPLES)
def test_every_sample_loads_and_every_environment_platform_selects(name: str) -> None:
    lock = _load(name)
    assert lock.version == 7
    assert lock.sha256 == hashlib.sha256((SAMPLES / name).read_bytes()).hexdigest()
    assert lock.workspace_root == SAMPLES
    for env_name in lock.environment_names():
        for platform in lock.platforms(env_name):
            env = lock.select(env_name, platform.name)
            assert env.environment == env_name
            assert env.platform == platform
            assert env.lock_sha256 == lock.sha256
            assert env.lock_version == 7
            assert env.conda or env.sources or env.pypi


def test_sample_count() -> None:
    assert len(ALL_SAMPLES) == 9


# -- real pixi output: partial records, noarch once per platform ------------------------------


def test_partial_source_variants_platforms_and_channels() -> None:
    lock = _load("v7-pixi-real-partial-source-variants.lock")
    assert lock.environment_names() == ["default"]
    platforms = lock.platforms("default")
    assert [p.name for p in platforms] == ["linux-64", "osx-arm64", "win-64"]
    assert platforms[0] == Platform(
        "linux-64",
        "linux-64",
        ("__unix=0=0", "__linux=4.18", "__glibc=2.28", "__archspec=0=x86_64"),
    )
    env = lock.select("default", "linux-64")
    assert env.channels == (
        "https://prefix.dev/pixi-build-backends/",
        "https://prefix.dev/conda-forge/",
    )
    assert env.indexes == ()
    assert env.find_links == ()
    assert len(env.conda) == 22
    assert env.pypi == ()


def test_partial_source_variants_sources() -> None:
    env = _load("v7-pixi-real-partial-source-variants.lock").select("default", "linux-64")
    assert [s.lock_id for s in env.sources] == [
        "depend[9444ee95] @ src/depend",
        "root[444b3894] @ src/root",
    ]
    depend, root = env.sources
    assert (root.name, root.id_hash, root.location) == ("root", "444b3894", "src/root")
    assert root.location_kind == "path"
    assert root.path == SAMPLES / "src" / "root"
    assert root.git is None
    assert dict(root.variants) == {"target_platform": "noarch"}
    assert root.target_platform == "noarch"
    assert root.is_noarch
    assert not root.is_full
    assert (root.version, root.build, root.build_number, root.subdir, root.record) == (None,) * 5
    assert root.depends == ("depend", "python >=3.11", "python *")
    assert root.constrains == ()
    assert root.source is None
    assert {k: dict(v) for k, v in root.source_depends.items()} == {"depend": {"path": "../depend"}}
    assert root.build_packages == ()
    assert len(root.host_packages) == 30
    assert root.host_packages[0] == (
        "conda:https://prefix.dev/conda-forge/linux-64/_openmp_mutex-4.5-20_gnu.conda"
    )
    assert depend.source_depends == {}


def test_noarch_source_appears_once_per_platform_with_different_hashes() -> None:
    lock = _load("v7-pixi-real-partial-source-variants.lock")
    ids = {
        p.name: [s.lock_id for s in lock.select("default", p.name).sources]
        for p in lock.platforms("default")
    }
    assert ids == {
        "linux-64": ["depend[9444ee95] @ src/depend", "root[444b3894] @ src/root"],
        "osx-arm64": ["depend[ac14b369] @ src/depend", "root[7307c985] @ src/root"],
        "win-64": ["depend[291aac09] @ src/depend", "root[cceca1b5] @ src/root"],
    }
    hosts = [
        len(lock.select("default", p).sources[1].host_packages)
        for p in ("linux-64", "osx-arm64", "win-64")
    ]
    assert hosts == [30, 26, 26]


def test_conda_binaries_keep_hashes_and_locked_record() -> None:
    env = _load("v7-pixi-real-partial-source-variants.lock").select("default", "linux-64")
    by_name = {c.name: c for c in env.conda}
    bzip2 = by_name["bzip2"]
    assert bzip2.url == "https://prefix.dev/conda-forge/linux-64/bzip2-1.0.8-hda65f42_9.conda"
    assert bzip2.location == bzip2.url
    assert bzip2.file_name == "bzip2-1.0.8-hda65f42_9.conda"
    assert (bzip2.version, bzip2.build, bzip2.subdir) == ("1.0.8", "hda65f42_9", "linux-64")
    assert bzip2.hashes == Hashes(
        sha256="0b75d45f0bba3e95dc693336fa51f40ea28c980131fec438afb7ce6118ed05f6",
        md5="d2ffd7602c02f2b316fd921d39876885",
        size=260182,
    )
    assert bzip2.archive_path == "channel/linux-64/bzip2-1.0.8-hda65f42_9.conda"
    assert not bzip2.is_local
    assert isinstance(bzip2.record, RepoDataRecord)
    assert bzip2.record.depends == ["__glibc >=2.17,<3.0.a0", "libgcc >=14"]
    assert bzip2.record.channel == "https://prefix.dev/conda-forge/"
    mutex = by_name["_openmp_mutex"]
    assert (mutex.build, mutex.record.build_number) == ("20_gnu", 20)
    python = by_name["python"]
    assert (python.version, python.build) == ("3.14.6", "habeac84_100_cp314")
    assert by_name["tzdata"].archive_path == "channel/noarch/tzdata-2025c-hc9c84f9_1.conda"


# -- custom platform names, two environments, full records ------------------------------------


def test_custom_platform_names_and_subdir_resolution() -> None:
    lock = _load("v7-source-path-custom-platform-names.yml")
    assert lock.all_platforms() == [
        Platform("linux-64-foobar", "linux-64", ("__libc >= 32",)),
        Platform("win-64", "win-64", ()),
    ]
    assert lock.environment_names() == ["default", "second"]
    assert [p.name for p in lock.platforms("default")] == ["linux-64-foobar", "win-64"]
    assert [p.name for p in lock.platforms("second")] == ["win-64"]
    assert lock.resolve_platform("default", "linux-64").name == "linux-64-foobar"
    assert lock.resolve_platform("default", "linux-64-foobar").name == "linux-64-foobar"
    env = lock.select("default", "linux-64")
    assert env.platform.name == "linux-64-foobar"
    assert env.platform.subdir == "linux-64"
    (minimal,) = env.sources
    assert minimal.lock_id == "minimal-project[ac2e8eb3] @ ../minimal-project"
    assert minimal.path == SAMPLES.parent / "minimal-project"
    assert (minimal.version, minimal.build, minimal.subdir) == ("0.1", "first", "linux-64")
    assert minimal.depends == ("__unix",)
    assert minimal.is_full
    assert not minimal.is_noarch


def test_full_records_at_one_location_and_per_environment_builds() -> None:
    lock = _load("v7-source-path-custom-platform-names.yml")
    win = lock.select("default", "win-64")
    assert [(s.name, s.location, s.build, s.noarch) for s in win.sources] == [
        ("a-python-project", "../a-python-project", "py38", "python"),
        ("b-python-project", "../a-python-project", "h398123", "python"),
        ("minimal-project", "../minimal-project", "first", None),
    ]
    a_project = win.sources[0]
    assert a_project.version == "0.1"  # a string, never the float 0.1
    assert a_project.is_noarch
    assert isinstance(a_project.record, PackageRecord)
    assert str(a_project.record.version) == "0.1"
    (second,) = lock.select("second", "win-64").sources
    assert (second.lock_id, second.build) == (
        "minimal-project[24438904] @ ../minimal-project",
        "second",
    )


# -- git locations, nested build packages, binaries without hashes ----------------------------


def test_git_located_sources_and_nested_build_packages() -> None:
    env = _load("v7-source-git-located-nested-build-host.yml").select("default", "linux-64")
    inner, outer = env.sources
    assert inner.location_kind == "git"
    assert inner.path is None
    assert inner.git == GitLocation(
        url="https://github.com/example/inner.git",
        rev="0000000000000000000000000000000000000011",
        tag="v1",
    )
    assert outer.git is not None
    assert outer.git.rev.endswith("22")
    assert outer.build_packages == (
        "conda_source:inner[aaaaaaaa] @ git+https://github.com/example/inner.git?tag=v1"
        "#0000000000000000000000000000000000000011",
    )
    assert outer.host_packages == (
        "conda:https://conda.anaconda.org/conda-forge/linux-64/host-lib-2.0.0-h0.conda",
    )
    assert (outer.version, outer.build, outer.subdir, outer.is_full) == (
        "2.0.0",
        "h0",
        "noarch",
        True,
    )
    assert [c.name for c in env.conda] == ["build-tool", "host-lib"]
    assert all(c.hashes == Hashes() and not c.hashes.verifiable for c in env.conda)


def test_build_source_git_tag_full_record() -> None:
    (src,) = _load("v7-source-build-source-git-tag.yml").select("default", "linux-64").sources
    assert src.source == {
        "git": "https://github.com/example/pixi-package.git",
        "tag": "v1.2.0",
        "rev": "def456789012345",
    }
    assert (src.version, src.build, src.build_number, src.subdir) == (
        "1.2.0",
        "pyhbf21a9e_0",
        0,
        "noarch",
    )
    assert src.variants == {}
    assert src.is_noarch
    assert src.record is not None
    assert str(src.record.build) == "pyhbf21a9e_0"


def test_source_depends_of_every_kind() -> None:
    (src,) = (
        _load("v7-source-full-record-with-source-depends.yml").select("default", "win-64").sources
    )
    assert {k: dict(v) for k, v in src.source_depends.items()} == {
        "git_branch": {"git": "https://github.com/example/baz.git", "branch": "foobar"},
        "git_rev": {"git": "https://github.com/example/baz.git", "rev": "deadbeaf"},
        "git_tag": {"git": "https://github.com/example/baz.git", "tag": "v0.1.0"},
        "path": {"path": "foobar"},
        "url": {
            "url": "https://example.com/foobar.tar.gz",
            "md5": "1234567890abcdef1234567890abcdef",
            "sha256": "1234567890abcdef1234567890abcdef1234567890abcdef1234567890abcdef",
        },
    }
    assert src.depends == ("path", "git_tag", "git_rev", "git_branch")


# -- compiled packages from git build sources; python variants --------------------------------


def test_cpp_git_build_source_with_subdir_and_per_platform_variants() -> None:
    lock = _load("v7-pixi-real-cpp-git-source.lock")
    got = {}
    for platform in ("linux-64", "osx-arm64", "win-64"):
        (src,) = lock.select("default", platform).sources
        got[platform] = (dict(src.variants), len(src.build_packages), len(src.host_packages))
        assert src.location == "."
        assert src.path == SAMPLES
        assert src.source == {
            "git": "https://github.com/prefix-dev/pixi-build-testsuite",
            "rev": "34d90eaf81fa042ace51ec27af28b1e487c79f32",
            "subdir": "tests/data/pixi_build/cpp-with-path-to-source/project",
        }
        assert not src.is_noarch
        assert not src.is_full
    assert got == {
        "linux-64": (
            {"c_stdlib": "sysroot", "c_stdlib_version": "2.28", "target_platform": "linux-64"},
            38,
            56,
        ),
        "osx-arm64": (
            {
                "c_stdlib": "macosx_deployment_target",
                "c_stdlib_version": "13.0",
                "target_platform": "osx-arm64",
            },
            49,
            14,
        ),
        "win-64": ({"cxx_compiler": "vs2022", "target_platform": "win-64"}, 19, 8),
    }
    assert [len(lock.select("default", p).conda) for p in ("linux-64", "osx-arm64", "win-64")] == [
        56,
        14,
        8,
    ]


def test_workspace_variants_python_per_environment() -> None:
    lock = _load("v7-pixi-real-workspace-variants.lock")
    assert lock.environment_names() == ["default", "py311", "py312"]
    assert [p.name for p in lock.platforms("py311")] == [
        "linux-64",
        "osx-64",
        "osx-arm64",
        "win-64",
    ]
    pythons = {
        env: {s.name: s.variants["python"] for s in lock.select(env, "linux-64").sources}
        for env in lock.environment_names()
    }
    assert pythons == {
        "default": {"cpp_math": "3.12.*", "python_rich": "3.12.*"},
        "py311": {"cpp_math": "3.11.*", "python_rich": "3.11.*"},
        "py312": {"cpp_math": "3.12.*", "python_rich": "3.12.*"},
    }
    cpp = lock.select("py311", "linux-64").sources[0]
    assert cpp.lock_id == "cpp_math[904e39cd] @ packages/cpp_math"
    assert cpp.path == SAMPLES / "packages" / "cpp_math"
    assert (len(cpp.build_packages), len(cpp.host_packages)) == (40, 44)
    rich = lock.select("py311", "linux-64").sources[1]
    assert {k: dict(v) for k, v in rich.source_depends.items()} == {
        "cpp_math": {"path": "packages/cpp_math"}
    }


def test_array_api_extra_rattler_build_recipe_package() -> None:
    lock = _load("v7-pixi-real-array-api-extra.lock")
    counts = [(p.name, len(lock.select("default", p).conda)) for p in lock.platforms("default")]
    assert counts == [("linux-64", 22), ("osx-64", 18), ("osx-arm64", 18), ("win-64", 19)]
    (src,) = lock.select("default", "osx-64").sources
    assert src.lock_id == "array-api-extra[8b12544c] @ ."
    assert src.is_noarch
    assert len(src.host_packages) == 24


# -- PyPI ------------------------------------------------------------------------------------


def test_pypi_custom_index_wheels_and_local_source_tree() -> None:
    env = _load("v7-pypi-wheel-and-local-path.yml").select("default", "linux-64")
    assert env.indexes == ("https://my-custom-index.example.com/simple",)
    local, numpy, requests = env.pypi
    assert (local.name, local.version, local.kind, local.path, local.url) == (
        "local-pkg",
        None,
        "source-tree",
        SAMPLES / "local-pkg",
        None,
    )
    assert local.hashes == Hashes()
    assert numpy.kind == "wheel"
    assert numpy.is_wheel
    assert numpy.file_name == "numpy-1.26.0-cp311-cp311-linux_x86_64.whl"
    assert numpy.hashes.sha256 == "f93fc78fe8bf15afe2b8d6b6499f1c73953571c004b3135db0c83b9a5fd4e5e1"
    assert numpy.index == "https://my-custom-index.example.com/simple"
    assert numpy.requires_python == ">=3.9"
    assert (requests.version, requests.requires_python) == ("2.31.0", ">=3.7")
    assert (
        requests.url
        == "https://my-custom-index.example.com/packages/requests-2.31.0-py3-none-any.whl"
    )


def test_pypi_location_kinds_and_relative_conda_binary() -> None:
    env = load_lock(LOCKS / "v7-pypi-kinds.lock").select("default", "linux-64")
    kinds = {p.name: (p.kind, p.file_name) for p in env.pypi}
    assert kinds == {
        "a-b": ("wheel", "a+b-1.0-py3-none-any.whl"),
        "bar": ("local-sdist", "bar-1.0.tar.gz"),
        "baz": ("sdist", "baz-1.0.tar.gz"),
        "foo": ("local-wheel", "foo-1.0-py3-none-any.whl"),
        "me": ("source-tree", None),
        "recovar": ("git", None),
    }
    by_name = {p.name: p for p in env.pypi}
    assert by_name["a-b"].url == "https://example.com/a%2Bb-1.0-py3-none-any.whl"
    assert by_name["a-b"].hashes == Hashes(md5="d2ffd7602c02f2b316fd921d39876885")
    assert by_name["baz"].url == "https://example.com/packages/baz-1.0.tar.gz"
    assert by_name["bar"].path == LOCKS / "dist" / "bar-1.0.tar.gz"
    assert (
        by_name["bar"].hashes.sha256
        == "0b75d45f0bba3e95dc693336fa51f40ea28c980131fec438afb7ce6118ed05f6"
    )
    assert by_name["me"].path == LOCKS
    assert by_name["me"].requires_dist == (f"bar @ {(LOCKS / 'dist' / 'bar-1.0.tar.gz').as_uri()}",)
    assert by_name["recovar"].git == GitLocation(
        url="https://github.com/ma-gilles/recovar",
        rev="c60e3c26f8930000000000000000000000000000",
        requested_rev="c60e3c26f893",
    )
    assert env.find_links == ("https://example.com/links", "./wheels")
    local = next(c for c in env.conda if c.name == "foo")
    assert local.location == "./local/noarch/foo-1.0-h0_0.conda"
    assert local.url == (LOCKS / "local" / "noarch" / "foo-1.0-h0_0.conda").as_uri()
    assert local.is_local
    assert local.record.url == local.url
    assert local.hashes.size == 10
    assert local.archive_path == "channel/noarch/foo-1.0-h0_0.conda"


# -- v6 ----------------------------------------------------------------------------------------


def test_v6_lock() -> None:
    lock = load_lock(LOCKS / "v6-conda-pypi-source.lock")
    assert lock.version == 6
    assert lock.environment_names() == ["default", "second"]
    # v6 has no platforms list: rattler derives it from the environments (sorted).
    assert [p.name for p in lock.platforms("default")] == ["linux-64", "osx-arm64"]
    assert [p.name for p in lock.platforms("second")] == ["linux-64"]
    env = lock.select("default", "osx-arm64")
    assert env.platform == Platform("osx-arm64", "osx-arm64", ())
    assert [(c.name, c.file_name) for c in env.conda] == [
        ("bzip2", "bzip2-1.0.8-h99b78c6_7.conda"),
        ("libffi", "libffi-3.4.2-h3422bc3_5.tar.bz2"),
        ("python_abi", "python_abi-3.13-5_cp313.conda"),
        ("tzdata", "tzdata-2024b-hc8b5060_0.conda"),
    ]
    assert env.conda[1].hashes.size == 39020
    (numpy,) = env.pypi
    assert (numpy.kind, numpy.version, numpy.requires_python) == ("wheel", "2.2.1", ">=3.10")
    child, pinned = env.sources
    assert (child.lock_id, child.id_hash, child.is_full) == (
        "child-package @ child-package",
        "",
        True,
    )
    assert set(child.source_depends) == {"path", "git_tag"}
    assert pinned.source == {
        "git": "https://github.com/example/pixi-package.git",
        "branch": "main",
        "rev": "abcdef123456789",
    }


def test_v6_selector_fields_pick_the_entry() -> None:
    lock = load_lock(LOCKS / "v6-conda-pypi-source.lock")
    default = lock.select("default", "linux-64")
    assert [(s.name, s.build) for s in default.sources] == [
        ("a-python-project", "py38"),
        ("b-python-project", "h398123"),
        ("minimal-project", "first"),
    ]
    assert default.sources[0].path == DATA / "a-python-project"
    (second,) = lock.select("second", "linux-64").sources
    assert (second.build, second.subdir, second.depends) == ("second", "linux-64", ("__unix",))


# -- errors ------------------------------------------------------------------------------------


def _write(tmp_path: Path, text: str | bytes, name: str = "pixi.lock") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(LockfileError, match="does not exist") as info:
        load_lock(tmp_path / "pixi.lock")
    assert str(tmp_path / "pixi.lock") in info.value.message
    assert info.value.hint is not None
    assert "pixi lock" in info.value.hint
    assert info.value.exit_code == EXIT_ERROR


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("hello: [\n", "is not valid YAML at line 2"),
        ("- a\n- b\n", "not a YAML mapping"),
        (b"\xff\xfe\x00garbage", "is not UTF-8"),
        ("platforms: []\n", "has no `version` field"),
        ("version: seven\n", "invalid version 'seven'"),
        ("version: 7\nplatforms: 3\nenvironments: {}\npackages: []\n", "cannot parse lock file"),
        ("version: 5\n", "version 5"),
        (
            "version: 7\nplatforms:\n- name: linux-64\nenvironments:\n  default:\n    channels: []\n"
            "    packages:\n      linux-64:\n      - conda: https://x.test/linux-64/a-1-h0_0.conda\n"
            "packages: []\n",
            "cannot parse lock file",
        ),
    ],
)
def test_malformed_locks_are_one_line_lockfile_errors(
    tmp_path: Path, content: str | bytes, expected: str
) -> None:
    path = _write(tmp_path, content)
    with pytest.raises(LockfileError) as info:
        load_lock(path)
    assert expected in info.value.message
    assert str(path) in info.value.message
    assert "\n" not in info.value.message
    assert not isinstance(info.value, SelectionError)


def test_newer_version(tmp_path: Path) -> None:
    path = _write(tmp_path, "version: 8\nplatforms: []\nenvironments: {}\npackages: []\n")
    with pytest.raises(LockfileError) as info:
        load_lock(path)
    assert (
        info.value.message
        == "lock file version 8 is newer than this tool supports; upgrade pixi-pack-src"
    )
    assert info.value.hint is not None
    assert str(path) in info.value.hint


def test_unknown_environment_lists_available() -> None:
    lock = _load("v7-pixi-real-workspace-variants.lock")
    with pytest.raises(SelectionError) as info:
        lock.select("prod", "linux-64")
    assert "environment 'prod' not found in" in info.value.message
    assert info.value.message.endswith("available: default, py311, py312")
    assert info.value.exit_code == EXIT_USAGE
    with pytest.raises(SelectionError, match="available: default, py311, py312"):
        lock.platforms("prod")


def test_platform_not_locked_lists_locked() -> None:
    lock = _load("v7-pixi-real-partial-source-variants.lock")
    with pytest.raises(SelectionError) as info:
        lock.select("default", "osx-64")
    assert info.value.message.startswith(
        "platform 'osx-64' not locked for environment 'default' in"
    )
    assert info.value.message.endswith("locked: linux-64, osx-arm64, win-64")
    assert info.value.exit_code == EXIT_USAGE
    custom = _load("v7-source-path-custom-platform-names.yml")
    with pytest.raises(SelectionError, match=r"locked: win-64$"):
        custom.resolve_platform("second", "linux-64")


def test_ambiguous_subdir_lists_names(tmp_path: Path) -> None:
    text = (SAMPLES / "v7-source-path-custom-platform-names.yml").read_text()
    text = text.replace(
        "  - name: win-64\n",
        "  - name: linux-64-other\n    subdir: linux-64\n  - name: win-64\n",
        1,
    )
    text = text.replace(
        "      win-64:\n        - conda_source: a-python-project",
        "      linux-64-other:\n        - conda_source: minimal-project[ac2e8eb3] @ ../minimal-project\n"
        "      win-64:\n        - conda_source: a-python-project",
        1,
    )
    lock = load_lock(_write(tmp_path, text))
    assert [p.name for p in lock.platforms("default")] == [
        "linux-64-foobar",
        "linux-64-other",
        "win-64",
    ]
    with pytest.raises(SelectionError) as info:
        lock.resolve_platform("default", "linux-64")
    assert "ambiguous" in info.value.message
    assert "linux-64-foobar, linux-64-other" in info.value.message
    assert lock.resolve_platform("default", "linux-64-other").subdir == "linux-64"


def test_duplicate_selectors_collapse_like_rattler(tmp_path: Path) -> None:
    text = (SAMPLES / "v7-source-git-located-nested-build-host.yml").read_text()
    line = (
        "      - conda: https://conda.anaconda.org/conda-forge/linux-64/build-tool-1.0.0-h0.conda\n"
    )
    lock = load_lock(_write(tmp_path, text.replace(line, line + line, 1)))
    env = lock.select("default", "linux-64")
    assert [c.name for c in env.conda] == ["build-tool", "host-lib"]


def test_relative_path_argument_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path, (SAMPLES / "v7-source-build-source-git-tag.yml").read_text())
    monkeypatch.chdir(tmp_path)
    lock = load_lock(Path("pixi.lock"))
    assert lock.path == tmp_path / "pixi.lock"
    assert lock.select("default", "linux-64").sources[0].path == tmp_path / "pixi-tag-package"


# -- location helpers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        (
            "git+https://github.com/org/repo.git?subdirectory=pkg&branch=main#abc123",
            GitLocation(
                "https://github.com/org/repo.git", "abc123", subdirectory="pkg", branch="main"
            ),
        ),
        (
            "git+https://github.com/org/repo.git@v1.0#abc123",
            GitLocation("https://github.com/org/repo.git", "abc123", requested_rev="v1.0"),
        ),
        (
            "git+ssh://git@github.com/org/repo.git?tag=v2#def456",
            GitLocation("ssh://git@github.com/org/repo.git", "def456", tag="v2"),
        ),
        ("git+file:///srv/git/repo#0f0f", GitLocation("file:///srv/git/repo", "0f0f")),
    ],
)
def test_parse_git_location(location: str, expected: GitLocation) -> None:
    assert parse_git_location(location) == expected


@pytest.mark.parametrize(
    "location", ["https://github.com/org/repo", "git+https://github.com/org/repo", "git+nohost#abc"]
)
def test_parse_git_location_rejects(location: str) -> None:
    with pytest.raises(ValueError, match="git"):
        parse_git_location(location)


def test_git_location_short() -> None:
    git = GitLocation("https://h.test/r.git", "0123456789abcdef0123", subdirectory="a/b")
    assert git.short == "https://h.test/r.git@0123456789ab#a/b"


@pytest.mark.parametrize(
    ("location", "kind", "url", "path", "file_name"),
    [
        ("./foo.tar.gz/", "source-tree", None, "/ws/foo.tar.gz", None),
        ("../pkgs/x-1.0.zip", "local-sdist", None, "/pkgs/x-1.0.zip", "x-1.0.zip"),
        (
            "file:///opt/w/y-1.0-py3-none-any.whl",
            "local-wheel",
            None,
            "/opt/w/y-1.0-py3-none-any.whl",
            "y-1.0-py3-none-any.whl",
        ),
        ("https://h.test/simple/pkg/", "source-tree", "https://h.test/simple/pkg/", None, None),
        (
            "https://h.test/p/z-2.tar.bz2?x=1#sha256=00",
            "sdist",
            "https://h.test/p/z-2.tar.bz2?x=1",
            None,
            "z-2.tar.bz2",
        ),
        ("/abs/dir", "source-tree", None, "/abs/dir", None),
    ],
)
def test_classify_pypi_location(
    location: str, kind: str, url: str | None, path: str | None, file_name: str | None
) -> None:
    got = classify_pypi_location(location, Path("/ws"))
    assert (got.kind, got.url, got.file_name) == (kind, url, file_name)
    assert got.path == (Path(path) if path is not None else None)
    assert got.git is None
