"""Crafted archives an unpacker must refuse.

Two kinds:

- **Tar-level attacks** (:data:`TAR_CASES`): each :class:`HostileTar` builds a small tar in a
  directory and names the member the refusal must mention. ``safe_extract`` must refuse every
  one before writing anything. They are written with :mod:`tarfile` directly (never with the
  code under test), with raw header bytes where tarfile would not cooperate.
- **Pack-level tampering** (``tampered_package``, ``ghost_repodata_record``,
  ``missing_package_file``, ``with_metadata``, ``with_escaping_wheel``): start from a *good*
  unpacked pack directory, change one thing, and write a new tar. Safe as a tar; ``unpack``
  must catch the inconsistency. ``update_provenance`` decides whether ``pixi-pack-src.json``
  is rewritten to match (an attacker can do that: provenance is not a signature), so a test
  can reach the check behind it.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MTIME = 1_700_000_000


# -- tar-level attacks ------------------------------------------------------------------------


def _info(name: str, kind: bytes = tarfile.REGTYPE, size: int = 0, **attrs: Any) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    info.mtime = MTIME
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    for key, value in attrs.items():
        setattr(info, key, value)
    return info


Member = tuple[tarfile.TarInfo, bytes]


def _file(name: str, data: bytes = b"x", **attrs: Any) -> Member:
    return _info(name, size=len(data), **attrs), data


def _special(name: str, kind: bytes, **attrs: Any) -> Member:
    return _info(name, kind, **attrs), b""


def _write(path: Path, members: list[Member], fmt: int = tarfile.PAX_FORMAT) -> Path:
    with tarfile.open(path, "w", format=fmt) as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def _pixi_pack_json() -> Member:
    return _file("pixi-pack.json", b'{"version": "1", "platform": "linux-64"}\n')


@dataclass(frozen=True)
class HostileTar:
    """One attack: ``build(dir)`` writes the archive into ``dir`` and returns its path."""

    id: str
    member: str  # what the error must name (repr-quoted in messages), or a message fragment
    build: Callable[[Path], Path]
    limits: Mapping[str, int] = field(default_factory=dict)  # ExtractLimits overrides
    in_member_name: bool = True  # False: ``member`` is a message fragment, not a member name


def _simple(id: str, member: str, members: Callable[[], list[Member]], **kw: Any) -> HostileTar:
    return HostileTar(
        id=id,
        member=member,
        build=lambda d: _write(d / f"{id}.tar", [_pixi_pack_json(), *members()]),
        **kw,
    )


def _sparse_metadata(d: Path, size: int = 100 * 1024 * 1024) -> Path:
    """A ``pixi-pack.json`` that claims ``size`` bytes, written as a sparse file (no disk)."""
    path = d / "huge-metadata.tar"
    header = _info("pixi-pack.json", size=size).tobuf(tarfile.PAX_FORMAT)
    with path.open("wb") as fh:
        fh.write(header)
        fh.seek(len(header) + size + (-size % 512))
        fh.write(bytes(2 * 512))
    return path


def _huge_pax_header(d: Path) -> Path:
    # A 2 MiB pax ``comment`` record: over the 1 MiB header cap before any member is parsed.
    info = _info("pixi-pack.json", size=2)
    info.pax_headers = {"comment": "x" * (2 * 1024 * 1024)}
    return _write(d / "huge-header.tar", [(info, b"{}")])


def _truncated_data(d: Path) -> Path:
    good = _write(d / "good.tar", [_pixi_pack_json(), _file("channel/big.conda", b"z" * 4096)])
    data = good.read_bytes()
    good.unlink()
    path = d / "truncated.tar"
    cut = data.index(b"z" * 512) + 1000  # inside big.conda's content
    path.write_bytes(data[:cut])
    return path


def _truncated_boundary(d: Path) -> Path:
    # Two members, then nothing: the end-of-archive blocks are missing.
    blob = b""
    for info, data in (_pixi_pack_json(), _file("channel/a.conda", b"a" * 512)):
        blob += info.tobuf(tarfile.PAX_FORMAT) + data + bytes(-len(data) % 512)
    path = d / "no-end.tar"
    path.write_bytes(blob)
    return path


def _trailing_garbage(d: Path) -> Path:
    path = _write(d / "garbage.tar", [_pixi_pack_json()])
    with path.open("ab") as fh:
        fh.write(b"#!/bin/sh\necho surprise\n")
    return path


def _not_a_tar(d: Path) -> Path:
    path = d / "not-a-tar.tar"
    path.write_bytes(b"PK\x03\x04 this is not a tar archive at all" * 40)
    return path


def _empty(d: Path) -> Path:
    path = d / "empty.tar"
    path.write_bytes(b"")
    return path


def _many(n: int) -> list[Member]:
    return [_file(f"pypi/f{i:03d}.whl") for i in range(n)]


TAR_CASES: tuple[HostileTar, ...] = (
    _simple("traversal", "../escaped.txt", lambda: [_file("../escaped.txt")]),
    _simple(
        "traversal-nested",
        "channel/../../escaped.txt",
        lambda: [_file("channel/../../escaped.txt")],
    ),
    HostileTar(
        "traversal-gnu-longname",
        "../" + "a" * 150,
        lambda d: _write(d / "gnu.tar", [_file("../" + "a" * 150)], fmt=tarfile.GNU_FORMAT),
    ),
    _simple(
        "traversal-pax-path",
        "../pax-escaped.txt",
        lambda: [_file("benign.txt", pax_headers={"path": "../pax-escaped.txt"})],
    ),
    _simple(
        "absolute",
        "/tmp/pixi-pack-src-hostile-absolute",
        lambda: [_file("/tmp/pixi-pack-src-hostile-absolute")],
    ),
    _simple("drive-letter", "C:/Windows/evil.dll", lambda: [_file("C:/Windows/evil.dll")]),
    _simple("backslash", "..\\..\\evil.txt", lambda: [_file("..\\..\\evil.txt")]),
    _simple(
        "nul-in-name",
        "pixi-pack.json\x00.evil",
        lambda: [_file("x.txt", pax_headers={"path": "pixi-pack.json\x00.evil"})],
    ),
    _simple("control-char", "channel/a\nb.conda", lambda: [_file("channel/a\nb.conda")]),
    _simple("dot-member", ".", lambda: [_special(".", tarfile.DIRTYPE)]),
    _simple("dot-component", "./channel/x.conda", lambda: [_file("./channel/x.conda")]),
    _simple("empty-component", "channel//x.conda", lambda: [_file("channel//x.conda")]),
    _simple("long-component", "pypi/" + "w" * 300, lambda: [_file("pypi/" + "w" * 300)]),
    _simple(
        "symlink-escape",
        "channel",
        lambda: [_special("channel", tarfile.SYMTYPE, linkname="/tmp")],
    ),
    _simple(
        "symlink-inside",
        "channel/noarch/link.conda",
        lambda: [
            _file("channel/noarch/real.conda"),
            _special("channel/noarch/link.conda", tarfile.SYMTYPE, linkname="real.conda"),
        ],
    ),
    _simple(
        "symlink-then-file",
        "outside",
        lambda: [
            _special("outside", tarfile.SYMTYPE, linkname="../.."),
            _file("outside/overwritten.txt", b"pwned"),
        ],
    ),
    _simple(
        "hardlink-escape",
        "passwd",
        lambda: [_special("passwd", tarfile.LNKTYPE, linkname="../../../../etc/passwd")],
    ),
    _simple(
        "char-device",
        "dev-null",
        lambda: [_special("dev-null", tarfile.CHRTYPE, devmajor=1, devminor=3)],
    ),
    _simple(
        "block-device", "sda", lambda: [_special("sda", tarfile.BLKTYPE, devmajor=8, devminor=0)]
    ),
    _simple("fifo", "channel/pipe", lambda: [_special("channel/pipe", tarfile.FIFOTYPE)]),
    HostileTar(
        "sparse",
        "channel/sparse.conda",
        lambda d: _write(
            d / "sparse.tar",
            [_special("channel/sparse.conda", tarfile.GNUTYPE_SPARSE)],
            fmt=tarfile.GNU_FORMAT,
        ),
    ),
    _simple("duplicate", "pixi-pack.json", lambda: [_pixi_pack_json()]),
    _simple("duplicate-case", "PIXI-PACK.JSON", lambda: [_file("PIXI-PACK.JSON", b"{}")]),
    _simple(
        "file-then-directory",
        "channel/noarch/repodata.json",
        lambda: [_file("channel", b"not a dir"), _file("channel/noarch/repodata.json", b"{}")],
    ),
    _simple("too-many-members", "pypi/f020.whl", lambda: _many(25), limits={"max_members": 21}),
    HostileTar("oversized-metadata", "pixi-pack.json", _sparse_metadata),
    _simple(
        "oversized-total",
        "pypi/b.whl",
        lambda: [_file("pypi/a.whl", b"a" * 3000), _file("pypi/b.whl", b"b" * 3000)],
        limits={"max_total_bytes": 5000},
    ),
    HostileTar("oversized-header", "extended header", _huge_pax_header, in_member_name=False),
    HostileTar("truncated-data", "channel/big.conda", _truncated_data),
    HostileTar("truncated-boundary", "truncated", _truncated_boundary, in_member_name=False),
    HostileTar(
        "trailing-garbage", "after its end-of-archive", _trailing_garbage, in_member_name=False
    ),
    HostileTar("not-a-tar", "not a", _not_a_tar, in_member_name=False),
    HostileTar("empty-file", "is empty", _empty, in_member_name=False),  # a failed copy
)


# -- pack-level tampering ---------------------------------------------------------------------


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def repack(tree: Path, out: Path) -> Path:
    """Write ``tree`` as a plain tar (sorted, regular files and directories only)."""
    paths = sorted(tree.rglob("*"), key=lambda p: p.relative_to(tree).parts)
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tf:
        for path in paths:
            name = path.relative_to(tree).as_posix()
            if path.is_dir():
                tf.addfile(_info(name, tarfile.DIRTYPE))
            else:
                data = path.read_bytes()
                tf.addfile(_info(name, size=len(data)), io.BytesIO(data))
    return out


def _copy(pack_dir: Path, tmp: str) -> Path:
    tree = Path(tmp) / "pack"
    shutil.copytree(pack_dir, tree)
    return tree


def package_files(pack_dir: Path) -> list[str]:
    """Archive paths of the conda packages in a pack, sorted."""
    return sorted(
        p.relative_to(pack_dir).as_posix()
        for p in (pack_dir / "channel").rglob("*")
        if p.name.endswith((".conda", ".tar.bz2"))
    )


def pin_wheels(tree: Path) -> list[str]:
    """Name every wheel of ``tree/pypi`` in ``environment.yml``'s pip section (an attacker
    can); returns ``["environment.yml"]`` when it changed (for :func:`_sync_provenance`)."""
    import yaml
    from packaging.utils import parse_wheel_filename

    env_path = tree / "environment.yml"
    if not env_path.is_file():
        return []
    doc = yaml.safe_load(env_path.read_text())
    deps = doc.setdefault("dependencies", [])
    pip = next((d["pip"] for d in deps if isinstance(d, dict) and "pip" in d), None)
    if pip is None:
        pip = ["--no-index", "--find-links ./pypi"]
        deps.append({"pip": pip})
    changed = False
    for wheel in sorted((tree / "pypi").glob("*.whl")):
        name, version, _, _ = parse_wheel_filename(wheel.name)
        pin = f"{name}=={version}"
        if pin not in pip:
            pip.append(pin)
            changed = True
    if not changed:
        return []
    env_path.write_text(yaml.safe_dump(doc, sort_keys=False, default_flow_style=False))
    return ["environment.yml"]


def _sync_provenance(tree: Path, changed: list[str], added: Mapping[str, dict[str, Any]]) -> None:
    """Make ``pixi-pack-src.json`` agree with the files on disk (an attacker can)."""
    prov_path = tree / "pixi-pack-src.json"
    if not prov_path.is_file():
        return
    doc = json.loads(prov_path.read_bytes())
    for entry in [*doc.get("artifacts", []), *doc.get("generated", [])]:
        if entry["path"] in changed:
            target = tree / entry["path"]
            if target.exists():
                data = target.read_bytes()
                entry["sha256"] = _sha256(data)
                if "size" in entry:
                    entry["size"] = len(data)
    doc["artifacts"] = [a for a in doc["artifacts"] if (tree / a["path"]).exists()]
    for path, entry in added.items():
        data = (tree / path).read_bytes()
        doc["artifacts"].append({**entry, "path": path, "sha256": _sha256(data), "size": len(data)})
    doc["artifacts"].sort(key=lambda a: a["path"])
    prov_path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")


def tampered_package(
    pack_dir: Path, out: Path, *, member: str | None = None, update_provenance: bool = False
) -> tuple[Path, str]:
    """Flip one byte in the middle of a package (default: the first). Returns (tar, member).

    ``repodata.json`` keeps the old hash; with ``update_provenance`` so does nothing else.
    """
    with tempfile.TemporaryDirectory() as tmp:
        tree = _copy(pack_dir, tmp)
        member = member or package_files(tree)[0]
        target = tree / member
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0xFF
        target.write_bytes(bytes(data))
        if update_provenance:
            _sync_provenance(tree, [member], {})
        return repack(tree, out), member


def _edit_repodata(tree: Path, subdir: str, edit: Callable[[dict[str, Any]], None]) -> None:
    path = tree / "channel" / subdir / "repodata.json"
    doc = json.loads(path.read_bytes())
    edit(doc)
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")


def ghost_repodata_record(
    pack_dir: Path, out: Path, *, update_provenance: bool = True
) -> tuple[Path, str]:
    """Add a repodata record for a file the archive does not hold. Returns (tar, file path)."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = _copy(pack_dir, tmp)
        first = package_files(tree)[0]
        subdir, fname = first.split("/")[1:3]
        ghost = "ghost-1.0-h0000000_0.conda"

        def edit(doc: dict[str, Any]) -> None:
            table = "packages.conda" if fname.endswith(".conda") else "packages"
            record = dict(doc[table][fname])
            record.update(name="ghost", version="1.0", build="h0000000_0", depends=[])
            doc["packages.conda"][ghost] = record

        _edit_repodata(tree, subdir, edit)
        repodata = f"channel/{subdir}/repodata.json"
        if update_provenance:
            _sync_provenance(tree, [repodata], {})
        return repack(tree, out), f"channel/{subdir}/{ghost}"


