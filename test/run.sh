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
# @smartsync/client and @smartsync/server (js/): npm ci with the committed lock file, unit
# tests, then integration tests against throwaway clusters of their own (Node.js 20 or later)
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' || { echo "js/ needs Node.js 20 or later"; exit 1; }
(cd js && npm ci --no-audit --no-fund && npm test -w @smartsync/client && npm run test:integration -w @smartsync/client \
    && npm test -w @smartsync/server)
# @smartsync/react (Vitest, React Testing Library, happy-dom), then the example app's browser
# tests: Debian's chromium, a real @smartsync/server and a throwaway cluster of their own
(cd js && npm test -w @smartsync/react && bash examples/vet-app/test/run.sh)
