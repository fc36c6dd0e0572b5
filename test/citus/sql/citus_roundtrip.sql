-- The spec's round trip on Citus, through the coordinator's api schema exactly
-- as PostgREST calls it (sql/postgrest_request.psql): push, pull, a conflict and
-- its resolution, for two clinics whose data live on different workers.
-- PostgREST talks to the coordinator only; every call runs on the node that
-- holds the JWT's tenant, with the JWT's context there.
\set ECHO none
\i sql/postgrest_helpers.psql
\set ECHO all
SELECT citus_t.node_of('happy-paws') AS happy_paws, citus_t.node_of('city-vets') AS city_vets;

-- Happy Paws' tablet pushes the spec's request: a client, a pet and an
-- appointment made offline; temporary ids become real ids.
\set method POST
\set fn sync_push
\set claims '{"role":"web_user","tenant_id":"happy-paws","practice_id":1,"sub":"42","client_id":"tablet-1","permissions":["*"]}'
\set body '{"operations":[{"id":3,"operation":"create","entityType":"appointments","entityId":"temp_a1","data":{"title":"Annual checkup","petId":"temp_p1","date":"2024-11-10T12:00:00Z"},"timestamp":1699000000300},{"id":2,"operation":"create","entityType":"pets","entityId":"temp_p1","data":{"name":"Rex","clientId":"temp_c1","species":"dog"},"timestamp":1699000000200},{"id":1,"operation":"create","entityType":"clients","entityId":"temp_c1","data":{"name":"Ann Smith"},"timestamp":1699000000100}],"clientTimestamp":1699000000500}'
\i sql/postgrest_request.psql
-- City Vets' tablet, on the other worker, at the same time.
\set claims '{"role":"web_user","tenant_id":"city-vets","practice_id":1,"sub":"9","client_id":"tablet-9","permissions":["*"]}'
\set body '{"operations":[{"id":"c1","operation":"create","entityType":"clients","entityId":"temp_c1","data":{"name":"Carl Jones"}}]}'
\i sql/postgrest_request.psql

-- The real ids come from the identity range of the node that wrote the row:
-- Citus gives node group g the numbers from g * 2^48 + 1 (README "Scaling out").
SELECT 'happy-paws' AS tenant, id, id >> 48 AS node_group, name FROM tenant_happy_paws.clients
UNION ALL
SELECT 'city-vets', id, id >> 48, name FROM tenant_city_vets.clients ORDER BY 1;
-- Each change was captured on the tenant's own node, with the JWT's user and
-- device (the context travelled with the call); the ledger recorded each operation.
SELECT entity_type, operation, version, practice_id, user_id, client_id
  FROM tenant_happy_paws.sync_changes ORDER BY seq;
SELECT operation_id, entity_type, outcome, user_id FROM tenant_happy_paws.sync_ledger ORDER BY operation_id;
SELECT result FROM run_command_on_placements('tenant_happy_paws.sync_changes',
  $$SELECT count(*) || ' changes, written by node ' || (SELECT CASE WHEN groupid = 1 THEN 'worker1' ELSE 'other' END
    FROM pg_dist_local_group) FROM %s$$);

-- The vet's phone pulls: the first pull lists the live rows, parents first.
\set method GET
\set fn sync_pull
\set phone '{"role":"web_user","tenant_id":"happy-paws","practice_id":1,"sub":"7","client_id":"phone-7","permissions":["*"]}'
\set tablet '{"role":"web_user","tenant_id":"happy-paws","practice_id":1,"sub":"42","client_id":"tablet-1","permissions":["*"]}'
\set claims :phone
\set args '"entityTypes" := ''clients,pets,appointments'''
\i sql/postgrest_request.psql
SELECT :'pgrst_result'::jsonb ->> 'cursor' AS phone_cursor \gset
-- The tablet has its own cursor.
\set claims :tablet
\set args '"entityTypes" := ''appointments'''
\o /dev/null
\i sql/postgrest_request.psql
\o
SELECT :'pgrst_result'::jsonb ->> 'cursor' AS tablet_cursor \gset

-- The phone asks whether anything changed since its cursor (GET
-- /rpc/sync_changed, answered on the tenant's node against that node's
-- snapshot): nothing yet.
\set fn sync_changed
\set claims :phone
\set args '"entityTypes" := ''clients,pets,appointments'', "p_cursor" := ' :'phone_cursor'
\set shown_args '"entityTypes" := ''clients,pets,appointments'', "p_cursor" := ''<cursor>'''
\i sql/postgrest_request.psql

-- The tablet reschedules the appointment; the phone hears of it, and its next
-- pull brings it.
\set method POST
\set fn sync_push
\set claims :tablet
SELECT id AS appointment FROM tenant_happy_paws.appointments \gset
SELECT format('{"operations":[{"id":4,"operation":"update","entityType":"appointments","entityId":%s,"version":1,"data":{"date":"2024-11-11T09:00:00Z"}}]}', :appointment) AS body \gset
\i sql/postgrest_request.psql
\set method GET
\set fn sync_changed
\set claims :phone
\set args '"entityTypes" := ''clients,pets,appointments'', "p_cursor" := ' :'phone_cursor'
\set shown_args '"entityTypes" := ''clients,pets,appointments'', "p_cursor" := ''<cursor>'''
\i sql/postgrest_request.psql
\set fn sync_pull
\set claims :phone
\set args '"entityTypes" := ''clients,pets,appointments'', "p_cursor" := ' :'phone_cursor'
\set shown_args '"entityTypes" := ''clients,pets,appointments'', "p_cursor" := ''<cursor>'''
\i sql/postgrest_request.psql
SELECT :'pgrst_result'::jsonb ->> 'cursor' AS phone_cursor \gset

