-- sync_pull: the exact incremental pull (GET /api/sync/pull).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS smartsync;
\set ECHO none
\o /dev/null
SELECT to_regnamespace('vet_template') IS NULL AS need_vet \gset
\if :need_vet
\i examples/vet_schema.sql
\endif
\o
\set ECHO all
SELECT smartsync.provision_tenant('pull-a'), smartsync.provision_tenant('pull-b');
RESET client_min_messages;
\set VERBOSITY sqlstate

-- A page in one line: "hasMore full: entityType operation id vversion, ..."
CREATE FUNCTION pg_temp.show(r jsonb) RETURNS text LANGUAGE sql AS $$
    SELECT format('hasMore=%s full=%s: %s', r->'hasMore', r->'full',
           coalesce(string_agg(format('%s %s %s v%s', c->>'entityType', c->>'operation',
                                      c->'id', c->>'version'), ', ' ORDER BY n), '-'))
      FROM jsonb_array_elements(r->'changes') WITH ORDINALITY AS x(c, n)
$$;
-- errors are shown as SQLSTATE: message
CREATE FUNCTION pg_temp.try(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'ok';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM; END $$;

-- The function: STABLE (PostgREST serves it under GET), named scalar parameters.
SELECT p.oid::regprocedure AS signature, p.provolatile, pg_get_function_result(p.oid) AS returns
  FROM pg_proc p WHERE p.oid = 'smartsync.sync_pull'::regproc;

SET smartsync.tenant_id = 'pull-a';

-- First sync of an empty tenant: the spec's shape, plus cursor and full.
SELECT smartsync.sync_pull() AS r \gset
SELECT jsonb_typeof(:'r'::jsonb->'timestamp') AS timestamp, :'r'::jsonb - 'timestamp' - 'cursor' AS rest,
       length(:'r'::jsonb->>'cursor') > 20 AS has_cursor;

-- Data in two practices: clients, pets (children of clients), appointments.
INSERT INTO tenant_pull_a.clients (id, practice_id, name) VALUES (1, 1, 'Ann'), (2, 2, 'Bob'), (3, 1, 'Cy');
INSERT INTO tenant_pull_a.pets (id, practice_id, client_id, name) VALUES (10, 1, 1, 'Rex'), (11, 2, 2, 'Tom');
INSERT INTO tenant_pull_a.appointments (id, practice_id, pet_id, title, date)
VALUES (100, 1, 10, 'Checkup', '2024-11-10 12:00+00');

-- A first sync (no cursor, or the epoch) lists the live rows, parents first,
-- each with its typed id, row data, updatedAt and version.
SELECT pg_temp.show(smartsync.sync_pull());
SELECT pg_temp.show(smartsync.sync_pull('0'));   -- epoch milliseconds 0: 1970-01-01
-- (the response is written in jsonb's binary form directly: it equals its own re-parse)
SELECT r = r::text::jsonb AS well_formed, jsonb_typeof(r->'changes'->0->'data') AS data
  FROM smartsync.sync_pull() r;
SELECT c - 'updatedAt'::text - 'data'::text AS change, (c->'data') - 'updated_at'::text AS data,
       (c->>'updatedAt')::timestamptz = (c->'data'->>'updated_at')::timestamptz AS updated_at_matches
  FROM jsonb_array_elements(smartsync.sync_pull(p_limit => 1)->'changes') c;

-- The listing pages by key; each page's cursor continues it.
SELECT smartsync.sync_pull(p_limit => 2) AS r \gset
SELECT pg_temp.show(:'r');
SELECT smartsync.sync_pull(p_cursor => :'r'::jsonb->>'cursor', p_limit => 2) AS r \gset
SELECT pg_temp.show(:'r');
SELECT smartsync.sync_pull(p_cursor => :'r'::jsonb->>'cursor', p_limit => 2) AS r \gset
SELECT pg_temp.show(:'r');
-- After the listing the cursor is exact: nothing new, nothing twice.
SELECT smartsync.sync_pull(p_cursor => :'r'::jsonb->>'cursor') AS r \gset
SELECT pg_temp.show(:'r');
SELECT :'r'::jsonb->>'cursor' AS c0 \gset

-- Several changes to one entity arrive once, as its latest state; a tombstone
-- carries the last image; creates and updates come parents first, deletes last.
UPDATE tenant_pull_a.clients SET name = 'Ann B' WHERE id = 1;
UPDATE tenant_pull_a.clients SET name = 'Ann C' WHERE id = 1;
INSERT INTO tenant_pull_a.appointments (id, practice_id, pet_id, title, date)
VALUES (101, 1, 10, 'Vaccine', '2024-11-11 09:00+00');
UPDATE tenant_pull_a.appointments SET status = 'confirmed' WHERE id = 101;
DELETE FROM tenant_pull_a.appointments WHERE id = 100;
INSERT INTO tenant_pull_a.pets (id, practice_id, client_id, name) VALUES (12, 1, 3, 'Kit');
SELECT smartsync.sync_pull(p_cursor => :'c0') AS r \gset
SELECT pg_temp.show(:'r');
SELECT c->>'entityType' AS type, c->'id' AS id, c->'data'->>'name' AS name, c->'data'->>'title' AS title,
       c->'data'->>'status' AS status
  FROM jsonb_array_elements(:'r'::jsonb->'changes') c;
SELECT :'r'::jsonb->>'cursor' AS c1 \gset
SELECT pg_temp.show(smartsync.sync_pull(p_cursor => :'c1'));
-- A cursor is a value: a retried request (the response was lost) gets the same page.
SELECT pg_temp.show(smartsync.sync_pull(p_cursor => :'c0'));

-- Paging a drain: hasMore until it is drained; every change exactly once.
UPDATE tenant_pull_a.clients SET notes = 'n' WHERE id IN (1, 2, 3);
UPDATE tenant_pull_a.pets SET breed = 'b' WHERE id IN (10, 11);
SELECT smartsync.sync_pull(p_cursor => :'c1', p_limit => 2) AS r \gset
SELECT pg_temp.show(:'r');
-- a write landing while the client pages belongs to the next drain
UPDATE tenant_pull_a.clients SET notes = 'late' WHERE id = 1;
SELECT smartsync.sync_pull(p_cursor => :'r'::jsonb->>'cursor', p_limit => 2) AS r \gset
SELECT pg_temp.show(:'r');
SELECT smartsync.sync_pull(p_cursor => :'r'::jsonb->>'cursor', p_limit => 2) AS r \gset
SELECT pg_temp.show(:'r');
SELECT smartsync.sync_pull(p_cursor => :'r'::jsonb->>'cursor', p_limit => 2) AS r \gset
SELECT pg_temp.show(:'r'), :'r'::jsonb->'changes'->0->'data'->>'notes' AS notes;
SELECT smartsync.sync_pull(p_cursor => :'r'::jsonb->>'cursor') AS r \gset
SELECT pg_temp.show(:'r');
SELECT :'r'::jsonb->>'cursor' AS c2 \gset

-- Our own transaction's uncommitted changes are never delivered; after the
-- commit they are, exactly once.
BEGIN;
UPDATE tenant_pull_a.pets SET name = 'Kitty' WHERE id = 12;
SELECT smartsync.sync_pull(p_cursor => :'c2') AS r \gset
SELECT pg_temp.show(:'r');
COMMIT;
SELECT pg_temp.show(smartsync.sync_pull(p_cursor => :'r'::jsonb->>'cursor'));

-- Read only: works in a READ ONLY transaction and assigns no transaction id
-- (so it also runs on a hot standby).  (The cursor c1 is replayed: client 1
-- has changed again since its v4, so v4 is not sent; its newer state, v5,
-- comes later in this drain.)
BEGIN READ ONLY;
SELECT pg_temp.show(smartsync.sync_pull(p_cursor => :'c1', p_limit => 3));
SELECT pg_current_xact_id_if_assigned() IS NULL AS no_xid;
COMMIT;

-- Practice isolation: a device of practice 1 never receives practice 2's rows.
SET smartsync.practice_id = '1';
SELECT pg_temp.show(smartsync.sync_pull());
SELECT pg_temp.show(smartsync.sync_pull(p_practice_id => '1'));
SELECT pg_temp.try($$ SELECT smartsync.sync_pull(p_practice_id => '2') $$);  -- SS507 never widened
SELECT smartsync.sync_pull() AS r \gset
SELECT :'r'::jsonb->>'cursor' AS cp1 \gset
UPDATE tenant_pull_a.clients SET phone = '1' WHERE id IN (1, 2);
DELETE FROM tenant_pull_a.pets WHERE id = 11;
SELECT pg_temp.show(smartsync.sync_pull(p_cursor => :'cp1'));
RESET smartsync.practice_id;
-- without a practice in the context, p_practice_id narrows
SELECT pg_temp.show(smartsync.sync_pull(p_practice_id => '2'));

-- Entity types: a comma-separated filter (spec style), and only what the
-- permissions let the caller read ("<type>:read", "<type>:*" or "*").
SELECT pg_temp.show(smartsync.sync_pull(p_entity_types => 'pets, appointments'));
SELECT pg_temp.try($$ SELECT smartsync.sync_pull(p_entity_types => 'pets,horses') $$);  -- SS106
SET smartsync.permissions = 'clients:read,appointments:*,pets:write';
SELECT pg_temp.show(smartsync.sync_pull());
SELECT pg_temp.try($$ SELECT smartsync.sync_pull(p_entity_types => 'pets') $$);  -- SS508
SET smartsync.permissions = '*';
SELECT pg_temp.show(smartsync.sync_pull(p_entity_types => 'pets'));
RESET smartsync.permissions;

-- Echo suppression: a device is not sent its own changes back, nor older
-- states its own later change supersedes; other devices get them.
SET smartsync.client_id = 'tablet';
SELECT smartsync.sync_pull() AS r \gset
SELECT :'r'::jsonb->>'cursor' AS ct \gset
SET smartsync.client_id = 'phone';
SELECT smartsync.sync_pull() AS r \gset
SELECT :'r'::jsonb->>'cursor' AS cph \gset
UPDATE tenant_pull_a.clients SET email = 'phone@x' WHERE id = 3;   -- by the phone
SET smartsync.client_id = 'tablet';
UPDATE tenant_pull_a.clients SET email = 'tablet@x' WHERE id = 3;  -- then by the tablet
UPDATE tenant_pull_a.pets SET species = 'cat' WHERE id = 12;       -- by the tablet
SET smartsync.client_id = 'phone';
UPDATE tenant_pull_a.pets SET allergies = 'none' WHERE id = 10;    -- by the phone
SET smartsync.client_id = 'tablet';
SELECT pg_temp.show(smartsync.sync_pull(p_cursor => :'ct'));
SET smartsync.client_id = 'phone';
SELECT smartsync.sync_pull(p_cursor => :'cph') AS r \gset
SELECT pg_temp.show(:'r'), :'r'::jsonb->'changes'->0->'data'->>'email' AS email;
RESET smartsync.client_id;

-- Time-based pull (the spec's lastSyncTimestamp): changes after a time; not
-- exact, but its cursor is.
-- (a time as text: ISO 8601 with its offset, whatever the session's DateStyle)
SELECT to_jsonb(clock_timestamp()) #>> '{}' AS t0 \gset
UPDATE tenant_pull_a.practitioners SET name = name;  -- no rows
INSERT INTO tenant_pull_a.practitioners (id, practice_id, name) VALUES (7, 1, 'Dr. Who');
SELECT smartsync.sync_pull(:'t0') AS r \gset
SELECT pg_temp.show(:'r');
SELECT pg_temp.show(smartsync.sync_pull(p_cursor => :'r'::jsonb->>'cursor'));
SELECT pg_temp.show(smartsync.sync_pull(:'t0', p_limit => 1));

-- PostgREST: GET passes query parameters by name as text; claims give the context.
BEGIN READ ONLY;
SELECT set_config('request.jwt.claims', '{"role":"web_user","tenant_id":"pull-a","practice_id":1,"client_id":"phone"}', true);
SELECT pg_temp.show(smartsync.sync_pull("p_since" := '2024-01-01T00:00:00Z', "p_entity_types" := 'practitioners'));
SELECT pg_temp.show(smartsync.sync_pull("p_entity_types" := 'practitioners', "p_practice_id" := '1', "p_limit" := '5'));
COMMIT;

-- Bad input, each with its own SQLSTATE.
SELECT pg_temp.try($$ SELECT smartsync.sync_pull(p_cursor => '!!!') $$);             -- SS501 not base64url
SELECT pg_temp.try($$ SELECT smartsync.sync_pull(p_cursor => 'AQ') $$);              -- SS501 too short
SELECT pg_temp.try(format($$ SELECT smartsync.sync_pull(p_cursor => %L) $$,
       'Ag' || substr(:'c1', 3)));                                                    -- SS501 unknown version
SELECT pg_temp.try(format($$ SELECT smartsync.sync_pull(p_cursor => %L) $$,
       left(:'c1', 10) || CASE substr(:'c1', 11, 1) WHEN 'A' THEN 'B' ELSE 'A' END
       || substr(:'c1', 12)));                                                        -- SS502 tampered
SELECT pg_temp.try(format($$ SELECT smartsync.sync_pull(p_cursor => %L, p_entity_types => 'pets') $$, :'c1'));  -- SS504 scope
SET smartsync.practice_id = '1';
SELECT pg_temp.try(format($$ SELECT smartsync.sync_pull(p_cursor => %L) $$, :'c1'));  -- SS504 scope
RESET smartsync.practice_id;
SET smartsync.tenant_id = 'pull-b';
SELECT pg_temp.try(format($$ SELECT smartsync.sync_pull(p_cursor => %L) $$, :'c1'));  -- SS503 other tenant
SELECT pg_temp.try($$ SELECT smartsync.sync_pull(p_limit => 0) $$);                  -- SS506
SELECT pg_temp.try($$ SELECT smartsync.sync_pull(p_limit => 10001) $$);              -- SS506
SET smartsync.pull_max_limit = 20000;
SELECT pg_temp.try($$ SELECT smartsync.sync_pull(p_limit => 10001) $$);
RESET smartsync.pull_max_limit;
SET smartsync.tenant_id = 'nobody';
SELECT pg_temp.try($$ SELECT smartsync.sync_pull() $$);                              -- SS203
RESET smartsync.tenant_id;
SELECT pg_temp.try($$ SELECT smartsync.sync_pull() $$);                              -- SS201
-- the error text a client sees
SET smartsync.tenant_id = 'pull-a';
\set VERBOSITY default
SELECT smartsync.sync_pull(p_cursor => 'AQ');
SELECT smartsync.sync_pull(p_limit => 0);
\set VERBOSITY sqlstate
RESET smartsync.tenant_id;
