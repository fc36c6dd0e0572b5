#!/bin/bash
# The database suites, on one PostgreSQL version: builds smartsync with warnings as
# errors, installs it into that version's PostgreSQL, runs `make test` (pg_regress
# with the upgrade test, isolation specs, pgTAP, the bad-payload corpus, the
# simulation) in a throwaway pg_virtualenv cluster, then the TAP tests (hot standby,
# crash recovery, dump and restore).  test/run.sh runs it for 15 on the host;
# test/matrix.sh runs it for 17 and 18 inside their chroots (test/chroot.sh).
#   SMARTSYNC_PG_VERSION   the PostgreSQL major version (default 15)
set -euo pipefail
cd "$(dirname "$0")/.."
v=${SMARTSYNC_PG_VERSION:-15}
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
export PG_CONFIG=/usr/lib/postgresql/$v/bin/pg_config
echo "suites: $("$PG_CONFIG" --version), gcc $(gcc -dumpfullversion)"
make -s clean
make -s
$SUDO make -s install
status=0
pg_virtualenv -t -v "$v" make -s test || status=$?
if [ $status -ne 0 ]; then
    for f in regression.diffs test/isolation/output_iso/regression.diffs output_iso/regression.diffs; do
        [ -s "$f" ] && { echo "=== $f"; head -200 "$f"; }
    done
    exit $status
fi
# TAP tests (hot standby, crash recovery, dump and restore): their own clusters,
# PostgreSQL's Perl framework
make -s tap