-- Meanwhile the phone, offline, had edited the notes of version 1: the
-- appointments' merge strategy settles it.  Then the date and the status, both
-- important, against the date the tablet changed: a stored conflict.
\set method POST
\set fn sync_push
SELECT format('{"operations":[{"id":"n1","operation":"update","entityType":"appointments","entityId":%s,"version":1,"timestamp":1699000000000,"data":{"notes":"bring the x-rays"}}]}', :appointment) AS body \gset
\i sql/postgrest_request.psql
SELECT format('{"operations":[{"id":"n2","operation":"update","entityType":"appointments","entityId":%s,"version":1,"timestamp":1699000000000,"data":{"date":"2024-11-12T09:00:00Z","status":"confirmed"}}]}', :appointment) AS body \gset
\i sql/postgrest_request.psql

-- The stored conflict, listed and resolved through the api.
\set method GET
\set fn list_conflicts
\set args ''
\i sql/postgrest_request.psql
SELECT (:'pgrst_result'::jsonb -> 'conflicts' -> 0 ->> 'conflictId') AS conflict_id \gset
\set method POST
\set fn resolve_conflict
SELECT format('{"conflict_id": %s, "strategy": "client-wins"}', :conflict_id) AS body \gset
\i sql/postgrest_request.psql
\set method GET
\set fn conflict_stats
\i sql/postgrest_request.psql
SELECT date, status, notes, version FROM tenant_happy_paws.appointments;

-- The tablet's next pull: the appointment as it is now, once (the merge and
-- the resolution collapsed into one change).
\set fn sync_pull
\set claims :tablet
\set args '"entityTypes" := ''appointments'', "p_cursor" := ' :'tablet_cursor'
\set shown_args '"entityTypes" := ''appointments'', "p_cursor" := ''<cursor>'''
\i sql/postgrest_request.psql
-- The phone's: nothing, its own writes are not sent back to it.
\set claims :phone
\set args '"entityTypes" := ''clients,pets,appointments'', "p_cursor" := ' :'phone_cursor'
\set shown_args '"entityTypes" := ''clients,pets,appointments'', "p_cursor" := ''<cursor>'''
\i sql/postgrest_request.psql
SELECT :'pgrst_result'::jsonb ->> 'cursor' AS phone_cursor \gset

-- City Vets sees only its own data, from its own worker.
\set claims '{"role":"web_user","tenant_id":"city-vets","practice_id":1,"sub":"9","client_id":"phone-9","permissions":["*"]}'
\set args '"entityTypes" := ''clients,appointments'''
\i sql/postgrest_request.psql

-- A receptionist's edit by direct SQL on the coordinator, in a transaction:
-- Citus carries SET LOCAL to the worker (citus.propagate_set_commands = local),
-- where capture records the receptionist as the change's user.
SET citus.propagate_set_commands = 'local';
BEGIN;
SET LOCAL smartsync.tenant_id = 'happy-paws';
SET LOCAL smartsync.user_id = 'reception-3';
UPDATE tenant_happy_paws.clients SET phone = '555-0100';
COMMIT;
RESET citus.propagate_set_commands;
SELECT entity_type, operation, version, user_id, client_id FROM tenant_happy_paws.sync_changes ORDER BY seq DESC LIMIT 1;
\set claims :phone
\set args '"entityTypes" := ''clients,pets,appointments'', "p_cursor" := ' :'phone_cursor'
\set shown_args '"entityTypes" := ''clients,pets,appointments'', "p_cursor" := ''<cursor>'''
\i sql/postgrest_request.psql

-- Calls of the SQL functions themselves (as @smartsync/server makes them) take
-- the same route, with the settings as the context.
SET smartsync.tenant_id = 'city-vets';
SET smartsync.practice_id = '1';
SET smartsync.client_id = 'server-1';
SET smartsync.user_id = 'admin';
SET smartsync.permissions = 'clients:*';
SELECT jsonb_array_length(smartsync.sync_pull(p_entity_types => 'clients') -> 'changes') AS city_vets_clients;
SELECT smartsync.sync_pull(p_entity_types => 'clients') ->> 'cursor' AS server_cursor \gset
SELECT smartsync.sync_changed(:'server_cursor', 'clients') AS changed;
SELECT smartsync.sync_push('{"operations":[{"id":"s1","operation":"create","entityType":"clients","entityId":"temp_s1","data":{"name":"Dora Kim"}}]}') ->> 'processed' AS processed;
-- (its own write is not sent back to this client: still nothing for it)
SELECT smartsync.sync_changed(:'server_cursor', 'clients') AS changed;
SELECT entity_type, operation, user_id, client_id FROM tenant_city_vets.sync_changes ORDER BY seq;
RESET smartsync.tenant_id;
RESET smartsync.practice_id;
RESET smartsync.client_id;
RESET smartsync.user_id;
RESET smartsync.permissions;
