#!/bin/bash
# The test command: builds smartsync with warnings as errors, installs it, and runs
# every suite (pg_regress, isolation specs, pgTAP) against a throwaway cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
bash test/deps.sh
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
export PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
make -s clean
make -s
$SUDO make -s install
status=0
pg_virtualenv -t -v 15 make -s test || status=$?
if [ $status -ne 0 ]; then
    for f in regression.diffs test/isolation/output_iso/regression.diffs output_iso/regression.diffs; do
        [ -s "$f" ] && { echo "=== $f"; head -200 "$f"; }
    done
    exit $status
fi
# TAP tests (hot standby, crash recovery): their own clusters, PostgreSQL's Perl framework
make -s tap
