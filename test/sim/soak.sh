#!/bin/bash
# The simulation's soak form: offline clients for N seconds (default 600) against a
# throwaway cluster whose autovacuum runs as often as it can (naptime 1 s, thresholds
# of 5 rows, no scale factors), so that autovacuum's and autoanalyze's invalidations
# race capture, push and pull all the time.
#
#   bash test/sim/soak.sh [seconds [more sim options]]   # pg_virtualenv, installed smartsync
#   bash test/sim/soak.sh --conf                         # the settings, one per line: for
#       PRIVATE_CONF="$(bash test/sim/soak.sh --conf)" bash test/private.sh sim SIM_ARGS="--duration-seconds 600"
set -euo pipefail
cd "$(dirname "$0")/../.."
settings=(
    autovacuum=on
    autovacuum_naptime=1
    autovacuum_vacuum_threshold=5
    autovacuum_analyze_threshold=5
    autovacuum_vacuum_insert_threshold=5
    autovacuum_vacuum_scale_factor=0
    autovacuum_analyze_scale_factor=0
    autovacuum_vacuum_insert_scale_factor=0
)
if [ "${1:-}" = "--conf" ]; then
    printf '%s\n' "${settings[@]}" | sed 's/=/ = /'
    exit 0
fi
seconds=${1:-600}
shift || true
opts=()
for s in "${settings[@]}"; do opts+=(-o "$s"); done
exec pg_virtualenv -t "${opts[@]}" make sim SIM_ARGS="--duration-seconds $seconds $*"
