"""What ``unpack`` is asked to do and what it reports (the versioned ``--json`` document)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pixi_pack_src import __version__
from pixi_pack_src.delta.compare import DeltaInfo

JSON_VERSION = 1
STDIN_LABEL = "the archive on standard input"


@dataclass(frozen=True)
class UnpackOptions:
    """What ``pixi-pack-src unpack`` was asked to do (see the CLI for the flags)."""

    pack: Path | Literal["-"]
    output_dir: Path
    env_name: str = "env"
    shell: str | None = None
    platform_check: bool = True
    virtual_package_check: bool = True
    force: bool = False
    base: Path | None = None  # --base: the pack a delta was made against
    update: Path | None = None  # --update: the environment to update in place (atomically)
    keep_packages: bool = False  # keep the pack's files in <env>/.pixi-pack-src/pack


@dataclass(frozen=True)
class UnpackResult:
    """An unpacked environment, and what was checked on the way."""

    environment: Path
    activation_script: Path
    shell: str
    platform: str
    conda_packages: int
    wheels: int
    verified: int  # package files whose bytes matched a recorded hash
    verified_against: Literal["pixi-pack-src.json", "repodata.json"]
    warnings: tuple[str, ...]
    identity: str | None = None  # of the environment's pack (delta/manifest.py)
    delta: DeltaInfo | None = None  # when a delta was applied

    def to_json(self) -> dict[str, Any]:
        """The versioned ``--json`` document."""
        return {
            "version": JSON_VERSION,
            "tool": {"name": "pixi-pack-src", "version": __version__},
            "environment": str(self.environment),
            "activation_script": str(self.activation_script),
            "shell": self.shell,
            "platform": self.platform,
            "conda_packages": self.conda_packages,
            "wheels": self.wheels,
            "verified": self.verified,
            "verified_against": self.verified_against,
            "warnings": list(self.warnings),
            "identity": self.identity,
            "delta": self.delta.summary() if self.delta is not None else None,
        }
