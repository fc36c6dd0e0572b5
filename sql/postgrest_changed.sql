-- GET /rpc/sync_changed through PostgREST, reproduced statement by statement
-- (sql/postgrest_request.psql): a client behind PostgREST asks "anything new
-- since my cursor?" every few seconds and pulls only when the answer is true.
-- A READ ONLY transaction, the role switch, the claims, the generated call.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS smartsync;
\set ECHO none
\o /dev/null
SELECT to_regnamespace('vet_template') IS NULL AS need_vet \gset
\if :need_vet
\i examples/vet_schema.sql
\endif
SELECT smartsync.provision_tenant('pgrst-changed', 'pgrst_changed');
SELECT smartsync.setup_postgrest();
\o
RESET client_min_messages;
\set ECHO all
\i sql/postgrest_helpers.psql

INSERT INTO pgrst_changed.clients (id, practice_id, name) VALUES (1, 1, 'Ann'), (2, 2, 'Bob');

\set method GET
\set claims '{"role":"web_user","tenant_id":"pgrst-changed","practice_id":1,"sub":"7","client_id":"phone-1"}'

-- The phone's first pull (a listing); its cursor is what it asks about.
\set fn sync_pull
\set args '"p_limit" := ''10'''
\i sql/postgrest_request.psql
SELECT :'pgrst_result'::jsonb ->> 'cursor' AS cursor \gset

-- GET /rpc/sync_changed?p_cursor=...: nothing new, false.
\set fn sync_changed
\set args '"p_cursor" := ' :'cursor'
\set shown_args '"p_cursor" := ''<cursor>'''
\i sql/postgrest_request.psql

-- The front desk changes Ann (practice 1): true; Bob (practice 2) alone would not count.
UPDATE pgrst_changed.clients SET name = 'Bob B' WHERE id = 2;
\set args '"p_cursor" := ' :'cursor'
\set shown_args '"p_cursor" := ''<cursor>'''
\i sql/postgrest_request.psql
UPDATE pgrst_changed.clients SET name = 'Ann B' WHERE id = 1;
\set args '"p_cursor" := ' :'cursor'
\set shown_args '"p_cursor" := ''<cursor>'''
\i sql/postgrest_request.psql

-- The pull with that cursor delivers Ann's change, and then nothing is new.
\set fn sync_pull
\set args '"p_cursor" := ' :'cursor'
\set shown_args '"p_cursor" := ''<cursor>'''
\i sql/postgrest_request.psql
SELECT :'pgrst_result'::jsonb ->> 'cursor' AS cursor \gset
\set fn sync_changed
\set args '"p_cursor" := ' :'cursor'
\set shown_args '"p_cursor" := ''<cursor>'''
\i sql/postgrest_request.psql

-- The spec's parameter names are accepted as with sync_pull (entityTypes).
\set fn sync_pull
\set args '"entityTypes" := ''clients'''
\i sql/postgrest_request.psql
SELECT :'pgrst_result'::jsonb ->> 'cursor' AS clients_cursor \gset
\set fn sync_changed
\set args '"p_cursor" := ' :'clients_cursor' ', "entityTypes" := ''clients'''
\set shown_args '"p_cursor" := ''<cursor>'', "entityTypes" := ''clients'''
\i sql/postgrest_request.psql

-- Errors: the pull's, with the pull's statuses.
-- a cursor used with other entity types than it was issued for: 400
\set args '"p_cursor" := ' :'cursor' ', "entityTypes" := ''pets'''
\set shown_args '"p_cursor" := ''<cursor>'', "entityTypes" := ''pets'''
\i sql/postgrest_request.psql
-- not a cursor: 400
\set args '"p_cursor" := ''nonsense!'''
\i sql/postgrest_request.psql
-- practiceId of another practice: 403
\set args '"p_cursor" := ' :'cursor' ', "practiceId" := ''2'''
\set shown_args '"p_cursor" := ''<cursor>'', "practiceId" := ''2'''
\i sql/postgrest_request.psql
-- p_entity_types and entityTypes disagree: 400 (SS702, as with sync_pull)
\set args '"p_cursor" := ' :'cursor' ', "p_entity_types" := ''clients'', "entityTypes" := ''pets'''
\set shown_args '"p_cursor" := ''<cursor>'', "p_entity_types" := ''clients'', "entityTypes" := ''pets'''
\i sql/postgrest_request.psql
-- another tenant's JWT with this cursor: 403 (SS503) -- needs that tenant provisioned
\o /dev/null
SELECT smartsync.provision_tenant('pgrst-changed-2', 'pgrst_changed_2');
\o
\set claims '{"role":"web_user","tenant_id":"pgrst-changed-2","sub":"8","client_id":"phone-1"}'
\set args '"p_cursor" := ' :'cursor'
\set shown_args '"p_cursor" := ''<cursor>'''
\i sql/postgrest_request.psql
-- no JWT: 401
\set claims ''
\set args '"p_cursor" := ' :'cursor'
\set shown_args '"p_cursor" := ''<cursor>'''
\i sql/postgrest_request.psql

-- Only the web role may call it; authenticator may poll for the change signal
-- (smartsync.poll_changes), which nobody else may.
SELECT r AS role,
       has_function_privilege(r, 'api.sync_changed(text, text, text, text, text)', 'EXECUTE') AS sync_changed,
       has_function_privilege(r, 'smartsync.poll_changes(text, text[])', 'EXECUTE') AS poll_changes
  FROM unnest(ARRAY['web_user', 'anon', 'authenticator', 'smartsync_api']) r ORDER BY r;
