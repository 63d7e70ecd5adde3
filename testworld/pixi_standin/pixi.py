"""A stand-in for the ``pixi`` executable, faithful to docs/pixi-build.md §11.

Installed as ``<bin>/pixi`` by :func:`testworld.pixi_standin.install` (a ``/bin/sh`` wrapper
that runs this file with the test interpreter). Self-contained on purpose: it imports only the
standard library, PyYAML, tomli (TOML 1.1, as pixi) and py-rattler-build, never ``testworld``
or ``pixi_pack_src``.

What it does, as pixi 0.68-0.77 does:

- ``pixi --version`` prints ``pixi <X.Y.Z>`` on stdout (``FAKE_PIXI_VERSION``, default
  0.77.0).
- ``pixi build`` / ``pixi publish`` accept the flags of contract section 2 (config flags and
  ``--frozen`` & co. are accepted and ignored); anything else exits 2 with a clap-like
  message. ``FAKE_PIXI_BUILD_REMOVED=1`` makes ``build`` an unknown subcommand; ``publish``
  only exists from 0.68 on.
- ``build`` prints the deprecation warning from 0.68 on; ``publish`` refuses a package whose
  ``[package.run-dependencies]`` name a source package (path/git/url) from 0.75 on.
- ``--path`` is a package directory or a manifest file (``pixi.toml``, ``pyproject.toml``,
  ``recipe.yaml``, ``package.xml``, ``mojoproject.toml``); the workspace (a manifest with
  ``[workspace]``) is found upwards; a missing manifest or workspace exits 1. A
  ``--target-platform`` that is not one of the workspace's platforms exits 1 with "no package
  produces outputs for platform X".
- It builds for real with rattler-build: the package's recipe (``[package.build.config]
  recipe``, ``recipe.yaml``, ``recipe.yml`` or ``recipe/recipe.yaml``; ``variants.yaml`` next
  to it and the workspace's ``[workspace.build-variants]`` are the variant config). A package
  without a recipe (e.g. ``pixi-build-python``) gets a generated one: ``share/<name>/VERSION``,
  run requirements from ``[package.run-dependencies]``, noarch unless ``[package.build.config]
  noarch = false``. rattler-build writes ``info/hash_input.json`` (the used variant, with
  ``target_platform``); noarch packages get subdir ``noarch`` whatever the target.
- Outputs are copied flat into the output directory (created if missing), one per output x
  variant; an existing file is skipped ("Skipping ... (already exists)") and the exit code is 0.
- It writes into ``<workspace>/.pixi/`` (``.gitignore``, ``bld/``, ``artifacts-v0/``,
  ``meta-v0/`` or ``--build-dir``), never reads ``pixi.lock`` (an audit hook records any open
  of a file of that name), and prints everything human on stderr (stdout stays empty).

Knobs for tests (environment variables):

- ``FAKE_PIXI_LOG``: append one JSON line per invocation (argv, cwd, relevant environment,
  command, path, target platform, output dir, outputs, skipped files, exit code, whether a
  ``pixi.lock`` was opened).
- ``FAKE_PIXI_FAIL``: ``name=mode[,name=mode...]`` per package name (``*`` for all); modes
  ``fail`` (backend error, exit 1 with output), ``crash`` (exit 101), ``slow[:seconds]`` (sleep
  first, default 30 s), ``drift`` (build string ``<hash>_drift``, to contradict full records).
- ``FAKE_PIXI_NO_HASH_INPUT``: ``name[,name...]`` or ``*``: leave out ``info/hash_input.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import shutil
import sys
import tarfile
import time
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

import tomli

ENV_VERSION = "FAKE_PIXI_VERSION"
ENV_LOG = "FAKE_PIXI_LOG"
ENV_BUILD_REMOVED = "FAKE_PIXI_BUILD_REMOVED"
ENV_FAIL = "FAKE_PIXI_FAIL"
ENV_NO_HASH_INPUT = "FAKE_PIXI_NO_HASH_INPUT"
DEFAULT_VERSION = "0.77.0"

MANIFEST_FILES = ("pixi.toml", "pyproject.toml", "recipe.yaml", "recipe.yml", "package.xml")
EXPLICIT_MANIFESTS = (*MANIFEST_FILES, "mojoproject.toml")
LOGGED_ENV_PREFIXES = ("PIXI_", "CONDA_OVERRIDE_", "RATTLER_")
LOGGED_ENV = ("GIT_TERMINAL_PROMPT",)


class Exit(Exception):  # noqa: N818 - a control-flow signal, not an error
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


# -- invocation record ----------------------------------------------------------------------

RECORD: dict[str, Any] = {}
_COLOR = False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
        name = os.fsdecode(args[0])
        if Path(name).name == "pixi.lock":
            RECORD["opened_lock"] = True
            RECORD.setdefault("opened_lock_paths", []).append(name)


def _write_record(code: int) -> None:
    target = os.environ.get(ENV_LOG)
    if not target:
        return
    RECORD["exit"] = code
    line = (json.dumps(RECORD, sort_keys=True) + "\n").encode()
    fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)  # one write with O_APPEND: lines never interleave
    finally:
        os.close(fd)


def err(message: str = "") -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def fail(message: str, *, code: int = 1) -> NoReturn:
    err(f"Error:   \u00d7 {message}")
    raise Exit(code)


def version() -> tuple[int, int, int]:
    raw = os.environ.get(ENV_VERSION) or DEFAULT_VERSION
    parts = [int(p) for p in raw.split(".")[:3]]
    while len(parts) < 3:
        parts.append(0)
    return parts[0], parts[1], parts[2]


def version_str() -> str:
    return os.environ.get(ENV_VERSION) or DEFAULT_VERSION


def host_subdir() -> str:
    machine = platform.machine().lower()
    arch = {"x86_64": "64", "amd64": "64", "aarch64": "aarch64", "arm64": "arm64"}.get(
        machine, "64"
    )
    system = platform.system().lower()
    if system == "linux":
        return f"linux-{arch}"
    if system == "darwin":
        return "osx-arm64" if arch in ("arm64", "aarch64") else "osx-64"
    return "win-64"


# -- argv (clap-like) -----------------------------------------------------------------------


class ClapParser(argparse.ArgumentParser):
    """argparse with clap's exit code (2) and message style, on stderr."""

    def error(self, message: str) -> NoReturn:
        if "invalid choice" in message:
            bad = message.split("invalid choice: ", 1)[1].split(" ", 1)[0].strip("'\"")
            text = f"error: unrecognized subcommand '{bad}'"
        elif message.startswith("unrecognized arguments: "):
            bad = message.removeprefix("unrecognized arguments: ").split()[0]
            text = f"error: unexpected argument '{bad}' found"
        else:
            text = f"error: {message}"
        err(text)
        err("")
        err(f"Usage: {self.prog} [OPTIONS]")
        err("")
        err("For more information, try '--help'.")
        raise Exit(2)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            err(message.rstrip("\n"))
        raise Exit(status)


