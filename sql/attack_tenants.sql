-- Attacks on tenant isolation.  Two clinics, atk-a and atk-b, share the
-- database.  Whatever a web request of clinic A does, it reads nothing of B and
-- writes nothing of B: the api checks the JWT's tenant, and below the api the
-- tables themselves refuse (row-level security, privileges), even for the role
-- that runs the api code.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS smartsync;
\set ECHO none
\o /dev/null
SELECT to_regnamespace('vet_template') IS NULL AS need_vet \gset
\if :need_vet
\i examples/vet_schema.sql
\endif
SELECT smartsync.provision_tenant('atk-a', 'atk_a');
SELECT smartsync.provision_tenant('atk-b', 'atk_b');
SELECT smartsync.setup_postgrest();
\o
RESET client_min_messages;
\set ECHO all
\i sql/postgrest_helpers.psql
-- A statement's outcome as SQLSTATE: message.
CREATE FUNCTION pg_temp.try(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'ok';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM; END $$;

-- Each clinic's data.
INSERT INTO atk_a.clients (id, practice_id, name, email) VALUES (101, 1, 'A-Ann', 'ann@a.example'), (102, 2, 'A-Bob (practice 2)', NULL);
INSERT INTO atk_b.clients (id, practice_id, name, email) VALUES (101, 1, 'B-Secret', 'secret@b.example');

\set claims_a '{"role":"web_user","tenant_id":"atk-a","practice_id":1,"sub":"1","client_id":"a-tablet","permissions":["clients:create","clients:update","clients:read"]}'
\set claims_b '{"role":"web_user","tenant_id":"atk-b","practice_id":1,"sub":"9","client_id":"b-tablet","permissions":["clients:create","clients:update","clients:read"]}'

-- Clinic B's tablet edits its client offline while the server changed it too:
-- a conflict B's staff must resolve (clients resolve manually).
UPDATE atk_b.clients SET email = 'new@b.example' WHERE id = 101;
\set method POST
\set fn sync_push
\set claims :claims_b
\set body '{"operations":[{"id":"b-1","operation":"update","entityType":"clients","entityId":101,"data":{"email":"mine@b.example"},"version":1}]}'
\i sql/postgrest_request.psql
-- ... and B's pull cursor.
\set method GET
\set fn sync_pull
\set args '"p_limit" := ''10'''
\i sql/postgrest_request.psql
SELECT :'pgrst_result'::jsonb ->> 'cursor' AS cursor_b \gset
-- What B's tables hold now.
CREATE FUNCTION pg_temp.digest(t text) RETURNS text LANGUAGE sql AS $$
  SELECT (xpath('/row/d/text()', query_to_xml(format(
    'SELECT count(*) || '' rows '' || md5(coalesce(string_agg(x::text, ''|'' ORDER BY x::text), '''')) AS d FROM %s x', t),
    false, true, '')))[1]::text $$;
CREATE TABLE attack_tenants_before AS
  SELECT 'atk_b.' || relname AS t, pg_temp.digest('atk_b.' || relname) AS d
    FROM pg_class WHERE relnamespace = 'atk_b'::regnamespace AND relkind = 'r';

-- 1. Cross-tenant read through the api: A's pull lists A's rows only.
\set claims :claims_a
\set args '"entityTypes" := ''clients'''
\i sql/postgrest_request.psql

-- 2. Pull with B's cursor and A's JWT: refused, 403, nothing of B.
\set args '"p_cursor" := ' :'cursor_b'
\set shown_args '"p_cursor" := ''<cursor of atk-b>'''
\i sql/postgrest_request.psql

-- 3. A forged tenant id in the payload: the JWT decides; the operation naming
-- another tenant is refused (403 inside the result), nothing is written anywhere.
\set method POST
\set fn sync_push
\set body '{"operations":[{"id":"f-1","operation":"create","entityType":"clients","data":{"name":"Mallory"},"tenantId":"atk-b"},{"id":"f-2","operation":"update","entityType":"clients","entityId":101,"data":{"name":"Pwned"},"version":1,"tenantId":"atk-b"}]}'
\i sql/postgrest_request.psql
SELECT count(*) AS mallory_anywhere FROM (SELECT name FROM atk_a.clients UNION ALL SELECT name FROM atk_b.clients) c
 WHERE name IN ('Mallory', 'Pwned');

-- 4. Two spellings of the tenant claim: smartsync and row-level security read
-- the same one (tenant_id before tenantId), so the request is A's, all of it.
\set claims '{"role":"web_user","tenant_id":"atk-a","tenantId":"atk-b","practice_id":1,"client_id":"a-tablet","permissions":["clients:create"]}'
\set body '{"operations":[{"id":"s-1","operation":"create","entityType":"clients","data":{"name":"Spelled twice"}}]}'
\i sql/postgrest_request.psql
SELECT 'atk_a' AS schema, count(*) FROM atk_a.clients WHERE name = 'Spelled twice'
UNION ALL SELECT 'atk_b', count(*) FROM atk_b.clients WHERE name = 'Spelled twice';

-- 5. The web role itself, as a direct SQL session (had it one), reaches no table:
-- no tenant schema, not the smartsync schema.
SET ROLE web_user;
SELECT set_config('request.jwt.claims', :'claims_a', false) IS NOT NULL AS claims_set;
SELECT pg_temp.try($q$SELECT * FROM atk_b.clients$q$);
SELECT pg_temp.try($q$SELECT * FROM atk_a.clients$q$);
SELECT pg_temp.try($q$INSERT INTO atk_b.clients (practice_id, name) VALUES (1, 'direct')$q$);
SELECT pg_temp.try($q$SELECT * FROM smartsync.tenants$q$);
SELECT pg_temp.try($q$SELECT * FROM smartsync.pull_secret$q$);
SELECT pg_temp.try($q$SELECT smartsync.sync_pull()$q$);
-- nor can it add to the api (nor can the api's owner)
SELECT pg_temp.try($q$CREATE FUNCTION api.evil() RETURNS int LANGUAGE sql AS 'SELECT 1'$q$);
SET ROLE smartsync_api;
SELECT pg_temp.try($q$CREATE FUNCTION api.evil() RETURNS int LANGUAGE sql AS 'SELECT 1'$q$);
RESET ROLE;
-- the anonymous role neither
SET ROLE anon;
SELECT pg_temp.try($q$SELECT * FROM atk_a.clients$q$);
SELECT pg_temp.try($q$SELECT api.sync_pull()$q$);
RESET ROLE;
SELECT set_config('request.jwt.claims', '', false) IS NOT NULL AS claims_reset;

-- 6. Below the api: the role that runs the api code (smartsync_api) with A's
-- JWT, as if that code had a flaw and named B's tables.  Row-level security
-- hides every row of B and refuses every write.
SET ROLE smartsync_api;
SELECT set_config('request.jwt.claims', :'claims_a', false) IS NOT NULL AS claims_set;
SELECT (SELECT count(*) FROM atk_b.clients) AS clients, (SELECT count(*) FROM atk_b.sync_changes) AS changes,
       (SELECT count(*) FROM atk_b.sync_ledger) AS ledger, (SELECT count(*) FROM atk_b.sync_conflicts) AS conflicts,
       (SELECT count(*) FROM atk_b.sync_id_map) AS id_map;
SELECT pg_temp.try($q$INSERT INTO atk_b.clients (practice_id, name) VALUES (1, 'planted')$q$);
SELECT pg_temp.try($q$INSERT INTO atk_b.sync_ledger (client_id, operation_id, outcome, result) VALUES ('x', 'x', 'applied', '{}')$q$);
SELECT pg_temp.try($q$INSERT INTO atk_b.sync_conflicts (entity_type, entity_id, operation, conflict_type, severity) VALUES ('clients', '1', 'update', 'data', 'low')$q$);
WITH u AS (UPDATE atk_b.clients SET name = 'changed' RETURNING 1) SELECT count(*) AS updated FROM u;
WITH d AS (DELETE FROM atk_b.clients RETURNING 1) SELECT count(*) AS deleted FROM d;
WITH u AS (UPDATE atk_b.sync_conflicts SET status = 'resolved' RETURNING 1) SELECT count(*) AS conflicts_updated FROM u;
-- the change log is not writable at all, not even A's own (capture appends to it)
SELECT pg_temp.try($q$INSERT INTO atk_a.sync_changes (entity_type, entity_id, operation, data, version) VALUES ('clients', '1', 'delete', '{}', 9)$q$);
-- A's own rows of its practice 1 are visible: the policies let the right tenant through
SELECT count(*) AS own_clients FROM atk_a.clients;
-- another practice of A: only its rows (practice isolation)
SELECT set_config('request.jwt.claims', '{"role":"web_user","tenant_id":"atk-a","practice_id":2}', false) IS NOT NULL AS claims_set;
SELECT name FROM atk_a.clients ORDER BY id;
SELECT pg_temp.try($q$INSERT INTO atk_a.clients (practice_id, name) VALUES (1, 'into practice 1')$q$);
-- no claims and no settings: nothing at all
SELECT set_config('request.jwt.claims', '', false) IS NOT NULL AS claims_reset;
SELECT (SELECT count(*) FROM atk_a.clients) AS a_clients, (SELECT count(*) FROM atk_b.clients) AS b_clients;
-- a direct caller's smartsync.* settings are a context too (without claims): still never B
SET smartsync.tenant_id = 'atk-a';
SELECT (SELECT count(*) FROM atk_a.clients) AS a_clients, (SELECT count(*) FROM atk_b.clients) AS b_clients;
RESET smartsync.tenant_id;
RESET ROLE;

-- 7. B's conflicts: A's JWT does not list them, its stats do not count them,
-- and resolving B's conflict id with it is "no such conflict" (404); B's
-- conflict stays open.
SELECT conflict_id AS b_conflict_id FROM atk_b.sync_conflicts ORDER BY conflict_id LIMIT 1 \gset
\set claims :claims_a
\set method GET
\set fn list_conflicts
\set args ''
\i sql/postgrest_request.psql
\set fn conflict_stats
\i sql/postgrest_request.psql
\set method POST
\set fn resolve_conflict
SELECT format('{"conflict_id": %s, "strategy": "client-wins"}', :b_conflict_id) AS body \gset
\i sql/postgrest_request.psql
SELECT conflict_id, status FROM atk_b.sync_conflicts ORDER BY conflict_id;

-- Every table of B holds exactly what it held before A's requests (row digests).
SELECT b.t AS "table", split_part(b.d, ' ', 1) AS rows, pg_temp.digest(b.t) = b.d AS unchanged
  FROM attack_tenants_before b ORDER BY b.t;
SELECT name, email, version FROM atk_b.clients ORDER BY id;

-- B's own staff resolves it (200); a second resolution is stale (409).
\set claims :claims_b
\i sql/postgrest_request.psql
\set pgrst_terse
\i sql/postgrest_request.psql
\unset pgrst_terse
DROP TABLE attack_tenants_before;
