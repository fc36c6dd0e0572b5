#!/bin/bash
# The client's integration tests against a real PostgreSQL with smartsync installed: the
# server of the PG* environment when PGHOST or PGPORT is set (for example under
# `bash test/private.sh -- bash js/packages/client/test/integration/run.sh`), else a
# throwaway cluster made by pg_virtualenv with the system's smartsync.
set -euo pipefail
cd "$(dirname "$0")/../.."
# the httpTransport leg runs against @smartsync/server when the workspace has it (issue 15)
if [ -f ../server/src/index.ts ]; then
    (cd ../.. && npm run build -w @smartsync/server >/dev/null)
fi
if [ -n "${PGHOST:-}${PGPORT:-}" ]; then
    exec npx vitest run -c vitest.integration.config.ts "$@"
fi
# node-postgres does not read the cluster files psql finds the port in: name it (pg_virtualenv
# exports PGPORT only when it runs one version; test/run.mjs of @smartsync/server does the same)
exec pg_virtualenv -t -v "${PG_VERSION:-15}" sh -c 'export PGPORT="$(psql -XAtc "SHOW port")" && exec npx "$@"' sh vitest run -c vitest.integration.config.ts "$@"
