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
exec pg_virtualenv -t -v "${PG_VERSION:-15}" npx vitest run -c vitest.integration.config.ts "$@"
