"""Build requirements installed by uv from the lock's indexes and find-links (issue 13).

Each case packs a workspace whose source tree needs build requirements from the
build-requirements index (testworld/buildreqs.py, on its own 127.0.0.1 server), unpacks the
archive and imports the package, which says which versions it was built with. The server
records every request: nothing outside the lock's indexes and find-links is asked for.
"""

from __future__ import annotations

import ast
import base64
import contextlib
import json
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from testworld import keyring_backend
from testworld.buildreqs import BuildreqIndex, needing_project, write_buildreq_index
from testworld.cli import run_json
from testworld.fixtures import WorkspaceFactory
from testworld.locks import Env, PypiEntry
from testworld.server import WorldServer

from pixi_pack_src.cli import run

pytestmark = pytest.mark.integration

Urls = Callable[[BuildreqIndex, str], tuple[str, ...]]


@pytest.fixture(scope="module")
def buildreqs(tmp_path_factory: pytest.TempPathFactory) -> BuildreqIndex:
    return write_buildreq_index(tmp_path_factory.mktemp("buildreqs"))


@pytest.fixture
def buildreq_server(buildreqs: BuildreqIndex) -> Iterator[WorldServer]:
    with WorldServer(buildreqs.root) as server:
        yield server


@dataclass(frozen=True)
class Case:
    requires: tuple[str, ...]
    indexes: Urls
    built_with: dict[str, str]  # module -> version the backend imported
    build_requires: list[str]  # provenance: name==version installed
    requested: set[str]  # every path asked of the server
    find_links: Urls = field(default=lambda i, u: ())


CASES = {
    "backtracking": Case(
        requires=("buildreq-a", "buildreq-c"),
        indexes=lambda i, u: (i.simple(u),),
        built_with={"buildreq_a": "1.0", "buildreq_b": "1.0", "buildreq_c": "1.0"},
        build_requires=["buildreq-a==1.0", "buildreq-b==1.0", "buildreq-c==1.0"],
        requested={
            "/simple/buildreq-a/",
            "/simple/buildreq-b/",
            "/simple/buildreq-c/",
            "/files/buildreq_a-1.0-py3-none-any.whl",
            "/files/buildreq_a-2.0-py3-none-any.whl",
            "/files/buildreq_b-1.0-py3-none-any.whl",
            "/files/buildreq_b-2.0-py3-none-any.whl",
            "/files/buildreq_c-1.0-py3-none-any.whl",
        },
    ),
    "sdist-only": Case(
        requires=("buildreq-sdistonly",),
        indexes=lambda i, u: (i.simple(u),),
        built_with={"buildreq_sdistonly": "1.0"},
        build_requires=["buildreq-sdistonly==1.0"],
        requested={"/simple/buildreq-sdistonly/", "/files/buildreq_sdistonly-1.0.tar.gz"},
    ),
    "pep691-json": Case(
        requires=("buildreq-a>=2",),
        indexes=lambda i, u: (i.json(u),),
        built_with={"buildreq_a": "2.0", "buildreq_b": "2.0"},
        build_requires=["buildreq-a==2.0", "buildreq-b==2.0"],
        requested={
            "/json/buildreq-a/",
            "/json/buildreq-b/",
            "/files/buildreq_a-2.0-py3-none-any.whl",
            "/files/buildreq_b-2.0-py3-none-any.whl",
        },
    ),
    "find-links": Case(
        requires=("buildreq-linked", "buildreq-c"),
        indexes=lambda i, u: (i.simple(u),),
        find_links=lambda i, u: (i.links(u),),
        built_with={"buildreq_linked": "1.0", "buildreq_c": "1.0", "buildreq_b": "1.0"},
        build_requires=["buildreq-b==1.0", "buildreq-c==1.0", "buildreq-linked==1.0"],
        requested={
            "/links/",
            "/simple/buildreq-linked/",
            "/simple/buildreq-b/",
            "/simple/buildreq-c/",
            "/files/buildreq_linked-1.0-py3-none-any.whl",
            "/files/buildreq_b-1.0-py3-none-any.whl",
            "/files/buildreq_c-1.0-py3-none-any.whl",
        },
    ),
}


def _workspace(
    workspace_factory: WorkspaceFactory,
    tmp_path: Path,
    requires: tuple[str, ...],
    modules: tuple[str, ...],
    indexes: tuple[str, ...],
    find_links: tuple[str, ...] = (),
) -> Path:
    project = needing_project(tmp_path / "src" / "needs-x", "needs-x", requires, modules)
    ws = workspace_factory(
        {
            "default": Env(
                conda=("python",),
                pypi=(PypiEntry(name="needs-x", location="./needs-x"),),
                indexes=indexes,
                find_links=find_links,
            )
        },
        local_paths={"needs-x": project},
    )
    return ws.root


def _provenance(tar: Path) -> dict[str, Any]:
    with tarfile.open(tar) as tf:
        fh = tf.extractfile("pixi-pack-src.json")
        assert fh is not None
        doc: dict[str, Any] = json.load(fh)
    return doc


