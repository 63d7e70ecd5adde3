"""Chaos for the hardening suite: the real CLI as a subprocess, stopped at a chosen moment.

Nothing here hooks into the product. A run is interrupted from the outside, when something
*observable* happens -- a file appears or grows (:func:`file_appears`), the server has answered
N requests (:func:`server_saw`) -- so the moment is reproducible without test code in
``pixi_pack_src``:

- conditions: :func:`file_appears`, :func:`writing_in` (the process has a file open in a
  directory, even a nameless one), :func:`server_saw`;
- :func:`start_cli` runs ``python -m pixi_pack_src ARGV`` in its own session (process group),
  with ``TMPDIR`` pointed where the test wants, stdout/stderr in files;
- :func:`kill_when` waits for a condition, then ``SIGKILL`` s the whole group at once (as a
  CI runner cancelling a job or the OOM killer would: no cleanup code runs, and no build
  subprocess survives to write after the test);
- :func:`interrupt_when` sends ``SIGINT`` to the CLI process alone (Ctrl-C);
- :func:`litter` lists the temporary files a run left behind (every naming scheme the
  product uses for temporary names); :func:`snapshot` records a whole tree so that a test can
  prove nothing was written.

Lock and manifest mutations for hypothesis (:func:`mutate_tree`, :func:`mutate_bytes`).

Hostile conda packages (:func:`hostile_conda_package`, :func:`add_package_to_pack`) and a tar
with a huge member count (:func:`many_members_tar`) complete :mod:`testworld.hostile`.

:class:`RedirectServer` answers every request with a redirect to another base URL and logs the
headers it got (for credential tests: a redirect must not carry the first host's secrets).
"""

from __future__ import annotations

import contextlib
import copy
import fnmatch
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import MappingProxyType
from typing import Any

from hypothesis import strategies as st

from testworld.server import WorldServer
from testworld.service import ThreadedHTTPService

REPO_ROOT = Path(__file__).resolve().parents[2]
CLI: tuple[str, ...] = (sys.executable, "-m", "pixi_pack_src")

#: Name patterns of the product's temporary files and directories (see archive.atomic_output,
#: http.download_file, pack._work_dir, unpack's work directory and safe_extract's spool file).
TEMP_PATTERNS: tuple[str, ...] = (
    ".*.tmp",
    ".*.old",
    ".*.part",
    "*.part",
    "pixi-pack-src-*",
    ".pixi-pack-src-*",
)

Condition = Callable[[], bool]


# -- running the CLI ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Finished:
    """A CLI run that ended: exit code (negative: killed by that signal), its output."""

    code: int
    stdout: bytes
    stderr: str

    @property
    def error_lines(self) -> list[str]:
        """The ``error:``/``help:`` lines and anything that looks like a traceback."""
        return [
            line
            for line in self.stderr.splitlines()
            if line.startswith(("error:", "help:", "Traceback", "  File "))
        ]


