-- sync_changed: "has anything changed since this cursor?", exactly what the
-- next sync_pull with the cursor finds, for the price of index probes.
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
SELECT smartsync.provision_tenant('changed-a'), smartsync.provision_tenant('changed-b');
RESET client_min_messages;

-- errors are shown as SQLSTATE: message
CREATE FUNCTION pg_temp.try(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'ok';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM; END $$;

-- STABLE (PostgREST serves it under GET), named scalar parameters, boolean.
SELECT p.oid::regprocedure AS signature, p.provolatile, pg_get_function_result(p.oid) AS returns
  FROM pg_proc p WHERE p.oid = 'smartsync.sync_changed'::regproc;

INSERT INTO tenant_changed_a.clients (id, practice_id, name) VALUES (1, 1, 'Ann'), (2, 2, 'Bob');
INSERT INTO tenant_changed_a.pets (id, practice_id, client_id, name) VALUES (10, 1, 1, 'Rex');

-- The phone of practice 1.
SET smartsync.tenant_id = 'changed-a';
SET smartsync.practice_id = '1';
SET smartsync.client_id = 'phone';

-- Without a cursor: true (the first pull lists every live row).
SELECT smartsync.sync_changed(NULL) AS no_cursor, smartsync.sync_changed('') AS empty_cursor;

-- In the middle of a listing (the page said hasMore): true.
SELECT smartsync.sync_pull(p_limit => 1) AS r \gset
SELECT (:'r'::jsonb->>'hasMore')::boolean AS has_more, smartsync.sync_changed(:'r'::jsonb->>'cursor') AS changed;
SELECT smartsync.sync_pull(p_cursor => :'r'::jsonb->>'cursor') ->> 'cursor' AS c \gset

-- After the listing, nothing new: false.
SELECT smartsync.sync_changed(:'c') AS changed;

-- Another device changes a row of the practice: true, until the pull delivers it.
SET smartsync.client_id = 'tablet';
UPDATE tenant_changed_a.clients SET name = 'Ann B.' WHERE id = 1;
SET smartsync.client_id = 'phone';
SELECT smartsync.sync_changed(:'c') AS changed;
SELECT smartsync.sync_pull(p_cursor => :'c') AS r \gset
SELECT jsonb_array_length(:'r'::jsonb->'changes') AS delivered;
SELECT :'r'::jsonb->>'cursor' AS c \gset
SELECT smartsync.sync_changed(:'c') AS changed;

-- What the pull would not deliver does not count: another practice's row, the
-- phone's own write (echo suppression), another tenant's row.
SET smartsync.client_id = 'tablet';
UPDATE tenant_changed_a.clients SET name = 'Bob B.' WHERE id = 2;
SET smartsync.client_id = 'phone';
UPDATE tenant_changed_a.pets SET name = 'Rex II' WHERE id = 10;
INSERT INTO tenant_changed_b.clients (id, practice_id, name) VALUES (1, 1, 'Zed');
SELECT smartsync.sync_changed(:'c') AS changed,
       jsonb_array_length(smartsync.sync_pull(p_cursor => :'c')->'changes') AS pull_delivers;

-- A delete is a change (a tombstone).
SET smartsync.client_id = 'tablet';
DELETE FROM tenant_changed_a.pets WHERE id = 10;
SET smartsync.client_id = 'phone';
SELECT smartsync.sync_changed(:'c') AS changed;
SELECT smartsync.sync_pull(p_cursor => :'c') ->> 'cursor' AS c \gset

-- With p_entity_types, as the cursor was issued: only those types count.
SELECT smartsync.sync_pull(p_entity_types => 'pets') ->> 'cursor' AS c_pets \gset
SET smartsync.client_id = 'tablet';
UPDATE tenant_changed_a.clients SET name = 'Ann C.' WHERE id = 1;
SET smartsync.client_id = 'phone';
SELECT smartsync.sync_changed(:'c_pets', 'pets') AS pets_changed, smartsync.sync_changed(:'c') AS all_changed;

-- A type the permissions may not read does not count (an unfiltered pull leaves it out).
SET smartsync.permissions = 'pets:read';
SELECT smartsync.sync_pull() ->> 'cursor' AS c_perm \gset
SET smartsync.client_id = 'tablet';
UPDATE tenant_changed_a.clients SET name = 'Ann D.' WHERE id = 1;
SET smartsync.client_id = 'phone';
SELECT smartsync.sync_changed(:'c_perm') AS changed;
RESET smartsync.permissions;

-- The pull's errors, with the pull's SQLSTATEs.
SELECT pg_temp.try($$ SELECT smartsync.sync_changed('not a cursor!') $$);                  -- SS501
SELECT pg_temp.try(format($$ SELECT smartsync.sync_changed(%L) $$,
                          left(:'c', -2) || CASE WHEN right(:'c', 2) = 'AA' THEN 'AB' ELSE 'AA' END)); -- SS502
SELECT pg_temp.try(format($$ SELECT smartsync.sync_changed(%L, 'clients') $$, :'c'));     -- SS504
SELECT pg_temp.try(format($$ SELECT smartsync.sync_changed(%L, 'owners') $$, :'c'));      -- SS106
SELECT pg_temp.try(format($$ SELECT smartsync.sync_changed(%L, p_practice_id => '2') $$, :'c')); -- SS507
SET smartsync.tenant_id = 'changed-b';
SELECT pg_temp.try(format($$ SELECT smartsync.sync_changed(%L) $$, :'c'));                -- SS503
RESET smartsync.tenant_id;
RESET smartsync.practice_id;
RESET smartsync.client_id;
SELECT pg_temp.try($$ SELECT smartsync.sync_changed(NULL) $$);                             -- SS201
SET smartsync.tenant_id = 'changed-a';
SET smartsync.practice_id = '1';
SET smartsync.client_id = 'phone';
-- after pruning past the cursor: must refetch, as the pull says
SELECT smartsync.prune_changes('changed-a', '0 seconds') > 0 AS pruned;
SELECT pg_temp.try(format($$ SELECT smartsync.sync_changed(%L) $$, :'c'));                -- SS505

-- Exact, whatever happens: a pseudo-random run of writes by two devices in
-- two practices, each its own transaction, with a check between them that
-- compares sync_changed(cursor) with what the pulls from that cursor deliver
-- (drained in pages of two), and mostly moves the cursor on.
SELECT smartsync.sync_pull() ->> 'cursor' AS c \gset
CREATE TEMP TABLE st (cursor text);
INSERT INTO st VALUES (:'c');
CREATE TEMP TABLE checks (step int, changed boolean, delivered int);
CREATE FUNCTION pg_temp.check(step int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    c text := (SELECT cursor FROM st);
    changed boolean := smartsync.sync_changed(c);
    r jsonb;
    n int := 0;
BEGIN
    LOOP
        r := smartsync.sync_pull(p_cursor => c, p_limit => 2);
        n := n + jsonb_array_length(r->'changes');
        c := r->>'cursor';
        EXIT WHEN NOT (r->>'hasMore')::boolean;
    END LOOP;
    INSERT INTO checks VALUES (step, changed, n);
    IF step % 3 <> 0 THEN
        UPDATE st SET cursor = c;
    END IF;
END $$;
SELECT setseed(0.15);
\set ECHO none
\o /dev/null
SELECT CASE WHEN g % 4 = 0 THEN format('SELECT pg_temp.check(%s)', g)
            ELSE format('SET smartsync.client_id = %L', (ARRAY['phone', 'tablet'])[1 + (random() * 1)::int])
                 || format('; UPDATE tenant_changed_a.clients SET name = %L WHERE id = %s',
                           'n' || g, 1 + (random() * 1)::int)
                 || CASE WHEN random() < 0.3 THEN format('; INSERT INTO tenant_changed_a.clients (id, practice_id, name) VALUES (%s, %s, %L)',
                                                        100 + g, 1 + (random() * 1)::int, 'new ' || g) ELSE '' END
                 || '; SET smartsync.client_id = ''phone''' END
  FROM generate_series(1, 160) g \gexec
\o
\set ECHO all
SELECT count(*) AS checks, count(*) FILTER (WHERE changed) AS said_changed,
       count(*) FILTER (WHERE NOT changed) AS said_unchanged,
       count(*) FILTER (WHERE changed IS DISTINCT FROM delivered > 0) AS disagreements
  FROM checks;
