"""The benchmark cases (1-7 of issue 8, 8 of issue 13). Each returns table rows (see :mod:`benchmarks.run`).

Every measured command is a subprocess (the CLI as ``python -m pixi_pack_src``), run through
:func:`benchmarks.common.measure`; a case and its baseline alternate run by run, on inputs
read into the page cache beforehand, with outputs removed and dirty pages flushed before each
run.
"""

from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from testworld.buildreqs import needing_project, sdist_of, write_buildreq_index
from testworld.catalog import default_world
from testworld.layout import World
from testworld.locks import Env, PypiEntry, SourceEntry
from testworld.pixi_standin import StandIn, install
from testworld.pixi_standin.workspaces import write_package
from testworld.workspace import Workspace, write_workspace

from benchmarks import data
from benchmarks.common import (
    REPO,
    BenchmarkError,
    Quiet,
    Row,
    Sample,
    Stats,
    child_env,
    helper,
    measure,
    mib,
    product,
    remove,
    settle,
    size_text,
    verdict,
    warm,
)
from benchmarks.serve import ServedWorld
from pixi_pack_src.hashing import file_sha256

CONCURRENCY = 50  # pixi's default, and the product's
RATIO_TARGET = 1.25
RSS_LIMIT = 200 * 1024 * 1024
INSPECT_LIMIT = 2.0
CONDA_PACK_VENV = REPO / ".cache" / "bench" / "conda-pack-venv"


@dataclass
class Context:
    scale: data.Scale
    work: Path
    log: Callable[[str], None]
    latency: float = 0.0
    offline: bool = False  # never install conda-pack from PyPI
    env: dict[str, str] = field(default_factory=dict)
    quiet: Quiet = field(default_factory=Quiet)

    @property
    def runs(self) -> int:
        return self.scale.runs

    def dir(self, name: str) -> Path:
        path = self.work / name
        remove(path)
        path.mkdir(parents=True)
        return path

    def ready(self) -> None:
        """Before a timed run: dirty pages flushed, other processes off the CPUs (if they go)."""
        settle()
        self.quiet.wait()

    def run(self, argv: list[str], *, label: str, capture: bool = False) -> Sample:
        return measure(argv, env=self.env, capture=capture, label=label)


def make_context(
    scale: data.Scale,
    work: Path,
    log: Callable[[str], None],
    *,
    latency: float = 0.0,
    offline: bool = False,
) -> Context:
    work.mkdir(parents=True, exist_ok=True)
    tmp = work / "tmp"
    tmp.mkdir(exist_ok=True)
    # TMPDIR on the work directory's filesystem: the product's temporary downloads and the
    # baselines' files land on the same disk.
    env = child_env({"TMPDIR": str(tmp), "XDG_CACHE_HOME": str(work / "xdg-cache")})
    return Context(scale, work, log, latency, offline, env, Quiet(enabled=scale.name == "full"))


def interleave(
    ctx: Context,
    runs: int,
    sides: Mapping[str, Callable[[], Sample]],
    *,
    prepare: Callable[[], None],
) -> dict[str, list[Sample]]:
    """``runs`` runs of every side, rotating which goes first; ``prepare`` before each run."""
    names = list(sides)
    out: dict[str, list[Sample]] = {n: [] for n in names}
    for i in range(runs):
        order = names[i % len(names) :] + names[: i % len(names)]
        for name in order:
            prepare()
            ctx.ready()
            sample = sides[name]()
            out[name].append(sample)
            ctx.log(f"    run {i + 1}/{runs} {name}: {sample.seconds:.2f} s, {mib(sample.max_rss)}")
    return out


def seconds(samples: list[Sample]) -> Stats:
    return Stats.of([s.seconds for s in samples])


def ratios(a: list[Sample], b: list[Sample]) -> Stats:
    return Stats.of([x.seconds / y.seconds for x, y in zip(a, b, strict=True)])


def peak(samples: list[Sample]) -> int:
    return max(s.max_rss for s in samples)


def ratio_row(
    case: str,
    what: str,
    subject: list[Sample],
    baseline: list[Sample],
    baseline_name: str,
    *,
    target: float | None = RATIO_TARGET,
) -> Row:
    r = ratios(subject, baseline)
    return Row(
        case=case,
        what=what,
        measured=seconds(subject).seconds(),
        baseline=f"{baseline_name}: {seconds(baseline).seconds()}",
        ratio=r.ratio(),
        target=f"<= {target:.2f}" if target is not None else "",
        peak_rss=f"{mib(peak(subject))} (baseline {mib(peak(baseline))})",
        status=verdict(r.median, target) if target is not None else "info",
        data={
            "subject_s": [s.seconds for s in subject],
            "baseline_s": [s.seconds for s in baseline],
            "subject_rss": [s.max_rss for s in subject],
            "baseline_rss": [s.max_rss for s in baseline],
        },
    )


