"""The offline test world: real packages, channels, servers, locks and a stand-in pixi.

Shared by the tests, the demo (``python -m testworld.demo``) and the benchmarks. Nothing here
touches the network beyond 127.0.0.1; expensive artifacts are cached on disk by input hash in
``$WORLD_CACHE_DIR`` or ``<repo>/.cache/world`` (:mod:`testworld.cache`).

What to import for what
-----------------------

In tests, use the pytest fixtures (``testworld/fixtures.py``, loaded by tests/conftest.py):
``world`` (session, the default :class:`~testworld.layout.World`), ``world_server``
(session :class:`~testworld.server.WorldServer` serving it), ``channel_server``
(function-scoped view of it with faults/log cleared), ``lock_factory`` and
``workspace_factory`` (write a lock / a ``pixi.toml`` + ``pixi.lock`` under ``tmp_path``).

A story-like test::

    def test_pack_installs(world, channel_server, workspace_factory, tmp_path):
        ws = workspace_factory(
            {"default": Env(conda=("python", "relocme"),
                            pypi=(index_entry(world, "worldpkg-a", channel_server.url),))},
            platforms=["linux-64", "win-64"],
        )
        channel_server.add_fault("/channel/linux-64/*.conda", "status", times=2)
        ...  # run the CLI on ws.manifest; unpack; run_in(prefix, ["relocme"])

Library (for the demo, benchmarks and special tests):

- :mod:`testworld.catalog` - ``default_world() -> World`` (the standard content, listed in
  the module docstring); ``PORTABLE_SPECS`` (solvable on all five platforms);
  ``build_world(name, specs, archives, pypi=...) -> World`` for custom worlds.
- :mod:`testworld.layout` - ``World`` (``root``, ``channel_dir``, ``packages``, ``pypi``,
  ``package(name, subdir="linux-64", version=None)``, ``archive_path(pkg)``,
  ``channel_url(server_url=None)``, ``dist(name, kind)``, ``copy_to(dest)``) and ``PypiDist``.
- :mod:`testworld.packages` - ``PackageSpec`` + ``assemble(spec, out_dir) -> Path`` (fast,
  deterministic), ``build_recipe(recipe_text, ...) -> list[Path]`` (cached rattler-build),
  ``describe(archive) -> BuiltPackage``, ``file_hashes(path)``.
- :mod:`testworld.python_pkg` / :mod:`testworld.recipes` - the real python, relocme
  (prefix placeholders), libgreet (gcc shared lib + CLI), worldcli (entry point), pip.
- :mod:`testworld.channel` - ``make_channel(dir, archives)``, ``index_channel(dir)``,
  ``read_repodata``, ``channel_records``, ``run(coro)``.
- :mod:`testworld.locks` - ``write_lock(path, world, {"env": Env(...)}, platforms=[Plat(...)],
  channel_url=..., patches=..., conda_locations=...) -> WrittenLock``; ``Env``, ``Plat``,
  ``PypiEntry``, ``SourceEntry``; ``solve(channel, specs, subdir)``.
- :mod:`testworld.pypi` - the PyPI side (``worldpkg-a/b/c`` wheels + sdists,
  ``worldpkg-flavor`` sdist needing ``FLAVOR_PATCH`` and ``$WORLDPKG_FLAVOR``, source tree
  ``worldpkg-local``); lock entries ``index_entry(world, name, server_url, kind="wheel")``,
  ``local_entry(world, name, kind) -> (PypiEntry, local_paths)``, ``tree_entry(world)``,
  ``git_entry(name, repo, version)``.
- :mod:`testworld.gitrepo` - ``git(args, cwd)`` (fixed author and dates),
  ``make_git_repo(tree, dest) -> GitRepo(path, url, sha)``, ``make_bare_repo(tree, bare)``.
- :mod:`testworld.pep517_backend` - the stdlib-only in-tree backend (``world_backend.py``).
- :mod:`testworld.bulk` - ``bulk_world(count=200, total_bytes=1 GiB, seed=0) -> World`` for
  benchmarks (``Env(conda=("bulk-all",))`` locks every package).
- :mod:`testworld.workspace` - ``write_workspace(root, world, envs, ...) -> Workspace``,
  with a pinned minimal package for each path source entry
  (:func:`testworld.pixi_standin.workspaces.write_package`).
- :mod:`testworld.install` - ``install_specs(world, specs, prefix)``,
  ``install_records(records, prefix)``, ``install_wheels(prefix, wheels)``,
  ``run_in(prefix, argv)``.
- :mod:`testworld.server` - ``WorldServer(root)`` with fault knobs.
- :mod:`testworld.service` - ``Service`` and ``ThreadedHTTPService``: the start/stop/``with``
  lifecycle every server of the world shares.
- :mod:`testworld.cli` - ``run_json(capsys, *argv)``, ``inspect_json(capsys, *argv)``: the
  CLI in-process with ``--json``.
"""
