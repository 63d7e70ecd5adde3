"""The deterministic tar writer, the directory writer, atomic outputs and safe extraction."""

from __future__ import annotations

import hashlib
import io
import os
import random
import tarfile
import threading
import tracemalloc
from pathlib import Path
from typing import ClassVar

import pytest

from pixi_pack_src.archive import reader
from pixi_pack_src.archive.atomic import atomic_output
from pixi_pack_src.archive.kernel_copy import write_fd
from pixi_pack_src.archive.members import CHUNK, DEFAULT_MTIME, Entry, WrittenEntry, fixed_mtime
from pixi_pack_src.archive.reader import ExtractLimits, safe_extract
from pixi_pack_src.archive.tar import write_directory, write_tar
from pixi_pack_src.errors import ArchiveError, UsageError

LONG = "pypi/" + "a" * 120 + "-1.0-py3-none-any.whl"


def _entries(tmp_path: Path) -> list[Entry]:
    pkg = tmp_path / "zlib-1.3.1-h0_0.conda"
    pkg.write_bytes(b"conda-bytes" * 100)
    return [
        Entry("pixi-pack.json", b'{"version": "1"}\n'),
        Entry("environment.yml", b"channels: []\n"),
        Entry("channel/noarch/repodata.json", b"{}\n"),
        Entry("channel/linux-64/repodata.json", b"{}\n"),
        Entry("channel/linux-64/zlib-1.3.1-h0_0.conda", pkg),
        Entry("a-b/x", b"1"),
        Entry("a/x", b"2", executable=True),
        Entry(LONG, b"wheel"),
    ]


def _tar_bytes(entries: list[Entry], mtime: int | None = None) -> bytes:
    buf = io.BytesIO()
    write_tar(entries, buf, mtime=mtime)
    return buf.getvalue()


