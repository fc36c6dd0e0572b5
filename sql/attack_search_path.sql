-- search_path hijacking.  Objects that shadow what smartsync uses (tables named
-- like its registry and sync tables, functions and operators named like the
-- built-ins it calls) in schemas a caller can put on its search_path, and in the
-- caller's temporary schema, change nothing: the api functions pin
-- search_path = pg_catalog, pg_temp and every name in them is schema-qualified;
-- row-level security policies are stored parsed, with their functions' oids.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS smartsync;
\set ECHO none
\o /dev/null
SELECT to_regnamespace('vet_template') IS NULL AS need_vet \gset
\if :need_vet
\i examples/vet_schema.sql
\endif
SELECT smartsync.provision_tenant('atk-sp-a', 'atk_sp_a');
SELECT smartsync.provision_tenant('atk-sp-b', 'atk_sp_b');
SELECT smartsync.setup_postgrest();
\o
RESET client_min_messages;
\set ECHO all
\i sql/postgrest_helpers.psql
INSERT INTO atk_sp_a.clients (id, practice_id, name) VALUES (1, 1, 'A-Ann');
INSERT INTO atk_sp_b.clients (id, practice_id, name) VALUES (1, 1, 'B-Secret');

-- The attacker's schema, on the path PostgREST sets ("api", "public"): as if
-- public were writable by everyone (PostgreSQL 14 and older grant CREATE on it).
-- Every shadow raises when called, and its tables point at the other tenant.
CREATE SCHEMA atk_sp_evil;
CREATE TABLE atk_sp_evil.tenants (tenant_id text, schema_name name);
INSERT INTO atk_sp_evil.tenants VALUES ('atk-sp-a', 'atk_sp_b');
CREATE TABLE atk_sp_evil.entity_types (LIKE smartsync.entity_types);
CREATE TABLE atk_sp_evil.sync_changes (LIKE atk_sp_b.sync_changes);
CREATE TABLE atk_sp_evil.sync_ledger (LIKE atk_sp_b.sync_ledger);
CREATE FUNCTION atk_sp_evil.hijacked() RETURNS text LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'hijacked'; END $$;
CREATE FUNCTION atk_sp_evil.current_setting(text, boolean) RETURNS text LANGUAGE sql AS 'SELECT atk_sp_evil.hijacked()';
CREATE FUNCTION atk_sp_evil.current_setting(text) RETURNS text LANGUAGE sql AS 'SELECT atk_sp_evil.hijacked()';
CREATE FUNCTION atk_sp_evil.jsonb_typeof(jsonb) RETURNS text LANGUAGE sql AS 'SELECT atk_sp_evil.hijacked()';
CREATE FUNCTION atk_sp_evil.format(text, VARIADIC "any") RETURNS text LANGUAGE sql AS 'SELECT atk_sp_evil.hijacked()';
CREATE FUNCTION atk_sp_evil.to_jsonb(anyelement) RETURNS jsonb LANGUAGE sql AS 'SELECT atk_sp_evil.hijacked()::jsonb';
CREATE FUNCTION atk_sp_evil.now() RETURNS timestamptz LANGUAGE sql AS 'SELECT atk_sp_evil.hijacked()::timestamptz';
CREATE FUNCTION atk_sp_evil.text_eq(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT atk_sp_evil.hijacked() IS NULL';
CREATE OPERATOR atk_sp_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = atk_sp_evil.text_eq);
CREATE FUNCTION atk_sp_evil.current_tenant_id() RETURNS text LANGUAGE sql AS $$SELECT 'atk-sp-b'$$;
GRANT USAGE ON SCHEMA atk_sp_evil TO PUBLIC;
GRANT SELECT ON ALL TABLES IN SCHEMA atk_sp_evil TO PUBLIC;