def pack_json(sample: Sample) -> dict[str, object]:
    doc = json.loads(sample.stdout)
    if not isinstance(doc, dict):
        raise BenchmarkError("pack --json did not print an object")
    return doc


def pack_stats(sample: Sample) -> dict[str, int]:
    stats = pack_json(sample)["stats"]
    assert isinstance(stats, dict)
    return {str(k): int(v) for k, v in stats.items()}


def tar_names(path: Path) -> list[str]:
    with tarfile.open(path) as tf:
        return sorted(m.name for m in tf.getmembers() if m.isfile())


# -- case 1: cold pack vs httpx/curl download + tar ---------------------------------------------


def case_cold_pack(ctx: Context) -> list[Row]:
    """Cold pack from a 127.0.0.1 server vs plain httpx (and curl) downloads + tar."""
    world = data.bulk(ctx.scale)
    total = sum(p.size for p in world.packages)
    ctx.log(f"  world: {len(world.packages)} packages, {size_text(total)}")
    with ServedWorld(world.root, latency=ctx.latency) as url:
        ws = data.workspace(ctx.dir("c1-ws"), world, url)
        files = data.locked_files(ws)
        urls = ctx.work / "c1-urls.txt"
        urls.write_text("".join(f"{u} {rel}\n" for u, rel in files))
        curl_cfg = ctx.work / "c1-curl.cfg"
        out, cache = ctx.work / "c1-pack.tar", ctx.work / "c1-cache"
        dl, base = ctx.work / "c1-dl", ctx.work / "c1-base.tar"

        def prepare() -> None:
            remove(out, cache, dl, base)
            warm([world.channel_dir])

        def pack() -> Sample:
            return ctx.run(product("pack", str(ws.root), "-o", str(out)), label="pack")

        def pack_cache() -> Sample:
            argv = product("pack", str(ws.root), "-o", str(out), "--use-cache", str(cache))
            return ctx.run(argv, label="pack --use-cache")

        def httpx_tar() -> Sample:
            argv = helper("baseline_fetch", str(urls), str(dl), str(base))
            return ctx.run([*argv, "--concurrency", str(CONCURRENCY)], label="httpx baseline")

        def curl_tar() -> Sample:
            dl.mkdir(parents=True)
            curl_cfg.write_text(
                "".join(f'url = "{u}"\noutput = "{dl / rel}"\n' for u, rel in files)
            )
            script = (
                f"curl -sS --fail --parallel --parallel-max {CONCURRENCY} --create-dirs "
                f"--config '{curl_cfg}' && tar cf '{base}' -C '{dl}' ."
            )
            return ctx.run(["sh", "-c", script], label="curl baseline")

        sides = {"pack": pack, "httpx+tar": httpx_tar, "curl+tar": curl_tar}
        if ctx.scale.name == "full":
            sides["pack --use-cache"] = pack_cache
        got = interleave(ctx, ctx.runs, sides, prepare=prepare)
        # sanity: the archive holds every locked package
        pack()
        names = [n for n in tar_names(out) if n.endswith((".conda", ".tar.bz2"))]
        if len(names) != len(files):
            raise BenchmarkError(f"the pack holds {len(names)} packages, not {len(files)}")
        remove(out, cache, dl, base)
    rows = [
        ratio_row("1", "cold pack vs httpx+tar", got["pack"], got["httpx+tar"], "httpx+tar"),
        ratio_row(
            "1", "cold pack vs curl+tar", got["pack"], got["curl+tar"], "curl+tar", target=None
        ),
    ]
    if "pack --use-cache" in got:
        rows.append(
            ratio_row(
                "1",
                "cold pack filling --use-cache vs httpx+tar",
                got["pack --use-cache"],
                got["httpx+tar"],
                "httpx+tar",
                target=None,
            )
        )
    rows[0].notes.append(
        f"{len(files)} packages, {size_text(total)}, served by testworld.server on 127.0.0.1 "
        f"(latency {ctx.latency:g} s), {CONCURRENCY} concurrent downloads on both sides"
    )
    return rows


# -- case 2: warm-cache pack vs tar cf ----------------------------------------------------------


