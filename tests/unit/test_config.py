"""pixi's configuration: pixi's files in pixi's order, read by rattler.Config; [mirrors] (oci://,
s3://), [concurrency], proxies, TLS, [s3-options]; errors that name the file; pixi's own configs."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixi_pack_src.errors import ConfigError
from pixi_pack_src.fetch import config as config_mod
from pixi_pack_src.fetch.config import FetchConfig, S3Options, search_paths

REAL = Path(__file__).parents[1] / "data" / "pixi-real"
DOCS_CONFIGS = REAL / "docs" / "source_files" / "pixi_config_tomls"
NOWHERE = Path("/nonexistent-home")


def load_config(path: Path | None, **kwargs: object) -> FetchConfig:
    """Hermetic: no user or system config files unless a test names them."""
    kwargs.setdefault("environ", {})
    kwargs.setdefault("home", NOWHERE)
    return config_mod.load_config(path, **kwargs)  # type: ignore[arg-type]


def _write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_no_file_gives_defaults() -> None:
    cfg = load_config(None)
    assert cfg == FetchConfig()
    assert dict(cfg.mirrors) == {}
    assert cfg.concurrent_downloads is None
    assert cfg.mirror_urls("https://x.test/a.conda") == ("https://x.test/a.conda",)


def test_pixi_config_with_mirrors_and_concurrency(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
default-channels = ["conda-forge"]
tls-no-verify = false

[mirrors]
"https://conda.anaconda.org/conda-forge" = [
  "https://prefix.dev/conda-forge",
  "https://Mirror.Example.test/cf/",
]
"https://conda.anaconda.org/" = ["https://all.example.test/anaconda"]

[concurrency]
downloads = 7
solves = 2

[pypi-config]
index-url = "https://pypi.org/simple"
""",
    )
    cfg = load_config(path)
    assert cfg.source == path
    assert cfg.concurrent_downloads == 7
    assert dict(cfg.mirrors) == {
        "https://conda.anaconda.org/conda-forge/": (
            "https://prefix.dev/conda-forge/",
            "https://mirror.example.test/cf/",
        ),
        "https://conda.anaconda.org/": ("https://all.example.test/anaconda/",),
    }
    # longest prefix wins; the original URL is not tried unless listed (as in rattler)
    assert cfg.mirror_urls("https://conda.anaconda.org/conda-forge/linux-64/zlib-1.3-h0.conda") == (
        "https://prefix.dev/conda-forge/linux-64/zlib-1.3-h0.conda",
        "https://mirror.example.test/cf/linux-64/zlib-1.3-h0.conda",
    )
    assert cfg.mirror_urls("https://conda.anaconda.org/bioconda/noarch/x-1-0.tar.bz2") == (
        "https://all.example.test/anaconda/bioconda/noarch/x-1-0.tar.bz2",
    )
    # a prefix matches on a path boundary only, host case-insensitively
    assert cfg.mirror_urls("https://CONDA.anaconda.org/conda-forge/noarch/a-1-0.conda")[0] == (
        "https://prefix.dev/conda-forge/noarch/a-1-0.conda"
    )
    assert cfg.mirror_urls("https://other.test/conda-forge/a.conda") == (
        "https://other.test/conda-forge/a.conda",
    )
    assert cfg.mirror_urls("file:///srv/ch/noarch/a.conda") == ("file:///srv/ch/noarch/a.conda",)


def test_prefix_does_not_match_a_longer_path_segment(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, '[mirrors]\n"https://h.test/cf" = ["https://m.test/cf"]\n'))
    assert cfg.mirror_urls("https://h.test/cf-extra/a.conda") == (
        "https://h.test/cf-extra/a.conda",
    )
    assert cfg.mirror_urls("https://h.test/cf/a.conda") == ("https://m.test/cf/a.conda",)


