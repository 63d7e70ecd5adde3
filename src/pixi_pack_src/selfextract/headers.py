"""The fixed header templates of self-extracting scripts (bash; cmd for Windows targets).

Numbers are written with a fixed width, so a header's length does not depend on them and the
payload offsets can be computed before anything is written. The script's own name appears in
the bash header only through :func:`pixi_pack_src.shellquote.quote_posix` (``@NAME@``, one
line whatever it holds); the cmd header names itself at run time (``%~nx0``).
"""

from __future__ import annotations

NUMBER_WIDTH = 16

BASH = r"""#!/usr/bin/env bash
# A pixi-pack-src self-extracting environment for @PLATFORM@ (pixi-pack-src @VERSION@).
# Run it on the offline machine: bash @NAME@ [-o DIR] [-e ENV_NAME] [-s SHELL]  (--help: all)
# Two raw payloads follow this header, located by the byte offsets below: the unpacker
# bundle (a gzipped tar) and the pack (pixi-pack format 1 tar). Nothing is held in memory:
# each is streamed with tail | head into tar or the unpacker.
set -euo pipefail
BUNDLE_OFFSET=@BUNDLE_OFFSET@
BUNDLE_LENGTH=@BUNDLE_LENGTH@
PACK_OFFSET=@PACK_OFFSET@
PACK_LENGTH=@PACK_LENGTH@
PLATFORM="@PLATFORM@"
BUNDLED_PYTHON="@PYTHON@"

usage() {
  cat <<'HELP'
Usage: bash @NAME@ [OPTIONS]

Install the environment packed in this file, offline (for @PLATFORM@).

Options:
  -o, --output-directory DIR   where DIR/ENV_NAME and DIR/activate.<ext> go [default: .]
  -e, --env-name ENV_NAME      the environment's directory name [default: env]
  -s, --shell SHELL            shell of the activation script [default: $SHELL]
  --platform-check on|off      refuse another platform [default: on]
  --virtual-package-check on|off
                               refuse a machine below the lock's __glibc/__osx [default: on]
  --force                      replace an existing environment
  --keep-packages              keep the pack's files in ENV for later delta updates
  --update DIR/ENV             a delta script: update that environment in place (atomic)
  --base OLD                   a delta script: the full pack it was made against
  -q, --quiet                  errors only
  -h, --help                   show this message

Needs on the host: bash, tail, head, tar, gzip, mktemp, uname. The python that installs the
environment comes from this file (or, with --update, the environment's own python; else
python3 >= 3.11 on the host). Temporary files go to $TMPDIR (default /tmp) and are removed on
every exit.
HELP
}

for arg in "$@"; do
  case "$arg" in -h|--help) usage; exit 0;; esac
done
for tool in tail head tar gzip mktemp uname; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "error: this script needs '$tool', which is not on PATH" >&2
    echo "help: install it, or copy the pack out and use pixi-pack-src unpack" >&2
    exit 1
  fi
done

host_platform() {
  case "$(uname -s)/$(uname -m)" in
    Linux/x86_64) echo linux-64;; Linux/aarch64|Linux/arm64) echo linux-aarch64;;
    Linux/ppc64le) echo linux-ppc64le;; Darwin/x86_64) echo osx-64;; Darwin/arm64) echo osx-arm64;;
    *) echo unknown;;
  esac
}
check_platform=on
update_env=""
prev=""
for arg in "$@"; do
  if [ "$prev" = "--platform-check" ]; then check_platform="$arg"; fi
  if [ "$prev" = "--update" ]; then update_env="$arg"; fi
  case "$arg" in --platform-check=*) check_platform="${arg#*=}";; esac
  case "$arg" in --update=*) update_env="${arg#*=}";; esac
  prev="$arg"
done
host="$(host_platform)"
if [ "$check_platform" = on ] && [ "$host" != "$PLATFORM" ]; then
  echo "error: this environment is for $PLATFORM, but this machine is $host" >&2
  echo "help: run it on a $PLATFORM machine, or pass --platform-check off" >&2
  exit 1
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/pixi-pack-src-sfx.XXXXXXXX")"
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# the numbers have leading zeros: 10# keeps bash from reading them as octal
payload() { tail -c +"$(( 10#$1 + 1 ))" "$0" | head -c "$(( 10#$2 ))"; }

mkdir "$tmp/bundle"
set +o pipefail  # tail is stopped by a broken pipe once head has its bytes
extracted=yes
payload "$BUNDLE_OFFSET" "$BUNDLE_LENGTH" | gzip -dc 2>/dev/null \
  | tar -xf - -C "$tmp/bundle" 2>/dev/null || extracted=no
set -o pipefail
if [ "$extracted" != yes ] || [ ! -f "$tmp/bundle/run.py" ]; then
  echo "error: $0 is damaged: its unpacker could not be extracted" >&2
  echo "help: copy the file again (its size must be $(( 10#$PACK_OFFSET + 10#$PACK_LENGTH )) bytes)" >&2
  exit 1
fi

py=""
if [ -n "$BUNDLED_PYTHON" ] && [ "$host" = "$PLATFORM" ] \
    && "$tmp/bundle/$BUNDLED_PYTHON" -I -c 'import sys' >/dev/null 2>&1; then
  py="$tmp/bundle/$BUNDLED_PYTHON"
else
  # a delta script updating an environment can run on that environment's own python
  for candidate in ${update_env:+"$update_env/bin/python3"} python3 python; do
    if command -v "$candidate" >/dev/null 2>&1 \
        && "$candidate" -I -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      py="$(command -v "$candidate")"
      break
    fi
  done
fi
if [ -z "$py" ]; then
  echo "error: no python >= 3.11 to run the installer: the environment has none for this machine" >&2
  echo "help: install python3 >= 3.11 on this machine, or pack an environment with python" >&2
  exit 1
fi

payload "$PACK_OFFSET" "$PACK_LENGTH" | "$py" -I -B "$tmp/bundle/run.py" - "$@"
exit 0
"""

