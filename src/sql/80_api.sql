-- The PostgREST surface and tenant isolation (README section "PostgREST").
--
--   * smartsync.current_tenant_id() / current_practice_id(): the request
--     context in SQL, for row-level security policies;
--   * smartsync._secure_tenant(): row-level security (ENABLE + FORCE) and the
--     api owner's privileges on every table of a tenant schema, called by
--     provisioning for every tenant and every table added later;
--   * smartsync.http_status() and smartsync._api_*(): the HTTP status of every
--     smartsync SQLSTATE, and the invoker-rights bodies of the api functions,
--     which turn smartsync errors into PostgREST responses;
--   * smartsync.setup_postgrest(): roles (authenticator, anonymous, web, and
--     the api owner smartsync_api) and the exposed schema (api) with its
--     SECURITY DEFINER wrappers owned by smartsync_api.
--
-- smartsync_api is not a superuser and has no BYPASSRLS, so everything an api
-- function reads or writes goes through the tenant's row-level security
-- policies: even a bug that pointed the C code at another tenant's schema
-- would read no row of it and write none.

-- The tenant of the request context, or NULL: the claims' tenant_id (or tenantId)
-- when request.jwt.claims is set, else the smartsync.tenant_id setting.  In C
-- (src/context.c): the policies call it once per statement, and a SQL function
-- with a pinned search_path is planned again by every statement.
CREATE FUNCTION smartsync.current_tenant_id()
RETURNS text
LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'smartsync_current_tenant_id';
COMMENT ON FUNCTION smartsync.current_tenant_id() IS
'the request context''s tenant id as row-level security sees it: the tenant_id (or tenantId) claim when request.jwt.claims is set, else the smartsync.tenant_id setting; NULL when none';

-- The practice of the request context, or NULL, read like current_tenant_id(),
-- in the canonical form the C context uses: a number, whether sent as 1, "1",
-- 1.0 or 1e0, is written without exponent and trailing zeros ("1").
CREATE FUNCTION smartsync.current_practice_id()
RETURNS text
LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'smartsync_current_practice_id';
COMMENT ON FUNCTION smartsync.current_practice_id() IS
'the request context''s practice id as row-level security sees it: the practice_id (or practiceId) claim when request.jwt.claims is set, else the smartsync.practice_id setting, a number in canonical form (1, "1", 1.0 and 1e0 are "1"); NULL when none';

