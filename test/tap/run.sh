#!/bin/bash
# Runs the TAP tests (test/tap/*.pl, or the ones named as arguments) with
# PostgreSQL's own Perl framework (PostgreSQL::Test::Cluster), against the
# installed smartsync.  Each test makes its own clusters in a private temporary
# directory; nothing here needs pg_virtualenv.  initdb refuses to run as root, so
# as root the tests run as the postgres user, from a copy of the files they read.
set -euo pipefail
cd "$(dirname "$0")/../.."
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
bindir=$("$PG_CONFIG" --bindir)
# SMARTSYNC_PG_BINDIR: the bin directory of another installation to test, e.g.
# one made by test/install_private.sh
bindir=${SMARTSYNC_PG_BINDIR:-$bindir}
pgxs_src=$(dirname "$(dirname "$("$PG_CONFIG" --pgxs)")")   # .../lib/pgxs/src

work=$(mktemp -d "${TMPDIR:-/tmp}/smartsync_tap.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/t" "$work/data"
if [ $# -gt 0 ]; then tests=("$@"); else tests=(test/tap/*.pl); fi
cp "${tests[@]}" "$work/t/"
cp examples/vet_schema.sql "$work/data/"
chmod -R a+rX "$work"

run=()
if [ "$(id -u)" = 0 ]; then
    chown -R postgres "$work"
    run=(runuser -u postgres --)
fi
status=0
(cd "$work" && "${run[@]}" env \
    PATH="$bindir:$PATH" \
    TESTDIR="$work" \
    PG_REGRESS="$pgxs_src/test/regress/pg_regress" \
    SMARTSYNC_DATA="$work/data" \
    prove -I "$pgxs_src/test/perl" ${PROVE_FLAGS:-} t/*.pl) || status=$?
# a sanitizer report in any server's log fails the run (test/sanitize.sh)
if grep -lE 'AddressSanitizer|runtime error:' "$work"/tmp_check/log/*.log 2>/dev/null; then
    grep -hE -A20 'AddressSanitizer|runtime error:' "$work"/tmp_check/log/*.log | head -100
    status=1
fi
if [ $status -ne 0 ] || [ -n "${TAP_SHOW_LOG:-}" ]; then
    for f in "$work"/tmp_check/log/regress_log_*; do
        [ -f "$f" ] && { echo "=== $(basename "$f") (last 80 lines)"; tail -n 80 "$f"; }
    done
fi
exit $status
