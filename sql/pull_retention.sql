-- Change-log retention: smartsync.prune_changes() and the must-refetch answer.
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
SELECT smartsync.provision_tenant('pull-r');
RESET client_min_messages;
\set VERBOSITY sqlstate

CREATE FUNCTION pg_temp.show(r jsonb) RETURNS text LANGUAGE sql AS $$
    SELECT format('hasMore=%s full=%s: %s', r->'hasMore', r->'full',
           coalesce(string_agg(format('%s %s %s v%s', c->>'entityType', c->>'operation',
                                      c->'id', c->>'version'), ', ' ORDER BY n), '-'))
      FROM jsonb_array_elements(r->'changes') WITH ORDINALITY AS x(c, n)
$$;
CREATE FUNCTION pg_temp.try(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'ok';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM; END $$;

SET smartsync.tenant_id = 'pull-r';
INSERT INTO tenant_pull_r.clients (id, practice_id, name) VALUES (1, 1, 'Ann'), (2, 1, 'Bob'), (3, 1, 'Cy');
SELECT smartsync.sync_pull() AS r \gset
SELECT :'r'::jsonb->>'cursor' AS c_old \gset
SELECT to_jsonb(clock_timestamp()) #>> '{}' AS t_old \gset
UPDATE tenant_pull_r.clients SET name = 'Ann B' WHERE id = 1;
DELETE FROM tenant_pull_r.clients WHERE id = 2;
INSERT INTO tenant_pull_r.clients (id, practice_id, name) VALUES (4, 1, 'Di');
-- a client in the middle of a drain, and one that is up to date
SELECT smartsync.sync_pull(p_cursor => :'c_old', p_limit => 1) AS r \gset
SELECT pg_temp.show(:'r');
SELECT :'r'::jsonb->>'cursor' AS c_mid \gset
SELECT smartsync.sync_pull(p_cursor => :'c_old') AS r \gset
SELECT pg_temp.show(:'r');
SELECT :'r'::jsonb->>'cursor' AS c_new \gset

-- Prune everything older than now: every change so far goes.  Returns the count.
SELECT count(*) AS log_rows FROM tenant_pull_r.sync_changes;
SELECT smartsync.prune_changes('pull-r', '0 seconds');
SELECT count(*) AS log_rows FROM tenant_pull_r.sync_changes;
SELECT smartsync.prune_changes('pull-r', '0 seconds');  -- nothing left: 0

-- The up-to-date client goes on; the others must refetch (their own SQLSTATE,
-- never a silent gap: client 2's tombstone is gone).
SELECT pg_temp.show(smartsync.sync_pull(p_cursor => :'c_new'));
SELECT pg_temp.try(format($$ SELECT smartsync.sync_pull(p_cursor => %L) $$, :'c_old'));  -- SS505
SELECT pg_temp.try(format($$ SELECT smartsync.sync_pull(p_cursor => %L) $$, :'c_mid'));  -- SS505
SELECT pg_temp.try(format($$ SELECT smartsync.sync_pull(%L) $$, :'t_old')); -- SS505
\set VERBOSITY default
SELECT smartsync.sync_pull(p_cursor => :'c_old');
\set VERBOSITY sqlstate

-- Refetch: a pull without a cursor lists the exact current state ...
SELECT smartsync.sync_pull() AS r \gset
SELECT pg_temp.show(:'r');
SELECT (SELECT jsonb_agg(c->'data' ORDER BY (c->>'id')::int) FROM jsonb_array_elements(:'r'::jsonb->'changes') c)
     = (SELECT jsonb_agg(to_jsonb(t) ORDER BY id) FROM tenant_pull_r.clients t) AS exact_state;
-- ... and its cursor continues exactly.
SELECT :'r'::jsonb->>'cursor' AS c_re \gset
UPDATE tenant_pull_r.clients SET name = 'Cy B' WHERE id = 3;
SELECT pg_temp.show(smartsync.sync_pull(p_cursor => :'c_re'));

-- A retention keeps what is younger than it.
SELECT smartsync.prune_changes('pull-r', '1 day');
SELECT pg_temp.show(smartsync.sync_pull(p_cursor => :'c_re'));

-- Bad input, and who may prune.
SELECT pg_temp.try($$ SELECT smartsync.prune_changes('pull-r', '-1 day') $$);   -- SS509
SELECT pg_temp.try($$ SELECT smartsync.prune_changes('pull-r', NULL) $$);       -- SS509
SELECT pg_temp.try($$ SELECT smartsync.prune_changes('pull-r', '200000 years') $$);  -- SS509: beyond the range of times
SELECT pg_temp.try($$ SELECT smartsync.prune_changes('nobody', '1 day') $$);    -- SS203
CREATE ROLE pull_retention_nobody;
SELECT has_function_privilege('pull_retention_nobody', 'smartsync.prune_changes(text, interval)', 'EXECUTE') AS may_prune,
       has_table_privilege('pull_retention_nobody', 'smartsync.pull_secret', 'SELECT') AS may_read_secret;
DROP ROLE pull_retention_nobody;

-- The cursor secret is kept by pg_dump; replacing it invalidates every cursor.
SELECT 'smartsync.pull_secret'::regclass = ANY (extconfig) AS dumped
  FROM pg_extension WHERE extname = 'smartsync';
BEGIN;
UPDATE smartsync.pull_secret SET secret = decode(repeat('ab', 32), 'hex');
SELECT pg_temp.try(format($$ SELECT smartsync.sync_pull(p_cursor => %L) $$, :'c_re'));  -- SS502
ROLLBACK;
RESET smartsync.tenant_id;
