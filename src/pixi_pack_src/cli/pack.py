"""``pixi-pack-src pack``: options -> :func:`pixi_pack_src.pack.pack` -> summary / ``--json``.

The summary (or ``--json``) is the result: stdout; with ``-o -`` the archive is, and the
summary goes to stderr. Progress and per-file lines are on stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from pixi_pack_src.cli import STATE, app, result_printer
from pixi_pack_src.cli.common import (
    AllowUnpinnedBackendsOption,
    AllPlatformsOption,
    BackendOverrideOption,
    BaseOption,
    BuildIsolationOption,
    BuildSdistOption,
    CacheOption,
    EnvironmentOption,
    FrozenOption,
    IgnorePypiNonWheelOption,
    InjectOption,
    ManifestOption,
    ManifestPath,
    OverridesOption,
    PixiOption,
    PlatformOption,
    parse_overrides,
    resolve_manifest,
    write_report,
)
from pixi_pack_src.errors import UsageError
from pixi_pack_src.pack import PackOptions, PackResult, pack
from pixi_pack_src.units import human_bytes


@app.command("pack", no_args_is_help=False)
def pack_command(
    manifest_path: ManifestPath = None,
    manifest_option: ManifestOption = None,
    environment: EnvironmentOption = "default",
    platform: PlatformOption = None,
    all_platforms: AllPlatformsOption = False,
    output_file: Annotated[
        str | None,
        typer.Option(
            "-o",
            "--output-file",
            metavar="FILE",
            help="Output path ('-' = stdout); may contain {platform}. Default: environment.tar "
            "(environment-{platform}.tar for several platforms); an existing directory gets "
            "that name inside it. Its parent directory must exist.",
        ),
    ] = None,
    directory_only: Annotated[
        bool, typer.Option("--directory-only", help="Write a folder instead of a tar.")
    ] = False,
    use_cache: CacheOption = None,
    verify_cache: Annotated[
        bool,
        typer.Option(
            "--verify-cache",
            help="Re-hash every cache hit (by default an entry whose size, times and inode "
            "are still those recorded when it was hashed is trusted).",
        ),
    ] = False,
    auth_file: Annotated[
        Path | None,
        typer.Option(
            "--auth-file",
            metavar="FILE",
            envvar="RATTLER_AUTH_FILE",
            show_envvar=True,
            help="rattler credentials JSON.",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "-c",
            "--config",
            metavar="FILE",
            help="pixi/rattler config TOML ([mirrors], [concurrency]).",
        ),
    ] = None,
    concurrent_downloads: Annotated[
        int | None,
        typer.Option(
            "--concurrent-downloads",
            min=1,
            envvar="PIXI_PACK_SRC_CONCURRENT_DOWNLOADS",
            show_envvar=True,
            help="Downloads at once [default: config, else 50].",
        ),
    ] = None,
    retries: Annotated[
        int,
        typer.Option(
            "--retries",
            min=0,
            envvar="PIXI_PACK_SRC_RETRIES",
            show_envvar=True,
            help="Retries per download after the first attempt.",
        ),
    ] = 5,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            min=0.1,
            metavar="SECONDS",
            envvar="PIXI_PACK_SRC_TIMEOUT",
            show_envvar=True,
            help="Read timeout: an attempt at a file that receives nothing for SECONDS fails "
            "and is retried (--retries). Not a total: a file that keeps arriving is never cut; "
            "PIXI_PACK_SRC_DOWNLOAD_DEADLINE bounds one attempt in all (default 1 hour).",
        ),
    ] = 60.0,
    connect_timeout: Annotated[
        float,
        typer.Option(
            "--connect-timeout",
            min=0.1,
            metavar="SECONDS",
            envvar="PIXI_PACK_SRC_CONNECT_TIMEOUT",
            show_envvar=True,
            help="Seconds to establish a connection before the attempt fails and is retried. "
            "A host that does not resolve or refuses connections is retried once.",
        ),
    ] = 30.0,
    inject: InjectOption = None,
    ignore_pypi_non_wheel: IgnorePypiNonWheelOption = False,
    build_sdist: BuildSdistOption = True,
    pixi: PixiOption = None,
    allow_unpinned_backends: AllowUnpinnedBackendsOption = False,
    frozen: FrozenOption = False,
    backend_override: BackendOverrideOption = None,
    allow_drift: Annotated[
        bool,
        typer.Option(
            "--allow-drift",
            help="Accept a built package whose version/build differ from a full lock record.",
        ),
    ] = False,
    build_jobs: Annotated[
        int,
        typer.Option(
            "--build-jobs",
            min=1,
            envvar="PIXI_PACK_SRC_BUILD_JOBS",
            show_envvar=True,
            help="Source builds at once (builds in one workspace always run one at a time).",
        ),
    ] = 1,
    build_timeout: Annotated[
        float | None,
        typer.Option("--build-timeout", min=1, help="Seconds allowed per build [default: none]."),
    ] = None,
    keep_build_dir: Annotated[
        bool, typer.Option("--keep-build-dir", help="Keep build directories and logs.")
    ] = False,
    build_isolation: BuildIsolationOption = True,
    pypi_index: Annotated[
        str | None,
        typer.Option(
            "--pypi-index",
            metavar="URL",
            envvar="PIXI_PACK_SRC_PYPI_INDEX",
            show_envvar=True,
            help="Simple index for build requirements [default: the lock's index].",
        ),
    ] = None,
    overrides: OverridesOption = None,
    create_executable: Annotated[
        bool,
        typer.Option(
            "--create-executable",
            help="Write a self-extracting script (environment.sh; environment.cmd for Windows "
            "targets) that installs offline without pixi-pack-src.",
        ),
    ] = False,
    unpacker_wheels: Annotated[
        Path | None,
        typer.Option(
            "--unpacker-wheels",
            metavar="DIR",
            help="py-rattler wheels for the target platform (for --create-executable when the "
            "target is not this machine).",
        ),
    ] = None,
    sbom: Annotated[
        str | None,
        typer.Option(
            "--sbom",
            metavar="FILE",
            help="Also write the archive's SBOM (sbom.cdx.json, CycloneDX 1.6) to FILE; "
            "{platform} expands as in -o.",
            show_default=False,
        ),
    ] = None,
    base: BaseOption = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the result as JSON on stdout.")
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            metavar="FILE",
            help="Also write the result to FILE (.json, or .md summary).",
        ),
    ] = None,
) -> None:
    """Pack a pixi.lock environment into an archive for offline use."""
    options = PackOptions(
        manifest_path=resolve_manifest(manifest_path, manifest_option),
        environment=environment,
        platforms=tuple(platform or ()),
        all_platforms=all_platforms,
        output=output_file,
        directory_only=directory_only,
        cache_dir=use_cache,
        verify_cache=verify_cache,
        auth_file=auth_file,
        config_file=config,
        concurrent_downloads=concurrent_downloads,
        retries=retries,
        timeout=timeout,
        connect_timeout=connect_timeout,
        inject=tuple(inject or ()),
        ignore_pypi_non_wheel=ignore_pypi_non_wheel,
        build_pypi=build_sdist,
        pixi=pixi,
        allow_unpinned_backends=allow_unpinned_backends,
        frozen=frozen,
        backend_overrides=parse_overrides(backend_override or ()),
        allow_drift=allow_drift,
        build_jobs=build_jobs,
        build_timeout=build_timeout,
        keep_build_dir=keep_build_dir,
        verbosity=STATE.verbosity,
        build_isolation=build_isolation,
        pypi_index=pypi_index,
        overrides_dir=overrides,
        create_executable=create_executable,
        unpacker_wheels=unpacker_wheels,
        archive_sha256=json_output or report is not None,
        sbom_output=sbom,
        base=base,
    )
    if report is not None and not report.absolute().parent.is_dir():  # before the work
        raise UsageError(
            f"--report {report}: the directory {report.absolute().parent} does not exist",
            hint="create it first, or choose another --report FILE",
        )
    reporter = STATE.reporter(json_output=json_output or output_file == "-")
    result = pack(options, reporter=reporter, stdout=sys.stdout.buffer)
    document = result.to_json()
    if report is not None:
        write_report(report, document, markdown=_markdown(result))
    if json_output:
        if output_file == "-":
            reporter.console.print(json.dumps(document, indent=2, sort_keys=True))
        else:
            sys.stdout.write(json.dumps(document, indent=2, sort_keys=True) + "\n")
        return
    if STATE.verbosity >= 0:  # the result, on stdout (-q: none); with -o - stdout is the
        _summary(result, result_printer(stderr=output_file == "-"))  # archive: stderr


def _summary(result: PackResult, status: Callable[[str], None]) -> None:
    s = result.stats
    status(
        f"{s.files} files, {human_bytes(s.bytes)}: {s.downloaded} downloaded, "
        f"{s.from_cache} from cache, {s.copied} local, {s.built} built"
        + (f" ({s.builds_from_cache} builds from cache)" if s.builds_from_cache else "")
        + (f"; retried {s.retries} time{'s' if s.retries != 1 else ''}" if s.retries else "")
    )
    for p in result.packs:
        where = "stdout" if p.output == "-" else p.output
        status(f"✅ packed {result.environment} for {p.platform.name} into {where}")


def _markdown(result: PackResult) -> str:
    s = result.stats
    lines = [
        f"## pixi-pack-src: `{result.environment}`",
        "",
        "| platform | output | size | sha256 |",
        "|---|---|---|---|",
    ]
    for p in result.packs:
        lines.append(
            f"| {p.platform.name} | `{p.output}` | {human_bytes(p.size)} | `{(p.sha256 or '-')[:16]}…` |"
        )
    lines += [
        "",
        f"{s.files} artifacts, {human_bytes(s.bytes)}: {s.downloaded} downloaded, "
        f"{s.from_cache} from cache, {s.copied} local files, {s.built} built, "
        f"{s.retries} retries.",
    ]
    for p in result.packs:
        lines += [
            "",
            f"<details><summary>{p.platform.name}: {len(p.artifacts)} packages</summary>",
            "",
            "| package | version | kind | origin | size |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {a.name} | {a.version} | {a.kind} | {a.origin} | {human_bytes(a.size)} |"
            for a in p.artifacts
        ]
        lines += ["", "</details>"]
    if result.warnings:
        lines += ["", "### Warnings", ""] + [f"- {w}" for w in result.warnings]
    return "\n".join(lines) + "\n"
