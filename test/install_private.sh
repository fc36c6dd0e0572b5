#!/bin/bash
# Makes a private PostgreSQL installation under DIR: a copy of the system's
# PostgreSQL 15 (binaries, libraries, share files; PostgreSQL finds them relative
# to its binaries) with smartsync built from a copy of this tree and installed
# into it.  Extra arguments go to make (e.g. PG_CFLAGS=... for a sanitizer
# build).  Nothing of the system installation or of the working tree changes.
# Prints the private bin directory.
#   test/install_private.sh DIR [make arguments...]
# INSTALL_PRIVATE_EXTRA_SRC: more C files compiled into smartsync (test builds).
set -euo pipefail
dir=$1; shift
tree=$(cd "$(dirname "$0")/.." && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
bindir=$("$PG_CONFIG" --bindir)
pkglibdir=$("$PG_CONFIG" --pkglibdir)
sharedir=$("$PG_CONFIG" --sharedir)

mkdir -p "$dir$bindir" "$dir$pkglibdir" "$dir$sharedir" "$dir/build"
cp -a "$bindir/." "$dir$bindir/"
cp -a "$pkglibdir/." "$dir$pkglibdir/"
cp -a "$sharedir/." "$dir$sharedir/"
rm -f "$dir$pkglibdir/smartsync.so" "$dir$sharedir"/extension/smartsync*
rm -rf "$dir$pkglibdir/bitcode/smartsync" "$dir$pkglibdir/bitcode/smartsync.index.bc"

# build from a copy of the sources, so the working tree's objects stay as they are
(cd "$tree" && tar cf - --exclude='*.o' --exclude='*.bc' --exclude='*.so' \
    Makefile smartsync.control src $(ls -d upgrade 2>/dev/null)) | tar xf - -C "$dir/build"
for f in ${INSTALL_PRIVATE_EXTRA_SRC:-}; do cp "$f" "$dir/build/src/"; done
make -C "$dir/build" -s PG_CONFIG="$PG_CONFIG" "$@" >&2
make -C "$dir/build" -s PG_CONFIG="$PG_CONFIG" DESTDIR="$dir" "$@" install >&2
echo "$dir$bindir"