def _members(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return tf.getmembers()


# -- write_tar -----------------------------------------------------------------------------


def test_same_entries_give_identical_bytes_whatever_the_input_order(tmp_path: Path) -> None:
    entries = _entries(tmp_path)
    first = _tar_bytes(entries)
    shuffled = entries[:]
    random.Random(7).shuffle(shuffled)
    assert _tar_bytes(shuffled) == first
    assert _tar_bytes(list(reversed(entries))) == first


def test_order_is_per_level_with_parents_first(tmp_path: Path) -> None:
    names = [m.name for m in _members(_tar_bytes(_entries(tmp_path)))]
    # "a" < "a-b" as names at one level, although "a-b/x" < "a/x" as plain strings.
    assert names == [
        "a",
        "a/x",
        "a-b",
        "a-b/x",
        "channel",
        "channel/linux-64",
        "channel/linux-64/repodata.json",
        "channel/linux-64/zlib-1.3.1-h0_0.conda",
        "channel/noarch",
        "channel/noarch/repodata.json",
        "environment.yml",
        "pixi-pack.json",
        "pypi",
        LONG,
    ]


def test_headers_are_normalised(tmp_path: Path) -> None:
    members = _members(_tar_bytes(_entries(tmp_path)))
    for m in members:
        assert (m.mtime, m.uid, m.gid, m.uname, m.gname) == (DEFAULT_MTIME, 0, 0, "", "")
        assert m.type in (tarfile.DIRTYPE, tarfile.REGTYPE)
    modes = {m.name: m.mode for m in members}
    assert modes["channel"] == 0o755
    assert modes["a/x"] == 0o755  # executable entry
    assert modes["a-b/x"] == 0o644
    assert modes["pixi-pack.json"] == 0o644
    # Only the long name needs a PAX record; no global header, no per-entry times.
    assert {m.name: m.pax_headers for m in members if m.pax_headers} == {LONG: {"path": LONG}}
    with tarfile.open(fileobj=io.BytesIO(_tar_bytes(_entries(tmp_path)))) as tf:
        assert tf.pax_headers == {}
    assert DEFAULT_MTIME == 1153704088


def test_snapshot_of_a_fixed_archive() -> None:
    data = _tar_bytes(
        [Entry("pixi-pack.json", b"{}\n"), Entry("channel/noarch/repodata.json", b"{}\n")]
    )
    assert len(data) == 10240  # padded to one tar record
    assert hashlib.sha256(data).hexdigest() == (
        "89b4a2de5d7df1701d0a1b4ae7d67052d36ab76e59b63aeb3f4d17a311b0a399"
    )


def test_source_date_epoch_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert fixed_mtime() == DEFAULT_MTIME
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert fixed_mtime() == 1_700_000_000
    assert {m.mtime for m in _members(_tar_bytes(_entries(tmp_path)))} == {1_700_000_000}
    # An explicit mtime wins over the environment.
    assert {m.mtime for m in _members(_tar_bytes(_entries(tmp_path), mtime=5))} == {5}


@pytest.mark.parametrize("value", ["yesterday", "-1", "1.5", "99999999999999"])
def test_bad_source_date_epoch_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", value)
    with pytest.raises(UsageError, match="SOURCE_DATE_EPOCH"):
        fixed_mtime()


def test_written_entries_hash_what_was_written(tmp_path: Path) -> None:
    entries = _entries(tmp_path)
    buf = io.BytesIO()
    written = write_tar(entries, buf)
    assert [w.arcname for w in written] == [
        "a/x",
        "a-b/x",
        "channel/linux-64/repodata.json",
        "channel/linux-64/zlib-1.3.1-h0_0.conda",
        "channel/noarch/repodata.json",
        "environment.yml",
        "pixi-pack.json",
        LONG,
    ]
    conda = next(w for w in written if w.arcname.endswith(".conda"))
    payload = b"conda-bytes" * 100
    assert conda == WrittenEntry(
        arcname="channel/linux-64/zlib-1.3.1-h0_0.conda",
        sha256=hashlib.sha256(payload).hexdigest(),
        size=1100,
    )
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as tf:
        fh = tf.extractfile(conda.arcname)
        assert fh is not None
        assert fh.read() == payload


def test_long_and_non_ascii_names_round_trip(tmp_path: Path) -> None:
    name = "pypi/" + "b" * 200 + "-ünï-1.0-py3-none-any.whl"
    data = _tar_bytes([Entry(name, b"x")])
    dest = tmp_path / "out"
    path = tmp_path / "a.tar"
    path.write_bytes(data)
    assert safe_extract(path, dest) == [name]
    assert (dest / name).read_bytes() == b"x"


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([Entry("../x", b"")], "'..'"),
        ([Entry("/abs", b"")], "absolute"),
        ([Entry("a\\b", b"")], "backslash"),
        ([Entry("a", b""), Entry("a", b"")], "twice"),
        ([Entry("A.json", b""), Entry("a.json", b"")], "twice"),
        ([Entry("channel", b""), Entry("channel/x", b"")], "also a directory"),
        ([Entry("Channel/x", b""), Entry("channel/y", b"")], "differ only in case"),
    ],
)
def test_bad_entries_are_refused(entries: list[Entry], message: str) -> None:
    with pytest.raises(ArchiveError, match=message):
        write_tar(entries, io.BytesIO())


def test_a_directory_or_fifo_source_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="not a regular file"):
        write_tar([Entry("x", tmp_path)], io.BytesIO())
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(ArchiveError, match="not a regular file"):
        write_tar([Entry("x", tmp_path / "fifo")], io.BytesIO())


def test_missing_source_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="cannot read"):
        write_tar([Entry("x", tmp_path / "missing")], io.BytesIO())


def test_streams_to_a_pipe(tmp_path: Path) -> None:
    entries = _entries(tmp_path)
    big = tmp_path / "big.conda"
    big.write_bytes(os.urandom(3 * 1024 * 1024 + 17))  # larger than the pipe buffer
    entries.append(Entry("channel/linux-64/big.conda", big))
    r, w = os.pipe()
    received = bytearray()

    def drain() -> None:
        with os.fdopen(r, "rb") as fh:
            while chunk := fh.read(65536):
                received.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    with os.fdopen(w, "wb") as out:
        write_tar(entries, out)
    reader.join()
    assert bytes(received) == _tar_bytes(entries)


class _Sink(io.RawIOBase):
    def __init__(self) -> None:
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, b: object) -> int:
        n = memoryview(b).nbytes  # type: ignore[arg-type]
        self.count += n
        return n


