"""Options and helpers shared by several commands."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import typer

from ..errors import UsageError


def manifest_argument() -> Any:
    return typer.Argument(
        help="pixi.toml, pyproject.toml or a workspace directory [default: .]",
        show_default=False,
    )


def resolve_manifest(positional: Path | None, option: Path | None) -> Path | None:
    if positional is not None and option is not None and positional != option:
        raise UsageError(
            f"two manifests given: {positional} and --manifest-path {option}",
            hint="give the workspace once",
        )
    return positional or option


def parse_overrides(values: Sequence[str]) -> dict[str, Path]:
    """``--backend-override NAME=PATH`` (repeatable) -> {name: absolute path}."""
    out: dict[str, Path] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise UsageError(
                f"--backend-override {value!r} is not NAME=PATH",
                hint="e.g. --backend-override pixi-build-python=/opt/backends/pixi-build-python",
            )
        out[name.strip()] = Path(path.strip()).expanduser().resolve()
    return out


def write_report(path: Path, document: Mapping[str, Any], *, markdown: str | None = None) -> None:
    """Write ``--report FILE`` atomically: Markdown for ``.md``, else the JSON document."""
    if path.suffix.lower() in (".md", ".markdown") and markdown is not None:
        data = markdown.encode("utf-8")
    else:
        data = (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
