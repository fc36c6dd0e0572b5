-- Upgrades: every ALTER EXTENSION smartsync UPDATE path that the installed
-- scripts offer must end in exactly the objects a fresh CREATE EXTENSION of the
-- default version makes: the same functions (definitions, privileges), tables
-- (columns, constraints, indexes, triggers, policies, privileges), types,
-- comments and configuration tables.  Upgrade scripts start at 0.2.0: a release
-- keeps its install script as upgrade/smartsync--A.sql and adds
-- upgrade/smartsync--A--B.sql (README, "Upgrading").  The walk runs in a
-- database of its own.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS smartsync;
SELECT current_database() AS regress_db \gset
DROP DATABASE IF EXISTS smartsync_upgrade;
CREATE DATABASE smartsync_upgrade;
\c smartsync_upgrade
SET client_min_messages = warning;

SELECT default_version FROM pg_available_extensions WHERE name = 'smartsync';

-- Every object that belongs to the extension, with what defines it.
CREATE FUNCTION public.ext_objects()
RETURNS TABLE (object text, definition text)
LANGUAGE sql STABLE AS $$
    WITH m AS (
        SELECT d.classid, d.objid
          FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
         WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' AND e.extname = 'smartsync')
    SELECT pg_describe_object(m.classid, m.objid, 0),
           CASE m.classid
           WHEN 'pg_proc'::regclass THEN
               (SELECT pg_get_functiondef(p.oid) || ' acl ' || coalesce(p.proacl::text, '-')
                       || ' comment ' || coalesce(obj_description(p.oid, 'pg_proc'), '-')
                  FROM pg_proc p WHERE p.oid = m.objid)
           WHEN 'pg_class'::regclass THEN
               (SELECT c.relkind::text || ' acl ' || coalesce(c.relacl::text, '-')
                       || ' rls ' || c.relrowsecurity || c.relforcerowsecurity
                       || ' comment ' || coalesce(obj_description(c.oid, 'pg_class'), '-')
                       || ' columns ' || coalesce((SELECT string_agg(format('%s %s%s%s', a.attname, format_type(a.atttypid, a.atttypmod),
                                                                          CASE WHEN a.attnotnull THEN ' not null' ELSE '' END,
                                                                          coalesce(' default ' || pg_get_expr(ad.adbin, ad.adrelid), '')),
                                                                   ', ' ORDER BY a.attnum)
                                                     FROM pg_attribute a LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
                                                    WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '-')
                       || ' constraints ' || coalesce((SELECT string_agg(con.conname || ' ' || pg_get_constraintdef(con.oid), ', ' ORDER BY con.conname)
                                                         FROM pg_constraint con WHERE con.conrelid = c.oid), '-')
                       || ' indexes ' || coalesce((SELECT string_agg(pg_get_indexdef(i.indexrelid), ', ' ORDER BY 1)
                                                     FROM pg_index i WHERE i.indrelid = c.oid), '-')
                       || ' triggers ' || coalesce((SELECT string_agg(pg_get_triggerdef(t.oid), ', ' ORDER BY t.tgname)
                                                      FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal), '-')
                       || ' policies ' || coalesce((SELECT string_agg(format('%s %s %s %s', pol.polname, pol.polcmd,
                                                                             pg_get_expr(pol.polqual, pol.polrelid),
                                                                             pg_get_expr(pol.polwithcheck, pol.polrelid)), ', ' ORDER BY pol.polname)
                                                      FROM pg_policy pol WHERE pol.polrelid = c.oid), '-')
                  FROM pg_class c WHERE c.oid = m.objid)
           WHEN 'pg_type'::regclass THEN
               (SELECT format_type(t.oid, NULL) || ' ' || t.typtype::text FROM pg_type t WHERE t.oid = m.objid)
           WHEN 'pg_namespace'::regclass THEN
               (SELECT coalesce(n.nspacl::text, '-') FROM pg_namespace n WHERE n.oid = m.objid)
           ELSE '' END
      FROM m
    UNION ALL
    -- configuration tables (pg_dump keeps their rows) and the extension's own settings
    SELECT 'extension smartsync',
           format('relocatable %s config %s conditions %s', e.extrelocatable,
                  (SELECT array_agg(c::regclass::text ORDER BY c::regclass::text) FROM unnest(e.extconfig) c),
                  e.extcondition)
      FROM pg_extension e WHERE e.extname = 'smartsync'
$$;

CREATE TABLE public.fresh AS SELECT * FROM public.ext_objects() WHERE false;
CREATE TABLE public.upgraded (source text, object text, definition text);

-- The reference: a fresh install of the default version.
DROP EXTENSION IF EXISTS smartsync CASCADE;
CREATE EXTENSION smartsync;
INSERT INTO public.fresh SELECT * FROM public.ext_objects();
SELECT count(*) > 30 AS has_objects FROM public.fresh;

-- Every version that can be updated to the default one: install it, update,
-- describe.  (An install script without such a path, e.g. one left behind by
-- an older development build, is not a release and is skipped.)
CREATE TABLE public.paths AS
SELECT source, path FROM pg_extension_update_paths('smartsync')
 WHERE target = (SELECT default_version FROM pg_available_extensions WHERE name = 'smartsync')
   AND path IS NOT NULL;
SELECT source, path FROM public.paths ORDER BY string_to_array(source, '.')::int[];
DO $$
DECLARE
    p record;
BEGIN
    FOR p IN SELECT source FROM public.paths LOOP
        DROP EXTENSION IF EXISTS smartsync CASCADE;
        EXECUTE format('CREATE EXTENSION smartsync VERSION %L', p.source);
        ALTER EXTENSION smartsync UPDATE;
        INSERT INTO public.upgraded SELECT p.source, o.* FROM public.ext_objects() o;
    END LOOP;
END $$;

-- Differences between each upgraded install and the fresh one (none expected).
SELECT p.source, d.object, d.difference
  FROM public.paths p,
  LATERAL (SELECT coalesce(u.object, f.object) AS object,
                  CASE WHEN u.object IS NULL THEN 'missing after the upgrade'
                       WHEN f.object IS NULL THEN 'only after the upgrade'
                       ELSE 'defined differently' END AS difference
             FROM (SELECT * FROM public.upgraded x WHERE x.source = p.source) u
             FULL JOIN public.fresh f ON f.object = u.object
            WHERE u.definition IS DISTINCT FROM f.definition) d
 ORDER BY 1, 2;

-- The comparison can fail: an install missing one function and with another
-- defined differently shows both.
DROP EXTENSION smartsync CASCADE;
CREATE EXTENSION smartsync;
ALTER EXTENSION smartsync DROP FUNCTION smartsync.merge(jsonb, jsonb);
DROP FUNCTION smartsync.merge(jsonb, jsonb);
COMMENT ON FUNCTION smartsync.row_hash(jsonb, text[]) IS 'changed';
SELECT coalesce(n.object, f.object) AS object,
       CASE WHEN n.object IS NULL THEN 'missing' ELSE 'defined differently' END AS difference
  FROM public.ext_objects() n FULL JOIN public.fresh f ON f.object = n.object
 WHERE n.definition IS DISTINCT FROM f.definition
 ORDER BY 1;

\c :regress_db
DROP DATABASE smartsync_upgrade;
