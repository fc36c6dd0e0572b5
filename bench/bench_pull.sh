#!/bin/bash
# Pull cost against the length of the change log: the same 1,000 changes
# (1,000 updated rows, ~300 bytes of JSON each) pulled with an exact cursor
# (sync_pull(p_cursor, p_limit => 1000)) from a tenant whose log holds 10,000
# rows and from another whose log holds 1,000,000; and one page of 10,000
# changes (10,000 new rows, each delivered) from a 10,000-row and a
# 1,000,000-row log, with the backend's peak memory.  Each tenant has a log of
# its own.  ROUNDS interleaved rounds, each pgbench run SECONDS_PER_RUN long;
# the ratio is taken within each round (min / median / max).
# Run by bench/run.sh inside a throwaway cluster, or bash bench/private.sh pull.
set -euo pipefail
cd "$(dirname "$0")/.."
DB=bench_pull
ROUNDS=${ROUNDS:-5}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-3}
BIG=${BIG:-1000000}
dropdb --if-exists $DB 2>/dev/null
createdb $DB
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; dropdb --if-exists $DB 2>/dev/null' EXIT
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d $DB "$@"; }
load() { awk '{printf "%s %s %s", $1, $2, $3}' /proc/loadavg; }
echo "setting up (load average $(load))" >&2
q -f bench/pull_setup.sql >/dev/null
rows() { q -c "SELECT count(*) FROM tenant_$1.sync_changes"; }

# 1,000 updates after 9,000 rows, in a 10,000-row log and in a 1,000,000-row log
q -c "CALL bench_rows('small', 1, 9000)"
q -c "CALL bench_mark('small', 'small')"
q -c "UPDATE tenant_small.bench_items SET qty = qty + 1, status = 'checked-in' WHERE id <= 1000"
q -c "CALL bench_rows('big', 1, 9000)"
q -c "CALL bench_fill('big', $((BIG - 10000)), 10000)"
q -c "CALL bench_mark('big', 'big')"
q -c "UPDATE tenant_big.bench_items SET qty = qty + 1, status = 'checked-in' WHERE id <= 1000"
# 10,000 new rows, in a 10,000-row log and in a 1,000,000-row log
q -c "CALL bench_mark('page_small', 'page_small')"
q -c "CALL bench_rows('page_small', 1, 10000)"
q -c "CALL bench_fill('page_big', $((BIG - 10000)), 10000)"
q -c "CALL bench_mark('page_big', 'page_big')"
q -c "CALL bench_rows('page_big', 1, 10000)"
q -c "VACUUM ANALYZE"
for t in small big page_small page_big; do declare "rows_$t=$(rows $t)"; done

pull_script() { # tenant, cursor name, limit -> pgbench script
    local c; c=$(q -c "SELECT cursor FROM bench_cursor WHERE name = '$2'")
    echo "SET smartsync.tenant_id = '$1';"
    echo "SELECT jsonb_array_length(smartsync.sync_pull(p_cursor => '$c', p_limit => $3)->'changes');"
}
raw_script() { # reference: the big log's last 1,000 rows read as one jsonb array by plain SQL
    echo "SELECT jsonb_array_length(jsonb_agg(jsonb_build_object('entityType', entity_type, 'operation', operation, 'id', entity_id, 'data', data, 'updatedAt', changed_at, 'version', version))) FROM (SELECT * FROM tenant_big.sync_changes ORDER BY xid DESC, seq DESC LIMIT 1000) s;"
}
delivered() { psql -X -At -v ON_ERROR_STOP=1 -d $DB -f "$1" | tail -1; }
pull_script small small 1000 > "$tmp/small.sql"
pull_script big big 1000 > "$tmp/big.sql"
pull_script page_small page_small 10000 > "$tmp/page_small.sql"
pull_script page_big page_big 10000 > "$tmp/page_big.sql"
raw_script > "$tmp/raw.sql"
for s in small big page_small page_big; do declare "n_$s=$(delivered "$tmp/$s.sql")"; done