-- Requests of tenant A with the attacker's schema on the path PostgREST sets,
-- before pg_catalog (as with db-extra-search-path = "atk_sp_evil, pg_catalog").
\set claims '{"role":"web_user","tenant_id":"atk-sp-a","practice_id":1,"sub":"1","client_id":"a-tablet","permissions":["clients:create","clients:read"]}'
\set pgrst_search_path '"api", "atk_sp_evil", "pg_catalog"'
SELECT (SELECT count(*) FROM atk_sp_b.sync_changes) AS b_changes_before, (SELECT count(*) FROM atk_sp_b.sync_ledger) AS b_ledger_before \gset

-- The web role also shadows tables in its temporary schema, which is searched
-- first for tables when a path does not name it.
SET ROLE web_user;
CREATE TEMP TABLE tenants (tenant_id text, schema_name name);
INSERT INTO tenants VALUES ('atk-sp-a', 'atk_sp_b');
CREATE TEMP TABLE sync_changes (LIKE atk_sp_evil.sync_changes);
CREATE TEMP TABLE clients (id bigint, practice_id int, name text);
RESET ROLE;

-- POST /rpc/sync_push: written to A's tables, and only there.
\set method POST
\set fn sync_push
\set body '{"operations":[{"id":"p-1","operation":"create","entityType":"clients","entityId":"temp_1","data":{"name":"A-Pushed"}}]}'
\i sql/postgrest_request.psql
-- GET /rpc/sync_pull: A's rows, not B's.
\set method GET
\set fn sync_pull
\set args '"entityTypes" := ''clients'''
\i sql/postgrest_request.psql

-- The same calls in a session whose search_path the web role set itself.
SET ROLE web_user;
SET search_path = pg_temp, atk_sp_evil, pg_catalog;
SELECT set_config('request.jwt.claims', :'claims', false) IS NOT NULL AS claims_set;
-- the shadows are live: an unqualified call in this session reaches them
SELECT current_setting('request.jwt.claims', true);
SELECT jsonb_path_query_array(api.sync_pull(p_entity_types => 'clients'), '$.changes[*].data.name') AS names;
SELECT api.sync_push('{"operations":[{"id":"p-2","operation":"create","entityType":"clients","data":{"name":"A-Pushed-2"}}]}') -> 'processed' AS processed;
SELECT count(*) AS temp_tenants, (SELECT count(*) FROM pg_temp.sync_changes) AS temp_changes,
       (SELECT count(*) FROM pg_temp.clients) AS temp_clients FROM pg_temp.tenants;
SELECT set_config('request.jwt.claims', '', false) IS NOT NULL AS claims_reset;
RESET search_path;
RESET ROLE;
\set pgrst_search_path '"api", "public"'

-- Nothing went to B or to the shadow tables; A has both pushes.
SELECT 'atk_sp_a' AS schema, string_agg(name, ', ' ORDER BY id) AS clients FROM atk_sp_a.clients
UNION ALL SELECT 'atk_sp_b', string_agg(name, ', ' ORDER BY id) FROM atk_sp_b.clients;
SELECT (SELECT count(*) FROM atk_sp_b.sync_changes) - :b_changes_before AS b_new_changes,
       (SELECT count(*) FROM atk_sp_b.sync_ledger) - :b_ledger_before AS b_new_ledger,
       (SELECT count(*) FROM atk_sp_evil.sync_changes) AS evil_changes, (SELECT count(*) FROM atk_sp_evil.sync_ledger) AS evil_ledger;

-- The policies hold the oid of smartsync.current_tenant_id(), not its name: the
-- shadow atk_sp_evil.current_tenant_id() (it answers atk-sp-b) is never called.
SET ROLE smartsync_api;
SET search_path = atk_sp_evil, pg_catalog;
SELECT set_config('request.jwt.claims', '{"tenant_id":"atk-sp-a"}', false) IS NOT NULL AS claims_set;
SELECT (SELECT count(*) FROM atk_sp_a.clients) AS a_clients, (SELECT count(*) FROM atk_sp_b.clients) AS b_clients;
SELECT set_config('request.jwt.claims', '', false) IS NOT NULL AS claims_reset;
RESET search_path;
RESET ROLE;

SET client_min_messages = warning;
DROP SCHEMA atk_sp_evil CASCADE;
RESET client_min_messages;