# Windows: cmd.exe reads a batch file line by line and never reaches the payload after
# `exit /b`, whereas PowerShell parses a whole .ps1 file in memory (Quantco/pixi-pack#304).
# PowerShell is used only as a library, to copy byte ranges with a FileStream.
CMD = r"""@echo off
rem A pixi-pack-src self-extracting environment for @PLATFORM@ (pixi-pack-src @VERSION@).
rem Run it on the offline machine: <this file> [-o DIR] [-e ENV_NAME] [-s SHELL]  (--help: all)
rem Two raw payloads follow this header at the byte offsets below: the unpacker bundle (a
rem gzipped tar) and the pack. They are copied out in 1 MiB chunks, never held in memory.
setlocal EnableExtensions DisableDelayedExpansion
set "BUNDLE_OFFSET=@BUNDLE_OFFSET@"
set "BUNDLE_LENGTH=@BUNDLE_LENGTH@"
set "PACK_OFFSET=@PACK_OFFSET@"
set "PACK_LENGTH=@PACK_LENGTH@"
set "BUNDLED_PYTHON=@PYTHON@"
if "%~1"=="-h" goto help
if "%~1"=="--help" goto help
where tar.exe >nul 2>nul || (echo error: this script needs tar.exe ^(Windows 10 or later^) 1>&2 & exit /b 1)
where powershell.exe >nul 2>nul || (echo error: this script needs powershell.exe 1>&2 & exit /b 1)
set "SFX_TMP=%TEMP%\pixi-pack-src-sfx-%RANDOM%%RANDOM%"
mkdir "%SFX_TMP%\bundle" || exit /b 1
set "SFX_SELF=%~f0"
powershell.exe -NoProfile -ExecutionPolicy Bypass -Command "$ErrorActionPreference='Stop'; function Copy-Range($o,$n,$d){$i=[IO.File]::OpenRead($env:SFX_SELF);try{[void]$i.Seek([int64]$o,'Begin');$f=[IO.File]::Create($d);try{$b=New-Object byte[] 1048576;$l=[int64]$n;while($l -gt 0){$r=$i.Read($b,0,[int][Math]::Min($b.Length,$l));if($r -le 0){throw 'the file is truncated'};$f.Write($b,0,$r);$l-=$r}}finally{$f.Dispose()}}finally{$i.Dispose()}}; Copy-Range $env:BUNDLE_OFFSET $env:BUNDLE_LENGTH ($env:SFX_TMP+'\bundle.tgz'); Copy-Range $env:PACK_OFFSET $env:PACK_LENGTH ($env:SFX_TMP+'\pack.tar')" || goto fail
tar.exe -xzf "%SFX_TMP%\bundle.tgz" -C "%SFX_TMP%\bundle" || goto fail
set "SFX_PY="
if not "%BUNDLED_PYTHON%"=="" if exist "%SFX_TMP%\bundle\%BUNDLED_PYTHON%" set "SFX_PY=%SFX_TMP%\bundle\%BUNDLED_PYTHON%"
if "%SFX_PY%"=="" for %%P in (python.exe) do set "SFX_PY=%%~$PATH:P"
if "%SFX_PY%"=="" (echo error: no python ^>= 3.11 to run the installer 1>&2 & goto fail)
"%SFX_PY%" -I -B "%SFX_TMP%\bundle\run.py" "%SFX_TMP%\pack.tar" %*
set "SFX_CODE=%ERRORLEVEL%"
rmdir /s /q "%SFX_TMP%"
exit /b %SFX_CODE%
:fail
rmdir /s /q "%SFX_TMP%" 2>nul
exit /b 1
:help
echo Usage: %~nx0 [-o DIR] [-e ENV_NAME] [-s SHELL] [--force] [--platform-check on^|off]
echo Install the environment packed in this file, offline (for @PLATFORM@).
echo   -o DIR        where DIR\ENV_NAME and DIR\activate.^<ext^> go [default: .]
echo   -e ENV_NAME   the environment's directory name [default: env]
echo   -s SHELL      shell of the activation script [default: cmd]
echo Needs tar.exe and powershell.exe (Windows 10 or later).
exit /b 0
"""

RUN_PY = '''\
"""Entry point of the unpacker bundle (written by pixi-pack-src; see pixi_pack_src.selfextract)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "site"))
from pixi_pack_src.selfextract.main import main  # noqa: E402

code = main()
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)  # no interpreter teardown: py-rattler's threads can crash it
'''