def test_snake_case_auth_override_and_file_mirror(tmp_path: Path) -> None:
    cfg = load_config(
        _write(
            tmp_path,
            'authentication_override_file = "~/creds.json"\n'
            '[mirrors]\n"https://h.test/x" = ["file:///srv/mirror/x"]\n',
        )
    )
    assert cfg.authentication_override_file == Path("~/creds.json").expanduser()
    assert cfg.mirror_urls("https://h.test/x/linux-64/a.conda") == (
        "file:///srv/mirror/x/linux-64/a.conda",
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[mirrors\n", "cannot parse config file"),
        ("mirrors = 3\n", "line 1, column 11: invalid type: integer `3`, expected a map"),
        ('[mirrors]\n"https://h.test/x" = ["ftp://m.test"]\n', "uses ftp://, which cannot be"),
        ('[mirrors]\n"https://h.test/x" = []\n', "must be a non-empty list"),
        ('[mirrors]\n"https://h.test/x" = ["nope"]\n', 'relative URL without a base: "nope"'),
        ('[mirrors]\n"https://h.test/x" = "file:///m"\n', "expected a sequence"),
        ("[concurrency]\ndownloads = 0\n", "downloads must be a positive integer, not 0"),
        ('[concurrency]\ndownloads = "9"\n', 'invalid type: string "9", expected usize'),
        ("concurrency = 4\n", "line 1, column 15: invalid type: integer `4`"),
        ("authentication-override-file = 1\n", "expected path string"),
        ('[proxy-config]\nhttps = "nope"\n', "line 2, column 9"),
        (
            '[s3-options.b]\nendpoint-url = "http://h"\nregion = "r"\nforce-path-style = 1\n',
            "s3-options.b.force-path-style must be true or false",
        ),
    ],
)
def test_bad_config_names_the_file(tmp_path: Path, text: str, fragment: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in info.value.message
    assert fragment in info.value.message
    assert info.value.exit_code == 1


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist") as info:
        load_config(tmp_path / "nope.toml")
    assert info.value.hint is not None
    assert "-c/--config" in info.value.hint


def test_direct_construction_is_normalized_too() -> None:
    cfg = FetchConfig(mirrors={"https://H.test/cf": ("https://m.test/x",)})
    assert dict(cfg.mirrors) == {"https://h.test/cf/": ("https://m.test/x/",)}
    assert cfg.mirror_urls("https://h.test/cf/noarch/a.conda") == (
        "https://m.test/x/noarch/a.conda",
    )


# -- pixi's own configuration files (tests/data/pixi-real, see ORIGIN) ----------------------------


def test_pixi_docs_main_config() -> None:
    cfg = load_config(DOCS_CONFIGS / "main_config.toml")
    assert dict(cfg.mirrors) == {
        "https://conda.anaconda.org/conda-forge/": ("https://prefix.dev/conda-forge/",),
        "https://conda.anaconda.org/bioconda/": (
            "https://conda.anaconda.org/bioconda/",
            "oci://ghcr.io/channel-mirrors/bioconda/",
            "s3://my-s3-bucket/bioconda/",
            "https://prefix.dev/bioconda/",
        ),
    }
    assert cfg.mirror_urls("https://conda.anaconda.org/bioconda/noarch/x-1-0.tar.bz2")[1:3] == (
        "oci://ghcr.io/channel-mirrors/bioconda/noarch/x-1-0.tar.bz2",
        "s3://my-s3-bucket/bioconda/noarch/x-1-0.tar.bz2",
    )
    assert cfg.concurrent_downloads == 5
    assert dict(cfg.s3_options) == {
        "my-bucket": S3Options("https://my-s3-compatible-host.com/", "us-east-1", path_style=True)
    }
    assert cfg.proxy_http == cfg.proxy_https == "http://proxy.example.com:8080/"
    assert cfg.non_proxy_hosts == (".cn", "localhost", "[::1]")
    assert cfg.tls_no_verify is False
    assert cfg.tls_root_certs == "system"
    assert cfg.authentication_override_file == Path("/path/to/your/override.json")


def test_pixi_docs_oci_mirror_config() -> None:
    cfg = load_config(DOCS_CONFIGS / "oci_config.toml")
    assert cfg.mirror_urls("https://conda.anaconda.org/conda-forge/linux-64/a-1-h0.conda") == (
        "oci://ghcr.io/channel-mirrors/conda-forge/linux-64/a-1-h0.conda",
    )


def test_pixi_docs_mirror_prefix_config() -> None:
    cfg = load_config(DOCS_CONFIGS / "mirror_prefix_config.toml")
    assert cfg.mirror_urls("https://conda.anaconda.org/conda-forge/label/x/noarch/a-1-0.conda") == (
        "https://conda.anaconda.org/conda-forge/label/x/noarch/a-1-0.conda",
    )
    assert cfg.mirror_urls("https://conda.anaconda.org/conda-forge/noarch/a-1-0.conda") == (
        "https://prefix.dev/conda-forge/noarch/a-1-0.conda",
    )


@pytest.mark.parametrize("name", ["config_1.toml", "config_2.toml"])
def test_pixi_unit_test_configs_name_their_fake_mirror_scheme(name: str) -> None:
    path = REAL / "crates" / "pixi_config" / "tests" / "config" / name
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.message.startswith(f"config file {path}: [mirrors] ")
    assert "uses whatever://, which cannot be fetched" in info.value.message


# -- where pixi looks, in pixi's order ----------------------------------------------------------


def test_search_paths_linux_order(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert search_paths(tmp_path / "ws", environ={}, home=home, platform="linux") == [
        Path("/etc/pixi/config.toml"),
        home / ".config" / "pixi" / "config.toml",
        home / ".pixi" / "config.toml",
        tmp_path / "ws" / ".pixi" / "config.toml",
    ]
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "PIXI_HOME": str(tmp_path / "ph")}
    assert search_paths(None, environ=env, home=home, platform="linux") == [
        Path("/etc/pixi/config.toml"),
        tmp_path / "xdg" / "pixi" / "config.toml",
        tmp_path / "ph" / "config.toml",
    ]


def test_search_paths_macos_windows_and_overrides(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert search_paths(None, environ={}, home=home, platform="darwin") == [
        Path("/etc/pixi/config.toml"),
        home / "Library" / "Application Support" / "pixi" / "config.toml",
        home / ".pixi" / "config.toml",
    ]
    win = search_paths(None, environ={"APPDATA": "C:/AppData"}, home=home, platform="win32")
    assert win == [
        Path("C:\\ProgramData") / "pixi" / "config.toml",
        Path("C:/AppData") / "pixi" / "config.toml",
        home / ".pixi" / "config.toml",
    ]
    ws = tmp_path / "ws"
    only = {"PIXI_CONFIG_FILE": str(tmp_path / "only.toml")}
    assert search_paths(ws, environ=only, home=home) == [
        tmp_path / "only.toml",
        ws / ".pixi" / "config.toml",
    ]
    assert search_paths(ws, environ={"PIXI_NO_CONFIG": "1"}, home=home) == [
        ws / ".pixi" / "config.toml"
    ]


def test_layers_merge_in_pixi_order_and_c_wins(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ws = tmp_path / "ws"
    _write(home / ".config" / "pixi", "[concurrency]\ndownloads = 3\ntls-no-verify = true\n")
    _write(
        home / ".pixi",
        '[mirrors]\n"https://h.test/cf" = ["https://user.test/cf"]\n[concurrency]\ndownloads = 4\n',
    )
    _write(
        ws / ".pixi",
        '[mirrors]\n"https://h.test/cf" = ["oci://127.0.0.1:5000/cf"]\n'
        '[s3-options.bk]\nendpoint-url = "http://127.0.0.1:9000"\nregion = "eu-1"\n'
        "force-path-style = true\n",
    )
    cfg = load_config(None, workspace_root=ws, home=home)
    assert cfg.sources == (
        home / ".config" / "pixi" / "config.toml",
        home / ".pixi" / "config.toml",
        ws / ".pixi" / "config.toml",
    )
    assert cfg.concurrent_downloads == 4
    assert cfg.mirror_urls("https://h.test/cf/noarch/a-1-0.conda") == (
        "oci://127.0.0.1:5000/cf/noarch/a-1-0.conda",
    )
    assert dict(cfg.s3_options) == {"bk": S3Options("http://127.0.0.1:9000/", "eu-1", True)}
    explicit = _write(tmp_path, "[concurrency]\ndownloads = 9\n", name="c.toml")
    cfg = load_config(explicit, workspace_root=ws, home=home)
    assert cfg.concurrent_downloads == 9
    assert cfg.sources[-1] == explicit
    assert cfg.source == explicit
    assert load_config(None, workspace_root=ws, home=home, search=False) == FetchConfig()


def test_a_broken_user_config_is_named(tmp_path: Path) -> None:
    home = tmp_path / "home"
    bad = _write(home / ".pixi", "[mirrors\n")
    with pytest.raises(ConfigError) as info:
        load_config(None, home=home)
    assert info.value.message.startswith(f"cannot parse config file {bad}: ")


# -- proxies and TLS reach the HTTP client ------------------------------------------------------


def test_proxy_config_applies_unless_the_environment_names_a_proxy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pixi_pack_src.fetch import client as http

    cfg = load_config(DOCS_CONFIGS / "main_config.toml")
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(var, raising=False)
    mounts = http._proxy_mounts(cfg, True, 4)
    assert mounts is not None
    assert set(mounts) == {"all://*.cn", "all://localhost", "all://[::1]", "http://", "https://"}
    assert mounts["all://localhost"] is None  # non-proxy-hosts go direct
    monkeypatch.setenv("HTTPS_PROXY", "http://env-proxy.test:3128")
    assert http._proxy_mounts(cfg, True, 4) is None  # the environment wins, as in pixi
    assert http._proxy_mounts(FetchConfig(), True, 4) is None


def test_tls_settings_reach_the_client(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from pixi_pack_src.fetch import client as http

    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    no_verify = load_config(_write(tmp_path, "tls-no-verify = true\n"))
    assert no_verify.tls_no_verify is True
    client = http.make_client(config=no_verify)
    try:
        assert client._transport._pool._ssl_context.verify_mode.name == "CERT_NONE"  # type: ignore[attr-defined]
    finally:
        import asyncio

        asyncio.run(client.aclose())
