"""The pure-Python ``patch -p1`` (build.patch), checked against difflib and GNU patch."""

from __future__ import annotations

import difflib
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pixi_pack_src.builders.wheel.patch import (
    PatchError,
    apply_patch,
    apply_patch_bytes,
    parse_patch,
)
from pixi_pack_src.errors import EXIT_BUILD

GNU_PATCH = shutil.which("patch")
GNU_DIFF = shutil.which("diff")
needs_gnu = pytest.mark.skipif(
    GNU_PATCH is None or GNU_DIFF is None, reason="GNU patch/diff not installed (reference only)"
)


def _diff(name: str, before: str, after: str, n: int = 3) -> str:
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            f"a/{name}",
            f"b/{name}",
            n=n,
        )
    )


def _tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


lines = st.lists(st.sampled_from(["alpha\n", "beta\n", "gamma\n", "\n", "x = 1\n", "  pass\n"]))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(before=lines, after=lines, context=st.integers(min_value=0, max_value=3))
def test_any_difflib_diff_applies_back(
    tmp_path_factory: pytest.TempPathFactory, before: list[str], after: list[str], context: int
) -> None:
    if before == after:
        return
    root = _tree(tmp_path_factory.mktemp("t"), {"pkg/mod.py": "".join(before)})
    patch = _diff("pkg/mod.py", "".join(before), "".join(after), n=context)
    apply_patch_bytes(patch.encode(), root, what="p")
    assert (root / "pkg" / "mod.py").read_text() == "".join(after)


def test_several_files_and_hunks(tmp_path: Path) -> None:
    a = "".join(f"line {i}\n" for i in range(40))
    b = a.replace("line 3\n", "line three\n").replace("line 30\n", "line thirty\nextra\n")
    setup = "from setuptools import setup\nsetup(name='x')\n"
    patch = _diff("src/a.txt", a, b) + _diff("setup.py", setup, setup.replace("'x'", "'y'"))
    root = _tree(tmp_path, {"src/a.txt": a, "setup.py": setup})
    result = apply_patch_bytes(patch.encode(), root, what="two.patch")
    assert (root / "src/a.txt").read_text() == b
    assert (root / "setup.py").read_text() == "from setuptools import setup\nsetup(name='y')\n"
    assert result.changed == ("src/a.txt", "setup.py")
    assert result.offsets == (0, 0, 0)
    assert len(parse_patch(patch.encode())[0].hunks) == 2


def test_hunk_found_at_an_offset(tmp_path: Path) -> None:
    a = "".join(f"line {i}\n" for i in range(20))
    patch = _diff("f.txt", a, a.replace("line 10\n", "LINE 10\n"))
    root = _tree(tmp_path, {"f.txt": "new 1\nnew 2\nnew 3\n" + a})
    result = apply_patch_bytes(patch.encode(), root, what="p")
    assert result.offsets == (3,)
    assert "LINE 10\n" in (root / "f.txt").read_text()


def test_mismatch_names_patch_file_and_hunk_and_changes_nothing(tmp_path: Path) -> None:
    a = "".join(f"line {i}\n" for i in range(40))
    b = a.replace("line 3\n", "line three\n").replace("line 30\n", "line thirty\n")
    patch_file = tmp_path / "fix.patch"
    patch_file.write_text(_diff("f.txt", a, b) + _diff("g.txt", "g\n", "G\n"))
    root = _tree(
        tmp_path / "src", {"f.txt": a.replace("line 31\n", "line 31 changed\n"), "g.txt": "g\n"}
    )
    before = _snapshot(root)
    with pytest.raises(PatchError) as err:
        apply_patch(patch_file, root, label="patches/fix.patch")
    assert err.value.message == (
        "patch patches/fix.patch does not apply: hunk #2 of f.txt (line 28, patch line 12) "
        "does not match"
    )
    assert err.value.exit_code == EXIT_BUILD
    assert err.value.hint is not None
    assert _snapshot(root) == before  # all or nothing: g.txt untouched too


def test_already_applied_is_recognised(tmp_path: Path) -> None:
    patch = _diff("f.txt", "a\nb\nc\n", "a\nB\nc\n")
    root = _tree(tmp_path, {"f.txt": "a\nB\nc\n"})
    with pytest.raises(PatchError, match=r"hunk #1 of f\.txt .* \(it looks already applied\)"):
        apply_patch_bytes(patch.encode(), root, what="p")


def test_create_delete_and_missing_file(tmp_path: Path) -> None:
    patch = (
        "diff --git a/new/mod.py b/new/mod.py\nnew file mode 100755\n"
        "--- /dev/null\n+++ b/new/mod.py\n@@ -0,0 +1,2 @@\n+#!/bin/sh\n+echo hi\n"
        "--- a/old.txt\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-one\n-two\n"
    )
    root = _tree(tmp_path, {"old.txt": "one\ntwo\n"})
    result = apply_patch_bytes(patch.encode(), root, what="p")
    assert result.created == ("new/mod.py",)
    assert result.deleted == ("old.txt",)
    assert (root / "new/mod.py").read_text() == "#!/bin/sh\necho hi\n"
    assert (root / "new/mod.py").stat().st_mode & 0o111
    assert not (root / "old.txt").exists()
    with pytest.raises(PatchError, match=r"missing\.txt does not exist in the source tree"):
        apply_patch_bytes(_diff("missing.txt", "a\n", "b\n").encode(), root, what="p")


