"""Packs through an ``oci://`` mirror and from ``s3://``, against real protocol servers on the
loopback: the reference OCI registry (Debian's docker-registry, conda packages pushed with oras
the way ghcr.io/channel-mirrors lays them out) and an S3 server (moto's server mode). Every
byte is checked against the lock's sha256; credentials come from a keyring backend and from
the auth file; no secret reaches the output."""

from __future__ import annotations

import json
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from testworld import keyring_backend, oci_registry, s3_server
from testworld.fixtures import WorkspaceFactory
from testworld.layout import World
from testworld.oci_registry import OciRegistry
from testworld.s3_server import S3Server
from testworld.server import WorldServer

from pixi_pack_src.cli import run
from pixi_pack_src.lock.lockfile import load_lock

pytestmark = pytest.mark.integration

DEAD = "http://127.0.0.1:9"  # the lock's channel host: nothing listens there
BUCKET = "world-bucket"
KEY_ID = "AKIDPIXIPACKSRC"
SECRET = "s3-5ecret-acce55-key"
SPECS = ["chain-a"]


def _members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {
            m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile()
        }


def _provenance(archive: Path) -> list[dict[str, object]]:
    doc = json.loads(_members(archive)["pixi-pack-src.json"])
    artifacts: list[dict[str, object]] = doc["artifacts"]
    return artifacts


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OciRegistry]:
    reason = oci_registry.unavailable()
    if reason is not None:
        pytest.skip(reason)
    with OciRegistry(tmp_path_factory.mktemp("oci")) as reg:
        yield reg


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    reason = s3_server.unavailable()
    if reason is not None:
        pytest.skip(reason)
    with S3Server() as server:
        server.create_bucket(BUCKET)
        yield server


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No AWS credentials or metadata service from the machine: only what the test gives."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


def _dead_lock_workspace(
    workspace_factory: WorkspaceFactory, channel_server: WorldServer
) -> tuple[Path, Path]:
    ws = workspace_factory({"default": SPECS})
    ws.lock_path.write_text(ws.lock_path.read_text().replace(channel_server.url, DEAD))
    return ws.root, ws.lock_path


def _locked(lock_path: Path) -> list[tuple[str, str, str]]:
    """``(subdir, file name, sha256)`` of every conda package in the lock."""
    lock = load_lock(lock_path)
    env = lock.select("default", "linux-64")
    return sorted({(p.subdir, p.file_name, p.hashes.sha256 or "") for p in env.conda})


# -- OCI ----------------------------------------------------------------------------------------