def bulk_packed(ctx: Context, world: World) -> tuple[Workspace, Path, Path]:
    """A bulk workspace, a filled cache and a pack (server stopped afterwards)."""
    cache, pack = ctx.work / "c2-cache", ctx.work / "c2-pack.tar"
    remove(cache, pack)
    with ServedWorld(world.root) as url:
        ws = data.workspace(ctx.dir("c2-ws"), world, url)
        ctx.run(
            product("pack", str(ws.root), "-o", str(pack), "--use-cache", str(cache)),
            label="pack (filling the cache)",
        )
    return ws, cache, pack


def case_warm_pack(ctx: Context) -> list[Row]:
    """Warm-cache pack (every hit re-hashed) vs tar cf of the same files."""
    world = data.bulk(ctx.scale)
    ws, cache, _ = bulk_packed(ctx, world)
    files = [rel for _, rel in data.locked_files(ws)]
    listing = ctx.work / "c2-files.txt"
    listing.write_text("".join(f"{rel}\n" for rel in files))
    out, base = ctx.work / "c2-out.tar", ctx.work / "c2-base.tar"

    def prepare() -> None:
        remove(out, base)
        warm([cache, world.channel_dir])

    def pack() -> Sample:
        # the server is gone: a cache miss would fail the run
        argv = product("pack", str(ws.root), "-o", str(out), "--use-cache", str(cache), "--json")
        sample = ctx.run(argv, label="warm pack", capture=True)
        stats = pack_stats(sample)
        if stats["downloaded"] or stats["from_cache"] != len(files):
            raise BenchmarkError(f"the warm pack was not all cache hits: {stats}")
        return sample

    def tar() -> Sample:
        argv = ["tar", "cf", str(base), "-C", str(world.channel_dir), "-T", str(listing)]
        return ctx.run(argv, label="tar cf")

    got = interleave(ctx, ctx.runs, {"pack": pack, "tar": tar}, prepare=prepare)
    remove(out, base, cache, ctx.work / "c2-pack.tar")
    row = ratio_row("2", "warm-cache pack vs tar cf", got["pack"], got["tar"], "tar cf")
    row.notes.append(
        "cache hits trusted by their recorded size/times/inode (hashed when stored), copied "
        "in the kernel; the archive's own sha256 for --json on a helper thread"
    )
    return [row]


# -- case 3: unpack vs rattler.install ----------------------------------------------------------


def case_unpack(ctx: Context) -> list[Row]:
    """Unpack (hash checks included) vs a raw rattler.install of the same records."""
    world = data.bulk(ctx.scale)
    ws, cache, pack = bulk_packed(ctx, world)
    remove(cache)
    target, prefix, pkgs = ctx.work / "c3-unpack", ctx.work / "c3-prefix", ctx.work / "c3-pkgs"

    def prepare() -> None:
        remove(target, prefix, pkgs)
        warm([pack, world.channel_dir])

    def unpack() -> Sample:
        argv = product("unpack", str(pack), "-o", str(target), "--json")
        return ctx.run(argv, label="unpack", capture=True)

    def install() -> Sample:
        argv = helper(
            "baseline_install", str(ws.lock_path), str(world.channel_dir), str(prefix), str(pkgs)
        )
        return ctx.run(argv, label="rattler.install")

    got = interleave(ctx, ctx.runs, {"unpack": unpack, "install": install}, prepare=prepare)
    doc = json.loads(got["unpack"][-1].stdout)
    remove(target, prefix, pkgs, pack)
    row = ratio_row("3", "unpack vs rattler.install", got["unpack"], got["install"], "install")
    row.notes.append(
        "peak RSS: unpack extracts up to 4 packages at once on worker threads, the baseline "
        "(py-rattler) several at once too; case 5 shows unpack with one 1 GiB package"
    )
    row.notes.append(
        f"unpack reads the {size_text(world_size(world))} archive once, extracting each of "
        f"its {doc['verified']} conda packages straight from the tar into the package cache "
        "and hashing it on the way, then links with py-rattler and writes activate.sh; "
        "the baseline installs the same records straight from the world channel (file://)"
    )
    return [row]


def world_size(world: World) -> int:
    return sum(p.size for p in world.packages)


# -- case 4: ship an environment vs conda-pack --------------------------------------------------


def conda_pack_exe(ctx: Context) -> Path | None:
    """conda-pack from its own venv under .cache/bench (installed from PyPI when allowed)."""
    exe = CONDA_PACK_VENV / "bin" / "conda-pack"
    if exe.is_file():
        return exe
    if ctx.offline:
        return None
    ctx.log(f"  installing conda-pack into {CONDA_PACK_VENV} (PyPI)")
    import subprocess
    import sys

    subprocess.run([sys.executable, "-m", "venv", str(CONDA_PACK_VENV)], check=True)
    subprocess.run(
        [str(CONDA_PACK_VENV / "bin" / "pip"), "install", "-q", "conda-pack"],
        check=True,
    )
    return exe if exe.is_file() else None


