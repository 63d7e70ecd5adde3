"""Backend pins: which build backend a source package declares, and the rule a pack
applies to it (docs/pixi-build.md §6): an exact ``==X.Y.Z`` pin, an override, or (with
``--allow-unpinned-backends``) a warning; anything else is refused before any download.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pixi_pack_src import tomlfile
from pixi_pack_src.errors import EXIT_ERROR, BuildError, PixiPackSrcError
from pixi_pack_src.hashing import file_sha256
from pixi_pack_src.lock.workspace import BackendSpec, read_build_backend

if TYPE_CHECKING:
    from pixi_pack_src.builders.conda.jobs import BuildJob


@dataclass(frozen=True)
class BackendUse:
    """The build backend a package declares, as recorded in provenance."""

    name: str | None
    spec: str | None
    pinned: bool
    override_sha256: str | None = None

    def to_json(self) -> dict[str, object]:
        doc: dict[str, object] = {"name": self.name, "spec": self.spec}
        if self.override_sha256 is not None:
            doc["override-sha256"] = self.override_sha256
        return doc


def spec_string(spec: BackendSpec) -> str:
    parts = [spec.name, spec.version or "*"]
    if spec.build:
        parts.append(f"build={spec.build}")
    if spec.channel:
        parts.append(f"channel={spec.channel}")
    return " ".join(parts)


def _line_to_write(spec: BackendSpec) -> str:
    """What the user should write to pin ``spec`` (table key or inline table)."""
    text = spec.manifest.read_text(encoding="utf-8").splitlines()
    line = spec.backend_line
    inline = line is not None and 0 < line <= len(text) and "{" in text[line - 1]
    if inline:
        return f'backend = {{ name = "{spec.name}", version = "==X.Y.Z" }}'
    return 'version = "==X.Y.Z"'


def declared_backend(package: Path) -> BackendSpec | None:
    """The backend spec ``package`` (a directory or manifest) declares, with a version
    inherited from ``[workspace.dependencies]`` resolved; ``None`` when it declares none (a
    ``recipe.yaml`` or ``package.xml`` manifest never does)."""
    readable = package.is_dir() or package.name in ("pixi.toml", "pyproject.toml")
    spec = read_build_backend(package) if readable else None
    if spec is not None and spec.workspace:
        spec = _resolve_workspace_backend(spec)
    return spec


@dataclass(frozen=True)
class BackendStatus:
    """What a pack would make of a job's build backend, found without building (``inspect``).

    ``checked`` is false for git locations (their manifest is read from the checkout at build
    time); ``problem`` is what would make the pack fail (the rule is :func:`check_backend`).
    """

    checked: bool
    spec: BackendSpec | None = None
    use: BackendUse | None = None
    warnings: tuple[str, ...] = ()
    problem: str | None = None
    hint: str | None = None  # the ``help:`` of the problem
    exit_code: int = EXIT_ERROR  # what a pack refused for this problem exits with

    def to_json(self) -> dict[str, object] | None:
        if self.spec is None and self.problem is None:
            return None
        doc: dict[str, object] = {}
        if self.spec is not None:
            doc.update(
                name=self.spec.name,
                spec=self.spec.version,
                pinned=self.use.pinned if self.use is not None else False,
                where=self.spec.where,
            )
        if self.use is not None and self.use.override_sha256 is not None:
            doc["override-sha256"] = self.use.override_sha256
        if self.problem is not None:
            doc["problem"] = self.problem
        return doc


def backend_status(
    job: BuildJob, *, allow_unpinned: bool, overrides: Mapping[str, Path]
) -> BackendStatus:
    """:func:`check_backend` for a job, as data: never raises for the user's manifests."""
    if job.path is None:
        return BackendStatus(checked=False)
    if not job.path.exists():
        return BackendStatus(
            checked=True,
            problem=f"source package {', '.join(job.names)}: directory {job.path} (location "
            f"{job.location!r} in the lock) does not exist",
        )
    try:
        spec = declared_backend(job.path)
    except PixiPackSrcError as exc:  # an unreadable manifest
        return BackendStatus(
            checked=True, problem=exc.message, hint=exc.hint, exit_code=exc.exit_code
        )
    try:
        use, warnings = check_backend(
            job.path, label=job.label, allow_unpinned=allow_unpinned, overrides=overrides
        )
    except PixiPackSrcError as exc:
        return BackendStatus(
            checked=True, spec=spec, problem=exc.message, hint=exc.hint, exit_code=exc.exit_code
        )
    return BackendStatus(checked=True, spec=spec, use=use, warnings=warnings)


