#!/bin/bash
# Before and after on one server: sync_push of another commit (REV, default
# main) against this tree's, both measured against the PL/pgSQL baseline of
# bench/bench_push.sh in the same run, round by round in alternating order,
# and the peak memory of one large push of each.  The server loads the
# library of whichever build is in place when a connection opens: the script
# swaps the file between pgbench runs (both builds must have the same SQL).
# Runs inside a private server of this tree, e.g.
#   PRIVATE_CONF=$'synchronous_commit = off\nshared_buffers = 512MB\nmax_wal_size = 4GB' \
#       bash test/private.sh -- bash bench/push_ab.sh main
# Knobs: ROUNDS (rounds of each build), OPS (operations per client, case and
# round), CASES (table:operations ...), MEM_SIZE (operations of the memory push;
# 0: none).
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
REV=${1:-main}
ROUNDS=${ROUNDS:-5}
OPS=${OPS:-2000}
CLIENTS=2
CASES=${CASES:-"bp_items:1 bp_items:10 bp_wide:1 bp_wide:10 bp_items:50"}
MEM_SIZE=${MEM_SIZE:-100000}
PG_CONFIG=${PG_CONFIG:-pg_config}
DB=bench_push_ab
# the two libraries (REV's and this tree's) and use before|after
. bench/ab_builds.sh
gcc -O2 -Wall -Werror -o "$tmp/push_rss" bench/push_rss.c \
    -I"$("$PG_CONFIG" --includedir)" -L"$("$PG_CONFIG" --libdir)" -lpq

batches() { local b=$((OPS / $1)); [ $b -ge 1 ] && echo $b || echo 1; }
dropdb --if-exists $DB 2>/dev/null
createdb $DB
psql -X -q -v ON_ERROR_STOP=1 -d $DB -f bench/push_setup.sql >/dev/null
mem="{}"; [ "$MEM_SIZE" -gt 0 ] && mem="{$MEM_SIZE}"
{
    for c in $CASES; do
        echo "INSERT INTO bench.layout VALUES ('${c%:*}', ${c#*:}, $(batches ${c#*:}), $((2 * ROUNDS)));"
    done
    echo "SELECT bench.generate($CLIENTS, '$mem');"
    echo "VACUUM ANALYZE;"
} | psql -X -q -v ON_ERROR_STOP=1 -d $DB >/dev/null
max=1000; [ "$MEM_SIZE" -gt $max ] && max=$MEM_SIZE
export PGOPTIONS="-c smartsync.max_batch_size=$max -c smartsync.batch_size=$max -c smartsync.max_payload_size=256MB"

