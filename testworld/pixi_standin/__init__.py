"""A faithful stand-in ``pixi`` for tests (docs/pixi-build.md §11).

The executable itself is :mod:`testworld.pixi_standin.pixi` (self-contained; its docstring
lists the behaviour and the knobs). This module installs it and reads what it recorded:

- :func:`install(bin_dir) -> Path`: writes ``<bin_dir>/pixi``, a ``/bin/sh`` wrapper running
  the script with this interpreter.
- :class:`StandIn`: the knobs as methods (``version``, ``remove_build``, ``fail``,
  ``no_hash_input``), ``env()`` (the environment variables to set) and ``calls()`` /
  ``builds()`` (the invocation log, one :class:`Invocation` per run).

In pytest, use the ``fake_pixi`` fixture (:mod:`testworld.pixi_standin.fixtures`), which puts
the stand-in first on ``PATH`` and sets its variables with ``monkeypatch``.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testworld.pixi_standin.pixi import (
    DEFAULT_VERSION,
    ENV_BUILD_REMOVED,
    ENV_FAIL,
    ENV_LOG,
    ENV_NO_HASH_INPUT,
    ENV_VERSION,
)

SCRIPT = Path(__file__).resolve().parent / "pixi.py"

__all__ = [
    "DEFAULT_VERSION",
    "SCRIPT",
    "Invocation",
    "StandIn",
    "install",
    "read_invocations",
]


def install(bin_dir: Path) -> Path:
    """Write the ``pixi`` executable into ``bin_dir`` and return its path."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    exe = bin_dir / "pixi"
    exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{SCRIPT}" "$@"\n')
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return exe


@dataclass(frozen=True)
class Invocation:
    """One run of the stand-in, as it recorded itself."""

    argv: tuple[str, ...]
    cwd: str
    env: Mapping[str, str]
    exit: int
    command: str | None
    version: str
    opened_lock: bool
    path: str | None = None
    manifest: str | None = None
    workspace: str | None = None
    package: str | None = None
    target_platform: str | None = None
    build_platform: str | None = None
    output_dir: str | None = None
    outputs: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    backend: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_build(self) -> bool:
        """A ``build`` or ``publish`` run (not ``--version`` or ``--help``)."""
        return self.command in ("build", "publish") and "--help" not in self.argv

    def flag(self, name: str) -> str | None:
        """The value following ``name`` in argv (``None`` when absent)."""
        if name in self.argv:
            i = self.argv.index(name)
            return self.argv[i + 1] if i + 1 < len(self.argv) else None
        return None


def read_invocations(log: Path) -> list[Invocation]:
    if not log.exists():
        return []
    out = []
    for line in log.read_text().splitlines():
        if not line.strip():
            continue
        doc: dict[str, Any] = json.loads(line)
        out.append(
            Invocation(
                argv=tuple(doc.get("argv", ())),
                cwd=doc.get("cwd", ""),
                env=dict(doc.get("env", {})),
                exit=int(doc.get("exit", -1)),
                command=doc.get("command"),
                version=doc.get("version", ""),
                opened_lock=bool(doc.get("opened_lock")),
                path=doc.get("path"),
                manifest=doc.get("manifest"),
                workspace=doc.get("workspace"),
                package=doc.get("package"),
                target_platform=doc.get("target_platform"),
                build_platform=doc.get("build_platform"),
                output_dir=doc.get("output_dir"),
                outputs=tuple(doc.get("outputs", ())),
                skipped=tuple(doc.get("skipped", ())),
                backend=dict(doc.get("backend") or {}),
            )
        )
    return out


@dataclass
class StandIn:
    """An installed stand-in and its knobs (pass :meth:`env` to the process under test)."""

    exe: Path
    log: Path
    pixi_version: str = DEFAULT_VERSION
    build_removed: bool = False
    failures: dict[str, str] = field(default_factory=dict)
    without_hash_input: set[str] = field(default_factory=set)
    autoapply: bool = False  # write the knobs into os.environ whenever they change

    @property
    def bin_dir(self) -> Path:
        return self.exe.parent

    def version(self, value: str) -> StandIn:
        self.pixi_version = value
        return self._changed()

    def remove_build(self, removed: bool = True) -> StandIn:
        """Make ``pixi build`` an unknown subcommand (exit 2), as after its removal."""
        self.build_removed = removed
        return self._changed()

    def fail(self, package: str, mode: str) -> StandIn:
        """``mode``: ``fail``, ``crash``, ``slow[:seconds]`` or ``drift`` for ``package``."""
        self.failures[package] = mode
        return self._changed()

    def no_hash_input(self, package: str = "*") -> StandIn:
        self.without_hash_input.add(package)
        return self._changed()

    def reset_knobs(self) -> StandIn:
        self.failures.clear()
        self.without_hash_input.clear()
        self.build_removed = False
        self.pixi_version = DEFAULT_VERSION
        return self._changed()

    def _changed(self) -> StandIn:
        if self.autoapply:
            self.apply()
        return self

    def env(self) -> dict[str, str]:
        """The variables the stand-in reads; ``""`` means "unset"."""
        return {
            ENV_LOG: str(self.log),
            ENV_VERSION: self.pixi_version,
            ENV_BUILD_REMOVED: "1" if self.build_removed else "",
            ENV_FAIL: ",".join(f"{k}={v}" for k, v in sorted(self.failures.items())),
            ENV_NO_HASH_INPUT: ",".join(sorted(self.without_hash_input)),
        }

    def apply(self, environ: dict[str, str] | None = None) -> None:
        """Write :meth:`env` into ``environ`` (default: ``os.environ``)."""
        target = os.environ if environ is None else environ
        for key, value in self.env().items():
            if value:
                target[key] = value
            else:
                target.pop(key, None)

    def calls(self) -> list[Invocation]:
        """Every invocation so far (``--version`` and ``--help`` runs included)."""
        return read_invocations(self.log)

    def builds(self) -> list[Invocation]:
        """Only the ``build`` / ``publish`` runs."""
        return [c for c in self.calls() if c.is_build]

    def clear_log(self) -> None:
        self.log.unlink(missing_ok=True)