def case_ship(ctx: Context) -> list[Row]:
    """Ship an environment: pack+unpack vs create+conda-pack+extract+conda-unpack."""
    world = default_world()
    exe = conda_pack_exe(ctx)
    rows: list[Row] = []
    with ServedWorld(world.root, latency=ctx.latency) as url:
        ws = data.workspace(ctx.dir("c4-ws"), world, url, data.SHIP_SPECS)
        pack, target = ctx.work / "c4-pack.tar", ctx.work / "c4-unpack"
        prefix, pkgs = ctx.work / "c4-prefix", ctx.work / "c4-pkgs"
        cp_out, cp_dest = ctx.work / "c4-env.tar.gz", ctx.work / "c4-conda-unpacked"

        def prepare() -> None:
            warm([world.channel_dir])

        def ours() -> Sample:
            remove(pack, target)
            ctx.ready()
            a = ctx.run(product("pack", str(ws.root), "-o", str(pack)), label="pack")
            ctx.ready()
            b = ctx.run(product("unpack", str(pack), "-o", str(target)), label="unpack")
            return Sample(a.seconds + b.seconds, max(a.max_rss, b.max_rss))

        steps: dict[str, list[float]] = {
            "create": [],
            "conda-pack": [],
            "extract": [],
            "unpack": [],
        }

        def conda() -> Sample:
            assert exe is not None
            remove(prefix, pkgs, cp_out, cp_dest)
            ctx.ready()
            create = ctx.run(
                helper(
                    "baseline_install",
                    str(ws.lock_path),
                    str(world.channel_dir),
                    str(prefix),
                    str(pkgs),
                    "--keep-urls",
                ),
                label="create the environment (rattler.install)",
            )
            ctx.ready()
            cp = ctx.run(
                [str(exe), "-p", str(prefix), "-o", str(cp_out), "--quiet"], label="conda-pack"
            )
            ctx.ready()
            cp_dest.mkdir()
            ex = ctx.run(["tar", "xzf", str(cp_out), "-C", str(cp_dest)], label="tar xzf")
            un = ctx.run([str(cp_dest / "bin" / "conda-unpack")], label="conda-unpack")
            for key, s in zip(steps, (create, cp, ex, un), strict=True):
                steps[key].append(s.seconds)
            parts = (create, cp, ex, un)
            return Sample(sum(p.seconds for p in parts), max(p.max_rss for p in parts))

        if exe is None:
            got = interleave(ctx, ctx.runs, {"ours": ours}, prepare=prepare)
            pack_size = pack.stat().st_size
            check_env(ctx, target / "env")
            rows.append(
                Row(
                    case="4",
                    what="ship: pack+unpack (conda-pack not installed)",
                    measured=seconds(got["ours"]).seconds(),
                    peak_rss=mib(peak(got["ours"])),
                    status="n/a: conda-pack missing",
                    notes=[
                        f"archive {size_text(pack_size)}; conda-pack is installed by a run "
                        "without --offline"
                    ],
                )
            )
            remove(pack, target)
            return rows
        got = interleave(ctx, ctx.runs, {"ours": ours, "conda": conda}, prepare=prepare)
        # the last run of each side is left in place: check both environments work
        check_env(ctx, target / "env")
        check_env(ctx, cp_dest)
        pack_size, cp_size = pack.stat().st_size, cp_out.stat().st_size
        row = ratio_row(
            "4",
            "ship: pack+unpack vs create+conda-pack+extract+conda-unpack",
            got["ours"],
            got["conda"],
            "conda-pack path",
            target=None,
        )
        step_text = ", ".join(f"{k} {Stats.of(v).median:.2f} s" for k, v in steps.items())
        row.notes += [
            f"{len(data.SHIP_SPECS)} specs of the default world (the real CPython, pip, "
            "binaries with prefix placeholders, noarch python), from the 127.0.0.1 server",
            f"archives: pixi-pack-src {size_text(pack_size)} (tar of the .conda/.tar.bz2 "
            f"files), conda-pack {size_text(cp_size)} (tar.gz of the installed files, "
            "conda-pack's defaults)",
            f"conda-pack path medians: {step_text}",
            "conda-pack packs the rattler-made prefix as a managed conda environment: "
            "py-rattler writes conda-meta/*.json with `files`, `paths_data` and `link.source` "
            "(the extracted package in the package cache, kept until conda-pack has run)",
        ]
        row.data.update(pack_bytes=pack_size, conda_pack_bytes=cp_size, steps=steps)
        rows.append(row)
        remove(pack, target, prefix, pkgs, cp_out, cp_dest)
    return rows


