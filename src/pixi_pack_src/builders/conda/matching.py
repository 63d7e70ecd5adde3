"""Match built artifacts to ``conda_source`` lock entries (docs/pixi-build.md §8).

For one lock entry (on one platform) and the artifacts one ``pixi build`` produced:

1. candidates: ``index.json`` name equal to the entry's (lower-case) and subdir equal to the
   platform's subdir or ``noarch``;
2. full records: also the same ``version`` and ``build``. None equal means ``pixi build``
   drifted from the lock: an error naming both, unless drift is allowed (then the variant rule
   picks among the name/subdir candidates, with a warning and a ``drift`` record);
3. variants, pixi's rule: every locked key present in the artifact's ``info/hash_input.json``
   with an equal value (compared as strings; JSON for non-strings); among several matches the
   one with the fewest extra keys wins; a tie is an error;
4. when no candidate passes 3: a single name/subdir candidate is accepted only if it has no
   ``hash_input.json`` at all; otherwise an error listing the candidates and their variants.

The result names the checks that passed (``name``, ``subdir``, ``version``, ``build``,
``variants``), for the archive's provenance. Locked dependency *names* missing from the
artifact's ``depends`` give a warning (docs/pixi-build.md §8, step 7).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pixi_pack_src.aio import run_sync
from pixi_pack_src.errors import ArchiveError, BuildError
from pixi_pack_src.lock.model import CondaSource

_T = TypeVar("_T")
_DEP_NAME = re.compile(r"^\s*([A-Za-z0-9_.\-]+)")


@dataclass(frozen=True)
class ArtifactInfo:
    """What a built ``.conda`` says about itself: ``info/index.json`` + ``hash_input.json``."""

    path: Path
    name: str
    version: str
    build: str
    build_number: int
    subdir: str
    noarch: str | None
    depends: tuple[str, ...] = ()
    used_variant: Mapping[str, object] | None = field(default=None)

    @property
    def file_name(self) -> str:
        return self.path.name

    @property
    def dist(self) -> str:
        return f"{self.name}-{self.version}-{self.build}"

    def describe(self) -> str:
        variant = (
            "no info/hash_input.json"
            if self.used_variant is None
            else "variants " + json.dumps(dict(self.used_variant), sort_keys=True)
        )
        return f"{self.file_name} ({self.subdir}, {variant})"


@dataclass(frozen=True)
class EntryMatch:
    """The artifact chosen for one lock entry, and how it was chosen."""

    lock_id: str
    platform: str
    artifact: ArtifactInfo
    checks: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    drift: Mapping[str, str] | None = None


# -- reading artifacts ----------------------------------------------------------------------


async def _read_info(path: Path) -> dict[str, bytes | None]:
    from rattler.package_streaming import PackageArchive

    archive = await PackageArchive.from_path(path)
    return await archive.read_files(["info/index.json", "info/hash_input.json"])


def read_artifact(path: Path) -> ArtifactInfo:
    """Read ``info/index.json`` and ``info/hash_input.json`` (if present) of a package."""
    try:
        files = run_sync(_read_info(path))
        raw_index = files.get("info/index.json")
        if raw_index is None:
            raise ValueError("no info/index.json")
        index = json.loads(raw_index)
        raw_hash = files.get("info/hash_input.json")
        used = json.loads(raw_hash) if raw_hash is not None else None
    except Exception as exc:  # py-rattler and json raise many types
        raise ArchiveError(
            f"cannot read the metadata of the built package {path}: {exc}",
            hint="the build produced an invalid package; see the build log",
        ) from exc
    noarch = index.get("noarch")
    return ArtifactInfo(
        path=path,
        name=str(index["name"]).lower(),
        version=str(index["version"]),
        build=str(index["build"]),
        build_number=int(index.get("build_number", 0)),
        subdir=str(index.get("subdir") or "noarch"),
        noarch=str(noarch) if noarch else None,
        depends=tuple(str(d) for d in index.get("depends", ())),
        used_variant=used if isinstance(used, dict) else None,
    )


# -- the rule -------------------------------------------------------------------------------


def _norm(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def variants_match(lock_variants: Mapping[str, object], used: Mapping[str, object] | None) -> bool:
    """Every locked key is in ``used`` with an equal value (as strings)."""
    if not lock_variants:
        return True
    return used is not None and all(
        k in used and _norm(used[k]) == _norm(v) for k, v in lock_variants.items()
    )


def extra_keys(lock_variants: Mapping[str, object], used: Mapping[str, object] | None) -> int:
    """How many keys ``used`` has beyond the locked ones (pixi prefers the fewest)."""
    if used is None:
        return 0
    return len(set(used) - set(lock_variants))


def dep_names(specs: Sequence[str]) -> set[str]:
    """The (lower-case) package names of match specs like ``foo >=1.2``."""
    names = set()
    for spec in specs:
        m = _DEP_NAME.match(spec)
        if m:
            names.add(m[1].lower())
    return names


def _listing(artifacts: Sequence[ArtifactInfo]) -> str:
    return "; ".join(a.describe() for a in artifacts) or "nothing"


def match_entry(
    entry: CondaSource,
    platform: str,
    artifacts: Sequence[ArtifactInfo],
    *,
    allow_drift: bool = False,
    what: str = "pixi build",
) -> EntryMatch:
    """The artifact for ``entry`` on ``platform`` (a subdir), or a :class:`BuildError`."""
    name = entry.name.lower()
    lock_variants: Mapping[str, object] = entry.variants
    shown_variants = json.dumps(dict(lock_variants), sort_keys=True)
    candidates = [a for a in artifacts if a.name == name and a.subdir in (platform, "noarch")]
    if not candidates:
        raise BuildError(
            f"{what} produced no package `{name}` for {platform} or noarch "
            f"(lock entry {entry.lock_id}); it produced: {_listing(artifacts)}",
            hint="check that the package's manifest still declares this package and that it "
            "builds for this platform; re-lock with `pixi lock` if the workspace changed",
        )
    checks = ["name", "subdir"]
    warnings: list[str] = []
    drift: dict[str, str] | None = None
    pool = candidates
    if entry.is_full:
        exact = [a for a in candidates if a.version == entry.version and a.build == entry.build]
        wanted = f"{name} {entry.version} build {entry.build}"
        if exact:
            pool = exact
            checks += ["version", "build"]
        else:
            built = ", ".join(f"{a.version} build {a.build}" for a in candidates)
            message = (
                f"{what} drifted from the lock: the lock wants {wanted} ({entry.lock_id}), "
                f"the build produced {name} {built}"
            )
            if not allow_drift:
                raise BuildError(
                    message,
                    hint="pin the build backend and build inputs, re-lock with `pixi lock` so "
                    "the lock matches what the sources build now, or pass --allow-drift to "
                    "pack the built package anyway (recorded in the archive)",
                )
            warnings.append(message + " (accepted: --allow-drift)")
            drift = {"lock": f"{entry.version}-{entry.build}"}
    matched = [a for a in pool if variants_match(lock_variants, a.used_variant)]
    chosen: ArtifactInfo
    if matched:
        if lock_variants:
            checks.append("variants")
        fewest = min(extra_keys(lock_variants, a.used_variant) for a in matched)
        best = [a for a in matched if extra_keys(lock_variants, a.used_variant) == fewest]
        if len(best) > 1:
            raise BuildError(
                f"{what}: several packages match the lock entry {entry.lock_id} "
                f"(variants {shown_variants}) equally well: {_listing(best)}",
                hint="the lock's variants do not tell these outputs apart; re-lock with "
                "`pixi lock` so each entry names its variant",
            )
        chosen = best[0]
    elif len(pool) == 1 and pool[0].used_variant is None:
        chosen = pool[0]
        warnings.append(
            f"{chosen.file_name} has no info/hash_input.json; matched to {entry.lock_id} by "
            "name and subdir only (its variants could not be checked)"
        )
    else:
        raise BuildError(
            f"{what}: no package matches the variants {shown_variants} of the lock entry "
            f"{entry.lock_id}; candidates: {_listing(pool)}",
            hint="the workspace's build variants changed since the lock was written: re-lock "
            "with `pixi lock`",
        )
    if drift is not None:
        drift["built"] = f"{chosen.version}-{chosen.build}"
    missing = sorted(dep_names(entry.depends) - dep_names(chosen.depends))
    if missing:
        warnings.append(
            f"{chosen.file_name} does not depend on {', '.join(missing)}, which the lock "
            f"lists for {entry.lock_id}"
        )
    return EntryMatch(
        lock_id=entry.lock_id,
        platform=platform,
        artifact=chosen,
        checks=tuple(checks),
        warnings=tuple(warnings),
        drift=drift,
    )
