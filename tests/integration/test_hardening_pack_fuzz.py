"""Hardening, broken locks through ``pack``: the same mutations as the inspect fuzz
(tests/unit/test_hardening_lock_fuzz.py), on a world lock whose packages are ``file://``
URLs, run through the whole ``pack`` (selection, fetching, writing).

``pack`` carries out what ``inspect`` shows on the same lock, or refuses with its words.
Whatever happens: exit code 0, 1 or 2 -- or 3, and then only for a download that failed
(a mutated URL) -- and a failure is one ``error:`` line, never a traceback. No request can
leave the machine: every proxy variable points at a closed port on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from testworld.chaos import mutate_bytes, mutate_tree
from testworld.layout import World
from testworld.locks import Env, write_lock

from pixi_pack_src.cli import run

pytestmark = pytest.mark.integration

DEAD_PROXY = "http://127.0.0.1:9"


@pytest.fixture(scope="module")
def world_lock(world: World, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("fuzz-lock") / "pixi.lock"
    write_lock(path, world, {"default": Env(conda=("chain-a", "worldcli"))})  # file:// URLs
    return path.read_bytes()


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(key, DEAD_PROXY)
    monkeypatch.setenv("NO_PROXY", "")
    monkeypatch.setenv("GIT_CONFIG_COUNT", "0")


def _pack(lock: bytes) -> tuple[int, str]:
    with tempfile.TemporaryDirectory(prefix="pack-fuzz-") as tmp:
        root = Path(tmp)
        (root / "pixi.lock").write_bytes(lock)
        err = io.StringIO()
        stdout = io.TextIOWrapper(io.BytesIO())  # pack writes bytes to sys.stdout.buffer
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(err):
            argv = ["pack", str(root), "-o", str(root / "out.tar"), "--no-build-sdist"]
            code = run([*argv, "--retries", "0", "--timeout", "1"])
        return code, err.getvalue()


def _one_line_failure(code: int, err: str) -> None:
    assert "Traceback" not in err, err
    assert "internal error" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    if code == 0:
        assert errors == []
        return
    assert code in (1, 2, 3), (code, err)
    assert len(errors) == 1, err
    if code == 3:
        assert "could not download" in errors[0], err


FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _mutated(world_lock: bytes, data: st.DataObject) -> bytes:
    if data.draw(st.booleans(), label="tree"):
        tree: Any = copy.deepcopy(yaml.safe_load(world_lock))
        for _ in range(data.draw(st.integers(1, 2), label="mutations")):
            tree = mutate_tree(tree, data)
        try:
            return yaml.safe_dump(tree, allow_unicode=True).encode("utf-8", "surrogatepass")
        except (yaml.YAMLError, UnicodeEncodeError):
            return repr(tree).encode("utf-8", "backslashreplace")
    return mutate_bytes(world_lock, data)


def _inspect_then_pack(lock: bytes) -> tuple[tuple[int, str, str], tuple[int, str, str]]:
    """``inspect --json`` and ``pack --json`` with the same options on one workspace:
    (exit code, stdout, stderr) of each."""
    results = []
    with tempfile.TemporaryDirectory(prefix="agree-fuzz-") as tmp:
        root = Path(tmp)
        (root / "pixi.lock").write_bytes(lock)
        common = [str(root), "--no-build-sdist", "--json"]
        for argv in (
            ["inspect", *common],
            ["pack", *common, "-o", str(root / "out.tar"), "--retries", "0", "--timeout", "1"],
        ):
            err, out = io.StringIO(), io.TextIOWrapper(io.BytesIO())
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = run(argv)
            out.seek(0)
            results.append((code, out.read(), err.getvalue()))
    return results[0], results[1]


def _refusal(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith(("error:", "help:", "  - "))]


@FUZZ
@given(data=st.data())
def test_pack_does_what_inspect_shows_on_mutated_locks(
    world_lock: bytes, no_network: None, data: st.DataObject
) -> None:
    """Whatever ``inspect`` plans, ``pack`` carries out item for item; whatever it refuses,
    ``pack`` refuses with the same words. (``pack`` may still fail where no plan can know:
    a download that fails, bytes that do not match.)"""
    (icode, iout, ierr), (pcode, pout, perr) = _inspect_then_pack(_mutated(world_lock, data))
    if icode != 0:
        assert pcode != 0, (ierr, perr)
        assert _refusal(perr) == _refusal(ierr), (ierr, perr)
        return
    if pcode != 0:
        assert pcode in (1, 3), perr  # a failed download or a file that does not match
        return
    planned = json.loads(iout)
    done = json.loads(pout)
    keys = ("action", "kind", "name", "version", "source")
    assert {
        p["name"]: [{k: i[k] for k in keys} for i in p["items"]] for p in done["platforms"]
    } == {
        p["platform"]["name"]: [{k: i[k] for k in keys} for i in p["items"]]
        for p in planned["platforms"]
    }


@FUZZ
@given(data=st.data())
def test_pack_on_mutated_locks_fails_in_one_line(
    world_lock: bytes, no_network: None, data: st.DataObject
) -> None:
    _one_line_failure(*_pack(_mutated(world_lock, data)))


def test_the_unmutated_lock_packs(world_lock: bytes, no_network: None) -> None:
    code, err = _pack(world_lock)
    assert code == 0, err