@pytest.mark.slow
def test_memory_stays_flat_for_a_300_mb_file(tmp_path: Path) -> None:
    size = 300 * 1024 * 1024
    big = tmp_path / "big.conda"
    with big.open("wb") as fh:
        fh.truncate(size)  # sparse: no disk used
    progress: list[int] = []
    sink = _Sink()
    tracemalloc.start()
    try:
        written = write_tar(
            [Entry("channel/noarch/big.conda", big)],
            sink,
            on_bytes=progress.append,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024
    assert sum(progress) == size
    assert written[0].size == size
    assert sink.count == size + 10240  # 3 headers + end blocks, padded to one 10 KiB record


def test_a_file_shrinking_underneath_is_an_error(tmp_path: Path) -> None:
    src = tmp_path / "pkg.conda"
    src.write_bytes(b"x" * (3 * CHUNK))

    def shrink(_: int) -> None:
        with src.open("r+b") as fh:
            fh.truncate(CHUNK + 10)

    with pytest.raises(ArchiveError, match="changed while being archived"):
        write_tar([Entry("channel/noarch/pkg.conda", src)], io.BytesIO(), on_bytes=shrink)


def test_a_file_changing_underneath_shows_in_the_returned_hash(tmp_path: Path) -> None:
    src = tmp_path / "pkg.conda"
    original = b"x" * (2 * CHUNK)
    src.write_bytes(original)

    def tamper(_: int) -> None:
        with src.open("r+b") as fh:
            fh.seek(CHUNK + 5)
            fh.write(b"EVIL")

    buf = io.BytesIO()
    (written,) = write_tar([Entry("p.conda", src)], buf, on_bytes=tamper)
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as tf:
        fh = tf.extractfile("p.conda")
        assert fh is not None
        actual = fh.read()
    assert written.sha256 == hashlib.sha256(actual).hexdigest()
    assert written.sha256 != hashlib.sha256(original).hexdigest()


class _RecordingSha256:
    """hashlib.sha256 that notes the thread of every update."""

    threads: ClassVar[list[str]] = []

    def __init__(self) -> None:
        self._real = _REAL_SHA256()

    def update(self, data: bytes | memoryview) -> None:
        _RecordingSha256.threads.append(threading.current_thread().name)
        self._real.update(data)

    def hexdigest(self) -> str:
        return self._real.hexdigest()


_REAL_SHA256 = hashlib.sha256


def test_multi_chunk_files_are_hashed_on_the_helper_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = random.Random(7).randbytes(3 * CHUNK + 1234)
    src = tmp_path / "big.conda"
    src.write_bytes(payload)
    entries = [Entry("channel/noarch/big.conda", src), Entry("pixi-pack.json", b"{}\n")]
    monkeypatch.setattr(hashlib, "sha256", _RecordingSha256)
    expected = [
        ("channel/noarch/big.conda", _REAL_SHA256(payload).hexdigest(), len(payload)),
        ("pixi-pack.json", _REAL_SHA256(b"{}\n").hexdigest(), 3),
    ]
    main = threading.current_thread().name
    for target in ("tar", "directory"):
        _RecordingSha256.threads = []
        written: list[WrittenEntry]
        if target == "tar":
            written = write_tar(entries, io.BytesIO())
        else:
            written = write_directory(entries, tmp_path / "dir")
        assert [(w.arcname, w.sha256, w.size) for w in written] == expected
        # the big file's four chunks on the helper thread, the one-chunk file inline
        assert sorted(set(_RecordingSha256.threads)) == sorted({main, "pixi-pack-src-sha256_0"})
        assert _RecordingSha256.threads.count("pixi-pack-src-sha256_0") == 4
        assert _RecordingSha256.threads.count(main) == 1
    buf = io.BytesIO()
    write_tar(entries, buf)
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as tf:
        fh = tf.extractfile("channel/noarch/big.conda")
        assert fh is not None
        assert fh.read() == payload


class _FailingWriter(io.RawIOBase):
    def __init__(self, fail_at: int) -> None:
        self.calls = 0
        self.fail_at = fail_at

    def writable(self) -> bool:
        return True

    def write(self, b: object) -> int:
        self.calls += 1
        if self.calls == self.fail_at:
            raise OSError(28, "No space left on device")
        return memoryview(b).nbytes  # type: ignore[arg-type]


def test_a_write_failure_mid_file_propagates_and_stops_the_helper(tmp_path: Path) -> None:
    src = tmp_path / "big.conda"
    src.write_bytes(b"y" * (4 * CHUNK))
    out = _FailingWriter(fail_at=3)  # header, chunk 1, then chunk 2 fails
    with pytest.raises(OSError, match="No space left on device"):
        write_tar([Entry("big.conda", src)], out)
    assert out.calls == 3
    assert [
        t.name for t in threading.enumerate() if t.name.startswith("pixi-pack-src-sha256")
    ] == []


# -- write_directory -----------------------------------------------------------------------


def test_write_directory(tmp_path: Path) -> None:
    dest = tmp_path / "environment"
    written = write_directory(_entries(tmp_path), dest)
    assert written == write_tar(_entries(tmp_path), io.BytesIO())
    assert (dest / "channel/linux-64/zlib-1.3.1-h0_0.conda").read_bytes() == b"conda-bytes" * 100
    assert (dest / "a/x").stat().st_mode & 0o777 == 0o755
    assert (dest / "pixi-pack.json").stat().st_mode & 0o777 == 0o644
    assert (dest / "channel").stat().st_mode & 0o777 == 0o755
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert files == sorted(w.arcname for w in written)


def test_write_directory_refuses_a_non_empty_destination(tmp_path: Path) -> None:
    (tmp_path / "environment").mkdir()
    (tmp_path / "environment" / "keep").write_text("mine")
    with pytest.raises(ArchiveError, match="not an empty directory"):
        write_directory([Entry("x", b"")], tmp_path / "environment")
    assert (tmp_path / "environment" / "keep").read_text() == "mine"


# -- atomic_output -------------------------------------------------------------------------


def test_atomic_output_renames_on_success(tmp_path: Path) -> None:
    target = tmp_path / "environment.tar"
    target.write_bytes(b"old")
    with atomic_output(target) as tmp:
        assert tmp.parent == tmp_path
        assert not tmp.exists()
        tmp.write_bytes(b"new")
        assert target.read_bytes() == b"old"
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["environment.tar"]


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt()])
def test_atomic_output_leaves_nothing_on_failure(tmp_path: Path, exc: BaseException) -> None:
    target = tmp_path / "environment.tar"

    def fail() -> None:
        with atomic_output(target) as tmp:
            tmp.write_bytes(b"half")
            raise exc

    with pytest.raises(type(exc)):
        fail()
    assert list(tmp_path.iterdir()) == []


