#!/bin/bash
# Before and after for live latency at N streams (issue 15): another commit's server build
# (REV, default main; with its default of one process) against this tree's build with
# --workers for each of WORKERS, in interleaved rounds against one database, each with each
# reader of READERS (bench/server-bench.mjs latency: "node", the streams as sockets of the
# benchmark's Node process, which also runs the writer; "c", bench/live_reader.c, one epoll
# process).  Both builds use this tree's extension.  Runs inside a private server of this
# tree, e.g.
#   PRIVATE_CONF=$'synchronous_commit = off\nshared_buffers = 512MB\nmax_wal_size = 4GB\ncheckpoint_timeout = 30min\nautovacuum = off\nmax_connections = 200' \
#       bash test/private.sh -- bash bench/server_live_ab.sh main
# Settings: ROUNDS (3), STREAMS (1000), COMMITS (100), SIGNALS ("poll notify"), WORKERS ("2":
# this tree's --workers; "1 2" runs both), READERS ("node c").  Prints a row per run, then
# per configuration min / median / max over the rounds.
set -euo pipefail
cd "$(dirname "$0")/.."
REV=${1:-main}
ROUNDS=${ROUNDS:-3}
STREAMS=${STREAMS:-1000}
COMMITS=${COMMITS:-100}
SIGNALS=${SIGNALS:-poll notify}
WORKERS=${WORKERS:-2}
READERS=${READERS:-node c}
tmp=$(mktemp -d)
DB=bench_live_ab
trap 'dropdb --if-exists $DB 2>/dev/null || true; rm -rf "$tmp"' EXIT

# REV's server build, and this tree's
git archive "$REV" js | tar -x -C "$tmp"
[ -d js/node_modules/pg ] || (cd js && npm ci --no-audit --no-fund --silent >/dev/null)
ln -s "$(pwd)/js/node_modules" "$tmp/js/node_modules"
(cd "$tmp/js/packages/server" && ../../node_modules/.bin/tsc -p tsconfig.build.json)
(cd js && npm run build -w @smartsync/server --silent >/dev/null)
gcc -O2 -Wall -Wextra -Werror -o "$tmp/live_reader" bench/live_reader.c
export BENCH_LIVE_READER=$tmp/live_reader

export PGPORT=${PGPORT:-$(psql -XAtc 'SHOW port')}
dropdb --if-exists $DB 2>/dev/null
createdb $DB
psql -X -q -v ON_ERROR_STOP=1 -d $DB >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION smartsync;
\i examples/vet_schema.sql
SELECT smartsync.provision_tenant('bench-live');
INSERT INTO tenant_bench_live.clients (id, practice_id, name) VALUES (1, 1, 'Live');
SELECT smartsync.setup_postgrest('bench-authenticator');
SQL
export PGDATABASE=$DB BENCH_AUTHENTICATOR_PASSWORD=bench-authenticator

echo "Commit-to-event latency, $STREAMS streams of one tenant, $COMMITS commits a run: $REV (one process) against this tree (--workers $WORKERS)"
echo
echo "| round | signal | build | workers | reader | events | p50 (ms) | p99 (ms) | first stream, median (ms) | last stream, median (ms) | server CPU per commit (ms) | client CPU per commit (ms) | load |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
results=$tmp/results.jsonl
for round in $(seq 1 "$ROUNDS"); do
    for s in $SIGNALS; do
        for rd in $READERS; do
            runs=("$REV 1")
            for w in $WORKERS; do runs+=("tree $w"); done
            for run in "${runs[@]}"; do
                read -r build w <<<"$run"
                if [ "$build" = tree ]; then cli=js/packages/server/dist/cli.js; else cli=$tmp/js/packages/server/dist/cli.js; fi
                r=$(BENCH_SERVER_CLI=$cli node bench/server-bench.mjs latency --signal "$s" --streams "$STREAMS" \
                    --commits "$COMMITS" --workers "$w" --reader "$rd")
                node -e '
                    const [round, build, json] = process.argv.slice(1);
                    const r = { ...JSON.parse(json), round: Number(round), build };
                    const f = (x) => x.toFixed(1);
                    console.log(`| ${round} | ${r.signal} | ${build} | ${r.workers} | ${r.reader} | ${r.samples} of ${r.expected} | ${f(r.p50)} | ${f(r.p99)} | ${f(r.firstP50)} | ${f(r.lastP50)} | ${f(r.serverCpuMsPerCommit)} | ${f(r.clientCpuMsPerCommit)} | ${f(r.loadavg)} |`);
                    require("fs").appendFileSync(process.argv[4], JSON.stringify(r) + "\n");
                ' "$round" "$build" "$r" "$results"
            done
        done
    done
done
echo
echo "min / median / max over the rounds:"
echo
echo "| signal | build | workers | reader | p50 (ms) | p99 (ms) | first stream (ms) | server CPU per commit (ms) | client CPU per commit (ms) |"
echo "|---|---|---|---|---|---|---|---|---|"
node -e '
    const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map((l) => JSON.parse(l));
    const groups = new Map();
    for (const r of rows) {
        const k = [r.signal, r.build, r.workers, r.reader].join(" | ");
        if (!groups.has(k)) groups.set(k, []);
        groups.get(k).push(r);
    }
    const mmm = (rs, f) => {
        const v = rs.map(f).sort((a, b) => a - b);
        return `${v[0].toFixed(1)} / **${v[Math.floor(v.length / 2)].toFixed(1)}** / ${v.at(-1).toFixed(1)}`;
    };
    for (const [k, rs] of groups)
        console.log(`| ${k} | ${mmm(rs, (r) => r.p50)} | ${mmm(rs, (r) => r.p99)} | ${mmm(rs, (r) => r.firstP50)} | ${mmm(rs, (r) => r.serverCpuMsPerCommit)} | ${mmm(rs, (r) => r.clientCpuMsPerCommit)} |`);
' "$results"
echo
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
