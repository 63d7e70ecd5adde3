"""What a site has: the manifest of a base pack, and the identity that names it.

A *base* is an earlier full pack (a tar, a directory pack, a manifest file written by
``pixi-pack-src manifest``, or an environment unpacked by ``pixi-pack-src unpack``, which
keeps its pack's manifest in ``<env>/.pixi-pack-src/manifest.json``).

**Identity.** A pack of this tool is named by the sha256 of its ``pixi-pack-src.json``: that
record lists the sha256 of every other file, so it pins every byte. A delta carries the
``pixi-pack-src.json`` of the full new pack unchanged, so the environment it gives has the same
identity as the full new pack. A plain format-1 pack (Quantco pixi-pack) has no such record: it
is named by the sha256 of its *inventory* (every file's path, sha256 and size, as canonical
JSON), which needs one pass over its bytes.

**Manifest file** (``manifest`` 1)::

    {"manifest": 1, "identity": str, "kind": "pixi-pack-src" | "pixi-pack",
     "platform": str, "files": [{"path", "sha256", "size"}],
     "metadata": {"pixi-pack.json": str, "pixi-pack-src.json": str?,
                  "channel/<subdir>/repodata.json": str, ...}}

``files`` is the base's inventory; ``metadata`` holds the exact text of its metadata files
(what a delta pack needs: the records of packages it does not carry). Reading one checks every
metadata text against the inventory and the identity against both: a manifest cannot claim an
identity its content does not have.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pixi_pack_src.archive.metadata import (
    PIXI_PACK_JSON,
    PROVENANCE_JSON,
    Provenance,
    read_pixi_pack_json,
    read_provenance,
)
from pixi_pack_src.archive.reader import read_stream
from pixi_pack_src.errors import ArchiveError, PackFormatError, UsageError
from pixi_pack_src.hashing import hash_file, hash_stream
from pixi_pack_src.layout import CHANNEL_DIR, tampered
from pixi_pack_src.safepath import RelPath, path_problem
from pixi_pack_src.verify.model import WheelDetails
from pixi_pack_src.verify.scan import wheel_info

MANIFEST_VERSION = 1
DELTA_JSON = "pixi-pack-src-delta.json"
ENV_STATE_DIR = ".pixi-pack-src"  # inside an unpacked environment
ENV_MANIFEST = "manifest.json"  # <env>/.pixi-pack-src/manifest.json
ENV_PACKAGES = "pack"  # <env>/.pixi-pack-src/pack/: the pack's files (unpack --keep-packages)
_MAX_MANIFEST_BYTES = 64 * 1024 * 1024
# archive/channel.py's names; not imported: the self-extracting unpacker has no yaml
REPODATA_JSON = "repodata.json"
BaseKind = Literal["pixi-pack-src", "pixi-pack"]


@dataclass(frozen=True)
class PackFile:
    """One file of a pack: its archive path, sha256 and size."""

    path: str
    sha256: str
    size: int


def is_metadata_path(path: str) -> bool:
    """The files a manifest keeps the text of: format metadata, provenance, repodata."""
    parts = path.split("/")
    if len(parts) == 1:
        return path in (PIXI_PACK_JSON, PROVENANCE_JSON)
    return len(parts) == 3 and parts[0] == CHANNEL_DIR and parts[2] == REPODATA_JSON


def is_package_path(path: str) -> bool:
    """A package file: ``channel/<subdir>/<file>`` (not repodata) or ``pypi/<file>``."""
    parts = path.split("/")
    if len(parts) == 3 and parts[0] == CHANNEL_DIR:
        return parts[2] != REPODATA_JSON
    return len(parts) == 2 and parts[0] == "pypi"


def inventory_identity(files: Iterable[PackFile]) -> str:
    """The sha256 of the canonical inventory (a plain format-1 pack's identity)."""
    rows = [[f.path, f.sha256, f.size] for f in sorted(files, key=lambda f: f.path)]
    blob = json.dumps({"files": rows}, separators=(",", ":"), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()


def short(identity: str) -> str:
    """How messages name an identity: ``sha256:`` and 16 hex digits."""
    return f"sha256:{identity[:16]}"


@dataclass(frozen=True)
class BaseManifest:
    """What a base pack holds, enough to make a delta against it or to check one."""

    identity: str
    kind: BaseKind
    platform: str
    files: tuple[PackFile, ...]
    metadata: Mapping[str, bytes]
    source: str  # how messages name the base
    provenance: Provenance | None = field(default=None, compare=False)
    # what the SBOM says of each wheel (from its METADATA): a delta's SBOM describes the
    # wheels it takes from the base too, byte for byte as the full pack's does
    wheels: Mapping[str, WheelDetails] = field(default_factory=dict)

    def by_sha256(self) -> dict[str, PackFile]:
        """sha256 -> a file of the base with those bytes (package files only)."""
        out: dict[str, PackFile] = {}
        for f in self.files:
            if is_package_path(f.path):
                out.setdefault(f.sha256, f)
        return out

    @property
    def environment(self) -> str | None:
        return self.provenance.environment if self.provenance is not None else None

    def to_json(self) -> bytes:
        doc: dict[str, Any] = {
            "manifest": MANIFEST_VERSION,
            "identity": self.identity,
            "kind": self.kind,
            "platform": self.platform,
            "files": [
                {"path": f.path, "sha256": f.sha256, "size": f.size}
                for f in sorted(self.files, key=lambda f: f.path)
            ],
            "metadata": {k: v.decode("utf-8") for k, v in sorted(self.metadata.items())},
            "wheels": {
                path: {
                    "license-expression": d.license_expression,
                    "license": d.license,
                    "classifiers": list(d.classifiers),
                    "requires-dist": list(d.requires_dist),
                }
                for path, d in sorted(self.wheels.items())
            },
        }
        return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def make_manifest(
    metadata: Mapping[str, bytes],
    inventory: Iterable[PackFile] | None,
    *,
    source: str,
    wheels: Mapping[str, WheelDetails] | None = None,
) -> BaseManifest:
    """A manifest from a pack's metadata files and, for a plain pack, its hashed inventory.

    With ``pixi-pack-src.json`` the inventory comes from it (``inventory`` may be ``None``);
    without, ``inventory`` must list every file of the pack."""
    if PIXI_PACK_JSON not in metadata:
        raise PackFormatError(
            f"{source} is not a pixi-pack archive: it has no {PIXI_PACK_JSON}",
            hint="pass an archive written by pixi-pack-src or pixi-pack, or a manifest "
            "written by `pixi-pack-src manifest`",
        )
    meta = read_pixi_pack_json(metadata[PIXI_PACK_JSON], source=source)
    prov_bytes = metadata.get(PROVENANCE_JSON)
    if prov_bytes is not None:
        provenance = read_provenance(prov_bytes, source=source)
        files = [
            PackFile(p, sha.lower(), size or 0) for p, (sha, size) in provenance.expected().items()
        ]
        files.append(
            PackFile(PROVENANCE_JSON, hashlib.sha256(prov_bytes).hexdigest(), len(prov_bytes))
        )
        identity = hashlib.sha256(prov_bytes).hexdigest()
        kind: BaseKind = "pixi-pack-src"
    else:
        if inventory is None:
            raise ArchiveError(f"{source}: a plain format-1 pack needs its files hashed")
        provenance = None
        files = list(inventory)
        identity = inventory_identity(files)
        kind = "pixi-pack"
    listed = {f.path: f for f in files}
    kept: dict[str, bytes] = {}
    for path, data in metadata.items():
        if not is_metadata_path(path):
            continue
        entry = listed.get(path)
        if entry is None or entry.sha256 != hashlib.sha256(data).hexdigest():
            raise ArchiveError(
                f"{path} in {source} does not match the pack's record of it",
                hint=tampered("the base", "make the delta against a base you trust"),
            )
        kept[path] = data
    missing = sorted(p for p in listed if is_metadata_path(p) and p not in kept)
    if missing:
        raise ArchiveError(f"{source} lists {missing[0]} but has no such file")
    return BaseManifest(
        identity=identity,
        kind=kind,
        platform=meta.platform,
        files=tuple(sorted(files, key=lambda f: f.path)),
        metadata=kept,
        source=source,
        provenance=provenance,
        wheels=dict(wheels or {}),
    )


# -- reading a base from wherever it is -----------------------------------------------------


def read_base(path: Path) -> BaseManifest:
    """The manifest of the base at ``path``: a tar, a directory pack, a manifest file, or an
    environment unpacked by pixi-pack-src."""
    label = str(path)
    if not path.exists():
        raise UsageError(
            f"the base {path} does not exist",
            hint="pass the earlier archive, its directory, an environment it was unpacked "
            "into, or a manifest written by `pixi-pack-src manifest`",
        )
    if path.is_dir():
        kept = path / ENV_STATE_DIR / ENV_MANIFEST
        if kept.is_file() and not (path / PIXI_PACK_JSON).exists():
            return read_manifest_file(kept, source=label)
        return _from_directory(path, label)
    with path.open("rb") as fh:
        head = fh.read(512)
    if head.lstrip()[:1] == b"{":
        return read_manifest_file(path, source=label)
    return _from_tar(path, label)


def read_manifest_file(path: Path, *, source: str) -> BaseManifest:
    """A manifest written by ``pixi-pack-src manifest`` (or kept in an environment)."""
    if path.stat().st_size > _MAX_MANIFEST_BYTES:
        raise PackFormatError(f"{source} is too large for a manifest")
    return parse_manifest(path.read_bytes(), source=source)


def parse_manifest(data: bytes, *, source: str) -> BaseManifest:
    hint = f"{source} is damaged; write it again with `pixi-pack-src manifest`"
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PackFormatError(f"{source} is not a valid manifest: {exc}", hint=hint) from None
    if not isinstance(doc, dict) or doc.get("manifest") != MANIFEST_VERSION:
        raise PackFormatError(
            f"{source} is not a pixi-pack-src manifest (version {MANIFEST_VERSION})", hint=hint
        )
    raw_files, raw_meta = doc.get("files"), doc.get("metadata")
    if not isinstance(raw_files, list) or not isinstance(raw_meta, dict):
        raise PackFormatError(f"{source}: `files` and `metadata` are missing", hint=hint)
    files: list[PackFile] = []
    for item in raw_files:
        if not (
            isinstance(item, dict)
            and isinstance(item.get("path"), str)
            and isinstance(item.get("sha256"), str)
            and isinstance(item.get("size"), int)
        ):
            raise PackFormatError(f"{source}: a `files` entry is malformed", hint=hint)
        files.append(PackFile(_checked(item["path"], source), item["sha256"], item["size"]))
    metadata: dict[str, bytes] = {}
    for key, text in raw_meta.items():
        if not isinstance(text, str):
            raise PackFormatError(f"{source}: metadata {key!r} is not text", hint=hint)
        metadata[_checked(key, source)] = text.encode("utf-8")
    wheels = _read_wheels(doc.get("wheels", {}), source, hint)
    manifest = make_manifest(metadata, files, source=source, wheels=wheels)
    if manifest.kind == "pixi-pack-src":
        listed = {(f.path, f.sha256, f.size) for f in files}
        derived = {(f.path, f.sha256, f.size) for f in manifest.files}
        if listed != derived:
            raise PackFormatError(
                f"{source}: `files` disagree with its {PROVENANCE_JSON}", hint=hint
            )
    if doc.get("identity") != manifest.identity:
        raise PackFormatError(
            f"{source} claims identity {doc.get('identity')!r}, but its content is "
            f"{short(manifest.identity)}",
            hint=hint,
        )
    return manifest


def _read_wheels(raw: object, source: str, hint: str) -> dict[str, WheelDetails]:
    if not isinstance(raw, dict):
        raise PackFormatError(f"{source}: `wheels` is malformed", hint=hint)
    out: dict[str, WheelDetails] = {}
    for path, d in raw.items():
        lists = (d.get("classifiers"), d.get("requires-dist")) if isinstance(d, dict) else None
        texts = (d.get("license-expression"), d.get("license")) if isinstance(d, dict) else None
        if (
            lists is None
            or texts is None
            or not all(isinstance(v, list) and all(isinstance(x, str) for x in v) for v in lists)
            or not all(v is None or isinstance(v, str) for v in texts)
        ):
            raise PackFormatError(f"{source}: `wheels` entry {path!r} is malformed", hint=hint)
        out[_checked(path, source)] = WheelDetails(
            license_expression=texts[0],
            license=texts[1],
            classifiers=tuple(lists[0] or ()),
            requires_dist=tuple(lists[1] or ()),
        )
    return out


def _is_wheel(path: str) -> bool:
    return is_package_path(path) and path.startswith("pypi/") and path.endswith(".whl")


def _checked(path: str, source: str) -> str:
    problem = path_problem(path)
    if problem:
        raise PackFormatError(f"{source}: the path {path!r} {problem}")
    return RelPath.parse(path)


def _from_directory(root: Path, label: str) -> BaseManifest:
    names: list[str] = []
    for directory, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ENV_STATE_DIR]
        for name in filenames:
            full = Path(directory) / name
            if not stat.S_ISREG(full.lstat().st_mode):
                raise ArchiveError(f"refusing the base {label}: {full} is not a regular file")
            names.append(full.relative_to(root).as_posix())
    if DELTA_JSON in names:
        names.remove(DELTA_JSON)
    metadata = {n: (root / n).read_bytes() for n in names if is_metadata_path(n)}
    inventory = None
    if PROVENANCE_JSON not in metadata:
        inventory = [PackFile(n, *_sha_size(root / n)) for n in sorted(names)]
    wheels = {}
    for name in names:
        if _is_wheel(name):
            with (root / name).open("rb") as fh:
                wheels[name] = wheel_info(fh)
    return make_manifest(metadata, inventory, source=label, wheels=wheels)


def _sha_size(path: Path) -> tuple[str, int]:
    sha, _, size = hash_file(path, md5=False)
    return sha, size


def _from_tar(path: Path, label: str) -> BaseManifest:
    metadata: dict[str, bytes] = {}
    inventory: list[PackFile] = []
    wheels: dict[str, WheelDetails] = {}
    with path.open("rb") as fh:
        for member in read_stream(fh, label=label):
            if member.name == DELTA_JSON:
                member.reader.read()
                continue
            if is_metadata_path(member.name):
                if member.size > _MAX_MANIFEST_BYTES:
                    raise ArchiveError(f"{member.name} in {label} is too large")
                data = member.reader.read()
                metadata[member.name] = data
                inventory.append(PackFile(member.name, hashlib.sha256(data).hexdigest(), len(data)))
            elif _is_wheel(member.name):
                with tempfile.TemporaryFile() as spool:
                    shutil.copyfileobj(member.reader, spool)
                    spool.seek(0)
                    sha, _, size = hash_stream(spool, md5=False)
                    spool.seek(0)
                    wheels[member.name] = wheel_info(spool)
                inventory.append(PackFile(member.name, sha, size))
            else:
                sha, _, size = hash_stream(member.reader, md5=False)
                inventory.append(PackFile(member.name, sha, size))
    return make_manifest(metadata, inventory, source=label, wheels=wheels)
