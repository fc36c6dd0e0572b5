# test/citus_cluster.sh: Citus nodes on loopback from a private installation of
# this tree.  Sourced (not run) by test/citus.sh and bench/bench_citus.sh, in
# the tree's top directory, with PG_CONFIG set:
#
#   citus_skip_reason          prints why Citus cannot run for that PostgreSQL
#                              (nothing when it can)
#   citus_begin                a temporary directory ($citus_work), the private
#                              installation in it ($citus_bindir), and a trap that
#                              stops every node and removes the directory on exit
#                              (CITUS_KEEP=1 keeps the directory)
#   citus_node NAME [plain]    a node: its own data directory and a free port
#                              (${citus_port[NAME]}), run as the postgres user,
#                              shared_preload_libraries = citus (plain: without
#                              Citus), database postgres with the citus extension
#   citus_add_workers COORD W... makes COORD the coordinator of workers W...
#   citus_psql NAME ARGS...    psql on a node (ON_ERROR_STOP)

citus_skip_reason() {
    if [ ! -f "$("$PG_CONFIG" --sharedir)/extension/citus.control" ] ||
       [ ! -f "$("$PG_CONFIG" --pkglibdir)/citus.so" ]; then
        echo "the citus extension is not installed for $("$PG_CONFIG" --version) (README \"Scaling out\" says how to install it)"
    fi
}

declare -A citus_port=()
citus_nodes=()

citus_as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

citus_cleanup() {
    local n
    for n in "${citus_nodes[@]}"; do
        citus_as_pg "$citus_bindir/pg_ctl" -D "$citus_work/$n" -m immediate -w stop >/dev/null 2>&1 || true
    done
    if [ -n "${CITUS_KEEP:-}" ]; then echo "citus: kept $citus_work"; else rm -rf "$citus_work"; fi
}

citus_begin() {
    citus_work=$(mktemp -d "${TMPDIR:-/tmp}/smartsync_citus.XXXXXX")
    chmod 755 "$citus_work"
    trap citus_cleanup EXIT
    citus_bindir=$(bash test/install_private.sh "$citus_work/pg")
    citus_pkglibdir="$citus_work/pg$("$PG_CONFIG" --pkglibdir)"
    chmod -R a+rX "$citus_work"
    mkdir -p "$citus_work/sock"
    chown postgres "$citus_work/sock" 2>/dev/null || true
    export PGHOST="$citus_work/sock" PGUSER=postgres PGDATABASE=postgres
}

# a free loopback port, not given to another node
citus_free_port() {
    local p
    while :; do
        p=$(( 20000 + RANDOM % 20000 ))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && [[ " ${citus_port[*]} " != *" $p "* ]]; then
            echo "$p"; return
        fi
    done
}

citus_node() {
    local n=$1 plain=${2:-} p
    p=$(citus_free_port)
    citus_port[$n]=$p
    mkdir -p "$citus_work/$n"
    chown postgres "$citus_work/$n" 2>/dev/null || true
    citus_as_pg "$citus_bindir/initdb" -D "$citus_work/$n" -A trust -U postgres --no-sync >/dev/null
    cat >> "$citus_work/$n/postgresql.conf" <<EOF
port = $p
listen_addresses = '127.0.0.1'
unix_socket_directories = '$citus_work/sock'
fsync = off
max_prepared_transactions = 100
wal_level = logical
# orphaned shards of a move are dropped by the next move (synchronously), not
# also by the maintenance daemon every 15 s: a move back to a node whose orphan
# the daemon is dropping at that moment fails ("could not be cleaned up")
citus.defer_shard_delete_interval = -1
${CITUS_CONF:-}
EOF
    [ -n "$plain" ] || echo "shared_preload_libraries = 'citus'" >> "$citus_work/$n/postgresql.conf"
    citus_as_pg "$citus_bindir/pg_ctl" -D "$citus_work/$n" -l "$citus_work/$n/server.log" -w start >/dev/null
    citus_nodes+=("$n")
    [ -n "$plain" ] || citus_psql "$n" -c 'CREATE EXTENSION citus' >/dev/null
}

citus_psql() { local n=$1; shift; "$citus_bindir/psql" -X -q -v ON_ERROR_STOP=1 -p "${citus_port[$n]}" "$@"; }

citus_add_workers() {
    local c=$1 w; shift
    citus_psql "$c" -c "SELECT citus_set_coordinator_host('127.0.0.1', ${citus_port[$c]})" >/dev/null
    for w in "$@"; do
        citus_psql "$c" -c "SELECT citus_add_node('127.0.0.1', ${citus_port[$w]})" >/dev/null
    done
}
