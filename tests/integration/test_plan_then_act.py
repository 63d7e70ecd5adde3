"""Plan, then act: ``pack`` executes the plan ``inspect`` prints.

- A pack that must fail says so before the first byte is downloaded: the test server sees no
  request, and ``inspect`` gives the same refusal with exit code 1.
- Every refusal is reported together.
- On world workspaces, what ``pack --json`` reports it did to every item is what
  ``inspect --json`` said it would do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from testworld.cli import run_json
from testworld.fixtures import WorkspaceFactory
from testworld.layout import World
from testworld.locks import Env, Plat, PypiEntry, SourceEntry
from testworld.pixi_standin import StandIn
from testworld.pixi_standin.workspaces import write_package
from testworld.pypi import index_entry, local_entry, tree_entry
from testworld.scenarios import sdist_workspace
from testworld.server import WorldServer
from testworld.workspace import Workspace

from tests.unit.test_json_docs import check_keys

pytestmark = pytest.mark.integration

CONDA = ("python", "chain-a")


def _errors(err: str) -> list[str]:
    """The refusal as printed: the ``error:`` line, its listed reasons and its ``help:``."""
    return [line for line in err.splitlines() if line.startswith(("error:", "help:", "  - "))]


def _remote_tree(server: WorldServer) -> PypiEntry:
    # a remote location that is neither a wheel nor an sdist (pixi can lock such a thing)
    return PypiEntry("remote-pkg", f"{server.url}/pypi/remote-pkg/")


def _unpinned(tmp_path: Path) -> dict[str, Path]:
    native = write_package(
        tmp_path / "native", "native", noarch=False, run=("chain-a",), backend_version="*"
    )
    return {"src/native": native}


def _workspace(
    case: str, factory: WorkspaceFactory, server: WorldServer, tmp_path: Path
) -> tuple[Workspace, list[str]]:
    """A workspace with one (or every) reason to fail, and the options that go with it."""
    pypi: tuple[PypiEntry, ...] = ()
    sources: tuple[SourceEntry, ...] = ()
    local: dict[str, Path] = {}
    extra: list[str] = []
    if case in ("remote-tree", "all"):
        pypi = (_remote_tree(server),)
    if case in ("unpinned-backend", "all"):
        sources = (SourceEntry("native", "src/native", depends=("chain-a",)),)
        local = _unpinned(tmp_path)
    if case in ("missing-inject", "all"):
        extra = ["-i", str(tmp_path / "nope.conda")]
    ws = factory(
        {"default": Env(conda=CONDA, pypi=pypi, sources=sources)},
        platforms=[Plat("linux-64")],
        local_paths=local,
    )
    return ws, extra


@pytest.mark.parametrize(
    ("case", "pack_code", "message"),
    [
        (
            "remote-tree",
            1,
            "error: PyPI package remote-pkg at {url}/pypi/remote-pkg/: a remote location that "
            "is neither a wheel nor an sdist is not supported",
        ),
        (
            "unpinned-backend",
            4,
            "error: the build backend pixi-build-rattler-build of native (src/native) is not "
            "pinned (version '*')",
        ),
        ("missing-inject", 2, "error: --inject {tmp}/nope.conda: no such file"),
        ("all", 1, "error: a pack would fail for 3 reasons:"),
    ],
)
def test_a_pack_that_must_fail_downloads_nothing(
    case: str,
    pack_code: int,
    message: str,
    workspace_factory: WorkspaceFactory,
    channel_server: WorldServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ws, extra = _workspace(case, workspace_factory, channel_server, tmp_path)
    out = tmp_path / "env.tar"
    argv = [str(ws.root), "-p", "linux-64", *extra]

    channel_server.reset_log()
    code, doc, inspect_err = run_json(capsys, "inspect", *argv)
    assert code == 1, inspect_err
    assert doc["problems"]  # the document is still printed
    code, _, pack_err = run_json(capsys, "pack", *argv, "-o", str(out))
    assert code == pack_code, pack_err

    assert channel_server.requests == []  # not one request: the refusal came first
    assert not out.exists()
    refusal = _errors(pack_err)
    assert refusal == _errors(inspect_err)  # the same refusal, word for word
    first = message.format(url=channel_server.url, tmp=tmp_path)
    assert refusal[0].startswith(first), pack_err
    assert sum(line.startswith("error:") for line in pack_err.splitlines()) == 1
    if case == "all":  # every reason, each once
        assert len([line for line in refusal if line.startswith("  - ")]) == 3


def test_an_empty_environment_names_the_ones_with_packages(
    workspace_factory: WorkspaceFactory,
    channel_server: WorldServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ws = workspace_factory(
        {"default": Env(conda=CONDA), "empty": Env()},
        platforms=[Plat("linux-64"), Plat("win-64")],
    )
    channel_server.reset_log()
    for command in ("inspect", "pack"):
        extra = ["-o", str(tmp_path / "e-{platform}.tar")] if command == "pack" else []
        code, _, err = run_json(
            capsys, command, str(ws.root), "-e", "empty", "--all-platforms", *extra
        )
        assert code == 1, err
        assert (
            "error: environment 'empty' of pixi.lock has no packages on any platform; "
            "with packages: default (linux-64, win-64)"
        ) in err
    assert channel_server.requests == []
    assert list(tmp_path.glob("e-*")) == []


def test_an_unwritable_output_is_refused_before_downloading(
    workspace_factory: WorkspaceFactory,
    channel_server: WorldServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ws = workspace_factory({"default": Env(conda=CONDA)}, platforms=[Plat("linux-64")])
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    channel_server.reset_log()
    code, _, err = run_json(capsys, "pack", str(ws.root), "-o", str(blocker / "env.tar"))
    assert code == 2, err
    assert f"error: cannot write {blocker / 'env.tar'}: {blocker} is not a directory" in err
    assert channel_server.requests == []


# -- inspect's items are what pack did ---------------------------------------------------------

_ITEM_KEYS = ("action", "kind", "name", "version", "source")


def _planned(doc: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {
        p["platform"]["name"]: [{k: i[k] for k in _ITEM_KEYS} for i in p["items"]]
        for p in doc["platforms"]
    }


def _done(doc: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {p["name"]: p["items"] for p in doc["platforms"]}


def assert_pack_did_what_inspect_said(
    capsys: pytest.CaptureFixture[str], root: Path, out: Path, *argv: str
) -> dict[str, Any]:
    icode, idoc, ierr = run_json(capsys, "inspect", str(root), *argv)
    pcode, pdoc, perr = run_json(capsys, "pack", str(root), "-o", str(out), *argv)
    assert (icode, pcode) == (0, 0), ierr + perr
    assert _done(pdoc) == _planned(idoc)
    # both documents have the keys docs/json.md names, on a world lock too
    check_keys("inspect: an item", [i for p in idoc["platforms"] for i in p["items"]])
    if idoc["builds"]:
        check_keys("inspect: a build", idoc["builds"])
    check_keys("pack: a platform", pdoc["platforms"])
    check_keys("pack: an item", [i for p in pdoc["platforms"] for i in p["items"]])
    check_keys("pack: an artifact", [a for p in pdoc["platforms"] for a in p["artifacts"]])
    return pdoc


def test_world_workspaces_pack_what_inspect_shows(
    world: World,
    channel_server: WorldServer,
    workspace_factory: WorkspaceFactory,
    fake_pixi: StandIn,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # conda downloads and local copies, wheels from the index and a local wheel, an sdist
    # and a source tree built into wheels, a noarch and a native source package (pixi build)
    wheel_a = index_entry(world, "worldpkg-a", channel_server.url)
    local_c, local_paths = local_entry(world, "worldpkg-c")
    tree, tree_paths = tree_entry(world)
    sdist_b = index_entry(world, "worldpkg-b", channel_server.url, kind="sdist")
    shared = write_package(tmp_path / "shared", "shared")
    native = write_package(tmp_path / "native", "native", noarch=False, run=("chain-a",))
    ws = workspace_factory(
        {
            "default": Env(
                conda=(*CONDA, "pip"),
                pypi=(wheel_a, local_c, tree, sdist_b),
                sources=(
                    SourceEntry("shared", "src/shared", noarch=True),
                    SourceEntry("native", "src/native", depends=("chain-a",)),
                ),
            )
        },
        platforms=[Plat("linux-64"), Plat("lx", subdir="linux-64")],
        conda_locations={"chain-b": "relative", "chain-c": "file"},
        local_paths={**local_paths, **tree_paths, "src/shared": shared, "src/native": native},
    )
    doc = assert_pack_did_what_inspect_said(
        capsys, ws.root, tmp_path / "out-{platform}.tar", "--all-platforms"
    )
    actions = {i["action"] for p in doc["platforms"] for i in p["items"]}
    assert actions == {"download", "copy", "build-conda", "build-wheel"}
    # skips are carried out as skips
    doc = assert_pack_did_what_inspect_said(
        capsys,
        ws.root,
        tmp_path / "skip-{platform}.tar",
        "--all-platforms",
        "--ignore-pypi-non-wheel",
    )
    skipped = sorted(
        {i["name"] for p in doc["platforms"] for i in p["items"] if i["action"] == "skip"}
    )
    assert skipped == ["worldpkg-b", "worldpkg-local"]


def test_the_sdist_scenario_packs_what_inspect_shows(
    world: World,
    channel_server: WorldServer,
    workspace_factory: WorkspaceFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ws = sdist_workspace(world, workspace_factory, channel_server.url, tmp_path)
    doc = assert_pack_did_what_inspect_said(capsys, ws.root, tmp_path / "env.tar")
    built = sorted(i["name"] for i in doc["platforms"][0]["items"] if i["action"] == "build-wheel")
    assert built == ["worldpkg-a", "worldpkg-c", "worldpkg-flavor", "worldpkg-local"]
