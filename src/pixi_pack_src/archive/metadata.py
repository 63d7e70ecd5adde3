"""``pixi-pack.json`` (format metadata) and ``pixi-pack-src.json`` (our provenance record).

``pixi-pack.json`` is read and written exactly as Quantco's pixi-pack/pixi-unpack do
(docs/archive-format.md, "Layout"): ``version`` must be the *string* ``"1"``, ``platform`` a valid conda
subdir, ``pixi-pack-version`` optional. Errors repeat pixi-unpack's messages
("Unsupported pixi-pack version: v0", "The pack was created for a different platform") and
name the archive in the ``help:`` line.

``pixi-pack-src.json`` (docs/archive-format.md, "`pixi-pack-src.json`") records, for every file in the archive, where
its bytes came from and what they hash to. It is deterministic: sorted keys, artifacts and
generated files sorted by path, no wall-clock times, and archive paths are relative.
"""

from __future__ import annotations

import collections
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias, cast

from rattler import Subdir
from rattler.exceptions import ParseSubdirError

from pixi_pack_src.errors import PackFormatError
from pixi_pack_src.safepath import path_problem

logger = logging.getLogger(__name__)

PIXI_PACK_JSON = "pixi-pack.json"
PROVENANCE_JSON = "pixi-pack-src.json"
SBOM_JSON = "sbom.cdx.json"  # CycloneDX 1.6 (see pixi_pack_src.sbom)
FORMAT_VERSION = "1"
# The pixi-pack release our compatibility tests run against; a matching pixi-unpack stays quiet.
PIXI_PACK_COMPAT_VERSION = "0.7.10"
PROVENANCE_SCHEMA = 1

JsonValue: TypeAlias = (
    str | int | float | bool | Sequence["JsonValue"] | Mapping[str, "JsonValue"] | None
)
ArtifactKind = Literal["conda", "wheel"]
_ARTIFACT_KINDS: tuple[ArtifactKind, ...] = ("conda", "wheel")


def _dump(doc: Mapping[str, Any], *, sort_keys: bool) -> bytes:
    text = json.dumps(doc, indent=2, sort_keys=sort_keys, ensure_ascii=False)
    return (text + "\n").encode("utf-8")


# -- pixi-pack.json ---------------------------------------------------------------------------


def is_valid_subdir(subdir: str) -> bool:
    """Whether ``subdir`` is a conda subdir py-rattler accepts (``linux64`` is not)."""
    try:
        Subdir(subdir)
    except ParseSubdirError:
        return False
    return True


def pixi_pack_json(platform_subdir: str) -> bytes:
    """The ``pixi-pack.json`` we write: pixi-pack's key order, 2-space indent, final newline."""
    if not is_valid_subdir(platform_subdir):
        raise ValueError(f"not a conda subdir: {platform_subdir!r}")
    return _dump(
        {
            "version": FORMAT_VERSION,
            "pixi-pack-version": PIXI_PACK_COMPAT_VERSION,
            "platform": platform_subdir,
        },
        sort_keys=False,
    )


@dataclass(frozen=True)
class PackMetadata:
    """What ``pixi-pack.json`` says."""

    version: str
    platform: str
    pixi_pack_version: str | None


