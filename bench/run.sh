#!/bin/bash
# Benchmark runner: builds and installs smartsync, starts a throwaway cluster
# (bench/settings.conf: synchronous_commit=off so CPU cost shows) and runs bench/bench_NAME.sh for each
# NAME given, or all of them.  Each prints a markdown table of medians and of
# ratios against a baseline measured in the same run.
#   bash bench/run.sh            # all benchmarks, on the host's PostgreSQL 15
#   bash bench/run.sh capture    # one
#   bash bench/run.sh --pg 18 [NAME...]   # on PostgreSQL 17 or 18, in its chroot, the
#                                         # database benchmarks (no Node.js there)
#                                         # (test/chroot.sh, as test/matrix.sh uses)
#   bash bench/run.sh --private [NAME...] # PostgreSQL 15 with smartsync in a private
#                                         # copy of it (test/private.sh), the system
#                                         # installation left as it is
#                                         # (bench/private.sh: the same, another way)
set -euo pipefail
cd "$(dirname "$0")/.."
v=${SMARTSYNC_PG_VERSION:-15}
private=""
while [ $# -gt 0 ]; do
    case $1 in
        --pg) v=$2; shift 2 ;;
        --private) private=yes; shift ;;
        *) break ;;
    esac
done
# another version than this system's: run again inside that version's chroot, with
# the settings the benchmarks read (ROUNDS=3 ...) that are set here
if [ "$v" != "${SMARTSYNC_PG_VERSION:-15}" ]; then
    pass=()
    for name in $(grep -ho '\${[A-Z_]*:-' bench/*.sh | tr -d '${:-' | grep -v '^SMARTSYNC_' | sort -u); do
        [ -n "${!name+set}" ] && pass+=("$name=${!name}")
    done
    exec bash test/chroot.sh "$v" -- env "${pass[@]}" bash bench/run.sh "$@"
fi
SMARTSYNC_PG_VERSION=$v bash test/deps.sh
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
export PG_CONFIG=/usr/lib/postgresql/$v/bin/pg_config
# the benchmarks of the JavaScript packages need Node.js (and their node_modules), which
# the version chroots do not have: there, all benchmarks means the database ones
needs_node() { grep -q -E '(^|[^a-z_])js/|\bnode |\bnpm |\.mjs' "bench/bench_$1.sh"; }
if [ $# -eq 0 ]; then
    for n in $(ls bench/bench_*.sh | sed 's|bench/bench_\(.*\)\.sh|\1|'); do
        if needs_node "$n" && ! command -v node >/dev/null; then
            echo "bench: skipping $n (needs Node.js, which PostgreSQL $v's environment has not)"
        else
            set -- "$@" "$n"
        fi
    done
fi
scripts=""
for n in "$@"; do
    [ -f "bench/bench_$n.sh" ] || { echo "no benchmark bench/bench_$n.sh" >&2; exit 2; }
    if needs_node "$n" && ! command -v node >/dev/null; then
        echo "bench: bench/bench_$n.sh needs Node.js, which PostgreSQL $v's environment has not (run it on 15)" >&2
        exit 2
    fi
    scripts="$scripts bench/bench_$n.sh"
done
settings=()   # bench/settings.conf, as bench/private.sh reads it
while read -r line; do settings+=("${line// = /=}"); done < <(grep -v '^#' bench/settings.conf | grep .)
echo "bench: $("$PG_CONFIG" --version), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at start, $(date -u '+%Y-%m-%d %H:%M UTC')"
each='set -e; for s in "$@"; do echo; echo "### $s"; bash "$s"; done'
if [ -n "$private" ]; then
    PRIVATE_CONF=$(printf '%s\n' "${settings[@]}") bash test/private.sh -- bash -c "$each" _ $scripts
else
    make -s >/dev/null
    $SUDO make -s install >/dev/null
    opts=()
    for s in "${settings[@]}"; do opts+=(-o "$s"); done
    pg_virtualenv -t -v "$v" "${opts[@]}" bash -c "$each" _ $scripts 2>&1 \
        | grep -v -e '^Creating new PostgreSQL cluster' -e '^Dropping cluster'
fi
