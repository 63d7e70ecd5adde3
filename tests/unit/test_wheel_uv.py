"""How uv is told where build requirements come from, with what credentials, in what env."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixi_pack_src.builders.wheel.jobs import WheelBuildOptions
from pixi_pack_src.builders.wheel.uv import (
    PackageSources,
    checked_requirements,
    netrc_text,
    scrubbed,
)
from pixi_pack_src.errors import BuildError
from pixi_pack_src.fetch.auth import AuthStore, Credential
from pixi_pack_src.lock.model import Hashes, PypiPackage


def test_indexes_keep_pixis_priorities_and_find_links_follow() -> None:
    sources = PackageSources(
        indexes=("https://a.test/simple", "https://b.test/simple"),
        find_links=("https://c.test/links/", "/abs/wheels"),
    )
    assert sources.arguments() == [
        "--default-index=https://a.test/simple",
        "--index=https://b.test/simple",
        "--find-links=https://c.test/links/",
        "--find-links=/abs/wheels",
    ]
    assert PackageSources(find_links=("/w",)).arguments() == ["--no-index", "--find-links=/w"]
    assert PackageSources().empty
    shown = PackageSources(indexes=("https://u:pw@a.test/simple",)).shown()
    assert shown == "https://u:********@a.test/simple"


def _pkg(index: str | None = None) -> PypiPackage:
    return PypiPackage(
        name="foo",
        version="1.0",
        location="./foo",
        kind="source-tree",
        url=None,
        path=None,
        git=None,
        file_name=None,
        hashes=Hashes(),
        index=index,
    )


def test_pypi_index_replaces_the_locked_indexes(tmp_path: Path) -> None:
    base = WheelBuildOptions(work_dir=tmp_path, indexes=("https://a.test/simple",))
    assert base.sources_for(_pkg()).indexes == ("https://a.test/simple",)
    over = WheelBuildOptions(
        work_dir=tmp_path, indexes=("https://a.test/simple",), pypi_index="https://m.test/s"
    )
    assert over.sources_for(_pkg()).indexes == ("https://m.test/s",)
    bare = WheelBuildOptions(work_dir=tmp_path)
    assert bare.sources_for(_pkg("https://e.test/simple")).indexes == ("https://e.test/simple",)
    assert bare.sources_for(_pkg()).empty


def test_netrc_has_basic_credentials_of_the_sources_hosts_only() -> None:
    auth = AuthStore(
        {
            "a.test": Credential("basic", username="u", password="p w"),  # a space: left out
            "127.0.0.1:8080": Credential("basic", username="builder", password="s3cret"),
            "b.test": Credential("bearer", token="t"),
            "unrelated.test": Credential("basic", username="x", password="y"),
        }
    )
    urls = [
        "https://a.test/simple",
        "http://127.0.0.1:8080/simple",
        "http://127.0.0.1:8080/links/",
        "https://b.test/simple",
    ]
    assert netrc_text(auth, urls) == "machine 127.0.0.1 login builder password s3cret\n"
    assert netrc_text(AuthStore(), urls) == ""


def test_uv_sees_no_user_configuration() -> None:
    env = scrubbed(
        {
            "PATH": "/bin",
            "HOME": "/home/u",
            "UV_INDEX_URL": "https://evil.test/simple",
            "UV_CONFIG_FILE": "/x.toml",
            "PIP_INDEX_URL": "https://evil.test/simple",
            "VIRTUAL_ENV": "/venv",
            "NETRC": "/home/u/.netrc",
            "XDG_CONFIG_HOME": "/home/u/.config",
        }
    )
    assert env == {"PATH": "/bin", "HOME": "/home/u"}


def test_build_requirements_are_checked_before_uv_runs() -> None:
    reqs = checked_requirements(["setuptools>=61", "wheel; python_version<'4'"], package="p")
    assert [r.name for r in reqs] == ["setuptools", "wheel"]
    with pytest.raises(BuildError, match=r"p: the build requirement evil is a direct URL"):
        checked_requirements(["evil @ https://u:pw@evil.test/evil.whl"], package="p")
    with pytest.raises(BuildError) as err:
        checked_requirements(["evil @ https://u:pw@evil.test/evil.whl"], package="p")
    assert "pw" not in err.value.message
    with pytest.raises(BuildError, match="invalid build requirement '--index-url=x'"):
        checked_requirements(["--index-url=x"], package="p")


def test_the_netrc_is_private_and_removed_after_the_builds(tmp_path: Path) -> None:
    from pixi_pack_src.builders.wheel.uv import Uv

    auth = AuthStore({"idx.test": Credential("basic", username="u", password="pw")})
    uv = Uv(
        home=tmp_path / "home",
        cache_dir=tmp_path / "cache",
        auth=auth,
        sources=[PackageSources(indexes=("https://idx.test/simple",))],
    )
    env = uv.environment()
    netrc = Path(env["NETRC"])
    assert netrc.read_text() == "machine idx.test login u password pw\n"
    assert netrc.stat().st_mode & 0o777 == 0o600
    assert env["UV_PYTHON_DOWNLOADS"] == "never"
    uv.close()
    assert not netrc.exists()
