"""The CLI run in-process from tests, with ``--json``."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pixi_pack_src.cli import run


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any], str]:
    """``pixi-pack-src *argv --json``: (exit code, the document or ``{}`` when none was
    printed, stderr). ``inspect`` prints its document even when it exits 1."""
    code = run([*argv, "--json"])
    captured = capsys.readouterr()
    doc: dict[str, Any] = json.loads(captured.out) if captured.out.strip() else {}
    return code, doc, captured.err


def inspect_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    """``inspect *argv --json``: the document; the exit code is 1 exactly when it lists
    problems (a pack would fail), with one ``error:`` line."""
    code, doc, err = run_json(capsys, "inspect", *argv)
    assert code == (1 if doc["problems"] else 0), err
    assert sum(line.startswith("error: ") for line in err.splitlines()) == (code == 1), err
    return doc
