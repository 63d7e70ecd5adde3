"""`pixi-pack-src verify`: check a pack offline, without installing it.

Only parses options, calls :func:`pixi_pack_src.verify.verify` and prints: the result on
stdout (one line per finding, or ``--json``'s document), a summary for humans on stderr.
Exit 0 when clean, 1 with findings.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from pixi_pack_src.cli import STATE, app
from pixi_pack_src.errors import EXIT_ERROR
from pixi_pack_src.redact import redact_text
from pixi_pack_src.verify import VerifyOptions, VerifyReport, verify

PackArgument = Annotated[
    str,
    typer.Argument(
        metavar="ARCHIVE",
        help="The archive (a tar), a self-extracting script, a directory pack, or - for "
        "standard input.",
    ),
]


@app.command("verify")
def verify_command(
    archive: PackArgument = "environment.tar",
    lock: Annotated[
        Path | None,
        typer.Option(
            "--lock",
            metavar="PIXI_LOCK",
            help="Also check that the pack holds exactly what this lock (or the workspace "
            "directory holding it) names for one environment and platform.",
            show_default=False,
        ),
    ] = None,
    environment: Annotated[
        str | None,
        typer.Option(
            "-e",
            "--environment",
            metavar="ENV",
            help="With --lock: the lock environment [default: the pack's, else default].",
            show_default=False,
        ),
    ] = None,
    platform: Annotated[
        str | None,
        typer.Option(
            "-p",
            "--platform",
            metavar="PLATFORM",
            help="With --lock: the lock platform name or subdir [default: the pack's].",
            show_default=False,
        ),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON document on stdout.")
    ] = False,
) -> None:
    """Check a pack offline, without installing it: safe to extract, every file's sha256,
    repodata.json and environment.yml against the files, dependencies inside the pack, and
    (--lock) exactly the lock's packages. Exit 0 clean, 1 with findings."""
    options = VerifyOptions(
        pack="-" if archive == "-" else Path(archive),
        lock=lock,
        environment=environment,
        platform=platform,
    )
    reporter = STATE.reporter(json_output=json_output)
    reporter.status(f"⏳ verifying {options.pack if archive != '-' else 'standard input'}")
    report = verify(options, stdin=sys.stdin.buffer if archive == "-" else None)
    if json_output:
        sys.stdout.write(redact_text(json.dumps(report.to_json(), indent=2, sort_keys=True)) + "\n")
    else:
        for finding in report.findings:
            where = f" {finding.path}" if finding.path else ""
            sys.stdout.write(redact_text(f"{finding.code}{where}: {finding.message}") + "\n")
    _summary(reporter.status, report)
    if not report.ok:
        raise typer.Exit(EXIT_ERROR)


def _summary(say: Callable[[str], None], report: VerifyReport) -> None:
    for warning in report.warnings:
        say(f"warning: {warning}")
    lock = (
        f"; matches {report.lock.file} ({report.lock.environment}, {report.lock.platform})"
        if report.lock is not None and report.ok
        else ""
    )
    if report.ok:
        say(
            f"✅ {report.label}: {report.files} files, {report.conda_packages} conda "
            f"package(s), {report.wheels} wheel(s); {report.verified} verified against "
            f"{report.verified_against}{lock}"
        )
    else:
        say(f"❌ {report.label}: {len(report.findings)} finding(s)")
