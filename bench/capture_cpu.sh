#!/bin/bash
# Backend CPU time of change capture, per statement, with the change log's
# entity index in several forms side by side (issue 13's "a hash index instead
# of the btree" question): bench/capture_setup.sql's 20-column records table,
# untracked and tracked in one tenant per index form, each updated by the same
# statements in interleaved rounds:
#   bulk     one UPDATE of 10,000 rows (qty = qty + 1), BULK statements a round
#   single   SINGLE single-row UPDATEs (qty, status) of random rows, prepared
# The backend's utime + stime (/proc/PID/stat, read by the backend, so it needs a
# superuser) before and after; CPU time is less disturbed by other load on the
# machine than wall time, and leaves out what the backend waits for (WAL, locks).
# Index forms (FORMS, default all but none):
#   btree  (entity_key, seq), as provision_tenant makes it
#   hash   USING hash (entity_key)
#   key    btree (entity_key) alone (deduplicated)
#   time   btree (xid, entity_key): new entries cluster at the index's end (what
#          a time-prefixed index costs to fill; it cannot serve entity lookups)
#   none   no entity index (what the index costs at all)
# Run inside a cluster (PG* set): bash test/private.sh -- bash bench/capture_cpu.sh
# Settings: ROUNDS (5), BULK (3), SINGLE (20000), FORMS, KEEP=1 (keep the generated
# SQL in its temporary directory), REV (a commit: each form also runs in a tenant
# of its own, "<form>@REV", with that commit's library, built by bench/ab_builds.sh:
# a before/after of C changes on the same server, interleaved; both builds must
# have the same SQL).  Prints per round and form
# the milliseconds of CPU per bulk statement and microseconds per single-row
# statement, then min / median / max of each tracked form's ratio untracked/form.
set -euo pipefail
cd "$(dirname "$0")/.."
DB=bench_capture_cpu
ROUNDS=${ROUNDS:-5}
BULK=${BULK:-3}
SINGLE=${SINGLE:-20000}
FORMS=${FORMS:-"btree hash key time"}
if [ -n "${REV:-}" ]; then
    PG_CONFIG=${PG_CONFIG:-pg_config}
    # shellcheck source=bench/ab_builds.sh
    . bench/ab_builds.sh   # makes $tmp, sets the trap, defines use before|after
    forms=""
    for f in $FORMS; do forms="$forms $f ${f}_rev"; done
    FORMS=$forms
else
    tmp=$(mktemp -d)
    trap '[ -n "${KEEP:-}" ] || rm -rf "$tmp"; dropdb --if-exists $DB 2>/dev/null' EXIT
fi
dropdb --if-exists $DB 2>/dev/null
createdb $DB
# capture_setup.sql's template table, then one tenant per form
sed -n '1,/^SELECT smartsync.register_entity_type(.records/p' bench/capture_setup.sql \
    | sed '/^CREATE TABLE bench_tpl.visits/,/^);/d' > "$tmp/setup.sql"
{
    echo "CREATE SCHEMA untracked;"
    echo "CREATE TABLE untracked.records (LIKE bench_tpl.records INCLUDING ALL);"
    for f in $FORMS; do
        echo "SELECT smartsync.provision_tenant('cpu_$f', 'cpu_$f');"
        [ ${f%_rev} = btree ] || echo "DROP INDEX cpu_$f.sync_changes_entity_key_idx;"
        case ${f%_rev} in
            hash) echo "CREATE INDEX sync_changes_entity_key_idx ON cpu_$f.sync_changes USING hash (entity_key);" ;;
            key) echo "CREATE INDEX sync_changes_entity_key_idx ON cpu_$f.sync_changes (entity_key);" ;;
            time) echo "CREATE INDEX sync_changes_entity_key_idx ON cpu_$f.sync_changes (xid, entity_key);" ;;
            btree|none) ;;
            *) echo "capture_cpu: unknown form $f" >&2; exit 2 ;;
        esac
    done
    echo "DO \$\$ DECLARE s text; BEGIN FOREACH s IN ARRAY ARRAY['untracked'$(for f in $FORMS; do printf ", 'cpu_%s'" $f; done)] LOOP"
    sed -n '/EXECUTE format(\$i\$/,/FROM generate_series(1, 20000) g \$i\$, s);/p' bench/capture_setup.sql | sed -n '1,/\$i\$, s);/p'
    echo "END LOOP; END \$\$;"
    echo "VACUUM ANALYZE;"
} >> "$tmp/setup.sql"
grep -q 'FROM generate_series(1, 20000) g' "$tmp/setup.sql" \
    || { echo "capture_cpu: no records insert found in bench/capture_setup.sql" >&2; exit 1; }
