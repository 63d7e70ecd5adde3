"""Case 6: how long ``pack`` spends before its first download, phase by phase, in-process.

``python -m benchmarks.plan_timing WORKSPACE`` prints a JSON object of seconds: importing the
package, locating the workspace and reading ``pixi.lock``, selecting the environment (the
typed model), turning entries into download artifacts (as ``pack`` does), the ``inspect``
plan, and generating the channel's ``repodata.json`` + ``environment.yml`` (done at write
time). The phases call the same public functions ``pack`` calls.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    t0 = time.perf_counter()
    from pixi_pack_src.archive.channel import channel_files, environment_yml
    from pixi_pack_src.fetch.config import FetchConfig
    from pixi_pack_src.fetch.download import Artifact
    from pixi_pack_src.lock.lockfile import load_lock
    from pixi_pack_src.lock.workspace import locate_workspace
    from pixi_pack_src.pack import host_subdir
    from pixi_pack_src.plan import make_plan

    phases: dict[str, float] = {"import": time.perf_counter() - t0}

    def phase(name: str, start: float) -> float:
        now = time.perf_counter()
        phases[name] = now - start
        return now

    t = time.perf_counter()
    workspace = locate_workspace(Path(argv[0]))
    lock = load_lock(workspace.lock_path)
    t = phase("load lock", t)
    env = lock.select("default", host_subdir())
    t = phase("select", t)
    config = FetchConfig()
    artifacts = {a.key: a for a in (Artifact.from_conda(b, config) for b in env.conda)}
    t = phase("artifacts", t)
    make_plan(env)
    t = phase("plan (inspect)", t)
    by_subdir: dict[str, list[object]] = {}
    for binary in env.conda:
        by_subdir.setdefault(binary.record.subdir, []).append(binary.record)
    channel_files(by_subdir)  # type: ignore[arg-type]
    environment_yml([b.record for b in env.conda], [])
    phase("repodata + environment.yml", t)
    assert len(artifacts) == len(env.conda)
    print(json.dumps(phases))
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    os._exit(code)  # py-rattler can crash at interpreter exit
