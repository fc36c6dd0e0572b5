#!/bin/bash
# The example app's browser tests: Debian's chromium driven by playwright-core, against a real
# PostgreSQL with smartsync and a real @smartsync/server. The PG* server when PGHOST or PGPORT
# is set (e.g. `bash test/private.sh -- bash js/examples/vet-app/test/run.sh`), else a
# throwaway pg_virtualenv cluster with the system's smartsync. Screenshots of each step go to
# js/examples/vet-app/test-results/browser/ (ignored by git).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || { echo "the browser tests need Debian's chromium (apt-get install chromium; test/deps.sh installs it)"; exit 1; }
npx vite build --logLevel warn
if [ -z "${SMARTSYNC_SERVER_MODULE:-}" ]; then
    [ -f ../../packages/server/src/index.ts ] || { echo "the browser tests need @smartsync/server in js/packages/server"; exit 1; }
    (cd ../.. && npm run build -w @smartsync/server >/dev/null)
fi
if [ -n "${PGHOST:-}${PGPORT:-}" ]; then
    exec npx vitest run -c vitest.browser.config.ts "$@"
fi
# node-postgres does not read the cluster files psql finds the port in: name it (pg_virtualenv
# exports PGPORT only when it runs one version; test/run.mjs of @smartsync/server does the same)
exec pg_virtualenv -t -v "${PG_VERSION:-15}" sh -c 'export PGPORT="$(psql -XAtc "SHOW port")" && exec npx "$@"' sh vitest run -c vitest.browser.config.ts "$@"
