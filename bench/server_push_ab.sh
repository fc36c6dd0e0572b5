#!/bin/bash
# Before and after for HTTP push against direct SQL (issue 15): another commit's (REV,
# default main) extension SQL and server build against this tree's, on one server, in
# interleaved rounds, the two builds' runs of each way side by side (bench/server-push-ab.mjs).  Both databases run this tree's library:
# REV's install script is installed as extension version "rev" next to this tree's, so what
# differs is the SQL (the api functions) and the server; sync_push's C code must be the same
# in both (compare push itself with bench/push_ab.sh).  Runs inside a private server of this
# tree, e.g.
#   PRIVATE_CONF=$'synchronous_commit = off\nshared_buffers = 512MB\nmax_wal_size = 4GB\ncheckpoint_timeout = 30min\nautovacuum = off' \
#       bash test/private.sh -- bash bench/server_push_ab.sh main
# Settings: ROUNDS (5), SECONDS_PER_RUN (4), WARMUP (2: seconds of unmeasured pushes per way
# and build first; a server's V8 still compiles its hot functions for some 30 s at one client).
set -euo pipefail
cd "$(dirname "$0")/.."
REV=${1:-main}
ROUNDS=${ROUNDS:-5}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-4}
WARMUP=${WARMUP:-2}
: "${PRIVATE_BINDIR:?run inside test/private.sh}"
extdir="$("$PRIVATE_BINDIR/pg_config" --sharedir)/extension"
tmp=$(mktemp -d)
DB=bench_push_ab
cleanup() {
    dropdb --if-exists ${DB}_rev 2>/dev/null || true
    dropdb --if-exists ${DB}_new 2>/dev/null || true
    rm -f "$extdir/smartsync--rev.sql"
    rm -rf "$tmp"
}
trap cleanup EXIT

# REV's install script, as extension version "rev", and REV's server build
git archive "$REV" Makefile smartsync.control src/sql js | tar -x -C "$tmp"
make -s -C "$tmp" PG_CONFIG="${PG_CONFIG:-pg_config}" "build/smartsync--$(sed -n "s/^default_version = '\(.*\)'/\1/p" "$tmp/smartsync.control").sql" >/dev/null
cp "$tmp"/build/smartsync--*.sql "$extdir/smartsync--rev.sql"
[ -d js/node_modules/pg ] || (cd js && npm ci --no-audit --no-fund --silent >/dev/null)
ln -s "$(pwd)/js/node_modules" "$tmp/js/node_modules"
(cd "$tmp/js/packages/server" && ../../node_modules/.bin/tsc -p tsconfig.build.json)
(cd js && npm run build -w @smartsync/server --silent >/dev/null)

export PGPORT=${PGPORT:-$(psql -XAtc 'SHOW port')}
for v in rev new; do
    dropdb --if-exists ${DB}_$v 2>/dev/null
    createdb ${DB}_$v
    version=""; [ $v = rev ] && version="VERSION 'rev'"
    psql -X -q -v ON_ERROR_STOP=1 -d ${DB}_$v >/dev/null <<SQL
SET client_min_messages = warning;
CREATE EXTENSION smartsync $version;
\i examples/vet_schema.sql
SELECT smartsync.provision_tenant('bench-push');
SELECT smartsync.setup_postgrest('bench-authenticator');
SQL
done

echo "HTTP push before ($REV) and after (this tree): 50-operation batches of creates, one client,"
echo "$ROUNDS interleaved rounds of $SECONDS_PER_RUN s per way and build, after $WARMUP s of warm-up of each"
BENCH_DB_REV=${DB}_rev BENCH_DB_NEW=${DB}_new BENCH_REV_CLI="$tmp/js/packages/server/dist/cli.js" \
BENCH_AUTHENTICATOR_PASSWORD=bench-authenticator \
    node bench/server-push-ab.mjs --rounds "$ROUNDS" --seconds "$SECONDS_PER_RUN" --warmup "$WARMUP" --batch 50 | node -e '
const r = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
const f = (a) => `${a[0].toFixed(2)}x / ${a[Math.floor(a.length / 2)].toFixed(2)}x / ${a.at(-1).toFixed(2)}x`;
console.log("");
console.log("| build | direct SQL (ops/s) | api, no HTTP (ops/s) | HTTP (ops/s) | HTTP / SQL: min / median / max | api / SQL | HTTP / api | server CPU per push (ms) |");
console.log("|---|---|---|---|---|---|---|---|");
for (const b of ["rev", "new"]) {
  console.log(`| ${b === "rev" ? "before" : "after"} | ${r.ops[b + ".sql"]} | ${r.ops[b + ".api"]} | ${r.ops[b + ".http"]} | ${f(r.ratios[b + " http/sql"])} | ${f(r.ratios[b + " api/sql"])} | ${f(r.ratios[b + " http/api"])} | ${r.serverCpuMsPerPush[b].toFixed(2)} |`);
}
console.log("");
console.log(`after / before per round: HTTP ${f(r.ratios["http new/rev"])}, api ${f(r.ratios["api new/rev"])}, direct SQL ${f(r.ratios["sql new/rev"])}`);
const g = (a) => `${a[0].toFixed(2)} / ${a[Math.floor(a.length / 2)].toFixed(2)} / ${a.at(-1).toFixed(2)}`;
console.log(`server CPU per push per round (ms), min / median / max: before ${g(r.serverCpuMsPerPushRounds.rev)}, after ${g(r.serverCpuMsPerPushRounds.new)}`);
console.log(`load (1-minute average after each round): ${r.load.map((x) => x.toFixed(1)).join(" ")}`);
'
