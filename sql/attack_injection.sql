-- SQL in names.  Entity types, field names, filters, parameters and claims that
-- carry SQL are data to smartsync: an unknown name is refused with its SQLSTATE,
-- identifiers are always quoted, values always bound as parameters.  Nothing is
-- executed, read or written.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS smartsync;
\set ECHO none
\o /dev/null
SELECT to_regnamespace('vet_template') IS NULL AS need_vet \gset
\if :need_vet
\i examples/vet_schema.sql
\endif
SELECT smartsync.provision_tenant('atk-inj', 'atk_inj');
SELECT smartsync.setup_postgrest();
\o
RESET client_min_messages;
\set ECHO all
\i sql/postgrest_helpers.psql
INSERT INTO atk_inj.clients (id, practice_id, name) VALUES (1, 1, 'Ann');
CREATE TABLE atk_inj_canary (n int);
GRANT ALL ON atk_inj_canary TO PUBLIC;
SELECT (SELECT count(*) FROM atk_inj.sync_changes) AS changes_before, (SELECT count(*) FROM atk_inj.sync_ledger) AS ledger_before \gset

\set claims '{"role":"web_user","tenant_id":"atk-inj","practice_id":1,"sub":"1","client_id":"tab","permissions":["clients:create","clients:update","clients:delete"]}'
\set method POST
\set fn sync_push

-- An entity type carrying SQL: the whole push is refused (400).
\set body '{"operations":[{"id":"i-1","operation":"create","entityType":"clients; DROP TABLE atk_inj.clients; --","data":{"name":"x"}}]}'
\i sql/postgrest_request.psql
\set body '{"operations":[{"id":"i-2","operation":"create","entityType":"clients\\" (name) VALUES (''x''); DROP TABLE atk_inj_canary; --","data":{"name":"x"}}]}'
\i sql/postgrest_request.psql
\set body '{"operations":[{"id":"i-3","operation":"create","entityType":"atk_inj.clients","data":{"name":"x"}}]}'
\i sql/postgrest_request.psql

-- Field names carrying SQL: the operation is refused (SS422 in its result).
\set body '{"operations":[{"id":"i-4","operation":"create","entityType":"clients","data":{"name":"x","practice_id) VALUES (2); DROP TABLE atk_inj_canary; --":1}},{"id":"i-5","operation":"update","entityType":"clients","entityId":1,"data":{"name = ''pwned'', practice_id":2},"version":1},{"id":"i-6","operation":"create","entityType":"clients","data":{"name\\"; DROP TABLE atk_inj_canary; --":"x"}}]}'
\i sql/postgrest_request.psql

-- An entity id carrying SQL is a value: no such row, nothing changed.
\set body '{"operations":[{"id":"i-7","operation":"delete","entityType":"clients","entityId":"1 OR 1=1","version":1},{"id":"i-8","operation":"update","entityType":"clients","entityId":"1; DELETE FROM atk_inj.clients","data":{"name":"y"},"version":1}]}'
\i sql/postgrest_request.psql

-- A tenant claim carrying SQL: an unknown tenant (403).
\set claims '{"role":"web_user","tenant_id":"atk-inj''; DROP SCHEMA atk_inj CASCADE; --","client_id":"tab"}'
\set body '{"operations":[]}'
\i sql/postgrest_request.psql

-- Pull filters and parameters carrying SQL.
\set claims '{"role":"web_user","tenant_id":"atk-inj","practice_id":1,"sub":"1","client_id":"tab"}'
\set method GET
\set fn sync_pull
\set args '"entityTypes" := ''clients'''') OR true --'''
\i sql/postgrest_request.psql
\set args '"p_entity_types" := ''clients,pets; DROP TABLE atk_inj_canary'''
\i sql/postgrest_request.psql
\set args '"practiceId" := ''1 OR 1=1'''
\i sql/postgrest_request.psql
\set args '"lastSyncTimestamp" := ''0; DROP TABLE atk_inj_canary'''
\i sql/postgrest_request.psql
\set args '"p_cursor" := '''''' OR 1=1 --'''
\i sql/postgrest_request.psql

-- Everything is still there, and nothing was written but the one acknowledged
-- ledger entry per refused operation (i-4 .. i-8).
SELECT to_regclass('atk_inj_canary') IS NOT NULL AS canary_alive, to_regclass('atk_inj.clients') IS NOT NULL AS clients_alive;
SELECT id, name, practice_id, version FROM atk_inj.clients ORDER BY id;
SELECT count(*) - :changes_before AS new_changes FROM atk_inj.sync_changes;
SELECT operation_id, outcome, error_code FROM atk_inj.sync_ledger ORDER BY operation_id;
DROP TABLE atk_inj_canary;