run() { # script table size batches first-1 -> mean latency (ms)
    pgbench -n -M prepared -c $CLIENTS -j $CLIENTS -t $4 -D tbl=$2 -D s=$3 -D n=$5 -f "$1" $DB 2>"$tmp/err" \
        | awk '/^latency average/ {print $4}' | grep . || { cat "$tmp/err" >&2; exit 1; }
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
slot=0
for r in $(seq 1 "$ROUNDS"); do
    order="before after"; [ $((r % 2)) = 0 ] && order="after before"
    for v in $order; do
        use $v
        for c in $CASES; do
            t=${c%:*}; s=${c#*:}; b=$(batches $s); h=$((b / 2)); off=$((slot * b))
            [ $h -ge 1 ] || { echo "OPS too small for $c" >&2; exit 1; }
            p1=$(run bench/push_pgbench_push.sql $t $s $h $off); b1=$(run bench/push_pgbench_plain.sql $t $s $h $off)
            b2=$(run bench/push_pgbench_plain.sql $t $s $((b - h)) $((off + h))); p2=$(run bench/push_pgbench_push.sql $t $s $((b - h)) $((off + h)))
            awk -v v=$v -v t=$t -v s=$s -v a=$p1 -v b=$p2 -v c=$b1 -v d=$b2 -v h=$h -v n=$b \
                'BEGIN {p = (a * h + b * (n - h)) / n; q = (c * h + d * (n - h)) / n; print v, t, s, q / p, p * 1000 / s, q * 1000 / s}'
        done >> "$tmp/rows"
        slot=$((slot + 1))
    done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

echo "sync_push of $REV (before) and of this tree (after) against the PL/pgSQL baseline, $ROUNDS rounds of each"
echo "build in alternating order, $CLIENTS clients, about $OPS operations per client, case and round;"
echo "$(psql -X -qAt -d $DB -c 'SHOW server_version' | cut -d' ' -f1), $(nproc) cores, load average $load_start at the start, $load_end at the end"
echo
echo "| table | operations per push | build | PL/pgSQL µs/op | sync_push µs/op | ratio min / median / max |"
echo "|---|---|---|---|---|---|"
for c in $CASES; do
    t=${c%:*}; s=${c#*:}; name="6 columns"; [ $t = bp_wide ] && name="20 columns"
    for v in before after; do
        awk -v v=$v -v t=$t -v s=$s -v name="$name" '$1 == v && $2 == t && $3 == s {r[++n] = $4; p[n] = $5; q[n] = $6}
            function med(a, n,   i, j, x) { for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
                                           return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
            END { m = med(r, n); printf "| %s | %s | %s | %.1f | %.1f | %.2fx / %.2fx / %.2fx |\n", name, s, v, med(q, n), med(p, n), r[1], m, r[n] }' "$tmp/rows"
    done
done

if [ "$MEM_SIZE" -gt 0 ]; then
    setup="SET smartsync.tenant_id = 'bench_rss'; SET smartsync.client_id = 'rss'; SET smartsync.permissions = 'bp_items:*';"
    warm="SELECT smartsync.sync_push(bench.batch('bp_items', 'warm', 0, 10, 1)) ->> 'processed'"
    one() { PGDATABASE=$DB "$tmp/push_rss" "$setup" "$warm" "$@" | awk '{print $2 - $1}'; }
    bytes=$(psql -X -qAt -d $DB -c "SELECT octet_length(payload::text) FROM bench.mem_batches WHERE size = $MEM_SIZE")
    echo
    echo "Peak RssAnon of one push of $MEM_SIZE operations above a warm connection's (payload $(awk -v b=$bytes 'BEGIN {printf "%.1f", b / 1048576}') MB of JSON text):"
    echo
    echo "| build | received as | PostgreSQL alone | sync_push | smartsync's share |"
    echo "|---|---|---|---|---|"
    for v in before after; do
        use $v
        a=$(one "SELECT jsonb_typeof(payload) FROM bench.mem_batches WHERE size = $MEM_SIZE")
        p=$(one "SELECT smartsync.sync_push(payload) ->> 'processed' FROM bench.mem_batches WHERE size = $MEM_SIZE")
        c=$(one 'SELECT jsonb_typeof($1::jsonb)' "SELECT payload::text FROM bench.mem_batches WHERE size = $MEM_SIZE")
        q=$(one 'SELECT smartsync.sync_push($1::jsonb) ->> '"'processed'" "SELECT payload::text FROM bench.mem_batches WHERE size = $MEM_SIZE")
        awk -v v=$v -v b=$bytes -v a=$a -v p=$p -v c=$c -v q=$q 'BEGIN { mb = b / 1048576;
            printf "| %s | a jsonb column | %.1f MB (%.2fx) | %.1f MB (%.2fx) | %.1f MB (%.2fx) |\n", v, a / 1024, a / 1024 / mb, p / 1024, p / 1024 / mb, (p - a) / 1024, (p - a) / 1024 / mb;
            printf "| %s | text cast to jsonb | %.1f MB (%.2fx) | %.1f MB (%.2fx) | %.1f MB (%.2fx) |\n", v, c / 1024, c / 1024 / mb, q / 1024, q / 1024 / mb, (q - c) / 1024, (q - c) / 1024 / mb }'
    done
fi
use after