class _VersionAction(argparse.Action):
    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None) -> None:
        sys.stdout.write(f"pixi {version_str()}\n")
        sys.stdout.flush()
        RECORD["command"] = "--version"
        raise Exit(0)


def _global_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-v", "--verbose", action="count", default=0)
    p.add_argument("-q", "--quiet", action="count", default=0)
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    p.add_argument("--no-progress", action="store_true")


def _config_flags(p: argparse.ArgumentParser) -> None:
    for flag in (
        "--no-config",
        "--run-post-link-scripts",
        "--no-symbolic-links",
        "--no-hard-links",
        "--no-ref-links",
        "--tls-no-verify",
        "--frozen",
        "--locked",
        "--no-install",
        "--as-is",
    ):
        p.add_argument(flag, action="store_true")
    for flag in (
        "--config-file",
        "--auth-file",
        "--concurrent-downloads",
        "--concurrent-solves",
        "--pinning-strategy",
        "--pypi-keyring-provider",
        "--tls-root-certs",
    ):
        p.add_argument(flag)
    p.add_argument("--offline", nargs="?", const="true", default=None)


def _build_flags(p: argparse.ArgumentParser, *, publish: bool) -> None:
    p.add_argument("--path", default=None)
    if publish:
        p.add_argument("--target-dir", dest="output_dir", default=None)
        p.add_argument("--target-channel", "--to", dest="target_channel", default=None)
        p.add_argument("--variant", action="append", default=[])
        p.add_argument("-m", "--variant-config", default=None)
        p.add_argument("--build-string-prefix", default=None)
        p.add_argument("--build-number", default=None)
        p.add_argument("--package-format", default=None)
        p.add_argument("--force", action="store_true")
        p.add_argument("--no-skip-existing", action="store_true")
        p.add_argument("--dry-run", action="store_true")
    else:
        p.add_argument("-o", "--output-dir", dest="output_dir", default=None)
    p.add_argument("-t", "--target-platform", default=None)
    p.add_argument("--build-platform", default=None)
    p.add_argument("-b", "--build-dir", default=None)
    p.add_argument("-c", "--clean", action="store_true")
    _config_flags(p)
    _global_flags(p)


