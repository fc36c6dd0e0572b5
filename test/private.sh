#!/bin/bash
# Runs suites against smartsync built from this tree into a private copy of
# PostgreSQL (test/install_private.sh) with a server of its own: the system
# installation, its clusters and the working tree's objects stay untouched, so
# several trees (git worktrees) can be built and tested at once on one machine.
#
#   bash test/private.sh                       # make test, then the TAP tests
#   bash test/private.sh installcheck REGRESS=pull ISOLATION=   # some suites
#   bash test/private.sh -- CMD ARG...         # any command, with PGHOST/PGPORT/
#                                              # PGUSER/PGDATABASE of the server set
#
# Make targets run from a copy of the tree (results/ of other runs stay apart);
# a command after -- runs in the tree itself.  Settings:
#   PRIVATE_COPT        extra compiler flags for the build (test/sanitize.sh)
#   PRIVATE_EXTRA_SRC   more C files compiled into smartsync (test builds)
#   PRIVATE_TAP=0       skip the TAP tests after make targets
#   PRIVATE_HOOK        a command run last, after the log checks, while the server
#                       is still up (its status counts)
#   PRIVATE_CONF        lines appended to postgresql.conf
#   PRIVATE_KEEP=1      keep the work directory
# Fails on any suite failure, any sanitizer report in the server log or any
# server process that died.
set -euo pipefail
cd "$(dirname "$0")/.."
tree=$(pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
export PG_CONFIG
cmd=(); targets=()
if [ "${1:-}" = "--" ]; then shift; cmd=("$@"); else targets=("$@"); fi
[ ${#cmd[@]} -gt 0 ] || [ ${#targets[@]} -gt 0 ] || targets=(test)

work=$(mktemp -d "${TMPDIR:-/tmp}/smartsync_private.XXXXXX")
chmod 755 "$work"
started=""
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
    if [ -n "$started" ]; then as_pg "$bindir/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true; fi
    if [ -n "${PRIVATE_KEEP:-}" ]; then echo "private: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

mkdir -p "$work/sock" "$work/data"
copt=()
[ -z "${PRIVATE_COPT:-}" ] || copt=("COPT=$PRIVATE_COPT")
bindir=$(INSTALL_PRIVATE_EXTRA_SRC="${PRIVATE_EXTRA_SRC:-}" \
    bash test/install_private.sh "$work/pg" "${copt[@]}")
export PRIVATE_PKGLIBDIR="$work/pg$("$PG_CONFIG" --pkglibdir)"

if [ ${#targets[@]} -gt 0 ]; then
    mkdir -p "$work/tree"
    tar cf - --exclude='*.o' --exclude='*.bc' --exclude='*.so' --exclude=results --exclude=output_iso \
        --exclude=build --exclude=node_modules Makefile smartsync.control src sql expected test examples \
        $(ls -d upgrade 2>/dev/null) | tar xf - -C "$work/tree"
fi
chmod -R a+rX "$work"

# a server of the private installation
chown postgres "$work/sock" "$work/data" 2>/dev/null || true
as_pg "$bindir/initdb" -D "$work/data" -A trust -U postgres --no-sync >/dev/null
port=$(( 20000 + RANDOM % 20000 ))
cat >> "$work/data/postgresql.conf" <<EOF
port = $port
listen_addresses = ''
unix_socket_directories = '$work/sock'
fsync = off
${PRIVATE_CONF:-}
EOF
as_pg "$bindir/pg_ctl" -D "$work/data" -l "$work/data/server.log" -w start >/dev/null
started=yes
export PGHOST="$work/sock" PGPORT=$port PGUSER=postgres PGDATABASE=postgres
export PRIVATE_SERVER_LOG="$work/data/server.log" PRIVATE_BINDIR="$bindir"

status=0
if [ ${#targets[@]} -gt 0 ]; then
    echo "private: make ${targets[*]}"
    (cd "$work/tree" && make -s "${targets[@]}") || status=$?
    if [ $status -ne 0 ]; then
        for f in regression.diffs test/isolation/output_iso/regression.diffs output_iso/regression.diffs; do
            [ -s "$work/tree/$f" ] && { echo "=== $f"; head -200 "$work/tree/$f"; }
        done
    fi
    if [ $status -eq 0 ] && [ "${PRIVATE_TAP:-1}" != 0 ]; then
        echo "private: TAP tests"
        SMARTSYNC_PG_BINDIR="$bindir" bash test/tap/run.sh || status=$?
    fi
else
    "${cmd[@]}" || status=$?
fi
# any sanitizer report, or a server process that died, fails the run
if grep -qE 'AddressSanitizer|runtime error:' "$work/data/server.log"; then
    echo "private: sanitizer reports:"
    grep -E -A30 'AddressSanitizer|runtime error:' "$work/data/server.log" | head -100 || true
    status=1
fi
if grep -qE 'terminated by signal|exited with exit code [1-9]' "$work/data/server.log"; then
    echo "private: a server process died:"
    grep -E -B2 -A2 'terminated by signal|exited with exit code [1-9]' "$work/data/server.log" | head -30
    status=1
fi
# the hook runs after those checks, so it may crash backends on purpose (the canaries)
if [ $status -eq 0 ] && [ -n "${PRIVATE_HOOK:-}" ]; then
    bash -c "$PRIVATE_HOOK" || status=$?
fi

as_pg "$bindir/pg_ctl" -D "$work/data" -m fast -w stop >/dev/null || status=1
started=""
exit $status
