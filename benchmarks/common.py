"""Shared helpers of the benchmarks: measured subprocesses, statistics, the results table.

Every timed run is a subprocess started through GNU ``/usr/bin/time`` (when present): its
``%M`` is the peak RSS of the measured command and its descendants only. A child forked from
this Python process would inherit the harness's high-water mark (Linux copies it at fork and
keeps it across exec), so ``os.wait4`` on a direct child over-reports; without GNU time that
is the fallback, and the table says so.

Before each timed run :func:`settle` flushes dirty pages (``sync``), so one run's write-back
does not slow the next, and the inputs of both sides are read once into the page cache
(:func:`warm`).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GNU_TIME = "/usr/bin/time"
MIB = 1024 * 1024

# The product's and the tools' environment: no user configuration, no proxies, no colour.
_SCRUB_PREFIXES = ("PIXI_", "RATTLER_", "CONDA_", "PYTHON")
_SCRUB = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


class BenchmarkError(RuntimeError):
    """A measured command failed, or a precondition of a case does not hold."""


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """``os.environ`` without pixi/rattler/conda/Python settings or proxies, plus ``extra``."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(_SCRUB_PREFIXES) and k not in _SCRUB
    }
    env["NO_PROXY"] = "127.0.0.1,localhost"
    env["NO_COLOR"] = "1"
    env["PYTHONPATH"] = str(REPO)  # testworld and benchmarks, for the helper scripts
    env.update(extra or {})
    return env


def product(*args: str) -> list[str]:
    """The CLI under test as a subprocess argv."""
    return [sys.executable, "-m", "pixi_pack_src", *args]


def helper(module: str, *args: str) -> list[str]:
    """A helper script of this package (``benchmarks.<module>``) as a subprocess argv."""
    return [sys.executable, "-m", f"benchmarks.{module}", *args]


# -- measuring ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    seconds: float
    max_rss: int  # bytes; the peak of the process tree's largest process
    stdout: str = ""
    cpu: float = 0.0  # user + system seconds of the whole process tree


def has_gnu_time() -> bool:
    if not Path(GNU_TIME).is_file():
        return False
    probe = subprocess.run([GNU_TIME, "-f", "%M", "true"], capture_output=True, text=True)
    return probe.returncode == 0 and probe.stderr.strip().isdigit()


_GNU_TIME: bool | None = None


def rss_method() -> str:
    global _GNU_TIME
    if _GNU_TIME is None:
        _GNU_TIME = has_gnu_time()
    return "GNU time %M" if _GNU_TIME else "wait4 (includes the harness's own peak)"


def measure(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    capture: bool = False,
    label: str | None = None,
) -> Sample:
    """Run ``argv`` to completion; wall time and peak RSS. Raise on a non-zero exit."""
    rss_method()
    with tempfile.TemporaryDirectory(prefix="bench-time-") as tmp:
        rss_file = Path(tmp) / "rss"
        err_file = Path(tmp) / "stderr"
        full = [GNU_TIME, "-f", "%M", "-o", str(rss_file), *argv] if _GNU_TIME else list(argv)
        with err_file.open("wb") as err:
            out_target: int = subprocess.PIPE if capture else subprocess.DEVNULL
            start = time.perf_counter()
            proc = subprocess.Popen(
                full, env=dict(env) if env is not None else child_env(), cwd=cwd,
                stdout=out_target, stderr=err, stdin=subprocess.DEVNULL,
            )  # fmt: skip
            out_bytes = proc.stdout.read() if proc.stdout is not None else b""
            _, status, usage = os.wait4(proc.pid, 0)
            seconds = time.perf_counter() - start
            proc.returncode = os.waitstatus_to_exitcode(status)
            if proc.stdout is not None:
                proc.stdout.close()
        if proc.returncode != 0:
            tail = err_file.read_text(errors="replace")[-3000:]
            raise BenchmarkError(
                f"{label or argv[0]} exited with {proc.returncode}: {' '.join(argv)}\n{tail}"
            )
        if _GNU_TIME:
            lines = rss_file.read_text().strip().splitlines()
            max_rss = int(lines[-1]) * 1024
        else:
            max_rss = usage.ru_maxrss * 1024
    cpu = usage.ru_utime + usage.ru_stime
    return Sample(seconds, max_rss, out_bytes.decode(errors="replace"), cpu)