-- Internal: row-level security and the api owner's privileges on the tables of
-- tenant schema s (only table t when given).  Idempotent.
--   every table:   ENABLE + FORCE ROW LEVEL SECURITY; policy smartsync_tenant
--                  lets a context see and write the rows only when its tenant is
--                  the schema's (the tenant id is baked in as a literal);
--   practice:      a RESTRICTIVE policy smartsync_practice on entity tables with
--                  a practice column (rows of the context's practice only) and on
--                  sync_changes / sync_conflicts (the practice's rows and those
--                  of no practice), when the context names a practice;
--   smartsync_api: USAGE on the schema; entity tables SELECT, INSERT, UPDATE,
--                  DELETE; sync_changes and sync_pull_horizon SELECT (capture
--                  appends to the log by direct heap insertion, without a
--                  privilege check); other sync_* tables SELECT, INSERT, UPDATE.
CREATE FUNCTION smartsync._secure_tenant(s name, only_table name DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET client_min_messages = warning
AS $$
DECLARE
    v_tenant text;
    v_api    boolean := EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'smartsync_api');
    -- evaluated once per statement.  On Citus (85_citus.sql): no subquery (refused
    -- in policies) and num_nulls() for IS NULL (which fails Citus' check of a
    -- policy added to a distributed table)
    v_citus        constant boolean := smartsync._citus_enabled();
    v_ctx_tenant   constant text := CASE WHEN v_citus THEN 'smartsync.current_tenant_id()'
                                         ELSE '(SELECT smartsync.current_tenant_id())' END;
    v_ctx_practice constant text := CASE WHEN v_citus THEN 'smartsync.current_practice_id()'
                                         ELSE '(SELECT smartsync.current_practice_id())' END;
    r record;
    v_practice text;
BEGIN
    SELECT t.tenant_id INTO v_tenant FROM smartsync.tenants t WHERE t.schema_name = s;
    IF v_tenant IS NULL THEN
        RETURN;     -- not a tenant schema (yet)
    END IF;
    IF v_api THEN
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO smartsync_api', s);
    END IF;

    FOR r IN
        SELECT c.oid::regclass AS rel, c.relname, e.entity_type, e.practice_column
          FROM pg_class c
          LEFT JOIN smartsync.entity_types e ON e.table_name = c.relname
         WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = s)
           AND c.relkind IN ('r', 'p')
           AND (e.entity_type IS NOT NULL OR c.relname LIKE 'sync\_%')
           AND (only_table IS NULL OR c.relname = only_table)
         ORDER BY c.relname
    LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', r.rel);
        EXECUTE format('DROP POLICY IF EXISTS smartsync_tenant ON %s', r.rel);
        -- FOR ALL with USING only: the same condition checks new rows (a WITH CHECK
        -- repeating it would be stored and parsed twice by every backend opening the table)
        EXECUTE format('CREATE POLICY smartsync_tenant ON %s AS PERMISSIVE FOR ALL USING (%s = %L)',
                       r.rel, v_ctx_tenant, v_tenant);
        EXECUTE format('COMMENT ON POLICY smartsync_tenant ON %s IS %L', r.rel,
                       format('smartsync: only requests of tenant %s see or write these rows', v_tenant));

        v_practice := CASE
            WHEN r.entity_type IS NOT NULL AND r.practice_column IS NOT NULL
                 AND smartsync._field_column(r.rel, r.practice_column) IS NOT NULL
                THEN format(CASE WHEN v_citus THEN 'pg_catalog.num_nulls(%1$s) > 0 OR %2$I::text = %1$s'
                                 ELSE '%1$s IS NULL OR %2$I::text = %1$s' END, v_ctx_practice, r.practice_column)
            WHEN r.entity_type IS NULL AND r.relname IN ('sync_changes', 'sync_conflicts')
                THEN format(CASE WHEN v_citus THEN 'pg_catalog.num_nulls(%1$s, practice_id) > 0 OR practice_id = %1$s'
                                 ELSE '%1$s IS NULL OR practice_id IS NULL OR practice_id = %1$s' END, v_ctx_practice)
            END;
        EXECUTE format('DROP POLICY IF EXISTS smartsync_practice ON %s', r.rel);
        IF v_practice IS NOT NULL THEN
            EXECUTE format('CREATE POLICY smartsync_practice ON %s AS RESTRICTIVE FOR ALL USING (%s)',
                           r.rel, v_practice);
            EXECUTE format('COMMENT ON POLICY smartsync_practice ON %s IS %L', r.rel,
                           'smartsync: a request that names a practice sees and writes only that practice''s rows');
        END IF;

        IF v_api THEN
            EXECUTE format('REVOKE ALL ON %s FROM smartsync_api', r.rel);
            EXECUTE format('GRANT %s ON %s TO smartsync_api',
                CASE WHEN r.entity_type IS NOT NULL THEN 'SELECT, INSERT, UPDATE, DELETE'
                     WHEN r.relname IN ('sync_changes', 'sync_pull_horizon', 'sync_log_origin') THEN 'SELECT'
                     ELSE 'SELECT, INSERT, UPDATE' END,
                r.rel);
        END IF;
    END LOOP;

    IF v_api THEN
        FOR r IN SELECT c.oid::regclass AS seq FROM pg_class c
                  WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = s)
                    AND c.relkind = 'S' LOOP
            EXECUTE format('GRANT USAGE, SELECT ON SEQUENCE %s TO smartsync_api', r.seq);
        END LOOP;
    END IF;
