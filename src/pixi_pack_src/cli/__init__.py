"""The typer app: root options, sub-command registration and the one error funnel.

``main()`` is the only place that exits the process. It exits with ``os._exit`` after
flushing, so that py-rattler's native threads cannot crash the interpreter at shutdown
(see testing-world.md, "Crash at interpreter exit").
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, NoReturn

import typer

from pixi_pack_src import __version__
from pixi_pack_src.cli import log as logconf
from pixi_pack_src.cli.ui import RichReporter, make_console, resolve_color
from pixi_pack_src.errors import EXIT_INTERRUPTED, EXIT_USAGE, PixiPackSrcError, exit_code_for
from pixi_pack_src.redact import RedactingStream

log = logging.getLogger("pixi_pack_src.cli")

app = typer.Typer(
    name="pixi-pack-src",
    help="Pack a pixi.lock environment (source packages and sdists included) into an archive "
    "that installs offline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
)


@dataclass
class CliState:
    verbosity: int = 0
    color: str = "auto"
    no_progress: bool = False

    def reporter(self, *, json_output: bool = False) -> RichReporter:
        console = make_console("never" if json_output else resolve_color(self.color))
        live = console.is_terminal and not self.no_progress and not json_output
        return RichReporter(console, live=live, quiet=self.verbosity < 0 or json_output)


STATE = CliState()


class Color(enum.StrEnum):
    auto = "auto"
    always = "always"
    never = "never"


def _version_callback(value: bool) -> None:
    if value:
        sys.stdout.write(f"pixi-pack-src {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def root(
    verbose: Annotated[
        int, typer.Option("-v", "--verbose", count=True, help="More output (repeatable).")
    ] = 0,
    quiet: Annotated[
        int, typer.Option("-q", "--quiet", count=True, help="Less output (repeatable).")
    ] = 0,
    color: Annotated[
        Color,
        typer.Option(
            "--color",
            envvar="PIXI_PACK_SRC_COLOR",
            show_envvar=True,
            case_sensitive=False,
            help="Colour on stderr; NO_COLOR and FORCE_COLOR win.",
        ),
    ] = Color.auto,
    no_progress: Annotated[
        bool,
        typer.Option(
            "--no-progress",
            envvar="PIXI_PACK_SRC_NO_PROGRESS",
            show_envvar=True,
            help="No progress bars (also PIXI_NO_PROGRESS).",
        ),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    STATE.verbosity = verbose - quiet
    STATE.color = color.value
    STATE.no_progress = no_progress or bool(os.environ.get("PIXI_NO_PROGRESS"))
    console = make_console(resolve_color(color.value))
    logconf.configure(STATE.verbosity, console)


def _register() -> None:
    # Sub-commands live in their own modules and attach themselves to ``app``.
    from pixi_pack_src.cli import inspect as _inspect  # noqa: F401
    from pixi_pack_src.cli import manifest as _manifest  # noqa: F401
    from pixi_pack_src.cli import pack as _pack  # noqa: F401
    from pixi_pack_src.cli import unpack as _unpack  # noqa: F401


_register()


def _print_error(exc: BaseException) -> None:
    err = RedactingStream(sys.stderr)  # messages may quote URLs with credentials
    if isinstance(exc, PixiPackSrcError):
        err.write(f"error: {exc.message}\n")
        tail = getattr(exc, "output_tail", "")
        log_file = getattr(exc, "log_file", None)
        if tail:
            err.write("  last lines of the output:\n")
            for line in tail.splitlines()[-20:]:
                err.write(f"  | {line}\n")
        if log_file is not None:
            err.write(f"  log: {log_file}\n")
        if exc.hint:
            err.write(f"help: {exc.hint}\n")
    else:
        err.write(f"error: internal error: {type(exc).__name__}: {exc}\n")
        err.write("help: this is a bug in pixi-pack-src; re-run with -vv and report it\n")
    if STATE.verbosity >= 2:
        traceback.print_exception(exc, file=err)


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return the exit code (no process exit; used by tests)."""
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        sys.stderr.write("Interrupted\n")
        return EXIT_INTERRUPTED
    except typer.TyperException as exc:  # click-style usage errors
        show = getattr(exc, "show", None)
        if callable(show):
            show(file=sys.stderr)
        else:
            sys.stderr.write(f"error: {exc.format_message()}\n")
        return exc.exit_code if exc.exit_code else EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted\n")
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the funnel: every error ends here
        _print_error(exc)
        return exit_code_for(exc)
    code = int(rv) if isinstance(rv, int) else 0
    if code == EXIT_INTERRUPTED:  # typer turns KeyboardInterrupt into Exit(130)
        sys.stderr.write("Interrupted\n")
    return code


def main(argv: Sequence[str] | None = None) -> NoReturn:
    code = run(argv)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    logging.shutdown()
    os._exit(code)
