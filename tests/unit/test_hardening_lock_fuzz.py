"""Hardening, broken and hostile locks and manifests: property-based mutations (hypothesis).

Each example takes a real lock (the samples in tests/data), mutates its YAML tree (a key
removed or renamed, a value replaced by another type, a list item duplicated, the version
changed...) or its bytes (cut short, random bytes inserted, a line duplicated or dropped),
writes a workspace and runs ``inspect --all-platforms --json`` in-process. Whatever happens,
the CLI ends with exit code 0, 1 or 2, and a failure is exactly one ``error:`` line (plus an
optional ``help:`` line): never a traceback, never "internal error". The same holds for
mutated ``pixi.toml`` manifests. Runs are derandomized (the same examples every time) and
bounded by ``max_examples``.
"""

from __future__ import annotations

import contextlib
import copy
import io
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from testworld.chaos import mutate_bytes, mutate_tree

from pixi_pack_src.cli import run

DATA = Path(__file__).resolve().parent.parent / "data"
SAMPLES = sorted(
    p
    for p in [*(DATA / "lock-samples").iterdir(), *(DATA / "locks").iterdir()]
    if p.suffix in (".lock", ".yml") and p.stat().st_size < 100_000
)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
TREES: dict[str, Any] = {p.name: yaml.load(p.read_bytes(), Loader=_LOADER) for p in SAMPLES}
PIXI_TOML = (
    '[workspace]\nname = "fuzz"\nchannels = ["conda-forge"]\nplatforms = ["linux-64"]\n\n'
    '[tool.pixi-pack-src.overrides.worldpkg_a]\nenv = { A = "1" }\n'
)

FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _inspect(lock: bytes, manifest: str = PIXI_TOML) -> tuple[int, str]:
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        root = Path(tmp)
        (root / "pixi.toml").write_text(manifest, encoding="utf-8", errors="surrogateescape")
        (root / "pixi.lock").write_bytes(lock)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run(["inspect", str(root), "--all-platforms", "--json"])
        return code, err.getvalue()


def _one_line_failure(code: int, err: str) -> None:
    assert code in (0, 1, 2), (code, err)
    assert "Traceback" not in err, err
    assert "internal error" not in err, err
    if code == 0:
        return
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, err
    # the error may list several reasons a pack would fail, one "  - " line each
    listed = ("error:", "help:", "warning:", "  - ")
    others = [line for line in lines if not line.startswith(listed)]
    assert others == [], err


@FUZZ
@given(data=st.data())
def test_mutated_lock_trees_fail_in_one_line(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(TREES)), label="sample")
    tree = copy.deepcopy(TREES[name])
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        tree = mutate_tree(tree, data)
    try:
        raw = yaml.dump(tree, Dumper=_DUMPER, allow_unicode=True).encode("utf-8", "surrogatepass")
    except (yaml.YAMLError, UnicodeEncodeError):
        raw = repr(tree).encode("utf-8", "backslashreplace")
    _one_line_failure(*_inspect(raw))


@FUZZ
@given(data=st.data())
def test_mutated_lock_bytes_fail_in_one_line(data: st.DataObject) -> None:
    sample = data.draw(st.sampled_from(SAMPLES), label="sample")
    raw = sample.read_bytes()
    for _ in range(data.draw(st.integers(1, 2), label="mutations")):
        raw = mutate_bytes(raw, data)
    _one_line_failure(*_inspect(raw))


@settings(FUZZ, max_examples=60)
@given(data=st.data())
def test_mutated_manifests_fail_in_one_line(data: st.DataObject) -> None:
    sample = (DATA / "locks" / "v7-pypi-kinds.lock").read_bytes()
    manifest = mutate_bytes(PIXI_TOML.encode(), data).decode("utf-8", "surrogateescape")
    _one_line_failure(*_inspect(sample, manifest))


def test_the_samples_themselves_inspect_cleanly() -> None:
    assert len(SAMPLES) >= 8
    for sample in SAMPLES:
        code, err = _inspect(sample.read_bytes())
        _one_line_failure(code, err)
