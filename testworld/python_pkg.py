"""A real ``python`` conda package made from the machine's own CPython (and a real ``pip``).

The recipe copies the host interpreter (``sys.base_prefix``) into ``$PREFIX``: ``bin/python3.X``
with ``python3``/``python`` links, ``libpython`` (stripped), the C headers (``include/``, so C
extensions build against it), and the standard library without
``site-packages``, tests, IDLE, tkinter, ensurepip, lib2to3 and bytecode; it then rewrites the
build-time paths in ``_sysconfigdata_*.py``. rattler-build turns the rest into relocatable
content (rpath ``$ORIGIN/../lib``, text prefix placeholders). An environment with it installed
runs ``bin/python -c "import sys, ssl, sqlite3"`` from any prefix, also after being moved.

It links the host's system libraries (libssl, libsqlite3, libc), so it is valid on this OS
image only. Built once per input hash (~3 s) and cached on disk.

Foreign platforms get :func:`foreign_python_spec`: metadata plus placeholder bytes.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
import sys
from pathlib import Path

from testworld.packages import PackageSpec, build_recipe, placeholder_binary

PY_VERSION = platform.python_version()  # e.g. "3.11.7"
PY_MAJOR_MINOR = ".".join(PY_VERSION.split(".")[:2])


def _build_hash(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:7]


PYTHON_BUILD = f"h{_build_hash('python', PY_VERSION)}_0_cpython"


def python_recipe(pyroot: Path | None = None) -> str:
    """The ``recipe.yaml`` text that repackages the interpreter under ``pyroot``."""
    root = Path(pyroot or sys.base_prefix)
    mm = PY_MAJOR_MINOR
    has_shared = (root / "lib" / f"libpython{mm}.so.1.0").is_file()
    shared = (
        f"""      cp "$PYROOT/lib/libpython{mm}.so.1.0" "$PREFIX/lib/"
      chmod u+w "$PREFIX/lib/libpython{mm}.so.1.0"
      strip --strip-unneeded "$PREFIX/lib/libpython{mm}.so.1.0"
      ln -s libpython{mm}.so.1.0 "$PREFIX/lib/libpython{mm}.so"
"""
        if has_shared
        else ""
    )
    excludes = " ".join(
        f"--exclude='{pattern}'"
        for pattern in (
            f"python{mm}/site-packages/*",
            f"python{mm}/test",
            f"python{mm}/idlelib",
            f"python{mm}/tkinter",
            f"python{mm}/turtledemo",
            f"python{mm}/ensurepip",
            f"python{mm}/lib2to3",
            f"python{mm}/config-{mm}-*",
            "__pycache__",
        )
    )
    return f"""\
package:
  name: python
  version: "{PY_VERSION}"
build:
  number: 0
  string: {PYTHON_BUILD}
  python:
    skip_pyc_compilation:
      - "**/*.py"
  script:
    env:
      PYROOT: "{root}"
    content: |
      set -euo pipefail
      mkdir -p "$PREFIX/bin" "$PREFIX/lib/python{mm}/site-packages"
      cp "$PYROOT/bin/python{mm}" "$PREFIX/bin/python{mm}"
      chmod u+w "$PREFIX/bin/python{mm}"
      ln -s python{mm} "$PREFIX/bin/python3"
      ln -s python{mm} "$PREFIX/bin/python"
{shared}      cd "$PYROOT/lib"
      tar cf - {excludes} python{mm} | (cd "$PREFIX/lib" && tar xf -)
      touch "$PREFIX/lib/python{mm}/site-packages/.keep"
      if [ -d "$PYROOT/include/python{mm}" ]; then
        mkdir -p "$PREFIX/include" && cp -R "$PYROOT/include/python{mm}" "$PREFIX/include/"
      fi
      sed -i "s|$PYROOT|$PREFIX|g" "$PREFIX"/lib/python{mm}/_sysconfigdata_*.py
about:
  summary: CPython {PY_VERSION} repackaged from the host for the offline test world
  license: PSF-2.0
"""


def build_python() -> Path:
    """The cached linux-64 ``python`` archive (``.conda``)."""
    (path,) = build_recipe(python_recipe(), label="python")
    return path


def foreign_python_spec(subdir: str) -> PackageSpec:
    """``python`` for a platform we cannot build for: metadata plus placeholder bytes."""
    mm = PY_MAJOR_MINOR
    if subdir.startswith("win"):
        files = {
            "python.exe": placeholder_binary("python", subdir),
            f"python{mm.replace('.', '')}.dll": placeholder_binary("python-dll", subdir),
            "Lib/os.py": b"# placeholder standard library\n",
            "Lib/site-packages/.keep": b"",
        }
    else:
        files = {
            f"bin/python{mm}": placeholder_binary("python", subdir),
            f"lib/python{mm}/os.py": b"# placeholder standard library\n",
            f"lib/python{mm}/site-packages/.keep": b"",
        }
    symlinks = {} if subdir.startswith("win") else {"bin/python": f"python{mm}"}
    return PackageSpec(
        name="python",
        version=PY_VERSION,
        subdir=subdir,
        files=files,
        symlinks=symlinks,
        build=PYTHON_BUILD,
        license="PSF-2.0",
    )


def pip_recipe() -> tuple[str, dict[str, str]]:
    """A noarch-python ``pip`` recipe copying the host's pip, with its ``pip`` entry point."""
    dist = importlib.metadata.distribution("pip")
    pkg_dir = Path(str(dist.locate_file("pip")))
    info_dir = Path(str(dist.locate_file(f"pip-{dist.version}.dist-info")))
    recipe = f"""\
package:
  name: pip
  version: "{dist.version}"
build:
  number: 0
  noarch: python
  python:
    entry_points:
      - pip = pip._internal.cli.main:main
      - pip3 = pip._internal.cli.main:main
  script:
    env:
      PIPSRC: "{pkg_dir}"
      PIPINFO: "{info_dir}"
    content: |
      set -euo pipefail
      SP=$($PYTHON -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
      mkdir -p "$SP"
      (cd "$(dirname "$PIPSRC")" && tar cf - --exclude=__pycache__ pip) | (cd "$SP" && tar xf -)
      mkdir -p "$SP/pip-{dist.version}.dist-info"
      cp "$PIPINFO/METADATA" "$PIPINFO/LICENSE.txt" "$SP/pip-{dist.version}.dist-info/" 2>/dev/null || cp "$PIPINFO/METADATA" "$SP/pip-{dist.version}.dist-info/"
      printf 'conda\\n' > "$SP/pip-{dist.version}.dist-info/INSTALLER"
requirements:
  host:
    - python
  run:
    - python >={PY_MAJOR_MINOR}
about:
  summary: pip {dist.version}, repackaged from the host for the offline test world
  license: MIT
"""
    return recipe, {}