def test_atomic_output_keeps_the_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "environment.tar"
    target.write_bytes(b"old")

    def fail() -> None:
        with atomic_output(target) as tmp:
            tmp.write_bytes(b"new")
            raise RuntimeError

    with pytest.raises(RuntimeError):
        fail()
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["environment.tar"]


def test_atomic_output_for_directories(tmp_path: Path) -> None:
    target = tmp_path / "environment"

    def fail() -> None:
        with atomic_output(target) as tmp:
            write_directory([Entry("pixi-pack.json", b"{}")], tmp)
            raise RuntimeError

    with pytest.raises(RuntimeError):
        fail()
    assert list(tmp_path.iterdir()) == []
    with atomic_output(target) as tmp:
        write_directory([Entry("pixi-pack.json", b"1")], tmp)
    # A previous pack is replaced.
    with atomic_output(target) as tmp:
        write_directory([Entry("pixi-pack.json", b"2"), Entry("environment.yml", b"")], tmp)
    assert (target / "pixi-pack.json").read_bytes() == b"2"
    assert [p.name for p in tmp_path.iterdir()] == ["environment"]


def test_atomic_output_never_replaces_a_foreign_directory(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "thesis.tex").write_text("precious")
    with pytest.raises(ArchiveError, match="not a pack"), atomic_output(home):
        pass
    assert (home / "thesis.tex").read_text() == "precious"


def test_atomic_output_needs_an_existing_parent(tmp_path: Path) -> None:
    with (
        pytest.raises(ArchiveError, match="does not exist"),
        atomic_output(tmp_path / "no" / "env.tar"),
    ):
        pass


def test_atomic_output_with_nothing_written(tmp_path: Path) -> None:
    with (
        pytest.raises(ArchiveError, match="nothing was written"),
        atomic_output(tmp_path / "env.tar"),
    ):
        pass


# -- safe_extract --------------------------------------------------------------------------


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "environment.tar"
    path.write_bytes(_tar_bytes(_entries(tmp_path)))
    dest = tmp_path / "out"
    names = safe_extract(path, dest)
    assert names == [w.arcname for w in write_tar(_entries(tmp_path), io.BytesIO())]
    assert (dest / "pixi-pack.json").read_bytes() == b'{"version": "1"}\n'
    assert (dest / "a/x").stat().st_mode & 0o777 == 0o755
    assert (dest / "a-b/x").stat().st_mode & 0o777 == 0o644


