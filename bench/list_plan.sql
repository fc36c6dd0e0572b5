-- The first-sync listing query of src/pull.c (run_list) on 100,000 rows of one
-- tenant table under row-level security, as a request role runs it: the form
-- before (to_jsonb in the scan, practice compared as text) and the form after
-- (to_jsonb above the LIMITed subquery, practice in its own type), each with
-- EXPLAIN ANALYZE, first page and a page in the middle; and the form of today
-- (the row's columns, converted to jsonb in C by rowjson.c, planned with
-- enable_sort off: the primary key's index order).
--   bash test/private.sh -- psql -X -f bench/list_plan.sql
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS smartsync;
CREATE SCHEMA lp_tpl;
CREATE TABLE lp_tpl.lp_items (
    id          bigint PRIMARY KEY,
    practice_id integer NOT NULL,
    name        text NOT NULL,
    species     text,
    qty         integer NOT NULL DEFAULT 0,
    notes       text
);
SELECT smartsync.register_entity_type('lp_items', 'lp_tpl.lp_items', practice_column => 'practice_id');
SELECT smartsync.provision_tenant('lp', 'tenant_lp');
INSERT INTO tenant_lp.lp_items (id, practice_id, name, species, qty, notes)
SELECT g, 1 + g % 4, 'pet ' || g, 'dog', g % 50, 'seen for a yearly checkup, all fine, next visit in a year'
  FROM generate_series(1, 100000) g;
ANALYZE tenant_lp.lp_items;
CREATE ROLE lp_user NOSUPERUSER;
GRANT USAGE ON SCHEMA tenant_lp, smartsync TO lp_user;
GRANT SELECT ON tenant_lp.lp_items TO lp_user;
SET smartsync.tenant_id = 'lp';
SET smartsync.practice_id = '1';
SET ROLE lp_user;
RESET client_min_messages;
PREPARE before_form(bigint, text, bigint) AS
    SELECT to_jsonb(t), t.id::text, t.version, t.updated_at FROM tenant_lp.lp_items t
     WHERE true AND t.practice_id::text = $2 ORDER BY t.id LIMIT $3;
PREPARE before_next(bigint, text, bigint) AS
    SELECT to_jsonb(t), t.id::text, t.version, t.updated_at FROM tenant_lp.lp_items t
     WHERE true AND t.id > $1 AND t.practice_id::text = $2 ORDER BY t.id LIMIT $3;
PREPARE after_form(bigint, integer, bigint) AS
    SELECT pg_catalog.to_jsonb(smartsync_l), smartsync_l.id::pg_catalog.text, smartsync_l.version, smartsync_l.updated_at
      FROM (SELECT * FROM tenant_lp.lp_items t WHERE true AND t.practice_id = $2::pg_catalog.int4
             ORDER BY t.id LIMIT $3) smartsync_l ORDER BY smartsync_l.id;
PREPARE after_next(bigint, integer, bigint) AS
    SELECT pg_catalog.to_jsonb(smartsync_l), smartsync_l.id::pg_catalog.text, smartsync_l.version, smartsync_l.updated_at
      FROM (SELECT * FROM tenant_lp.lp_items t WHERE true AND t.id > $1 AND t.practice_id = $2::pg_catalog.int4
             ORDER BY t.id LIMIT $3) smartsync_l ORDER BY smartsync_l.id;
\echo === before: first page
EXPLAIN (ANALYZE, BUFFERS OFF) EXECUTE before_form(NULL, '1', 1001);
\echo === after: first page
EXPLAIN (ANALYZE, BUFFERS OFF) EXECUTE after_form(NULL, 1, 1001);
\echo === before: page from id 50000
EXPLAIN (ANALYZE, BUFFERS OFF) EXECUTE before_next(50000, '1', 1001);
\echo === after: page from id 50000
EXPLAIN (ANALYZE, BUFFERS OFF) EXECUTE after_next(50000, 1, 1001);
PREPARE now_form(bigint, integer, bigint) AS
    SELECT t.* FROM tenant_lp.lp_items t WHERE true AND t.practice_id = $2::pg_catalog.int4 ORDER BY t.id LIMIT $3;
PREPARE now_next(bigint, integer, bigint) AS
    SELECT t.* FROM tenant_lp.lp_items t WHERE true AND t.id > $1 AND t.practice_id = $2::pg_catalog.int4 ORDER BY t.id LIMIT $3;
SET enable_sort = off;
\echo === now: first page
EXPLAIN (ANALYZE, BUFFERS OFF) EXECUTE now_form(NULL, 1, 1001);
\echo === now: page from id 50000
EXPLAIN (ANALYZE, BUFFERS OFF) EXECUTE now_next(50000, 1, 1001);
RESET enable_sort;
\echo === same rows, same JSON
SELECT count(*) AS rows, bool_and(a IS NOT DISTINCT FROM b) AS same
  FROM (SELECT to_jsonb(t) AS a, row_number() OVER (ORDER BY t.id) n FROM tenant_lp.lp_items t
         WHERE t.practice_id::text = '1' ORDER BY t.id LIMIT 1001) x
  FULL JOIN (SELECT to_jsonb(smartsync_l) AS b, row_number() OVER (ORDER BY smartsync_l.id) n
               FROM (SELECT * FROM tenant_lp.lp_items t WHERE t.practice_id = 1 ORDER BY t.id LIMIT 1001) smartsync_l) y
  USING (n);