END
$$;
COMMENT ON FUNCTION smartsync._secure_tenant(name, name) IS
'internal: row-level security (ENABLE + FORCE, tenant and practice policies) and the api owner''s privileges on a tenant schema''s tables; idempotent';

-- --- HTTP statuses ---------------------------------------------------------

-- The HTTP status PostgREST answers for a SQLSTATE smartsync defines (class
-- SS), NULL for any other code: another class (PostgREST's own mapping applies
-- to those: 42501 -> 403 or 401, 23505 -> 409, ...) or an SS code smartsync
-- does not define.  The api answers an error whose code has no status with 400.
-- The table is in src/api.c, which the api functions' error translation reads.
CREATE FUNCTION smartsync.http_status(sqlstate text)
RETURNS integer
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'smartsync_http_status';
COMMENT ON FUNCTION smartsync.http_status(text) IS
'the HTTP status the api answers for a SQLSTATE smartsync defines (class SS): 400 invalid request, 401 no or malformed identity, 403 forbidden, 404 unknown conflict, 409 stale or concurrent, 410 must refetch, 413 too large, 428 no base version, 500 server configuration, 503 tenant moving between nodes (retry); NULL for any other code (another class, or an SS code smartsync does not define), which the api answers with 400';

-- Internal: the bodies of the api functions (src/api.c), under the names an api
-- schema made by 0.2.0's setup_postgrest() calls (its SQL wrappers run them as
-- the api owner); setup_postgrest() now makes the api functions themselves C
-- functions of the same code.  Each refuses a caller that bypasses row-level
-- security (SS701) and a request without JWT claims (SS201), merges the spec's
-- parameter names with smartsync's (SS702 when they disagree), calls the
-- smartsync function, and raises its smartsync errors as PostgREST's custom
-- error: SQLSTATE PGRST, the message a JSON body {code, message, details, hint}
-- with the smartsync SQLSTATE as code, the detail {status, headers} with the
-- status of http_status() (400 when none).  Other errors pass unchanged.
CREATE FUNCTION smartsync._api_sync_push(payload jsonb)
RETURNS jsonb
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'smartsync_api_sync_push';
COMMENT ON FUNCTION smartsync._api_sync_push(jsonb) IS
'internal: body of api.sync_push: smartsync.sync_push with smartsync errors as PostgREST responses';

CREATE FUNCTION smartsync._api_sync_pull(
    p_since        text,
    p_cursor       text,
    p_entity_types text,
    p_practice_id  text,
    p_limit        integer,
    last_sync_timestamp text,
    practice_id    text,
    entity_types   text)
RETURNS jsonb
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'smartsync_api_sync_pull';
COMMENT ON FUNCTION smartsync._api_sync_pull(text, text, text, text, integer, text, text, text) IS
'internal: body of api.sync_pull: smartsync.sync_pull with the spec''s parameter names and smartsync errors as PostgREST responses';

CREATE FUNCTION smartsync._api_sync_changed(
    p_cursor       text,
    p_entity_types text,
    p_practice_id  text,
    entity_types   text,
    practice_id    text)
RETURNS boolean
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'smartsync_api_sync_changed';
COMMENT ON FUNCTION smartsync._api_sync_changed(text, text, text, text, text) IS
'internal: body of api.sync_changed: smartsync.sync_changed with the spec''s parameter names and smartsync errors as PostgREST responses';

