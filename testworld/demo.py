"""The embedded offline demo: ``python -m testworld.demo`` (the README's first command).

It builds the demo world (real conda packages, wheels, an sdist, a conda source package and a
stand-in ``pixi``), serves it on 127.0.0.1, writes a pixi workspace whose lock comes from a
real solve, then runs the real CLI: ``pixi-pack-src inspect``, ``pack`` and ``unpack``, and
finally the unpacked environment's own python. Nothing leaves this machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from testworld.catalog import default_world
from testworld.locks import Env, Plat, SourceEntry
from testworld.pixi_standin import install
from testworld.pixi_standin.workspaces import write_package
from testworld.pypi import index_entry
from testworld.server import WorldServer
from testworld.workspace import write_workspace

REPO = Path(__file__).resolve().parents[2]
CONDA = ("python", "pip", "worldcli", "relocme", "libgreet", "chain-a", "pyworld-plugins")
CHECK = (
    "import sys, pyworld, worldpkg_a, worldpkg_b;"
    "print('python', sys.version.split()[0], 'at', sys.prefix);"
    "print(worldpkg_a.hello()); print(worldpkg_b.hello())"
)


def _step(title: str) -> None:
    print(f"\n==> {title}", flush=True)


def _run(argv: Sequence[str], *, env: dict[str, str] | None = None) -> None:
    print("$ " + " ".join(str(a) for a in argv), flush=True)
    subprocess.run(list(argv), check=True, env=env)


def main(args: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testworld.demo", description=__doc__)
    parser.add_argument(
        "--dir",
        type=Path,
        default=REPO / ".cache" / "demo",
        help="where the demo workspace, archive and environment go [default: .cache/demo]",
    )
    ns = parser.parse_args(args)
    out: Path = ns.dir.resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    started = time.monotonic()

    _step("building the offline world (cached after the first run)")
    world = default_world()
    pixi_bin = install(out / "fake-pixi" / "bin")
    env = {
        **os.environ,
        "PATH": f"{pixi_bin.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    cli = [sys.executable, "-m", "pixi_pack_src"]

    with WorldServer(world.root) as server:
        print(f"world served at {server.url} ({len(world.packages)} conda packages)")
        _step("writing a pixi workspace with a lock from a real solve")
        ws_root = out / "workspace"
        write_package(
            ws_root / "src" / "greeting",
            "greeting",
            files={"share/greeting/hello.txt": "hello from a conda source package"},
        )
        pypi = (
            index_entry(world, "worldpkg-a", server.url),
            index_entry(world, "worldpkg-b", server.url, kind="sdist"),
        )
        workspace = write_workspace(
            ws_root,
            world,
            {
                "default": Env(
                    conda=CONDA,
                    pypi=pypi,
                    sources=(SourceEntry("greeting", "src/greeting", noarch=True),),
                )
            },
            platforms=(Plat("linux-64"),),
            channel_url=world.channel_url(server.url),
            name="demo",
        )
        print(f"workspace: {workspace.root} (pixi.toml + pixi.lock)")

        _step("inspect: what a pack would download and build")
        _run([*cli, "inspect", str(workspace.root)], env=env)

        _step("pack: download, verify, build, write environment.tar")
        archive = out / "environment.tar"
        _run(
            [
                *cli,
                "pack",
                str(workspace.root),
                "-o",
                str(archive),
                "--use-cache",
                str(out / "cache"),
            ],
            env=env,
        )

    _step("unpack: offline, from the archive alone (the server is stopped)")
    target = out / "target"
    _run([*cli, "unpack", str(archive), "-o", str(target), "-s", "bash"], env=env)

    _step("the unpacked environment runs")
    prefix = target / "env"
    _run([str(prefix / "bin" / "python"), "-c", CHECK], env=env)
    _run([str(prefix / "bin" / "worldcli")], env=env)
    print((prefix / "share" / "greeting" / "hello.txt").read_text().strip())

    print(
        f"\ndone in {time.monotonic() - started:.1f} s: the environment is in {prefix}\n"
        f"activate it with: source {target / 'activate.sh'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
