"""Writing an archive while its files arrive: the one-item writer, rewinding, pack/early.py."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from pixi_pack_src.archive.members import Entry
from pixi_pack_src.archive.tar import TarWriter, archive_order, write_tar
from pixi_pack_src.fetch.download import Artifact, Fetched
from pixi_pack_src.hashing import FileIdentity, Verified
from pixi_pack_src.lock.model import Hashes
from pixi_pack_src.pack.early import EarlyArchive

BIG = 200 * 1024  # above the kernel-copy threshold (archive.kernel_copy.SMALL)


def _file(tmp_path: Path, name: str, size: int, seed: int) -> tuple[Path, Verified]:
    path = tmp_path / "files" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (hashlib.sha256(f"{seed}".encode()).digest() * (size // 32 + 1))[:size]
    path.write_bytes(data)
    return path, Verified(hashlib.sha256(data).hexdigest(), FileIdentity.of_path(path))


def _fetched(key: str, path: Path, verified: Verified) -> Fetched:
    artifact = Artifact(key, path.name, (f"https://example.invalid/{key}",), Hashes(), "conda")
    size = path.stat().st_size
    return Fetched(
        artifact, path, verified.sha256, "", size, "download", None, 0, "lock-sha256", verified
    )


@pytest.mark.parametrize("sha256", [False, True])
def test_rewound_writer_writes_the_bytes_of_one_pass(tmp_path: Path, sha256: bool) -> None:
    a, va = _file(tmp_path, "a.conda", BIG, 1)
    b, vb = _file(tmp_path, "b.conda", 3000, 2)
    c, vc = _file(tmp_path, "c.conda", BIG + 7, 3)
    guessed = [
        Entry("channel/linux-64/a.conda", a, verified=va),
        Entry("channel/linux-64/b.conda", c, verified=vc),  # the wrong file under this name
    ]
    final = [
        Entry("channel/linux-64/a.conda", a, verified=va),
        Entry("channel/linux-64/b.conda", b, verified=vb),
        Entry("channel/linux-64/repodata.json", b'{"packages": {}}\n'),
        Entry("pixi-pack.json", b"{}\n"),
    ]
    one_pass = tmp_path / "one.tar"
    with one_pass.open("wb") as fh:
        expected = write_tar(final, fh, sha256=sha256)
    early = tmp_path / "early.tar"
    with early.open("w+b") as fh:  # readable: the archive's hash is taken again
        writer = TarWriter(fh, sha256=sha256)
        try:
            for name, entry in archive_order(guessed):
                writer.add(name, entry)
            assert [i.name for i in writer.items] == [
                "channel",
                "channel/linux-64",
                "channel/linux-64/a.conda",
                "channel/linux-64/b.conda",
            ]
            writer.rewind(3)  # keep the directories and a.conda
            for name, entry in archive_order(final)[3:]:
                writer.add(name, entry)
            written = writer.finish()
        finally:
            writer.close()
    data = early.read_bytes()
    assert data == one_pass.read_bytes()
    assert written.size == len(data) == expected.size
    assert [(w.arcname, w.sha256) for w in written] == [(w.arcname, w.sha256) for w in expected]
    assert written.sha256 == (hashlib.sha256(data).hexdigest() if sha256 else None)


def _order(names: list[str], keys: dict[str, str]) -> list[tuple[str, str | None]]:
    return [(n, keys.get(n)) for n, _ in archive_order([Entry(n, b"") for n in names])]


def test_early_archive_keeps_what_holds_and_rewrites_the_rest(tmp_path: Path) -> None:
    a, va = _file(tmp_path, "a-1-0.conda", BIG, 1)
    b, vb = _file(tmp_path, "b-1-0.conda", BIG, 2)
    b2, vb2 = _file(tmp_path, "b2/b-1-0.conda", 5000, 3)  # --inject-like: same name, other file
    names = ["channel/linux-64/a-1-0.conda", "channel/linux-64/b-1-0.conda"]
    keys = {names[0]: "A", names[1]: "B"}
    out = tmp_path / "out" / "env.tar"
    early = EarlyArchive(out, _order(names, keys), sha256=True)
    try:
        early.fetched(_fetched("A", a, va))
        early.fetched(_fetched("B", b, vb))
        early.fetched(_fetched("unknown", b2, vb2))  # not this archive's: ignored
        final = [
            Entry(names[0], a, verified=va),
            Entry(names[1], b2, verified=vb2),
            Entry("channel/linux-64/repodata.json", b"{}\n"),
            Entry("environment.yml", b"channels: []\n"),
        ]
        progress: list[int] = []
        written = early.finish(final, on_bytes=progress.append)
        assert not out.exists()  # nameless until committed
        early.commit()
    except BaseException as exc:
        early.abort(exc)
        raise
    one_pass = tmp_path / "one.tar"
    with one_pass.open("wb") as fh:
        write_tar(final, fh)
    assert out.read_bytes() == one_pass.read_bytes()
    assert written.sha256 == hashlib.sha256(out.read_bytes()).hexdigest()
    assert sum(progress) == BIG + 5000 + 3 + 13  # every file's bytes counted once
    assert sorted(p.name for p in out.parent.iterdir()) == ["env.tar"]


def test_an_abandoned_early_archive_leaves_nothing(tmp_path: Path) -> None:
    a, va = _file(tmp_path, "a-1-0.conda", BIG, 1)
    name = "channel/linux-64/a-1-0.conda"
    out_dir = tmp_path / "out"
    early = EarlyArchive(out_dir / "env.tar", _order([name], {name: "A"}), sha256=False)
    early.fetched(_fetched("A", a, va))
    early.abort(RuntimeError("a download failed"))
    early.abort()  # twice is harmless
    assert list(out_dir.iterdir()) == []
