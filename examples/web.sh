#!/bin/bash
# The example app in a browser: a throwaway PostgreSQL cluster with smartsync and the demo
# tenant (the veterinary schema of examples/vet_schema.sql, PostgREST roles from
# smartsync.setup_postgrest), @smartsync/server, and the front-desk app (js/examples/vet-app)
# served by Vite with /api/sync proxied to the server. Prints the app's address and two
# sign-in tokens (two devices); Ctrl-C stops everything and drops the cluster.
#
#   bash examples/web.sh                 # WEB_PORT=5173 SERVER_PORT=3000 by default
#
# With PGHOST or PGPORT set it uses that server (a database of its own, dropped at the end)
# instead of installing smartsync and making a cluster; SMARTSYNC_SERVER_CLI names another
# build of the server's command; WEB_SKIP_NPM_CI=1 keeps the installed node_modules.
set -euo pipefail
cd "$(dirname "$0")/.."
WEB_PORT=${WEB_PORT:-5173}
SERVER_PORT=${SERVER_PORT:-3000}
export WEB_PORT SERVER_PORT

if [ "${1:-}" != "--inside" ]; then
    if [ -z "${PGHOST:-}${PGPORT:-}" ]; then
        bash test/deps.sh
        SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
        export PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
        make -s >/dev/null
        $SUDO make -s install >/dev/null
    fi
    [ -n "${WEB_SKIP_NPM_CI:-}" ] || (cd js && npm ci --no-audit --no-fund --loglevel=error)
    [ -n "${SMARTSYNC_SERVER_CLI:-}" ] || (cd js && npm run build -w @smartsync/server >/dev/null)
    (cd js/examples/vet-app && npx vite build --logLevel warn)
    if [ -n "${PGHOST:-}${PGPORT:-}" ]; then exec bash "$0" --inside; fi
    exec pg_virtualenv -t -v 15 bash "$0" --inside
fi

# --- inside: a server is there (PG* set) ------------------------------------------------
DB=vet_web_$$
PASSWORD=web-demo-authenticator-$$
SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '/+=' | head -c 40)
pids=()
stop() {
    trap - INT TERM EXIT
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
    echo "stopped"
}
trap stop INT TERM EXIT

psql -X -q -d postgres -c "CREATE DATABASE $DB"
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" >/dev/null <<SQL
SET client_min_messages = warning;
CREATE EXTENSION smartsync;
\i examples/vet_schema.sql
SELECT smartsync.provision_tenant('happy-paws');
SELECT smartsync.setup_postgrest('$PASSWORD');
-- the front desk decides every appointment conflict itself (the schema lets push merge them)
SELECT smartsync.set_conflict_policy('appointments', default_strategy => 'manual');
INSERT INTO tenant_happy_paws.practitioners (practice_id, name, specialty) VALUES (1, 'Dr. Ana Costa', 'surgery'), (1, 'Dr. Ben Ode', 'general');
INSERT INTO tenant_happy_paws.clients (practice_id, name, email, phone) VALUES (1, 'Maria Lopez', 'maria@example.com', '555-0101'), (1, 'Tom Baker', 'tom@example.com', '555-0102');
INSERT INTO tenant_happy_paws.pets (practice_id, client_id, name, species, breed) VALUES (1, 1, 'Biscuit', 'dog', 'beagle'), (1, 2, 'Luna', 'cat', NULL);
INSERT INTO tenant_happy_paws.appointments (practice_id, pet_id, practitioner_id, title, date, duration, notes)
  VALUES (1, 1, 1, 'Annual check-up', now()::date + time '09:00' + interval '1 day', 30, 'bring the vaccination card'),
         (1, 2, 2, 'Vaccination', now()::date + time '11:30' + interval '1 day', 20, NULL);
SQL

host=${PGHOST:-localhost}
if [[ "$host" == /* ]]; then url="postgres://authenticator:$PASSWORD@localhost:${PGPORT:-5432}/$DB?host=$host"
else url="postgres://authenticator:$PASSWORD@$host:${PGPORT:-5432}/$DB"; fi
SMARTSYNC_JWT_SECRET=$SECRET SMARTSYNC_DATABASE_URL=$url SMARTSYNC_LOG_LEVEL=warn \
    node "${SMARTSYNC_SERVER_CLI:-js/packages/server/dist/cli.js}" --host 127.0.0.1 --port "$SERVER_PORT" &
pids+=($!)
# vite itself (not through npx, whose child would outlive a kill of its pid)
(cd js/examples/vet-app && SMARTSYNC_SERVER_URL=http://127.0.0.1:$SERVER_PORT exec node ../../node_modules/vite/bin/vite.js preview --host 127.0.0.1 --port "$WEB_PORT" --strictPort --logLevel warn) &
pids+=($!)

token() {
    node -e '
const { createHmac } = require("node:crypto");
const [secret, device, user] = process.argv.slice(1);
const b64 = (s) => Buffer.from(s).toString("base64url");
const head = b64(JSON.stringify({ alg: "HS256", typ: "JWT" }));
const body = b64(JSON.stringify({ role: "web_user", tenant_id: "happy-paws", practice_id: 1, sub: user, client_id: device, permissions: ["*"], exp: Math.floor(Date.now() / 1000) + 7 * 86400 }));
process.stdout.write(`${head}.${body}.${createHmac("sha256", secret).update(`${head}.${body}`).digest("base64url")}`);' "$SECRET" "$1" "$2"
}
node -e '
const urls = process.argv.slice(1);
const up = async (url) => { try { return (await fetch(url)).ok; } catch { return false; } };
(async () => { for (let i = 0; i < 150; i++) { if ((await Promise.all(urls.map(up))).every(Boolean)) return; await new Promise((r) => setTimeout(r, 200)); } process.exit(1); })();
' "http://127.0.0.1:$SERVER_PORT/api/sync/health" "http://127.0.0.1:$WEB_PORT/" || { echo "the server or the app did not start"; exit 1; }
cat <<EOF2

  The Happy Paws front desk runs at http://127.0.0.1:$WEB_PORT/
  (@smartsync/server on http://127.0.0.1:$SERVER_PORT/api/sync, database $DB)

  Device 1 (front desk):  http://127.0.0.1:$WEB_PORT/?token=$(token front-desk-1 reception)
  Device 2 (vet tablet):  http://127.0.0.1:$WEB_PORT/?token=$(token vet-tablet-2 dr-costa)

  Open each in its own browser profile (or one in a private window): a device keeps its data
  in the browser's IndexedDB. Try DevTools -> Network -> Offline, edit, go online; or change a
  row with psql -d $DB while the app is open. Ctrl-C stops everything.

EOF2
wait
