#!/bin/bash
# Push throughput and memory.  For batches of 1, 10, 50, 500, 5,000 and 100,000
# mixed operations (60% updates with the client's version, 30% creates with
# temporary ids, 10% deletes) on a 6-column and a 20-column tracked table, from
# CLIENTS concurrent clients, one tenant each: smartsync.sync_push against the
# same writes as plain INSERT/UPDATE/DELETE statements of a PL/pgSQL function in
# one transaction on the same tables, measured in the same run, interleaved
# round by round.  Then memory: the peak resident memory (RssAnon) of one large
# push, PostgreSQL's share (receiving the payload) apart from smartsync's, and
# 100 batches of 1,000 operations on one connection.
# Run by bench/run.sh inside a throwaway cluster, or against any server on this
# machine (the memory client reads the backend's /proc):
#   bash test/private.sh -- bash bench/bench_push.sh
# with the server settings of bench/run.sh (synchronous_commit=off, ...).
# Needs a superuser (it raises smartsync.max_batch_size and max_payload_size).
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
DB=bench_push
ROUNDS=${ROUNDS:-5}               # rounds of every size but the largest
BIG_ROUNDS=${BIG_ROUNDS:-3}       # rounds of sizes over 10,000 operations
CLIENTS=${CLIENTS:-2}
SIZES=${SIZES:-"1 10 50 500 5000 100000"}
WIDE_SIZES=${WIDE_SIZES-"1 10 50 500 5000"}      # may be empty
OPS=${OPS:-2000}                  # operations per client, size and round (one batch at least)
MEM_SIZES=${MEM_SIZES:-"5000 100000"}
PG_CONFIG=${PG_CONFIG:-pg_config}
max=1000
for s in $SIZES $WIDE_SIZES $MEM_SIZES; do [ "$s" -gt "$max" ] && max=$s; done
batches() { local b=$((OPS / $1)); [ $b -ge 1 ] && echo $b || echo 1; }
rounds() { [ "$1" -gt 10000 ] && echo "$BIG_ROUNDS" || echo "$ROUNDS"; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
load_start=$(load)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; dropdb --if-exists $DB 2>/dev/null' EXIT
gcc -O2 -Wall -Werror -o "$tmp/push_rss" bench/push_rss.c \
    -I"$("$PG_CONFIG" --includedir)" -L"$("$PG_CONFIG" --libdir)" -lpq
dropdb --if-exists $DB 2>/dev/null
createdb $DB
psql -X -q -v ON_ERROR_STOP=1 -d $DB -f bench/push_setup.sql >/dev/null
{
    for s in $SIZES; do echo "INSERT INTO bench.layout VALUES ('bp_items', $s, $(batches $s), $(rounds $s));"; done
    for s in $WIDE_SIZES; do echo "INSERT INTO bench.layout VALUES ('bp_wide', $s, $(batches $s), $(rounds $s));"; done
    echo "SELECT bench.generate($CLIENTS, '{$(echo $MEM_SIZES | tr ' ' ',')}');"
    echo "VACUUM ANALYZE;"
} | psql -X -q -v ON_ERROR_STOP=1 -d $DB >/dev/null
# the benchmark's pushes are larger than the defaults allow (superuser settings)
export PGOPTIONS="-c smartsync.max_batch_size=$max -c smartsync.batch_size=$max -c smartsync.max_payload_size=256MB"


# mean latency (ms) of one pgbench run: script, table, size, batches, first batch - 1
run() {
    pgbench -n -M prepared -c $CLIENTS -j $CLIENTS -t $4 -D tbl=$2 -D s=$3 -D n=$5 -f "$1" $DB 2>"$tmp/err" \
        | awk '/^latency average/ {print $4}' | grep . || { cat "$tmp/err" >&2; exit 1; }
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
stats() { # "min / median / max" of a list
    echo $1 | tr ' ' '\n' | grep . | sort -g | awk -v f="$2" '{a[NR]=$1} END {
        m = (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2; printf f " / " f " / " f, a[1], m, a[NR]}'
}
m() { echo $1 | tr ' ' '\n' | grep . | median; }

declare -A push_us plain_us ratio
expected=0
for r in $(seq 1 "$ROUNDS"); do
    for tbl in bp_items bp_wide; do
        sizes=$SIZES; [ $tbl = bp_wide ] && sizes=$WIDE_SIZES
        for s in $sizes; do
            [ "$r" -le "$(rounds $s)" ] || continue
            b=$(batches $s); off=$(( (r - 1) * b ))
            if [ "$b" -ge 2 ]; then
                # push, plain, plain, push: each half of the batches, so drift hits both alike
                h=$((b / 2))
                p1=$(run bench/push_pgbench_push.sql $tbl $s $h $off); b1=$(run bench/push_pgbench_plain.sql $tbl $s $h $off)
                b2=$(run bench/push_pgbench_plain.sql $tbl $s $((b - h)) $((off + h))); p2=$(run bench/push_pgbench_push.sql $tbl $s $((b - h)) $((off + h)))
                lp=$(awk -v a=$p1 -v b=$p2 -v h=$h -v n=$b 'BEGIN {print (a * h + b * (n - h)) / n}')
                lb=$(awk -v a=$b1 -v b=$b2 -v h=$h -v n=$b 'BEGIN {print (a * h + b * (n - h)) / n}')
            elif [ $((r % 2)) = 1 ]; then   # one batch: alternating which goes first
                lp=$(run bench/push_pgbench_push.sql $tbl $s $b $off); lb=$(run bench/push_pgbench_plain.sql $tbl $s $b $off)
            else
                lb=$(run bench/push_pgbench_plain.sql $tbl $s $b $off); lp=$(run bench/push_pgbench_push.sql $tbl $s $b $off)
            fi
            push_us[$tbl,$s]+="$(awk -v l=$lp -v s=$s 'BEGIN {print l * 1000 / s}') "
            plain_us[$tbl,$s]+="$(awk -v l=$lb -v s=$s 'BEGIN {print l * 1000 / s}') "
            ratio[$tbl,$s]+="$(awk -v a=$lb -v b=$lp 'BEGIN {print a / b}') "
            expected=$((expected + CLIENTS * b * s))
        done
    done
done
load_end=$(load)

# every pushed operation applied, none failed or conflicted
check=""
for c in $(seq 1 $CLIENTS); do
    check+="${check:+ UNION ALL }SELECT count(*) AS n, count(*) FILTER (WHERE outcome <> 'applied') AS bad FROM bench_t$c.sync_ledger"
done
read -r applied bad < <(psql -X -qAt -F' ' -d $DB -c "SELECT sum(n), sum(bad) FROM ($check) s")
if [ "$bad" != "0" ] || [ "$applied" != "$expected" ]; then
    echo "push benchmark: $applied of $expected operations recorded, $bad not applied" >&2
    exit 1
fi

# peak memory of one push: RssAnon of the backend, sampled every millisecond
setup="SET smartsync.tenant_id = 'bench_rss'; SET smartsync.client_id = 'rss'; SET smartsync.permissions = 'bp_items:*';"
warm="SELECT smartsync.sync_push(bench.batch('bp_items', 'warm', 0, 10, 1)) ->> 'processed'"
one() { # statement [parameter query] -> peak kB above the level before it
    local out
    out=$(PGDATABASE=$DB "$tmp/push_rss" "$setup" "$warm" "$@")
    case "$out" in *error*|*null*) echo "push_rss: $out" >&2; exit 1;; esac
    echo "$out" | awk '{print $2 - $1}'
}
mem_rows=""
for s in $MEM_SIZES; do
    bytes=$(psql -X -qAt -d $DB -c "SELECT octet_length(payload::text) FROM bench.mem_batches WHERE size = $s")
    pg_col=$(one "SELECT jsonb_typeof(payload) FROM bench.mem_batches WHERE size = $s")
    push_col=$(one "SELECT smartsync.sync_push(payload) ->> 'processed' FROM bench.mem_batches WHERE size = $s")
    pg_txt=$(one 'SELECT jsonb_typeof($1::jsonb)' "SELECT payload::text FROM bench.mem_batches WHERE size = $s")
    push_txt=$(one 'SELECT smartsync.sync_push($1::jsonb) ->> '"'processed'" "SELECT payload::text FROM bench.mem_batches WHERE size = $s")
    mem_rows+="$(awk -v s=$s -v b=$bytes -v a=$pg_col -v p=$push_col -v c=$pg_txt -v q=$push_txt 'BEGIN {
        mb = b / 1048576;
        printf "| %d | %.1f MB | jsonb column | %.1f MB (%.2fx) | %.1f MB (%.2fx) | %.1f MB (%.2fx) |\n", s, mb,
            a / 1024, a / 1024 / mb, p / 1024, p / 1024 / mb, (p - a) / 1024, (p - a) / 1024 / mb;
        printf "| %d | %.1f MB | text cast to jsonb (PostgREST) | %.1f MB (%.2fx) | %.1f MB (%.2fx) | %.1f MB (%.2fx) |\n", s, mb,
            c / 1024, c / 1024 / mb, q / 1024, q / 1024 / mb, (q - c) / 1024, (q - c) / 1024 / mb }')"$'\n'
