"""`pixi-pack-src unpack`: install a pack (tar, stdin or directory) offline.

Only parses options, calls :func:`pixi_pack_src.unpack.unpack` and prints the result on
stdout: a summary, or with ``--json`` one versioned document. Progress is on stderr.
"""

from __future__ import annotations

import enum
import json
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from pixi_pack_src.cli import STATE, app, result_printer
from pixi_pack_src.install.activation import SHELLS
from pixi_pack_src.unpack import UnpackOptions, UnpackResult, unpack


class OnOff(enum.StrEnum):
    on = "on"
    off = "off"


@app.command("unpack")
def unpack_command(
    pack_file: Annotated[
        str,
        typer.Argument(
            metavar="PACK_FILE",
            help="The archive (a tar), - for standard input, or a directory pack "
            "(used in place, never written to).",
        ),
    ] = "environment.tar",
    output_directory: Annotated[
        Path,
        typer.Option(
            "-o",
            "--output-directory",
            metavar="DIR",
            help="Where the environment (DIR/ENV_NAME) and the activation script go.",
        ),
    ] = Path(),
    env_name: Annotated[
        str,
        typer.Option("-e", "--env-name", metavar="ENV_NAME", help="The environment's directory."),
    ] = "env",
    shell: Annotated[
        str | None,
        typer.Option(
            "-s",
            "--shell",
            metavar="SHELL",
            help="Shell of the activation script: "
            + ", ".join(SHELLS)
            + " [default: $SHELL, or cmd for a Windows pack]",
            show_default=False,
        ),
    ] = None,
    platform_check: Annotated[
        OnOff,
        typer.Option(
            "--platform-check",
            case_sensitive=False,
            help="Refuse a pack made for another platform (off: install it anyway, e.g. for "
            "an image of that platform).",
        ),
    ] = OnOff.on,
    virtual_package_check: Annotated[
        OnOff,
        typer.Option(
            "--virtual-package-check",
            case_sensitive=False,
            help="Refuse a machine below the __glibc/__osx/__cuda/__linux versions the lock "
            "assumed or the packages need (CONDA_OVERRIDE_* are honoured).",
        ),
    ] = OnOff.on,
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace an existing, non-empty environment."),
    ] = False,
    base: Annotated[
        Path | None,
        typer.Option(
            "--base",
            metavar="OLD",
            help="For a delta pack: the pack it was made against (tar or directory); the "
            "files the delta does not carry come from it.",
        ),
    ] = None,
    update: Annotated[
        Path | None,
        typer.Option(
            "--update",
            metavar="DIR/ENV",
            help="Update this environment (unpacked from the delta's base) in place: the new "
            "one is installed beside it and swapped in atomically.",
        ),
    ] = None,
    keep_packages: Annotated[
        bool,
        typer.Option(
            "--keep-packages",
            help="Keep the pack's files in ENV/.pixi-pack-src/pack, so that a later delta "
            "can --update the environment without the base archive.",
        ),
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON document on stdout when done.")
    ] = False,
) -> None:
    """Install a pack offline (DIR/ENV_NAME and DIR/activate.<ext>)."""
    options = UnpackOptions(
        pack="-" if pack_file == "-" else Path(pack_file),
        output_dir=output_directory,
        env_name=env_name,
        shell=shell,
        platform_check=platform_check is OnOff.on,
        virtual_package_check=virtual_package_check is OnOff.on,
        force=force,
        base=base,
        update=update,
        keep_packages=keep_packages,
    )
    reporter = STATE.reporter(json_output=json_output)
    result = unpack(
        options, reporter=reporter, stdin=sys.stdin.buffer if pack_file == "-" else None
    )
    if json_output:
        sys.stdout.write(json.dumps(result.to_json(), indent=2, sort_keys=True) + "\n")
        return
    if STATE.verbosity >= 0:  # the result, on stdout (-q: none)
        _summary(result_printer(), result)


_ACTIVATE = {"cmd": "call", "powershell": "."}


def _summary(say: Callable[[str], None], result: UnpackResult) -> None:
    script = shlex.quote(str(result.activation_script))
    verb = _ACTIVATE.get(result.shell, "source")
    parts = [f"{result.conda_packages} conda package(s)"]
    if result.wheels:
        parts.append(f"{result.wheels} wheel(s)")
    say(f"💫 Finished unpacking to {result.environment}.")
    say(
        f"   {', '.join(parts)}; {result.verified} file(s) verified against "
        f"{result.verified_against}"
    )
    say(f"   activate it with: {verb} {script}")
