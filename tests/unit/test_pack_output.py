"""Issue 14: where `pack -o` writes (an existing directory gets the default name in it; a
missing parent directory is a usage error, never made silently)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixi_pack_src.errors import EXIT_USAGE, UsageError
from pixi_pack_src.lock.model import Platform
from pixi_pack_src.pack.options import PackOptions
from pixi_pack_src.pack.result import output_for, output_refusals

LINUX = Platform("linux-64", "linux-64")
WIN = Platform("win-64", "win-64")


def _outputs(output: str | None, platforms: list[Platform], **kw: bool) -> list[str]:
    options = PackOptions(output=output, **kw)  # type: ignore[arg-type]
    return [output_for(options, platforms, p) for p in platforms]


def test_existing_directory_gets_the_default_name(tmp_path: Path) -> None:
    """`mkdir out; pixi-pack-src pack . -o out`."""
    out = tmp_path / "out"
    out.mkdir()
    assert _outputs(str(out), [LINUX]) == [str(out / "environment.tar")]
    assert _outputs(str(out) + "/", [LINUX]) == [str(out / "environment.tar")]
    assert _outputs(str(out), [LINUX, WIN]) == [
        str(out / "environment-linux-64.tar"),
        str(out / "environment-win-64.tar"),
    ]
    assert _outputs(str(out), [WIN], create_executable=True) == [str(out / "environment.cmd")]
    assert _outputs(str(out), [LINUX], create_executable=True) == [str(out / "environment.sh")]
    assert output_refusals(str(out / "environment.tar")) == []


def test_directory_only_keeps_its_meaning(tmp_path: Path) -> None:
    """`pixi-pack-src pack . --directory-only -o out`: the pack is the directory out."""
    out = tmp_path / "out"
    out.mkdir()
    assert _outputs(str(out), [LINUX], directory_only=True) == [str(out)]


def test_missing_parent_is_a_usage_error(tmp_path: Path) -> None:
    """`pixi-pack-src pack . -o /missing/dir/e.tar`: exit 2, the directory named."""
    target = tmp_path / "missing" / "dir" / "e.tar"
    (refusal,) = output_refusals(str(target))
    assert refusal.message == (
        f"cannot write {target}: the directory {target.parent} does not exist"
    )
    assert refusal.hint == (
        f"create it first (mkdir -p {target.parent}), or choose another -o/--output-file"
    )
    assert refusal.exit_code == EXIT_USAGE
    assert not (tmp_path / "missing").exists()


def test_trailing_slash_names_a_directory_that_must_exist(tmp_path: Path) -> None:
    """`pixi-pack-src pack . -o newdir/`."""
    with pytest.raises(UsageError) as info:
        _outputs(str(tmp_path / "newdir") + "/", [LINUX])
    assert info.value.message == (
        f"-o {tmp_path / 'newdir'}/: the directory {tmp_path / 'newdir'} does not exist"
    )
    assert not (tmp_path / "newdir").exists()


def test_a_file_as_parent_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    (refusal,) = output_refusals(str(tmp_path / "file" / "e.tar"))
    assert (
        refusal.message
        == f"cannot write {tmp_path / 'file' / 'e.tar'}: {tmp_path / 'file'} is not a directory"
    )