def test_no_newline_markers_and_crlf(tmp_path: Path) -> None:
    patch = (
        "--- a/f.txt\n+++ b/f.txt\n@@ -1,2 +1,2 @@\n a\r\n-b\r\n\\ No newline at end of file\n"
        "+c\r\n"
    )
    root = _tree(tmp_path, {"f.txt": b"a\r\nb\r"})
    apply_patch_bytes(patch.encode(), root, what="p")
    assert (root / "f.txt").read_bytes() == b"a\r\nc\r\n"


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ("hello\n", "no file changes found"),
        ("--- a/../x\n+++ b/../x\n@@ -1 +1 @@\n-a\n+b\n", "outside the tree"),
        ("--- /etc/passwd\n+++ /etc/passwd\n@@ -1 +1 @@\n-a\n+b\n", "outside the tree"),
        ("--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n-a\n+b\n", "truncated"),
        ("--- a/f\n+++ b/f\n@@ -1 +1 @@\n?a\n", "unexpected"),
        ("diff --git a/x b/y\nrename from x\nrename to y\n", "renames and copies"),
        ("diff --git a/f b/f\nindex 1..2\nGIT binary patch\nliteral 3\n", "binary patches"),
        ("Binary files a/f and b/f differ\n", "binary patches"),
    ],
)
def test_malformed_or_unsafe_patches(tmp_path: Path, patch: str, message: str) -> None:
    _tree(tmp_path, {"f": "a\n"})
    with pytest.raises(PatchError, match=message):
        apply_patch_bytes(patch.encode(), tmp_path, what="p")


# -- against GNU patch ----------------------------------------------------------------------

CASES: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    "modify-create-delete": (
        {"setup.py": "".join(f"# {i}\n" for i in range(30)), "gone.txt": "bye\n", "keep": "k\n"},
        {
            "setup.py": "".join(f"# {i}\n" for i in range(30) if i != 12).replace("# 25", "# 25!"),
            "pkg/__init__.py": "VERSION = '1'\n",
            "keep": "k\n",
        },
    ),
    "no-trailing-newline": ({"a.txt": "one\ntwo"}, {"a.txt": "one\nthree"}),
    "repeated-lines": (
        {"r.txt": "x\n" * 10 + "y\n" + "x\n" * 10},
        {"r.txt": "x\n" * 10 + "z\n" + "x\n" * 10},
    ),
}


def _gnu_diff(a: Path, b: Path) -> bytes:
    assert GNU_DIFF is not None
    out = subprocess.run(
        [GNU_DIFF, "-ruN", "a", "b"], cwd=a.parent, capture_output=True, check=False
    )
    assert out.returncode == 1, out.stderr
    return out.stdout


@needs_gnu
@pytest.mark.parametrize("case", sorted(CASES))
def test_same_result_as_gnu_patch(tmp_path: Path, case: str) -> None:
    before, after = CASES[case]
    a = _tree(tmp_path / "a", dict(before))
    b = _tree(tmp_path / "b", dict(after))
    patch = _gnu_diff(a, b)
    # Shift everything by a few lines in the tree we patch, to exercise offsets too.
    shifted = {k: ("# header\n" * 2 + v if k == "setup.py" else v) for k, v in before.items()}
    ours = _tree(tmp_path / "ours", dict(shifted))
    gnu = _tree(tmp_path / "gnu", dict(shifted))
    apply_patch_bytes(patch, ours, what=case)
    assert GNU_PATCH is not None
    subprocess.run(
        [GNU_PATCH, "-p1", "--fuzz=0", "-s", "--no-backup-if-mismatch"],
        cwd=gnu,
        input=patch,
        check=True,
    )
    assert _snapshot(ours) == _snapshot(gnu)


@needs_gnu
def test_gnu_patch_also_refuses_what_we_refuse(tmp_path: Path) -> None:
    a = "".join(f"line {i}\n" for i in range(10))
    patch = _diff("f.txt", a, a.replace("line 5\n", "five\n")).encode()
    changed = a.replace("line 4\n", "line four\n")
    ours = _tree(tmp_path / "ours", {"f.txt": changed})
    gnu = _tree(tmp_path / "gnu", {"f.txt": changed})
    with pytest.raises(PatchError):
        apply_patch_bytes(patch, ours, what="p")
    assert GNU_PATCH is not None
    result = subprocess.run(
        [GNU_PATCH, "-p1", "--fuzz=0", "--dry-run"], cwd=gnu, input=patch, capture_output=True
    )
    assert result.returncode == 1
    assert b"FAILED" in result.stdout
