-- A first sync's listing (run_list in src/pull.c) converts to JSON only the
-- rows of its page: the page is chosen in a subquery (filter, order, limit)
-- and to_jsonb() applied above it, so a plan that sorts the whole table (as
-- the planner picks when row-level security makes it expect one row) sorts
-- plain rows, not their JSON.  The practice filter compares the column in its
-- own type; a practice id no value of that type has lists nothing, without an
-- error.  A column whose type converts to JSON through a cast counts the
-- conversions (a sequence the cast function advances).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS smartsync;
SELECT smartsync.setup_postgrest() IS NOT NULL AS api;
RESET client_min_messages;
CREATE SEQUENCE public.pl_conversions;
GRANT USAGE ON SEQUENCE public.pl_conversions TO PUBLIC;
CREATE TYPE public.pl_kind AS ENUM ('cat', 'dog');
CREATE FUNCTION public.pl_kind_json(k public.pl_kind) RETURNS json LANGUAGE sql VOLATILE
AS $$ SELECT CASE WHEN nextval('public.pl_conversions') > 0 THEN to_json(k::text) END $$;
CREATE CAST (public.pl_kind AS json) WITH FUNCTION public.pl_kind_json(public.pl_kind);
CREATE FUNCTION pg_temp.conversions() RETURNS bigint LANGUAGE sql AS $$
    SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM public.pl_conversions $$;

CREATE SCHEMA pl_tpl;
CREATE TABLE pl_tpl.pl_items (id integer PRIMARY KEY, practice_id integer NOT NULL,
                              kind public.pl_kind NOT NULL, name text NOT NULL);
SELECT smartsync.register_entity_type('pl_items', 'pl_tpl.pl_items', practice_column => 'practice_id');
SET client_min_messages = warning;
SELECT smartsync.provision_tenant('pl', 'tenant_pl');
RESET client_min_messages;
INSERT INTO tenant_pl.pl_items
SELECT g, 1 + g % 3, CASE WHEN g % 2 = 0 THEN 'cat' ELSE 'dog' END::public.pl_kind, 'pet ' || g
  FROM generate_series(1, 3000) g;
ANALYZE tenant_pl.pl_items;

-- A page of 10 as the api runs it (its owner, under row-level security):
-- practice 1's rows 3, 6, ..., 30, each the row's JSON; at most the page and
-- the one after it converted, not the table's 1,000 rows of practice 1.
SELECT setval('public.pl_conversions', 1, false) IS NOT NULL AS reset;
SET ROLE smartsync_api;
SELECT set_config('request.jwt.claims', '{"role":"web_user","tenant_id":"pl","practice_id":1,"client_id":"pl-tablet","permissions":["*"]}', false) IS NOT NULL AS claims;
SELECT smartsync.sync_pull(p_entity_types => 'pl_items', p_limit => 10) AS r \gset
RESET ROLE;
SELECT pg_temp.conversions() <= 11 AS only_the_page_converted;
SELECT (:'r'::jsonb)->'hasMore' AS has_more,
       string_agg(c->>'id', ',' ORDER BY n) AS ids,
       bool_and(c->'data' = (SELECT to_jsonb(t) FROM tenant_pl.pl_items t WHERE t.id = (c->>'id')::int)) AS rows_as_json
  FROM jsonb_array_elements((:'r'::jsonb)->'changes') WITH ORDINALITY AS x(c, n);
SELECT ((:'r'::jsonb)->'changes'->0->'data') - 'updated_at' AS first_row;

-- The next page goes on from the last id, with the same bound.
SELECT setval('public.pl_conversions', 1, false) IS NOT NULL AS reset;
SET ROLE smartsync_api;
SELECT smartsync.sync_pull(p_cursor => (:'r'::jsonb)->>'cursor', p_entity_types => 'pl_items', p_limit => 10) AS r \gset
RESET ROLE;
SELECT pg_temp.conversions() <= 11 AS only_the_page_converted;
SELECT string_agg(c->>'id', ',' ORDER BY n) AS ids,
       bool_and(c->'data' = (SELECT to_jsonb(t) FROM tenant_pl.pl_items t WHERE t.id = (c->>'id')::int)) AS rows_as_json
  FROM jsonb_array_elements((:'r'::jsonb)->'changes') WITH ORDINALITY AS x(c, n);

-- Practice ids no integer has as its text: nothing listed, no error.
SET ROLE smartsync_api;
SELECT set_config('request.jwt.claims', '{"role":"web_user","tenant_id":"pl","practice_id":"north","client_id":"pl-tablet","permissions":["*"]}', false) IS NOT NULL AS claims;
SELECT jsonb_array_length(smartsync.sync_pull(p_entity_types => 'pl_items')->'changes') AS north;
SELECT set_config('request.jwt.claims', '{"role":"web_user","tenant_id":"pl","practice_id":"99999999999","client_id":"pl-tablet","permissions":["*"]}', false) IS NOT NULL AS claims;
SELECT jsonb_array_length(smartsync.sync_pull(p_entity_types => 'pl_items')->'changes') AS out_of_range;
-- and a practice of no row, one that has rows
SELECT set_config('request.jwt.claims', '{"role":"web_user","tenant_id":"pl","practice_id":7,"client_id":"pl-tablet","permissions":["*"]}', false) IS NOT NULL AS claims;
SELECT jsonb_array_length(smartsync.sync_pull(p_entity_types => 'pl_items')->'changes') AS practice_7;
SELECT set_config('request.jwt.claims', '{"role":"web_user","tenant_id":"pl","practice_id":"2","client_id":"pl-tablet","permissions":["*"]}', false) IS NOT NULL AS claims;
SELECT jsonb_array_length(smartsync.sync_pull(p_entity_types => 'pl_items', p_limit => 1000)->'changes') AS practice_2;
RESET ROLE;
SELECT set_config('request.jwt.claims', '', false) IS NOT NULL AS claims_reset;

-- (registering the type made its table in every tenant: those go too)
SET client_min_messages = warning;
SELECT smartsync.unregister_entity_type('pl_items');
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT c.oid::regclass AS rel FROM pg_class c
              WHERE c.relname = 'pl_items' AND c.relkind = 'r' AND c.relnamespace <> 'pl_tpl'::regnamespace LOOP
        EXECUTE format('DROP TABLE %s', r.rel);
    END LOOP;
END $$;
DELETE FROM smartsync.tenants WHERE tenant_id = 'pl';
DROP SCHEMA tenant_pl CASCADE;
DROP SCHEMA pl_tpl CASCADE;
DROP CAST (public.pl_kind AS json);
DROP FUNCTION public.pl_kind_json(public.pl_kind);
DROP TYPE public.pl_kind;
DROP SEQUENCE public.pl_conversions;
