"""Run the benchmarks of issue 8 and print a table of ratios and peak memory.

    .venv/bin/python benchmarks/run.py                 # every case, full size (~10 min)
    .venv/bin/python benchmarks/run.py --cases 1,2     # some cases
    .venv/bin/python benchmarks/run.py --quick         # tiny data, one run (the smoke test)
    .venv/bin/python benchmarks/run.py --doc docs/benchmarks.md   # also update the doc's table

See benchmarks/README.md for what each case measures and against what.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
import traceback
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` and `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import data
from benchmarks.cases import CASES, make_context
from benchmarks.common import (
    REPO,
    Row,
    markdown_table,
    notes_text,
    rows_json,
    rss_method,
)

DOC_START = "<!-- benchmarks:results:start -->"
DOC_END = "<!-- benchmarks:results:end -->"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f", {int(line.split()[1]) / 1024 / 1024:.0f} GiB RAM"
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores{mem}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def report(
    rows: list[Row], *, scale: data.Scale, elapsed: float, runs: int, work: Path, quiet: str
) -> str:
    today = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    lines = [
        f"Run {today} on {machine()}; scratch files on {filesystem(work)}; "
        f"scale `{scale.name}`, {runs} runs per side "
        f"(median [min-max]; ratios are per interleaved run pair); peak RSS by {rss_method()}; "
        f"whole run {elapsed / 60:.1f} min; {quiet}.",
        "",
        markdown_table(rows),
        "",
        notes_text(rows),
    ]
    return "\n".join(lines).rstrip() + "\n"


def default_work_dir() -> Path:
    """A tmpfs when there is one with room: disk write-back and discards stay out of the
    numbers (both sides are measured on the same filesystem either way)."""
    shm = Path("/dev/shm")
    try:
        st = os.statvfs(shm)
        if os.access(shm, os.W_OK) and st.f_bavail * st.f_frsize >= 8 * 1024**3:
            return shm / "pixi-pack-src-bench"
    except OSError:
        pass
    return REPO / ".cache" / "bench" / "work"


def filesystem(path: Path) -> str:
    """The filesystem type of ``path`` (from /proc/mounts), for the report."""
    best, kind = "", "unknown"
    path = path.resolve()
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            if len(parts) > 2 and str(path).startswith(parts[1]) and len(parts[1]) > len(best):
                best, kind = parts[1], parts[2]
    except OSError:
        pass
    return kind


def update_doc(path: Path, text: str) -> None:
    old = path.read_text() if path.exists() else f"# Benchmarks\n\n{DOC_START}\n{DOC_END}\n"
    if DOC_START not in old or DOC_END not in old:
        old = old.rstrip() + f"\n\n{DOC_START}\n{DOC_END}\n"
    head, _, rest = old.partition(DOC_START)
    _, _, tail = rest.partition(DOC_END)
    path.write_text(f"{head}{DOC_START}\n{text}{DOC_END}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/run.py", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny data, one run per side")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated case numbers")
    parser.add_argument("--runs", type=int, default=None, help="runs per side (default 5)")
    parser.add_argument("--latency", type=float, default=0.0, help="server latency (seconds)")
    parser.add_argument(
        "--work",
        type=Path,
        default=default_work_dir(),
        help="scratch directory (default: a tmpfs under /dev/shm when it has room, else "
        ".cache/bench/work)",
    )
    parser.add_argument(
        "--offline", action="store_true", help="never install conda-pack from PyPI (case 4)"
    )
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    parser.add_argument("--doc", type=Path, help="replace the results block of this Markdown file")
    parser.add_argument("--keep-going", action="store_true", help="report a failed case, go on")
    args = parser.parse_args(argv)

    scale = data.QUICK if args.quick else data.FULL
    if args.runs is not None:
        scale = data.Scale(**{**scale.__dict__, "runs": args.runs})
    wanted = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in wanted if c not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    ctx = make_context(scale, args.work, log, latency=args.latency, offline=args.offline)
    start = time.perf_counter()
    rows: list[Row] = []
    failed = False
    for case in wanted:
        fn = CASES[case]
        log(f"case {case}: {(fn.__doc__ or fn.__name__).strip().splitlines()[0]}")
        t = time.perf_counter()
        try:
            rows += fn(ctx)
        except Exception as exc:
            if not args.keep_going:
                raise
            failed = True
            log(traceback.format_exc())
            rows.append(Row(case=case, what="(failed)", measured="", status=f"ERROR: {exc}"[:200]))
        log(f"  case {case} took {time.perf_counter() - t:.1f} s")
    text = report(
        rows,
        scale=scale,
        elapsed=time.perf_counter() - start,
        runs=scale.runs,
        work=args.work,
        quiet=ctx.quiet.summary(),
    )
    print(text)
    if args.json:
        args.json.write_text(rows_json(rows))
    if args.doc:
        update_doc(args.doc, text)
    return 1 if failed else 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # py-rattler (world building) can crash at interpreter exit
