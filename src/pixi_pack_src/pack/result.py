"""What ``pack`` did (:class:`PackResult`, the ``--json`` document) and where it writes
(:func:`output_for`, :func:`output_refusals`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pixi_pack_src import __version__
from pixi_pack_src.archive.metadata import PIXI_PACK_JSON, JsonValue
from pixi_pack_src.delta.compare import DeltaInfo
from pixi_pack_src.errors import EXIT_USAGE, UsageError
from pixi_pack_src.lock.model import Platform
from pixi_pack_src.pack.options import PackOptions
from pixi_pack_src.plan import Refusal
from pixi_pack_src.selfextract import script_suffix

DEFAULT_OUTPUT = "environment.tar"
DEFAULT_DIRECTORY = "environment"
PLATFORM_PLACEHOLDER = "{platform}"
RESULT_VERSION = 1


@dataclass(frozen=True)
class PackedArtifact:
    """One package file in one archive (what ``--json`` lists)."""

    path: str
    kind: Literal["conda", "wheel"]
    name: str
    version: str
    sha256: str
    size: int
    origin: str  # download, cache, local-file, conda-source, sdist, ..., injected
    source: str  # (redacted) URL, workspace-relative path or location


@dataclass(frozen=True)
class PackedItem:
    """One plan item as ``pack`` carried it out: ``action`` is what happened to it
    (``download`` or ``copy`` by where the bytes came from, ``build-conda``/``build-wheel``
    once built, ``skip``); the other fields are the plan item's (see :mod:`pixi_pack_src.plan`)."""

    action: str
    kind: str
    name: str
    version: str | None
    source: str  # redacted

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "action": self.action,
            "kind": self.kind,
            "name": self.name,
            "version": self.version,
            "source": self.source,
        }


@dataclass(frozen=True)
class PlatformPack:
    platform: Platform
    output: str  # the written path, or "-"
    sha256: str | None  # of the archive (or script); None unless asked (archive_sha256)
    size: int
    artifacts: tuple[PackedArtifact, ...]
    items: tuple[PackedItem, ...] = ()
    delta: DeltaInfo | None = None  # pack --base: what the delta carries (delta/compare.py)


@dataclass(frozen=True)
class PackStats:
    files: int = 0
    bytes: int = 0
    downloaded: int = 0
    from_cache: int = 0
    copied: int = 0
    built: int = 0
    builds_from_cache: int = 0
    retries: int = 0


@dataclass(frozen=True)
class PackResult:
    environment: str
    lock_file: Path
    packs: tuple[PlatformPack, ...]
    stats: PackStats
    warnings: tuple[str, ...]

    def to_json(self) -> dict[str, JsonValue]:
        """The ``--json`` document (``version`` 1; see docs/archive-format.md)."""
        return {
            "version": RESULT_VERSION,
            "tool": {"name": "pixi-pack-src", "version": __version__},
            "environment": self.environment,
            "platforms": [
                {
                    "name": p.platform.name,
                    "subdir": p.platform.subdir,
                    "output": p.output,
                    "sha256": p.sha256,
                    "size": p.size,
                    "artifacts": [
                        {
                            "path": a.path,
                            "kind": a.kind,
                            "name": a.name,
                            "version": a.version,
                            "sha256": a.sha256,
                            "size": a.size,
                            "origin": a.origin,
                            "source": a.source,
                        }
                        for a in p.artifacts
                    ],
                    "items": [i.to_json() for i in p.items],
                    **({"delta": p.delta.summary()} if p.delta is not None else {}),
                }
                for p in self.packs
            ],
            "stats": {
                "files": self.stats.files,
                "bytes": self.stats.bytes,
                "downloaded": self.stats.downloaded,
                "from_cache": self.stats.from_cache,
                "copied": self.stats.copied,
                "built": self.stats.built,
                "builds_from_cache": self.stats.builds_from_cache,
                "retries": self.stats.retries,
            },
            "warnings": list(self.warnings),
        }


