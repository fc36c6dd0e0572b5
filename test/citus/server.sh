# test/citus/server.sh: @smartsync/server against the Citus cluster of
# test/citus.sh (sourced by it after the SQL tests, with the cluster up and the
# tenants happy-paws and city-vets on different workers).  The server talks to
# the coordinator only, as PostgREST does; each tenant's push, changed and pull
# must reach its worker with the JWT's context.  Needs the built server
# (js/packages/server/dist, as test/run.sh builds it; CITUS_SERVER_CLI names
# another build's dist/cli.js); without it prints one line saying it is
# skipped.  Returns non-zero on any mismatch.
citus_server_check() {
    local cli=${CITUS_SERVER_CLI:-js/packages/server/dist/cli.js}
    if [ ! -f "$cli" ] || { [ -z "${CITUS_SERVER_CLI:-}" ] && [ ! -d js/node_modules ]; }; then
        echo "citus: @smartsync/server check skipped: the server is not built (cd js && npm ci && npm run build)"
        return 0
    fi
    local secret port url log t tab phone first cur out fail=0
    secret=citus-server-check-secret-0123456789abcdef
    port=$(citus_free_port)
    log="$citus_work/server.log"
    node "$cli" --database-url "postgresql://authenticator@127.0.0.1:${citus_port[coordinator]}/postgres" \
        --jwt-secret "$secret" --port "$port" --host 127.0.0.1 --signal none --log-level warn >"$log" 2>&1 &
    citus_server_pid=$!
    trap 'kill "$citus_server_pid" 2>/dev/null || true; citus_cleanup' EXIT
    url="http://127.0.0.1:$port/api/sync"
    for _ in $(seq 100); do curl -sf "$url/health" >/dev/null 2>&1 && break; sleep 0.1; done
    token() {
        node -e 'const { createHmac } = require("node:crypto");
const b64 = (s) => Buffer.from(s).toString("base64url");
const [secret, tenant, device] = process.argv.slice(1);
const head = b64(JSON.stringify({ alg: "HS256", typ: "JWT" }));
const body = b64(JSON.stringify({ role: "web_user", tenant_id: tenant, practice_id: 1, sub: "server-check",
  client_id: device, permissions: ["*"], exp: Math.floor(Date.now() / 1000) + 600 }));
process.stdout.write(`${head}.${body}.${createHmac("sha256", secret).update(`${head}.${body}`).digest("base64url")}`);' "$secret" "$1" "$2"
    }
    field() { node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
  const v = process.argv[1].split(".").reduce((o, k) => (o == null ? undefined : o[k]), JSON.parse(s));
  process.stdout.write(typeof v === "string" ? v : JSON.stringify(v)); });' "$1"; }
    expect() { if [ "$2" != "$3" ]; then echo "citus: server check: $1: got $2, expected $3"; fail=1; fi; }
    for t in happy-paws city-vets; do
        tab=$(token "$t" server-tablet); phone=$(token "$t" server-phone)
        first=$(curl -s "$url/pull?entityTypes=clients" -H "Authorization: Bearer $phone")
        cur=$(echo "$first" | field cursor)
        expect "$t changed before" "$(curl -s "$url/changed?cursor=$cur&entityTypes=clients" -H "Authorization: Bearer $phone")" '{"changed":false}'
        out=$(curl -s -X POST "$url/push" -H "Authorization: Bearer $tab" -H 'Content-Type: application/json' \
            -d '{"operations":[{"id":"sc1","operation":"create","entityType":"clients","entityId":"temp_sc1","data":{"name":"Server Check"}}]}')
        expect "$t push" "$(echo "$out" | field success)" true
        expect "$t changed after" "$(curl -s "$url/changed?cursor=$cur&entityTypes=clients" -H "Authorization: Bearer $phone")" '{"changed":true}'
        out=$(curl -s "$url/pull?entityTypes=clients&cursor=$cur" -H "Authorization: Bearer $phone")
        expect "$t pull" "$(echo "$out" | field changes.0.data.name)" "Server Check"
        expect "$t change log" "$(citus_psql coordinator -At -c "SELECT user_id || ' ' || client_id FROM $(echo "tenant_$t" | tr - _).sync_changes ORDER BY seq DESC LIMIT 1")" "server-check server-tablet"
    done
    kill "$citus_server_pid" 2>/dev/null || true
    wait "$citus_server_pid" 2>/dev/null || true
    trap citus_cleanup EXIT
    if [ -s "$log" ]; then echo "citus: server log:"; head -20 "$log"; fi
    [ $fail = 0 ] && echo "citus: @smartsync/server check: push, changed and pull for two tenants on two workers: ok"
    return $fail
}
