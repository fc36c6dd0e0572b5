-- The bad-payload corpus runner: every case of test/corpus/*.jsonl is sent to
-- sync_push, sync_pull or resolve_conflict as PostgREST would send it (the body
-- as text cast to jsonb in the call, GET parameters as text literals, the
-- request context as settings or request.jwt.claims), each case in its own
-- subtransaction that is rolled back afterwards.  A case passes when the call
-- answers with the case's SQLSTATE and wrote nothing: an error rolls the call
-- back whole; an operation refused inside a push (its code in results[].code)
-- leaves only its acknowledgement in the ledger (outcome "failed"), never a row,
-- a change-log row, an id-map row or a conflict.  No case may touch another
-- tenant.
--
-- Run it in an empty database (it installs smartsync), from the repository root:
--   psql -X -v ON_ERROR_STOP=1 -f test/corpus/run.sql
\set QUIET on
\pset footer off
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS smartsync;
\o /dev/null
\i examples/vet_schema.sql
\o

-- --- fixtures ---------------------------------------------------------------
-- Tenant corpus (the caller's) and corpus_other (someone else's), with rows.
SELECT smartsync.provision_tenant('corpus') \g /dev/null
SELECT smartsync.provision_tenant('corpus_other') \g /dev/null
INSERT INTO tenant_corpus.clients (id, practice_id, name) VALUES (1, 1, 'Ann'), (2, 1, 'Bob'), (3, 2, 'Cy'), (4, 1, 'Di');
INSERT INTO tenant_corpus.pets (id, practice_id, client_id, name) VALUES (10, 1, 1, 'Rex'), (11, 2, 3, 'Tom');
INSERT INTO tenant_corpus.appointments (id, practice_id, pet_id, title, date) VALUES (100, 1, 10, 'Checkup', '2024-11-10 12:00+00');
INSERT INTO tenant_corpus_other.clients (id, practice_id, name) SELECT i, 1, 'other ' || i FROM generate_series(1, 60) i;
ALTER TABLE tenant_corpus.clients ALTER COLUMN id RESTART WITH 1000;
ALTER TABLE tenant_corpus.pets ALTER COLUMN id RESTART WITH 1000;
ALTER TABLE tenant_corpus.appointments ALTER COLUMN id RESTART WITH 1000;

CREATE SCHEMA corpus;
CREATE TABLE corpus.fixture (name text PRIMARY KEY, value text NOT NULL);

-- Conflicts to resolve: stale updates pushed by a device (clients resolve manually).
CREATE FUNCTION corpus.push_as(p_tenant text, p_practice text, p_body jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('smartsync.tenant_id', p_tenant, true);
    PERFORM set_config('smartsync.practice_id', p_practice, true);
    PERFORM set_config('smartsync.user_id', '42', true);
    PERFORM set_config('smartsync.client_id', 'fixture-device', true);
    PERFORM set_config('smartsync.permissions', '*', true);
    RETURN smartsync.sync_push(p_body);
END $$;
CREATE FUNCTION corpus.make_conflict(p_tenant text, p_practice text, p_op text, p_client bigint, p_data jsonb) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE r jsonb;
BEGIN
    EXECUTE format('UPDATE %I.clients SET phone = coalesce(phone, '''') || ''1'' WHERE id = $1',
                   'tenant_' || p_tenant) USING p_client;
    r := corpus.push_as(p_tenant, p_practice, jsonb_build_object('operations', jsonb_build_array(
        jsonb_build_object('id', p_op, 'operation', 'update', 'entityType', 'clients',
                           'entityId', p_client, 'version', 1, 'data', p_data))));
    IF (r -> 'results' -> 0 ->> 'conflictId') IS NULL THEN
        RAISE EXCEPTION 'fixture conflict not made: %', r;
    END IF;
    RETURN (r -> 'results' -> 0 ->> 'conflictId')::bigint;
END $$;
BEGIN;
INSERT INTO corpus.fixture VALUES
  ('open',           corpus.make_conflict('corpus', '1', 'f1', 1, '{"phone": "111", "email": "a@example.com"}')),
  ('open_merge',     corpus.make_conflict('corpus', '1', 'f2', 2, '{"phone": "222"}')),
  ('resolved',       corpus.make_conflict('corpus', '1', 'f3', 4, '{"phone": "444"}')),
  ('other_practice', corpus.make_conflict('corpus', '2', 'f4', 3, '{"phone": "333"}'));
COMMIT;
-- the other tenant's conflicts have ids beyond any of ours
BEGIN;
SELECT corpus.make_conflict('corpus_other', '1', 'o' || i, i, jsonb_build_object('phone', 'o' || i))
  FROM generate_series(1, 50) i \g /dev/null
INSERT INTO corpus.fixture SELECT 'other_tenant', max(conflict_id)::text FROM tenant_corpus_other.sync_conflicts;
COMMIT;
BEGIN;
SELECT set_config('smartsync.tenant_id', 'corpus', true), set_config('smartsync.practice_id', '1', true),
       set_config('smartsync.permissions', '*', true) \g /dev/null
SELECT smartsync.resolve_conflict((SELECT value::bigint FROM corpus.fixture WHERE name = 'resolved'), 'server-wins') \g /dev/null
COMMIT;
-- one open conflict whose server row changed after it was recorded
BEGIN;
INSERT INTO corpus.fixture VALUES ('stale', corpus.make_conflict('corpus', '1', 'f5', 4, '{"email": "d@example.com"}'));
COMMIT;
UPDATE tenant_corpus.clients SET notes = 'changed since' WHERE id = 4;
INSERT INTO corpus.fixture VALUES ('missing', '987654321');


-- Cursors: a valid one of tenant corpus, one of the other tenant, one of
-- another scope, one from before a prune (must refetch), tampered ones.
CREATE FUNCTION corpus.pull_as(p_tenant text, p_types text DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('smartsync.tenant_id', p_tenant, true);
    PERFORM set_config('smartsync.practice_id', '1', true);
    PERFORM set_config('smartsync.client_id', 'corpus-device', true);
    PERFORM set_config('smartsync.permissions', '', true);
    RETURN smartsync.sync_pull(p_entity_types => p_types, p_limit => 10000);
END $$;
BEGIN;
INSERT INTO corpus.fixture
SELECT 'cursor', corpus.pull_as('corpus') ->> 'cursor'
UNION ALL SELECT 'cursor_other_tenant', corpus.pull_as('corpus_other') ->> 'cursor'
UNION ALL SELECT 'cursor_pets_only', corpus.pull_as('corpus', 'pets') ->> 'cursor';
COMMIT;
INSERT INTO corpus.fixture
SELECT 'cursor_tampered', left(value, 10) || CASE substr(value, 11, 1) WHEN 'A' THEN 'B' ELSE 'A' END || substr(value, 12)
  FROM corpus.fixture WHERE name = 'cursor'
-- (extended by a whole group of four characters, so that the text still decodes and only the signature fails)
UNION ALL SELECT 'cursor_truncated', left(value, 8) FROM corpus.fixture WHERE name = 'cursor'
UNION ALL SELECT 'cursor_extended', value || 'AAAA' FROM corpus.fixture WHERE name = 'cursor';

-- A tenant whose change log was pruned after a client took its cursor.
SELECT smartsync.provision_tenant('corpus_pruned') \g /dev/null
INSERT INTO tenant_corpus_pruned.clients (id, practice_id, name) VALUES (1, 1, 'Ann');
BEGIN;
INSERT INTO corpus.fixture SELECT 'cursor_pruned', corpus.pull_as('corpus_pruned') ->> 'cursor';
COMMIT;
INSERT INTO tenant_corpus_pruned.clients (id, practice_id, name) VALUES (2, 1, 'Bob');
SELECT smartsync.prune_changes('corpus_pruned', interval '0') \g /dev/null

-- --- the corpus --------------------------------------------------------------
CREATE TABLE corpus.raw (line text);
\copy corpus.raw FROM 'test/corpus/push.jsonl' WITH (FORMAT csv, DELIMITER E'\x1f', QUOTE E'\x1e')
\copy corpus.raw FROM 'test/corpus/pull.jsonl' WITH (FORMAT csv, DELIMITER E'\x1f', QUOTE E'\x1e')
\copy corpus.raw FROM 'test/corpus/resolve.jsonl' WITH (FORMAT csv, DELIMITER E'\x1f', QUOTE E'\x1e')
CREATE TABLE corpus.cases AS
SELECT row_number() OVER () AS n, line::jsonb AS c
  FROM corpus.raw WHERE line IS NOT NULL AND line !~ '^\s*(#|$)';

-- every case is well formed
DO $$
DECLARE bad text;
BEGIN
    SELECT string_agg(x, '; ') INTO bad FROM (
        SELECT coalesce(c ->> 'name', c::text) AS x FROM corpus.cases
         WHERE c ->> 'name' IS NULL OR c ->> 'target' IS NULL OR c ->> 'target' NOT IN ('push', 'pull', 'resolve')
            OR coalesce(c ->> 'expect', '') !~ '^[0-9A-Z]{5}(,[0-9A-Z]{5})*$'
            OR (c ->> 'target' = 'push') <> (c ?| ARRAY['payload', 'body', 'body_sql'])
        UNION ALL
        SELECT (c ->> 'target') || ': ' || (c ->> 'name') || ' (twice)' FROM corpus.cases
         GROUP BY c ->> 'target', c ->> 'name' HAVING count(*) > 1) t;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'malformed corpus cases: %', bad;
    END IF;
END $$;

-- A fixture value for "$name" strings, the string itself otherwise.
CREATE FUNCTION corpus.subst(v text) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN v LIKE '$%' THEN coalesce((SELECT value FROM corpus.fixture WHERE name = substr(v, 2)), v) ELSE v END
$$;

-- A call argument as SQL: NULL, an expression {"sql": ...}, or a text literal.
CREATE FUNCTION corpus.arg(v jsonb) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN v IS NULL OR jsonb_typeof(v) = 'null' THEN 'NULL'
                WHEN jsonb_typeof(v) = 'object' AND v ? 'sql' THEN '(' || (v ->> 'sql') || ')'
                WHEN jsonb_typeof(v) = 'string' THEN quote_literal(corpus.subst(v #>> '{}'))
                ELSE quote_literal(v::text) END
$$;

-- What the tenants hold: the counts a case must leave alone.
CREATE FUNCTION corpus.counts() RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object(
        'rows', (SELECT count(*) FROM tenant_corpus.clients) + (SELECT count(*) FROM tenant_corpus.pets)
              + (SELECT count(*) FROM tenant_corpus.appointments) + (SELECT count(*) FROM tenant_corpus.practitioners)
              + (SELECT count(*) FROM tenant_corpus.soap_notes) + (SELECT count(*) FROM tenant_corpus.invoices),
        'versions', (SELECT coalesce(sum(version), 0) FROM tenant_corpus.clients) + (SELECT coalesce(sum(version), 0) FROM tenant_corpus.pets),
        'changes', (SELECT count(*) FROM tenant_corpus.sync_changes),
        'id_map', (SELECT count(*) FROM tenant_corpus.sync_id_map),
        'conflicts', (SELECT count(*) FROM tenant_corpus.sync_conflicts),
        'open_conflicts', (SELECT count(*) FROM tenant_corpus.sync_conflicts WHERE status = 'open'),
        'ledger', (SELECT count(*) FROM tenant_corpus.sync_ledger WHERE outcome <> 'failed'),
        'other_tenant', (SELECT count(*) FROM tenant_corpus_other.sync_changes) + (SELECT count(*) FROM tenant_corpus_other.sync_ledger)
                      + (SELECT count(*) FROM tenant_corpus_other.sync_conflicts WHERE status = 'open')
                      + (SELECT count(*) FROM tenant_corpus_other.clients),
        'tenants', (SELECT count(*) FROM smartsync.tenants))
$$;
CREATE FUNCTION corpus.failed_ledger() RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM tenant_corpus.sync_ledger WHERE outcome = 'failed' $$;

CREATE TABLE corpus.result (n bigint, name text, target text, expect text, got text, raised boolean,
                            wrote text, message text, longest int);

-- No answer may quote a client value whole: the longest error message or detail
-- (of the call, or of a refused operation's result) stays below this.
CREATE FUNCTION corpus.max_message() RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT 600';

-- Runs one case in a subtransaction and rolls it back; returns what happened.
CREATE FUNCTION corpus.run_case(c jsonb) RETURNS corpus.result
LANGUAGE plpgsql AS $$
DECLARE
    ctx jsonb := coalesce(c -> 'context', '{}');
    args jsonb := coalesce(c -> 'args', '{}');
    body text;
    call text;
    r jsonb;
    res corpus.result;
    before jsonb;
    after jsonb;
    failed_before bigint;
    nfailed bigint;
    k text;
    v jsonb;
    params text[] := '{}';
BEGIN
    res.name := c ->> 'name';
    res.target := c ->> 'target';
    res.expect := c ->> 'expect';
    BEGIN
        -- the request context: smartsync.* settings, or PostgREST's claims
        PERFORM set_config('smartsync.tenant_id', coalesce(ctx ->> 'tenant_id', 'corpus'), true);
        PERFORM set_config('smartsync.practice_id', coalesce(ctx ->> 'practice_id', '1'), true);
        PERFORM set_config('smartsync.user_id', coalesce(ctx ->> 'user_id', '42'), true);
        PERFORM set_config('smartsync.client_id', coalesce(ctx ->> 'client_id', 'corpus-device'), true);
        PERFORM set_config('smartsync.permissions', coalesce(ctx ->> 'permissions', '*'), true);
        PERFORM set_config('smartsync.batch_size', coalesce(ctx ->> 'batch_size', '50'), true);
        -- superuser settings a case needs (limits): {"settings": {"max_value_size": "1kB"}}
        FOR k, v IN SELECT * FROM jsonb_each(coalesce(c -> 'settings', '{}')) LOOP
            PERFORM set_config('smartsync.' || k, v #>> '{}', true);
        END LOOP;
        PERFORM set_config('request.jwt.claims', coalesce(c ->> 'claims', ''), true);
        before := corpus.counts();
        failed_before := corpus.failed_ledger();
        BEGIN
            IF res.target = 'push' THEN
                IF c ? 'body_sql' THEN
                    EXECUTE 'SELECT (' || (c ->> 'body_sql') || ')::text' INTO body;
                ELSIF c ? 'body' THEN
                    body := c ->> 'body';
                ELSE
                    body := (c -> 'payload')::text;
                END IF;
                EXECUTE 'SELECT smartsync.sync_push($1::jsonb)' INTO r USING body;
            ELSIF res.target = 'pull' THEN
                FOR k, v IN SELECT * FROM jsonb_each(args) LOOP
                    params := params || format('%I => %s', k, corpus.arg(v));
                END LOOP;
                call := format('SELECT smartsync.sync_pull(%s)', array_to_string(params, ', '));
                EXECUTE call INTO r;
            ELSE
                call := format('SELECT smartsync.resolve_conflict(conflict_id => %s, strategy => %s, resolved_data => %s)',
                    corpus.arg(args -> 'conflict_id'), corpus.arg(args -> 'strategy'),
                    CASE WHEN args ? 'resolved_data_text' THEN corpus.arg(args -> 'resolved_data_text') || '::jsonb'
                         WHEN args -> 'resolved_data' IS NULL OR jsonb_typeof(args -> 'resolved_data') = 'null' THEN 'NULL'
                         ELSE quote_literal((args -> 'resolved_data')::text) || '::jsonb' END);
                EXECUTE call INTO r;
            END IF;
            res.raised := false;
            -- per-operation outcomes of a push: the codes of the refused operations
            SELECT string_agg(DISTINCT coalesce(x ->> 'code', CASE WHEN (x ->> 'conflict')::boolean THEN 'conflict' ELSE '?' END), ','),
                   count(*) FILTER (WHERE x ->> 'code' IS NOT NULL)
              INTO res.got, nfailed
              FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r -> 'results') = 'array' THEN r -> 'results' ELSE '[]' END) x
             WHERE NOT coalesce((x ->> 'success')::boolean, false);
            res.got := coalesce(res.got, 'ok');
            SELECT max(greatest(length(x ->> 'error'), length(x ->> 'detail'))) INTO res.longest
              FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r -> 'results') = 'array' THEN r -> 'results' ELSE '[]' END) x;
            -- all or nothing: a refused atomic batch records nothing at all
            IF (r ->> 'atomic')::boolean IS TRUE AND NOT (r ->> 'success')::boolean THEN
                nfailed := 0;
            END IF;
            res.message := left(r::text, 200);
        EXCEPTION WHEN OTHERS THEN
            res.raised := true;
            res.got := SQLSTATE;
            res.message := SQLERRM;
            GET STACKED DIAGNOSTICS body = PG_EXCEPTION_DETAIL;
            res.longest := greatest(length(SQLERRM), length(body));
            nfailed := 0;
        END;
        after := corpus.counts();
        -- an error wrote nothing (it rolled back); refused operations leave only their acknowledgement
        SELECT string_agg(format('%s %s->%s', b.key, b.value, a.value), ', ' ORDER BY b.key)
          INTO res.wrote
          FROM jsonb_each(before) b JOIN jsonb_each(after) a USING (key)
         WHERE a.value <> b.value;
        IF coalesce(res.longest, 0) > corpus.max_message() THEN
            res.wrote := concat_ws(', ', res.wrote, format('a message of %s characters', res.longest));
            res.message := left(res.message, 300);
        END IF;
        IF corpus.failed_ledger() - failed_before <> nfailed THEN
            res.wrote := concat_ws(', ', res.wrote, format('failed acknowledgements %s for %s refused operations',
                                                          corpus.failed_ledger() - failed_before, nfailed));
        END IF;
        RAISE EXCEPTION USING ERRCODE = 'ZC999', MESSAGE = row_to_json(res)::text;
    EXCEPTION WHEN SQLSTATE 'ZC999' THEN
        res := json_populate_record(NULL::corpus.result, SQLERRM::json);
    END;
    RETURN res;
END $$;

-- --- run ---------------------------------------------------------------------
DO $$
DECLARE
    c record;
    res corpus.result;
BEGIN
    FOR c IN SELECT * FROM corpus.cases ORDER BY n LOOP
        res := corpus.run_case(c.c);
        res.n := c.n;
        INSERT INTO corpus.result SELECT res.*;
    END LOOP;
END $$;


\echo
\echo 'cases by target and expected SQLSTATE:'
SELECT target, expect, count(*) AS cases, count(*) FILTER (WHERE got = expect AND wrote IS NULL) AS passed
  FROM corpus.result GROUP BY 1, 2 ORDER BY 1, 2;

\echo 'failures (none expected):'
SELECT name, expect, got, wrote, left(message, 160) AS message
  FROM corpus.result WHERE got <> expect OR wrote IS NOT NULL ORDER BY n;

-- nothing of any case survived, and the other tenant is untouched
DO $$
BEGIN
    IF (SELECT count(*) FROM tenant_corpus.sync_ledger WHERE client_id <> 'fixture-device') > 0
       OR (SELECT count(*) FROM tenant_corpus_other.sync_ledger WHERE client_id <> 'fixture-device') > 0 THEN
        RAISE EXCEPTION 'a corpus case left something behind';
    END IF;
END $$;

SELECT format('corpus: %s passed, %s failed', count(*) FILTER (WHERE got = expect AND wrote IS NULL),
              count(*) FILTER (WHERE got <> expect OR wrote IS NOT NULL)) AS summary,
       count(*) FILTER (WHERE got <> expect OR wrote IS NOT NULL) AS nfailed
  FROM corpus.result \gset
\echo :summary
SELECT :nfailed = 0 AS ok \gset
\if :ok
\else
DO $$ BEGIN RAISE EXCEPTION 'the corpus failed'; END $$;
\endif
