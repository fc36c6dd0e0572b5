#!/bin/bash
# Peak backend memory of one sync_push of 1, 10 and 50 MB, refused and accepted
# (README "Push": memory of large requests).  Runs against the server in PG*
# (on this machine: the client reads /proc of the backend), e.g.
#   bash test/private.sh -- bash bench/bench_push_memory.sh
# Arguments: the sizes in MB (default 1 10 50).  PUSH_MEMORY_LIMITS=0 for a build
# without smartsync's size limits (0.2.0): no limit settings, no refusal by one.
set -euo pipefail
cd "$(dirname "$0")/.."
PG_CONFIG=${PG_CONFIG:-pg_config}
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
gcc -O2 -Wall -Werror -o "$bin/push_memory" bench/push_memory.c \
    -I"$("$PG_CONFIG" --includedir)" -L"$("$PG_CONFIG" --libdir)" -lpq
psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS smartsync;
SELECT to_regnamespace('vet_template') IS NULL AS need_vet \gset
\if :need_vet
\o /dev/null
\i examples/vet_schema.sql
\o
\endif
SELECT smartsync.provision_tenant('push-memory', 'push_memory') \g /dev/null
INSERT INTO push_memory.clients (id, practice_id, name) VALUES (1, 1, 'Ann') ON CONFLICT DO NOTHING;
SQL
echo "sync_push: peak backend memory (anonymous, above a warm connection) of one request; server $(psql -X -At -c 'SHOW server_version')"
"$bin/push_memory" "$@"
