-- The conflict endpoints through PostgREST, reproduced statement by statement
-- (sql/postgrest_request.psql): GET /rpc/list_conflicts and /rpc/conflict_stats
-- (READ ONLY), POST /rpc/resolve_conflict with a JSON object of named
-- parameters, as the web role, with the HTTP status of every outcome.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS smartsync;
\set ECHO none
\o /dev/null
SELECT to_regnamespace('vet_template') IS NULL AS need_vet \gset
\if :need_vet
\i examples/vet_schema.sql
\endif
SELECT smartsync.provision_tenant('pgrst-conf', 'pgrst_conf');
SELECT smartsync.setup_postgrest();
\o
RESET client_min_messages;
\set ECHO all
\i sql/postgrest_helpers.psql

-- Three clients of practice 1 and one of practice 2, which tablets saw at version 1;
-- the back office then changes their e-mail addresses (version 2).
INSERT INTO pgrst_conf.clients (id, practice_id, name, email) VALUES
  (1, 1, 'Ann', 'ann@example.com'), (2, 1, 'Bob', 'bob@example.com'), (3, 1, 'Cy', 'cy@example.com'),
  (4, 2, 'Di', 'di@example.com');
UPDATE pgrst_conf.clients SET email = 'office-' || email;

-- The tablets push their own offline changes of the same field: conflicts that
-- clients resolve manually, so push stores them (HTTP 200, "conflict": true).
\set method POST
\set fn sync_push
\set claims '{"role":"web_user","tenant_id":"pgrst-conf","practice_id":1,"sub":"nurse","client_id":"tablet-1","permissions":["clients:update"]}'
\set body '{"operations":[{"id":"u1","operation":"update","entityType":"clients","entityId":1,"data":{"email":"ann@tablet.example"},"version":1},{"id":"u2","operation":"update","entityType":"clients","entityId":2,"data":{"email":"bob@tablet.example"},"version":1},{"id":"u3","operation":"update","entityType":"clients","entityId":3,"data":{"email":"cy@tablet.example"},"version":1},{"id":"u5","operation":"update","entityType":"clients","entityId":50,"data":{"name":"Eve","email":"eve@tablet.example"},"version":1}]}'
\i sql/postgrest_request.psql
\set claims '{"role":"web_user","tenant_id":"pgrst-conf","practice_id":2,"sub":"vet","client_id":"tablet-2","permissions":["clients:update"]}'
\set body '{"operations":[{"id":"u4","operation":"update","entityType":"clients","entityId":4,"data":{"email":"di@tablet.example"},"version":1}]}'
\i sql/postgrest_request.psql
SELECT conflict_id, entity_id, practice_id, conflict_type, severity, status FROM pgrst_conf.sync_conflicts ORDER BY conflict_id;

\set claims '{"role":"web_user","tenant_id":"pgrst-conf","practice_id":1,"sub":"nurse","client_id":"tablet-1","permissions":["clients:update","clients:create"]}'

-- GET /rpc/list_conflicts: the open conflicts of the JWT's tenant and practice.
\set method GET
\set fn list_conflicts
\set args '"p_limit" := ''2'''
\i sql/postgrest_request.psql
-- GET /rpc/conflict_stats
\set fn conflict_stats
\set args ''
\i sql/postgrest_request.psql

-- POST /rpc/resolve_conflict {"conflict_id": 1, "strategy": "client-wins"}: 200
\set method POST
\set fn resolve_conflict
\set body '{"conflict_id": 1, "strategy": "client-wins"}'
\i sql/postgrest_request.psql
-- the same again: already resolved, 409
\set pgrst_terse
\i sql/postgrest_request.psql
\unset pgrst_terse
-- a token that may only read may not make the write a resolution makes: 403
\set claims '{"role":"web_user","tenant_id":"pgrst-conf","practice_id":1,"sub":"intern","client_id":"tablet-9","permissions":["*:read"]}'
\set body '{"conflict_id": 2, "strategy": "client-wins"}'
\i sql/postgrest_request.psql
\set claims '{"role":"web_user","tenant_id":"pgrst-conf","practice_id":1,"sub":"nurse","client_id":"tablet-1","permissions":["clients:update","clients:create"]}'
-- manual, with the data the nurse settled on: 200
\set body '{"conflict_id": 2, "strategy": "manual", "resolved_data": {"email": "bob@settled.example"}}'
\i sql/postgrest_request.psql
-- the row changed again after the conflict was recorded: the tablet's version
-- would overwrite a change nobody saw, stale, 409
UPDATE pgrst_conf.clients SET phone = '555' WHERE id = 3;
\set body '{"conflict_id": 3, "strategy": "client-wins"}'
\i sql/postgrest_request.psql
-- the tablet updated a client the server never had (missing entity): client-wins
-- creates it, in the JWT's practice, through row-level security: 200
\set body '{"conflict_id": 4, "strategy": "client-wins"}'
\i sql/postgrest_request.psql
-- an unknown conflict: 404
\set body '{"conflict_id": 999, "strategy": "server-wins"}'
\i sql/postgrest_request.psql
-- practice 2's conflict, asked for with a practice-1 JWT: row-level security
-- hides it, so it is unknown too (404), not merely forbidden
\set body '{"conflict_id": 5, "strategy": "client-wins"}'
\i sql/postgrest_request.psql
-- an invalid strategy: 400
\set body '{"conflict_id": 3, "strategy": "sideways"}'
\i sql/postgrest_request.psql
-- manual without resolved_data: 400
\set body '{"conflict_id": 3, "strategy": "manual"}'
\i sql/postgrest_request.psql
-- no JWT: 401
\set claims ''
\set body '{"conflict_id": 3, "strategy": "server-wins"}'
\i sql/postgrest_request.psql

-- Listing errors: an unknown severity (400), an age that is not an interval (400),
-- an age beyond the range of times (400, once PostgreSQL's 22008).
\set claims '{"role":"web_user","tenant_id":"pgrst-conf","practice_id":1,"sub":"nurse","client_id":"tablet-1"}'
\set method GET
\set fn list_conflicts
\set args '"p_severity" := ''urgent'''
\i sql/postgrest_request.psql
\set args '"p_min_age" := ''a while'''
\i sql/postgrest_request.psql
\set args '"p_min_age" := ''200000 years'''
\i sql/postgrest_request.psql

-- Where things stand.
SELECT conflict_id, entity_id, status, strategy, winner, resolved_by FROM pgrst_conf.sync_conflicts ORDER BY conflict_id;
SELECT id, practice_id, name, email, phone, version FROM pgrst_conf.clients ORDER BY id;