done

# memory over many batches: 100 batches of 1,000 operations on one connection
{
    echo "SET smartsync.tenant_id = 'bench_mem'; SET smartsync.client_id = 'mem'; SET smartsync.permissions = 'bp_items:*';"
    for i in $(seq 1 100); do
        echo "SELECT r ->> 'failed' AS failed, (r ->> 'failed')::int > 0 AS bad FROM smartsync.sync_push(bench.big_batch($i)) r \\gset"
        printf '%s\n' "\\if :bad" "\\echo batch $i: :failed failed" "\\endif"
        if [ "$i" = 20 ] || [ "$i" = 60 ] || [ "$i" = 100 ]; then
            echo "SELECT 'mem $i ' || sum(total_bytes) FROM pg_backend_memory_contexts;"
            echo "SELECT 'rss $i ' || substring(pg_read_file('/proc/self/status') FROM 'RssAnon:\\s*(\\d+) kB');"
        fi
    done
} > "$tmp/mem.sql"
mem=$(psql -X -qAt -v ON_ERROR_STOP=1 -d $DB -f "$tmp/mem.sql")
if echo "$mem" | grep -q failed; then echo "$mem" >&2; exit 1; fi
val() { echo "$mem" | awk -v k="$1" -v i="$2" '$1 == k && $2 == i {print $3}'; }

