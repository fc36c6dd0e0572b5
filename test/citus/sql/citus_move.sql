-- A tenant moves to another node (citus_schema_move, as the rebalancer does):
-- a device's old cursor gets must-refetch (410), never a gap; the change log is
-- adopted by the new node before it records a change there.
\set ECHO none
\i sql/postgrest_helpers.psql
\set ECHO all
\set phone '{"role":"web_user","tenant_id":"happy-paws","practice_id":1,"sub":"7","client_id":"phone-7","permissions":["*"]}'
\set tablet '{"role":"web_user","tenant_id":"happy-paws","practice_id":1,"sub":"42","client_id":"tablet-1","permissions":["*"]}'
SELECT citus_t.node_of('happy-paws') AS node, citus_t.log_origin('happy-paws') AS log;

-- The phone is up to date: its cursor was issued by worker1.
\set method GET
\set fn sync_pull
\set claims :phone
\set args '"entityTypes" := ''clients'''
\o /dev/null
\i sql/postgrest_request.psql
\o
SELECT :'pgrst_result'::jsonb ->> 'cursor' AS old_cursor \gset

-- The tenant moves to worker2 while the clinic works.
SELECT citus_t.move('happy-paws', 'worker2') AS node;
-- Its log still holds worker1's transaction ids: not adopted yet.
SELECT citus_t.log_origin('happy-paws') AS log;

-- The old cursor: must refetch (HTTP 410), because transaction ids of worker1
-- mean nothing on worker2.
\set args '"entityTypes" := ''clients'', "p_cursor" := ' :'old_cursor'
\set shown_args '"entityTypes" := ''clients'', "p_cursor" := ''<cursor>'''
\i sql/postgrest_request.psql
-- sync_changed says the same of it.
\set fn sync_changed
\set shown_args '"entityTypes" := ''clients'', "p_cursor" := ''<cursor>'''
\i sql/postgrest_request.psql
\set fn sync_pull
-- So does a pull by time, until the log is adopted.
\set args '"entityTypes" := ''clients'', "lastSyncTimestamp" := ''1699000000000'''
\i sql/postgrest_request.psql
-- Without a cursor: the live rows, and a cursor of worker2.
\set args '"entityTypes" := ''clients'''
\i sql/postgrest_request.psql
SELECT :'pgrst_result'::jsonb ->> 'cursor' AS new_cursor \gset
-- With it, before the log is adopted: nothing from the log (no change was made
-- on worker2 yet), the cursor kept as it is.
\set args '"entityTypes" := ''clients'', "p_cursor" := ' :'new_cursor'
\set shown_args '"entityTypes" := ''clients'', "p_cursor" := ''<cursor>'''
\i sql/postgrest_request.psql
SELECT (:'pgrst_result'::jsonb ->> 'cursor') = :'new_cursor' AS cursor_kept;
-- sync_changed agrees: nothing to pull.
\set fn sync_changed
\set shown_args '"entityTypes" := ''clients'', "p_cursor" := ''<cursor>'''
\i sql/postgrest_request.psql

-- The tablet's next push is the first change on worker2: the log is adopted
-- first (its rows renumbered below everything worker2 writes, in their order).
\set method POST
\set fn sync_push
\set claims :tablet
SELECT id AS client FROM tenant_happy_paws.clients \gset
SELECT format('{"operations":[{"id":"m1","operation":"update","entityType":"clients","entityId":%s,"version":2,"data":{"email":"ann@example.com"}},{"id":"m2","operation":"create","entityType":"clients","entityId":"temp_c2","data":{"name":"Ben Moss"}}]}', :client) AS body \gset
\i sql/postgrest_request.psql
SELECT citus_t.log_origin('happy-paws') AS log;
SELECT xid = '1' AS adopted_row, count(*) AS changes, min(seq) < 0 AS below_zero,
       min(version) AS min_version, max(version) AS max_version
  FROM tenant_happy_paws.sync_changes GROUP BY 1 ORDER BY 1;
SELECT (SELECT max(seq) FROM tenant_happy_paws.sync_changes WHERE xid = '1')
     < (SELECT min(seq) FROM tenant_happy_paws.sync_changes WHERE xid <> '1') AS adopted_rows_first;
