"""The pack's local conda channel (``channel/<subdir>/repodata.json``) and ``environment.yml``.

Records come from the lock (docs/archive-format.md, "Layout"): a locked ``RepoDataRecord`` keeps upstream
repodata patches that the archive's own ``info/index.json`` lacks. They are serialised by
py-rattler (``to_json``) minus the fields that belong to a record's *location* rather than to
repodata (``fn``, ``url``, ``channel``). Built and injected packages, which have no locked
record, get one from their ``info/index.json`` plus hashes of the file (:func:`record_from_archive`).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from packaging.utils import canonicalize_name
from rattler import PackageRecord, RepoDataRecord
from rattler.exceptions import ValidatePackageRecordsError

from pixi_pack_src.aio import run_sync
from pixi_pack_src.errors import ArchiveError, PixiPackSrcError
from pixi_pack_src.hashing import hash_file
from pixi_pack_src.layout import CHANNEL_DIR, PYPI_DIR

logger = logging.getLogger(__name__)

REPODATA_JSON = "repodata.json"
# Fields of RepoDataRecord.to_json() that describe where a file lives, not the package.
_LOCATION_FIELDS = ("fn", "url", "channel")


_YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _record_json(record: PackageRecord) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(record.to_json())
    for key in _LOCATION_FIELDS:
        doc.pop(key, None)
    return doc


def _archive_key(file_name: str) -> str:
    if file_name.endswith(".conda"):
        return "packages.conda"
    if file_name.endswith(".tar.bz2"):
        return "packages"
    raise ArchiveError(f"{file_name} is not a conda package file (.conda or .tar.bz2)")


def repodata_json(subdir: str, records: Sequence[RepoDataRecord]) -> bytes:
    """``repodata.json`` for one subdir: locked records as they are, sorted keys, indent 2."""
    doc: dict[str, Any] = {
        "info": {"subdir": subdir},
        "packages": {},
        "packages.conda": {},
        "repodata_version": 2,
    }
    for record in records:
        if record.subdir != subdir:
            raise ArchiveError(
                f"{record.file_name} is for subdir {record.subdir}, not {subdir}",
            )
        table = doc[_archive_key(record.file_name)]
        if record.file_name in table:
            raise ArchiveError(f"{record.file_name} appears twice in channel/{subdir}")
        table[record.file_name] = _record_json(record)
    text = json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False)
    return (text + "\n").encode("utf-8")


def channel_files(
    records_by_subdir: Mapping[str, Sequence[RepoDataRecord]],
    *,
    extra_subdirs: Iterable[str] = ("noarch",),
) -> dict[str, bytes]:
    """Archive name -> ``repodata.json`` bytes for every subdir (``noarch`` always included)."""
    subdirs = sorted(set(records_by_subdir) | set(extra_subdirs))
    return {
        f"{CHANNEL_DIR}/{subdir}/{REPODATA_JSON}": repodata_json(
            subdir, records_by_subdir.get(subdir, ())
        )
        for subdir in subdirs
    }


def record_from_archive(path: Path, *, subdir_hint: str | None = None) -> RepoDataRecord:
    """A repodata record for a built or injected package: its ``info/index.json`` + hashes.

    ``subdir_hint`` fills in a missing subdir; a package whose subdir differs from the hint
    is refused. The record's URL is the file's ``file://`` URL (not written to repodata).
    """
    _archive_key(path.name)
    sha256, md5, size = hash_file(path)
    try:
        record = run_sync(RepoDataRecord.from_package_archive(path))
    except Exception as exc:  # py-rattler raises many unrelated types
        raise ArchiveError(
            f"cannot read the package metadata (info/index.json) of {path}: {exc}",
            hint="pass a valid .conda or .tar.bz2 package",
        ) from exc
    if record.sha256 is not None and record.sha256.hex() != sha256:
        raise ArchiveError(f"{path} changed while it was being read", hint="try again")
    if subdir_hint is not None:
        if record.subdir in ("", "unknown"):
            record.subdir = subdir_hint
        elif record.subdir != subdir_hint:
            raise ArchiveError(
                f"{path.name} is a package for {record.subdir}, expected {subdir_hint}",
                hint=f"use a package built for {subdir_hint}",
            )
    record.sha256 = bytes.fromhex(sha256)
    record.md5 = bytes.fromhex(md5)
    record.size = size
    return record


_MISSING = re.compile(
    r"package '(?P<pkg>[^']+)' has dependency '(?P<dep>[^']+)', which is not in the environment"
)
_CONSTRAINT = re.compile(
    r"package '(?P<pkg>[^']+)' has constraint '(?P<spec>[^']+)', which is not satisfied by "
    r"'(?P<found>[^']+)' in the environment"
)


def validate_records(records: Sequence[PackageRecord]) -> None:
    """Check that the records form a consistent environment (``depends`` and ``constrains``).

    Virtual-package (``__``) dependencies are skipped, as py-rattler does. The first problem
    is raised as a :class:`PixiPackSrcError` naming the missing dependency.
    """
    try:
        PackageRecord.validate(list(records))
    except ValidatePackageRecordsError as exc:
        text = str(exc)
        if m := _MISSING.search(text):
            raise PixiPackSrcError(
                f"`{m['dep']}` is not in the environment (required by {m['pkg']})",
                hint="inject a package that provides it, or add it to the workspace and re-lock",
            ) from None
        if m := _CONSTRAINT.search(text):
            raise PixiPackSrcError(
                f"`{m['found']}` violates the constraint `{m['spec']}` of {m['pkg']}",
                hint="inject a compatible version, or re-lock the workspace",
            ) from None
        raise PixiPackSrcError(f"the packages do not form a valid environment: {text}") from None


def environment_yml(records: Sequence[RepoDataRecord], wheels: Sequence[tuple[str, str]]) -> bytes:
    """``environment.yml`` for conda/micromamba (docs/archive-format.md, "Layout").

    One ``name=version=build`` per conda record, sorted by name, then a ``pip:`` section
    (``--no-index``, ``--find-links ./pypi``, ``name==version`` sorted) if there are wheels.
    """
    specs = sorted(
        (r.name.normalized, f"{r.name.normalized}={r.version}={r.build}") for r in records
    )
    dependencies: list[Any] = [spec for _, spec in specs]
    if wheels:
        if not any(name == "pip" for name, _ in specs):
            logger.warning(
                "the pack has PyPI wheels but no `pip` package: installing environment.yml with "
                "conda or micromamba will not install the wheels"
            )
        pins = sorted(f"{canonicalize_name(name)}=={version}" for name, version in wheels)
        dependencies.append({"pip": ["--no-index", f"--find-links ./{PYPI_DIR}", *pins]})
    doc = {"channels": [f"./{CHANNEL_DIR}", "nodefaults"], "dependencies": dependencies}
    text = yaml.dump(  # libyaml's emitter when there is one: the same text, 7x faster
        doc,
        Dumper=_YAML_DUMPER,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=10_000,
    )
    return text.encode("utf-8")
