"""``pixi-pack-src completion --shell SHELL``: the shell completion script, on stdout.

The script calls ``pixi-pack-src`` back with ``_PIXI_PACK_SRC_COMPLETE`` set; :func:`run`
then answers with the commands, options and choices that fit (typer's completion engine).
"""

from __future__ import annotations

import enum
import sys
from typing import Annotated

import typer
from typer._completion_classes import completion_init
from typer._completion_shared import get_completion_script

from pixi_pack_src.cli import app

__all__ = ["COMPLETE_VAR", "completion_init"]

PROG = "pixi-pack-src"
COMPLETE_VAR = "_PIXI_PACK_SRC_COMPLETE"


class Shell(enum.StrEnum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"
    powershell = "powershell"


_INSTALL = {
    Shell.bash: 'eval "$(pixi-pack-src completion --shell bash)"  # in ~/.bashrc',
    Shell.zsh: 'eval "$(pixi-pack-src completion --shell zsh)"  # in ~/.zshrc',
    Shell.fish: "pixi-pack-src completion --shell fish | source  # in config.fish",
    Shell.powershell: "pixi-pack-src completion --shell powershell | Out-String | "
    "Invoke-Expression  # in $PROFILE",
}


def script(shell: Shell) -> str:
    completion_init()
    text = get_completion_script(prog_name=PROG, complete_var=COMPLETE_VAR, shell=shell.value)
    return text + "\n"


@app.command(
    "completion",
    epilog="\b\nLoad it from the shell's start-up file:\n"
    + "\n".join(f"  {line}" for line in _INSTALL.values()),
)
def completion_command(
    shell: Annotated[
        Shell,
        typer.Option(
            "-s",
            "--shell",
            metavar="SHELL",
            case_sensitive=False,
            help="bash, zsh, fish or powershell.",
        ),
    ],
) -> None:
    """Print the completion script for bash, zsh, fish or powershell."""
    sys.stdout.write(script(shell))