def check_env(ctx: Context, prefix: Path) -> None:
    """The shipped environment's python runs and relocme finds its moved prefix."""
    import subprocess

    python = prefix / "bin" / "python"
    if not python.exists():
        return
    subprocess.run(
        [str(python), "-c", "import sys, worldcli; assert sys.prefix == sys.argv[1]", str(prefix)],
        check=True, env=ctx.env, capture_output=True,
    )  # fmt: skip


# -- case 5: peak memory with one 1 GiB package -------------------------------------------------


def case_memory(ctx: Context) -> list[Row]:
    """Peak RSS of pack (cold, warm), unpack and verify with one 1 GiB package."""
    world = data.big_one(ctx.scale)
    size = world_size(world)
    runs = ctx.scale.big_runs
    out, cache, target = ctx.work / "c5-pack.tar", ctx.work / "c5-cache", ctx.work / "c5-unpack"
    remove(out, cache, target)
    with ServedWorld(world.root) as url:
        ws = data.workspace(ctx.dir("c5-ws"), world, url)
        results: dict[str, list[Sample]] = {"cold": [], "warm": [], "unpack": [], "verify": []}
        for i in range(runs):
            remove(out, cache)
            warm([world.channel_dir])
            ctx.ready()
            results["cold"].append(
                ctx.run(product("pack", str(ws.root), "-o", str(out)), label="cold pack")
            )
            remove(out)
            ctx.ready()
            ctx.run(
                product("pack", str(ws.root), "-o", str(out), "--use-cache", str(cache)),
                label="pack filling the cache",
            )
            remove(out)
            warm([cache])
            ctx.ready()
            results["warm"].append(
                ctx.run(
                    product("pack", str(ws.root), "-o", str(out), "--use-cache", str(cache)),
                    label="warm pack",
                )
            )
            remove(target)
            warm([out])
            ctx.ready()
            results["unpack"].append(
                ctx.run(product("unpack", str(out), "-o", str(target)), label="unpack")
            )
            remove(target)
            warm([out])
            ctx.ready()
            results["verify"].append(
                ctx.run(product("verify", str(out), "--lock", str(ws.root)), label="verify")
            )
            ctx.log(
                f"    run {i + 1}/{runs}: "
                + ", ".join(
                    f"{k} {v[-1].seconds:.2f} s {mib(v[-1].max_rss)}" for k, v in results.items()
                )
            )
    remove(out, cache, target)
    rows = []
    for key, what in (
        ("cold", "cold pack"),
        ("warm", "warm-cache pack"),
        ("unpack", "unpack"),
        ("verify", "verify --lock"),
    ):
        samples = results[key]
        top = peak(samples)
        rows.append(
            Row(
                case="5",
                what=f"peak memory, {what}, one {size_text(size)} package",
                measured=seconds(samples).seconds(),
                peak_rss=mib(top),
                target=f"< {mib(RSS_LIMIT)}",
                status="met" if top < RSS_LIMIT else "MISSED",
                data={"rss": [s.max_rss for s in samples], "s": [s.seconds for s in samples]},
            )
        )
    if runs < ctx.runs:
        rows[0].notes.append(f"{runs} runs each (the 15-minute budget), peak = the highest run")
    rows[0].notes.append(
        f"peak RSS is the highest of {runs} runs; the process streams in 1 MiB chunks (plus "
        "py-rattler's own buffers for the install)"
    )
    return rows


# -- case 6: 2,000 packages: inspect and planning -----------------------------------------------


