"""Fuzz: every entry point that turns data into a path keeps the path under its root.

Generated names (hypothesis: traversal pieces, percent-escapes, separators, drive letters,
control characters, long components, arbitrary text) go through each place where a name from
a lock, a URL, an archive member, a package's file list or a cache turns into a file system
path. Each either refuses the name with :class:`UnsafePathError` / :class:`ArchiveError` /
:class:`LockfileError`, or gives a path that stays under its root once resolved.
"""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
from pathlib import Path
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pixi_pack_src.archive.reader import safe_extract
from pixi_pack_src.errors import ArchiveError
from pixi_pack_src.fetch.cache import ContentCache
from pixi_pack_src.fetch.download import Artifact
from pixi_pack_src.lock.lockfile import classify_pypi_location
from pixi_pack_src.lock.model import Hashes
from pixi_pack_src.safepath import RelPath, UnsafePathError, makedirs_under, open_under, under

FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

PIECES = st.sampled_from(
    [
        "..",
        ".",
        "/",
        "\\",
        "%2F",
        "%2f",
        "%5C",
        "%2E%2E",
        "C:",
        "c:\\",
        "//",
        "\x00",
        "\n",
        "\x1b",
        "\x85",
        "a",
        "b.whl",
        "x" * 300,
        "~",
        "$HOME",
        "é",
        "\u202e",
        ":",
        "%00",
        "%",
    ]
)
NAMES = st.one_of(
    st.lists(PIECES, min_size=1, max_size=8).map("".join),
    st.text(min_size=1, max_size=40),
    st.lists(st.sampled_from(["..", "a", ".", ""]), min_size=1, max_size=6).map("/".join),
)


def _inside(root: Path, path: Path) -> bool:
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    return real == real_root or real.startswith(real_root + os.sep)


@FUZZ
@given(NAMES)
def test_relpath_and_under(name: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        root.mkdir()
        try:
            rel = RelPath.parse(name)
        except UnsafePathError:
            return
        assert _inside(root, under(root, rel))
        assert _inside(root, makedirs_under(root, rel))
        fd = open_under(root, f"{rel}/f")
        os.close(fd)
        assert all(_inside(root, p) for p in root.rglob("*"))
        assert [p.name for p in Path(tmp).iterdir()] == ["root"]


@FUZZ
@given(NAMES, st.sampled_from([".whl", ".tar.gz", ".zip", ".tar.bz2"]), st.booleans())
def test_pypi_locations_from_a_lock(name: str, suffix: str, encode: bool) -> None:
    """A lock's ``pypi:`` URL (raw or percent-encoded) -> file name -> download path."""
    raw = quote(name, safe="") if encode else name
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "work"
        work.mkdir()
        try:
            where = classify_pypi_location(f"https://host/p/{raw}{suffix}", Path(tmp))
        except ValueError:
            return
        if where.file_name is None:
            return
        artifact = Artifact.for_url(
            where.url or "", file_name=where.file_name, hashes=Hashes(), kind="wheel"
        )
        assert _inside(work, under(work, f"d/{artifact.file_name}"))
        cache = ContentCache(Path(tmp) / "cache")
        assert _inside(cache.tmp_dir, cache.new_tmp_path(artifact.file_name))


@FUZZ
@given(NAMES)
def test_download_file_names(name: str) -> None:
    try:
        artifact = Artifact.for_url("https://h/x", file_name=name, hashes=Hashes(), kind="conda")
    except UnsafePathError:
        return
    assert "/" not in artifact.file_name
    assert RelPath.parse(artifact.file_name) == artifact.file_name


@FUZZ
@given(st.lists(NAMES, min_size=1, max_size=3))
def test_archive_members(names: list[str]) -> None:
    """Tar members named by the fuzzer: refused, or extracted under the destination."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "a.tar"
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
            for name in names:
                info = tarfile.TarInfo(name)
                info.size = 1
                tf.addfile(info, io.BytesIO(b"x"))
        archive.write_bytes(buf.getvalue())
        dest = Path(tmp) / "out" / "dest"
        dest.parent.mkdir()
        try:
            files = safe_extract(archive, dest)
        except ArchiveError:
            assert not dest.exists() or not any(dest.iterdir())
            assert [p.name for p in dest.parent.iterdir()] in ([], ["dest"])
            return
        assert files
        assert all(_inside(dest, p) for p in dest.rglob("*"))
        assert [p.name for p in dest.parent.iterdir()] == ["dest"]


@FUZZ
@given(NAMES)
def test_package_and_wheel_file_lists(name: str) -> None:
    """Paths from a package's ``info/paths.json`` and a wheel's members/``RECORD``: what the
    checks accept joins under the prefix."""
    from pixi_pack_src.install.conda import _path_problem as conda_problem
    from pixi_pack_src.install.wheels import _path_problem as wheel_problem

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "prefix"
        root.mkdir()
        for problem in (conda_problem(name), wheel_problem(name)):
            if problem is None:
                assert _inside(root, root / name)
                assert _inside(root, under(root, name.removesuffix("/")))
