"""The typer app: global options, sub-command registration and the one error funnel.

Global options (``-v``, ``-q``, ``--color``, ``--no-progress``) are accepted before or after
the sub-command, as in pixi: :func:`command` copies them onto every sub-command.

``main()`` is the only place that exits the process. It exits with ``os._exit`` after
flushing, so that py-rattler's native threads cannot crash the interpreter at shutdown
(py-rattler can crash an interpreter at exit).
"""

from __future__ import annotations

import contextlib
import copy as _copy
import enum
import logging
import os
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, NoReturn

import typer
import typer.core

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


def result_printer(*, stderr: bool = False) -> Callable[[str], None]:
    """Prints a command's result for humans: stdout (``stderr`` when stdout carries data),
    colour only on a terminal."""
    console = make_console(resolve_color(STATE.color), stdout=not stderr)
    return lambda message: console.print(message, soft_wrap=True)


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
        int,
        typer.Option(
            "-v", "--verbose", count=True, show_default=False, help="More output (repeatable)."
        ),
    ] = 0,
    quiet: Annotated[
        int,
        typer.Option(
            "-q", "--quiet", count=True, show_default=False, help="Less output (repeatable)."
        ),
    ] = 0,
    color: Annotated[
        Color,
        typer.Option(
            "--color",
            metavar="WHEN",
            envvar="PIXI_PACK_SRC_COLOR",
            show_envvar=True,
            case_sensitive=False,
            help="Colour: auto, always or never; NO_COLOR and FORCE_COLOR win.",
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
    _configure_logging()


def _configure_logging() -> None:
    logconf.configure(STATE.verbosity, make_console(resolve_color(STATE.color)))


def _register() -> None:
    # Sub-commands live in their own modules and attach themselves to ``app``.
    from pixi_pack_src.cli import cache as _cache  # noqa: F401
    from pixi_pack_src.cli import completion as _completion  # noqa: F401
    from pixi_pack_src.cli import inspect as _inspect  # noqa: F401
    from pixi_pack_src.cli import manifest as _manifest  # noqa: F401
    from pixi_pack_src.cli import pack as _pack  # noqa: F401
    from pixi_pack_src.cli import sbom as _sbom  # noqa: F401
    from pixi_pack_src.cli import unpack as _unpack  # noqa: F401
    from pixi_pack_src.cli import verify as _verify  # noqa: F401


_register()

# -- global options after the sub-command, help metavars and one-line descriptions

_GLOBAL = ("verbose", "quiet", "color", "no_progress")


def _global_after_command(ctx: Any, param: Any, value: Any) -> None:
    """``pack . -v``: a global option given after the sub-command adds to (or overrides)
    what the root parsed; values that come from defaults or the environment are ignored."""
    source = ctx.get_parameter_source(param.name)
    if source is None or source.name != "COMMANDLINE":
        return
    if param.name == "verbose":
        STATE.verbosity += int(value)
    elif param.name == "quiet":
        STATE.verbosity -= int(value)
    elif param.name == "color":
        STATE.color = str(getattr(value, "value", value))
    elif param.name == "no_progress":
        STATE.no_progress = STATE.no_progress or bool(value)
    _configure_logging()


# A value's metavar when an option names none: what it is, never a Python type.
_METAVAR_BY_TYPE = {
    "int": "N",
    "int range": "N",
    "float": "SECONDS",
    "float range": "SECONDS",
    "path": "PATH",
    "file": "FILE",
    "directory": "DIR",
    "str": "TEXT",
}


def _tidy_params(command: Any) -> None:
    for param in command.params:
        if isinstance(param, typer.core.TyperArgument):
            # "MANIFEST_PATH <path>" -> "MANIFEST_PATH": the metavar says it all
            setattr(param, "display_type_rich", lambda ctx: None)  # noqa: B010
        elif isinstance(param, typer.core.TyperOption) and param.metavar is None:
            if param.is_flag or param.count:
                continue
            shown = str(param.display_type(None)).strip("<>")  # type: ignore[arg-type]
            if shown.startswith("list[") and shown.endswith("]"):
                shown = shown[5:-1].lower()
            if "|" in shown:  # choices
                param.metavar = shown
            else:
                param.metavar = _METAVAR_BY_TYPE.get(shown, "VALUE")


def _first_sentence(text: str) -> str:
    """The first sentence of a command's help (up to ``. `` or ``: ``), for the command list."""
    paragraph = " ".join(text.strip().split("\n\n", 1)[0].split())
    cut = [i for i in (paragraph.find(". "), paragraph.find(": ")) if i >= 0]
    if not cut:
        return paragraph
    return paragraph[: min(cut)] + "."


def command() -> Any:
    """The click group behind ``app``, as the user gets it (used by :func:`run` and the docs)."""
    group = typer.main.get_command(app)
    globals_ = [
        p for p in group.params if p.name in _GLOBAL and isinstance(p, typer.core.TyperOption)
    ]
    _tidy_params(group)
    _attach(group, globals_)
    return group


def _attach(group: Any, globals_: list[typer.core.TyperOption]) -> None:
    """Every sub-command (nested ones too: ``cache verify``) takes the global options."""
    for sub in getattr(group, "commands", {}).values():
        if sub.help and not sub.short_help:  # a whole sentence in the command list, never "..."
            sub.short_help = _first_sentence(sub.help)
        names = {p.name for p in sub.params}
        copies = []
        for param in globals_:
            if param.name in names:
                continue
            copy = _copy.copy(param)
            copy.callback = _global_after_command
            copy.expose_value = False
            copy.envvar = None  # the root reads the environment once
            copy.show_envvar = False
            copy.show_default = False
            sub.params.append(copy)
            copies.append(copy)
        if copies:
            setattr(sub, "format_options", _with_global_section(sub.format_options, copies))  # noqa: B010
        _tidy_params(sub)
        _attach(sub, globals_)


def _with_global_section(
    format_options: Callable[[Any, Any], None], copies: list[typer.core.TyperOption]
) -> Callable[[Any, Any], None]:
    """A command's help lists the global options apart, under "Global options" (as pixi)."""

    def formatted(ctx: Any, formatter: Any) -> None:
        for param in copies:
            param.hidden = True
        try:
            format_options(ctx, formatter)
        finally:
            for param in copies:
                param.hidden = False
        records = [r for r in (p.get_help_record(ctx) for p in copies) if r is not None]
        with formatter.section("Global options"):
            formatter.write_dl(records)

    return formatted


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
    from pixi_pack_src.cli.completion import COMPLETE_VAR, completion_init

    group = command()
    if os.environ.get(COMPLETE_VAR):  # a shell asks for completions (see `completion`)
        completion_init()
    try:
        rv = group.main(
            args=list(argv) if argv is not None else None,
            prog_name="pixi-pack-src",
            standalone_mode=False,
        )
    except typer.Exit as exc:
        return int(exc.exit_code)
    except SystemExit as exc:  # shell completion answers and exits
        return exc.code if isinstance(exc.code, int) else 0
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


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM (a CI job cancelled, ``kill``) takes the Ctrl-C path: every ``finally`` runs,
    so partial downloads and work directories are removed. A second SIGTERM kills at once."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> NoReturn:
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminate)
    code = run(argv)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    logging.shutdown()
    os._exit(code)
