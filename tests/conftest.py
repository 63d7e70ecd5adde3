"""Test-wide isolation: no user config, no keyring, no colour, a private cache, never the network."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["testworld.fixtures", "testworld.pixi_standin.fixtures"]

_SCRUB_PREFIXES = ("PIXI_", "RATTLER_", "PIXI_PACK_SRC_", "CONDA_OVERRIDE_")
_SCRUB = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "FORCE_COLOR",
    "SOURCE_DATE_EPOCH",
)


@pytest.fixture(autouse=True)
def _isolation(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    for key in list(os.environ):
        if key.startswith(_SCRUB_PREFIXES) or key in _SCRUB:
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    # pixi's user config files and the OS keyring stay out of tests (tests opt in)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("PIXI_HOME", str(home / ".pixi"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
