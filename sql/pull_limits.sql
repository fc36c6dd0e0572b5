-- sync_pull bounds its pages by bytes as well as rows, reads client times with
-- the one strict parser, includes the boundary of a pull by time, and answers a
-- timestamp that is a safe watermark to send back.
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
RESET client_min_messages;
CREATE FUNCTION pg_temp.try(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'ok';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM; END $$;
SELECT smartsync.provision_tenant('pull-l', 'pull_l');
SET smartsync.tenant_id = 'pull-l';
SET smartsync.practice_id = '1';

-- Pages a pull from its first call to hasMore = false: per page the number of
-- changes, the ids, and the kilobytes of the changes' data.
CREATE FUNCTION pg_temp.pages(first_args text)
RETURNS TABLE (page int, changes int, ids text, data_kb int, has_more boolean) LANGUAGE plpgsql AS $$
DECLARE
    r jsonb;
    cursor text;
BEGIN
    EXECUTE format('SELECT smartsync.sync_pull(%s)', first_args) INTO r;
    page := 0;
    LOOP
        page := page + 1;
        changes := jsonb_array_length(r -> 'changes');
        SELECT string_agg(c ->> 'id', ',' ORDER BY n), coalesce(sum(pg_column_size(c -> 'data')), 0) / 1024
          INTO ids, data_kb FROM jsonb_array_elements(r -> 'changes') WITH ORDINALITY AS x(c, n);
        has_more := (r ->> 'hasMore')::boolean;
        RETURN NEXT;
        EXIT WHEN NOT has_more OR page > 50;
        cursor := r ->> 'cursor';
        r := smartsync.sync_pull(p_cursor => cursor, p_entity_types => 'clients');
    END LOOP;
END $$;

-- Twenty-four clients of 100 kB each, and one of 2 MB.
INSERT INTO pull_l.clients (id, practice_id, name, notes)
SELECT i, 1, 'c' || i, repeat(md5(i::text), 100000 / 32) FROM generate_series(1, 24) i;
INSERT INTO pull_l.clients (id, practice_id, name, notes) VALUES (25, 1, 'big', repeat('x', 2000000));

-- The byte budget of a page (a superuser setting, 8MB by default).  A page stops
-- before its changes' data would pass it, with hasMore: true; a single change
-- larger than the budget comes alone.  No page can fail for its size.
SHOW smartsync.pull_max_bytes;
SELECT smartsync.sync_pull(p_entity_types => 'clients') ->> 'cursor' AS c0 \gset
SET smartsync.pull_max_bytes = '1MB';
SELECT * FROM pg_temp.pages($$p_entity_types => 'clients'$$);
-- the change log drains the same way (clients 21 to 25 changed twice, by two
-- transactions: each comes once, as it is now, where its later change is in
-- the log; a page holds the rows whose data fits, in log order)
UPDATE pull_l.clients SET name = name || '+';
UPDATE pull_l.clients SET name = name || '+' WHERE id > 20;
SELECT page, changes, ids, data_kb, has_more
  FROM pg_temp.pages(format($$p_cursor => %L, p_entity_types => 'clients'$$, :'c0'));
-- p_limit bounds the rows as before
SELECT page, changes, has_more FROM pg_temp.pages($$p_entity_types => 'clients', p_limit => 4$$) WHERE page <= 2;
RESET smartsync.pull_max_bytes;
-- only a superuser sets it
CREATE ROLE regress_pull_reader;
SET ROLE regress_pull_reader;
SELECT pg_temp.try($$SET smartsync.pull_max_bytes = '1GB'$$);
RESET ROLE;
DROP ROLE regress_pull_reader;

-- p_since (the spec's lastSyncTimestamp) is read by the one strict parser:
-- integer epoch milliseconds or ISO 8601 with date, time and offset.
SELECT w AS p_since, pg_temp.try(format('SELECT smartsync.sync_pull(%L, p_entity_types => %L)', w, 'clients')) AS answer
  FROM unnest(ARRAY['1731200000000', '2024-11-10T12:00:00Z', '2024-11-10 12:00:00+00', '2024-11-10T13:00:00+01:00',
                    'now', 'today', 'tomorrow', 'yesterday', 'epoch', 'infinity', 'allballs', 'Jan 1 2024',
                    '2024-11-10', '2024-11-10T12:00:00', '+1731200000000', '1731200000000.5']) w;
-- an empty entity type list, or an empty element, is refused, not read as "every type"
SELECT pg_temp.try(format('SELECT smartsync.sync_pull(p_entity_types => %L)', t)) AS answer
  FROM unnest(ARRAY['', ',', 'clients,', ',clients', 'clients,,pets']) t;
-- p_practice_id is one practice whatever its spelling
SELECT pg_temp.try($$SELECT smartsync.sync_pull(p_practice_id => '1.0', p_entity_types => 'pets')$$) AS same_practice,
       pg_temp.try($$SELECT smartsync.sync_pull(p_practice_id => '2e0', p_entity_types => 'pets')$$) AS other_practice;

-- A pull by time includes its boundary: a change stamped exactly at p_since is
-- delivered (every change of one statement shares its stamp).
INSERT INTO pull_l.pets (id, practice_id, client_id, name) VALUES (1, 1, 1, 'Rex'), (2, 1, 1, 'Tom'), (3, 1, 2, 'Max');
SELECT to_jsonb(changed_at) #>> '{}' AS stamp FROM pull_l.sync_changes WHERE entity_type = 'pets' LIMIT 1 \gset
SELECT count(DISTINCT changed_at) AS stamps FROM pull_l.sync_changes WHERE entity_type = 'pets';
SELECT string_agg(c ->> 'id', ',' ORDER BY c ->> 'id') AS delivered
  FROM jsonb_array_elements(smartsync.sync_pull(:'stamp', p_entity_types => 'pets') -> 'changes') c;

-- The response's timestamp is a watermark: no transaction still running can
-- have stamped a change at or before it.  Here this session's own transaction
-- writes and then pulls: the timestamp is not after the transaction's start,
-- so its change, which another device receives only once it commits, is at or
-- after the timestamp that device would send back.
BEGIN;
INSERT INTO pull_l.pets (id, practice_id, client_id, name) VALUES (4, 1, 1, 'Kit');
SELECT (smartsync.sync_pull(p_entity_types => 'pets') ->> 'timestamp')::bigint
       <= (extract(epoch FROM transaction_timestamp()) * 1000)::bigint AS watermark_before_the_writer;
COMMIT;
SELECT (smartsync.sync_pull(p_entity_types => 'pets') ->> 'timestamp')::bigint
       <= (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS watermark_not_in_the_future;

RESET smartsync.tenant_id;
RESET smartsync.practice_id;
SET client_min_messages = warning;
DELETE FROM smartsync.tenants WHERE tenant_id = 'pull-l';
DROP SCHEMA pull_l CASCADE;
