-- GET /rpc/sync_pull through PostgREST, reproduced statement by statement
-- (sql/postgrest_request.psql): a READ ONLY transaction, the set_config
-- sequence with the role switch to the web role, and the call PostgREST
-- generates from the query string (each parameter as text, cast to the named
-- parameter's type).  Cursors and times differ per run and are shown masked.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS smartsync;
\set ECHO none
\o /dev/null
SELECT to_regnamespace('vet_template') IS NULL AS need_vet \gset
\if :need_vet
\i examples/vet_schema.sql
\endif
SELECT smartsync.provision_tenant('pgrst-pull', 'pgrst_pull');
SELECT smartsync.setup_postgrest();
\o
RESET client_min_messages;
\set ECHO all
\i sql/postgrest_helpers.psql

-- The clinic's data, written by direct SQL (captured like any write).
INSERT INTO pgrst_pull.clients (id, practice_id, name) VALUES (1, 1, 'Ann'), (2, 1, 'Bob'), (3, 2, 'Cy');
INSERT INTO pgrst_pull.pets (id, practice_id, client_id, name) VALUES (10, 1, 1, 'Rex'), (11, 2, 3, 'Tom');

\set method GET
\set fn sync_pull
\set claims '{"role":"web_user","tenant_id":"pgrst-pull","practice_id":1,"sub":"7","client_id":"phone-1"}'

-- GET /rpc/sync_pull?p_limit=2: the first pull lists the live rows of the
-- JWT's practice, parents first, two per page.
\set args '"p_limit" := ''2'''
\i sql/postgrest_request.psql
SELECT :'pgrst_result'::jsonb ->> 'cursor' AS cursor \gset

-- GET /rpc/sync_pull?p_limit=2&p_cursor=...: the rest of the listing.
\set args '"p_limit" := ''2'', "p_cursor" := ' :'cursor'
\set shown_args '"p_limit" := ''2'', "p_cursor" := ''<cursor>'''
\i sql/postgrest_request.psql
SELECT :'pgrst_result'::jsonb ->> 'cursor' AS cursor \gset

-- A change made after the listing comes with the next pull, exactly once.
UPDATE pgrst_pull.pets SET name = 'Rex II' WHERE id = 10;
UPDATE pgrst_pull.pets SET name = 'Tom II' WHERE id = 11;
\set args '"p_cursor" := ' :'cursor'
\set shown_args '"p_cursor" := ''<cursor>'''
\i sql/postgrest_request.psql
SELECT :'pgrst_result'::jsonb ->> 'cursor' AS cursor \gset
\set args '"p_cursor" := ' :'cursor'
\set shown_args '"p_cursor" := ''<cursor>'''
\i sql/postgrest_request.psql

-- The spec's query: GET /rpc/sync_pull?lastSyncTimestamp=1699000000000&practiceId=1&entityTypes=pets
\set args '"lastSyncTimestamp" := ''1699000000000'', "practiceId" := ''1'', "entityTypes" := ''pets'''
\i sql/postgrest_request.psql

-- Another practice's device sees its own practice only.
\set claims '{"role":"web_user","tenant_id":"pgrst-pull","practice_id":2,"sub":"8","client_id":"phone-2"}'
\set args '"entityTypes" := ''clients,pets'''
\i sql/postgrest_request.psql

-- Errors.
\set claims '{"role":"web_user","tenant_id":"pgrst-pull","practice_id":1,"sub":"7","client_id":"phone-1"}'
-- p_limit=0: 400
\set args '"p_limit" := ''0'''
\i sql/postgrest_request.psql
-- practiceId=2 with a JWT of practice 1: 403
\set args '"practiceId" := ''2'''
\i sql/postgrest_request.psql
-- p_practice_id and practiceId disagree: 400
\set args '"p_practice_id" := ''1'', "practiceId" := ''2'''
\i sql/postgrest_request.psql
-- lastSyncTimestamp that is not a time: 400 (one strict parser: epoch milliseconds
-- or ISO 8601 with date, time and offset)
\set args '"lastSyncTimestamp" := ''yesterday-ish'''
\i sql/postgrest_request.psql
-- p_since goes through the same parser: 400
\set args '"p_since" := ''soon'''
\i sql/postgrest_request.psql
-- PostgreSQL's special words are not a client's times: 400
\set args '"lastSyncTimestamp" := ''tomorrow'''
\i sql/postgrest_request.psql
-- a "+" that was not encoded (%2B) before an epoch, once PostgreSQL's 22009: 400
\set args '"lastSyncTimestamp" := ''+1731200000000'''
\i sql/postgrest_request.psql
-- an empty entityTypes is not "every type": 400
\set args '"entityTypes" := '''''
\i sql/postgrest_request.psql
-- an entity type that is not registered: 400
\set args '"entityTypes" := ''pets,owners'''
\i sql/postgrest_request.psql
-- a cursor that was tampered with: 400
\set args '"p_cursor" := ''AQER' :cursor ''''
\set shown_args '"p_cursor" := ''AQER<cursor>'''
\i sql/postgrest_request.psql
-- a cursor used with other entity types than it was issued for: 400
\set args '"p_cursor" := ' :'cursor' ', "entityTypes" := ''pets'''
\set shown_args '"p_cursor" := ''<cursor>'', "entityTypes" := ''pets'''
\i sql/postgrest_request.psql
-- no JWT: the anonymous role may not call the api: 401
\set claims ''
\set args '"p_limit" := ''1'''
\i sql/postgrest_request.psql

-- The change log is pruned past the cursor: the client must refetch, 410.
\set claims '{"role":"web_user","tenant_id":"pgrst-pull","practice_id":1,"sub":"7","client_id":"phone-1"}'
UPDATE pgrst_pull.clients SET name = 'Ann B' WHERE id = 1;
UPDATE pgrst_pull.sync_changes SET changed_at = changed_at - interval '1 year';
SELECT smartsync.prune_changes('pgrst-pull', interval '30 days') AS pruned;
\set args '"p_cursor" := ' :'cursor'
\set shown_args '"p_cursor" := ''<cursor>'''
\i sql/postgrest_request.psql
-- ... and pulling again without a cursor lists the live rows.
\set args '"entityTypes" := ''clients'''
\i sql/postgrest_request.psql
