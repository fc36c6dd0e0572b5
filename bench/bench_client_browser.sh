#!/bin/bash
# @smartsync/client in Debian's Chromium against a real @smartsync/server and PostgreSQL:
# the first sync of 100,000 rows of 20 fields into IndexedDB (against the same pull pages read
# by a bare fetch loop, rounds interleaved), the JS heap while pulling and after, and the time
# from going online to the last queued operation acknowledged for 50 and 1,000 operations
# (js/examples/vet-app/test/bench/browser.bench.ts). Settings: BENCH_ROWS (100000),
# BENCH_ROUNDS (3), BENCH_PULL_LIMIT (1000), BENCH_PULL_LIMIT_ALT (another page size, its client
# and bare loop measured in the same rounds), BENCH_PUSH (50,1000), BENCH_ONLY=first-sync (skip
# the push figures), BENCH_BEFORE_DIST (another tree's vet-app dist/: its client's first sync
# measured in the same rounds), BENCH_PROFILE (a directory for CPU profiles of the tab, round 1),
# BENCH_GENERIC_PLANS (1: the database plans generically, see the README), BENCH_WARMUP (0).
#
# The PG* server when PGHOST or PGPORT is set (bash test/private.sh -- bash bench/bench_client_browser.sh),
# else a throwaway pg_virtualenv cluster with the system's smartsync.
set -euo pipefail
cd "$(dirname "$0")/../js"
bash ../test/deps.sh
[ -d node_modules ] || npm ci --no-audit --no-fund
[ -n "${SMARTSYNC_SERVER_MODULE:-}" ] || npm run build -w @smartsync/server >/dev/null
cd examples/vet-app
npx vite build --logLevel warn
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -n "${PGHOST:-}${PGPORT:-}" ]; then
    npx vitest run -c vitest.bench.config.ts
else
    pg_virtualenv -t -v "${PG_VERSION:-15}" npx vitest run -c vitest.bench.config.ts
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
