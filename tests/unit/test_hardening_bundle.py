"""The self-extracting bundle carries only files of the package closure (issue 18 item 3)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from rattler import PackageRecord, RepoDataRecord
from testworld.chaos import hardlink_entry, hostile_conda_package

from pixi_pack_src.errors import PixiPackSrcError
from pixi_pack_src.selfextract.bundle import _python_entries


def _python_package(build: Path, symlinks: dict[str, str]) -> tuple[RepoDataRecord, Path]:
    data = b"#!/bin/sh\n"
    path = hostile_conda_package(
        build,
        name="python",
        paths=[hardlink_entry("bin/python3.12", data)]
        + [{"_path": k, "path_type": "softlink"} for k in symlinks],
        members={"bin/python3.12": data},
        symlinks=symlinks,
    )
    index = build / "index.json"
    doc = {"name": "python", "version": "3.12.0", "build": "0", "build_number": 0}
    index.write_text(json.dumps({**doc, "subdir": "linux-64", "depends": []}))
    record = PackageRecord.from_index_json(
        index, size=path.stat().st_size, sha256=hashlib.sha256(path.read_bytes()).hexdigest()
    )
    return RepoDataRecord(record, path.name, path.as_uri(), "https://c/"), path


def test_a_symlink_out_of_the_closure_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "home" / ".netrc"
    secret.parent.mkdir()
    secret.write_text("machine h login me password SECRET\n")
    build = tmp_path / "build"
    build.mkdir()
    pkg = _python_package(build, {"lib/leak.txt": str(secret)})
    with pytest.raises(PixiPackSrcError, match=r"lib/leak.txt .* symbolic link to .*\.netrc"):
        _python_entries([pkg], tmp_path / "work")


def test_links_inside_the_closure_are_bundled_as_files(tmp_path: Path) -> None:
    build = tmp_path / "build"
    build.mkdir()
    pkg = _python_package(build, {"bin/python3": "python3.12"})
    entries, python = _python_entries([pkg], tmp_path / "work")
    assert python == "python/bin/python3"
    names = sorted(e.arcname for e in entries)
    assert names == ["python/bin/python3", "python/bin/python3.12"]
    assert all(isinstance(e.source, Path) and e.source.is_file() for e in entries)
