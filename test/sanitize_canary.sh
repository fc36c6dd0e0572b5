#!/bin/bash
# The last step of test/sanitize.sh, run by test/private.sh while the sanitized
# server is still up (PG* and PRIVATE_* set), after test/private.sh found no
# sanitizer report and no dead server process: smartsync.so must be linked with
# the ASan runtime, and each sanitizer must catch its deliberate error
# (test/sanitize_build.c) in a backend.
set -euo pipefail
log=$PRIVATE_SERVER_LOG
ldd "$PRIVATE_PKGLIBDIR/smartsync.so" | grep libasan >/dev/null \
    || { echo "sanitize: smartsync.so is not linked with the ASan runtime"; exit 1; }
ready() { grep -c 'database system is ready to accept connections' "$log" || true; }
canary() {    # canary FUNCTION ARGUMENT: call it, then wait for the server's restart
    local before; before=$(ready)
    psql -X -q -c "CREATE FUNCTION pg_temp.c(int) RETURNS int LANGUAGE c STRICT AS 'smartsync', '$1'; SELECT pg_temp.c($2)" >/dev/null 2>&1 || true
    for _ in $(seq 1 150); do [ "$(ready)" -gt "$before" ] && break; sleep 0.2; done
}
psql -X -q -v ON_ERROR_STOP=1 -c "CREATE FUNCTION pg_temp.a(int) RETURNS int LANGUAGE c STRICT AS 'smartsync', 'smartsync_sanitize_canary_asan'; CREATE FUNCTION pg_temp.u(int) RETURNS int LANGUAGE c STRICT AS 'smartsync', 'smartsync_sanitize_canary_ubsan'; SELECT pg_temp.a(1), pg_temp.u(1)" >/dev/null
canary smartsync_sanitize_canary_asan 12
canary smartsync_sanitize_canary_ubsan 40
if grep -q 'AddressSanitizer: stack-buffer-overflow' "$log" \
   && grep -q 'runtime error: shift exponent' "$log"; then
    echo "sanitize: canaries caught (AddressSanitizer: stack-buffer-overflow, UndefinedBehaviorSanitizer: shift exponent too large)"
else
    echo "sanitize: a canary was not caught: the sanitizers were not live"
    tail -40 "$log"
    exit 1
fi
