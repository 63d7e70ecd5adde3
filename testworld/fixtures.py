"""pytest plugin: the offline world as fixtures (``pytest_plugins = ["testworld.fixtures"]``).

Session-scoped (built once, disk-cached across sessions):

- ``world`` -> :class:`testworld.layout.World`: the default world (read-only!).
- ``world_server`` -> :class:`testworld.server.WorldServer` serving ``world.root``.

Function-scoped:

- ``channel_server`` -> the session server, with faults, auth, latency and the request log
  cleared before and after the test. ``channel_server.url + "/channel"`` is the channel.
- ``lock_factory(environments=None, **kw) -> WrittenLock``: a lock in ``tmp_path`` solved
  from the world and pointing at ``channel_server`` (``served=False``: ``file://``).
- ``workspace_factory(environments=None, **kw) -> Workspace``: ``pixi.toml`` + ``pixi.lock``
  (+ local trees) in a fresh directory under ``tmp_path``.

``environments`` defaults to ``{"default": Env(conda=("python", "chain-a"))}``; it also
accepts ``{"name": ["spec", ...]}`` as shorthand for ``Env(conda=(...))``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol

import pytest

from testworld.catalog import default_world
from testworld.layout import World
from testworld.locks import CondaLocation, Env, Plat, WrittenLock, write_lock
from testworld.server import WorldServer
from testworld.workspace import Workspace, write_workspace

EnvsArg = Mapping[str, Env | Sequence[str]] | None
DEFAULT_ENVS: dict[str, Env] = {"default": Env(conda=("python", "chain-a"))}


def as_envs(environments: EnvsArg) -> dict[str, Env]:
    """Normalise the shorthand ``{"env": ["spec", ...]}`` to ``{"env": Env(...)}``."""
    if environments is None:
        return dict(DEFAULT_ENVS)
    return {
        name: env if isinstance(env, Env) else Env(conda=tuple(env))
        for name, env in environments.items()
    }


def as_platforms(platforms: Sequence[Plat | str]) -> tuple[Plat, ...]:
    return tuple(p if isinstance(p, Plat) else Plat(p) for p in platforms)


class LockFactory(Protocol):
    def __call__(
        self,
        environments: EnvsArg = None,
        *,
        platforms: Sequence[Plat | str] = ("linux-64",),
        patches: Mapping[str, Sequence[str]] | None = None,
        conda_locations: Mapping[str, CondaLocation] | None = None,
        served: bool = True,
        path: Path | None = None,
    ) -> WrittenLock: ...


class WorkspaceFactory(Protocol):
    def __call__(
        self,
        environments: EnvsArg = None,
        *,
        platforms: Sequence[Plat | str] = ("linux-64",),
        patches: Mapping[str, Sequence[str]] | None = None,
        conda_locations: Mapping[str, CondaLocation] | None = None,
        local_paths: Mapping[str, Path] | None = None,
        served: bool = True,
        name: str = "world-workspace",
    ) -> Workspace: ...


@pytest.fixture(scope="session")
def world() -> World:
    """The default world (see testworld/catalog.py). Never modify it."""
    return default_world()


@pytest.fixture(scope="session")
def world_server(world: World) -> Iterator[WorldServer]:
    with WorldServer(world.root) as server:
        yield server


def _reset(server: WorldServer) -> None:
    server.clear_faults()
    server.latency = 0.0
    server.reset_log()


@pytest.fixture
def channel_server(world_server: WorldServer) -> Iterator[WorldServer]:
    """The session server, clean: no faults, no auth, no latency, empty request log."""
    _reset(world_server)
    yield world_server
    _reset(world_server)


@pytest.fixture
def lock_factory(world: World, channel_server: WorldServer, tmp_path: Path) -> LockFactory:
    counter = itertools.count()

    def make(
        environments: EnvsArg = None,
        *,
        platforms: Sequence[Plat | str] = ("linux-64",),
        patches: Mapping[str, Sequence[str]] | None = None,
        conda_locations: Mapping[str, CondaLocation] | None = None,
        served: bool = True,
        path: Path | None = None,
    ) -> WrittenLock:
        target = path or tmp_path / f"lock-{next(counter)}" / "pixi.lock"
        return write_lock(
            target,
            world,
            as_envs(environments),
            platforms=as_platforms(platforms),
            channel_url=world.channel_url(channel_server.url if served else None),
            patches=patches,
            conda_locations=conda_locations,
        )

    return make


@pytest.fixture
def workspace_factory(
    world: World, channel_server: WorldServer, tmp_path: Path
) -> WorkspaceFactory:
    counter = itertools.count()

    def make(
        environments: EnvsArg = None,
        *,
        platforms: Sequence[Plat | str] = ("linux-64",),
        patches: Mapping[str, Sequence[str]] | None = None,
        conda_locations: Mapping[str, CondaLocation] | None = None,
        local_paths: Mapping[str, Path] | None = None,
        served: bool = True,
        name: str = "world-workspace",
    ) -> Workspace:
        root = tmp_path / f"workspace-{next(counter)}"
        return write_workspace(
            root,
            world,
            as_envs(environments),
            platforms=as_platforms(platforms),
            channel_url=world.channel_url(channel_server.url if served else None),
            patches=patches,
            conda_locations=conda_locations,
            local_paths=local_paths,
            name=name,
        )

    return make