def _built_with(archive: Path, target: Path) -> dict[str, str]:
    assert run(["-q", "unpack", str(archive), "-o", str(target)]) == 0
    python = target / "env" / "bin" / "python"
    shown = subprocess.run(
        [str(python), "-c", "import needs_x; print(needs_x.built_with())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    value = ast.literal_eval(shown.strip())
    assert isinstance(value, dict)
    return {str(k): str(v) for k, v in value.items()}


@pytest.mark.parametrize("name", list(CASES))
def test_build_requirements_resolve_build_and_install_after_unpack(
    name: str,
    buildreqs: BuildreqIndex,
    buildreq_server: WorldServer,
    channel_server: WorldServer,
    workspace_factory: WorkspaceFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    case = CASES[name]
    url = buildreq_server.url
    root = _workspace(
        workspace_factory,
        tmp_path,
        case.requires,
        tuple(case.built_with),
        case.indexes(buildreqs, url),
        case.find_links(buildreqs, url),
    )
    out = tmp_path / "env.tar"
    code, doc, err = run_json(capsys, "pack", str(root), "-o", str(out))
    assert code == 0, err
    assert doc["stats"]["built"] == 1
    (wheel,) = [a for a in _provenance(out)["artifacts"] if a["kind"] == "wheel"]
    assert wheel["path"] == "pypi/needs_x-1.0-py3-none-any.whl"
    assert wheel["builder"]["build-requires"] == case.build_requires
    assert wheel["builder"]["isolated"] is True
    assert {r.path for r in buildreq_server.requests} == case.requested
    assert _built_with(out, tmp_path / "target") == case.built_with


def test_an_unsatisfiable_build_requirement_is_one_error_line(
    buildreqs: BuildreqIndex,
    buildreq_server: WorldServer,
    channel_server: WorldServer,
    workspace_factory: WorkspaceFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    index = buildreqs.simple(buildreq_server.url)
    requires = ("buildreq-a>=2", "buildreq-c")  # a 2.0 needs b>=2, c needs b<2
    root = _workspace(workspace_factory, tmp_path, requires, (), (index,))
    out = tmp_path / "env.tar"
    code, _, err = run_json(capsys, "pack", str(root), "-o", str(out))
    assert code == 4
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: building a wheel of needs-x (./needs-x) failed: cannot install the build "
        f"requirements buildreq-a>=2, buildreq-c from {index} (uv's message is in the build log)"
    ]
    log_file = Path(err.split("  log: ", 1)[1].splitlines()[0])
    text = log_file.read_text()
    assert "No solution found when resolving dependencies" in text
    assert "all versions of buildreq-c depend on buildreq-b<2" in text
    assert not out.exists()


@pytest.mark.parametrize("store", ["auth-file", "keyring"])
def test_index_credentials_come_from_our_stores_and_are_never_shown(
    store: str,
    buildreqs: BuildreqIndex,
    buildreq_server: WorldServer,
    channel_server: WorldServer,
    workspace_factory: WorkspaceFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A private index behind basic auth; the credential is in ``--auth-file`` or where
    ``pixi auth login`` puts it (the OS keyring, here a file-backed backend)."""
    secret = "s3cr3t-build-index"
    token = base64.b64encode(f"builder:{secret}".encode()).decode()
    buildreq_server.require_auth("/private/", f"Basic {token}")
    credential = {"BasicHTTP": {"username": "builder", "password": secret}}
    host = f"127.0.0.1:{buildreq_server.port}"
    index = buildreqs.private(buildreq_server.url)
    root = _workspace(
        workspace_factory, tmp_path, ("buildreq-private",), ("buildreq_private",), (index,)
    )
    out = tmp_path / "env.tar"
    argv = ["-vvv", "pack", str(root), "-o", str(out)]
    backend: keyring_backend.JsonFileKeyring | None = None
    with contextlib.ExitStack() as stack:
        if store == "auth-file":
            auth_file = tmp_path / "credentials.json"
            auth_file.write_text(json.dumps({host: credential}))
            argv += ["--auth-file", str(auth_file)]
        else:
            ring = tmp_path / "keyring.json"
            keyring_backend.store(ring, {host: credential})
            backend = stack.enter_context(keyring_backend.use_file_keyring(ring))
        code, doc, err = run_json(capsys, *argv)
    assert code == 0, err
    if backend is not None:
        assert ("rattler", host) in backend.reads
    assert _built_with(out, tmp_path / "target") == {"buildreq_private": "1.0"}
    answered = {(r.path, r.status) for r in buildreq_server.requests}
    assert ("/private/simple/buildreq-private/", 200) in answered
    assert ("/private/files/buildreq_private-1.0-py3-none-any.whl", 200) in answered
    assert secret not in err + json.dumps(doc)
    with tarfile.open(out) as tf:
        for member in tf.getmembers():
            fh = tf.extractfile(member)
            assert fh is None or secret.encode() not in fh.read()