def make_parser() -> ClapParser:
    parser = ClapParser(prog="pixi", description="pixi (stand-in for tests)")
    parser.add_argument("-V", "--version", action=_VersionAction, nargs=0)
    _global_flags(parser)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=ClapParser)
    removed = os.environ.get(ENV_BUILD_REMOVED, "") not in ("", "0", "false")
    if not removed:
        _build_flags(sub.add_parser("build", help="build a conda package"), publish=False)
    if version() >= (0, 68, 0):
        _build_flags(sub.add_parser("publish", help="build and publish packages"), publish=True)
    return parser


# -- manifests and workspace ----------------------------------------------------------------


def load_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomli.load(fh)
    except (OSError, tomli.TOMLDecodeError) as exc:
        fail(f"failed to parse {path}: {exc}")


def pixi_tables(path: Path) -> dict[str, Any]:
    """The pixi part of a manifest: the whole ``pixi.toml``, ``[tool.pixi]`` of a pyproject."""
    data = load_toml(path)
    if path.name == "pyproject.toml":
        tool = data.get("tool", {})
        pixi = tool.get("pixi", {}) if isinstance(tool, dict) else {}
        return pixi if isinstance(pixi, dict) else {}
    return data


def find_package_manifest(path: Path) -> Path:
    if path.is_file():
        if path.name not in EXPLICIT_MANIFESTS:
            fail(f"unsupported manifest file '{path.name}' at {path}")
        return path
    if not path.is_dir():
        fail(f"the path '{path}' does not exist")
    for name in ("pixi.toml", "pyproject.toml"):
        candidate = path / name
        if candidate.is_file() and isinstance(pixi_tables(candidate).get("package"), dict):
            return candidate
    for name in ("recipe.yaml", "recipe.yml", "recipe/recipe.yaml", "package.xml"):
        candidate = path / name
        if candidate.is_file():
            return candidate
    fail(
        f"could not find a package manifest ({', '.join(MANIFEST_FILES)}) in {path}",
    )


def find_workspace(start: Path) -> Path:
    for directory in (start, *start.parents):
        for name in ("pixi.toml", "pyproject.toml"):
            candidate = directory / name
            if not candidate.is_file():
                continue
            tables = pixi_tables(candidate)
            if isinstance(tables.get("workspace"), dict) or isinstance(tables.get("project"), dict):
                return candidate
    fail(f"could not find a pixi workspace at or above {start}")


def workspace_table(manifest: Path) -> dict[str, Any]:
    tables = pixi_tables(manifest)
    ws = tables.get("workspace") or tables.get("project") or {}
    return ws if isinstance(ws, dict) else {}


def package_table(manifest: Path) -> dict[str, Any]:
    if manifest.name not in ("pixi.toml", "pyproject.toml"):
        return {}
    pkg = pixi_tables(manifest).get("package")
    return pkg if isinstance(pkg, dict) else {}


def backend_of(pkg: Mapping[str, Any]) -> dict[str, Any]:
    build = pkg.get("build")
    if not isinstance(build, dict):
        return {}
    backend = build.get("backend")
    return backend if isinstance(backend, dict) else {}


def source_run_dependencies(pkg: Mapping[str, Any]) -> list[str]:
    deps = pkg.get("run-dependencies")
    if not isinstance(deps, dict):
        return []
    return sorted(
        name
        for name, spec in deps.items()
        if isinstance(spec, dict) and any(k in spec for k in ("path", "git", "url"))
    )


