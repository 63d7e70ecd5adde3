"""One exception hierarchy, mapped to exit codes.

| Code | Meaning |
| ---- | ------- |
| 0    | success |
| 1    | failure (any :class:`PixiPackSrcError` not listed below) |
| 2    | usage error (bad option values; typer/click uses the same code) |
| 3    | network or download failure after retries; a CI job may retry |
| 4    | build failure (``pixi build``, or sdist -> wheel) |
| 130  | interrupted (Ctrl-C) |

Every error carries a one-line message and an optional ``hint`` (the ``help:`` line).
"""

from __future__ import annotations

from pathlib import Path

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_DOWNLOAD = 3
EXIT_BUILD = 4
EXIT_INTERRUPTED = 130


class PixiPackSrcError(Exception):
    """Root of every error the library raises on purpose."""

    exit_code: int = EXIT_ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(PixiPackSrcError, ValueError):
    """Options that contradict each other or name things that do not exist."""

    exit_code = EXIT_USAGE


class WorkspaceError(PixiPackSrcError):
    """The manifest, the workspace or a package manifest cannot be used."""


class LockfileError(PixiPackSrcError, ValueError):
    """pixi.lock is missing, malformed, too new, or lacks the environment/platform asked for."""


class SelectionError(LockfileError):
    """An environment or platform that the lock does not have (a usage error)."""

    exit_code = EXIT_USAGE


class UnsupportedPackageError(PixiPackSrcError):
    """A lock entry that this tool cannot pack (yet), e.g. a PyPI sdist without the build step."""


class PlanRefusedError(PixiPackSrcError):
    """What the plan found that makes a pack fail, every reason at once, before any download.

    One reason keeps the exit code of its own error (an unpinned backend is a build refusal,
    4); several exit 1. ``inspect`` reports the same refusal with exit code 1.
    """

    def __init__(self, message: str, *, hint: str | None = None, exit_code: int = 1) -> None:
        super().__init__(message, hint=hint)
        self.exit_code = exit_code


class ConfigError(PixiPackSrcError, ValueError):
    """A config, auth or overrides file that cannot be read."""


class DownloadError(PixiPackSrcError):
    """A download that failed after every retry and mirror."""

    exit_code = EXIT_DOWNLOAD

    def __init__(self, message: str, *, hint: str | None = None, reason: str = "") -> None:
        super().__init__(message, hint=hint)
        self.reason = reason  # the last failure in a few words ("HTTP 404 Not Found")


class ChecksumMismatchError(DownloadError):
    """Bytes that do not match the hash or size the lock (or archive) records."""

    def __init__(
        self,
        *,
        what: str,
        source: str,
        algorithm: str,
        expected: str,
        actual: str,
        hint: str | None = None,
    ) -> None:
        super().__init__(
            f"{algorithm} mismatch for {what} from {source}: expected {expected}, got {actual}",
            hint=hint,
        )
        self.what = what
        self.source = source
        self.algorithm = algorithm
        self.expected = expected
        self.actual = actual


class CommandError(PixiPackSrcError):
    """A subprocess that exited non-zero (see :mod:`pixi_pack_src.proc`)."""

    def __init__(
        self,
        message: str,
        *,
        argv: list[str],
        returncode: int,
        output_tail: str = "",
        log_file: Path | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.argv = argv
        self.returncode = returncode
        self.output_tail = output_tail
        self.log_file = log_file


class BuildError(PixiPackSrcError):
    """A source build that failed: ``pixi build`` or an sdist -> wheel build."""

    exit_code = EXIT_BUILD

    def __init__(
        self,
        message: str,
        *,
        log_file: Path | None = None,
        output_tail: str = "",
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.log_file = log_file
        self.output_tail = output_tail


class ArchiveError(PixiPackSrcError):
    """An archive that is unsafe or inconsistent (traversal, links, tampered content...)."""


class PackFormatError(ArchiveError):
    """``pixi-pack.json`` missing, of an unknown format version, or for another platform."""


class InstallError(PixiPackSrcError):
    """Installing the unpacked environment failed."""


def exit_code_for(exc: BaseException) -> int:
    """The process exit code for an exception reaching the CLI funnel."""
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, PixiPackSrcError):
        return exc.exit_code
    return EXIT_ERROR