def missing_package_file(
    pack_dir: Path, out: Path, *, update_provenance: bool = True
) -> tuple[Path, str]:
    """Delete a package file but keep its repodata record. Returns (tar, removed path)."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = _copy(pack_dir, tmp)
        victim = package_files(tree)[0]
        (tree / victim).unlink()
        if update_provenance:
            _sync_provenance(tree, [], {})
        return repack(tree, out), victim


def with_metadata(
    pack_dir: Path, out: Path, *, update_provenance: bool = True, **fields: Any
) -> Path:
    """Rewrite ``pixi-pack.json`` fields (``version="2"``, ``version=1``, ``platform="win-64"``;
    ``pixi_pack_version=None`` removes the key)."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = _copy(pack_dir, tmp)
        path = tree / "pixi-pack.json"
        doc = json.loads(path.read_bytes())
        for key, value in fields.items():
            json_key = key.replace("_", "-")
            if value is None:
                doc.pop(json_key, None)
            else:
                doc[json_key] = value
        path.write_text(json.dumps(doc, indent=2) + "\n")
        if update_provenance:
            _sync_provenance(tree, ["pixi-pack.json"], {})
        return repack(tree, out)


def escaping_wheel(directory: Path, *, escape: str = "../../../escaped_by_wheel.py") -> Path:
    """A pure wheel ``evil-1.0`` whose RECORD (and zip) holds a path leaving site-packages."""
    path = directory / "evil-1.0-py3-none-any.whl"
    files = {
        "evil/__init__.py": b"",
        escape: b"print('escaped')\n",
        "evil-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: evil\nVersion: 1.0\n",
        "evil-1.0.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: hostile\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record_lines = [f"{name},," for name in files] + ["evil-1.0.dist-info/RECORD,,"]
    files["evil-1.0.dist-info/RECORD"] = ("\n".join(record_lines) + "\n").encode()
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            zf.writestr(info, data)
    return path


def with_escaping_wheel(
    pack_dir: Path, out: Path, *, update_provenance: bool = True
) -> tuple[Path, str]:
    """Add ``pypi/evil-1.0-py3-none-any.whl`` (see :func:`escaping_wheel`). Returns (tar, path)."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = _copy(pack_dir, tmp)
        (tree / "pypi").mkdir(exist_ok=True)
        wheel = escaping_wheel(tree / "pypi")
        arcname = f"pypi/{wheel.name}"
        if update_provenance:
            entry = {
                "kind": "wheel",
                "name": "evil",
                "version": "1.0",
                "origin": {"type": "injected"},
            }
            _sync_provenance(tree, pin_wheels(tree), {arcname: entry})
        return repack(tree, out), arcname


# -- packages whose metadata exists twice (issue 18 item 5) ---------------------------------------


def duplicate_metadata_tar_bz2(
    directory: Path,
    *,
    name: str,
    first: list[dict[str, Any]],
    second: list[dict[str, Any]],
    members: Mapping[str, bytes],
) -> Path:
    """A ``.tar.bz2`` with two ``info/paths.json``: ``first`` (what a reader that stops at the
    first copy sees) and, after the files, ``second`` (what an extractor keeps)."""
    index = {"name": name, "version": "1.0", "build": "0", "build_number": 0,
             "subdir": "linux-64", "depends": []}  # fmt: skip
    path = directory / f"{name}-1.0-0.tar.bz2"
    with tarfile.open(path, "w:bz2") as tf:
        entries = [
            ("info/index.json", json.dumps(index).encode()),
            ("info/paths.json", json.dumps({"paths": first, "paths_version": 1}).encode()),
            *members.items(),
            ("info/paths.json", json.dumps({"paths": second, "paths_version": 1}).encode()),
        ]
        for member, data in entries:
            info = _info(member, size=len(data))
            tf.addfile(info, io.BytesIO(data))
    return path


def conda_with_metadata_in_its_data(
    directory: Path,
    *,
    name: str,
    first: list[dict[str, Any]],
    second: list[dict[str, Any]],
    members: Mapping[str, bytes],
) -> Path:
    """A ``.conda`` whose ``info`` tar has ``first`` as ``info/paths.json`` and whose ``pkg``
    (data) tar carries another ``info/paths.json``: ``second``."""
    import zstandard

    index = {"name": name, "version": "1.0", "build": "0", "build_number": 0,
             "subdir": "linux-64", "depends": []}  # fmt: skip
    stem = f"{name}-1.0-0"

    def tar_zst(files: list[tuple[str, bytes]]) -> bytes:
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w") as tf:
            for member, data in files:
                tf.addfile(_info(member, size=len(data)), io.BytesIO(data))
        return zstandard.ZstdCompressor().compress(raw.getvalue())

    info = tar_zst([
        ("info/index.json", json.dumps(index).encode()),
        ("info/paths.json", json.dumps({"paths": first, "paths_version": 1}).encode()),
    ])  # fmt: skip
    pkg = tar_zst([
        *members.items(),
        ("info/paths.json", json.dumps({"paths": second, "paths_version": 1}).encode()),
    ])  # fmt: skip
    path = directory / f"{stem}.conda"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("metadata.json", json.dumps({"conda_pkg_format_version": 2}))
        zf.writestr(f"info-{stem}.tar.zst", info)
        zf.writestr(f"pkg-{stem}.tar.zst", pkg)
    return path