def read_pixi_pack_json(data: bytes, *, source: str) -> PackMetadata:
    """Parse ``pixi-pack.json`` as strictly as pixi-unpack does.

    ``source`` names the archive (or directory) in messages. Unknown keys are ignored, as
    pixi-unpack's serde reader does. Raises :class:`PackFormatError`.
    """
    where = f"{PIXI_PACK_JSON} in {source}"
    hint = f"{source} is not a pixi-pack archive, or it is damaged"
    if not data.strip():
        raise PackFormatError(f"{where} is empty", hint=hint)
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PackFormatError(f"{where} is not valid JSON: {exc}", hint=hint) from None
    except RecursionError:
        raise PackFormatError(f"{where} is nested too deeply", hint=hint) from None
    if not isinstance(doc, dict):
        raise PackFormatError(f"{where} is not a JSON object", hint=hint)

    version = doc.get("version")
    if version is None:
        raise PackFormatError(f"{where} has no `version`", hint=hint)
    if not isinstance(version, str):
        # pixi-unpack rejects 1 and 1.0: the format version is a string.
        raise PackFormatError(
            f"{where}: `version` must be a string, got {json.dumps(version)}", hint=hint
        )
    if version != FORMAT_VERSION:
        raise PackFormatError(
            f"Unsupported pixi-pack version: {version}",
            hint=f"{source} uses pack format {version!r}; this tool reads format "
            f"{FORMAT_VERSION!r} (upgrade pixi-pack-src)",
        )

    platform = doc.get("platform")
    if not isinstance(platform, str):
        raise PackFormatError(f"{where} has no `platform` string", hint=hint)
    if not is_valid_subdir(platform):
        raise PackFormatError(f"{where}: `platform` {platform!r} is not a conda subdir", hint=hint)

    tool_version = doc.get("pixi-pack-version")
    if tool_version is not None and not isinstance(tool_version, str):
        raise PackFormatError(
            f"{where}: `pixi-pack-version` must be a string, got {json.dumps(tool_version)}",
            hint=hint,
        )
    if tool_version != PIXI_PACK_COMPAT_VERSION:
        logger.debug("%s was written by pixi-pack version %s", source, tool_version)
    return PackMetadata(version=version, platform=platform, pixi_pack_version=tool_version)


def a_machine(platform: str) -> str:
    """``a linux-64 machine``, ``an osx-arm64 machine`` (the article as it is said)."""
    article = "an" if platform[:1].lower() in ("a", "e", "i", "o", "u") else "a"
    return f"{article} {platform} machine"


def check_platform(meta: PackMetadata, host_subdir: str) -> None:
    """Refuse a pack made for another platform (pixi-unpack's exact check and message)."""
    if meta.platform != host_subdir:
        raise PackFormatError(
            "The pack was created for a different platform",
            hint=f"the pack is for {meta.platform}, this machine is {host_subdir}; "
            f"unpack it on {a_machine(meta.platform)}",
        )


# -- pixi-pack-src.json -----------------------------------------------------------------------


@dataclass(frozen=True)
class ToolInfo:
    name: str
    version: str


@dataclass(frozen=True)
class LockInfo:
    """The lock the pack was made from: its workspace-relative file name, format, sha256."""

    file: str
    format: int
    sha256: str


@dataclass(frozen=True)
class PlatformInfo:
    name: str  # the lock's platform name (may be custom)
    subdir: str
    virtual_packages: tuple[str, ...] = ()


@dataclass(frozen=True)
class ArtifactProvenance:
    """One package file in the archive and where its bytes came from.

    ``origin`` always has a string ``type`` (``download``, ``cache``, ``local-file``,
    ``conda-source``, ``sdist``, ``pypi-git``, ``pypi-source-tree``, ``injected``) plus that
    type's fields in kebab-case; ``builder`` describes the build for built artifacts. Lists
    inside them keep the caller's order (``argv`` is ordered): sort unordered ones yourself.
    """

    path: str
    kind: ArtifactKind
    name: str
    version: str
    sha256: str
    size: int
    origin: Mapping[str, JsonValue]
    build: str | None = None  # conda only
    builder: Mapping[str, JsonValue] | None = field(default=None)

    def to_dict(self) -> dict[str, JsonValue]:
        doc: dict[str, JsonValue] = {
            "path": self.path,
            "kind": self.kind,
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "size": self.size,
            "origin": dict(self.origin),
        }
        if self.build is not None:
            doc["build"] = self.build
        if self.builder is not None:
            doc["builder"] = dict(self.builder)
        return doc


