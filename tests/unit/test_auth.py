"""Credentials: rattler's JSON format, source priority, host matching, no secrets in repr."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from testworld import keyring_backend

from pixi_pack_src.errors import ConfigError
from pixi_pack_src.fetch.auth import AuthStore, Credential, read_credentials_file

CREDS = {
    "*.prefix.dev": {"BearerToken": "pfx-token"},
    "repo.example.test": {"BasicHTTP": {"username": "alice", "password": "s3cret"}},
    "anaconda.example.test": {"CondaToken": "ct-123"},
    "127.0.0.1:8765": {"BearerToken": "port-token"},
    "s3://bucket/channel": {
        "S3Credentials": {"access_key_id": "a", "secret_access_key": "b", "session_token": None}
    },
}


def _json(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_reads_rattler_credentials_file(tmp_path: Path) -> None:
    store = AuthStore.load(_json(tmp_path / "c.json", CREDS), environ={}, home=tmp_path)
    assert list(store) == ["*.prefix.dev", "127.0.0.1:8765", "anaconda.example.test",
                           "repo.example.test", "s3://bucket/channel"]  # fmt: skip
    assert store.headers_for("https://repo.prefix.dev/chan/noarch/a.conda") == {
        "Authorization": "Bearer pfx-token"
    }
    assert store.headers_for("https://prefix.dev/chan/a.conda") == {
        "Authorization": "Bearer pfx-token"
    }  # "*.prefix.dev" also covers prefix.dev itself, as in rattler
    assert store.headers_for("https://repo.example.test/x.whl") == {
        "Authorization": _basic("alice", "s3cret")
    }
    assert store.headers_for("https://sub.repo.example.test/x.whl") == {}
    assert store.headers_for("https://evilprefix.dev/x") == {}
    # conda tokens go into the URL, not a header
    assert store.headers_for("https://anaconda.example.test/chan/x.conda") == {}
    assert (
        store.url_for("https://anaconda.example.test/chan/linux-64/x.conda?q=1")
        == "https://anaconda.example.test/t/ct-123/chan/linux-64/x.conda?q=1"
    )
    assert (
        store.url_for("https://anaconda.example.test/t/other/chan/x.conda")
        == "https://anaconda.example.test/t/other/chan/x.conda"
    )
    assert store.url_for("https://repo.example.test/x.whl") == "https://repo.example.test/x.whl"


def test_host_port_key_is_exact(tmp_path: Path) -> None:
    store = AuthStore.load(_json(tmp_path / "c.json", CREDS), environ={}, home=tmp_path)
    assert store.headers_for("http://127.0.0.1:8765/a") == {"Authorization": "Bearer port-token"}
    assert store.headers_for("http://127.0.0.1:8766/a") == {}
    assert store.headers_for("http://127.0.0.1/a") == {}


def test_url_with_its_own_userinfo_gets_no_store_header(tmp_path: Path) -> None:
    store = AuthStore({"repo.example.test": Credential("bearer", token="t")})
    assert store.headers_for("https://u:p@repo.example.test/x") == {}
    assert store.headers_for("https://repo.example.test/x") == {"Authorization": "Bearer t"}


def test_priority_env_then_auth_file_then_keyring_then_home_then_netrc(tmp_path: Path) -> None:
    """pixi's order (pixi_auth::get_auth_store): RATTLER_AUTH_FILE, --auth-file, keyring,
    ~/.rattler/credentials.json, netrc."""
    home = tmp_path / "home"
    (home / ".rattler").mkdir(parents=True)
    _json(
        home / ".rattler" / "credentials.json",
        {
            "a.test": {"BearerToken": "home-a"},
            "d.test": {"BearerToken": "home-d"},
            "k.test": {"BearerToken": "home-k"},
        },
    )
    (home / ".netrc").write_text(
        "machine a.test login n password n\nmachine e.test login eve password pw\n",
        encoding="utf-8",
    )
    env_file = _json(
        tmp_path / "env.json",
        {"a.test": {"BearerToken": "env-a"}, "c.test": {"BearerToken": "env-c"}},
    )
    given = _json(
        tmp_path / "given.json",
        {"a.test": {"BearerToken": "given-a"}, "b.test": {"BearerToken": "given-b"}},
    )
    keyring_file = tmp_path / "keyring.json"
    keyring_backend.store(
        keyring_file,
        {
            "b.test": {"BearerToken": "ring-b"},
            "k.test": {"BasicHTTP": {"username": "kim", "password": "ring-pw"}},
        },
    )
    with keyring_backend.use_file_keyring(keyring_file) as ring:
        store = AuthStore.load(given, environ={"RATTLER_AUTH_FILE": str(env_file)}, home=home)
        assert store.headers_for("https://a.test/") == {"Authorization": "Bearer env-a"}
        assert store.headers_for("https://b.test/") == {"Authorization": "Bearer given-b"}
        assert store.headers_for("https://k.test/") == {"Authorization": _basic("kim", "ring-pw")}
        found_k = store.lookup("https://k.test/x")
        assert found_k is not None
        assert found_k[1].source == "keyring"
        assert ("rattler", "k.test") in ring.reads
    assert store.headers_for("https://c.test/") == {"Authorization": "Bearer env-c"}
    assert store.headers_for("https://d.test/") == {"Authorization": "Bearer home-d"}
    assert store.headers_for("https://e.test/") == {"Authorization": _basic("eve", "pw")}
    found = store.lookup("https://e.test/x")
    assert found is not None
    assert found[1].source == str(home / ".netrc")


def test_netrc_env_var_and_missing_sources(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    netrc = tmp_path / "my-netrc"
    netrc.write_text("machine n.test login bob password pw\n", encoding="utf-8")
    store = AuthStore.load(
        None,
        environ={"NETRC": str(netrc), "RATTLER_AUTH_FILE": str(tmp_path / "missing.json")},
        home=tmp_path,
    )
    assert store.headers_for("https://n.test/") == {"Authorization": _basic("bob", "pw")}
    empty = AuthStore.load(None, environ={"NETRC": str(tmp_path / "gone")}, home=tmp_path)
    assert len(empty) == 0
    assert "NETRC=" in caplog.text
    # a missing RATTLER_AUTH_FILE is a warning naming it, not an error (as in pixi)
    assert f"RATTLER_AUTH_FILE={tmp_path / 'missing.json'} does not exist" in caplog.text
    assert [r.levelname for r in caplog.records if "RATTLER_AUTH_FILE" in r.message] == ["WARNING"]


def test_missing_override_file_from_config_is_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = AuthStore.load(None, override_file=tmp_path / "gone.json", environ={}, home=tmp_path)
    assert len(store) == 0
    assert "authentication-override-file" in caplog.text


def test_keyring_entries_s3_prefixes_and_broken_keyrings(tmp_path: Path) -> None:
    keyring_file = tmp_path / "keyring.json"
    s3 = {
        "S3Credentials": {"access_key_id": "AKID", "secret_access_key": "sk", "session_token": None}
    }
    keyring_backend.store(keyring_file, {"s3://bucket": s3, "reg.test": {"BearerToken": "oci-t"}})
    with keyring_backend.use_file_keyring(keyring_file):
        store = AuthStore.load(None, environ={}, home=tmp_path)
        found = store.lookup("s3://bucket/channel/linux-64/a-1-0.conda")
        assert found is not None
        assert found[0] == "s3://bucket"
        assert found[1].kind == "s3"
        assert found[1].authorization() is None  # S3 credentials sign, they are no header
        assert store.rattler_entries(
            ["s3://bucket/channel/noarch/b-1-0.conda", "oci://reg.test/mirror/noarch/c-1-0.conda"]
        ) == {"s3://bucket": s3, "reg.test": {"BearerToken": "oci-t"}}
        assert "sk" not in repr(store) + repr(found[1])
    ring = tmp_path / "not-json.json"
    ring.write_text(json.dumps({"rattler": {"h.test": "plain password"}}), encoding="utf-8")
    with keyring_backend.use_file_keyring(ring):
        assert AuthStore.load(None, environ={}, home=tmp_path).lookup("https://h.test/") is None


def test_missing_auth_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist") as info:
        AuthStore.load(tmp_path / "nope.json", environ={}, home=tmp_path)
    assert str(tmp_path / "nope.json") in info.value.message
    assert info.value.hint is not None
    assert "--auth-file" in info.value.hint


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ("{nope", "not valid JSON"),
        ("[]", "top level must be an object"),
        ('{"h": {"BearerToken": ""}}', "BearerToken must be a non-empty string"),
        ('{"h": {"BasicHTTP": {"username": "u"}}}', "BasicHTTP needs string username"),
        ('{"h": {"Magic": "x"}}', "unknown authentication method 'Magic'"),
        ('{"h": {"BearerToken": "a", "CondaToken": "b"}}', "must map to one authentication"),
        ('{"s3://b": {"S3Credentials": {"access_key_id": "a"}}}', "needs access_key_id and"),
    ],
)
def test_bad_credentials_file(tmp_path: Path, data: str, fragment: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(data, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        read_credentials_file(path)
    assert str(path) in info.value.message
    assert fragment in info.value.message


def test_oauth_access_token_is_a_bearer(tmp_path: Path) -> None:
    path = _json(
        tmp_path / "c.json",
        {"o.test": {"OAuth": {"access_token": "acc", "token_endpoint": "x", "client_id": "c"}}},
    )
    assert read_credentials_file(path)["o.test"].authorization() == "Bearer acc"


def test_no_secret_in_repr(tmp_path: Path) -> None:
    store = AuthStore.load(_json(tmp_path / "c.json", CREDS), environ={}, home=tmp_path)
    found = store.lookup("https://repo.example.test/x")
    assert found is not None
    text = repr(store) + repr(found[1]) + repr(store.lookup("https://a.prefix.dev/"))
    for secret in ("pfx-token", "s3cret", "ct-123", "port-token"):
        assert secret not in text
    assert "repo.example.test" in text