def test_extract_from_a_stream(tmp_path: Path) -> None:
    data = _tar_bytes(_entries(tmp_path))
    work = tmp_path / "work"
    work.mkdir()
    r, w = os.pipe()

    def feed() -> None:
        with os.fdopen(w, "wb") as fh:
            fh.write(data)

    feeder = threading.Thread(target=feed)
    feeder.start()
    with os.fdopen(r, "rb") as stdin:
        names = safe_extract(stdin, work / "out")
    feeder.join()
    assert "pixi-pack.json" in names
    assert (work / "out" / LONG).read_bytes() == b"wheel"
    assert [p.name for p in work.iterdir()] == ["out"]  # the spool file is gone


def test_accepts_members_without_directory_entries(tmp_path: Path) -> None:
    # pixi-pack writes directory entries, other tools may not.
    path = tmp_path / "plain.tar"
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tf:
        info = tarfile.TarInfo("channel/noarch/repodata.json")
        info.size = 2
        tf.addfile(info, io.BytesIO(b"{}"))
    assert safe_extract(path, tmp_path / "out") == ["channel/noarch/repodata.json"]


def test_an_empty_existing_destination_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "a.tar"
    path.write_bytes(_tar_bytes([Entry("x", b"1")]))
    (tmp_path / "out").mkdir()
    assert safe_extract(path, tmp_path / "out") == ["x"]


def test_refuses_a_non_empty_destination(tmp_path: Path) -> None:
    path = tmp_path / "a.tar"
    path.write_bytes(_tar_bytes([Entry("x", b"1")]))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep").write_text("mine")
    with pytest.raises(ArchiveError, match="not an empty directory"):
        safe_extract(path, tmp_path / "out")


def test_extraction_without_the_data_filter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reader, "_HAS_DATA_FILTER", False)
    path = tmp_path / "environment.tar"
    path.write_bytes(_tar_bytes(_entries(tmp_path)))
    dest = tmp_path / "out"
    assert len(safe_extract(path, dest)) == 8
    assert (dest / "channel/linux-64/zlib-1.3.1-h0_0.conda").read_bytes() == b"conda-bytes" * 100
    assert (dest / "a/x").stat().st_mode & 0o777 == 0o755
    assert (dest / "pixi-pack.json").stat().st_mode & 0o777 == 0o644


def test_a_failure_during_extraction_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "environment.tar"
    path.write_bytes(_tar_bytes(_entries(tmp_path)))
    real = write_fd
    calls: list[int] = []

    def disk_full(fd: int, data: bytes | bytearray | memoryview) -> None:
        calls.append(fd)
        if len(calls) > 3:
            raise OSError(28, "No space left on device")
        real(fd, data)

    monkeypatch.setattr(reader, "write_fd", disk_full)
    with pytest.raises(ArchiveError, match="No space left"):
        safe_extract(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_extraction_hashes_every_file_as_it_is_written(tmp_path: Path) -> None:
    entries = _entries(tmp_path)
    big = tmp_path / "big.conda"
    big.write_bytes(random.Random(3).randbytes(3 * CHUNK + 5))
    entries.append(Entry("channel/noarch/big-1-0.conda", big))
    path = tmp_path / "environment.tar"
    path.write_bytes(_tar_bytes(entries))
    dest = tmp_path / "out"
    files = safe_extract(path, dest)
    assert sorted(files.digests) == sorted(files)
    for name in files:
        data = (dest / name).read_bytes()
        assert files.digests[name] == (hashlib.sha256(data).hexdigest(), len(data))


def test_limits_default_values(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ExtractLimits() == ExtractLimits(
        max_members=200_000,
        max_metadata_bytes=16 * 1024 * 1024,
        max_total_bytes=None,
        max_header_bytes=1024 * 1024,
    )
    monkeypatch.setenv("PIXI_PACK_SRC_MAX_METADATA_BYTES", "1000")
    assert ExtractLimits().max_metadata_bytes == 1000


def test_accepts_a_gnu_tar_without_record_padding(tmp_path: Path) -> None:
    # Shaped like pixi-pack's Rust writer: GNU headers, ././@LongLink names, and the archive
    # ends right after its two zero blocks.
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for name, data in (("pixi-pack.json", b"{}"), (LONG, b"wheel")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    data = buf.getvalue().rstrip(b"\0")
    data += bytes(-len(data) % 512) + bytes(1024)
    path = tmp_path / "gnu.tar"
    path.write_bytes(data)
    assert safe_extract(path, tmp_path / "out") == ["pixi-pack.json", LONG]