def case_many(ctx: Context) -> list[Row]:
    """A 2,000-package lock: inspect time and pack planning overhead."""
    world = data.many(ctx.scale)
    n = len(world.packages)
    cache, out, base = ctx.work / "c6-cache", ctx.work / "c6-out.tar", ctx.work / "c6-base.tar"
    remove(cache, out, base)
    with ServedWorld(world.root) as url:
        ws = data.workspace(ctx.dir("c6-ws"), world, url)
        # fill the cache once (untimed), for the warm pack below
        ctx.run(
            product("pack", str(ws.root), "-o", str(out), "--use-cache", str(cache)),
            label="pack (filling the cache)",
        )
    listing = ctx.work / "c6-files.txt"
    listing.write_text("".join(f"{rel}\n" for _, rel in data.locked_files(ws)))

    def prepare() -> None:
        remove(out, base)
        warm([ws.lock_path, cache, world.channel_dir])

    def inspect() -> Sample:
        return ctx.run(product("inspect", str(ws.root)), label="inspect")

    def inspect_json() -> Sample:
        return ctx.run(product("inspect", str(ws.root), "--json"), label="inspect --json")

    def planning() -> Sample:
        return ctx.run(helper("plan_timing", str(ws.root)), label="plan timing", capture=True)

    def pack() -> Sample:
        argv = product("pack", str(ws.root), "-o", str(out), "--use-cache", str(cache))
        return ctx.run(argv, label="warm pack")

    def tar() -> Sample:
        argv = ["tar", "cf", str(base), "-C", str(world.channel_dir), "-T", str(listing)]
        return ctx.run(argv, label="tar cf")

    got = interleave(
        ctx,
        ctx.runs,
        {
            "inspect": inspect,
            "inspect --json": inspect_json,
            "plan": planning,
            "pack": pack,
            "tar": tar,
        },
        prepare=prepare,
    )
    remove(out, base, cache)
    phases: dict[str, list[float]] = {}
    for sample in got["plan"]:
        for key, value in json.loads(sample.stdout).items():
            phases.setdefault(key, []).append(float(value))
    phase_text = ", ".join(f"{k} {Stats.of(v).median * 1000:.0f} ms" for k, v in phases.items())
    rows = []
    for key in ("inspect", "inspect --json"):
        s = seconds(got[key])
        rows.append(
            Row(
                case="6",
                what=f"`{key}`, {n}-package lock",
                measured=s.seconds(),
                target=f"< {INSPECT_LIMIT:.0f} s",
                peak_rss=mib(peak(got[key])),
                status="met" if s.median < INSPECT_LIMIT else "MISSED",
            )
        )
    pack_row = ratio_row(
        "6", f"warm pack of {n} tiny packages vs tar cf", got["pack"], got["tar"], "tar cf",
        target=None,
    )  # fmt: skip
    overhead = seconds(got["pack"]).median - seconds(got["tar"]).median
    pack_row.notes.append(
        f"in-process phases of pack before any download (median): {phase_text}; "
        f"whole warm pack minus tar cf: {overhead:.2f} s ({overhead / n * 1000:.2f} ms a package)"
    )
    pack_row.data["phases"] = phases
    rows.append(pack_row)
    return rows


# -- case 7: source packages, second pack -------------------------------------------------------


def source_workspace(root: Path, world: World, url: str, count: int) -> Workspace:
    """``count`` path source packages (a native chain and noarch ones) + conda packages."""
    names = [f"src{i}" for i in range(count)]
    sources = []
    for i, name in enumerate(names):
        noarch = i % 2 == 1
        nxt = names[i + 1] if i + 1 < count else None
        write_package(
            root / "src" / name,
            name,
            noarch=noarch,
            source_run={nxt: f"../{nxt}"} if nxt else None,
            files={f"share/{name}/hello.txt": f"hello from {name}"},
        )
        sources.append(
            SourceEntry(
                name,
                f"src/{name}",
                depends=(nxt,) if nxt else (),
                source_depends={nxt: {"path": f"../{nxt}"}} if nxt else {},
                noarch=noarch,
            )
        )
    return write_workspace(
        root,
        world,
        {"default": Env(conda=data.SHIP_SPECS, sources=tuple(sources))},
        channel_url=world.channel_url(url),
    )


def case_sources(ctx: Context) -> list[Row]:
    """Second pack with unchanged source packages: zero builds, time vs no sources."""
    world = default_world()
    standin = StandIn(
        exe=install(ctx.dir("c7-pixi") / "bin"), log=ctx.work / "c7-pixi" / "calls.jsonl"
    )
    env = {**ctx.env, **{k: v for k, v in standin.env().items() if v}}
    count = ctx.scale.sources
    out = ctx.work / "c7-out.tar"
    cache_src, cache_plain = ctx.work / "c7-cache-src", ctx.work / "c7-cache-plain"
    remove(cache_src, cache_plain)
    with ServedWorld(world.root) as url:
        src_ws = source_workspace(ctx.dir("c7-ws-src"), world, url, count)
        plain_ws = data.workspace(ctx.dir("c7-ws-plain"), world, url, data.SHIP_SPECS)

        def pack_argv(ws: Workspace, cache: Path) -> list[str]:
            return product(
                "pack", str(ws.root), "-o", str(out), "--use-cache", str(cache), "--json",
                "--pixi", str(standin.exe),
            )  # fmt: skip

        first = measure(pack_argv(src_ws, cache_src), env=env, capture=True, label="first pack")
        built = pack_stats(first)["built"]
        if built != count:
            raise BenchmarkError(f"the first pack built {built} packages, not {count}")
        measure(pack_argv(plain_ws, cache_plain), env=env, capture=True, label="plain pack")
        builds_before = len(standin.builds())

        def prepare() -> None:
            remove(out)
            warm([cache_src, cache_plain])

        def second() -> Sample:
            sample = measure(pack_argv(src_ws, cache_src), env=env, capture=True, label="pack")
            stats = pack_stats(sample)
            if stats["built"] != 0 or stats["builds_from_cache"] != count:
                raise BenchmarkError(f"the second pack rebuilt something: {stats}")
            return sample

        def plain() -> Sample:
            return measure(pack_argv(plain_ws, cache_plain), env=env, capture=True, label="pack")

        got = interleave(ctx, ctx.runs, {"sources": second, "plain": plain}, prepare=prepare)
    builds_after = len(standin.builds())
    remove(out, cache_src, cache_plain)
    row = ratio_row(
        "7",
        f"second pack with {count} unchanged source packages vs warm pack without them",
        got["sources"],
        got["plain"],
        "no sources",
        target=None,
    )
    row.status = "met (0 builds)" if builds_after == builds_before else "MISSED (rebuilt)"
    row.notes.append(
        f"first pack: {first.seconds:.2f} s, {count} `pixi build` runs (stand-in pixi); "
        f"second packs: {builds_after - builds_before} builds"
    )
    return [row]


