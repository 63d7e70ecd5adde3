"""The one path type: what it refuses, and writes that never follow a planted link."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pixi_pack_src.safepath import (
    RelPath,
    UnsafePathError,
    makedirs_under,
    open_under,
    path_problem,
    under,
)


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "is empty"),
        ("a/../b", "has a '..' component (path traversal)"),
        ("/etc/passwd", "is an absolute path"),
        ("C:/x", "starts with a drive letter"),
        ("a\\b", "has a backslash"),
        ("a\x00b", "has a NUL byte"),
        ("a\nb", "has a control character"),
        ("a\x9bb", "has a control character"),
        ("a//b", "has an empty path component"),
        ("./a", "has a '.' component"),
        ("x" * 256, "has a component longer than 255 bytes"),
        ("a/" * 2100 + "a", "is longer than 4096 bytes"),
        ("a\udcffb", "is not valid UTF-8"),
    ],
)
def test_refused_names(name: str, problem: str) -> None:
    assert path_problem(name) == problem
    with pytest.raises(UnsafePathError, match="refused|" + problem[:10]):
        RelPath.parse(name, what="member")


def test_accepted_names_keep_their_text() -> None:
    for name in ("a", "lib/python3.12/site-packages/x.py", "man/man3/Foo::Bar.3pm", "é/ü"):
        rel = RelPath.parse(name)
        assert rel == name
        assert rel.parts == tuple(name.split("/"))
    with pytest.raises(UnsafePathError, match="not a plain file name"):
        RelPath.file_name("a/b.whl")


def test_writes_refuse_a_planted_symlink(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "lib").symlink_to(outside)
    (root / "f").symlink_to(outside / "f")
    with pytest.raises(UnsafePathError, match="leads outside"):
        under(root, "lib/x")
    with pytest.raises(UnsafePathError, match="symbolic link"):
        open_under(root, "lib/x")
    with pytest.raises(UnsafePathError, match="symbolic link"):
        open_under(root, "f", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    with pytest.raises(UnsafePathError, match="symbolic link"):
        makedirs_under(root, "lib/deeper")
    assert list(outside.iterdir()) == []
    fd = open_under(root, "a/b/c")
    os.close(fd)
    assert (root / "a" / "b" / "c").is_file()
