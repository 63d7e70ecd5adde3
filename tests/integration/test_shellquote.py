"""One quoting function per shell: any text comes back from the real shell unchanged and
nothing in it runs (issue 18 items 4 and 10)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pixi_pack_src.selfextract import header
from pixi_pack_src.shellquote import (
    UnquotableError,
    check_identifier,
    quote_cmd,
    quote_fish,
    quote_nushell,
    quote_posix,
    quote_powershell,
    quote_xonsh,
)

pytestmark = pytest.mark.integration

TEXTS = st.text(
    alphabet=st.one_of(
        st.sampled_from(list("$`'\"\\;&|<>(){}[]*?!#~%^\n\t\r =:/ ")),
        st.characters(codec="utf-8", exclude_characters="\x00"),
    ),
    max_size=30,
)
ROUNDTRIP = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SHELLS: dict[str, tuple[Callable[[str], str], Callable[[str], list[str]]]] = {
    "bash": (quote_posix, lambda q: ["bash", "-c", f"printf %s {q}"]),
    "zsh": (quote_posix, lambda q: ["zsh", "-f", "-c", f"printf %s {q}"]),
    "fish": (quote_fish, lambda q: ["fish", "--no-config", "-c", f"printf %s {q}"]),
}


@pytest.mark.parametrize("shell", sorted(SHELLS))
@ROUNDTRIP
@given(text=TEXTS)
def test_texts_come_back_unchanged(shell: str, text: str, tmp_path: Path) -> None:
    quote, argv = SHELLS[shell]
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed (scripts/test installs it)")
    marker = tmp_path / "ran"
    hostile = f"{text}$(touch {marker})`touch {marker}`;touch {marker}"
    proc = subprocess.run(
        argv(quote(hostile)), capture_output=True, check=False, cwd=tmp_path, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode("utf-8", "surrogateescape") == hostile
    assert not marker.exists()


def test_posix_quoting_is_one_line() -> None:
    assert quote_posix("plain-name.sh") == "plain-name.sh"
    assert quote_posix("it's") == "'it'\\''s'"
    assert quote_posix("a\nb'\\") == "$'a\\x0ab\\'\\\\'"


def test_other_shells() -> None:
    assert quote_fish("a'b\\c") == "'a\\'b\\\\c'"
    assert quote_xonsh("$HOME'\n") == repr("$HOME'\n")
    assert quote_powershell("it's \u2019 $(x)") == "'it''s \u2019\u2019 $(x)'"
    assert quote_cmd("50% & <x>") == '"50%% & <x>"'
    assert quote_nushell('a"b\\\n') == '"a\\"b\\\\\\n"'
    for bad in ('say "hi"', "a\nb", "a\rb"):
        with pytest.raises(UnquotableError):
            quote_cmd(bad)
    with pytest.raises(UnquotableError):
        quote_nushell("a\x01b")
    with pytest.raises(UnquotableError):
        quote_posix("a\x00b")


@pytest.mark.parametrize("name", ["FOO", "_x1", "Path"])
def test_identifiers(name: str) -> None:
    assert check_identifier(name) == name


@pytest.mark.parametrize("name", ["", "1A", "BAR;touch p;X", "A-B", "A B", "É"])
def test_not_identifiers(name: str) -> None:
    with pytest.raises(UnquotableError, match="not a valid identifier"):
        check_identifier(name)


@pytest.mark.parametrize(
    "name", ["x\ntouch p\n#.sh", "HELP\ntouch p\nHELP", "a'b;touch p.sh", "$(touch p).sh"]
)
def test_10_the_output_name_cannot_inject_into_the_bash_header(name: str, tmp_path: Path) -> None:
    data = header(subdir="linux-64", name=name, python="", bundle_length=1, pack_length=1)
    script = tmp_path / "h.sh"
    script.write_bytes(data)
    proc = subprocess.run(
        ["bash", str(script), "--help"], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "p").exists()
    assert f"Usage: bash {quote_posix(name)} [OPTIONS]" in proc.stdout


def test_10_the_cmd_header_names_itself_at_run_time() -> None:
    data = header(subdir="win-64", name="x & calc.cmd", python="", bundle_length=1, pack_length=1)
    text = data.decode()
    assert "calc" not in text
    assert "echo Usage: %~nx0 [-o DIR]" in text
