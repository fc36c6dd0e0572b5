-- Upgrading brings existing tenant schemas along: a change log made by 0.2.0
-- gets its entity keys and the (entity_key, seq) index, stamp_row learns the
-- practice column, and what was logged before the upgrade still serves pull
-- and the rebuilding of old versions.  Runs in a database of its own.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS smartsync;
SELECT current_database() AS regress_db \gset
DROP DATABASE IF EXISTS smartsync_upgrade_log;
CREATE DATABASE smartsync_upgrade_log;
\c smartsync_upgrade_log
SET client_min_messages = warning;

CREATE EXTENSION smartsync VERSION '0.2.0';
CREATE SCHEMA ul_tpl;
CREATE TABLE ul_tpl.pets (id bigint PRIMARY KEY, practice_id int NOT NULL, name text NOT NULL, weight numeric);
SELECT smartsync.register_entity_type('pets', 'ul_tpl.pets', practice_column => 'practice_id');
SELECT smartsync.provision_tenant('ul');
-- written before the upgrade (0.2.0's capture logged an update with the whole
-- row: the row for version 2 is made so here)
INSERT INTO tenant_ul.pets VALUES (1, 1, 'Rex', 10), (2, 1, 'Tom', 4);
UPDATE tenant_ul.pets SET weight = 11 WHERE id = 1;
UPDATE tenant_ul.sync_changes c SET data = to_jsonb(p) FROM tenant_ul.pets p
 WHERE c.entity_id = '1' AND c.version = 2 AND p.id = 1;
DELETE FROM tenant_ul.pets WHERE id = 2;
-- and two stored conflicts, one resolved
INSERT INTO tenant_ul.sync_conflicts (entity_type, entity_id, operation, practice_id, conflict_type, severity, status)
VALUES ('pets', '1', 'update', '1', 'version', 'medium', 'open'), ('pets', '2', 'update', '1', 'version', 'low', 'resolved');
SET smartsync.tenant_id = 'ul';
SET smartsync.practice_id = '1';
SELECT smartsync.sync_pull() ->> 'cursor' AS c0 \gset
UPDATE tenant_ul.pets SET name = 'Rex II' WHERE id = 1;
RESET smartsync.practice_id;

ALTER EXTENSION smartsync UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'smartsync';

-- every old log row is keyed; the index is the new one
SELECT count(*) AS rows, count(*) FILTER (WHERE entity_key = smartsync.entity_key(entity_type, entity_id)) AS keyed
  FROM tenant_ul.sync_changes;
SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'tenant_ul' AND tablename = 'sync_changes' ORDER BY 1;
SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'tenant_ul.pets'::regclass AND tgname = 'smartsync_stamp';
-- row-level security: each policy states its condition once (no WITH CHECK repeating it)
SELECT polrelid::regclass, polname, polwithcheck IS NULL AS using_only FROM pg_policy
 WHERE polrelid IN ('tenant_ul.pets'::regclass, 'tenant_ul.sync_changes'::regclass) ORDER BY 1, 2;

-- the conflict store's counts are made from what it holds
SELECT smartsync.conflict_stats() - 'oldestOpenAt' AS stats;

-- the tenant's tables stay the tenant's: none belongs to the extension
SELECT count(*) AS extension_members FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
 WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
   AND c.relnamespace = 'tenant_ul'::regnamespace;

-- new writes log as 0.3.0 does: an update the columns it set, a move a delete and a create
UPDATE tenant_ul.pets SET weight = 12 WHERE id = 1;
INSERT INTO tenant_ul.pets VALUES (3, 1, 'Kit', 3);
UPDATE tenant_ul.pets SET practice_id = 2 WHERE id = 3;
SELECT entity_id, operation, version, practice_id, data - 'updated_at' AS data
  FROM tenant_ul.sync_changes ORDER BY seq;

-- the row at each version, rebuilt from the old whole rows and the new updates
SELECT v, smartsync.row_at_version('ul', 'pets', '1', v) - 'updated_at' AS rex
  FROM generate_series(1, 4) v;

-- a cursor issued before the upgrade continues exactly
SET smartsync.practice_id = '1';
SELECT string_agg(format('%s %s %s v%s', c->>'entityType', c->>'operation', c->'id', c->>'version'), ', ')
         AS changes
  FROM jsonb_array_elements(smartsync.sync_pull(p_cursor => :'c0')->'changes') c;
RESET smartsync.practice_id;
RESET smartsync.tenant_id;

\c :regress_db
DROP DATABASE smartsync_upgrade_log;
