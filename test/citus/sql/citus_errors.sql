-- Where a call runs, and what is refused (README "Scaling out").
SELECT citus_t.node_of('happy-paws') AS happy_paws, citus_t.node_of('city-vets') AS city_vets;
SELECT nodeport AS worker2 FROM citus_t.nodes WHERE node = 'worker2' \gset
\set coordinator_host :HOST
\set coordinator_port :PORT
SELECT smartsync.http_status('SS851') AS ss851, smartsync.http_status('SS852') AS ss852,
       smartsync.http_status('SS853') AS ss853;

-- Citus lets clients query from any node: a worker routes too.  On worker2,
-- happy-paws' pull runs on worker1, city-vets' here.
\c - - 127.0.0.1 :worker2
SET smartsync.tenant_id = 'happy-paws';
SELECT jsonb_array_length(smartsync.sync_pull(p_entity_types => 'clients') -> 'changes') AS happy_paws_clients;
SET smartsync.tenant_id = 'city-vets';
SELECT jsonb_array_length(smartsync.sync_pull(p_entity_types => 'clients') -> 'changes') AS city_vets_clients;
-- On the node that holds the tenant, a call (direct, or routed: _citus_call)
-- holds it until it returns, and its statements address the tenant's shards
-- directly: Citus' local execution, which citus.log_local_commands would report
-- statement by statement, is not used.  (The node looked the tenant up by the
-- first call above.)
SET citus.log_local_commands = on;
SELECT octet_length(smartsync._citus_call('{"smartsync.tenant_id": "city-vets"}',
         'smartsync.sync_pull(text,text,text,text,integer)', '{NULL,NULL,NULL,NULL,NULL}')) > 0 AS routed_pull_answered;
SET smartsync.practice_id = '1';
SET smartsync.client_id = 'worker2-direct';
SET smartsync.user_id = 'admin';
SET smartsync.permissions = 'clients:*';
SELECT smartsync.sync_push('{"operations":[{"id":"w2","operation":"create","entityType":"clients","entityId":"temp_w2","data":{"name":"Eve Ray"}}]}') ->> 'processed' AS processed;
RESET smartsync.practice_id;
RESET smartsync.client_id;
RESET smartsync.user_id;
RESET smartsync.permissions;
RESET citus.log_local_commands;
SELECT operation, user_id, client_id FROM tenant_city_vets.sync_changes WHERE client_id = 'worker2-direct';

-- A call that reaches a node without the tenant's data refuses (SS851, HTTP
-- 503: retry) instead of reading a log that is not there: here worker2 gets
-- happy-paws' pull as if it had been routed to it (the tenant moved meanwhile).
-- (worker2's own copy of Citus' metadata agrees that happy-paws is elsewhere)
SELECT bool_and(p.groupid <> (SELECT groupid FROM pg_dist_local_group)) AS happy_paws_elsewhere,
       count(*) AS placements
  FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid)
 WHERE s.logicalrelid = 'tenant_happy_paws.sync_changes'::regclass;
\set VERBOSITY sqlstate
SELECT smartsync._citus_call('{"smartsync.tenant_id": "happy-paws"}',
         'smartsync.sync_pull(text,text,text,text,integer)', '{NULL,NULL,NULL,NULL,NULL}');
\set VERBOSITY default
SELECT smartsync._citus_call('{"smartsync.tenant_id": "happy-paws"}',
         'smartsync.sync_pull(text,text,text,text,integer)', '{NULL,NULL,NULL,NULL,NULL}');
-- It runs only smartsync's routable functions, with request-context settings.
\set VERBOSITY terse
SELECT smartsync._citus_call('{"smartsync.tenant_id": "city-vets"}', 'smartsync.setup_postgrest(text,name,name,name)', '{NULL,anon,web_user,api}');
SELECT smartsync._citus_call('{"search_path": "evil"}', 'smartsync.conflict_stats()', '{}');
-- (it answers with the bytes of the function's jsonb: the calling node rebuilds it)
SELECT octet_length(smartsync._citus_call('{"smartsync.tenant_id": "city-vets"}', 'smartsync.conflict_stats()', '{}')) > 0 AS answered;
-- smartsync.citus_setup() runs on the coordinator only (SS852).
SELECT smartsync.citus_setup();
\set VERBOSITY default
\c - - :coordinator_host :coordinator_port
RESET smartsync.tenant_id;

-- The change signal's poll compares one node's snapshots with a change log's
-- transaction ids: it refuses a tenant whose log Citus holds on a worker
-- (SS853) instead of reporting no change.  sync_changed, routed like the pull,
-- is the way to ask on Citus.
SELECT smartsync.poll_changes(NULL, '{}') ->> 'changes' AS first_poll;
\set VERBOSITY sqlstate
SELECT smartsync.poll_changes(smartsync.poll_changes(NULL, '{}') ->> 'watermark', '{city-vets}');
\set VERBOSITY default
SELECT smartsync.poll_changes(smartsync.poll_changes(NULL, '{}') ->> 'watermark', '{city-vets}');
