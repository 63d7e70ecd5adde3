"""The unpacker inside a self-extracting script: ``run.py PACK [-o DIR] [-e NAME] [-s SHELL] ...``.

It runs on the offline host with the bundle's own python (or the host's), so it imports only
what :func:`pixi_pack_src.unpack.unpack` needs: no typer, rich or httpx.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from pixi_pack_src.errors import PixiPackSrcError, exit_code_for
from pixi_pack_src.reporter import NullReporter, Outcome

USAGE_EPILOG = """\
The environment goes to DIR/ENV_NAME and the activation script to DIR/activate.<ext>.
Needs: bash, tar, tail, head, gzip, mktemp and uname; python >= 3.11 comes from the archive
(or python3 on the host when the environment has none).
"""


class _LineReporter(NullReporter):
    """One line per finished step on stderr (the offline host has no rich)."""

    def task_finished(self, key: str, *, outcome: Outcome, detail: str = "") -> None:
        sys.stderr.write(f"{outcome} {key}{f' ({detail})' if detail else ''}\n")

    def status(self, message: str) -> None:
        sys.stderr.write(message + "\n")


def parser(prog: str = "environment.sh") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Install the environment packed in this file, offline.",
        epilog=USAGE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "-o",
        "--output-directory",
        default=".",
        metavar="DIR",
        help="default: the current directory",
    )
    p.add_argument("-e", "--env-name", default="env", metavar="ENV_NAME", help="default: env")
    p.add_argument(
        "-s",
        "--shell",
        default=None,
        metavar="SHELL",
        help="activation script shell [default: $SHELL]",
    )
    p.add_argument("--platform-check", choices=("on", "off"), default="on")
    p.add_argument("--virtual-package-check", choices=("on", "off"), default="on")
    p.add_argument("--force", action="store_true", help="replace an existing environment")
    p.add_argument(
        "--base", default=None, metavar="OLD", help="for a delta: the pack it was made against"
    )
    p.add_argument(
        "--update",
        default=None,
        metavar="DIR/ENV",
        help="for a delta: update this environment in place (atomically)",
    )
    p.add_argument(
        "--keep-packages",
        action="store_true",
        help="keep the pack's files in the environment for later deltas",
    )
    p.add_argument("-q", "--quiet", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        sys.stderr.write("error: no archive given (this is run by the self-extracting script)\n")
        return 2
    pack, rest = args[0], args[1:]
    ns = parser().parse_args(rest)
    logging.basicConfig(
        level=logging.ERROR if ns.quiet else logging.WARNING, format="%(levelname)s: %(message)s"
    )
    from pixi_pack_src.unpack import UnpackOptions, unpack

    options = UnpackOptions(
        pack="-" if pack == "-" else Path(pack),
        output_dir=Path(ns.output_directory),
        env_name=ns.env_name,
        shell=ns.shell,
        platform_check=ns.platform_check == "on",
        virtual_package_check=ns.virtual_package_check == "on",
        force=ns.force,
        base=Path(ns.base) if ns.base else None,
        update=Path(ns.update) if ns.update else None,
        keep_packages=ns.keep_packages,
    )
    try:
        result = unpack(options, reporter=_LineReporter(), stdin=sys.stdin.buffer)
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted\n")
        return 130
    except PixiPackSrcError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        if exc.hint:
            sys.stderr.write(f"help: {exc.hint}\n")
        return exit_code_for(exc)
    sys.stderr.write(
        f"installed the environment into {result.environment}\n"
        f"activate it with: source {result.activation_script}\n"
    )
    return 0