def _cpu_times() -> tuple[float, float]:
    """``(busy, total)`` jiffies of all CPUs from /proc/stat."""
    fields = [float(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    total = sum(fields[:8])
    return total - idle, total


def cpu_busy(interval: float = 0.3) -> float:
    """The fraction of all CPUs busy during the next ``interval`` seconds (0 where unknown)."""
    try:
        busy0, total0 = _cpu_times()
        time.sleep(interval)
        busy1, total1 = _cpu_times()
    except (OSError, ValueError, IndexError):
        return 0.0
    return (busy1 - busy0) / (total1 - total0) if total1 > total0 else 0.0


@dataclass
class Quiet:
    """Waits for other processes to leave the CPUs before a timed run (shared machines).

    At most ``per_run`` seconds before one run and ``budget`` seconds in all; ``busy_runs``
    counts the runs that started with more than ``threshold`` of the CPUs busy anyway.
    """

    enabled: bool = True
    threshold: float = 0.15
    per_run: float = 20.0
    budget: float = 120.0
    waited: float = 0.0
    busy_runs: int = 0
    runs: int = 0

    def wait(self) -> float:
        if not self.enabled:
            return 0.0
        start = time.perf_counter()
        busy = cpu_busy()
        while busy > self.threshold:
            spent = time.perf_counter() - start
            if spent >= self.per_run or self.waited + spent >= self.budget:
                break
            busy = cpu_busy()
        self.waited += time.perf_counter() - start
        self.runs += 1
        if busy > self.threshold:
            self.busy_runs += 1
        return busy

    def summary(self) -> str:
        if not self.enabled:
            return "no waiting for a quiet machine"
        return (
            f"{self.busy_runs} of {self.runs} timed runs started while other processes kept "
            f"more than {self.threshold:.0%} of the CPUs busy; {self.waited:.0f} s spent waiting "
            "for a quiet machine"
        )


def settle() -> None:
    """Flush dirty pages so a previous run's write-back does not land in this one."""
    os.sync()


def warm(paths: Iterable[Path]) -> int:
    """Read every file under ``paths`` once (page cache); returns the bytes read."""
    total = 0
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            with path.open("rb") as fh:
                while chunk := fh.read(4 * MIB):
                    total += len(chunk)
    return total


def remove(*paths: Path) -> None:
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


# -- statistics ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stats:
    median: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        if not values:
            raise ValueError("no values")
        return cls(statistics.median(values), min(values), max(values), len(values))

    def seconds(self) -> str:
        if self.n == 1:
            return f"{self.median:.2f} s"
        return f"{self.median:.2f} s [{self.low:.2f}-{self.high:.2f}]"

    def ratio(self) -> str:
        if self.n == 1:
            return f"{self.median:.2f}"
        return f"{self.median:.2f} [{self.low:.2f}-{self.high:.2f}]"


# -- results ------------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the results table."""

    case: str
    what: str
    measured: str
    baseline: str = ""
    ratio: str = ""
    target: str = ""
    peak_rss: str = ""
    status: str = ""  # "met", "MISSED", "info", "n/a ..."
    notes: list[str] = field(default_factory=list)
    data: dict[str, object] = field(default_factory=dict)


def mib(n: int) -> str:
    return f"{n / MIB:.0f} MiB"


def size_text(n: int) -> str:
    if n >= 1024 * MIB:
        return f"{n / (1024 * MIB):.2f} GiB"
    if n >= MIB:
        return f"{n / MIB:.1f} MiB"
    return f"{n / 1024:.0f} KiB"


def verdict(value: float, limit: float) -> str:
    return "met" if value <= limit else "MISSED"


def markdown_table(rows: Sequence[Row]) -> str:
    head = ["#", "case", "pixi-pack-src", "baseline", "ratio", "target", "peak RSS", "status"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r.case, r.what, r.measured, r.baseline, r.ratio, r.target, r.peak_rss, r.status]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def notes_text(rows: Sequence[Row]) -> str:
    out = []
    for r in rows:
        out += [f"- {r.case} {r.what}: {n}" for n in r.notes]
    return "\n".join(out)


def rows_json(rows: Sequence[Row]) -> str:
    return json.dumps(
        [
            {
                "case": r.case,
                "what": r.what,
                "measured": r.measured,
                "baseline": r.baseline,
                "ratio": r.ratio,
                "target": r.target,
                "peak_rss": r.peak_rss,
                "status": r.status,
                "notes": r.notes,
                "data": r.data,
            }
            for r in rows
        ],
        indent=2,
    )
