-- Push: apply a batch of offline operations exactly once (src/push.c, pushapply.c, pushledger.c).

CREATE FUNCTION smartsync.sync_push(jsonb)
RETURNS jsonb
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'smartsync_sync_push';
COMMENT ON FUNCTION smartsync.sync_push(jsonb) IS
'POST /api/sync/push: apply {"operations":[...]} exactly once per (client, operation id), parents first, temporary ids mapped, conflicts detected, resolved or stored; returns {"success","processed","failed","conflicts","results"}; "atomic": true for all-or-nothing';
