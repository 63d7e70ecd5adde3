"""The activation script ``<output-dir>/activate.<ext>`` (archive-format.md §8 step 5).

py-rattler writes the script for bash, zsh, fish, xonsh, cmd and PowerShell: it prepends the
prefix's bin directories to ``PATH``, sets ``CONDA_PREFIX``/``CONDA_SHLVL``, exports the
variables of ``etc/conda/env_vars.d`` and sources the packages' ``etc/conda/activate.d``
scripts. It bakes nothing of the current shell in: ``PATH`` is extended at activation time.

py-rattler 0.28 has no nushell (Rust rattler does): that one small script is rendered here
in rattler's own form (``$env.PATH = ($env.PATH | prepend [...])``), with the prefix's bin
directories still taken from py-rattler.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rattler import Subdir
from rattler.exceptions import ActivationError, ActivationScriptFormatError, ShellError
from rattler.shell import ActivationVariables, Shell, activate

from pixi_pack_src.errors import InstallError, UsageError

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
_RATTLER_SHELLS = {
    "bash": Shell.bash,
    "zsh": Shell.zsh,
    "fish": Shell.fish,
    "xonsh": Shell.xonsh,
    "cmd": Shell.cmd_exe,
    "powershell": Shell.powershell,
}


def shell_names() -> list[str]:
    """Every accepted ``-s`` value (canonical names and aliases), sorted."""
    return sorted({*SHELLS, *ALIASES})


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


def _nu_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _env_vars(prefix: Path) -> dict[str, str]:
    """``etc/conda/env_vars.d/*.json`` then ``conda-meta/state`` ``env_vars`` (conda's order)."""
    found: dict[str, str] = {}
    sources = sorted((prefix / "etc" / "conda" / "env_vars.d").glob("*.json"))
    state = prefix / "conda-meta" / "state"
    for path in [*sources, state]:
        if not path.is_file():
            continue
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            logger.warning("ignoring %s: %s", path, exc)
            continue
        values = doc.get("env_vars", {}) if path == state else doc
        if isinstance(values, dict):
            found.update({str(k): str(v) for k, v in values.items()})
    return found


def _nushell_script(prefix: Path, platform: str) -> str:
    path_var = "Path" if platform.startswith("win") else "PATH"
    dirs = ", ".join(_nu_string(d) for d in bin_dirs(prefix, platform))
    lines = [f"$env.{path_var} = ($env.{path_var} | prepend [{dirs}])"]
    variables = {"CONDA_SHLVL": "1", "CONDA_PREFIX": str(prefix), **_env_vars(prefix)}
    for key, value in variables.items():
        if not key.replace("_", "").isalnum():
            logger.warning("not setting %r in the nushell script: not a variable name", key)
            continue
        lines.append(f"$env.{key} = {_nu_string(value)}")
    for script in sorted((prefix / "etc" / "conda" / "activate.d").glob("*.nu")):
        lines.append(f"source-env {_nu_string(str(script))}")
    return "\n".join(lines) + "\n"


def activation_script(prefix: Path, shell: ShellKind, platform: str) -> str:
    """The script text for an environment that already exists at ``prefix``."""
    if shell.name == "nushell":
        return _nushell_script(prefix, platform)
    try:
        result = activate(
            prefix, _variables(), _RATTLER_SHELLS[shell.name], platform=Subdir(platform)
        )
    except (ActivationError, ActivationScriptFormatError, ShellError) as exc:
        raise InstallError(
            f"cannot write the {shell.name} activation script for {prefix}: {exc}"
        ) from exc
    return result.script


def write_activation_script(
    output_dir: Path, prefix: Path, shell: ShellKind, platform: str
) -> Path:
    """Write ``output_dir/activate.<ext>`` atomically (CRLF for cmd and PowerShell)."""
    text = activation_script(prefix, shell, platform)
    if shell.name in ("cmd", "powershell"):
        text = text.replace("\r\n", "\n").replace("\n", "\r\n")
    target = output_dir / shell.script_name
    tmp = output_dir / f".{shell.script_name}.{secrets.token_hex(6)}.tmp"
    try:
        tmp.write_bytes(text.encode("utf-8"))
        tmp.chmod(0o644)
        tmp.replace(target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InstallError(f"cannot write {target}: {exc.strerror or exc}") from exc
    return target
