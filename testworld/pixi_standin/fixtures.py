"""pytest fixtures for the stand-in ``pixi`` and for tests that need the real one.

Register with ``pytest_plugins = ["testworld.pixi_standin.fixtures"]`` (tests/conftest.py).
Until then, a test module can define its own ``fake_pixi`` fixture with
:func:`install_fake_pixi` and use :func:`find_real_pixi`.

- ``fake_pixi`` -> :class:`testworld.pixi_standin.StandIn`: installed in a fresh bin dir put
  first on ``PATH``; its knobs (``version``, ``remove_build``, ``fail``, ``no_hash_input``)
  take effect immediately through ``monkeypatch``; ``calls()`` / ``builds()`` read its
  invocation log.
- ``real_pixi`` -> ``Path`` of the real ``pixi``: skips the test, visibly, with the reason
  "pixi not on PATH" when there is none. Tests marked ``needs_pixi`` are skipped the same way
  by :func:`pytest_collection_modifyitems` (a no-op unless this module is a registered plugin).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from testworld.pixi_standin import SCRIPT, StandIn, install
from testworld.pixi_standin.pixi import (
    ENV_BUILD_REMOVED,
    ENV_FAIL,
    ENV_LOG,
    ENV_NO_HASH_INPUT,
    ENV_VERSION,
)

NO_PIXI_REASON = "pixi not on PATH"


def find_real_pixi() -> Path | None:
    """The real ``pixi`` on ``PATH`` (never the stand-in), or ``None``."""
    found = shutil.which("pixi")
    if found is None:
        return None
    path = Path(found)
    try:
        if str(SCRIPT) in path.read_text(errors="replace")[:512]:
            return None
    except OSError:
        return None
    return path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if find_real_pixi() is not None:
        return
    skip = pytest.mark.skip(reason=NO_PIXI_REASON)
    for item in items:
        if item.get_closest_marker("needs_pixi") is not None:
            item.add_marker(skip)


@pytest.fixture
def real_pixi() -> Path:
    found = find_real_pixi()
    if found is None:
        pytest.skip(NO_PIXI_REASON)
    return found


def install_fake_pixi(root: Path, monkeypatch: pytest.MonkeyPatch) -> StandIn:
    """Install the stand-in under ``root``, first on ``PATH``, knobs live via ``monkeypatch``."""
    exe = install(root / "bin")
    for key in (ENV_LOG, ENV_VERSION, ENV_BUILD_REMOVED, ENV_FAIL, ENV_NO_HASH_INPUT):
        monkeypatch.delenv(key, raising=False)
        monkeypatch.setenv(key, "")  # recorded, so teardown restores the original state
    monkeypatch.setenv("PATH", f"{exe.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    standin = StandIn(exe=exe, log=root / "invocations.jsonl", autoapply=True)
    standin.apply()
    return standin


@pytest.fixture
def fake_pixi(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> StandIn:
    return install_fake_pixi(tmp_path_factory.mktemp("fake-pixi"), monkeypatch)
