"""unpack's pieces without installing: shells, activation scripts, options, channel rules,
wheel checks, early refusals and the --json document."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from rattler import BuildString, PackageRecord
from rattler.shell import ActivationVariables, Shell, activate
from testworld import hostile
from testworld.packdir import make_wheel

from pixi_pack_src import __version__
from pixi_pack_src.archive.members import Entry
from pixi_pack_src.archive.tar import write_directory
from pixi_pack_src.errors import (
    EXIT_ERROR,
    EXIT_USAGE,
    ArchiveError,
    InstallError,
    PackFormatError,
    UsageError,
)
from pixi_pack_src.install.activation import (
    SHELLS,
    activation_script,
    default_shell,
    lookup_shell,
    write_activation_script,
)
from pixi_pack_src.install.conda import read_channel
from pixi_pack_src.install.wheels import (
    check_requires_python,
    check_tags,
    check_wheel_safety,
    computed_interpreter,
)
from pixi_pack_src.reporter import NullReporter
from pixi_pack_src.unpack import UnpackOptions, UnpackResult, unpack
from pixi_pack_src.wheels import WheelCompatibilityError

# -- shells and activation --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "canonical", "script"),
    [
        ("bash", "bash", "activate.sh"),
        ("zsh", "zsh", "activate.sh"),
        ("sh", "bash", "activate.sh"),
        ("fish", "fish", "activate.fish"),
        ("xonsh", "xonsh", "activate.xsh"),
        ("cmd", "cmd", "activate.bat"),
        ("cmd.exe", "cmd", "activate.bat"),
        ("PowerShell", "powershell", "activate.ps1"),
        ("pwsh", "powershell", "activate.ps1"),
        ("nu", "nushell", "activate.nu"),
        ("nushell", "nushell", "activate.nu"),
    ],
)
def test_shell_names(name: str, canonical: str, script: str) -> None:
    shell = lookup_shell(name)
    assert (shell.name, shell.script_name) == (canonical, script)


def test_unknown_shell_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown shell 'tcsh'") as info:
        lookup_shell("tcsh")
    assert info.value.exit_code == EXIT_USAGE
    assert info.value.hint == f"choose one of: {', '.join(SHELLS)}"


@pytest.mark.parametrize(
    ("shell_env", "platform", "expected"),
    [
        ("/usr/bin/zsh", "linux-64", "zsh"),
        ("/usr/local/bin/fish", "osx-arm64", "fish"),
        ("/bin/bash", "linux-64", "bash"),
        ("/bin/dash", "linux-64", "bash"),
        ("", "linux-64", "bash"),
        ("/usr/bin/nu", "linux-64", "nushell"),
        ("/bin/bash", "win-64", "cmd"),
    ],
)
def test_default_shell(shell_env: str, platform: str, expected: str) -> None:
    assert default_shell(platform, {"SHELL": shell_env}).name == expected


def _prefix(tmp_path: Path) -> Path:
    prefix = tmp_path / "my env"
    (prefix / "etc" / "conda" / "activate.d").mkdir(parents=True)
    (prefix / "etc" / "conda" / "activate.d" / "a.sh").write_text("export A=1\n")
    (prefix / "etc" / "conda" / "activate.d" / "a.nu").write_text("$env.A = 1\n")
    (prefix / "etc" / "conda" / "env_vars.d").mkdir()
    (prefix / "etc" / "conda" / "env_vars.d" / "x.json").write_text('{"WORLD_VAR": "w\\"1"}')
    return prefix


def test_bash_script_extends_path_at_activation_time(tmp_path: Path) -> None:
    prefix = _prefix(tmp_path)
    text = activation_script(prefix, lookup_shell("bash"), "linux-64")
    lines = text.splitlines()
    assert lines[0] == f"export PATH='{prefix}/bin:'\"${{PATH}}\""
    assert f"export CONDA_PREFIX='{prefix}'" in lines
    assert f". '{prefix}/etc/conda/activate.d/a.sh'" in lines
    assert "/usr/bin" not in text  # the writing process's PATH is not frozen in


def test_nushell_script(tmp_path: Path) -> None:
    prefix = _prefix(tmp_path)
    text = activation_script(prefix, lookup_shell("nushell"), "linux-64")
    assert text == (
        f'$env.PATH = ($env.PATH | prepend ["{prefix}/bin"])\n'
        '$env.CONDA_SHLVL = "1"\n'
        f'$env.CONDA_PREFIX = "{prefix}"\n'
        '$env.WORLD_VAR = "w\\"1"\n'
        f'source-env "{prefix}/etc/conda/activate.d/a.nu"\n'
    )


def test_nushell_on_windows_uses_rattlers_path_entries(tmp_path: Path) -> None:
    prefix = tmp_path / "win"
    prefix.mkdir()
    text = activation_script(prefix, lookup_shell("nu"), "win-64")
    entries: object = activate(
        prefix, ActivationVariables(None, ["x"]), Shell.cmd_exe, platform="win-64"
    ).path
    assert isinstance(entries, list)
    expected = list(entries)
    first = text.splitlines()[0]
    assert first.startswith("$env.Path = ($env.Path | prepend [")
    assert first.count(", ") == len(expected) - 2  # every prefix entry, not the fake "x"


def test_windows_scripts_use_crlf(tmp_path: Path) -> None:
    prefix = tmp_path / "env"
    prefix.mkdir()
    path = write_activation_script(tmp_path, prefix, lookup_shell("cmd"), "win-64")
    data = path.read_bytes()
    assert path.name == "activate.bat"
    assert data.count(b"\n") == data.count(b"\r\n") > 2
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# -- options and early refusals ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "a\\b", ".pixi-pack-src-unpack-x"])
def test_bad_env_names(name: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="invalid environment name"):
        unpack(
            UnpackOptions(pack=tmp_path, output_dir=tmp_path, env_name=name),
            reporter=NullReporter(),
        )


def test_missing_pack_and_missing_stdin(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"nope\.tar does not exist") as info:
        unpack(
            UnpackOptions(pack=tmp_path / "nope.tar", output_dir=tmp_path / "out"),
            reporter=NullReporter(),
        )
    assert info.value.exit_code == EXIT_USAGE
    with pytest.raises(UsageError, match="no standard input"):
        unpack(UnpackOptions(pack="-", output_dir=tmp_path / "out"), reporter=NullReporter())
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def _tree(root: Path) -> dict[str, str | None]:
    return {
        p.relative_to(root).as_posix(): (
            hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None
        )
        for p in sorted(root.rglob("*"))
    }


def _small_pack(root: Path, *, channel: dict[str, bytes] | None = None) -> Path:
    repodata = {"info": {"subdir": "noarch"}, "packages": {}, "packages.conda": {}}
    entries = [
        Entry("pixi-pack.json", b'{"version": "1", "platform": "linux-64"}\n'),
        Entry("channel/noarch/repodata.json", json.dumps(repodata).encode()),
    ]
    entries += [Entry(k, v) for k, v in (channel or {}).items()]
    write_directory(entries, root)
    return root


def test_output_inside_a_directory_pack_is_refused(tmp_path: Path) -> None:
    pack = _small_pack(tmp_path / "pack")
    before = _tree(tmp_path)
    for out in (pack, pack / "sub"):
        with pytest.raises(UsageError, match="is inside the directory pack"):
            unpack(UnpackOptions(pack=pack, output_dir=out), reporter=NullReporter())
    with pytest.raises(UsageError, match="is inside the target environment"):
        unpack(
            UnpackOptions(pack=pack, output_dir=tmp_path, env_name="pack", force=True),
            reporter=NullReporter(),
        )
    assert _tree(tmp_path) == before


def test_not_a_pixi_pack_archive(tmp_path: Path) -> None:
    pack = tmp_path / "pack"
    write_directory([Entry("channel/noarch/repodata.json", b"{}")], pack)
    with pytest.raises(PackFormatError, match=r"it has no pixi-pack.json") as info:
        unpack(UnpackOptions(pack=pack, output_dir=tmp_path / "a" / "b"), reporter=NullReporter())
    assert info.value.exit_code == EXIT_ERROR
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pack"]  # a/b created, then removed


def test_a_symlink_in_a_directory_pack_is_refused(tmp_path: Path) -> None:
    pack = _small_pack(tmp_path / "pack")
    (pack / "channel" / "noarch" / "evil.conda").symlink_to("/etc/passwd")
    with pytest.raises(ArchiveError, match=r"channel/noarch/evil.conda is a symbolic link"):
        unpack(UnpackOptions(pack=pack, output_dir=tmp_path / "out"), reporter=NullReporter())
    assert not (tmp_path / "out").exists()


def test_an_existing_non_empty_target_needs_force(tmp_path: Path) -> None:
    pack = _small_pack(tmp_path / "pack")
    env = tmp_path / "out" / "env"
    env.mkdir(parents=True)
    (env / "keep.txt").write_text("mine")
    with pytest.raises(InstallError, match="already exists and is not empty") as info:
        unpack(UnpackOptions(pack=pack, output_dir=tmp_path / "out"), reporter=NullReporter())
    assert getattr(info.value, "hint", "").startswith("pass --force to replace it")
    with pytest.raises(InstallError, match=r"not a conda environment .* even with --force"):
        unpack(
            UnpackOptions(pack=pack, output_dir=tmp_path / "out", force=True),
            reporter=NullReporter(),
        )
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["env"]
    assert (env / "keep.txt").read_text() == "mine"


# -- channel rules ----------------------------------------------------------------------------


def _repodata(subdir: str, packages: dict[str, dict[str, Any]]) -> bytes:
    return json.dumps(
        {"info": {"subdir": subdir}, "packages": {}, "packages.conda": packages}
    ).encode()


def _record(name: str, subdir: str = "noarch") -> dict[str, Any]:
    return {"name": name, "version": "1.0", "build": "h0_0", "build_number": 0, "subdir": subdir}


def _channel(tmp_path: Path, files: dict[str, bytes]) -> tuple[Path, list[str]]:
    write_directory([Entry(k, v) for k, v in files.items()], tmp_path / "p")
    return tmp_path / "p", sorted(files)


def test_read_channel_gives_file_records(tmp_path: Path) -> None:
    root, files = _channel(
        tmp_path,
        {
            "channel/noarch/repodata.json": _repodata("noarch", {"a-1.0-h0_0.conda": _record("a")}),
            "channel/noarch/a-1.0-h0_0.conda": b"A",
            "channel/linux-64/repodata.json": _repodata("linux-64", {}),
        },
    )
    (pkg,) = read_channel(root, files, platform="linux-64", label="p.tar")
    assert pkg.arcname == "channel/noarch/a-1.0-h0_0.conda"
    assert pkg.record.url == (root / "channel/noarch/a-1.0-h0_0.conda").as_uri()
    assert pkg.record.name.normalized == "a"


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {
                "channel/noarch/repodata.json": _repodata(
                    "noarch", {"a-1.0-h0_0.conda": _record("a")}
                )
            },
            "channel/noarch/repodata.json in p.tar names a-1.0-h0_0.conda, but the archive has no "
            "channel/noarch/a-1.0-h0_0.conda",
        ),
        (
            {
                "channel/noarch/repodata.json": _repodata("noarch", {}),
                "channel/noarch/stray.conda": b"x",
            },
            "p.tar holds channel/noarch/stray.conda, which channel/noarch/repodata.json does not list",
        ),
        (
            {"channel/noarch/a.conda": b"x"},
            "p.tar has packages in channel/noarch but no channel/noarch/repodata.json",
        ),
        (
            {"channel/win-64/repodata.json": _repodata("win-64", {})},
            "p.tar has a channel/win-64 directory (a conda subdir) in a pack for linux-64",
        ),
        ({"channel/x.conda": b"x"}, "p.tar holds channel/x.conda, which is not a file of"),
        (
            {
                "channel/noarch/repodata.json": _repodata(
                    "noarch", {"a-1.0-h0_0.conda": _record("a", "linux-64")}
                ),
                "channel/noarch/a-1.0-h0_0.conda": b"A",
            },
            "channel/noarch/a-1.0-h0_0.conda in p.tar is a package for linux-64",
        ),
        (
            {
                "channel/noarch/repodata.json": _repodata(
                    "noarch", {"a-1.0-h0_0.conda": _record("a")}
                ),
                "channel/noarch/a-1.0-h0_0.conda": b"A",
                "channel/linux-64/repodata.json": _repodata(
                    "linux-64", {"a-2.0-h0_0.conda": _record("a", "linux-64")}
                ),
                "channel/linux-64/a-2.0-h0_0.conda": b"A",
            },
            "p.tar holds two packages named a",
        ),
        (
            {"channel/noarch/repodata.json": b"{not json"},
            "cannot read channel/noarch/repodata.json in p.tar",
        ),
    ],
)
def test_read_channel_refuses(tmp_path: Path, files: dict[str, bytes], message: str) -> None:
    root, names = _channel(tmp_path, files)
    with pytest.raises(ArchiveError) as info:
        read_channel(root, names, platform="linux-64", label="p.tar")
    assert message in str(info.value)


# -- wheels -----------------------------------------------------------------------------------


def test_escaping_wheel_is_refused_before_installing(tmp_path: Path) -> None:
    wheel = hostile.escaping_wheel(tmp_path)
    with pytest.raises(WheelCompatibilityError) as info:
        check_wheel_safety(wheel)
    assert str(info.value) == (
        "refusing evil-1.0-py3-none-any.whl: member '../../../escaped_by_wheel.py' leaves its "
        "directory ('..')"
    )


def test_wheel_record_must_match_its_content(tmp_path: Path) -> None:
    good = make_wheel(tmp_path / "good", "fine", "1.0")
    assert check_wheel_safety(good) == ("fine", "1.0")
    bad = make_wheel(
        tmp_path / "bad",
        "fine",
        "1.0",
        record_override={"fine/__init__.py": "fine/__init__.py,sha256=AAAA,3"},
    )
    with pytest.raises(WheelCompatibilityError, match="didn't match RECORD"):
        check_wheel_safety(bad)


def test_wheel_record_and_entry_points_must_stay_inside(tmp_path: Path) -> None:
    evil_record = make_wheel(
        tmp_path / "r",
        "sneaky",
        record_override={"sneaky/__init__.py": "/etc/cron.d/x,sha256=AAAA,3"},
    )
    with pytest.raises(WheelCompatibilityError, match=r"RECORD entry '/etc/cron.d/x'"):
        check_wheel_safety(evil_record)
    evil_script = make_wheel(
        tmp_path / "s",
        "scripty",
        files={
            "scripty/__init__.py": b"",
            "scripty-1.0.dist-info/entry_points.txt": b"[console_scripts]\n../x = scripty:main\n",
        },
    )
    with pytest.raises(WheelCompatibilityError, match=r"entry point '../x' is not a file name"):
        check_wheel_safety(evil_script)


def test_not_a_zip(tmp_path: Path) -> None:
    wheel = tmp_path / "junk-1.0-py3-none-any.whl"
    wheel.write_bytes(b"no zip")
    with pytest.raises(WheelCompatibilityError, match=r"refusing junk-1.0-py3-none-any.whl"):
        check_wheel_safety(wheel)
    with pytest.raises(WheelCompatibilityError, match="not a valid wheel file name"):
        check_wheel_safety(tmp_path / "junk.whl")


def _python(version: str = "3.11.7") -> PackageRecord:
    return PackageRecord("python", version, BuildString("h0_0_cpython"), 0, "linux-64")


def test_computed_interpreter_and_tags(tmp_path: Path) -> None:
    interp = computed_interpreter(_python(), "linux-64", ["__glibc=2.28"])
    assert interp.paths["purelib"] == "lib/python3.11/site-packages"
    assert interp.paths["scripts"] == "bin"
    assert interp.python == "bin/python"
    assert interp.source == "computed"
    check_tags(
        make_wheel(tmp_path, "a", tag="cp311-cp311-manylinux_2_17_x86_64"), interp, "linux-64"
    )
    check_tags(make_wheel(tmp_path, "b", tag="py3-none-any"), interp, "linux-64")
    with pytest.raises(WheelCompatibilityError) as info:
        check_tags(
            make_wheel(tmp_path, "c", tag="cp312-cp312-manylinux_2_17_x86_64"), interp, "linux-64"
        )
    assert str(info.value) == (
        "c-1.0-cp312-cp312-manylinux_2_17_x86_64.whl (cp312-cp312-manylinux_2_17_x86_64) cannot be "
        "installed by the environment's python 3.11.7 on linux-64 (computed from its record)"
    )
    windows = computed_interpreter(_python("3.12.1"), "win-64")
    assert (windows.paths["purelib"], windows.paths["scripts"], windows.python) == (
        "Lib/site-packages",
        "Scripts",
        "python.exe",
    )


def test_requires_python(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "newpy", requires_python=">=3.12")
    check_requires_python(wheel, "3.12.0")
    with pytest.raises(
        WheelCompatibilityError,
        match=r"newpy-1.0-py3-none-any.whl requires python >=3.12, the environment has python 3.11.7",
    ):
        check_requires_python(wheel, "3.11.7")


def test_wheel_fixture_is_a_valid_zip(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "z", "2.0", requires_python=">=3.8")
    with zipfile.ZipFile(wheel) as zf:
        assert sorted(zf.namelist()) == [
            "z-2.0.dist-info/METADATA",
            "z-2.0.dist-info/RECORD",
            "z-2.0.dist-info/WHEEL",
            "z/__init__.py",
        ]


# -- the result document ----------------------------------------------------------------------


def test_json_document(tmp_path: Path) -> None:
    result = UnpackResult(
        environment=tmp_path / "env",
        activation_script=tmp_path / "activate.sh",
        shell="bash",
        platform="linux-64",
        conda_packages=11,
        wheels=3,
        verified=14,
        verified_against="pixi-pack-src.json",
        warnings=("w",),
    )
    assert result.to_json() == {
        "version": 1,
        "tool": {"name": "pixi-pack-src", "version": __version__},
        "environment": str(tmp_path / "env"),
        "activation_script": str(tmp_path / "activate.sh"),
        "shell": "bash",
        "platform": "linux-64",
        "conda_packages": 11,
        "wheels": 3,
        "verified": 14,
        "verified_against": "pixi-pack-src.json",
        "warnings": ["w"],
        "identity": None,
        "delta": None,
    }


def test_an_empty_pack_gives_an_empty_environment(tmp_path: Path) -> None:
    pack = _small_pack(tmp_path / "pack")
    result = unpack(UnpackOptions(pack=pack, output_dir=tmp_path / "out"), reporter=NullReporter())
    assert (result.conda_packages, result.wheels, result.verified) == (0, 0, 0)
    assert sorted(p.name for p in result.environment.iterdir()) == [".pixi-pack-src", "conda-meta"]
    assert (result.environment / "conda-meta" / "history").is_file()
    # what the environment was unpacked from, for delta updates (delta.md)
    kept = result.environment / ".pixi-pack-src" / "manifest.json"
    assert json.loads(kept.read_text())["identity"] == result.identity
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["activate.sh", "env"]
