-- Conflict policies: set_conflict_policy sets an entity type's default strategy and
-- the severities push resolves at once (auto_resolve, default {low}); push uses them.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS smartsync;

-- Memos: tag is metadata (low), title normal (medium), pinned important (high), body critical.
CREATE SCHEMA conflict_policy_tpl;
CREATE TABLE conflict_policy_tpl.cp_memos (id bigint PRIMARY KEY, title text, body text, tag text,
    pinned boolean NOT NULL DEFAULT false);
SELECT smartsync.register_entity_type('cp_memos', 'conflict_policy_tpl.cp_memos',
         field_classes => '{"tag": "metadata", "pinned": "important", "body": "critical"}');
SELECT smartsync.provision_tenant('conflict_policy', 'conflict_policy');

CREATE FUNCTION conflict_policy_tpl.try(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE m text; d text;
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL;
    RETURN SQLSTATE || ': ' || m || coalesce(' / ' || nullif(d, ''), '');
END $$;
-- Memo id gets a fresh row at version 1, the server changes every field (version 2), and the
-- client pushes data made at version 1: what push did with the conflict.
CREATE FUNCTION conflict_policy_tpl.clash(id int, data jsonb) RETURNS TABLE (severity text, outcome text,
    strategy text, winner text, stored boolean) LANGUAGE plpgsql AS $$
DECLARE r jsonb;
BEGIN
    INSERT INTO conflict_policy.cp_memos VALUES (id, 't', 'b', 'x', false);
    UPDATE conflict_policy.cp_memos m SET title = 'server t', body = 'server b', tag = 'server x', pinned = true
     WHERE m.id = clash.id;
    r := smartsync.sync_push(jsonb_build_object('operations', jsonb_build_array(jsonb_build_object(
           'id', id, 'operation', 'update', 'entityType', 'cp_memos', 'entityId', id, 'data', data, 'version', 1))))
         -> 'results' -> 0;
    RETURN QUERY SELECT r ->> 'severity', CASE WHEN r ? 'resolution' THEN 'resolved at push'
                                               WHEN r ->> 'conflict' = 'true' THEN 'stored' ELSE 'applied' END,
                        r #>> '{resolution,strategy}', r #>> '{resolution,winner}',
                        EXISTS (SELECT 1 FROM conflict_policy.sync_conflicts c WHERE c.entity_id = id::text);
END $$;

SET smartsync.tenant_id = 'conflict_policy';
SET smartsync.permissions = '*';   -- every write a push or a resolution makes needs its permission
SET smartsync.client_id = 'tablet';

-- The registry's defaults: manual, and low severity resolves automatically.
SELECT entity_type, default_strategy, auto_resolve FROM smartsync.entity_types WHERE entity_type = 'cp_memos';
SELECT * FROM conflict_policy_tpl.clash(1, '{"tag": "tablet x"}');
SELECT * FROM conflict_policy_tpl.clash(2, '{"title": "tablet t"}');
SELECT * FROM conflict_policy_tpl.clash(3, '{"pinned": false}');

-- Nothing resolves automatically: even a metadata-only conflict is stored.
SELECT smartsync.set_conflict_policy('cp_memos', auto_resolve => '{}');
SELECT * FROM conflict_policy_tpl.clash(4, '{"tag": "tablet x"}');

-- Low and medium resolve automatically (the client's change applies); high is still stored.
SELECT smartsync.set_conflict_policy('cp_memos', auto_resolve => '{medium,low,medium}');
SELECT * FROM conflict_policy_tpl.clash(5, '{"title": "tablet t"}');
SELECT title, version FROM conflict_policy.cp_memos WHERE id = 5;
SELECT * FROM conflict_policy_tpl.clash(6, '{"pinned": false}');

-- A default strategy decides what auto_resolve leaves: server-wins keeps the server's title;
-- a critical field is never overwritten by a strategy, so it is stored.
SELECT smartsync.set_conflict_policy('cp_memos', default_strategy => 'server-wins', auto_resolve => '{low}');
SELECT * FROM conflict_policy_tpl.clash(7, '{"title": "tablet t"}');
SELECT title, version FROM conflict_policy.cp_memos WHERE id = 7;
SELECT * FROM conflict_policy_tpl.clash(8, '{"body": "tablet b"}');

-- NULL keeps a value.
SELECT smartsync.set_conflict_policy('cp_memos');
SELECT smartsync.set_conflict_policy('cp_memos', default_strategy => 'manual');

-- Refused: unknown type, strategy or severity; critical never resolves automatically.
SELECT conflict_policy_tpl.try('SELECT smartsync.set_conflict_policy(''no_such_type'', ''merge'')');
SELECT conflict_policy_tpl.try('SELECT smartsync.set_conflict_policy(''cp_memos'', ''ours'')');
SELECT conflict_policy_tpl.try('SELECT smartsync.set_conflict_policy(''cp_memos'', auto_resolve => ''{low,urgent}'')');
SELECT conflict_policy_tpl.try('SELECT smartsync.set_conflict_policy(''cp_memos'', auto_resolve => ''{critical}'')');
SELECT conflict_policy_tpl.try('SELECT smartsync.set_conflict_policy(''cp_memos'', auto_resolve => ''{NULL}'')');
SELECT entity_type, default_strategy, auto_resolve FROM smartsync.entity_types WHERE entity_type = 'cp_memos';
-- re-registering the type keeps its auto_resolve
SELECT smartsync.set_conflict_policy('cp_memos', auto_resolve => '{low,high}');
SELECT smartsync.register_entity_type('cp_memos', 'conflict_policy_tpl.cp_memos',
         field_classes => '{"tag": "metadata", "pinned": "important", "body": "critical"}');
SELECT entity_type, default_strategy, auto_resolve FROM smartsync.entity_types WHERE entity_type = 'cp_memos';
-- not for PUBLIC
SELECT has_function_privilege('public', 'smartsync.set_conflict_policy(text, text, text[])', 'EXECUTE') AS public_may_set;

-- A stored conflict of the policy test, resolved by hand.
SELECT smartsync.resolve_conflict((SELECT conflict_id FROM conflict_policy.sync_conflicts WHERE entity_id = '2'),
                                  'client-wins') #>> '{data,title}' AS title;

RESET ALL;
SET client_min_messages = warning;
DROP SCHEMA conflict_policy CASCADE;
DELETE FROM smartsync.tenants WHERE tenant_id = 'conflict_policy';
SELECT smartsync.unregister_entity_type('cp_memos');
DROP SCHEMA conflict_policy_tpl CASCADE;