def find_recipe(package_dir: Path, manifest: Path, pkg: Mapping[str, Any]) -> Path | None:
    if manifest.name in ("recipe.yaml", "recipe.yml"):
        return manifest
    build = pkg.get("build")
    config = build.get("config") if isinstance(build, dict) else None
    if isinstance(config, dict) and isinstance(config.get("recipe"), str):
        candidate = package_dir / config["recipe"]
        return candidate if candidate.is_file() else None
    for name in ("recipe.yaml", "recipe.yml", "recipe/recipe.yaml", "recipe/recipe.yml"):
        candidate = package_dir / name
        if candidate.is_file():
            return candidate
    return None


# -- the build --------------------------------------------------------------------------------


def knobs_for(name: str) -> tuple[str | None, float, bool]:
    """(failure mode, slow seconds, drop hash_input.json) for package ``name``."""
    mode: str | None = None
    seconds = 30.0
    for item in filter(None, (s.strip() for s in os.environ.get(ENV_FAIL, "").split(","))):
        key, _, value = item.partition("=")
        if key in (name, "*"):
            mode, _, arg = value.partition(":")
            if mode == "slow" and arg:
                seconds = float(arg)
    no_hash = {s.strip() for s in os.environ.get(ENV_NO_HASH_INPUT, "").split(",") if s.strip()}
    return mode, seconds, bool(no_hash & {name, "*"})


def generated_recipe(pkg: Mapping[str, Any], directory: Path) -> Path:
    name = str(pkg.get("name") or "unnamed")
    ver = str(pkg.get("version") or "0.1.0")
    build = pkg.get("build")
    config = build.get("config") if isinstance(build, dict) else None
    noarch = not (isinstance(config, dict) and config.get("noarch") is False)
    run: list[str] = []
    deps = pkg.get("run-dependencies")
    for dep, spec in (deps or {}).items():
        if isinstance(spec, str):
            run.append(dep if spec.strip() in ("", "*") else f"{dep} {spec}")
        elif isinstance(spec, dict) and isinstance(spec.get("version"), str):
            run.append(f"{dep} {spec['version']}")
        else:
            run.append(dep)
    recipe: dict[str, Any] = {
        "package": {"name": name, "version": ver},
        "build": {
            "number": 0,
            "script": [
                f"mkdir -p $PREFIX/share/{name}",
                f"echo {ver} > $PREFIX/share/{name}/VERSION",
            ],
        },
        "requirements": {"run": run},
    }
    if noarch:
        recipe["build"]["noarch"] = "generic"
    import yaml

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def drifted_recipe(recipe: Path, directory: Path) -> Path:
    import yaml

    data = yaml.safe_load(recipe.read_text())
    data.setdefault("build", {})["string"] = "h${{ hash }}_drift"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "recipe.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def variant_config(ws: Mapping[str, Any], recipe: Path) -> dict[str, list[Any]]:
    variants: dict[str, list[Any]] = {}
    side = recipe.parent / "variants.yaml"
    if side.is_file():
        import yaml

        loaded = yaml.safe_load(side.read_text()) or {}
        for key, values in loaded.items():
            variants[str(key)] = list(values) if isinstance(values, list) else [values]
    build_variants = ws.get("build-variants")
    if isinstance(build_variants, dict):
        for key, values in build_variants.items():
            variants[str(key)] = list(values) if isinstance(values, list) else [values]
    return variants


def channels_of(ws: Mapping[str, Any], root: Path) -> list[str]:
    out = []
    for channel in ws.get("channels", []):
        value = channel.get("channel") if isinstance(channel, dict) else channel
        if not isinstance(value, str):
            continue
        if "://" in value or (":" not in value and not value.startswith((".", "/"))):
            out.append(value)
        else:
            out.append((root / value).resolve().as_uri())
    return out


def strip_hash_input(archive: Path) -> None:
    """Rewrite a ``.conda`` without ``info/hash_input.json`` (contract 11.6's switch)."""
    import zstandard

    with zipfile.ZipFile(archive) as zin:
        members = [(info, zin.read(info)) for info in zin.infolist()]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zout:
        for info, data in members:
            if info.filename.startswith("info-") and info.filename.endswith(".tar.zst"):
                raw = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
                buf = io.BytesIO()
                with (
                    tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as src,
                    tarfile.open(fileobj=buf, mode="w:", format=tarfile.PAX_FORMAT) as dst,
                ):
                    for member in src.getmembers():
                        if member.name == "info/hash_input.json":
                            continue
                        fileobj = src.extractfile(member) if member.isfile() else None
                        dst.addfile(member, fileobj)
                data = zstandard.ZstdCompressor(level=3).compress(buf.getvalue())
            fresh = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            fresh.compress_type = zipfile.ZIP_STORED
            zout.writestr(fresh, data)
    archive.write_bytes(out.getvalue())


