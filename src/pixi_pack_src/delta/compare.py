"""Comparing a new environment with its base: what a delta carries, and its declaration.

Package files are the same when their sha256 is: a locked file whose lock sha256 is in the
base is taken from the base (never fetched). A *built* file has no sha256 before it is built,
so a build is skipped when the base holds an artifact built from the same source: a conda
source package with the same location, lock ids and source (tree sha256, or git commit); a
wheel with the same name, version, origin (sdist sha256, git commit, tree sha256) and
overrides. These rules are applied by the plan (:mod:`pixi_pack_src.plan`), so ``inspect
--base`` shows what ``pack --base`` does.

**``pixi-pack-src-delta.json``** (``delta`` 1), the declaration of a delta pack::

    {"delta": 1,
     "base": {"identity": str, "kind": "pixi-pack-src" | "pixi-pack", "platform": str},
     "target": str,            # the identity of the environment the delta gives
     "added": [path],          # package files carried by the delta
     "unchanged": [path],      # package files the base provides (by sha256)
     "removed": [path]}        # package files of the base the new environment drops

Its ``pixi-pack-src.json`` is the full new pack's, byte for byte (``target`` is its sha256):
the files a delta does not carry are listed there, with their sha256, and must come from the
base. A reader without a base refuses the pack (:func:`refuse_without_base`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pixi_pack_src.archive.metadata import PROVENANCE_JSON, ArtifactProvenance, JsonValue
from pixi_pack_src.delta.manifest import DELTA_JSON, BaseKind, BaseManifest, PackFile, short
from pixi_pack_src.errors import PackFormatError
from pixi_pack_src.layout import TAMPERED
from pixi_pack_src.safepath import path_problem

DELTA_VERSION = 1


@dataclass(frozen=True)
class DeltaInfo:
    """The declaration of a delta pack (``pixi-pack-src-delta.json``)."""

    base_identity: str
    base_kind: BaseKind
    base_platform: str
    target: str
    added: tuple[str, ...]
    unchanged: tuple[str, ...]
    removed: tuple[str, ...]

    def to_json(self) -> bytes:
        doc: dict[str, JsonValue] = {
            "delta": DELTA_VERSION,
            "base": {
                "identity": self.base_identity,
                "kind": self.base_kind,
                "platform": self.base_platform,
            },
            "target": self.target,
            "added": sorted(self.added),
            "unchanged": sorted(self.unchanged),
            "removed": sorted(self.removed),
        }
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()

    def summary(self) -> dict[str, JsonValue]:
        """For ``--json`` documents."""
        return {
            "base": self.base_identity,
            "target": self.target,
            "added": sorted(self.added),
            "unchanged": sorted(self.unchanged),
            "removed": sorted(self.removed),
        }


def read_delta(data: bytes, *, source: str, provenance: bytes | None) -> DeltaInfo:
    """Parse ``pixi-pack-src-delta.json``; its ``target`` must be the pack's provenance."""
    hint = f"{source} is damaged, or was written by a newer pixi-pack-src"
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PackFormatError(
            f"{DELTA_JSON} in {source} is not valid JSON: {exc}", hint=hint
        ) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("base"), dict):
        raise PackFormatError(f"{DELTA_JSON} in {source} is malformed", hint=hint)
    version = doc.get("delta")
    if version != DELTA_VERSION:
        raise PackFormatError(
            f"{source} is a delta pack of version {version!r}; this tool reads {DELTA_VERSION}",
            hint="upgrade pixi-pack-src",
        )
    base: dict[str, Any] = doc["base"]
    fields = (base.get("identity"), base.get("kind"), base.get("platform"), doc.get("target"))
    if not all(isinstance(f, str) for f in fields) or base.get("kind") not in (
        "pixi-pack-src",
        "pixi-pack",
    ):
        raise PackFormatError(f"{DELTA_JSON} in {source} is malformed", hint=hint)
    lists: dict[str, tuple[str, ...]] = {}
    for key in ("added", "unchanged", "removed"):
        value = doc.get(key, [])
        if not isinstance(value, list) or not all(
            isinstance(v, str) and path_problem(v) is None for v in value
        ):
            raise PackFormatError(f"{DELTA_JSON} in {source}: `{key}` is malformed", hint=hint)
        lists[key] = tuple(value)
    if provenance is None:
        raise PackFormatError(f"{source} is a delta pack without {PROVENANCE_JSON}", hint=hint)
    if hashlib.sha256(provenance).hexdigest() != doc["target"]:
        raise PackFormatError(
            f"{source}: {DELTA_JSON} names target {short(str(doc['target']))}, but the pack's "
            f"{PROVENANCE_JSON} is {short(hashlib.sha256(provenance).hexdigest())}",
            hint=TAMPERED,
        )
    return DeltaInfo(
        base_identity=str(base["identity"]),
        base_kind=base["kind"],
        base_platform=str(base["platform"]),
        target=str(doc["target"]),
        added=lists["added"],
        unchanged=lists["unchanged"],
        removed=lists["removed"],
    )


