"""Workspaces for the stories several test modules tell (built with the world's factories).

- :func:`sdist_workspace` - python, an sdist from the served index, a local sdist that needs
  a patch and an environment variable (declared as overrides in the manifest), a source tree
  and a git repository at an exact commit (issue: PyPI sources built into wheels).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from testworld.fixtures import WorkspaceFactory
from testworld.gitrepo import make_git_repo
from testworld.layout import World
from testworld.locks import Env
from testworld.pypi import (
    FLAVOR_ENV,
    FLAVOR_PATCH,
    git_entry,
    index_entry,
    local_entry,
    tree_entry,
)
from testworld.workspace import Workspace

SDIST_MODULES = ("worldpkg_a", "worldpkg_c", "worldpkg_flavor", "worldpkg_local")
SDIST_GREETINGS = (
    "hello from worldpkg-a 1.0.0",
    "hello from worldpkg-c 0.5.0",
    "hello from worldpkg-flavor 1.0.0 (vanilla)",
)


def sdist_workspace(
    world: World,
    workspace_factory: WorkspaceFactory,
    server_url: str,
    tmp_path: Path,
    *,
    conda: tuple[str, ...] = ("python",),
    platforms: tuple[str, ...] = ("linux-64",),
    overrides: bool = True,
) -> Workspace:
    repo = make_git_repo(world.project_dir("worldpkg-c"), tmp_path / "repos" / "worldpkg-c.git")
    flavor, flavor_paths = local_entry(world, "worldpkg-flavor", kind="sdist")
    tree, tree_paths = tree_entry(world)
    ws = workspace_factory(
        {
            "default": Env(
                conda=conda,
                pypi=(
                    index_entry(world, "worldpkg-a", server_url, kind="sdist"),
                    flavor,
                    tree,
                    git_entry("worldpkg-c", repo, "0.5.0"),
                ),
            )
        },
        platforms=platforms,
        local_paths={**flavor_paths, **tree_paths},
    )
    if overrides:
        (ws.root / "patches").mkdir()
        shutil.copy(world.patch_path(FLAVOR_PATCH), ws.root / "patches" / FLAVOR_PATCH)
        with ws.manifest.open("a") as fh:
            fh.write(
                "\n[tool.pixi-pack-src.overrides.worldpkg_flavor]\n"
                f'env = {{ {FLAVOR_ENV} = "vanilla" }}\n'
                f'patches = ["patches/{FLAVOR_PATCH}"]\n'
            )
    return ws
