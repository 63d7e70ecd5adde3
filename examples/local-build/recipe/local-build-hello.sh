#!/bin/sh
# Prints what the three source packages installed (works at any prefix).
here=$(cd "$(dirname "$0")/.." && pwd)
for pkg in local-build-main local-build-pkg local-build-pkg2; do
    echo "$pkg $(cat "$here/share/$pkg/VERSION")"
done
echo "built for $(cat "$here/share/local-build-main/TARGET")"