-- The new client's id comes from worker2's range now.
SELECT name, id >> 48 AS node_group FROM tenant_happy_paws.clients ORDER BY id;

-- The phone hears of them (sync_changed), and its new cursor brings exactly the
-- tablet's two changes.
\set method GET
\set fn sync_changed
\set claims :phone
\set args '"entityTypes" := ''clients'', "p_cursor" := ' :'new_cursor'
\set shown_args '"entityTypes" := ''clients'', "p_cursor" := ''<cursor>'''
\i sql/postgrest_request.psql
\set fn sync_pull
\set args '"entityTypes" := ''clients'', "p_cursor" := ' :'new_cursor'
\set shown_args '"entityTypes" := ''clients'', "p_cursor" := ''<cursor>'''
\i sql/postgrest_request.psql
SELECT :'pgrst_result'::jsonb ->> 'cursor' AS new_cursor \gset
-- A device that edited version 2 before the move pushes now: the conflict has
-- its base version from the adopted log, and a three-way merge resolves it.
\set method POST
\set fn sync_push
SELECT format('{"operations":[{"id":"m3","operation":"update","entityType":"clients","entityId":%s,"version":2,"timestamp":1699000000000,"data":{"notes":"prefers mornings"}}]}', :client) AS body \gset
\o /dev/null
\i sql/postgrest_request.psql
\o
SELECT conflict_id, base_version, base_data ->> 'phone' AS base_phone, server_version
  FROM tenant_happy_paws.sync_conflicts WHERE operation_id = 'm3' \gset
SELECT :base_version AS base_version, :'base_phone' AS base_phone, :server_version AS server_version;
SET smartsync.tenant_id = 'happy-paws';
SET smartsync.permissions = 'clients:update';
SELECT r ->> 'winner' AS winner, r -> 'data' ->> 'email' AS email, r -> 'data' ->> 'notes' AS notes
  FROM smartsync.resolve_conflict(:conflict_id, 'merge') AS r;
RESET smartsync.tenant_id;
RESET smartsync.permissions;

-- And back to worker1 (a rebalance undone): cursors of worker2 must refetch,
-- also on worker1, whose own old transaction ids came back with the log.
SELECT citus_t.move('happy-paws', 'worker1') AS node;
\set method GET
\set fn sync_pull
\set args '"entityTypes" := ''clients'', "p_cursor" := ' :'new_cursor'
\set shown_args '"entityTypes" := ''clients'', "p_cursor" := ''<cursor>'''
\i sql/postgrest_request.psql
\set args '"entityTypes" := ''clients'', "p_cursor" := ' :'old_cursor'
\set shown_args '"entityTypes" := ''clients'', "p_cursor" := ''<cursor>'''
\i sql/postgrest_request.psql
-- An administrator adopts the log at once instead of waiting for a write.
SELECT smartsync.citus_adopt_log('happy-paws') AS epoch;
SELECT citus_t.log_origin('happy-paws') AS log;
SELECT smartsync.citus_adopt_log('happy-paws') AS epoch;
\set args '"entityTypes" := ''clients'''
\o /dev/null
\i sql/postgrest_request.psql
\o
SELECT :'pgrst_result'::jsonb ->> 'cursor' AS cursor \gset
UPDATE tenant_happy_paws.clients SET phone = '555-0199' WHERE name = 'Ben Moss';
\set args '"entityTypes" := ''clients'', "p_cursor" := ' :'cursor'
\set shown_args '"entityTypes" := ''clients'', "p_cursor" := ''<cursor>'''
\i sql/postgrest_request.psql

-- An unknown tenant: SS203.
\set VERBOSITY terse
SELECT smartsync.citus_adopt_log('nobody');
\set VERBOSITY default

-- Retention works the same on a worker: prune_changes (run on the coordinator)
-- deletes on the tenant's node and records that node's transaction ids, so a
-- cursor from before the pruning gets must-refetch.
SELECT smartsync.prune_changes('happy-paws', interval '0') > 0 AS pruned;
\set args '"entityTypes" := ''clients'', "p_cursor" := ' :'cursor'
\set shown_args '"entityTypes" := ''clients'', "p_cursor" := ''<cursor>'''
\i sql/postgrest_request.psql
