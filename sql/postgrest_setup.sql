-- PostgREST setup: smartsync.setup_postgrest() makes the roles, the exposed
-- schema "api" and its functions, and secures every tenant schema.  Roles are
-- cluster-wide, so the setup is idempotent and accepts roles that exist.
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
SELECT smartsync.provision_tenant('pgrst-setup', 'pgrst_setup');
RESET client_min_messages;

-- Run it twice: the second run changes nothing and succeeds.
SELECT r - 'tenants' AS setup FROM smartsync.setup_postgrest() AS r;
SELECT r - 'tenants' AS setup FROM smartsync.setup_postgrest() AS r;

-- The roles: authenticator logs in and inherits nothing (PostgREST switches to
-- anon or web_user per request); nobody is a superuser or bypasses RLS; nobody
-- can become smartsync_api.
SELECT rolname, rolcanlogin AS login, rolinherit AS inherit, rolsuper AS super, rolbypassrls AS bypassrls
  FROM pg_roles WHERE rolname IN ('authenticator', 'anon', 'web_user', 'smartsync_api') ORDER BY rolname;
SELECT r.rolname AS role, m.rolname AS member
  FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member
 WHERE r.rolname IN ('authenticator', 'anon', 'web_user', 'smartsync_api') ORDER BY 1, 2;

-- The exposed schema holds only the api functions: SECURITY DEFINER, owned by
-- smartsync_api, search_path pinned, GET-able ones STABLE, each with a comment
-- for PostgREST's OpenAPI.
SELECT p.oid::regprocedure AS function, pg_get_userbyid(p.proowner) AS owner, p.prosecdef AS definer,
       p.provolatile AS volatility, p.proconfig, obj_description(p.oid, 'pg_proc') IS NOT NULL AS commented
  FROM pg_proc p WHERE p.pronamespace = 'api'::regnamespace ORDER BY p.proname;
SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'api'::regnamespace;
-- No function of the extension is SECURITY DEFINER; all that run SQL pin search_path.
SELECT count(*) FILTER (WHERE p.prosecdef) AS definer_functions,
       string_agg(p.proname, ', ' ORDER BY p.proname) FILTER (WHERE p.prolang IN
           (SELECT oid FROM pg_language WHERE lanname IN ('sql', 'plpgsql'))
           AND NOT coalesce(p.proconfig @> '{"search_path=pg_catalog, pg_temp"}', false)) AS unpinned
  FROM pg_proc p WHERE p.pronamespace = 'smartsync'::regnamespace;

-- Who may call what: only the web role executes the api; the anonymous role
-- sees the schema (PostgREST answers it 401); nobody but smartsync_api reaches
-- the smartsync schema or a tenant schema.
SELECT r AS role,
       has_schema_privilege(r, 'api', 'USAGE') AS api_usage,
       has_function_privilege(r, 'api.sync_push(jsonb)', 'EXECUTE') AS push,
       has_function_privilege(r, 'api.sync_pull(text, text, text, text, integer, text, text, text)', 'EXECUTE') AS pull,
       has_schema_privilege(r, 'smartsync', 'USAGE') AS smartsync_usage,
       has_schema_privilege(r, 'pgrst_setup', 'USAGE') AS tenant_usage,
       has_table_privilege(r, 'smartsync.pull_secret', 'SELECT') AS secret
  FROM unnest(ARRAY['anon', 'web_user', 'authenticator', 'smartsync_api']) AS r ORDER BY r;
SELECT has_function_privilege('public', 'smartsync.setup_postgrest(text, name, name, name)', 'EXECUTE') AS public_can_setup;

-- Every table of a tenant schema: row-level security enabled and forced, and
-- smartsync_api's privileges (the change log only readable: capture appends to it
-- by direct heap insertion).
SELECT c.relname, c.relrowsecurity AS rls, c.relforcerowsecurity AS forced,
       array_to_string(ARRAY(SELECT p FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) AS p
                              WHERE has_table_privilege('smartsync_api', c.oid, p)), ',') AS api_privileges,
       has_table_privilege('web_user', c.oid, 'SELECT') AS web_select,
       has_table_privilege('anon', c.oid, 'SELECT') AS anon_select
  FROM pg_class c WHERE c.relnamespace = 'pgrst_setup'::regnamespace AND c.relkind = 'r' ORDER BY c.relname;
-- The policies: the tenant literal, the practice of the context.
SELECT c.relname, p.polname, CASE WHEN p.polpermissive THEN 'permissive' ELSE 'restrictive' END AS kind,
       pg_get_expr(p.polqual, p.polrelid) AS using_expr
  FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
 WHERE c.relnamespace = 'pgrst_setup'::regnamespace AND c.relname IN ('pets', 'sync_changes', 'sync_ledger')
 ORDER BY c.relname, p.polname;

