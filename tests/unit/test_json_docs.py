"""docs/json.md names exactly the keys that `inspect --json` and `pack --json` emit.

The key tables of docs/json.md (a `#### <command>: <object>` heading, then rows
``| `key` | present | value |``) are read and compared with documents made from the real lock
samples (inspect) and from a result built by hand (pack): a key that is "always" present must be
in every object, and no object may have a key the table does not name.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pixi_pack_src.delta.manifest import BaseManifest
from pixi_pack_src.lock.lockfile import load_lock
from pixi_pack_src.lock.model import Platform
from pixi_pack_src.pack.result import (
    PackedArtifact,
    PackedItem,
    PackResult,
    PackStats,
    PlatformPack,
)
from pixi_pack_src.plan import FROM_BASE, InspectOptions, PackPlans, make_plans

DOCS = Path(__file__).resolve().parents[2] / "docs" / "json.md"
SAMPLES = Path(__file__).resolve().parent.parent / "data" / "lock-samples"

_HEADING = re.compile(r"^#### (.+)$")
_ROW = re.compile(r"^\| `([^`]+)` \| ([^|]+) \|")


def documented() -> dict[str, tuple[frozenset[str], frozenset[str]]]:
    """Per table heading: (keys always present, keys present only sometimes)."""
    tables: dict[str, tuple[set[str], set[str]]] = {}
    current: tuple[set[str], set[str]] | None = None
    for line in DOCS.read_text().splitlines():
        heading = _HEADING.match(line)
        if heading:
            current = tables.setdefault(heading.group(1).strip(), (set(), set()))
            continue
        row = _ROW.match(line)
        if row and current is not None:
            always, sometimes = current
            (always if row.group(2).strip() == "always" else sometimes).add(row.group(1))
    return {name: (frozenset(a), frozenset(s)) for name, (a, s) in tables.items()}


def check_keys(table: str, objects: Iterable[Mapping[str, Any]]) -> set[str]:
    """Every object has the table's "always" keys and only keys the table names; returns
    the optional keys that were seen."""
    always, sometimes = documented()[table]
    seen: set[str] = set()
    count = 0
    for obj in objects:
        count += 1
        keys = set(obj)
        assert always <= keys, f"{table}: {sorted(always - keys)} documented but not emitted"
        assert keys <= always | sometimes, f"{table}: {sorted(keys - always - sometimes)} emitted"
        seen |= keys & sometimes
    assert count, f"no object to check against {table!r}"
    return seen


def _inspect_docs(tmp_path: Path) -> list[dict[str, Any]]:
    """inspect documents from real locks: conda downloads, source builds (with a backend read
    from a manifest), PyPI wheels and a source tree built into a wheel."""
    ws = tmp_path / "sources"
    (ws / "src" / "root").mkdir(parents=True)
    shutil.copyfile(SAMPLES / "v7-pixi-real-partial-source-variants.lock", ws / "pixi.lock")
    (ws / "src" / "root" / "pixi.toml").write_text(
        '[package]\nname = "root"\nversion = "0.1.0"\n\n[package.build.backend]\n'
        'name = "pixi-build-python"\nversion = "==0.5.0"\n'
    )
    sources = load_lock(ws / "pixi.lock")
    pypi = load_lock(SAMPLES / "v7-pypi-wheel-and-local-path.yml")
    options = InspectOptions(probe_pixi=False, cache_dir=tmp_path / "cache")
    plans = [
        make_plans([sources.select("default", p) for p in sources.platforms("default")]),
        make_plans([pypi.select("default", p) for p in pypi.platforms("default")], inspect=options),
    ]
    # a delta against a base that has the first download: `from-base`, `base-path`, `base`
    plan = plans[0].plans[0]
    first = plan.items[0]
    marked = dataclasses.replace(first, action=FROM_BASE, base_path="channel/x.conda")
    base = BaseManifest(
        identity="0" * 64,
        kind="pixi-pack-src",
        platform="linux-64",
        files=(),
        metadata={},
        source="b",
    )
    delta = PackPlans(
        plans=(plan.with_items((marked, *plan.items[1:]), plan.builds),),
        builds=plans[0].builds,
        base=base,
    )
    return [json.loads(json.dumps(p.to_json(tool_version="1.2.3"))) for p in (*plans, delta)]


def test_inspect_keys_are_the_documented_ones(tmp_path: Path) -> None:
    docs = _inspect_docs(tmp_path)
    platforms = [p for d in docs for p in d["platforms"]]
    items = [i for p in platforms for i in p["items"]]
    builds = [b for d in docs for b in d["builds"]]
    assert check_keys("inspect: the document", docs) == {"base"}
    assert check_keys("inspect: a plan", platforms) == set()
    assert check_keys("inspect: an item", items) == {
        "base-path",
        "conda-source",
        "index",
        "wheel-build",
    }
    assert {i["action"] for i in items} == {"download", "build-conda", "build-wheel", FROM_BASE}
    check_keys("inspect: conda-source", [i["conda-source"] for i in items if "conda-source" in i])
    assert check_keys(
        "inspect: wheel-build", [i["wheel-build"] for i in items if "wheel-build" in i]
    ) == {"cached"}
    check_keys("inspect: a build", builds)
    totals = [d["totals"] for d in docs] + [p["totals"] for p in platforms]
    assert check_keys("inspect: totals", totals) == {FROM_BASE}


def test_pack_keys_are_the_documented_ones() -> None:
    artifact = PackedArtifact(
        path="channel/linux-64/a-1-0.conda",
        kind="conda",
        name="a",
        version="1",
        sha256="0" * 64,
        size=10,
        origin="download",
        source="https://example.com/a-1-0.conda",
    )
    item = PackedItem("download", "conda", "a", "1", "https://example.com/a-1-0.conda")
    result = PackResult(
        environment="default",
        lock_file=Path("pixi.lock"),
        packs=(
            PlatformPack(
                platform=Platform("linux-64", "linux-64"),
                output="environment.tar",
                sha256="1" * 64,
                size=20480,
                artifacts=(artifact,),
                items=(item,),
            ),
        ),
        stats=PackStats(),
        warnings=(),
    )
    doc: dict[str, Any] = json.loads(json.dumps(result.to_json()))
    assert check_keys("pack: the document", [doc]) == set()
    platforms = doc["platforms"]
    assert check_keys("pack: a platform", platforms) == set()
    assert check_keys("pack: an artifact", [a for p in platforms for a in p["artifacts"]]) == set()
    assert check_keys("pack: an item", [i for p in platforms for i in p["items"]]) == set()
    assert check_keys("pack: stats", [doc["stats"]]) == set()
    # pack's items carry the keys of inspect's items of the same names
    pack_item, inspect_item = documented()["pack: an item"], documented()["inspect: an item"]
    assert pack_item[0] <= inspect_item[0]


def test_every_table_is_checked() -> None:
    assert set(documented()) == {
        "pack: the document",
        "pack: a platform",
        "pack: an artifact",
        "pack: an item",
        "pack: stats",
        "inspect: the document",
        "inspect: a plan",
        "inspect: an item",
        "inspect: conda-source",
        "inspect: wheel-build",
        "inspect: a build",
        "inspect: totals",
    }
