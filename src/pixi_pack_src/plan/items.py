"""What is done with each lock entry: one :class:`~.model.PlanItem` per artifact.

A conda package is downloaded (or copied when its URL is a local file); a conda source package
is built by the ``pixi build`` invocation that covers it (or skipped when none can); a wheel is
downloaded or copied; an sdist, git checkout or source tree is built into a wheel
(:func:`pixi_pack_src.builders.wheel.jobs.describe_build` says how), skipped with
``--ignore-pypi-non-wheel``, or refused (:mod:`.checks`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from pixi_pack_src.builders.wheel.jobs import describe_build
from pixi_pack_src.builders.wheel.overrides import Overrides
from pixi_pack_src.layout import wheel_path
from pixi_pack_src.lock.locations import file_url_path
from pixi_pack_src.lock.model import CondaBinary, CondaSource, Hashes, PypiPackage
from pixi_pack_src.plan import checks
from pixi_pack_src.plan.model import Action, PlanItem, Refusal, SourceBuild


def conda_item(pkg: CondaBinary) -> PlanItem:
    local = pkg.is_local
    return PlanItem(
        action="copy" if local else "download",
        kind="conda",
        name=pkg.name,
        version=pkg.version,
        file_name=pkg.file_name,
        source=str(file_url_path(pkg.url)) if local else pkg.url,
        archive_path=pkg.archive_path,
        hashes=pkg.hashes,
        entry=pkg,
    )


def source_item(src: CondaSource, build: SourceBuild | None) -> PlanItem:
    """A conda source package: built by ``build``, or skipped when no invocation covers it."""
    return PlanItem(
        action="build-conda" if build is not None else "skip",
        kind="conda-source",
        name=src.name,
        version=src.version,
        file_name=None,
        source=build.origin if build is not None else src.location,
        archive_path=None,
        hashes=Hashes(),
        entry=src,
        reason=None if build is not None else "unsupported source location",
        build_key=build.key if build is not None else None,
    )


@dataclass(frozen=True)
class PypiDecision:
    """A PyPI entry's item, with what it makes a pack warn about or refuse."""

    item: PlanItem
    warnings: tuple[str, ...] = ()
    refusals: tuple[Refusal, ...] = ()


@dataclass(frozen=True, kw_only=True)
class WheelBuildContext:
    """What :func:`describe_build` needs beyond the entry (the same for every entry of a plan)."""

    overrides: Overrides
    subdir: str
    python_version: str | None
    cache_root: Path | None
    isolated: bool
    environment_fingerprint: str


def pypi_item(
    pkg: PypiPackage, *, ignore_non_wheel: bool, build: bool, wheels: WheelBuildContext
) -> PypiDecision:
    """A wheel is downloaded or copied; anything else is built into a wheel (described by
    :func:`describe_build`), skipped with ``--ignore-pypi-non-wheel``, or refused."""
    source = pkg.url or (str(pkg.path) if pkg.path is not None else pkg.location)
    if pkg.kind == "git" and pkg.git is not None:
        source = pkg.git.short

    def item(action: Action, reason: str | None = None) -> PlanItem:
        fetched = action in ("download", "copy")  # a wheel; anything else is known once built
        return PlanItem(
            action=action,
            kind=pkg.kind,
            name=pkg.name,
            version=pkg.version,
            file_name=pkg.file_name,
            source=source,
            archive_path=wheel_path(pkg.file_name) if fetched and pkg.file_name else None,
            hashes=pkg.hashes,
            entry=pkg,
            reason=reason,
        )

    if pkg.kind in ("wheel", "local-wheel"):
        return PypiDecision(item("download" if pkg.kind == "wheel" else "copy"))
    if pkg.kind == "source-tree" and pkg.path is None:
        return PypiDecision(
            item("skip", "unsupported remote location"), refusals=(checks.remote_tree(pkg),)
        )
    if ignore_non_wheel:
        return PypiDecision(
            item("skip", "not a wheel (--ignore-pypi-non-wheel)"),
            warnings=(checks.skipped_non_wheel(pkg),),
        )
    if not build:
        return PypiDecision(
            item("skip", "not a wheel (--no-build-sdist)"), refusals=(checks.not_built(pkg),)
        )
    missing = checks.missing_tree(pkg)
    wheel_build = describe_build(
        pkg,
        overrides=wheels.overrides,
        subdir=wheels.subdir,
        python_version=wheels.python_version,
        cache_root=wheels.cache_root,
        isolated=wheels.isolated,
        environment_fingerprint=wheels.environment_fingerprint,
        exclude=(wheels.cache_root,) if wheels.cache_root is not None else (),
    )
    return PypiDecision(
        replace(item("build-wheel"), wheel_build=wheel_build),
        refusals=(missing,) if missing is not None else (),
    )