-- An entity type registered later is secured in every tenant at once.
CREATE TABLE vet_template.pgrst_setup_labs (id bigint PRIMARY KEY, practice_id integer, result text);
SELECT smartsync.register_entity_type('pgrst_setup_labs', 'vet_template.pgrst_setup_labs', practice_column => 'practice_id');
SELECT relrowsecurity AS rls, relforcerowsecurity AS forced,
       has_table_privilege('smartsync_api', oid, 'INSERT') AS api_insert,
       (SELECT count(*) FROM pg_policy WHERE polrelid = c.oid) AS policies
  FROM pg_class c WHERE oid = 'pgrst_setup.pgrst_setup_labs'::regclass;
SELECT smartsync.unregister_entity_type('pgrst_setup_labs');

-- The context as row-level security reads it: the claims when set, else the settings.
SELECT smartsync.current_tenant_id() AS tenant, smartsync.current_practice_id() AS practice;
SET smartsync.tenant_id = 'pgrst-setup';
SET smartsync.practice_id = '3';
SELECT smartsync.current_tenant_id() AS tenant, smartsync.current_practice_id() AS practice;
BEGIN;
SELECT set_config('request.jwt.claims', '{"role":"web_user","tenantId":"t-9","practiceId":4}', true) IS NOT NULL AS set;
SELECT smartsync.current_tenant_id() AS tenant, smartsync.current_practice_id() AS practice;
SELECT set_config('request.jwt.claims', '{"role":"anon"}', true) IS NOT NULL AS set;
SELECT smartsync.current_tenant_id() AS tenant, smartsync.current_practice_id() AS practice;
COMMIT;
RESET smartsync.tenant_id;
RESET smartsync.practice_id;

-- The two are C (a SQL function with a pinned search_path is planned again in
-- every statement a policy checks); they answer exactly what their former SQL
-- bodies, kept here as the reference, answer: for claims of every shape, a
-- cached answer never outliving its claims, and for the settings.
CREATE FUNCTION pg_temp.ref_tenant() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN coalesce(current_setting('request.jwt.claims', true), '') = ''
                THEN nullif(current_setting('smartsync.tenant_id', true), '')
                ELSE (SELECT coalesce(c ->> 'tenant_id', c ->> 'tenantId')
                        FROM (SELECT current_setting('request.jwt.claims', true)::jsonb) AS s(c)
                       WHERE jsonb_typeof(c) = 'object')
           END $$;
CREATE FUNCTION pg_temp.ref_practice() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN length(p.v) <= 64 AND p.v ~ '^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]{1,3})?$'
                THEN trim_scale(p.v::numeric)::text
                ELSE p.v END
      FROM (SELECT CASE WHEN coalesce(current_setting('request.jwt.claims', true), '') = ''
                        THEN nullif(current_setting('smartsync.practice_id', true), '')
                        ELSE (SELECT coalesce(c ->> 'practice_id', c ->> 'practiceId')
                                FROM (SELECT current_setting('request.jwt.claims', true)::jsonb) AS s(c)
                               WHERE jsonb_typeof(c) = 'object')
                   END) AS p(v) $$;