@dataclass(frozen=True)
class GeneratedFile:
    """A file we generated (repodata.json, environment.yml, pixi-pack.json...)."""

    path: str
    sha256: str
    size: int | None = None


@dataclass(frozen=True)
class Provenance:
    """The whole ``pixi-pack-src.json`` document."""

    tool: ToolInfo
    lock: LockInfo
    environment: str
    platform: PlatformInfo
    artifacts: tuple[ArtifactProvenance, ...]
    generated: tuple[GeneratedFile, ...]
    schema: int = PROVENANCE_SCHEMA

    def covered_paths(self) -> set[str]:
        """Every archive path this document vouches for (itself excluded)."""
        return {a.path for a in self.artifacts} | {g.path for g in self.generated}

    def expected(self) -> dict[str, tuple[str, int | None]]:
        """Archive path -> (sha256, size or None) for every covered file."""
        out: dict[str, tuple[str, int | None]] = {
            g.path: (g.sha256, g.size) for g in self.generated
        }
        out.update({a.path: (a.sha256, a.size) for a in self.artifacts})
        return out

    def to_json(self) -> bytes:
        """Deterministic bytes: sorted keys, lists of files sorted by path, final newline."""
        paths = [a.path for a in self.artifacts] + [g.path for g in self.generated]
        for path in paths:
            _check_relative(path)
        dupes = sorted(p for p, n in collections.Counter(paths).items() if n > 1)
        if dupes:
            raise ValueError(f"paths listed twice in provenance: {dupes}")
        if PROVENANCE_JSON in paths:
            raise ValueError(f"{PROVENANCE_JSON} cannot list itself")
        doc: dict[str, JsonValue] = {
            "schema": self.schema,
            "tool": {"name": self.tool.name, "version": self.tool.version},
            "lock": {
                "file": self.lock.file,
                "format": self.lock.format,
                "sha256": self.lock.sha256,
            },
            "environment": self.environment,
            "platform": {
                "name": self.platform.name,
                "subdir": self.platform.subdir,
                "virtual-packages": sorted(self.platform.virtual_packages),
            },
            "artifacts": [a.to_dict() for a in sorted(self.artifacts, key=lambda a: a.path)],
            "generated": [_generated_dict(g) for g in sorted(self.generated, key=lambda g: g.path)],
        }
        return _dump(doc, sort_keys=True)


def _generated_dict(g: GeneratedFile) -> dict[str, JsonValue]:
    doc: dict[str, JsonValue] = {"path": g.path, "sha256": g.sha256}
    if g.size is not None:
        doc["size"] = g.size
    return doc


def _check_relative(path: str) -> None:
    if path_problem(path) or ":" in path:
        raise ValueError(f"not a relative archive path: {path!r}")


# -- reading ----------------------------------------------------------------------------------


class _Reader:
    """Typed access to a parsed JSON object, raising PackFormatError naming the key."""

    def __init__(self, doc: Mapping[str, Any], where: str, source: str) -> None:
        self.doc = doc
        self.where = where
        self.source = source

    def fail(self, what: str) -> PackFormatError:
        return PackFormatError(
            f"invalid {PROVENANCE_JSON} in {self.source}: {self.where}{what}",
            hint=f"{self.source} is damaged, or was not written by pixi-pack-src",
        )

    def text(self, key: str) -> str:
        value = self.doc.get(key)
        if not isinstance(value, str):
            raise self.fail(f"`{key}` must be a string")
        return value

    def opt_str(self, key: str) -> str | None:
        value = self.doc.get(key)
        if value is not None and not isinstance(value, str):
            raise self.fail(f"`{key}` must be a string")
        return value

    def integer(self, key: str) -> int:
        value = self.doc.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(f"`{key}` must be an integer")
        return value

    def opt_int(self, key: str) -> int | None:
        if self.doc.get(key) is None:
            return None
        return self.integer(key)

    def obj(self, key: str) -> _Reader:
        value = self.doc.get(key)
        if not isinstance(value, dict):
            raise self.fail(f"`{key}` must be an object")
        return _Reader(value, f"{self.where}{key}.", self.source)

    def opt_mapping(self, key: str) -> Mapping[str, JsonValue] | None:
        value = self.doc.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.fail(f"`{key}` must be an object")
        return cast("Mapping[str, JsonValue]", value)

    def objs(self, key: str) -> list[_Reader]:
        value = self.doc.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.fail(f"`{key}` must be a list of objects")
        return [_Reader(v, f"{self.where}{key}[{i}].", self.source) for i, v in enumerate(value)]

    def strs(self, key: str) -> tuple[str, ...]:
        value = self.doc.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(f"`{key}` must be a list of strings")
        return tuple(value)


