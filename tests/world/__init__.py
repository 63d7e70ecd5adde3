"""The offline test world: real packages, channels, servers, locks and a stand-in pixi.

Shared by the tests, the demo (``python -m tests.world.demo``) and the benchmarks. Nothing here
touches the network beyond 127.0.0.1; expensive artifacts are cached on disk by input hash in
``$WORLD_CACHE_DIR`` or ``<repo>/.cache/world`` (:mod:`tests.world.cache`).

What to import for what
-----------------------

In tests, use the pytest fixtures (``tests/world/fixtures.py``, loaded by tests/conftest.py):
``world`` (session, the default :class:`~tests.world.layout.World`), ``world_server``
(session :class:`~tests.world.server.WorldServer` serving it), ``channel_server``
(function-scoped view of it with faults/log cleared), ``lock_factory`` and
``workspace_factory`` (write a lock / a ``pixi.toml`` + ``pixi.lock`` under ``tmp_path``).

Library (for the demo, benchmarks and special tests):

- :mod:`tests.world.catalog` - ``default_world() -> World`` (the standard content, listed in
  the module docstring); ``PORTABLE_SPECS`` (solvable on all five platforms);
  ``build_world(name, specs, archives, pypi=...) -> World`` for custom worlds.
- :mod:`tests.world.layout` - ``World`` (``root``, ``channel_dir``, ``packages``, ``pypi``,
  ``package(name, subdir="linux-64", version=None)``, ``archive_path(pkg)``,
  ``channel_url(server_url=None)``, ``dist(name, kind)``, ``copy_to(dest)``) and ``PypiDist``.
- :mod:`tests.world.packages` - ``PackageSpec`` + ``assemble(spec, out_dir) -> Path`` (fast,
  deterministic), ``build_recipe(recipe_text, ...) -> list[Path]`` (cached rattler-build),
  ``describe(archive) -> BuiltPackage``, ``file_hashes(path)``.
- :mod:`tests.world.python_pkg` / :mod:`tests.world.recipes` - the real python, relocme
  (prefix placeholders), libgreet (gcc shared lib + CLI), worldcli (entry point), pip.
- :mod:`tests.world.channel` - ``make_channel(dir, archives)``, ``index_channel(dir)``,
  ``read_repodata``, ``channel_records``, ``run(coro)``.
- :mod:`tests.world.locks` - ``write_lock(path, world, {"env": Env(...)}, platforms=[Plat(...)],
  channel_url=..., patches=..., conda_locations=...) -> WrittenLock``; ``Env``, ``Plat``,
  ``PypiEntry``, ``SourceEntry``; ``solve(channel, specs, subdir)``.
- :mod:`tests.world.workspace` - ``write_workspace(root, world, envs, ...) -> Workspace``,
  ``write_source_package(dir, name, ...)``.
- :mod:`tests.world.install` - ``install_specs(world, specs, prefix)``,
  ``install_records(records, prefix)``, ``run_in(prefix, argv)``.
- :mod:`tests.world.server` - ``WorldServer(root)`` with fault knobs.
"""
