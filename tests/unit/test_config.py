"""pixi/rattler config TOML: [mirrors], [concurrency] downloads, errors that name the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixi_pack_src.errors import ConfigError
from pixi_pack_src.fetch.config import FetchConfig, load_config


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
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


def test_snake_case_auth_override_and_string_mirror(tmp_path: Path) -> None:
    cfg = load_config(
        _write(
            tmp_path,
            'authentication_override_file = "~/creds.json"\n'
            '[mirrors]\n"https://h.test/x" = "file:///srv/mirror/x"\n',
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
        ("mirrors = 3\n", "[mirrors] must be a table"),
        ('[mirrors]\n"ftp://h.test/x" = ["https://m.test"]\n', "is not an http(s) or file URL"),
        ('[mirrors]\n"https://h.test/x" = []\n', "must be a non-empty list"),
        ('[mirrors]\n"https://h.test/x" = ["nope"]\n', "'nope' is not an http(s) or file URL"),
        ("[concurrency]\ndownloads = 0\n", "downloads must be a positive integer, not 0"),
        ('[concurrency]\ndownloads = "9"\n', "downloads must be a positive integer"),
        ("concurrency = 4\n", "[concurrency] must be a table"),
        ("authentication-override-file = 1\n", "authentication-override-file must be a path"),
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
