#!/bin/bash
# Memory safety: builds smartsync with AddressSanitizer and UndefinedBehavior-
# Sanitizer (gcc: -fsanitize=address,undefined, every report fatal), installs it
# into a private copy of PostgreSQL 15 (test/install_private.sh: the system
# installation and the working tree's objects stay untouched), runs the whole
# suite against a server of that copy (make test: pg_regress, isolation,
# pgTAP, the bad-payload corpus, the simulation), then the TAP tests on servers
# of the same build, and fails on any test failure, any sanitizer report or any
# server process that died.  Last, two canaries (test/sanitize_build.c) check
# that both sanitizers were live in the backends.
#
# The runtimes come in as dependencies of smartsync.so, with their options
# compiled in (test/sanitize_build.c says why they are not preloaded).  So the
# instrumented code is smartsync's own: out-of-bounds stack and global accesses,
# use of stack memory after return, and undefined behaviour (signed overflow,
# shifts, misaligned or null accesses, out-of-bounds array indexes) in it are
# caught; PostgreSQL itself is not instrumented.  Leak detection is off:
# PostgreSQL frees memory by dropping whole memory contexts.
#   bash test/sanitize.sh                      (make sanitize)
#   bash test/sanitize.sh installcheck REGRESS=pull ISOLATION=   (some suites only)
# SANITIZE_TAP=0 skips the TAP tests; SANITIZE_KEEP=1 keeps the work directory.
set -euo pipefail
cd "$(dirname "$0")/.."
tree=$(pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
export PG_CONFIG
targets=("$@"); [ ${#targets[@]} -gt 0 ] || targets=(test)

work=$(mktemp -d "${TMPDIR:-/tmp}/smartsync_san.XXXXXX")
chmod 755 "$work"
started=""
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
    if [ -n "$started" ]; then as_pg "$bindir/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true; fi
    if [ -n "${SANITIZE_KEEP:-}" ]; then echo "sanitize: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

mkdir -p "$work/sock" "$work/data"
SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"
echo "sanitize: building smartsync with $SAN"
bindir=$(INSTALL_PRIVATE_EXTRA_SRC="$tree/test/sanitize_build.c" \
    bash test/install_private.sh "$work/pg" COPT="$SAN -O1 -g")
ldd "$work/pg$("$PG_CONFIG" --pkglibdir)/smartsync.so" | grep -q libasan \
    || { echo "sanitize: smartsync.so is not linked with the ASan runtime"; exit 1; }

# the suites run from a copy of the tree, so results/ of other runs stay apart
mkdir -p "$work/tree"
tar cf - --exclude='*.o' --exclude='*.bc' --exclude='*.so' --exclude=results --exclude=output_iso \
    --exclude=build Makefile smartsync.control src sql expected test examples $(ls -d upgrade 2>/dev/null) \
  | tar xf - -C "$work/tree"
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
EOF
as_pg "$bindir/pg_ctl" -D "$work/data" -l "$work/data/server.log" -w start >/dev/null
started=yes
pg=(env PGHOST="$work/sock" PGPORT=$port PGUSER=postgres PGDATABASE=postgres)

status=0
echo "sanitize: make ${targets[*]} against the sanitized build"
(cd "$work/tree" && "${pg[@]}" make -s "${targets[@]}") || status=$?
if [ $status -ne 0 ]; then
    for f in regression.diffs test/isolation/output_iso/regression.diffs output_iso/regression.diffs; do
        [ -s "$work/tree/$f" ] && { echo "=== $f"; head -200 "$work/tree/$f"; }
    done
fi
if [ $status -eq 0 ] && [ "${SANITIZE_TAP:-1}" != 0 ]; then
    echo "sanitize: TAP tests on servers of the sanitized build"
    SMARTSYNC_PG_BINDIR="$bindir" bash test/tap/run.sh || status=$?
fi

# any sanitizer report, or a server process that died, fails the run
# (the TAP runner checks its servers' logs the same way)
if grep -qE 'AddressSanitizer|runtime error:' "$work/data/server.log"; then
    echo "sanitize: sanitizer reports:"
    grep -E -A30 'AddressSanitizer|runtime error:' "$work/data/server.log" | head -100 || true
    status=1
fi
if grep -qE 'terminated by signal|exited with exit code [1-9]' "$work/data/server.log"; then
    echo "sanitize: a server process died:"
    grep -E -B2 -A2 'terminated by signal|exited with exit code [1-9]' "$work/data/server.log" | head -30
    status=1
fi

# the canaries: each sanitizer must catch its deliberate error in a backend
ready() { grep -c 'database system is ready to accept connections' "$work/data/server.log" || true; }
canary() {    # canary FUNCTION ARGUMENT: call it, then wait for the server's restart
    local before; before=$(ready)
    "${pg[@]}" psql -X -q -c "CREATE FUNCTION pg_temp.c(int) RETURNS int LANGUAGE c STRICT AS 'smartsync', '$1'; SELECT pg_temp.c($2)" >/dev/null 2>&1 || true
    for _ in $(seq 1 150); do [ "$(ready)" -gt "$before" ] && break; sleep 0.2; done
}
if [ $status -eq 0 ]; then
    "${pg[@]}" psql -X -q -v ON_ERROR_STOP=1 -c "CREATE FUNCTION pg_temp.a(int) RETURNS int LANGUAGE c STRICT AS 'smartsync', 'smartsync_sanitize_canary_asan'; CREATE FUNCTION pg_temp.u(int) RETURNS int LANGUAGE c STRICT AS 'smartsync', 'smartsync_sanitize_canary_ubsan'; SELECT pg_temp.a(1), pg_temp.u(1)" >/dev/null
    canary smartsync_sanitize_canary_asan 12
    canary smartsync_sanitize_canary_ubsan 40
    if grep -q 'AddressSanitizer: stack-buffer-overflow' "$work/data/server.log" \
       && grep -q 'runtime error: shift exponent' "$work/data/server.log"; then
        echo "sanitize: canaries caught (AddressSanitizer: stack-buffer-overflow, UndefinedBehaviorSanitizer: shift exponent too large)"
    else
        echo "sanitize: a canary was not caught: the sanitizers were not live"
        tail -40 "$work/data/server.log"
        status=1
    fi
fi

as_pg "$bindir/pg_ctl" -D "$work/data" -m fast -w stop >/dev/null || status=1
started=""
if [ $status -eq 0 ]; then
    echo "sanitize: clean: every suite passed with no AddressSanitizer or UndefinedBehaviorSanitizer report"
fi
exit $status
