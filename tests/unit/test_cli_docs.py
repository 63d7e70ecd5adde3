"""docs/cli.md is generated from the typer app and kept in sync."""

from __future__ import annotations

from pathlib import Path

from pixi_pack_src.cli.docs import render

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_cli_reference_is_up_to_date() -> None:
    assert DOC.read_text() == render(), (
        "docs/cli.md is stale: run `python -m pixi_pack_src.cli.docs > docs/cli.md`"
    )


def test_reference_covers_every_command_and_option() -> None:
    text = render()
    for heading in ("## pixi-pack-src pack", "## pixi-pack-src unpack", "## pixi-pack-src inspect"):
        assert heading in text
    for option in ("--create-executable", "--use-cache", "--platform-check", "--report"):
        assert option in text