CREATE FUNCTION pg_temp.rls_agrees(claims text, tenant_setting text, practice_setting text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    c_t text; c_p text; r_t text; r_p text;
BEGIN
    PERFORM set_config('request.jwt.claims', claims, true),
            set_config('smartsync.tenant_id', tenant_setting, true),
            set_config('smartsync.practice_id', practice_setting, true);
    BEGIN
        c_t := smartsync.current_tenant_id(); c_p := smartsync.current_practice_id();
    EXCEPTION WHEN OTHERS THEN c_t := 'error ' || SQLSTATE; c_p := c_t;
    END;
    BEGIN
        r_t := pg_temp.ref_tenant(); r_p := pg_temp.ref_practice();
    EXCEPTION WHEN OTHERS THEN r_t := 'error ' || SQLSTATE; r_p := r_t;
    END;
    RETURN CASE WHEN c_t IS NOT DISTINCT FROM r_t AND c_p IS NOT DISTINCT FROM r_p
                THEN format('same: %s / %s', coalesce(c_t, 'NULL'), coalesce(c_p, 'NULL'))
                ELSE format('DIFFERENT: C %s / %s, SQL %s / %s', c_t, c_p, r_t, r_p) END;
END $$;
BEGIN;
SELECT n, claims, pg_temp.rls_agrees(claims, tenant_setting, practice_setting) AS answer
  FROM (VALUES
    (1, '', 't-set', '7'),
    (2, '', '', ''),
    (3, '', 't-set', '1.50'),
    (4, '', 't-set', 'front desk'),
    (5, '{"tenant_id":"t-1","practice_id":2}', 't-set', '7'),
    (6, '{"tenant_id":"t-1","practice_id":2}', 't-set', '7'),
    (7, '{"tenantId":"t-2","practiceId":"3.0"}', '', ''),
    (8, '{"tenant_id":"t-3","tenantId":"t-4","practice_id":"1e0","practiceId":9}', '', ''),
    (9, '{"tenant_id":null,"tenantId":"t-5","practice_id":null,"practiceId":"-0.50"}', '', ''),
    (10, '{"tenant_id":12,"practice_id":1.25e2}', '', ''),
    (11, '{"tenant_id":true,"practice_id":false}', '', ''),
    (12, '{"tenant_id":{"a":[1,2]},"practice_id":[3]}', '', ''),
    (13, '{"tenant_id":"","practice_id":""}', '', ''),
    (14, '{"tenant_id":"t-6","practice_id":"01"}', '', ''),
    (15, '{"tenant_id":"t-6","practice_id":"1e1234"}', '', ''),
    (16, '{"tenant_id":"t-6","practice_id":"12345678901234567890123456789012345678901234567890123456789012345"}', '', ''),
    (17, '{"role":"anon"}', 't-set', '7'),
    (18, '[{"tenant_id":"t-7"}]', 't-set', '7'),
    (19, '"t-8"', 't-set', '7'),
    (20, 'null', 't-set', '7'),
    (21, '{"tenant_id":"t-9"', 't-set', '7'),
    (22, '{"tenant_id":"t-1","practice_id":2}', 't-set', '7'),
    (23, '{"tenant_id":"t-\u00e9","practice_id":" 4"}', '', '')
  ) AS v(n, claims, tenant_setting, practice_setting)
 ORDER BY n;
COMMIT;

-- The HTTP status of every smartsync SQLSTATE (the README's table).  Other
-- SQLSTATEs keep PostgREST's own mapping, and an SS code smartsync does not
-- define has no status either (NULL here; the api answers both kinds with 400
-- when they reach it as smartsync errors).
SELECT smartsync.http_status(c) AS status, string_agg(c, ' ' ORDER BY c) AS sqlstates
  FROM unnest(ARRAY['SS101', 'SS103', 'SS104', 'SS105', 'SS106', 'SS107', 'SS108', 'SS109', 'SS110', 'SS111',
                    'SS112', 'SS113', 'SS120', 'SS121', 'SS122', 'SS123', 'SS201', 'SS202', 'SS203', 'SS301', 'SS302',
                    'SS303', 'SS304', 'SS305', 'SS401', 'SS402', 'SS403', 'SS404', 'SS405', 'SS406', 'SS407',
                    'SS408', 'SS409', 'SS410', 'SS411', 'SS412', 'SS420', 'SS421', 'SS422', 'SS423', 'SS424', 'SS425',
                    'SS426', 'SS427', 'SS428', 'SS429', 'SS430', 'SS501', 'SS502', 'SS503', 'SS504', 'SS505', 'SS506',
                    'SS507', 'SS508', 'SS509', 'SS510', 'SS511', 'SS601', 'SS602', 'SS603', 'SS604', 'SS605', 'SS606',
                    'SS607', 'SS608', 'SS609', 'SS610', 'SS611', 'SS701', 'SS702', 'SS703', 'SS851', 'SS852', 'SS853',
                    'SS999', 'SS400', 'ss401', 'SS4011', '42501', '23505', 'P0001', NULL]) AS c
 GROUP BY 1 ORDER BY 1;

-- Another role that is a member of the web role could set any claims: a warning.
CREATE ROLE pgrst_setup_member IN ROLE web_user;
SELECT smartsync.setup_postgrest() ->> 'web_role' AS web_role;
DROP ROLE pgrst_setup_member;

-- An api function owned by a role that bypasses row-level security (here the
-- superuser running this test) refuses to run: SS701, HTTP 500.  Running the
-- setup again gives it back to smartsync_api.
ALTER FUNCTION api.sync_pull(text, text, text, text, integer, text, text, text) OWNER TO CURRENT_USER;
BEGIN;
SELECT set_config('role', 'web_user', true) IS NOT NULL AS as_web_user,
       set_config('request.jwt.claims', '{"role":"web_user","tenant_id":"pgrst-setup"}', true) IS NOT NULL AS claims;
\set SHOW_CONTEXT never
SELECT api.sync_pull();
ROLLBACK;
SELECT smartsync.setup_postgrest() ->> 'owner' AS owner;
SELECT pg_get_userbyid(proowner) AS sync_pull_owner
  FROM pg_proc WHERE oid = 'api.sync_pull(text, text, text, text, integer, text, text, text)'::regprocedure;

-- Setup errors.
\set VERBOSITY sqlstate
SELECT smartsync.setup_postgrest(anon_role => 'web_user');
SELECT smartsync.setup_postgrest(web_role => 'Web User');
SELECT smartsync.setup_postgrest(api_schema => 'pgrst_setup');
CREATE ROLE pgrst_setup_super SUPERUSER;
SELECT smartsync.setup_postgrest(web_role => 'pgrst_setup_super');
DROP ROLE pgrst_setup_super;
CREATE ROLE pgrst_setup_login LOGIN;
SELECT smartsync.setup_postgrest(web_role => 'pgrst_setup_login');
DROP ROLE pgrst_setup_login;
CREATE ROLE pgrst_setup_admin CREATEROLE;
SET ROLE pgrst_setup_admin;
SELECT smartsync.setup_postgrest();
RESET ROLE;
DROP ROLE pgrst_setup_admin;
\set VERBOSITY default