def output_for(options: PackOptions, platforms: Sequence[Platform], platform: Platform) -> str:
    """The output path for ``platform`` (``{platform}`` expands to the subdir).

    ``-o DIR`` naming an existing directory writes ``DIR/environment.tar`` in it (with several
    platforms ``DIR/environment-{platform}.tar``; ``.sh`` for ``--create-executable``): a
    directory is never replaced by an archive. ``-o DIR/`` (a trailing slash) must exist."""
    several = len(platforms) > 1
    default = DEFAULT_DIRECTORY if options.directory_only else DEFAULT_OUTPUT
    if options.create_executable:
        if options.directory_only:
            raise UsageError("--create-executable and --directory-only exclude each other")
        if options.output == "-":
            raise UsageError("--create-executable cannot write to stdout (-o -)")
        default = "environment.sh"
    template = options.output
    if template is not None and template != "-" and not options.directory_only:
        if Path(template).is_dir() and not template.endswith(("/", os.sep)):
            template += os.sep  # "out" -> "out/": the default name in it
        if template.endswith(("/", os.sep)):
            if not Path(template).is_dir():
                raise UsageError(
                    f"-o {template}: the directory {template.rstrip('/' + os.sep)} does not exist",
                    hint="create it first, or name the output file",
                )
            name = default
            if several:
                stem, dot, ext = default.partition(".")
                name = f"{stem}-{PLATFORM_PLACEHOLDER}{dot}{ext}"
            template = template + name
    if template is None:
        if several:
            stem, dot, ext = default.partition(".")
            template = f"{stem}-{PLATFORM_PLACEHOLDER}{dot}{ext}"
        else:
            template = default
    if template == "-":
        if several:
            raise UsageError(
                "-o - (stdout) holds one archive, but several platforms were selected",
                hint="pack one platform per call, or use -o 'environment-{platform}.tar'",
            )
        if options.directory_only:
            raise UsageError("--directory-only cannot write to stdout (-o -)")
        return "-"
    if several and PLATFORM_PLACEHOLDER not in template:
        raise UsageError(
            f"-o {template} would be written once per platform "
            f"({', '.join(p.name for p in platforms)})",
            hint="put {platform} in the output name, e.g. -o 'environment-{platform}.tar'",
        )
    name = platform.name if any(p.name != p.subdir for p in platforms) else platform.subdir
    output = template.replace(PLATFORM_PLACEHOLDER, name)
    if options.create_executable:  # the extension is forced, as pixi-pack does
        path = Path(output)
        if path.suffix in (".tar", ".sh", ".ps1", ".cmd", ".bat"):
            path = path.with_suffix("")
        output = str(path) + script_suffix(platform.subdir)
    return output


def output_refusals(output: str) -> list[Refusal]:
    """Why ``output`` cannot be written, known before anything is fetched: a non-empty
    directory that is not a pack (the rule of :func:`pixi_pack_src.archive.atomic.atomic_file`),
    a parent directory that does not exist (never made silently: a typo would scatter
    archives; a usage error), is a file or is not writable."""
    if output == "-":
        return []
    path = Path(output).absolute()
    if path.is_dir() and any(path.iterdir()) and not (path / PIXI_PACK_JSON).is_file():
        return [
            Refusal(
                f"{path} is a non-empty directory that is not a pack; refusing to replace it",
                hint="choose another output path or remove the directory",
            )
        ]
    parent = path.parent
    if not parent.exists():
        return [
            Refusal(
                f"cannot write {path}: the directory {parent} does not exist",
                hint=f"create it first (mkdir -p {parent}), or choose another -o/--output-file",
                exit_code=EXIT_USAGE,
            )
        ]
    why = None
    if not parent.is_dir():
        why = f"{parent} is not a directory"
    elif not os.access(parent, os.W_OK | os.X_OK):
        why = f"{parent} is not writable"
    if why is None:
        return []
    return [
        Refusal(
            f"cannot write {path}: {why}",
            hint="choose another -o/--output-file",
            exit_code=EXIT_USAGE,
        )
    ]