def run_build(args: argparse.Namespace, command: str) -> int:
    cwd = Path.cwd()
    path = (cwd / (args.path or ".")).resolve()
    target = args.target_platform or host_subdir()
    out_dir = (cwd / (args.output_dir or ".")).resolve()
    RECORD.update(
        {
            "command": command,
            "path": str(path),
            "target_platform": target,
            "build_platform": args.build_platform,
            "output_dir": str(out_dir),
            "verbose": args.verbose,
            "color": args.color,
        }
    )
    if command == "build" and version() >= (0, 68, 0):
        shown = f"pixi publish --path {args.path or '.'} --target-dir {args.output_dir or '.'}"
        if args.target_platform:
            shown += f" --target-platform {args.target_platform}"
        err(
            "WARNING: `pixi build` is deprecated and will be removed in a future release; "
            f"use `{shown}` instead"
        )

    manifest = find_package_manifest(path)
    package_dir = manifest.parent
    ws_manifest = find_workspace(package_dir)
    ws_root = ws_manifest.parent
    ws = workspace_table(ws_manifest)
    pkg = package_table(manifest)
    RECORD.update({"manifest": str(manifest), "workspace": str(ws_root)})

    backend = backend_of(pkg)
    backend_name = str(backend.get("name") or "pixi-build-rattler-build")
    RECORD["backend"] = {"name": backend_name, "version": backend.get("version")}
    override = _backend_override(backend_name)
    if override is not None:
        RECORD["backend"]["override"] = override
        if override and not Path(override).exists():
            fail(f"failed to start the build backend {backend_name}: {override} does not exist")

    platforms = [str(p) for p in ws.get("platforms", [])]
    if platforms and target not in platforms:
        fail(f"no package produces outputs for platform {target}")

    recipe = find_recipe(package_dir, manifest, pkg)
    name = str(pkg.get("name") or "")
    if recipe is None and not pkg:
        fail(f"unsupported manifest {manifest}")
    if recipe is None and backend_name == "pixi-build-rattler-build":
        fail(f"pixi-build-rattler-build: no recipe.yaml found next to {manifest}")
    if not name and recipe is not None:
        import yaml

        data = yaml.safe_load(recipe.read_text()) or {}
        name = str((data.get("package") or data.get("recipe") or {}).get("name") or "")
    RECORD["package"] = name

    mode, seconds, no_hash = knobs_for(name)
    if command == "publish" and version() >= (0, 75, 0):
        sources = source_run_dependencies(pkg)
        if sources:
            fail(
                f"the package '{name}' has run dependencies on source packages "
                f"({', '.join(sources)}); a published package must be self-contained",
            )

    # Side effects in the workspace, like the real tool (a read-only workspace fails here).
    dot_pixi = ws_root / ".pixi"
    digest = hashlib.sha256(str(package_dir).encode()).hexdigest()[:8]
    bld = dot_pixi / "bld" / f"{name or 'pkg'}-{digest}"
    artifacts = dot_pixi / "artifacts-v0" / (name or "pkg")
    meta = Path(args.build_dir).resolve() if args.build_dir else dot_pixi / "meta-v0"
    try:
        dot_pixi.mkdir(exist_ok=True)
        (dot_pixi / ".gitignore").write_text("*\n")
        if args.clean:
            shutil.rmtree(bld, ignore_errors=True)
            shutil.rmtree(artifacts, ignore_errors=True)
        bld.mkdir(parents=True, exist_ok=True)
        artifacts.mkdir(parents=True, exist_ok=True)
        meta.mkdir(parents=True, exist_ok=True)
        (meta / f"{name or 'pkg'}-{digest}.json").write_text(
            json.dumps({"manifest": str(manifest), "backend": backend_name}) + "\n"
        )
    except OSError as exc:
        fail(f"failed to write the workspace cache {dot_pixi}: {exc}")

    if mode == "slow":
        err(f"  ⠋ building {name} (slow)")
        time.sleep(seconds)
    if mode == "crash":
        err("thread 'main' panicked at crates/pixi_build/src/lib.rs:42:5:")
        err(f"stand-in crash requested for {name}")
        err("note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace")
        raise Exit(101)
    if mode == "fail":
        for i in range(1, 61):
            err(f" │ │ step {i:02d}: compiling {name} part {i}")
        err(f" │ │ error: backend failure requested for {name}")
        fail(f"failed to build '{name}' from '{package_dir}'")

    if recipe is None:
        recipe = generated_recipe(pkg, bld / "generated")
    if mode == "drift":
        recipe = drifted_recipe(recipe, bld / "drift")

    built = _rattler_build(recipe, target, ws, ws_root, bld / "out", name)
    if not built:
        fail(f"no package produces outputs for platform {target}")

    out_dir.mkdir(parents=True, exist_ok=True)
    outputs: list[str] = []
    skipped: list[str] = []
    for archive in built:
        if no_hash:
            strip_hash_input(archive)
        shutil.copyfile(archive, artifacts / archive.name)
        dest = out_dir / archive.name
        if dest.exists():
            err(f"Skipping {dest} (already exists)")
            skipped.append(archive.name)
            continue
        shutil.copyfile(archive, dest)
        outputs.append(archive.name)
    RECORD["outputs"] = outputs
    RECORD["skipped"] = skipped
    check = "\x1b[32m✔\x1b[0m" if _COLOR else "✔"
    err(f"{check} Successfully built {len(built)} package(s):")
    for archive in built:
        err(f"  {out_dir / archive.name}")
    return 0