def refuse_without_base(info: DeltaInfo, source: str) -> PackFormatError:
    return PackFormatError(
        f"{source} is a delta pack: it holds only what changed since the base "
        f"{short(info.base_identity)} and cannot be installed on its own",
        hint="pass the base with --base OLD.tar, or update an environment unpacked from that "
        "base with --update DIR/ENV (`pixi-pack-src manifest DIR/ENV` shows which base an "
        "environment has)",
    )


def wrong_base(info: DeltaInfo, base: BaseManifest, source: str) -> PackFormatError:
    return PackFormatError(
        f"{source} is a delta against the base {short(info.base_identity)}, but {base.source} "
        f"is {short(base.identity)}",
        hint="apply the delta to the environment or archive it was made against, or carry "
        "the full pack",
    )


# -- deciding -----------------------------------------------------------------------------


def split(
    base: BaseManifest, artifacts: Iterable[ArtifactProvenance]
) -> tuple[list[str], list[str], list[str]]:
    """(added, unchanged, removed) archive paths: new files by sha256 against the base."""
    in_base = base.by_sha256()
    added: list[str] = []
    unchanged: list[str] = []
    used: set[str] = set()
    for a in artifacts:
        hit = in_base.get(a.sha256.lower())
        if hit is None:
            added.append(a.path)
        else:
            unchanged.append(a.path)
            used.add(a.sha256.lower())
    removed = [f.path for sha, f in in_base.items() if sha not in used]
    return sorted(added), sorted(unchanged), sorted(removed)


def in_base(base: BaseManifest, sha256: str | None) -> PackFile | None:
    """The base's file with these bytes, if any."""
    if not sha256:
        return None
    return base.by_sha256().get(sha256.lower())


def _same(a: Mapping[str, object] | None, b: Mapping[str, object] | None) -> bool:
    return json.dumps(a or {}, sort_keys=True, default=str) == json.dumps(
        b or {}, sort_keys=True, default=str
    )


def built_conda_in_base(
    base: BaseManifest,
    *,
    name: str,
    location: str,
    lock_id: str,
    git_rev: str | None,
    tree_sha256: str | None,
) -> ArtifactProvenance | None:
    """The base's artifact built from this conda source entry, unchanged (see module doc)."""
    if base.provenance is None:
        return None
    for a in base.provenance.artifacts:
        origin = a.origin
        if a.kind != "conda" or a.name != name or origin.get("type") != "conda-source":
            continue
        ids = origin.get("lock-ids")
        if origin.get("location") != location or not isinstance(ids, list) or lock_id not in ids:
            continue
        if origin.get("drift"):
            continue
        if git_rev is not None and origin.get("rev") == git_rev:
            return a
        if tree_sha256 is not None and origin.get("source-tree-sha256") == tree_sha256:
            return a
    return None


def built_wheel_in_base(
    base: BaseManifest,
    *,
    name: str,
    version: str | None,
    origin: Mapping[str, object],
    overrides: Mapping[str, object] | None,
) -> ArtifactProvenance | None:
    """The base's wheel built from the same source with the same overrides."""
    if base.provenance is None:
        return None
    for a in base.provenance.artifacts:
        if a.kind != "wheel" or a.name != name or (version is not None and a.version != version):
            continue
        if not _same(a.origin, origin):
            continue
        had = a.builder.get("overrides") if a.builder is not None else None
        if _same(had if isinstance(had, Mapping) else None, overrides):
            return a
    return None
