"""How ``inspect`` shows a plan to a human: readable at 80 columns and in CI logs.

The layout, per platform: a title with the totals per action, then the items grouped by
action and origin (the channel subdir, the package index, the directory) with the origin
printed once in the group's heading, shortened to ``host/…/tail`` when it would not fit
(``--json`` has every full URL). An item is one line of name, version and size; build and
skip items add a short note that wraps onto a second line at most in the usual widths.
What would make a pack fail comes first, the ``pixi build`` invocations last. Columns are
never dropped: names and versions too long for their column end with a visible ``…``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from rich.console import Console
from rich.table import Table
from rich.text import Text

from pixi_pack_src.lock.model import CondaSource
from pixi_pack_src.plan import ACTIONS as PLAN_ACTIONS
from pixi_pack_src.plan import (
    FROM_BASE,
    InspectOptions,
    PackPlan,
    PackPlans,
    PlanItem,
    SourceBuild,
)
from pixi_pack_src.redact import redact_text
from pixi_pack_src.units import human_bytes

# The order of groups (and of the totals) in a platform's section.
ACTIONS: tuple[str, ...] = (*PLAN_ACTIONS, FROM_BASE)
_ACTION_LABEL = {
    "from-base": "in the base (--base)",
    "download": "download",
    "copy": "copy",
    "build-conda": "build (pixi)",
    "build-wheel": "build wheel",
    "skip": "skip",
}
NAME_WIDTH = 28  # at most; longer names end with "…"
VERSION_WIDTH = 16
SIZE_WIDTH = 10
NOTE_MIN = 24


def shorten(text: str, limit: int) -> str:
    """``host/a/b/c/tail`` -> ``host/…/c/tail`` so that it fits in ``limit`` characters.

    The host (the first segment) and as many trailing segments as fit are kept; a text
    without slashes is cut with a trailing ``…``. Never longer than ``limit`` (>= 8)."""
    limit = max(limit, 8)
    if len(text) <= limit:
        return text
    head, sep, rest = text.partition("/")
    parts = rest.split("/") if sep else []
    tail: list[str] = []
    for part in reversed(parts[1:]):
        candidate = "/".join([part, *tail])
        if len(head) + len("/…/") + len(candidate) > limit:
            break
        tail.insert(0, part)
    if tail and len(head) + 3 <= limit:
        return f"{head}/…/{'/'.join(tail)}"
    return text[: limit - 1] + "…"


def origin_of(item: PlanItem, root: Path) -> str:
    """The group an item belongs to, as shown (no scheme, no credentials)."""
    if item.action == "download":
        parts = urlsplit(redact_text(item.source))
        if item.kind == "conda":  # the channel subdir
            return f"{parts.netloc}{parts.path.rsplit('/', 1)[0]}"
        index = getattr(item.entry, "index", None)
        if isinstance(index, str) and index:
            idx = urlsplit(redact_text(index))
            return f"{idx.netloc}{idx.path.rstrip('/')}"
        return parts.netloc
    if item.action == "copy":
        return relative(str(Path(item.source).parent), root)
    return ""


def relative(source: str, root: Path) -> str:
    """Paths below the workspace are shown relative to it (``./src/pkg``)."""
    path = Path(source)
    if path.is_absolute():
        try:
            rel = path.relative_to(root)
        except ValueError:
            return source
        return f"./{rel.as_posix()}" if str(rel) != "." else "."
    return source


def _url_text(url: str) -> str:
    parts = urlsplit(redact_text(url))
    if not parts.netloc:
        return url
    return f"{parts.netloc}{parts.path}".rstrip("/")


def note_of(item: PlanItem, root: Path) -> str:
    """What a build or skip item needs besides its name (where from, how)."""
    entry = item.entry
    bits: list[str] = []
    if isinstance(entry, CondaSource):
        where = relative(item.source, root) if item.action != "skip" else entry.location
        bits.append(where)
        extras = ["full" if entry.is_full else "partial"]
        extras += [f"{k}={v}" for k, v in sorted(entry.variants.items())]
        if entry.source is not None and "git" in entry.source:
            rev = str(entry.source.get("rev", "?"))[:12]
            extras.append(f"git {shorten(_url_text(entry.source['git']), 40)}@{rev}")
        bits.append(f"[{', '.join(extras)}]")
    elif item.action in ("build-wheel", "skip"):
        kind = item.kind
        source = item.source
        shown = _url_text(source) if "://" in source else relative(source, root)
        if kind == "sdist" and item.file_name:
            shown = item.file_name
        bits.append(f"{kind} {shorten(shown, 48)}")
    if item.wheel_build is not None:
        bits.append(f"[{_wheel_build_text(item.wheel_build)}]")
    if item.action == "skip" and item.reason:
        bits.append(f"(skipped: {item.reason})")
    return " ".join(bits)


def _wheel_build_text(doc: Mapping[str, object]) -> str:
    parts = [str(doc.get("build"))]
    overrides = doc.get("overrides")
    if isinstance(overrides, Mapping):
        applied = [
            f"{label} {', '.join(str(v) for v in values)}"
            for label, values in (
                ("patches", overrides.get("patches")),
                ("env", overrides.get("env")),
                ("config-settings", overrides.get("config-settings")),
            )
            if isinstance(values, list) and values
        ]
        parts.append("overrides: " + "; ".join(applied))
    if "cached" in doc:
        cached = doc["cached"]
        parts.append("cached" if cached else "not cached" if cached is False else "cache unknown")
    return ", ".join(parts)


@dataclass
class Group:
    action: str
    origin: str
    items: list[PlanItem] = field(default_factory=list)

    @property
    def size(self) -> int | None:
        sizes = [i.hashes.size for i in self.items]
        return None if any(s is None for s in sizes) else sum(s or 0 for s in sizes)


def groups(plan: PackPlan, root: Path) -> list[Group]:
    """Items by action (in :data:`ACTIONS` order), then by origin in order of appearance."""
    by_key: dict[tuple[str, str], Group] = {}
    for item in plan.items:
        key = (item.action, origin_of(item, root))
        by_key.setdefault(key, Group(*key)).items.append(item)
    order = {a: i for i, a in enumerate(ACTIONS)}
    return sorted(by_key.values(), key=lambda g: order.get(g.action, len(order)))


def totals_line(plan: PackPlan) -> str:
    t = plan.totals
    parts: list[str] = []
    for action in ACTIONS:
        count = t.by_action.get(action, 0)
        if not count:
            continue
        text = f"{count} {_ACTION_LABEL[action]}"
        if action == "download" and not t.download_bytes and t.unknown_size:
            text += " (size unknown)"
        elif action == "download":
            text += f" ({human_bytes(t.download_bytes)})"
        elif action == "copy":
            text += f" ({human_bytes(t.copy_bytes)})"
        parts.append(text)
    unknown = f"; {t.unknown_size} of unknown size" if t.unknown_size else ""
    builds = f"; {t.builds} pixi build invocation(s)" if t.builds else ""
    return f"{t.items} items: {', '.join(parts) or 'nothing'}{unknown}{builds}"


def render(console: Console, plans: PackPlans, root: Path, options: InspectOptions) -> None:
    """The whole human output of ``inspect`` on ``console`` (stdout)."""
    _problems(console, plans.problems)
    for plan in plans.plans:
        _render_plan(console, plan, root)
    if plans.builds:
        _render_builds(console, plans.builds, root, cache=options.cache_dir is not None)


def _problems(console: Console, problems: Iterable[str]) -> None:
    problems = list(problems)
    if not problems:
        return
    console.print(f"A pack would fail ({len(problems)} problem(s)):")
    grid = Table.grid(padding=(0, 1), pad_edge=False)
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    for problem in problems:
        grid.add_row("  ✗", problem)
    console.print(grid)
    console.print("")


def _render_plan(console: Console, plan: PackPlan, root: Path) -> None:
    platform = plan.platform
    title = f"{plan.environment} on {platform.name}"
    if platform.subdir != platform.name:
        title += f" (subdir {platform.subdir})"
    console.print(Text(title, style="bold"))
    console.print(f"  {totals_line(plan)}")
    name_w = min(NAME_WIDTH, max([len(i.name) for i in plan.items] + [4]))
    version_w = min(VERSION_WIDTH, max([len(i.version or "") for i in plan.items] + [1]))
    for group in groups(plan, root):
        _render_group(console, group, root, name_w, version_w)
    console.print("")


def _render_group(console: Console, group: Group, root: Path, name_w: int, version_w: int) -> None:
    label = _ACTION_LABEL.get(group.action, group.action)
    count = f"{len(group.items)} item" + ("s" if len(group.items) != 1 else "")
    with_size = group.action in ("download", "copy")
    if with_size:
        count += f", {human_bytes(group.size)}" if group.size is not None else ", size unknown"
    if group.origin:
        room = console.width - len(label) - len(count) - 12
        heading = f"{label} from {shorten(group.origin, room)} ({count})"
    else:
        heading = f"{label} ({count})"
    console.print(Text(f"  {heading}", style="cyan"), no_wrap=True, overflow="ellipsis")

    notes = [note_of(i, root) for i in group.items]
    with_note = any(notes)
    with_version = any(i.version for i in group.items)
    if with_note:  # the note gets the room: columns as wide as this group needs
        name_w = min(NAME_WIDTH, max(len(i.name) for i in group.items))
        version_w = min(VERSION_WIDTH, max(len(i.version or "") for i in group.items))
    # a narrow terminal: names and versions give way (visibly, "…") before the note does,
    # so that the columns always fit and rich never crops a line's end
    fixed = 4 + (SIZE_WIDTH + 1 if with_size else 0) + (NOTE_MIN if with_note else 0)
    while fixed + name_w + 1 + (version_w + 1 if with_version else 0) > console.width:
        if name_w <= 6 and version_w <= 6:
            break
        if name_w >= version_w and name_w > 6:
            name_w -= 1
        elif version_w > 6:
            version_w -= 1
    note_w = console.width - 4 - name_w - 1 - (version_w + 1 if with_version else 0)
    note_w -= SIZE_WIDTH + 1 if with_size else 0
    table = Table(box=None, show_header=False, pad_edge=False, padding=(0, 1), expand=False)
    table.add_column(width=3, no_wrap=True)  # the indent
    table.add_column(width=name_w, no_wrap=True, overflow="ellipsis")
    if with_version:
        table.add_column(width=version_w, no_wrap=True, overflow="ellipsis")
    if with_size:
        table.add_column(width=SIZE_WIDTH, justify="right", no_wrap=True)
    if with_note:
        table.add_column(max_width=max(8, note_w), overflow="fold")
    for item, note in zip(group.items, notes, strict=True):
        row = ["", item.name]
        if with_version:
            row.append(item.version or "")
        if with_size:
            row.append(human_bytes(item.hashes.size))
        if with_note:
            row.append(note)
        table.add_row(*row)
    console.print(table)


def _render_builds(
    console: Console, builds: Iterable[SourceBuild], root: Path, *, cache: bool
) -> None:
    builds = list(builds)
    shared = [b for b in builds if len(b.platforms) > 1]
    console.print(
        f"{len(builds)} pixi build invocation(s) in all"
        + (f"; {len(shared)} noarch build(s) shared across platforms" if shared else ""),
        soft_wrap=True,
    )
    for build in builds:
        _render_build(console, build, root, cache=cache)
    pixi = builds[0].pixi
    if pixi is not None and "error" in pixi:
        console.print(
            f"pixi was not found ({pixi['error']}); the commands show `pixi`", soft_wrap=True
        )
    elif pixi is not None:
        console.print(
            f"pixi {pixi.get('version')} at {pixi.get('path')}: {pixi.get('why')}", soft_wrap=True
        )
    console.print("")


def _render_build(console: Console, build: SourceBuild, root: Path, *, cache: bool) -> None:
    job = build.job
    console.print(
        f"  {', '.join(job.names)} [{job.target}] for {', '.join(build.platforms)}",
        soft_wrap=True,
    )
    if job.git is not None:
        sub = f", subdirectory {job.git.subdirectory}" if job.git.subdirectory else ""
        origin = f"git {redact_text(job.git.url)} at {job.git.rev}{sub}"
    else:
        origin = relative(build.origin, root)
    console.print(f"    from: {origin}", soft_wrap=True)
    console.print(f"    backend: {_backend_text(build)}", soft_wrap=True)
    if cache:
        cached = build.cached
        shown = "unknown (no usable pixi)" if cached is None else ("yes" if cached else "no")
        console.print(f"    cached: {shown}", soft_wrap=True)
    # a command line stays one line (copy-paste); the terminal wraps it, not us
    console.print(f"    $ {' '.join(build.command)}", soft_wrap=True)


def _backend_text(build: SourceBuild) -> str:
    status = build.backend
    if not status.checked:
        return "read from the checkout when building (git)"
    spec, use = status.spec, status.use
    text = "not declared (pixi picks one)"
    if spec is not None:
        pin = "pinned" if use is not None and use.pinned else "not pinned"
        if use is not None and use.override_sha256 is not None:
            pin = "overridden"
        text = f"{spec.name} {spec.version or '(any version)'} ({pin})"
    if status.problem is not None:
        text += " - a pack would fail"
    return text