# -- case 8: a pack with sdists to build --------------------------------------------------------

SDIST_COUNT = 5
BEFORE_SRC = "BENCH_BEFORE_SRC"  # another checkout's src/ (e.g. before uv) as the baseline


def sdist_workspace(root: Path, world: World, url: str, index_url: str, count: int) -> Workspace:
    """``count`` local sdists whose builds need ``buildreq-a>=2`` (two wheels from the index)."""
    entries, paths = [], {}
    for i in range(count):
        name = f"bench-sdist{i}"
        project = needing_project(root.parent / "projects" / name, name, ("buildreq-a>=2",), ())
        sdist = sdist_of(project, root.parent / "dist", name)
        rel = f"dist/{sdist.name}"
        paths[rel] = sdist
        entries.append(
            PypiEntry(name, f"./{rel}", "1.0", sha256=file_sha256(sdist), index=index_url)
        )
    return write_workspace(
        root,
        world,
        {"default": Env(conda=("python",), pypi=tuple(entries), indexes=(index_url,))},
        channel_url=world.channel_url(url),
        local_paths=paths,
    )


def case_sdists(ctx: Context) -> list[Row]:
    """Cold pack (no cache) of 5 sdists with build requirements from a 127.0.0.1 index."""
    world = default_world()
    out = ctx.work / "c8-out.tar"
    index = write_buildreq_index(ctx.dir("c8-index"))
    before = os.environ.get(BEFORE_SRC)
    served_index = ServedWorld(index.root, cache_control=True)  # as PyPI: pages 10 min
    with ServedWorld(world.root) as url, served_index as index_url:
        ws = sdist_workspace(ctx.dir("c8-ws"), world, url, index.simple(index_url), SDIST_COUNT)
        argv = product("pack", str(ws.root), "-o", str(out), "--json")

        def run(env: dict[str, str], label: str) -> Sample:
            sample = measure(argv, env=env, capture=True, label=label)
            built = pack_stats(sample)["built"]
            if built != SDIST_COUNT:
                raise BenchmarkError(f"{label} built {built} wheels, not {SDIST_COUNT}")
            return sample

        sides = {"uv": lambda: run(ctx.env, "pack")}
        if before:
            old_env = {**ctx.env, "PYTHONPATH": os.pathsep.join([before, ctx.env["PYTHONPATH"]])}
            sides["before"] = lambda: run(old_env, "pack (before)")
        got = interleave(ctx, ctx.runs, sides, prepare=lambda: remove(out))
    remove(out)
    what = f"cold pack of {SDIST_COUNT} sdists (build requirements: 2 wheels each)"
    if before:
        row = ratio_row("8", what, got["uv"], got["before"], f"before ({before})", target=1.0)
    else:
        samples = got["uv"]
        row = Row(
            case="8",
            what=what,
            measured=seconds(samples).seconds(),
            peak_rss=mib(peak(samples)),
            status="info",
            data={"subject_s": [s.seconds for s in samples]},
        )
    cpu = {name: Stats.of([s.cpu for s in samples]).median for name, samples in got.items()}
    row.notes.append(
        "CPU (user+system, median): "
        + ", ".join(f"{name} {value:.2f} s" for name, value in cpu.items())
        + f"; each build: uv venv + uv pip install from the index (PyPI's Cache-Control) + the "
        f"backend's hooks; set {BEFORE_SRC}=<checkout>/src to compare with another version"
    )
    return [row]


