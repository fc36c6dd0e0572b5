#!/bin/bash
# Memory safety: builds smartsync with AddressSanitizer and UndefinedBehavior-
# Sanitizer (gcc: -fsanitize=address,undefined, every report fatal), installs it
# into a private copy of PostgreSQL 15 and runs the whole suite against a server
# of that copy (test/private.sh: pg_regress, isolation, pgTAP, the bad-payload
# corpus, the simulation, then the TAP tests on servers of the same build).  It
# fails on any test failure, any sanitizer report or any server process that
# died.  Last, two canaries (test/sanitize_build.c) check that both sanitizers
# were live in the backends (test/sanitize_canary.sh).
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
SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"
echo "sanitize: building smartsync with $SAN"
export PRIVATE_COPT="$SAN -O1 -g"
export PRIVATE_EXTRA_SRC="$(pwd)/test/sanitize_build.c"
export PRIVATE_TAP="${SANITIZE_TAP:-1}"
export PRIVATE_KEEP="${SANITIZE_KEEP:-}"
export PRIVATE_HOOK="bash test/sanitize_canary.sh"
if bash test/private.sh "$@"; then
    echo "sanitize: clean: every suite passed with no AddressSanitizer or UndefinedBehaviorSanitizer report"
else
    exit 1
fi
