"""The tar and directory writers' kernel copies: verified files are copied without passing
through Python (copy_file_range, sendfile, FICLONE) and the output is byte-identical to the
read/write fallback; a verified file that changed is hashed, or refused mid-copy."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pixi_pack_src.archive import sink
from pixi_pack_src.archive.kernel_copy import SMALL
from pixi_pack_src.archive.members import CHUNK, Entry, WrittenEntry
from pixi_pack_src.archive.tar import write_directory, write_tar
from pixi_pack_src.errors import ArchiveError
from pixi_pack_src.hashing import FileIdentity, Verified


def _verified_entries(tmp_path: Path) -> list[Entry]:
    rng = __import__("random").Random(15)
    sizes = {
        "channel/linux-64/big-1-0.conda": 3 * CHUNK + 123,
        "channel/linux-64/mid-1-0.conda": SMALL + 1,
        "channel/noarch/tiny-1-0.tar.bz2": 700,
        "channel/noarch/empty-1-0.conda": 0,
        "pypi/w-1-py3-none-any.whl": SMALL - 1,
    }
    entries: list[Entry] = []
    for name, size in sizes.items():
        path = tmp_path / "src" / name.replace("/", "_")
        path.parent.mkdir(exist_ok=True)
        data = rng.randbytes(size)
        path.write_bytes(data)
        verified = Verified(hashlib.sha256(data).hexdigest(), FileIdentity.of_path(path))
        entries.append(Entry(name, path, verified=verified))
    entries.append(Entry("pixi-pack.json", b'{"version": 1}\n'))
    entries.append(Entry("bin/tool", tmp_path / "src" / "pypi_w-1-py3-none-any.whl", True))
    return entries


class _NoFileno(io.BytesIO):
    """An output that sees every byte (as a hashing wrapper does): no descriptor."""

    def fileno(self) -> int:
        raise io.UnsupportedOperation("no descriptor")


def _fallback_bytes(entries: list[Entry]) -> tuple[bytes, list[WrittenEntry]]:
    out = _NoFileno()
    written = write_tar(entries, out)
    return out.getvalue(), written


def _count(monkeypatch: pytest.MonkeyPatch, name: str, fail: int | None = None) -> list[int]:
    calls: list[int] = []
    real: Callable[..., int] = getattr(os, name)

    def wrapper(*args: Any) -> int:
        calls.append(1)
        if fail is not None:
            raise OSError(fail, os.strerror(fail))
        return real(*args)

    monkeypatch.setattr(os, name, wrapper)
    return calls


def test_kernel_copy_is_byte_identical_to_the_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = _verified_entries(tmp_path)
    expected, fallback_written = _fallback_bytes(entries)
    copies = _count(monkeypatch, "copy_file_range")
    with (tmp_path / "out.tar").open("wb") as fh:
        fh.write(b"")  # a buffered file object, as pack passes
        written = write_tar(entries, fh)
    assert (tmp_path / "out.tar").read_bytes() == expected
    # two verified files are large enough for the kernel (one call per 64 MiB each)
    assert len(copies) == 2
    assert [(w.arcname, w.hashed) for w in written] == [
        ("bin/tool", True),  # not verified: hashed while written
        ("channel/linux-64/big-1-0.conda", False),
        ("channel/linux-64/mid-1-0.conda", False),
        ("channel/noarch/empty-1-0.conda", False),
        ("channel/noarch/tiny-1-0.tar.bz2", False),
        ("pixi-pack.json", True),
        ("pypi/w-1-py3-none-any.whl", False),
    ]
    assert [(w.arcname, w.sha256, w.size) for w in written] == [
        (w.arcname, w.sha256, w.size) for w in fallback_written
    ]
    assert all(w.hashed for w in fallback_written if w.arcname == "pixi-pack.json")
    # kernel_copy=False: the same bytes read and written by us
    with (tmp_path / "plain.tar").open("wb") as fh:
        write_tar(entries, fh, kernel_copy=False)
    assert (tmp_path / "plain.tar").read_bytes() == expected
    assert len(copies) == 2


def test_sendfile_then_read_write_when_copy_file_range_cannot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = _verified_entries(tmp_path)
    expected, _ = _fallback_bytes(entries)
    copies = _count(monkeypatch, "copy_file_range", fail=errno.EXDEV)
    sends = _count(monkeypatch, "sendfile")
    with (tmp_path / "a.tar").open("wb") as fh:
        write_tar(entries, fh)
    assert (tmp_path / "a.tar").read_bytes() == expected
    assert len(copies) == 1  # tried once, then remembered as unusable for this output
    assert len(sends) == 2
    _count(monkeypatch, "sendfile", fail=errno.EINVAL)
    with (tmp_path / "b.tar").open("wb") as fh:
        write_tar(entries, fh)
    assert (tmp_path / "b.tar").read_bytes() == expected


def test_kernel_copy_into_a_pipe(tmp_path: Path) -> None:
    entries = _verified_entries(tmp_path)
    expected, _ = _fallback_bytes(entries)
    read_end, write_end = os.pipe()
    received = bytearray()

    def drain() -> None:
        with os.fdopen(read_end, "rb") as fh:
            while chunk := fh.read(1 << 16):
                received.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    with os.fdopen(write_end, "wb") as out:
        write_tar(entries, out)
    reader.join()
    assert bytes(received) == expected


def test_a_verified_file_changed_before_the_write_is_hashed_instead(tmp_path: Path) -> None:
    entries = _verified_entries(tmp_path)
    big = entries[0]
    assert isinstance(big.source, Path)
    data = bytearray(big.source.read_bytes())
    data[5] ^= 1
    big.source.write_bytes(bytes(data))  # the identity moves: the record no longer vouches
    out = io.BytesIO()
    written = write_tar(entries, out)
    got = next(w for w in written if w.arcname == big.arcname)
    assert got.hashed is True
    assert got.sha256 == hashlib.sha256(data).hexdigest()
    assert big.verified is not None
    assert got.sha256 != big.verified.sha256  # the caller's check against the lock refuses it


def test_a_verified_file_changing_during_the_copy_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = _verified_entries(tmp_path)
    big = entries[0]
    assert isinstance(big.source, Path)
    real = os.copy_file_range
    source = big.source

    def copy_then_touch(src: int, dst: int, count: int, *args: Any) -> int:
        n = real(src, dst, count, *args)
        os.utime(source, ns=(1, 1))
        return n

    monkeypatch.setattr(os, "copy_file_range", copy_then_touch)
    with (
        (tmp_path / "out.tar").open("wb") as fh,
        pytest.raises(ArchiveError, match="changed while being archived as channel/linux-64/big"),
    ):
        write_tar(entries, fh)


def test_write_directory_copies_verified_files_in_the_kernel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = _verified_entries(tmp_path)
    reference = write_directory(entries, tmp_path / "plain", kernel_copy=False)
    copies = _count(monkeypatch, "copy_file_range")
    written = write_directory(entries, tmp_path / "fast")
    assert [(w.arcname, w.sha256, w.size) for w in written] == [
        (w.arcname, w.sha256, w.size) for w in reference
    ]
    for entry in entries:
        fast = tmp_path / "fast" / entry.arcname
        plain = tmp_path / "plain" / entry.arcname
        assert fast.read_bytes() == plain.read_bytes()
        assert fast.stat().st_mode == plain.stat().st_mode
    # FICLONE where the file system has reflinks, else copy_file_range for each non-empty
    # verified file
    assert len(copies) in (0, 4)


def test_the_archive_sha256_on_the_fly_with_kernel_copies(tmp_path: Path) -> None:
    entries = _verified_entries(tmp_path)
    expected, _ = _fallback_bytes(entries)
    with (tmp_path / "out.tar").open("wb") as fh:
        written = write_tar(entries, fh, sha256=True)
    assert (tmp_path / "out.tar").read_bytes() == expected
    assert written.sha256 == hashlib.sha256(expected).hexdigest()
    assert written.size == len(expected)
    plain = write_tar(entries, _NoFileno(), sha256=True)
    assert plain.sha256 == written.sha256
    assert write_tar(entries, _NoFileno()).sha256 is None


def test_a_file_changed_after_its_copy_before_its_hash_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = _verified_entries(tmp_path)
    big = entries[0]
    source = big.source
    assert isinstance(source, Path)
    real = sink._hash_fd

    def late(sha: Any, fd: int, size: int, identity: FileIdentity) -> None:
        os.utime(source, ns=(1, 1))  # after the writer's own identity check
        real(sha, fd, size, identity)

    monkeypatch.setattr(sink, "_hash_fd", late)
    with (
        (tmp_path / "out.tar").open("wb") as fh,
        pytest.raises(ArchiveError, match="changed while being archived"),
    ):
        write_tar(entries, fh, sha256=True)


def test_a_wrapper_with_a_fileno_is_written_through(tmp_path: Path) -> None:
    """gzip.GzipFile's fileno() is its underlying file's: writing there would skip gzip."""
    import gzip

    entries = _verified_entries(tmp_path)
    expected, _ = _fallback_bytes(entries)
    with (
        (tmp_path / "out.tar.gz").open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz,
    ):
        write_tar(entries, gz)
    assert gzip.decompress((tmp_path / "out.tar.gz").read_bytes()) == expected