-- the conflict endpoints (issue 6's functions)
CREATE FUNCTION smartsync._api_resolve_conflict(conflict_id bigint, strategy text, resolved_data jsonb)
RETURNS jsonb
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'smartsync_api_resolve_conflict';

CREATE FUNCTION smartsync._api_list_conflicts(p_entity_type text, p_severity text, p_min_age interval, p_limit integer,
                                              p_after bigint DEFAULT NULL)
RETURNS jsonb
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'smartsync_api_list_conflicts';

CREATE FUNCTION smartsync._api_conflict_stats()
RETURNS jsonb
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'smartsync_api_conflict_stats';

-- --- roles and the exposed schema --------------------------------------------

-- Internal: raises SS703 unless role r may serve the api (no SUPERUSER, BYPASSRLS).
CREATE FUNCTION smartsync._check_api_role(r name, what text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r AND (rolsuper OR rolbypassrls)) THEN
        PERFORM smartsync._raise('SS703', format('role %I cannot be the %s role', r, what),
            'It is a superuser or has BYPASSRLS, so row-level security would not apply to it.',
            'Choose another role name, or ALTER ROLE it NOSUPERUSER NOBYPASSRLS.');
    END IF;
END
$$;

CREATE FUNCTION smartsync.setup_postgrest(
    authenticator_password text DEFAULT NULL,
    anon_role  name DEFAULT 'anon',
    web_role   name DEFAULT 'web_user',
    api_schema name DEFAULT 'api')
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET client_min_messages = warning
AS $$
DECLARE
    v_new_schema boolean;
    v_conflicts  boolean := to_regprocedure('smartsync.resolve_conflict(bigint, text, jsonb)') IS NOT NULL
                        AND to_regprocedure('smartsync.list_conflicts(text, text, interval, integer, bigint)') IS NOT NULL
                        AND to_regprocedure('smartsync.conflict_stats()') IS NOT NULL;
    v_functions  text[] := ARRAY['sync_push(jsonb)',
                                 'sync_pull(text, text, text, text, integer, text, text, text)',
                                 'sync_changed(text, text, text, text, text)'];
    f text;
    t record;
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        PERFORM smartsync._raise('SS703', 'smartsync.setup_postgrest() must be run by a superuser',
            'It creates roles, grants privileges on every tenant schema and makes smartsync_api own the api functions.');
    END IF;
    FOR f IN SELECT unnest(ARRAY[anon_role, web_role, api_schema]) LOOP
        IF f IS NULL OR f !~ '^[a-z_][a-z0-9_]{0,62}$' OR f IN ('authenticator', 'smartsync_api', 'public', 'smartsync')
           OR f LIKE 'pg\_%' THEN
            PERFORM smartsync._raise('SS703', format('invalid role or schema name %L', f),
                'Role and schema names are lower-case identifiers other than authenticator, smartsync_api, public, smartsync and pg_*.');
        END IF;
    END LOOP;
    IF anon_role = web_role THEN
        PERFORM smartsync._raise('SS703', 'the anonymous and the web role must differ',
            'The anonymous role must not reach any tenant data.');
    END IF;
    IF EXISTS (SELECT 1 FROM smartsync.tenants WHERE schema_name = api_schema) THEN
        PERFORM smartsync._raise('SS703', format('schema %I is a tenant schema', api_schema));
    END IF;

    -- roles (cluster-wide): create the missing ones, check and fix the existing ones
    PERFORM smartsync._check_api_role(anon_role, 'anonymous');
    PERFORM smartsync._check_api_role(web_role, 'web');
    PERFORM smartsync._check_api_role('authenticator', 'authenticator');
    -- a request role that can log in would let its holder choose any claims
    FOR f IN SELECT rolname FROM pg_roles WHERE rolname IN (anon_role, web_role) AND rolcanlogin LOOP
        PERFORM smartsync._raise('SS703', format('role %I can log in', f),
            'The anonymous and web roles are reached only through authenticator: whoever can log in as one can set any JWT claims.',
            format('ALTER ROLE %I NOLOGIN, or choose another role name.', f));
    END LOOP;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'smartsync_api') THEN
        CREATE ROLE smartsync_api NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
    END IF;
    ALTER ROLE smartsync_api NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
    IF smartsync._citus_enabled() THEN
        ALTER ROLE smartsync_api LOGIN;   -- Citus connects to the workers as the current user
    END IF;
    COMMENT ON ROLE smartsync_api IS 'smartsync: owns the api functions; reads and writes tenant data through row-level security; nobody logs in as or is granted it';
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = anon_role) THEN
        EXECUTE format('CREATE ROLE %I NOLOGIN', anon_role);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = web_role) THEN
        EXECUTE format('CREATE ROLE %I NOLOGIN', web_role);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticator') THEN
        CREATE ROLE authenticator LOGIN NOINHERIT;
    END IF;
    ALTER ROLE authenticator LOGIN NOINHERIT;
    IF authenticator_password IS NOT NULL THEN
        EXECUTE format('ALTER ROLE authenticator PASSWORD %L', authenticator_password);
    END IF;
    EXECUTE format('GRANT %I, %I TO authenticator', anon_role, web_role);
    FOR t IN SELECT m.member::regrole AS member FROM pg_auth_members m
              WHERE m.roleid = web_role::regrole AND m.member <> 'authenticator'::regrole LOOP
        RAISE WARNING 'role % is a member of the web role %, so it can set any JWT claims', t.member, web_role
            USING HINT = format('REVOKE %I FROM %s, unless that role is as trusted as PostgREST.', web_role, t.member);
    END LOOP;
    -- nobody may become smartsync_api
    FOR t IN SELECT m.member::regrole AS member FROM pg_auth_members m
              WHERE m.roleid = 'smartsync_api'::regrole LOOP
        EXECUTE format('REVOKE smartsync_api FROM %s', t.member);
    END LOOP;

    -- a server (@smartsync/server) logged in as authenticator polls for changes
    GRANT USAGE ON SCHEMA smartsync TO authenticator;
    GRANT EXECUTE ON FUNCTION smartsync.poll_changes(text, text[]) TO authenticator;

    -- what smartsync_api may use in the smartsync schema
    GRANT USAGE ON SCHEMA smartsync TO smartsync_api;
    GRANT SELECT ON smartsync.tenants, smartsync.entity_types TO smartsync_api;
    GRANT EXECUTE ON FUNCTION smartsync._raise(text, text, text, text) TO smartsync_api;

    -- every tenant schema: row-level security and smartsync_api's privileges
    FOR t IN SELECT schema_name FROM smartsync.tenants ORDER BY tenant_id LOOP
        PERFORM smartsync._secure_tenant(t.schema_name);
    END LOOP;

    -- the exposed schema and its functions, owned by smartsync_api
    v_new_schema := to_regnamespace(api_schema) IS NULL;
    EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I', api_schema);
    IF v_new_schema THEN
        EXECUTE format('REVOKE ALL ON SCHEMA %I FROM PUBLIC', api_schema);
        EXECUTE format('COMMENT ON SCHEMA %I IS %L', api_schema,
            'smartsync: offline-first sync. POST /rpc/sync_push sends offline operations; GET /rpc/sync_pull fetches changes; GET /rpc/sync_changed says whether there are any.');
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I, %I, smartsync_api', api_schema, anon_role, web_role);

    EXECUTE format($f$
        CREATE OR REPLACE FUNCTION %1$I.sync_push(jsonb)
        RETURNS jsonb
        LANGUAGE c VOLATILE SECURITY DEFINER
        SET search_path = pg_catalog, pg_temp
        AS 'MODULE_PATHNAME', 'smartsync_api_sync_push';
        COMMENT ON FUNCTION %1$I.sync_push(jsonb) IS
$c$Push offline operations (the spec's POST /api/sync/push)

Body: {"operations": [{"id", "operation": "create"|"update"|"delete", "entityType", "entityId", "data", "version", "timestamp", "requiredPermissions"}], "clientTimestamp", "atomic"}. Every operation is applied once per (client, operation id), parents first, temporary ids mapped to real ids, conflicts detected and resolved or stored. Response: {"success", "processed", "failed", "conflicts", "results": [...]}. Tenant, practice, user, client and permissions come from the JWT claims, never from the body. Errors: {"code": smartsync SQLSTATE, "message", "details", "hint"} with status 400, 401, 403 or 413.$c$;
    $f$, api_schema);

    -- 0.2.0's sync_pull took p_since as timestamptz: drop it, or PostgREST would see two
    EXECUTE format('DROP FUNCTION IF EXISTS %I.sync_pull(timestamptz, text, text, text, integer, text, text, text)',
                   api_schema);
    EXECUTE format($f$
        CREATE OR REPLACE FUNCTION %1$I.sync_pull(
            p_since        text DEFAULT NULL,
            p_cursor       text DEFAULT NULL,
            p_entity_types text DEFAULT NULL,
            p_practice_id  text DEFAULT NULL,
            p_limit        integer DEFAULT NULL,
            "lastSyncTimestamp" text DEFAULT NULL,
            "practiceId"   text DEFAULT NULL,
            "entityTypes"  text DEFAULT NULL)
        RETURNS jsonb
        LANGUAGE c STABLE SECURITY DEFINER
        SET search_path = pg_catalog, pg_temp
        AS 'MODULE_PATHNAME', 'smartsync_api_sync_pull';
        COMMENT ON FUNCTION %1$I.sync_pull(text, text, text, text, integer, text, text, text) IS
$c$Pull server changes (the spec's GET /api/sync/pull)

One page of changes for the JWT's tenant (and practice): {"success", "timestamp", "changes": [{"entityType", "operation", "id", "data", "updatedAt", "version"}], "hasMore", "cursor", "full"}. Send the returned cursor as p_cursor for the exact next page; without a cursor the first pull lists the live rows. p_entity_types: comma-separated entity types; p_limit: page size. The spec's lastSyncTimestamp (milliseconds since 1970, or ISO 8601 with offset), practiceId and entityTypes are accepted as aliases of p_since, p_practice_id and p_entity_types; the response's timestamp is a safe watermark to send back as lastSyncTimestamp. Errors: 400, 401, 403, and 410 when the cursor is older than the change-log retention (pull again without a cursor).$c$;
    $f$, api_schema);

    EXECUTE format($f$
        CREATE OR REPLACE FUNCTION %1$I.sync_changed(
            p_cursor       text DEFAULT NULL,
            p_entity_types text DEFAULT NULL,
            p_practice_id  text DEFAULT NULL,
            "entityTypes"  text DEFAULT NULL,
            "practiceId"   text DEFAULT NULL)
        RETURNS boolean
        LANGUAGE c STABLE SECURITY DEFINER
        SET search_path = pg_catalog, pg_temp
        AS 'MODULE_PATHNAME', 'smartsync_api_sync_changed';
        COMMENT ON FUNCTION %1$I.sync_changed(text, text, text, text, text) IS
$c$Has anything changed since a pull cursor?

true when GET /rpc/sync_pull with the same p_cursor (and p_entity_types, p_practice_id) would return changes now, or when the cursor is in the middle of a listing or drain (its response said hasMore), or without a cursor; false when it would return nothing. Exact, and far cheaper than a pull: poll it every few seconds and pull when it says true. Errors: those of sync_pull for the same parameters (400, 401, 403, 410).$c$;
    $f$, api_schema);

    IF v_conflicts THEN
        v_functions := v_functions || ARRAY['resolve_conflict(bigint, text, jsonb)',
                                             'list_conflicts(text, text, interval, integer, bigint)',
                                             'conflict_stats()'];
        EXECUTE format($f$
            CREATE OR REPLACE FUNCTION %1$I.resolve_conflict(conflict_id bigint, strategy text, resolved_data jsonb DEFAULT NULL)
            RETURNS jsonb
            LANGUAGE c VOLATILE SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp
            AS 'MODULE_PATHNAME', 'smartsync_api_resolve_conflict';
            COMMENT ON FUNCTION %1$I.resolve_conflict(bigint, text, jsonb) IS
$c$Resolve a stored conflict of the JWT's tenant

Body: {"conflict_id", "strategy": "server-wins"|"client-wins"|"merge"|"last-write-wins"|"manual", "resolved_data"} (resolved_data with manual). Errors: 404 for a conflict the tenant does not have, 409 when it is already resolved or the row changed since.$c$;

            -- (an api schema set up by 0.2.0 has list_conflicts without p_after)
            DROP FUNCTION IF EXISTS %1$I.list_conflicts(text, text, interval, integer);
            CREATE OR REPLACE FUNCTION %1$I.list_conflicts(p_entity_type text DEFAULT NULL, p_severity text DEFAULT NULL,
                                                           p_min_age interval DEFAULT NULL, p_limit integer DEFAULT 100,
                                                           p_after bigint DEFAULT NULL)
            RETURNS jsonb
            LANGUAGE c STABLE SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp
            AS 'MODULE_PATHNAME', 'smartsync_api_list_conflicts';
            COMMENT ON FUNCTION %1$I.list_conflicts(text, text, interval, integer, bigint) IS
$c$List the open conflicts of the JWT's tenant (and practice)

Filters: p_entity_type, p_severity (low, medium, high, critical), p_min_age (an interval such as 1 hour), p_limit. Pages: send the response's "next" (the last conflictId) as p_after for the next page.$c$;

            CREATE OR REPLACE FUNCTION %1$I.conflict_stats()
            RETURNS jsonb
            LANGUAGE c STABLE SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp
            AS 'MODULE_PATHNAME', 'smartsync_api_conflict_stats';
            COMMENT ON FUNCTION %1$I.conflict_stats() IS
$c$Conflict statistics of the JWT's tenant (and practice)$c$;
        $f$, api_schema);
    END IF;

    FOREACH f IN ARRAY v_functions LOOP
        EXECUTE format('ALTER FUNCTION %I.%s OWNER TO smartsync_api', api_schema, f);
        EXECUTE format('REVOKE ALL ON FUNCTION %I.%s FROM PUBLIC', api_schema, f);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %I.%s TO %I', api_schema, f, web_role);
    END LOOP;

    -- a running PostgREST reloads its schema cache
    NOTIFY pgrst, 'reload schema';

    RETURN jsonb_build_object(
        'authenticator', 'authenticator', 'anon_role', anon_role, 'web_role', web_role,
        'owner', 'smartsync_api', 'schema', api_schema,
        'functions', (SELECT jsonb_agg(p.oid::regprocedure::text ORDER BY p.proname)
                        FROM pg_proc p WHERE p.pronamespace = to_regnamespace(api_schema)
                         AND p.proowner = 'smartsync_api'::regrole),
        'tenants', (SELECT count(*) FROM smartsync.tenants));
END
$$;
COMMENT ON FUNCTION smartsync.setup_postgrest(text, name, name, name) IS
'set up PostgREST access (idempotent; superuser): roles authenticator (LOGIN NOINHERIT, password if given), the anonymous and web roles (NOLOGIN), smartsync_api (NOLOGIN, owns the api functions); the exposed schema with sync_push, sync_pull, sync_changed and the conflict endpoints, executable by the web role only; row-level security and privileges on every tenant schema; authenticator may call smartsync.poll_changes()';

REVOKE ALL ON FUNCTION smartsync.setup_postgrest(text, name, name, name) FROM PUBLIC;
REVOKE ALL ON FUNCTION smartsync._secure_tenant(name, name) FROM PUBLIC;
REVOKE ALL ON FUNCTION smartsync._check_api_role(name, text) FROM PUBLIC;