# peak memory of one backend for one 10,000-change page (VmHWM from /proc)
mem() { # script -> peak private memory (MB) of a fresh backend that ran it:
       # VmHWM less the shared memory it mapped (RssShmem), from /proc
    psql -X -At -d $DB -f "$1" -c "SELECT (regexp_match(s, 'VmHWM:\s+(\d+)'))[1]::int - (regexp_match(s, 'RssShmem:\s+(\d+)'))[1]::int FROM pg_read_file('/proc/' || pg_backend_pid() || '/status') s" 2>/dev/null \
        | tail -1 | awk '{ if ($1 ~ /^-?[0-9]+$/) printf "%.1f", $1 / 1024; else print "n/a" }'
}
echo "SELECT 1;" > "$tmp/nothing.sql"
m_base=$(mem "$tmp/nothing.sql"); m_small=$(mem "$tmp/page_small.sql"); m_big=$(mem "$tmp/page_big.sql")
load_before=$(load)

run() { pgbench -n -c 1 -j 1 -T "$SECONDS_PER_RUN" -f "$1" $DB 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p'; }
declare -A tps
for r in $(seq 1 "$ROUNDS"); do   # interleaved, so drift hits all alike
    for s in small big raw page_small page_big; do
        tps[$s]+="$(run "$tmp/$s.sql") "
    done
    echo "round $r done (load average $(load))" >&2
done
load_after=$(load)

median() { echo $1 | tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {printf "%.6f", (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
ratios() { # time ratio per round: tps b / tps a (a: the case, b: its baseline), min / median / max
    paste <(echo $1 | tr ' ' '\n' | grep .) <(echo $2 | tr ' ' '\n' | grep .) \
        | awk '{print $2 / $1}' | sort -g \
        | awk '{a[NR]=$1} END {m = (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2; printf "%.2f / %.2f / %.2f", a[1], m, a[NR]}'
}
line() { # label, key, rows, delivered, baseline key, target
    local t; t=$(median "${tps[$2]}")
    awk -v l="$1" -v t="$t" -v n="$4" -v rows="$3" -v r="$5" -v g="$6" \
        'BEGIN { printf "| %s | %d | %d | %.2f | %.0f | %s | %s |\n", l, rows, n, 1000 / t, t * n, r, g }'
}
echo "Pull: sync_pull(p_cursor, p_limit) with 1 client, $ROUNDS interleaved rounds of ${SECONDS_PER_RUN}s per case;"
echo "time ratios per round, min / median / max; load average $load_before before, $load_after after"
echo
echo "| case | log rows | changes delivered | ms per pull (median) | changes/s | time vs the 10,000-row log | target |"
echo "|---|---|---|---|---|---|---|"
line "1,000 updates, 10,000-row log (baseline)" small "$rows_small" "$n_small" "1.00" ">= 50,000 changes/s"
line "1,000 updates, 1,000,000-row log" big "$rows_big" "$n_big" "**$(ratios "${tps[big]}" "${tps[small]}")**" "<= 1.20x"
line "reference: plain SQL read of the big log's last 1,000 rows as JSON" raw "$rows_big" 1000 "$(ratios "${tps[raw]}" "${tps[small]}")" "-"
line "one page of 10,000 new rows, 10,000-row log" page_small "$rows_page_small" "$n_page_small" "1.00" "delivers 10,000"
line "one page of 10,000 new rows, 1,000,000-row log" page_big "$rows_page_big" "$n_page_big" "$(ratios "${tps[page_big]}" "${tps[page_small]}")" "delivers 10,000"
echo
echo "| 10,000-change page | changes delivered | backend peak private memory (VmHWM - RssShmem) |"
echo "|---|---|---|"
echo "| idle backend (SELECT 1) | - | ${m_base} MB |"
echo "| from the 10,000-row log | $n_page_small | ${m_small} MB |"
echo "| from the 1,000,000-row log | $n_page_big | ${m_big} MB |"
