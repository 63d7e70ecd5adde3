"""Matching built artifacts to lock entries (docs/pixi-build.md §8), on synthetic inputs."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
from testworld.pixi_standin.workspaces import conda_source

from pixi_pack_src.builders.conda.matching import (
    ArtifactInfo,
    extra_keys,
    match_entry,
    variants_match,
)
from pixi_pack_src.errors import BuildError

ROOT = Path("/ws")


def art(
    name: str = "pkg",
    *,
    subdir: str = "linux-64",
    version: str = "0.1.0",
    build: str = "habc1234_0",
    used: Mapping[str, object] | None = None,
    depends: tuple[str, ...] = (),
    file: str | None = None,
) -> ArtifactInfo:
    return ArtifactInfo(
        path=Path("/out") / (file or f"{name}-{version}-{build}.conda"),
        name=name,
        version=version,
        build=build,
        build_number=0,
        subdir=subdir,
        noarch="generic" if subdir == "noarch" else None,
        depends=depends,
        used_variant=used,
    )


@pytest.mark.parametrize(
    ("lock", "used", "expected"),
    [
        ({}, None, True),
        ({}, {"python": "3.11"}, True),
        ({"target_platform": "linux-64"}, None, False),
        ({"target_platform": "linux-64"}, {"target_platform": "linux-64", "x": "1"}, True),
        ({"target_platform": "linux-64"}, {"target_platform": "osx-arm64"}, False),
        ({"python": "3.11"}, {"python": "3.11.*"}, False),
        ({"python": "3.11", "cuda": "12"}, {"python": "3.11"}, False),
        ({"flag": "true"}, {"flag": True}, True),
        ({"n": "0"}, {"n": 0}, True),
        ({"n": "1"}, {"n": 0}, False),
    ],
)
def test_variants_match(
    lock: Mapping[str, object], used: Mapping[str, object] | None, expected: bool
) -> None:
    assert variants_match(lock, used) is expected


def test_extra_keys() -> None:
    assert extra_keys({"a": "1"}, {"a": "1", "b": "2", "c": "3"}) == 2
    assert extra_keys({"a": "1"}, None) == 0


def test_partial_record_matches_by_name_subdir_and_variants() -> None:
    entry = conda_source("Pkg", "src/pkg", root=ROOT)
    chosen = art(used={"target_platform": "linux-64"})
    others = [
        art("other", used={"target_platform": "linux-64"}),
        art(subdir="osx-arm64", build="hosx_0", used={"target_platform": "osx-arm64"}),
    ]
    m = match_entry(entry, "linux-64", [*others, chosen])
    assert m.artifact == chosen
    assert m.checks == ("name", "subdir", "variants")
    assert (m.lock_id, m.platform, m.warnings, m.drift) == (entry.lock_id, "linux-64", (), None)


def test_locked_variants_pick_among_variant_outputs() -> None:
    entry = conda_source("pkg", "src/pkg", root=ROOT, variants={"python": "3.12"})
    py311 = art(build="h311_0", used={"target_platform": "linux-64", "python": "3.11"})
    py312 = art(build="h312_0", used={"target_platform": "linux-64", "python": "3.12"})
    assert match_entry(entry, "linux-64", [py311, py312]).artifact == py312


def test_fewest_extra_keys_wins_and_a_tie_fails() -> None:
    entry = conda_source("pkg", "src/pkg", root=ROOT)
    lean = art(build="hlean_0", used={"target_platform": "linux-64"})
    rich = art(build="hrich_0", used={"target_platform": "linux-64", "python": "3.11"})
    assert match_entry(entry, "linux-64", [rich, lean]).artifact == lean
    twin = art(build="htwin_0", used={"target_platform": "linux-64", "python": "3.12"})
    with pytest.raises(BuildError, match="several packages match") as err:
        match_entry(entry, "linux-64", [rich, twin])
    assert "hrich_0" in err.value.message
    assert "htwin_0" in err.value.message


def test_noarch_entry_takes_the_noarch_artifact_on_any_platform() -> None:
    artifact = art(subdir="noarch", used={"target_platform": "noarch"})
    for platform in ("linux-64", "osx-arm64", "win-64"):
        entry = conda_source("pkg", "src/pkg", root=ROOT, platform=platform, noarch=True)
        m = match_entry(entry, platform, [artifact])
        assert m.artifact == artifact
        assert m.checks == ("name", "subdir", "variants")


def test_full_record_requires_version_and_build() -> None:
    entry = conda_source(
        "pkg", "git+https://h.test/r#" + "a" * 40, root=ROOT, version="0.1.0", build="hgood_0"
    )
    good = art(build="hgood_0", used={"target_platform": "linux-64"})
    other = art(build="hother_0", used={"target_platform": "linux-64"})
    m = match_entry(entry, "linux-64", [other, good])
    assert m.artifact == good
    assert m.checks == ("name", "subdir", "version", "build", "variants")


def test_full_record_drift_fails_naming_both_and_passes_when_allowed() -> None:
    entry = conda_source(
        "pkg", "git+https://h.test/r#" + "a" * 40, root=ROOT, version="0.1.0", build="hlock_0"
    )
    built = art(version="0.1.1", build="hnew_0", used={"target_platform": "linux-64"})
    with pytest.raises(BuildError) as err:
        match_entry(entry, "linux-64", [built])
    assert "drifted from the lock" in err.value.message
    assert "pkg 0.1.0 build hlock_0" in err.value.message
    assert "0.1.1 build hnew_0" in err.value.message
    assert err.value.exit_code == 4
    assert err.value.hint is not None
    assert "--allow-drift" in err.value.hint
    m = match_entry(entry, "linux-64", [built], allow_drift=True)
    assert m.artifact == built
    assert m.drift == {"lock": "0.1.0-hlock_0", "built": "0.1.1-hnew_0"}
    assert m.checks == ("name", "subdir", "variants")
    assert len(m.warnings) == 1
    assert "accepted: --allow-drift" in m.warnings[0]


def test_without_hash_input_a_single_candidate_is_accepted_with_a_warning() -> None:
    entry = conda_source("pkg", "src/pkg", root=ROOT)
    bare = art(used=None)
    m = match_entry(entry, "linux-64", [bare, art("unrelated", used=None)])
    assert m.artifact == bare
    assert m.checks == ("name", "subdir")
    assert "has no info/hash_input.json" in m.warnings[0]


def test_without_hash_input_several_candidates_fail() -> None:
    entry = conda_source("pkg", "src/pkg", root=ROOT)
    with pytest.raises(BuildError, match="no package matches the variants"):
        match_entry(entry, "linux-64", [art(build="h1_0"), art(build="h2_0")])


def test_hash_input_that_contradicts_fails_instead_of_falling_back() -> None:
    entry = conda_source("pkg", "src/pkg", root=ROOT, variants={"python": "3.11"})
    only = art(used={"target_platform": "linux-64", "python": "3.12"})
    with pytest.raises(BuildError) as err:
        match_entry(entry, "linux-64", [only])
    assert '"python": "3.12"' in err.value.message
    assert '"python": "3.11"' in err.value.message


def test_nothing_with_the_name_lists_what_was_built() -> None:
    entry = conda_source("pkg", "src/pkg", root=ROOT)
    with pytest.raises(BuildError) as err:
        match_entry(
            entry, "linux-64", [art("other", file="other-1-h_0.conda")], what="pixi build of x"
        )
    assert err.value.message.startswith("pixi build of x produced no package `pkg`")
    assert "other-1-h_0.conda" in err.value.message


def test_missing_locked_dependency_is_a_warning() -> None:
    entry = conda_source("pkg", "src/pkg", root=ROOT, depends=("pkg2 >=1", "python *", "libz"))
    built = art(used={"target_platform": "linux-64"}, depends=("python >=3.11", "pkg2"))
    m = match_entry(entry, "linux-64", [built])
    assert m.warnings == (
        f"{built.file_name} does not depend on libz, which the lock lists for {entry.lock_id}",
    )