psql -X -q -v ON_ERROR_STOP=1 -d $DB -f "$tmp/setup.sql" >/dev/null

cpu="SELECT (string_to_array(pg_read_file('/proc/' || pg_backend_pid() || '/stat'), ' '))[14:15]::text;"
schemas="untracked $(for f in $FORMS; do printf 'cpu_%s ' $f; done)"
for s in $schemas; do
    {
        echo "\\o /dev/null"
        echo "UPDATE $s.records SET qty = qty + 1 WHERE id > 10000 AND id <= 20000;"   # caches warm
        echo "\\o"; echo "$cpu"; echo "\\o /dev/null"
        for i in $(seq "$BULK"); do echo "UPDATE $s.records SET qty = qty + 1 WHERE id > 10000 AND id <= 20000;"; done
        echo "\\o"; echo "$cpu"; echo "\\o /dev/null"
        echo "PREPARE u(bigint) AS UPDATE $s.records SET qty = qty + 1, status = 'checked-in' WHERE id = \$1;"
        echo "EXECUTE u(1);"
        echo "\\o"; echo "$cpu"; echo "\\o /dev/null"
        awk -v n="$SINGLE" 'BEGIN { srand(7); for (i = 0; i < n; i++) printf "EXECUTE u(%d);\n", 1 + int(rand() * 20000) }'
        echo "\\o"; echo "$cpu"
    } > "$tmp/$s.sql"
done
ticks=$(getconf CLK_TCK)
declare -A bulk single
echo "capture CPU: $BULK x 10,000-row UPDATE and $SINGLE single-row UPDATEs per form and round, load $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$ROUNDS"); do
    line="round $r:"
    for s in $schemas; do
        if [ -n "${REV:-}" ]; then
            if [ "${s%_rev}" != "$s" ]; then use before; else use after; fi
        fi
        read -r a b b2 c < <(psql -X -qAt -v ON_ERROR_STOP=1 -d $DB -f "$tmp/$s.sql" | tr -d '{}' | tr ',' ' ' | paste -sd' ' \
            | awk '{print $1 + $2, $3 + $4, $5 + $6, $7 + $8}')
        psql -X -q -d $DB -c "VACUUM $s.records" >/dev/null
        bulk[$s]+="$(( (b - a) * 1000 / ticks / BULK )) "
        single[$s]+="$(( (c - b2) * 1000000 / ticks / SINGLE )) "
        line="$line  $(n=${s#cpu_}; [ "${n%_rev}" = "$n" ] || n="${n%_rev}@$REV"; echo "$n") $(( (b - a) * 1000 / ticks / BULK )) ms / $(( (c - b2) * 1000000 / ticks / SINGLE )) us"
    done
    echo "$line (load $(cut -d' ' -f1 /proc/loadavg))"
done
[ -z "${REV:-}" ] || use after   # the tree's own library stays installed
ratios() { # list a, list b: a/b per round, min / median / max
    paste <(echo $1 | tr ' ' '\n' | grep .) <(echo $2 | tr ' ' '\n' | grep .) \
        | awk '$2 > 0 {print $1 / $2}' | sort -g \
        | awk '{a[NR]=$1} END {m = (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2; printf "%.2f / %.2f / %.2f", a[1], m, a[NR]}'
}
echo
echo "| entity index | bulk: untracked CPU / tracked CPU | single-row: untracked CPU / tracked CPU |"
echo "|---|---|---|"
for f in $FORMS; do
    label=$f; [ "${f%_rev}" = "$f" ] || label="${f%_rev}@$REV"
    echo "| $label | $(ratios "${bulk[untracked]}" "${bulk[cpu_$f]}") | $(ratios "${single[untracked]}" "${single[cpu_$f]}") |"
done