# -- case 9: a delta for one changed package -----------------------------------------------------


def case_delta(ctx: Context) -> list[Row]:
    """One package changed in the 1 GiB environment: `pack --base` + `unpack --update` vs a
    full pack + unpack (issue 17)."""
    world, changed = data.delta_world(ctx.scale)
    cache = ctx.work / "c9-cache"
    base, full, delta = (
        ctx.work / "c9-base.tar",
        ctx.work / "c9-full.tar",
        ctx.work / "c9-delta.tar",
    )
    manifest = ctx.work / "c9-base.json"
    site, fresh = ctx.work / "c9-site", ctx.work / "c9-fresh"
    remove(cache, base, full, delta, manifest, site, fresh)
    with ServedWorld(world.root) as url:
        old = data.workspace(ctx.dir("c9-old"), world, url, ("bulk-all", f"{changed} <2"))
        new = data.workspace(ctx.dir("c9-new"), world, url, ("bulk-all", f"{changed} >=2"))
        ctx.run(
            product("pack", str(old.root), "-o", str(base), "--use-cache", str(cache)),
            label="base pack (filling the cache)",
        )
        ctx.run(
            product("pack", str(new.root), "-o", str(full), "--use-cache", str(cache)),
            label="new pack (filling the cache)",
        )
    listed = ctx.run(product("manifest", str(base)), label="manifest", capture=True)
    manifest.write_text(listed.stdout)

    def prepare() -> None:
        remove(full, delta, fresh)
        warm([cache, base, world.channel_dir])

    sizes: dict[str, int] = {}

    def full_pack() -> Sample:
        argv = product("pack", str(new.root), "-o", str(full), "--use-cache", str(cache))
        sample = ctx.run(argv, label="full pack")
        sizes["full"] = full.stat().st_size
        return sample

    def delta_pack() -> Sample:
        argv = product(
            "pack", str(new.root), "-o", str(delta), "--use-cache", str(cache),
            "--base", str(manifest),
        )  # fmt: skip
        sample = ctx.run(argv, label="delta pack")
        sizes["delta"] = delta.stat().st_size
        return sample

    packs = interleave(ctx, ctx.runs, {"delta": delta_pack, "full": full_pack}, prepare=prepare)
    full_size, delta_size = sizes["full"], sizes["delta"]
    # the archives the unpacks read
    ctx.run(product("pack", str(new.root), "-o", str(full), "--use-cache", str(cache)), label="")
    argv = product("pack", str(new.root), "-o", str(delta), "--use-cache", str(cache))
    ctx.run([*argv, "--base", str(manifest)], label="")

    def prepare_unpack() -> None:
        remove(site, fresh)
        # the site: the base unpacked with its package files (untimed)
        ctx.run(
            product("unpack", str(base), "-o", str(site), "--keep-packages"),
            label="site (base)",
        )
        warm([full, delta])

    def full_unpack() -> Sample:
        return ctx.run(product("unpack", str(full), "-o", str(fresh)), label="full unpack")

    def update() -> Sample:
        argv = product("unpack", str(delta), "--update", str(site / "env"))
        return ctx.run(argv, label="unpack --update")

    runs = ctx.scale.big_runs
    unpacks = interleave(ctx, runs, {"update": update, "full": full_unpack}, prepare=prepare_unpack)
    remove(cache, base, full, delta, manifest, site, fresh)
    pack_row = ratio_row(
        "9", "delta pack (one changed package) vs full pack", packs["delta"], packs["full"],
        "full pack", target=None,
    )  # fmt: skip
    pack_row.notes.append(
        f"{len(world.packages) - 1} packages, {size_text(world_size(world))}; `{changed}` "
        f"upgraded; archives: full {size_text(full_size)}, delta {size_text(delta_size)} "
        f"({delta_size / full_size:.2%}); both warm (--use-cache), the delta against "
        "`pixi-pack-src manifest` of the base"
    )
    unpack_row = ratio_row(
        "9", "unpack --update (delta) vs unpack of the full pack", unpacks["update"],
        unpacks["full"], "full unpack", target=None,
    )  # fmt: skip
    unpack_row.notes.append(
        "the update installs the whole new environment beside the old one from the kept "
        "package files plus the delta, verifies every file, then swaps it in atomically"
    )
    return [pack_row, unpack_row]


CASES: dict[str, Callable[[Context], list[Row]]] = {
    "1": case_cold_pack,
    "2": case_warm_pack,
    "3": case_unpack,
    "4": case_ship,
    "5": case_memory,
    "6": case_many,
    "7": case_sources,
    "8": case_sdists,
    "9": case_delta,
}

__all__ = ["CASES", "Context", "make_context"]
