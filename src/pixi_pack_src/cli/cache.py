"""`pixi-pack-src cache verify`: re-hash every entry of the download cache.

Only parses options, calls :func:`pixi_pack_src.fetch.cache.verify_cache` and prints: a
summary on stdout, or with ``--json`` one document there.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from pixi_pack_src.cli import STATE, app, result_printer
from pixi_pack_src.cli.common import cache_dir_option
from pixi_pack_src.errors import UsageError
from pixi_pack_src.fetch.cache import verify_cache

cache_app = typer.Typer(
    name="cache",
    help="Look after the download cache (--use-cache).",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(cache_app)


@cache_app.command("verify")
def verify_command(
    cache_dir: Annotated[Path, cache_dir_option("The cache to check.")],
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON document on stdout when done.")
    ] = False,
) -> None:
    """Re-hash every cache entry: remove the corrupt ones, record the good ones afresh.

    A pack trusts an entry whose size, times, inode and device still match what was recorded
    when it was hashed; this command checks the bytes themselves (as `pack --verify-cache`).
    """
    if not cache_dir.is_dir():
        raise UsageError(
            f"{cache_dir} is not a directory",
            hint="pass the directory given to `pack --use-cache`",
        )
    check = verify_cache(cache_dir)
    if json_output:
        sys.stdout.write(json.dumps(check.to_json(), indent=2, sort_keys=True) + "\n")
        return
    if STATE.verbosity < 0:  # -q
        return
    say = result_printer()  # the result: stdout
    say(
        f"✅ re-hashed {check.checked} cache entries ({check.size / (1024 * 1024):.1f} MiB) "
        f"in {check.root}"
    )
    for sha256 in check.removed:
        say(f"❌ removed {sha256}: its bytes no longer match its sha256")