def read_provenance(data: bytes, *, source: str = PROVENANCE_JSON) -> Provenance:
    """Parse ``pixi-pack-src.json``: refuse a newer ``schema``, ignore unknown keys."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PackFormatError(
            f"{PROVENANCE_JSON} in {source} is not valid JSON: {exc}",
            hint=f"{source} is damaged",
        ) from None
    except RecursionError:
        raise PackFormatError(
            f"{PROVENANCE_JSON} in {source} is nested too deeply", hint=f"{source} is damaged"
        ) from None
    if not isinstance(doc, dict):
        raise PackFormatError(f"{PROVENANCE_JSON} in {source} is not a JSON object")
    root = _Reader(doc, "", source)
    schema = root.integer("schema")
    if schema > PROVENANCE_SCHEMA:
        raise PackFormatError(
            f"{PROVENANCE_JSON} in {source} has schema {schema}, newer than this tool reads "
            f"({PROVENANCE_SCHEMA})",
            hint="upgrade pixi-pack-src to verify this archive",
        )
    if schema < 1:
        raise root.fail("`schema` must be at least 1")
    tool, lock, plat = root.obj("tool"), root.obj("lock"), root.obj("platform")
    artifacts = []
    for a in root.objs("artifacts"):
        kind = a.text("kind")
        if kind not in _ARTIFACT_KINDS:
            raise a.fail(f"`kind` {kind!r} is not one of {', '.join(_ARTIFACT_KINDS)}")
        origin = a.opt_mapping("origin")
        if origin is None or not isinstance(origin.get("type"), str):
            raise a.fail("`origin` must be an object with a string `type`")
        artifacts.append(
            ArtifactProvenance(
                path=_read_path(a, "path"),
                kind=kind,
                name=a.text("name"),
                version=a.text("version"),
                sha256=a.text("sha256"),
                size=a.integer("size"),
                origin=origin,
                build=a.opt_str("build"),
                builder=a.opt_mapping("builder"),
            )
        )
    generated = [
        GeneratedFile(path=_read_path(g, "path"), sha256=g.text("sha256"), size=g.opt_int("size"))
        for g in root.objs("generated")
    ]
    return Provenance(
        schema=schema,
        tool=ToolInfo(name=tool.text("name"), version=tool.text("version")),
        lock=LockInfo(
            file=lock.text("file"), format=lock.integer("format"), sha256=lock.text("sha256")
        ),
        environment=root.text("environment"),
        platform=PlatformInfo(
            name=plat.text("name"),
            subdir=plat.text("subdir"),
            virtual_packages=plat.strs("virtual-packages"),
        ),
        artifacts=tuple(artifacts),
        generated=tuple(generated),
    )


def _read_path(r: _Reader, key: str) -> str:
    path = r.text(key)
    try:
        _check_relative(path)
    except ValueError:
        raise r.fail(f"`{key}` {path!r} is not a relative archive path") from None
    return path


def uncovered(provenance: Provenance, archive_files: Iterable[str]) -> list[str]:
    """Files in the archive that ``provenance`` does not vouch for (itself excluded), sorted."""
    covered = provenance.covered_paths() | {PROVENANCE_JSON}
    return sorted(set(archive_files) - covered)