def test_pack_through_an_oci_mirror(
    registry: OciRegistry,
    world: World,
    workspace_factory: WorkspaceFactory,
    channel_server: WorldServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(registry.ca_file))
    root, lock_path = _dead_lock_workspace(workspace_factory, channel_server)
    locked = _locked(lock_path)
    assert len(locked) >= 2
    prefix = "channel-mirrors/world-oci"
    for subdir, name, _sha in locked:
        registry.push_conda(prefix, subdir, world.channel_dir / subdir / name)
    # the workspace's own .pixi/config.toml (pixi's layer 4) names the mirror, as pixi reads it
    (root / ".pixi").mkdir(exist_ok=True)
    (root / ".pixi" / "config.toml").write_text(
        f'[mirrors]\n"{DEAD}/channel" = [\n  "{registry.url(prefix)}",\n]\n', encoding="utf-8"
    )
    out = tmp_path / "env.tar"
    code = run(["pack", str(root), "-o", str(out), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert channel_server.hits() == 0
    members = _members(out)
    artifacts = _provenance(out)
    assert len(artifacts) == len(locked)
    for subdir, name, _sha in locked:
        data = members[f"channel/{subdir}/{name}"]
        assert data == (world.channel_dir / subdir / name).read_bytes()
    assert sorted(str(a["sha256"]) for a in artifacts) == sorted(sha for _, _, sha in locked)
    for artifact in artifacts:
        origin = artifact["origin"]
        assert isinstance(origin, dict)
        assert str(origin["url"]).startswith(f"{DEAD}/channel/")
        assert origin["verified-against"] == "lock-sha256"
    result = json.loads(captured.out)
    assert {
        str(a["source"]).split("/channel/")[0] for a in result["platforms"][0]["artifacts"]
    } == {DEAD}


def test_oci_mirror_serving_other_bytes_is_refused(
    registry: OciRegistry,
    world: World,
    workspace_factory: WorkspaceFactory,
    channel_server: WorldServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The registry holds a package under the right tag but with other bytes: sha256 says no."""
    monkeypatch.setenv("SSL_CERT_FILE", str(registry.ca_file))
    root, lock_path = _dead_lock_workspace(workspace_factory, channel_server)
    locked = _locked(lock_path)
    prefix = "channel-mirrors/world-oci-tampered"
    (subdir, name, _sha), *rest = locked
    tampered = tmp_path / "tampered" / name
    tampered.parent.mkdir()
    data = bytearray((world.channel_dir / subdir / name).read_bytes())
    data[-1] ^= 0xFF
    tampered.write_bytes(bytes(data))
    registry.push_conda(prefix, subdir, tampered)
    for sub, other, _ in rest:
        registry.push_conda(prefix, sub, world.channel_dir / sub / other)
    config = tmp_path / "config.toml"
    config.write_text(f'[mirrors]\n"{DEAD}/channel" = ["{registry.url(prefix)}"]\n')
    out = tmp_path / "env.tar"
    code = run(["pack", str(root), "-o", str(out), "-c", str(config)])
    err = capsys.readouterr().err
    assert code == 3, err
    assert f"sha256 mismatch for {name}" in err
    assert not out.exists()


# -- S3 -----------------------------------------------------------------------------------------


def _s3_config(tmp_path: Path, s3: S3Server, mirrors: str = "") -> Path:
    config = tmp_path / "config.toml"
    config.write_text(
        mirrors + f"[s3-options.{BUCKET}]\n"
        f'endpoint-url = "{s3.endpoint}"\nregion = "us-east-1"\nforce-path-style = true\n',
        encoding="utf-8",
    )
    return config


def _s3_signers(s3: S3Server) -> set[str]:
    """The access key ids that signed the GETs the server answered."""
    keys = set()
    for line in s3.requests:
        if line.startswith("GET ") and "X-Amz-Credential=" in line:
            keys.add(line.split("X-Amz-Credential=")[1].split("%2F")[0].split("/")[0])
    return keys


def test_pack_from_an_s3_channel_with_keyring_credentials(
    s3: S3Server,
    world: World,
    workspace_factory: WorkspaceFactory,
    channel_server: WorldServer,
    tmp_path: Path,
    aws_env: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The lock's channel is ``s3://bucket/channel`` (pixi's S3 channels); the credentials are
    where ``pixi auth login s3://bucket`` puts them: the OS keyring."""
    ws = workspace_factory({"default": SPECS})
    text = ws.lock_path.read_text().replace(
        f"{channel_server.url}/channel", f"s3://{BUCKET}/kr/channel"
    )
    # rattler derives `subdir` from http(s) channel URLs only: pixi writes it for s3:// ones
    text = re.sub(r"^(- conda: s3://\S+/([^/\s]+)/[^/\s]+)$", r"\1\n  subdir: \2", text, flags=re.M)
    ws.lock_path.write_text(text)
    locked = _locked(ws.lock_path)
    for subdir, name, _sha in locked:
        s3.upload(BUCKET, f"kr/channel/{subdir}/{name}", world.channel_dir / subdir / name)
    config = _s3_config(tmp_path, s3)
    ring = tmp_path / "keyring.json"
    s3_credential = {
        "S3Credentials": {
            "access_key_id": KEY_ID,
            "secret_access_key": SECRET,
            "session_token": None,
        }
    }
    keyring_backend.store(ring, {f"s3://{BUCKET}": s3_credential})
    out = tmp_path / "env.tar"
    s3.reset_log()
    with keyring_backend.use_file_keyring(ring):
        code = run(["-vv", "pack", str(ws.root), "-o", str(out), "-c", str(config), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert _s3_signers(s3) == {KEY_ID}
    assert len([line for line in s3.requests if line.startswith("GET ")]) == len(locked)
    members = _members(out)
    for subdir, name, _sha in locked:
        assert (
            members[f"channel/{subdir}/{name}"] == (world.channel_dir / subdir / name).read_bytes()
        )
    assert {a["origin"]["verified-against"] for a in _provenance(out)} == {"lock-sha256"}  # type: ignore[index]
    for blob in (captured.err.encode(), captured.out.encode(), out.read_bytes()):
        assert SECRET.encode() not in blob
    assert not list(tmp_path.rglob("rattler-credentials.json"))  # the bridge file is gone


def test_s3_mirror_with_auth_file_credentials_and_without_any(
    s3: S3Server,
    world: World,
    workspace_factory: WorkspaceFactory,
    channel_server: WorldServer,
    tmp_path: Path,
    aws_env: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, lock_path = _dead_lock_workspace(workspace_factory, channel_server)
    for subdir, name, _sha in _locked(lock_path):
        s3.upload(BUCKET, f"mirror/channel/{subdir}/{name}", world.channel_dir / subdir / name)
    mirrors = f'[mirrors]\n"{DEAD}/channel" = ["s3://{BUCKET}/mirror/channel"]\n'
    config = _s3_config(tmp_path, s3, mirrors)
    out = tmp_path / "env.tar"
    # no credentials anywhere: the request cannot be signed; a clear error, nothing sent
    s3.reset_log()
    code = run(["pack", str(root), "-o", str(out), "-c", str(config)])
    err = capsys.readouterr().err
    assert code == 3, err
    assert "cannot sign the S3 request" in err
    assert "pixi auth login" in err
    assert s3.requests == []
    assert not out.exists()
    # the auth file's S3Credentials for the bucket
    auth = tmp_path / "auth.json"
    auth.write_text(
        json.dumps(
            {
                f"s3://{BUCKET}": {
                    "S3Credentials": {"access_key_id": KEY_ID + "F", "secret_access_key": SECRET}
                }
            }
        )
    )
    code = run(["pack", str(root), "-o", str(out), "-c", str(config), "--auth-file", str(auth)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert _s3_signers(s3) == {KEY_ID + "F"}
    assert len(_provenance(out)) == len(_locked(lock_path))
    assert SECRET not in err


def test_s3_body_larger_than_the_lock_says_is_cut(
    s3: S3Server,
    world: World,
    workspace_factory: WorkspaceFactory,
    channel_server: WorldServer,
    tmp_path: Path,
    aws_env: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The lock's size bounds a body streamed by py-rattler's client too."""
    root, lock_path = _dead_lock_workspace(workspace_factory, channel_server)
    locked = _locked(lock_path)
    (subdir, name, _sha), *rest = locked
    size = len((world.channel_dir / subdir / name).read_bytes())
    s3.put_bytes(BUCKET, f"big/channel/{subdir}/{name}", b"\0" * (size + 4096))
    for sub, other, _ in rest:
        s3.upload(BUCKET, f"big/channel/{sub}/{other}", world.channel_dir / sub / other)
    mirrors = f'[mirrors]\n"{DEAD}/channel" = ["s3://{BUCKET}/big/channel"]\n'
    config = _s3_config(tmp_path, s3, mirrors)
    auth = tmp_path / "auth.json"
    auth.write_text(
        json.dumps(
            {
                f"s3://{BUCKET}": {
                    "S3Credentials": {"access_key_id": KEY_ID, "secret_access_key": SECRET}
                }
            }
        )
    )
    out = tmp_path / "env.tar"
    code = run(["pack", str(root), "-o", str(out), "-c", str(config), "--auth-file", str(auth)])
    err = capsys.readouterr().err
    assert code == 3, err
    assert f"the body is larger than the {size} bytes the lock records" in err
    assert not out.exists()
