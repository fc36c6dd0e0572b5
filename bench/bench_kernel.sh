#!/bin/bash
# Conflict kernel: detect_conflict and merge3 in C against the same semantics in
# PL/pgSQL and, for merge3, in set-based SQL, the fairer baseline (one
# jsonb_object_agg instead of a || per key; bench/kernel_plpgsql.sql), on a ~1 KB
# 20-field row, and row_hash throughput on one core.  Rows per second, medians
# of ROUNDS interleaved rounds; ratios per round, min / median / max.
# Run by bench/run.sh inside a throwaway cluster, or bash bench/private.sh kernel.
set -euo pipefail
cd "$(dirname "$0")/.."
DB=bench_kernel
ROUNDS=${ROUNDS:-7}
dropdb --if-exists $DB 2>/dev/null
createdb $DB
script=$(mktemp)
trap 'rm -f "$script"; dropdb --if-exists $DB 2>/dev/null' EXIT
psql -X -q -v ON_ERROR_STOP=1 -d $DB -c 'CREATE EXTENSION smartsync' \
     -f bench/kernel_setup.sql -f bench/kernel_plpgsql.sql >/dev/null
psql -X -q -d $DB -c 'VACUUM ANALYZE kernel_rows'

N=$(psql -X -At -d $DB -c 'SELECT count(*) FROM kernel_rows')
BYTES=$(psql -X -At -d $DB -c 'SELECT round(avg(length(base::text))) FROM kernel_rows')
CLASSES="'{\"diagnosis\": \"critical\", \"notes\": \"important\", \"allergies\": \"critical\"}'::jsonb"

declare -A Q
Q[detect_c]="SELECT count(smartsync.detect_conflict(local, server, local_ts, 'update', $CLASSES)) FROM kernel_rows"
Q[detect_pl]="SELECT count(kernel_plpgsql.detect_conflict(local, server, local_ts, 'update', $CLASSES)) FROM kernel_rows"
Q[merge3_c]="SELECT count(smartsync.merge3(base, local, server)) FROM kernel_rows"
Q[merge3_pl]="SELECT count(kernel_plpgsql.merge3(base, local, server)) FROM kernel_rows"
Q[merge3_sql]="SELECT count(kernel_plpgsql.merge3_sql(base, local, server)) FROM kernel_rows"
Q[hash_c]="SELECT count(smartsync.row_hash(base)) FROM kernel_rows"
Q[canon_c]="SELECT count(smartsync.canonical_json(base)) FROM kernel_rows"
Q[scan]="SELECT count(base) FROM kernel_rows"

# the two implementations must agree before they are timed
diff=$(psql -X -At -d $DB -c "SELECT count(*) FROM kernel_rows
    WHERE smartsync.detect_conflict(local, server, local_ts, 'update', $CLASSES)
          IS DISTINCT FROM kernel_plpgsql.detect_conflict(local, server, local_ts, 'update', $CLASSES)
       OR smartsync.merge3(base, local, server) IS DISTINCT FROM kernel_plpgsql.merge3(base, local, server)
       OR smartsync.merge3(base, local, server) IS DISTINCT FROM kernel_plpgsql.merge3_sql(base, local, server)")
[ "$diff" = 0 ] || { echo "C and PL/pgSQL disagree on $diff rows" >&2; exit 1; }

# one backend for all runs (a new backend pays page faults on the shared
# buffers it touches); one warm-up round, then ROUNDS interleaved rounds
KEYS="scan detect_c detect_pl merge3_c merge3_pl merge3_sql hash_c canon_c"
load() { awk '{printf "%s %s %s", $1, $2, $3}' /proc/loadavg; }
load_before=$(load)
for r in $(seq 0 "$ROUNDS"); do
    for k in $KEYS; do   # interleaved: drift hits all alike
        q=${Q[$k]//\'/\'\'}
        echo "SELECT '$r $k', bench_seconds('$q');" >> "$script"
    done
done
declare -A T
while IFS='|' read -r rk secs; do
    r=${rk%% *}; k=${rk#* }
    [ "$r" = 0 ] || T[$k]+="$secs "
done < <(psql -X -At -v ON_ERROR_STOP=1 -d $DB -f "$script")

load_after=$(load)
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
rate() { awk -v n="$N" -v s="$(echo ${T[$1]} | median)" 'BEGIN { printf "%.0f", n / s }'; }
ratios() { # per-round speed ratio of $1 over $2 (time of $2 / time of $1): min / median / max
    paste <(echo ${T[$1]} | tr ' ' '\n' | grep .) <(echo ${T[$2]} | tr ' ' '\n' | grep .) \
        | awk '{print $2 / $1}' | sort -g \
        | awk '{a[NR]=$1} END {m = (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2; printf "%.1fx / %.1fx / %.1fx", a[1], m, a[NR]}'
}
dc=$(rate detect_c); dp=$(rate detect_pl); mc=$(rate merge3_c); mp=$(rate merge3_pl); ms=$(rate merge3_sql)
hc=$(rate hash_c); cc=$(rate canon_c); sc=$(rate scan)

echo "Conflict kernel, $N rows of 20 fields (~$BYTES bytes as JSON), 1 backend, $ROUNDS interleaved rounds"
echo "(rows/s: medians; ratios per round, min / median / max); load average $load_before before, $load_after after"
echo
echo "| function | C (smartsync) | baseline | baseline rows/s | C / baseline | target |"
echo "|---|---|---|---|---|---|"
echo "| detect_conflict (version conflict, field classes) | $dc | PL/pgSQL | $dp | **$(ratios detect_c detect_pl)** | >= 10x |"
echo "| merge3 (disjoint changes) | $mc | set-based SQL (jsonb_object_agg) | $ms | **$(ratios merge3_c merge3_sql)** | >= 10x |"
echo "| merge3 (disjoint changes) | $mc | PL/pgSQL, a \`||\` per key | $mp | $(ratios merge3_c merge3_pl) | - |"
echo "| row_hash (JCS + SHA-256) | $hc | | | | >= 300000 rows/s |"
echo "| (canonical_json alone, no SHA-256) | $cc | | | | |"
echo "| (plain scan, count(base)) | $sc | | | | |"
