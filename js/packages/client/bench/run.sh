#!/bin/bash
# Builds and runs the client's benchmarks (bench/*.ts) against the PostgreSQL of the PG*
# environment, or a throwaway pg_virtualenv cluster (synchronous_commit=off) when none is set.
#   bash js/packages/client/bench/run.sh            # push-1000
#   ROUNDS=9 bash js/packages/client/bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d ../../node_modules ] || (cd ../.. && npm ci --no-audit --no-fund)
rm -rf bench/out
npx tsc -p tsconfig.bench.json
if [ -n "${PGHOST:-}${PGPORT:-}" ]; then
    exec node bench/out/bench/push-1000.js
fi
exec pg_virtualenv -t -v "${PG_VERSION:-15}" -o synchronous_commit=off node bench/out/bench/push-1000.js
