"""The benchmark scripts keep working: ``benchmarks/run.py --quick`` runs every case once.

Tiny data (10 packages, one 16 MiB package, a 50-package lock, 2 source packages), one run
per side, offline (conda-pack is used only when its venv already exists under
.cache/bench). Nothing here asserts on time: the numbers of a quick run mean nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def test_every_case_runs_once_on_tiny_data(tmp_path: Path) -> None:
    out = tmp_path / "rows.json"
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nprose stays\n")
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "run.py"),
            "--quick",
            "--offline",
            "--work",
            str(tmp_path / "work"),
            "--json",
            str(out),
            "--doc",
            str(doc),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=360,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    rows = json.loads(out.read_text())
    by_case: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_case.setdefault(str(row["case"]), []).append(row)
    assert sorted(by_case) == ["1", "2", "3", "4", "5", "6", "7", "8", "9"]
    assert not [r for r in rows if str(r["status"]).startswith("ERROR")]
    # every timed row has its measurements
    assert [r["what"] for r in by_case["1"]] == ["cold pack vs httpx+tar", "cold pack vs curl+tar"]
    assert len(by_case["2"][0]["data"]["subject_s"]) == 1
    assert by_case["3"][0]["what"] == "unpack vs rattler.install"
    assert [str(r["what"]).split(" vs ")[0] for r in by_case["9"]] == [
        "delta pack (one changed package)",
        "unpack --update (delta)",
    ]
    assert [str(r["what"]).split(",")[1].strip() for r in by_case["5"]] == [
        "cold pack",
        "warm-cache pack",
        "unpack",
        "verify --lock",
    ]
    assert all(r["status"] == "met" for r in by_case["5"])  # 16 MiB stays far below 200 MiB
    assert [r["what"] for r in by_case["6"]][:2] == [
        "`inspect`, 51-package lock",
        "`inspect --json`, 51-package lock",
    ]
    assert "load lock" in by_case["6"][2]["data"]["phases"]
    assert by_case["7"][0]["status"] == "met (0 builds)"
    assert by_case["4"][0]["status"] in ("info", "n/a: conda-pack missing")
    assert by_case["8"][0]["what"] == "cold pack of 5 sdists (build requirements: 2 wheels each)"
    assert len(by_case["8"][0]["data"]["subject_s"]) == 1
    # the table went into the doc, between the markers, after the prose
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\nprose stays\n")
    assert "| 6 | `inspect`, 51-package lock |" in text
    assert "| 6 | `inspect`, 51-package lock |" in proc.stdout
    # the scratch directory holds no leftover outputs
    leftovers = sorted(p.name for p in (tmp_path / "work").glob("*.tar"))
    assert leftovers == []