def check_backend(
    package: Path,
    *,
    label: str,
    allow_unpinned: bool,
    overrides: Mapping[str, Path],
) -> tuple[BackendUse, tuple[str, ...]]:
    """The backend of ``package``; an unpinned one is a :class:`BuildError` unless allowed.

    ``package`` is a directory or a manifest; a ``recipe.yaml`` or ``package.xml`` manifest
    declares no backend (pixi picks one), which counts as unpinned.
    """
    spec = declared_backend(package)
    if spec is None:
        message = (
            f"cannot tell which build backend {label} uses: {package} declares no "
            "[package.build.backend] in a pixi.toml or pyproject.toml, so pixi picks one "
            "(unpinned)"
        )
        if not allow_unpinned:
            raise BuildError(
                message,
                hint=f"add a pixi.toml to {package_dir(package)} with [package.build.backend] "
                'name = "…" and version = "==X.Y.Z", or pass --allow-unpinned-backends',
            )
        return BackendUse(name=None, spec=None, pinned=False), (message,)
    if spec.name in overrides:
        return (
            BackendUse(
                name=spec.name,
                spec=spec.version,
                pinned=True,
                override_sha256=file_sha256(overrides[spec.name]),
            ),
            (),
        )
    use = BackendUse(name=spec.name, spec=spec.version, pinned=spec.is_pinned)
    if spec.is_pinned:
        return use, ()
    shown = f"version {spec.version!r}" if spec.version else "no version"
    line = spec.version_line or spec.backend_line
    where = f"{spec.manifest}" + (f", line {line}" if line else "")
    message = f"the build backend {spec.name} of {label} is not pinned ({shown}) in {where}"
    if allow_unpinned:
        return use, (message + "; the built package may differ from what was locked",)
    raise BuildError(
        message,
        hint=f"write `{_line_to_write(spec)}` there (the exact backend version to build with), "
        f"or pass --backend-override {spec.name}=PATH, or --allow-unpinned-backends",
    )


def _resolve_workspace_backend(spec: BackendSpec) -> BackendSpec:
    """``backend = { name = …, workspace = true }``: take the version from the workspace."""
    for directory in (spec.manifest.parent, *spec.manifest.parent.parents):
        manifest = directory / "pixi.toml"
        if not manifest.is_file():
            continue
        try:
            data = tomlfile.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomlfile.TOMLDecodeError):
            continue
        ws = data.get("workspace")
        if not isinstance(ws, dict):
            continue
        for table in ("build-dependencies", "dependencies"):
            deps = ws.get(table)
            value = deps.get(spec.name) if isinstance(deps, dict) else None
            if isinstance(value, dict):
                value = value.get("version")
            if isinstance(value, str):
                text = manifest.read_text(encoding="utf-8").splitlines()
                line = next(
                    (i for i, t in enumerate(text, 1) if t.strip().startswith(spec.name)), None
                )
                return BackendSpec(
                    name=spec.name,
                    version=value,
                    channels=spec.channels,
                    manifest=manifest,
                    version_line=line,
                    backend_line=line,
                )
        break
    return spec


def package_dir(path: Path) -> Path:
    return path.parent if path.is_file() else path