@dataclass
class CliRun:
    """A running ``python -m pixi_pack_src`` (see :func:`start_cli`)."""

    proc: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path
    argv: tuple[str, ...]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def stderr_so_far(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait(self, timeout: float = 120.0) -> Finished:
        """Wait for the end (kill the group and fail after ``timeout`` seconds)."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"{' '.join(self.argv)} still ran after {timeout} s; stderr:\n"
                + self.stderr_so_far()[-3000:]
            ) from None
        return Finished(code, self.stdout_path.read_bytes(), self.stderr_so_far())

    def kill(self) -> None:
        """SIGKILL the whole process group (the CLI and whatever it started)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def interrupt(self) -> None:
        """SIGINT to the CLI process only (what Ctrl-C does to the foreground process)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGINT)


def start_cli(
    argv: Sequence[str],
    *,
    logs: Path,
    env: Mapping[str, str] | None = None,
    tmpdir: Path | None = None,
    cwd: Path | None = None,
    stdin: int | None = subprocess.DEVNULL,
) -> CliRun:
    """Start ``python -m pixi_pack_src *argv`` in a new session.

    stdout and stderr go to files under ``logs`` (created); ``env`` is laid over the current
    environment (which the test isolation already scrubbed); ``tmpdir`` becomes ``TMPDIR``.
    """
    logs.mkdir(parents=True, exist_ok=True)
    n = len(list(logs.glob("run-*.err")))
    out_path, err_path = logs / f"run-{n}.out", logs / f"run-{n}.err"
    full_env = dict(os.environ)
    full_env.update(env or {})
    if tmpdir is not None:
        tmpdir.mkdir(parents=True, exist_ok=True)
        full_env["TMPDIR"] = str(tmpdir)
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(
            [*CLI, *argv],
            stdout=out,
            stderr=err,
            stdin=stdin,
            env=full_env,
            cwd=cwd,
            start_new_session=True,
        )
    return CliRun(proc, out_path, err_path, tuple(argv))


def run_cli(
    argv: Sequence[str],
    *,
    logs: Path,
    env: Mapping[str, str] | None = None,
    tmpdir: Path | None = None,
    timeout: float = 120.0,
) -> Finished:
    """Run the CLI as a subprocess to the end."""
    return start_cli(argv, logs=logs, env=env, tmpdir=tmpdir).wait(timeout)


def _wait_for(run: CliRun, condition: Condition, timeout: float, poll: float) -> bool:
    """True when ``condition`` held while the process still ran; False if it ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return run.running()
        if not run.running():
            return False
        time.sleep(poll)
    run.kill()
    raise AssertionError(
        f"the condition never came true within {timeout} s; stderr:\n" + run.stderr_so_far()[-3000:]
    )


def kill_when(
    run: CliRun, condition: Condition, *, timeout: float = 60.0, poll: float = 0.0005
) -> bool:
    """SIGKILL the process group as soon as ``condition()`` is true.

    Returns ``True`` when the kill hit a running process, ``False`` when the process had
    already ended (the moment was missed: the caller decides whether that is a failure).
    """
    hit = _wait_for(run, condition, timeout, poll)
    run.kill()
    return hit


def interrupt_when(
    run: CliRun, condition: Condition, *, timeout: float = 60.0, poll: float = 0.0005
) -> bool:
    """SIGINT the CLI process as soon as ``condition()`` is true (see :func:`kill_when`)."""
    hit = _wait_for(run, condition, timeout, poll)
    if hit:
        run.interrupt()
    return hit


# -- conditions ---------------------------------------------------------------------------------


def file_appears(directory: Path, pattern: str, *, min_size: int = 0) -> Condition:
    """True once a file or directory matching ``pattern`` exists below ``directory``
    (``pattern`` may contain ``/`` for nested matches: ``pixi-pack-src-*/wheel-builds``) and,
    for a file, holds at least ``min_size`` bytes."""
    parts = pattern.split("/")

    def check() -> bool:
        level = [directory]
        for part in parts:
            nxt: list[Path] = []
            for d in level:
                try:
                    children = list(d.iterdir())
                except OSError:
                    continue
                nxt.extend(c for c in children if fnmatch.fnmatchcase(c.name, part))
            if not nxt:
                return False
            level = nxt
        if min_size <= 0:
            return True
        for path in level:
            try:
                if path.stat().st_size >= min_size:
                    return True
            except OSError:
                continue
        return False

    return check


def writing_in(run: CliRun, directory: Path, *, min_size: int = 0) -> Condition:
    """True once the CLI process holds open a file in ``directory`` (named or not: an
    ``O_TMPFILE`` file shows as ``<directory>/#<inode> (deleted)`` in ``/proc/<pid>/fd``)
    of at least ``min_size`` bytes. Linux only."""
    fd_dir = Path(f"/proc/{run.pid}/fd")
    prefix = str(directory.resolve()) + "/"

    def check() -> bool:
        try:
            fds = list(fd_dir.iterdir())
        except OSError:
            return False
        for fd in fds:
            try:
                if str(fd.readlink()).startswith(prefix) and fd.stat().st_size >= min_size:
                    return True
            except OSError:
                continue
        return False

    return check


def server_saw(server: WorldServer, count: int, path: str = "*") -> Condition:
    """True once ``server`` has logged ``count`` GET requests for paths matching ``path``."""

    def check() -> bool:
        return server.hits(path) >= count

    return check


# -- what was left behind -----------------------------------------------------------------------


def litter(root: Path, *, patterns: Iterable[str] = TEMP_PATTERNS) -> list[str]:
    """Paths (relative, sorted) below ``root`` whose names look like the product's
    temporary files or directories."""
    pats = tuple(patterns)
    found: list[str] = []
    for directory, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            if any(fnmatch.fnmatchcase(name, p) for p in pats):
                found.append((Path(directory) / name).relative_to(root).as_posix())
    return sorted(found)


def listing(directory: Path) -> list[str]:
    """The names in ``directory`` (not recursive), sorted; ``[]`` if it does not exist."""
    try:
        return sorted(p.name for p in directory.iterdir())
    except FileNotFoundError:
        return []


Snapshot = dict[str, tuple[int, int, int]]


def snapshot(root: Path, *, skip: Iterable[Path] = ()) -> Snapshot:
    """Every path below ``root`` (links not followed): mode, and size and mtime of non-dirs.

    ``skip``: subtrees left out (e.g. the directory a test lets the product write).
    """
    skipped = {Path(s) for s in skip}
    out: Snapshot = {}
    for directory, dirs, files in os.walk(root):
        here = Path(directory)
        dirs[:] = [d for d in dirs if here / d not in skipped]
        for name in dirs:
            out[str(here / name)] = ((here / name).lstat().st_mode, 0, 0)
        for name in files:
            path = here / name
            if path in skipped:
                continue
            st = path.lstat()
            out[str(path)] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


def valid_cache_entries(cache_root: Path) -> list[str]:
    """sha256 names of the content-addressed entries of a ``--use-cache`` directory whose
    bytes really hash to their name (what a next run can use)."""
    valid: list[str] = []
    for path in sorted((cache_root / "pkgs" / "sha256").glob("*/*")):
        name = path.name
        if len(name) != 64 or not path.is_file():
            continue
        if hashlib.sha256(path.read_bytes()).hexdigest() == name:
            valid.append(name)
    return valid


# -- a redirecting server -----------------------------------------------------------------------


@dataclass(frozen=True)
class SeenRequest:
    path: str
    headers: dict[str, str]


@dataclass
class _RedirectState:
    target: str
    status: int
    seen: list[SeenRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _RedirectHandler(BaseHTTPRequestHandler):
    server: _RedirectHTTPServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        return None

    def do_GET(self) -> None:
        st = self.server.state
        with st.lock:
            st.seen.append(SeenRequest(self.path, {k.lower(): v for k, v in self.headers.items()}))
        self.send_response(st.status)
        self.send_header("Location", st.target.rstrip("/") + self.path)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_HEAD(self) -> None:
        self.do_GET()


class _RedirectHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: _RedirectState, host: str) -> None:
        super().__init__((host, 0), _RedirectHandler)
        self.state = state


class RedirectServer(ThreadedHTTPService):
    """``with RedirectServer(target_url) as r:`` every ``GET r.url + path`` is answered with
    ``status`` (302) and ``Location: target_url + path``; ``r.seen`` logs the requests."""

    def __init__(self, target: str, *, status: int = 302, host: str = "127.0.0.1") -> None:
        self._state = _RedirectState(target, status)
        self._host = host

    def make_server(self) -> _RedirectHTTPServer:
        return _RedirectHTTPServer(self._state, self._host)

    @property
    def seen(self) -> list[SeenRequest]:
        with self._state.lock:
            return list(self._state.seen)


# -- hostile conda packages -----------------------------------------------------------------------


def hostile_conda_package(
    directory: Path,
    *,
    name: str,
    paths: Sequence[Mapping[str, object]],
    members: Mapping[str, bytes] = MappingProxyType({}),
    symlinks: Mapping[str, str] = MappingProxyType({}),
    link_json: Mapping[str, object] | None = None,
    subdir: str = "linux-64",
) -> Path:
    """A ``.tar.bz2`` conda package ``<name>-1.0-0`` written member by member, with the
    ``info/paths.json`` entries given verbatim (what py-rattler links), regular ``members``
    and ``symlinks`` (name -> target). Nothing is checked: that is the point."""
    index = {
        "name": name,
        "version": "1.0",
        "build": "0",
        "build_number": 0,
        "subdir": subdir,
        "depends": [],
    }
    info: dict[str, bytes] = {
        "info/index.json": json.dumps(index).encode(),
        "info/paths.json": json.dumps({"paths": list(paths), "paths_version": 1}).encode(),
        "info/files": "".join(f"{p['_path']}\n" for p in paths).encode(),
    }
    if link_json is not None:
        info["info/link.json"] = json.dumps(link_json).encode()
    path = directory / f"{name}-1.0-0.tar.bz2"
    with tarfile.open(path, "w:bz2") as tf:
        for member, data in [*info.items(), *members.items()]:
            ti = tarfile.TarInfo(member)
            ti.size, ti.mtime, ti.mode = len(data), 1_700_000_000, 0o644
            tf.addfile(ti, io.BytesIO(data))
        for member, target in symlinks.items():
            ti = tarfile.TarInfo(member)
            ti.type, ti.linkname, ti.mtime = tarfile.SYMTYPE, target, 1_700_000_000
            tf.addfile(ti)
    return path


def hardlink_entry(path: str, data: bytes) -> dict[str, object]:
    """A ``paths.json`` entry for a regular file."""
    return {
        "_path": path,
        "path_type": "hardlink",
        "sha256": hashlib.sha256(data).hexdigest(),
        "size_in_bytes": len(data),
    }


def _index_json(package: Path) -> dict[str, Any]:
    """``info/index.json`` of a ``.tar.bz2`` or a ``.conda`` (its ``info-*.tar.zst``)."""
    if package.name.endswith(".conda"):
        import zstandard

        with zipfile.ZipFile(package) as zf:
            name = next(n for n in zf.namelist() if n.startswith("info-"))
            raw = zstandard.ZstdDecompressor().decompressobj().decompress(zf.read(name))
        with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
            fh = tf.extractfile("info/index.json")
            assert fh is not None
            return dict(json.loads(fh.read()))
    with tarfile.open(package) as tf:
        fh = tf.extractfile("info/index.json")
        assert fh is not None
        return dict(json.loads(fh.read()))


def add_package_to_pack(pack_dir: Path, package: Path) -> str:
    """Put ``package`` into a pack directory as an attacker would: its record in the
    subdir's ``repodata.json`` and ``pixi-pack-src.json`` made consistent with its bytes.
    Returns the archive path."""
    index = _index_json(package)
    data = package.read_bytes()
    subdir = index["subdir"]
    arcname = f"channel/{subdir}/{package.name}"
    (pack_dir / arcname).write_bytes(data)
    repodata_path = pack_dir / "channel" / subdir / "repodata.json"
    repodata = json.loads(repodata_path.read_bytes())
    table = "packages" if package.name.endswith(".tar.bz2") else "packages.conda"
    repodata[table][package.name] = {
        **index,
        "sha256": hashlib.sha256(data).hexdigest(),
        "md5": hashlib.md5(data, usedforsecurity=False).hexdigest(),
        "size": len(data),
    }
    repodata_path.write_text(json.dumps(repodata, indent=2, sort_keys=True) + "\n")
    env_path = pack_dir / "environment.yml"
    if env_path.is_file():  # named there too, so that the pack stays consistent
        import yaml

        env = yaml.safe_load(env_path.read_text())
        env["dependencies"].insert(0, f"{index['name']}={index['version']}={index['build']}")
        env_path.write_text(yaml.safe_dump(env, sort_keys=False, default_flow_style=False))
    prov_path = pack_dir / "pixi-pack-src.json"
    if prov_path.is_file():
        prov = json.loads(prov_path.read_bytes())
        for entry in prov["generated"]:
            if entry["path"] in (f"channel/{subdir}/repodata.json", "environment.yml"):
                rd = (pack_dir / entry["path"]).read_bytes()
                entry.update(sha256=hashlib.sha256(rd).hexdigest(), size=len(rd))
        prov["artifacts"].append(
            {
                "path": arcname,
                "kind": "conda",
                "name": index["name"],
                "version": index["version"],
                "build": index["build"],
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
                "origin": {"type": "injected", "file": package.name},
            }
        )
        prov["artifacts"].sort(key=lambda a: a["path"])
        prov_path.write_text(json.dumps(prov, indent=2, sort_keys=True) + "\n")
    return arcname


def many_members_tar(path: Path, count: int) -> Path:
    """A tar of ``pixi-pack.json`` and ``count`` empty files (``pypi/fNNNNNNN.whl``), written
    from one patched ustar header (about 0.5 s per 100,000 members)."""
    template = bytearray(_ustar_header("pypi/f00000000.whl", 0))
    name_at = template.index(b"f00000000")
    with path.open("wb") as fh:
        meta = b'{"version": "1", "platform": "linux-64"}\n'
        fh.write(_ustar_header("pixi-pack.json", len(meta)))
        fh.write(meta + bytes(-len(meta) % 512))
        for i in range(count):
            block = bytearray(template)
            block[name_at : name_at + 9] = f"f{i:08d}".encode()
            block[148:156] = b"        "
            block[148:156] = f"{sum(block):06o}\x00 ".encode()
            fh.write(block)
        fh.write(bytes(1024))
    return path


def _ustar_header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, 1_700_000_000, 0o644
    return info.tobuf(tarfile.USTAR_FORMAT)


# -- mutations for property-based tests (hypothesis) --------------------------------------------


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(
        ["", "..", "/", "../../../etc/passwd", "file:///etc/passwd", "~", "\x00", "é" * 300]
    ),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _nodes(tree: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path (keys and indexes) into ``tree``."""
    out = [path]
    if isinstance(tree, dict):
        for key, value in tree.items():
            out += _nodes(value, (*path, key))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            out += _nodes(value, (*path, i))
    return out


def _parent(tree: Any, path: tuple[Any, ...]) -> Any:
    for step in path[:-1]:
        tree = tree[step]
    return tree


def mutate_tree(tree: Any, data: st.DataObject) -> Any:
    """One mutation of a parsed YAML/JSON ``tree`` drawn from ``data``: a node replaced by
    another type, deleted, renamed, duplicated or wrapped, or the ``version`` changed."""
    nodes = _nodes(tree)
    path = data.draw(st.sampled_from(nodes), label="node")
    op = data.draw(
        st.sampled_from(["replace", "delete", "rename", "duplicate", "wrap", "version"]),
        label="op",
    )
    if op == "version" and isinstance(tree, dict):
        tree["version"] = data.draw(SCALARS | st.integers(0, 12), label="version")
        return tree
    if not path:
        return data.draw(VALUES, label="root") if op == "replace" else tree
    parent, last = _parent(tree, path), path[-1]
    if op == "replace":
        parent[last] = data.draw(VALUES, label="value")
    elif op == "delete":
        del parent[last]
    elif op == "rename" and isinstance(parent, dict):
        parent[data.draw(st.text(max_size=12), label="key")] = parent.pop(last)
    elif op == "duplicate" and isinstance(parent, list):
        parent.insert(last, copy.deepcopy(parent[last]))
    elif op == "wrap":
        parent[last] = [parent[last]] if not isinstance(parent[last], list) else {"x": parent[last]}
    return tree


def mutate_bytes(raw: bytes, data: st.DataObject) -> bytes:
    """One mutation of ``raw`` drawn from ``data``: cut short, bytes inserted, a line
    duplicated or dropped."""
    op = data.draw(st.sampled_from(["cut", "insert", "dup-line", "drop-line"]), label="byte-op")
    at = data.draw(st.integers(0, len(raw)), label="at")
    if op == "cut":
        return raw[:at]
    if op == "insert":
        return raw[:at] + data.draw(st.binary(min_size=1, max_size=16), label="bytes") + raw[at:]
    lines = raw.splitlines(keepends=True)
    i = min(at, len(lines) - 1)
    if op == "dup-line":
        return b"".join([*lines[: i + 1], *lines[i:]])
    return b"".join([*lines[:i], *lines[i + 1 :]])
