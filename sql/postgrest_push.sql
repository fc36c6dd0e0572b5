-- POST /rpc/sync_push through PostgREST, reproduced statement by statement
-- (sql/postgrest_request.psql): the transaction, the set_config sequence with
-- the role switch to the web role, the generated call with the raw body as its
-- one parameter.  Each request shows what PostgREST answers.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS smartsync;
\set ECHO none
\o /dev/null
SELECT to_regnamespace('vet_template') IS NULL AS need_vet \gset
\if :need_vet
\i examples/vet_schema.sql
\endif
SELECT smartsync.provision_tenant('pgrst-push', 'pgrst_push');
SELECT smartsync.setup_postgrest();
\o
RESET client_min_messages;
\set ECHO all
\i sql/postgrest_helpers.psql

-- A clinic's tablet: tenant, practice, user, device and permissions are JWT claims.
\set method POST
\set fn sync_push
\set claims '{"role":"web_user","tenant_id":"pgrst-push","practice_id":1,"sub":"42","client_id":"tablet-1","permissions":["clients:create","pets:create","appointments:create","appointments:update"]}'

-- The spec's request: a client, a pet and an appointment made offline, children
-- listed first; temporary ids become real ids.
\set body '{"operations":[{"id":3,"operation":"create","entityType":"appointments","entityId":"temp_a1","data":{"title":"Annual checkup","petId":"temp_p1","date":"2024-11-10T12:00:00Z"},"timestamp":1699000000300,"tenantId":"pgrst-push","practiceId":1,"userId":42},{"id":2,"operation":"create","entityType":"pets","entityId":"temp_p1","data":{"name":"Rex","clientId":"temp_c1","species":"dog"},"timestamp":1699000000200},{"id":1,"operation":"create","entityType":"clients","entityId":"temp_c1","data":{"name":"Ann Smith"},"timestamp":1699000000100}],"clientTimestamp":1699000000500}'
\i sql/postgrest_request.psql

-- The rows, captured with the JWT's user and device; the ledger keeps who did what.
SELECT entity_type, entity_id, operation, practice_id, user_id, client_id FROM pgrst_push.sync_changes ORDER BY seq;
SELECT operation_id, entity_type, outcome, user_id, practice_id FROM pgrst_push.sync_ledger ORDER BY operation_id;

-- The response was lost: the same body again is answered from the ledger.
\i sql/postgrest_request.psql

-- An update with the version the tablet saw, and one with a stale version: a
-- conflict is a result of the push (HTTP 200), not an HTTP error.
\set body '{"operations":[{"id":4,"operation":"update","entityType":"appointments","entityId":"temp_a1","data":{"notes":"bring the x-rays"},"version":1},{"id":5,"operation":"update","entityType":"appointments","entityId":"temp_a1","data":{"title":"Checkup (moved)"},"version":1}]}'
\i sql/postgrest_request.psql

-- Operations the claims do not allow fail one by one (permission, practice);
-- the others still apply.
\set body '{"operations":[{"id":6,"operation":"create","entityType":"invoices","data":{"clientId":1,"amountCents":100},"requiredPermissions":["invoices:create"]},{"id":7,"operation":"create","entityType":"clients","data":{"name":"Other practice","practiceId":2}},{"id":8,"operation":"create","entityType":"clients","data":{"name":"Bob"}}]}'
\i sql/postgrest_request.psql

-- What a token may write is the server's to say, not the payload's: a phone whose
-- token may only read creates nothing, although its operation declares no
-- requiredPermissions (SS421, 403 in its result, acknowledged, not retryable).
\set claims '{"role":"web_user","tenant_id":"pgrst-push","practice_id":1,"sub":"7","client_id":"phone-9","permissions":["*:read"]}'
\set body '{"operations":[{"id":9,"operation":"create","entityType":"clients","data":{"name":"Mallory"}}]}'
\i sql/postgrest_request.psql
SELECT count(*) AS mallory_rows FROM pgrst_push.clients WHERE name = 'Mallory';
SELECT operation_id, outcome, error_code FROM pgrst_push.sync_ledger WHERE client_id = 'phone-9';
\set claims '{"role":"web_user","tenant_id":"pgrst-push","practice_id":1,"sub":"42","client_id":"tablet-1","permissions":["clients:create","pets:create","appointments:create","appointments:update"]}'

-- Requests refused as a whole.
-- not an object: 400
\set body '[1, 2]'
\i sql/postgrest_request.psql
-- no operations array: 400
\set body '{"ops": []}'
\i sql/postgrest_request.psql
-- more operations than smartsync.batch_size (default 50; here as if set in postgresql.conf): 413
SET smartsync.batch_size = 2;
\set body '{"operations":[{"id":"b1","operation":"create","entityType":"clients","data":{"name":"B1"}},{"id":"b2","operation":"create","entityType":"clients","data":{"name":"B2"}},{"id":"b3","operation":"create","entityType":"clients","data":{"name":"B3"}}]}'
\i sql/postgrest_request.psql
RESET smartsync.batch_size;

-- No JWT: PostgREST switches to the anonymous role, which may not call the api: 401.
\set body '{"operations":[]}'
\set claims ''
\i sql/postgrest_request.psql
-- A JWT without a tenant: 401.
\set claims '{"role":"web_user","sub":"42","client_id":"tablet-1"}'
\i sql/postgrest_request.psql
-- Malformed claims (a tenant that is not a string): 401.
\set claims '{"role":"web_user","tenant_id":{"id":1},"client_id":"tablet-1"}'
\i sql/postgrest_request.psql
-- A tenant that does not exist: 403.
\set claims '{"role":"web_user","tenant_id":"nobody","client_id":"tablet-1"}'
\i sql/postgrest_request.psql
-- A JWT without a device and a body without one: 400.
\set claims '{"role":"web_user","tenant_id":"pgrst-push"}'
\set body '{"operations":[{"id":9,"operation":"create","entityType":"clients","data":{"name":"X"}}]}'
\i sql/postgrest_request.psql

-- Nothing of the refused requests was written.
SELECT count(*) AS changes FROM pgrst_push.sync_changes;
SELECT count(*) AS ledger FROM pgrst_push.sync_ledger;