echo "sync_push against the same writes by a PL/pgSQL function (plain INSERT/UPDATE/DELETE, one transaction"
echo "per batch); mixed batches (60% updates, 30% creates, 10% deletes), $CLIENTS clients on $CLIENTS tenants,"
echo "$ROUNDS interleaved rounds ($BIG_ROUNDS for 100,000 operations) of about $OPS operations per client and size;"
echo "$(psql -X -qAt -d $DB -c 'SHOW server_version' | cut -d' ' -f1), $(nproc) cores, load average $load_start at the start, $load_end at the end"
echo
echo "| table | operations per push | PL/pgSQL µs/op | sync_push µs/op | ratio (PL/pgSQL time / push time) min / median / max | target |"
echo "|---|---|---|---|---|---|"
for tbl in bp_items bp_wide; do
    sizes=$SIZES; name="6 columns"
    [ $tbl = bp_wide ] && { sizes=$WIDE_SIZES; name="20 columns"; }
    for s in $sizes; do
        target=""; [ "$s" = 1 ] && target=">= 0.60x"; [ "$s" = 10 ] && target=">= 0.70x"
        printf "| %s | %s | %.1f | %.1f | %s | %s |\n" "$name" "$s" "$(m "${plain_us[$tbl,$s]}")" \
            "$(m "${push_us[$tbl,$s]}")" "$(stats "${ratio[$tbl,$s]}" '%.2fx')" "$target"
    done
done
if [ -n "${push_us[bp_items,50]:-}" ]; then
    echo
    echo "Cost per operation by push size (6 columns): sync_push µs/op against 50-operation pushes of the same round"
    echo
    echo "| operations per push | sync_push µs/op (median) | cost per operation / at 50, min / median / max | target |"
    echo "|---|---|---|---|"
    for s in $SIZES; do
        [ "$s" -ge 50 ] || continue
        rel=""; i=0
        base=(${push_us[bp_items,50]}); cur=(${push_us[bp_items,$s]})
        for i in "${!cur[@]}"; do rel+="$(awk -v a=${cur[$i]} -v b=${base[$i]} 'BEGIN {print a / b}') "; done
        printf "| %s | %.1f | %s | <= 1.20x |\n" "$s" "$(m "${push_us[bp_items,$s]}")" "$(stats "$rel" '%.2fx')"
    done
fi
echo
echo "Peak memory of one push (6 columns, one connection): the backend's RssAnon sampled every millisecond, above"
echo "its level after a 10-operation warm-up push; PostgreSQL alone: the same statement with jsonb_typeof() in"
echo "place of sync_push (reading the payload); smartsync's share: the push's peak less that.  The response is"
echo "built whole but only its 'processed' field is sent."
echo
echo "| operations | payload (JSON text) | received as | PostgreSQL alone (x payload) | sync_push (x payload) | smartsync's share (x payload) |"
echo "|---|---|---|---|---|---|"
printf "%s" "$mem_rows"
echo
echo "Memory over many pushes: 100 batches of 1,000 operations (600 updates, 300 creates, 100 deletes) on one"
printf "connection: memory contexts %d / %d / %d kB and RssAnon %d / %d / %d kB after batches 20 / 60 / 100.\n" \
    "$(( $(val mem 20) / 1024 ))" "$(( $(val mem 60) / 1024 ))" "$(( $(val mem 100) / 1024 ))" \
    "$(val rss 20)" "$(val rss 60)" "$(val rss 100)"
