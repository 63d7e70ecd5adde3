"""The activation script ``<output-dir>/activate.<ext>`` (docs/archive-format.md, "Checking a pack").

The script for bash, zsh, fish, xonsh, cmd, PowerShell or nushell prepends the prefix's bin
directories (py-rattler's list) to ``PATH``, sets ``CONDA_PREFIX``/``CONDA_SHLVL``, exports
the variables of ``etc/conda/env_vars.d`` and sources the packages' ``etc/conda/activate.d``
scripts, as rattler's activation does. It bakes nothing of the current shell in: ``PATH`` is
extended at activation time.

The scripts are rendered here rather than by py-rattler, whose scripts splice the
``env_vars.d`` names and values of packages into shell code unquoted (``"$(...)"`` ran at
activation): every text goes through :mod:`pixi_pack_src.shellquote`, names must be
identifiers.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rattler import Subdir
from rattler.exceptions import ActivationError, ActivationScriptFormatError, ShellError
from rattler.shell import ActivationVariables, Shell, activate

from pixi_pack_src.atomicfile import write_atomically
from pixi_pack_src.errors import InstallError, UsageError
from pixi_pack_src.shellquote import (
    UnquotableError,
    is_identifier,
    quote_cmd,
    quote_fish,
    quote_nushell,
    quote_posix,
    quote_powershell,
    quote_xonsh,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShellKind:
    """A shell we write an activation script for."""

    name: str  # canonical: bash, zsh, fish, xonsh, cmd, powershell, nushell
    extension: str

    @property
    def script_name(self) -> str:
        return f"activate.{self.extension}"


SHELLS: dict[str, ShellKind] = {
    s.name: s
    for s in (
        ShellKind("bash", "sh"),
        ShellKind("zsh", "sh"),
        ShellKind("fish", "fish"),
        ShellKind("xonsh", "xsh"),
        ShellKind("cmd", "bat"),
        ShellKind("powershell", "ps1"),
        ShellKind("nushell", "nu"),
    )
}
ALIASES = {
    "sh": "bash",
    "cmd.exe": "cmd",
    "cmd_exe": "cmd",
    "pwsh": "powershell",
    "powershell.exe": "powershell",
    "pwsh.exe": "powershell",
    "nu": "nushell",
}


def lookup_shell(name: str) -> ShellKind:
    """A canonical name or alias -> :class:`ShellKind` (:class:`UsageError` otherwise)."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in SHELLS:
        raise UsageError(
            f"unknown shell {name!r}",
            hint=f"choose one of: {', '.join(SHELLS)}",
        )
    return SHELLS[key]


def default_shell(platform: str, environ: Mapping[str, str] | None = None) -> ShellKind:
    """cmd for a Windows environment; else the user's ``$SHELL`` if we know it, else bash."""
    if platform.startswith("win"):
        return SHELLS["cmd"]
    env = os.environ if environ is None else environ
    base = Path(env.get("SHELL", "")).name.lower()
    key = ALIASES.get(base, base)
    return SHELLS.get(key, SHELLS["bash"])


class _AnyPath(list[str]):
    """An empty ``current_path`` that py-rattler keeps (an empty list means "use os.environ").

    With it the script extends the ``PATH`` of the shell that sources it instead of freezing
    the ``PATH`` of the process that wrote it (as pixi-unpack does with ``path: None``).
    """

    def __bool__(self) -> bool:
        return True


def _variables() -> ActivationVariables:
    return ActivationVariables(None, _AnyPath())


def bin_dirs(prefix: Path, platform: str) -> list[str]:
    """The directories activation puts on ``PATH`` for ``prefix`` (py-rattler's list)."""
    result = activate(prefix, _variables(), Shell.bash, platform=Subdir(platform))
    # Typed as one Path, but py-rattler returns the whole list of PATH entries.
    entries: object = result.path
    return [str(p) for p in (entries if isinstance(entries, list) else [entries])]


def _env_vars(prefix: Path) -> dict[str, str]:
    """``etc/conda/env_vars.d/*.json`` then ``conda-meta/state`` ``env_vars`` (conda's order).

    The files come from packages: data that must stay data. A name that is not a valid
    identifier is refused (:class:`InstallError`); values are written quoted, never
    evaluated."""
    found: dict[str, str] = {}
    sources = sorted((prefix / "etc" / "conda" / "env_vars.d").glob("*.json"))
    state = prefix / "conda-meta" / "state"
    for path in [*sources, state]:
        if not path.is_file():
            continue
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            logger.warning("ignoring %s: %s", path, exc)
            continue
        values = doc.get("env_vars", {}) if path == state and isinstance(doc, dict) else doc
        if not isinstance(values, dict):
            continue
        for key, value in values.items():
            if not is_identifier(str(key)):
                raise InstallError(
                    f"refusing {path.relative_to(prefix)}: variable name {str(key)!r} is not "
                    "a valid identifier",
                    hint="a package sets an environment variable whose name a shell would run "
                    "as code; the package is damaged or hostile",
                )
            found[str(key)] = str(value)
    return found


@dataclass(frozen=True)
class _Activation:
    """What every shell's script does, as data: PATH entries, variables, scripts to source."""

    path_var: str
    separator: str
    dirs: list[str]
    variables: dict[str, str]
    scripts: list[Path]  # etc/conda/activate.d, sorted


