#!/bin/bash
# @smartsync/server: commit-to-event latency of live streams (1, 100 and 1,000 open
# streams of one tenant, polled signal and NOTIFY) and push throughput over HTTP against
# direct SQL calls of sync_push with the same 50-operation batches.  The server is the
# built smartsync-server command in a process of its own, logged in as authenticator;
# bench/server-bench.mjs is the clients.  Run inside a cluster (PG* set):
#   bash bench/run.sh server, or
#   PRIVATE_CONF="synchronous_commit = off" bash test/private.sh -- bash bench/bench_server.sh
# Settings: STREAMS ("1 100 1000"), SIGNALS ("poll notify"), COMMITS (100), ROUNDS (5),
# SECONDS_PER_RUN (5), CLIENTS ("1 4": concurrent pushers), PARTS ("latency push"; "idle":
# what an idle server with open streams in N tenants costs itself and the database per
# second, TENANTS "1 100", WRITES "0 200" commits a second to a tenant nobody watches),
# POLL_INTERVAL (the server's --poll-interval, default its own: 1 ms),
# WORKERS ("1": the server's --workers; "1 2" runs each), READERS ("node": the streams
# are sockets of the benchmark's Node process, which also runs the writer; "c": they are
# read by bench/live_reader.c, one epoll process, compiled here, whose cost per event is
# a recv(); "node c" runs each),
# BENCH_SERVER_CLI (another build's dist/cli.js, to compare), BENCH_SERVER_NODE_ARGS
# (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the server).
set -euo pipefail
cd "$(dirname "$0")/.."
DB=bench_server
STREAMS=${STREAMS:-1 100 1000}
SIGNALS=${SIGNALS:-poll notify}
COMMITS=${COMMITS:-100}
ROUNDS=${ROUNDS:-5}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
CLIENTS=${CLIENTS:-1 4}
PARTS=${PARTS:-latency push}
TENANTS=${TENANTS:-1 100}
WRITES=${WRITES:-0 200}
POLL_INTERVAL=${POLL_INTERVAL:-1}
WORKERS=${WORKERS:-1}
READERS=${READERS:-node}
[ -d js/node_modules/pg ] || (cd js && npm ci --no-audit --no-fund --silent >/dev/null)
(cd js && npm run build -w @smartsync/server --silent >/dev/null)
export PGPORT=${PGPORT:-$(psql -XAtc 'SHOW port')}
dropdb --if-exists $DB 2>/dev/null
createdb $DB
tmp=$(mktemp -d)
trap 'dropdb --if-exists $DB 2>/dev/null || true; rm -rf "$tmp"' EXIT
if [[ " $READERS " == *" c "* ]]; then
    gcc -O2 -Wall -Wextra -Werror -o "$tmp/live_reader" bench/live_reader.c
    export BENCH_LIVE_READER=$tmp/live_reader
fi
psql -X -q -v ON_ERROR_STOP=1 -d $DB >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION smartsync;
\i examples/vet_schema.sql
SELECT smartsync.provision_tenant('bench-live'), smartsync.provision_tenant('bench-push');
INSERT INTO tenant_bench_live.clients (id, practice_id, name) VALUES (1, 1, 'Live');
SELECT smartsync.setup_postgrest('bench-authenticator');
SQL
export PGDATABASE=$DB BENCH_AUTHENTICATOR_PASSWORD=bench-authenticator

if [[ " $PARTS " == *" latency "* ]]; then
echo "Commit-to-event latency at the client: one tenant, N streams on loopback, $COMMITS commits one at a time"
echo "(a plain-SQL UPDATE of one row; from the UPDATE's start to the event's arrival at each stream)"
echo
echo "| signal | workers | reader | streams | events measured | p50 (ms) | p99 (ms) | max (ms) | first stream, median (ms) | last stream, median (ms) | client CPU per commit (ms) | server CPU per commit (ms) | load | goal at 1,000 streams |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for s in $SIGNALS; do
  for w in $WORKERS; do
    for rd in $READERS; do
      for n in $STREAMS; do
        r=$(node bench/server-bench.mjs latency --signal "$s" --streams "$n" --commits "$COMMITS" --poll-interval "$POLL_INTERVAL" --workers "$w" --reader "$rd")
        node -e '
            const r = JSON.parse(process.argv[1]);
            const f = (x) => x.toFixed(1);
            console.log(`| ${r.signal} | ${r.workers} | ${r.reader} | ${r.streams} | ${r.samples} of ${r.expected} | ${f(r.p50)} | ${f(r.p99)} | ${f(r.max)} | ${f(r.firstP50)} | ${f(r.lastP50)} | ${r.clientCpuMsPerCommit.toFixed(2)} | ${r.serverCpuMsPerCommit.toFixed(1)} | ${r.loadavg.toFixed(1)} | ${r.streams === 1000 ? "p50 <= 10, p99 <= 50" : "-"} |`);
        ' "$r"
      done
    done
  done
done
echo
fi
if [[ " $PARTS " == *" push "* ]]; then
echo "Push: 50-operation batches of creates, $ROUNDS interleaved rounds of $SECONDS_PER_RUN s per path, after a 2 s warm-up of each"
echo
echo "| clients | direct SQL: smartsync.sync_push (ops/s) | api.sync_push in PostgREST's transaction, no HTTP (ops/s) | HTTP: POST /api/sync/push (ops/s) | HTTP / direct SQL: min / median / max | HTTP / api: min / median / max | server CPU per push (ms) | goal |"
echo "|---|---|---|---|---|---|---|---|"
for c in $CLIENTS; do
    r=$(node bench/server-bench.mjs push --clients "$c" --rounds "$ROUNDS" --seconds "$SECONDS_PER_RUN" --batch 50)
    node -e '
        const r = JSON.parse(process.argv[1]);
        const f = (a) => `${a[0].toFixed(2)}x / ${a[Math.floor(a.length / 2)].toFixed(2)}x / ${a.at(-1).toFixed(2)}x`;
        console.log(`| ${r.clients} | ${Math.round(r.sql)} | ${Math.round(r.api)} | ${Math.round(r.http)} | ${f(r.httpVsSql)} | ${f(r.httpVsApi)} | ${r.serverCpuMsPerPush.toFixed(2)} | HTTP >= 0.80x direct SQL |`);
    ' "$r"
done
fi
if [[ " $PARTS " == *" idle "* ]]; then
echo
echo "An idle server: one stream in each of N tenants, nothing committed to them, 10 s (--poll-interval $POLL_INTERVAL ms)"
echo
echo "| signal | tenants watched | commits/s elsewhere | server CPU (ms/s) | database CPU, signal connection (ms/s) | load |"
echo "|---|---|---|---|---|---|"
for t in $TENANTS; do
    for w in $WRITES; do
        r=$(node bench/server-bench.mjs idle --signal poll --tenants "$t" --writes "$w" --seconds 10 --poll-interval "$POLL_INTERVAL")
        node -e '
            const r = JSON.parse(process.argv[1]);
            console.log(`| ${r.signal} | ${r.tenants} | ${Math.round(r.writesPerSecond)} | ${r.serverCpuMsPerSecond.toFixed(1)} | ${r.databaseCpuMsPerSecond.toFixed(1)} | ${r.loadavg.toFixed(1)} |`);
        ' "$r"
    done
done
fi
echo
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
