"""Recipe-built packages that need real rattler-build features (cached on disk).

- :func:`build_relocme`: linux-64 ``relocme`` - a C program compiled with gcc with the build
  prefix baked into a string constant (binary prefix placeholder), which prints it, plus a
  text file holding the prefix (text placeholder). Installed at a new prefix, ``bin/relocme``
  prints the new prefix and ``etc/relocme.conf`` reads ``prefix=<new prefix>``.
- :func:`build_libgreet`: linux-64 ``libgreet`` - ``lib/libgreet.so.2`` built with gcc and a
  CLI ``bin/greet`` linked to it (rpath rewritten to ``$ORIGIN/../lib``); ``greet you`` prints
  ``hello you from libgreet 2.1.0`` at any prefix. Written as ``.tar.bz2``.
- :func:`build_worldcli`: noarch-python ``worldcli`` with a console-script entry point
  (``bin/worldcli`` prints ``worldcli 1.0.0``); needs the world ``python`` to build.
"""

from __future__ import annotations

from pathlib import Path

from testworld.packages import build_recipe

RELOCME_VERSION = "1.0.0"
LIBGREET_VERSION = "2.1.0"
WORLDCLI_VERSION = "1.0.0"

RELOCME_RECIPE = f"""\
package:
  name: relocme
  version: "{RELOCME_VERSION}"
build:
  number: 0
  script:
    content: |
      set -euo pipefail
      mkdir -p "$PREFIX/bin" "$PREFIX/etc" "$PREFIX/share/relocme"
      printf 'prefix=%s\\n' "$PREFIX" > "$PREFIX/etc/relocme.conf"
      printf '#!/bin/sh\\necho "%s"\\n' "$PREFIX" > "$PREFIX/bin/relocme-sh"
      chmod +x "$PREFIX/bin/relocme-sh"
      cat > relocme.c <<EOC
      #include <stdio.h>
      static const char PREFIX_AT_BUILD[] = "$PREFIX";
      int main(void) {{ puts(PREFIX_AT_BUILD); return 0; }}
      EOC
      gcc -O1 -o "$PREFIX/bin/relocme" relocme.c
about:
  summary: prints its install prefix (binary and text prefix placeholders)
  license: BSD-3-Clause
"""

LIBGREET_RECIPE = f"""\
package:
  name: libgreet
  version: "{LIBGREET_VERSION}"
build:
  number: 0
  script:
    content: |
      set -euo pipefail
      mkdir -p "$PREFIX/lib" "$PREFIX/bin" "$PREFIX/include"
      cat > greet.c <<'EOC'
      #include <stdio.h>
      const char *greet_version(void) {{ return "{LIBGREET_VERSION}"; }}
      void greet(const char *who) {{ printf("hello %s from libgreet %s\\n", who, greet_version()); }}
      EOC
      cat > main.c <<'EOC'
      void greet(const char *who);
      int main(int argc, char **argv) {{ greet(argc > 1 ? argv[1] : "world"); return 0; }}
      EOC
      printf 'void greet(const char *who);\\nconst char *greet_version(void);\\n' > "$PREFIX/include/greet.h"
      gcc -O1 -fPIC -shared -Wl,-soname,libgreet.so.2 -o "$PREFIX/lib/libgreet.so.2" greet.c
      ln -s libgreet.so.2 "$PREFIX/lib/libgreet.so"
      gcc -O1 -o "$PREFIX/bin/greet" main.c -L"$PREFIX/lib" -lgreet -Wl,-rpath,"$PREFIX/lib"
about:
  summary: a tiny shared library and a CLI linked to it
  license: MIT
"""

WORLDCLI_RECIPE = f"""\
package:
  name: worldcli
  version: "{WORLDCLI_VERSION}"
build:
  number: 0
  noarch: python
  python:
    entry_points:
      - worldcli = worldcli:main
  script:
    content: |
      set -euo pipefail
      SP=$($PYTHON -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
      mkdir -p "$SP/worldcli"
      cat > "$SP/worldcli/__init__.py" <<'EOP'
      __version__ = "{WORLDCLI_VERSION}"


      def main() -> None:
          import sys

          print("worldcli " + __version__, *sys.argv[1:])
      EOP
requirements:
  host:
    - python
  run:
    - python >=3.8
about:
  summary: a noarch python package with a console script
  license: BSD-3-Clause
"""


def build_relocme() -> Path:
    (path,) = build_recipe(RELOCME_RECIPE, label="relocme")
    return path


def build_libgreet() -> Path:
    (path,) = build_recipe(LIBGREET_RECIPE, package_format="tar.bz2", label="libgreet")
    return path


def build_worldcli(python_archive: Path) -> Path:
    (path,) = build_recipe(WORLDCLI_RECIPE, requirements_from=[python_archive], label="worldcli")
    return path


def build_pip(python_archive: Path) -> Path:
    from testworld.python_pkg import pip_recipe

    recipe, files = pip_recipe()
    (path,) = build_recipe(
        recipe, extra_files=files, requirements_from=[python_archive], label="pip"
    )
    return path