def _activation(prefix: Path, platform: str) -> _Activation:
    windows = platform.startswith("win")
    directory = prefix / "etc" / "conda" / "activate.d"
    scripts = sorted(p for p in directory.glob("*") if p.is_file()) if directory.is_dir() else []
    return _Activation(
        path_var="Path" if windows else "PATH",
        separator=";" if windows else ":",
        dirs=bin_dirs(prefix, platform),
        variables={"CONDA_SHLVL": "1", "CONDA_PREFIX": str(prefix), **_env_vars(prefix)},
        scripts=scripts,
    )


def _scripts(a: _Activation, *suffixes: str) -> list[Path]:
    return [p for p in a.scripts if p.suffix in suffixes]


def _posix(a: _Activation) -> list[str]:
    q = quote_posix
    lines = [f'export {a.path_var}={q(a.separator.join(a.dirs) + a.separator)}"${{{a.path_var}}}"']
    lines += [f"export {k}={q(v)}" for k, v in a.variables.items()]
    lines += [f". {q(str(p))}" for p in _scripts(a, ".sh")]
    return lines


def _fish(a: _Activation) -> list[str]:
    q = quote_fish
    lines = [f"set -gx {a.path_var} {' '.join(q(d) for d in a.dirs)} ${a.path_var}"]
    lines += [f"set -gx {k} {q(v)}" for k, v in a.variables.items()]
    lines += [f"source {q(str(p))}" for p in _scripts(a, ".fish")]
    return lines


def _xonsh(a: _Activation) -> list[str]:
    q = quote_xonsh
    lines = [f"${a.path_var}.insert(0, {q(d)})" for d in reversed(a.dirs)]
    lines += [f"${k} = {q(v)}" for k, v in a.variables.items()]
    for p in _scripts(a, ".sh", ".xsh"):
        lines.append(f"{'source-bash' if p.suffix == '.sh' else 'source'} {q(str(p))}")
    return lines


def _cmd(a: _Activation) -> list[str]:
    q = quote_cmd
    dirs = a.separator.join(a.dirs) + a.separator
    # the quoted word without its closing quote, then the PATH expanded at activation time
    head = q(f"{a.path_var}={dirs}")[:-1]
    lines = ["@chcp 65001 > nul", f'@SET {head}%{a.path_var}%"']
    lines += [f"@SET {q(f'{k}={v}')}" for k, v in a.variables.items()]
    lines += [f"@CALL {q(str(p))}" for p in _scripts(a, ".bat")]
    return lines


def _powershell(a: _Activation) -> list[str]:
    q = quote_powershell
    dirs = a.separator.join(a.dirs) + a.separator
    lines = [
        "$OutputEncoding = [System.Console]::OutputEncoding = "
        "[System.Console]::InputEncoding = [System.Text.Encoding]::UTF8",
        f"${{Env:{a.path_var}}} = {q(dirs)} + $Env:{a.path_var}",
    ]
    lines += [f"${{Env:{k}}} = {q(v)}" for k, v in a.variables.items()]
    lines += [f". {q(str(p))}" for p in _scripts(a, ".ps1")]
    return lines


def _nushell(a: _Activation) -> list[str]:
    q = quote_nushell
    dirs = ", ".join(q(d) for d in a.dirs)
    lines = [f"$env.{a.path_var} = ($env.{a.path_var} | prepend [{dirs}])"]
    lines += [f"$env.{k} = {q(v)}" for k, v in a.variables.items()]
    lines += [f"source-env {q(str(p))}" for p in _scripts(a, ".nu")]
    return lines


_RENDER = {
    "bash": _posix,
    "zsh": _posix,
    "fish": _fish,
    "xonsh": _xonsh,
    "cmd": _cmd,
    "powershell": _powershell,
    "nushell": _nushell,
}


def activation_script(prefix: Path, shell: ShellKind, platform: str) -> str:
    """The script text for an environment that already exists at ``prefix``.

    Written here for every shell (py-rattler supplies the ``PATH`` entries): each text from
    data -- the prefix, env_vars.d values, script paths -- goes through the one quoting
    function of that shell (:mod:`pixi_pack_src.shellquote`), and variable names must be
    identifiers."""
    try:
        return "\n".join(_RENDER[shell.name](_activation(prefix, platform))) + "\n"
    except (ActivationError, ActivationScriptFormatError, ShellError) as exc:
        raise InstallError(
            f"cannot write the {shell.name} activation script for {prefix}: {exc}"
        ) from exc
    except UnquotableError as exc:
        raise InstallError(
            f"cannot write the {shell.name} activation script for {prefix}: {exc}",
            hint="choose another shell with -s, or another output directory",
        ) from exc


def write_activation_script(
    output_dir: Path, prefix: Path, shell: ShellKind, platform: str
) -> Path:
    """Write ``output_dir/activate.<ext>`` atomically (CRLF for cmd and PowerShell)."""
    text = activation_script(prefix, shell, platform)
    if shell.name in ("cmd", "powershell"):
        text = text.replace("\r\n", "\n").replace("\n", "\r\n")
    target = output_dir / shell.script_name
    try:
        write_atomically(target, text.encode("utf-8"), mode=0o644)
    except OSError as exc:
        raise InstallError(f"cannot write {target}: {exc.strerror or exc}") from exc
    return target