def _backend_override(name: str) -> str | None:
    raw = os.environ.get("PIXI_BUILD_BACKEND_OVERRIDE", "")
    for item in filter(None, (s.strip() for s in raw.split(","))):
        key, sep, value = item.partition("=")
        if key == name:
            return value if sep else ""
    if os.environ.get("PIXI_BUILD_BACKEND_OVERRIDE_ALL"):
        return ""
    return None


def _rattler_build(
    recipe: Path, target: str, ws: Mapping[str, Any], ws_root: Path, out: Path, name: str
) -> list[Path]:
    from rattler_build import (
        PlatformConfig,
        RenderConfig,
        Stage0Recipe,
        ToolConfiguration,
        VariantConfig,
    )

    shutil.rmtree(out, ignore_errors=True)
    variants = variant_config(ws, recipe)
    try:
        results = Stage0Recipe.from_file(recipe).run_build(
            output_dir=out,
            channels=channels_of(ws, ws_root) or None,
            tool_config=ToolConfiguration(test_strategy="skip"),
            package_format="conda",
            no_build_id=True,
            variant_config=VariantConfig(variants) if variants else None,
            render_config=RenderConfig(platform=PlatformConfig(target_platform=target)),
        )
    except Exception as exc:  # noqa: BLE001 - rattler-build raises many types
        for line in str(exc).splitlines() or [type(exc).__name__]:
            err(f" │ {line}")
        fail(f"failed to build '{name}' from '{recipe.parent}'")
    return sorted(Path(p) for r in results for p in r.packages)


# -- entry point -----------------------------------------------------------------------------


def _relevant_env() -> dict[str, str]:
    return {
        k: v
        for k, v in sorted(os.environ.items())
        if (k.startswith(LOGGED_ENV_PREFIXES) or k in LOGGED_ENV)
    }


def main(argv: Sequence[str]) -> int:
    global _COLOR
    sys.addaudithook(_audit)
    RECORD.update(
        {
            "argv": list(argv),
            "cwd": str(Path.cwd()),
            "env": _relevant_env(),
            "version": version_str(),
            "opened_lock": False,
            "started": time.time(),
        }
    )
    code = 0
    try:
        args = make_parser().parse_args(list(argv))
        _COLOR = args.color == "always"
        RECORD["command"] = args.command
        code = run_build(args, args.command)
    except Exit as exc:
        code = exc.code
    except KeyboardInterrupt:
        code = 130
    _write_record(code)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
