#!/bin/bash
# The version matrix: every database suite that test/run.sh runs (pg_regress with
# the upgrade test, isolation specs, pgTAP, the bad-payload corpus, the simulation,
# the TAP tests: hot standby, crash recovery, dump and restore) on each PostgreSQL
# version, one after the other.
#
#   bash test/matrix.sh [--refresh] [15|17|18 ...]    # no version: all three
#
#   15  the host's PostgreSQL 15 (Debian 12), into a private copy of it
#       (test/private.sh), so the system installation stays as it is
#   17  a Debian 13 (trixie) chroot, 18 a Debian testing (forky) chroot
#       (test/chroot.sh: built with debootstrap on first use, in $SMARTSYNC_CHROOTS,
#       default /var/tmp/smartsync-chroots, reused afterwards; --refresh rebuilds
#       them), where test/suites.sh builds, installs and tests smartsync with the
#       chroot's own PostgreSQL and pg_virtualenv
#
# Each version's output goes to the terminal and to a log; at the end one summary
# line per version and "N passed, M failed" counting versions.  Exits non-zero when
# any version failed.  The JavaScript suites are not part of the matrix.
# (the whole script is one block, read before it runs: editing or checking out
# another version of this file during a run leaves the run as it was)
{
set -uo pipefail
cd "$(dirname "$0")/.."
refresh=()
versions=()
for a in "$@"; do
    case $a in
        --refresh) refresh=(--refresh) ;;
        15|17|18) versions+=("$a") ;;
        *) echo "usage: test/matrix.sh [--refresh] [15|17|18 ...]" >&2; exit 2 ;;
    esac
done
[ ${#versions[@]} -gt 0 ] || versions=(15 17 18)
logs=$(mktemp -d "${TMPDIR:-/tmp}/smartsync_matrix.XXXXXX")

mmss() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

passed=0
failed=0
summary=()
for v in "${versions[@]}"; do
    log=$logs/pg$v.log
    echo "=== matrix: PostgreSQL $v"
    start=$SECONDS
    if [ "$v" = 15 ]; then
        where="host, private install"
        { bash test/deps.sh &&
          echo "suites: $(/usr/lib/postgresql/15/bin/pg_config --version), gcc $(gcc -dumpfullversion)" &&
          bash test/private.sh; } 2>&1 | tee "$log"
        rc=${PIPESTATUS[0]}
    else
        where="Debian $( [ "$v" = 17 ] && echo "13 trixie" || echo "testing forky") chroot"
        bash test/chroot.sh "${refresh[@]}" "$v" -- \
            bash test/suites.sh 2>&1 | tee "$log"
        rc=${PIPESTATUS[0]}
    fi
    total=$((SECONDS - start))
    release=$(sed -n 's/^suites: PostgreSQL \([^ ,]*\).*/\1/p' "$log" | head -1)
    built=$(sed -n 's/^chroot: built .* in \([0-9]*\)s.*/\1/p' "$log" | head -1)
    detail="$(mmss $total)"
    if [ -n "$built" ]; then
        detail="$detail: chroot built in $(mmss "$built"), suites $(mmss $((total - built)))"
    elif [ "$v" != 15 ]; then
        detail="$detail, chroot reused"
    fi
    if [ "$rc" = 0 ]; then
        passed=$((passed + 1))
        summary+=("PostgreSQL ${release:-$v} ($where): passed in $detail")
    else
        failed=$((failed + 1))
        summary+=("PostgreSQL ${release:-$v} ($where): FAILED (exit $rc) after $detail; log: $log")
    fi
done

echo
echo "=== matrix summary"
printf '%s\n' "${summary[@]}"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ] && rm -rf "$logs"
[ "$failed" = 0 ]
exit
}
