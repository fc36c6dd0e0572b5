-- smartsync 0.2.0 -> 0.3.0
\echo Use "ALTER EXTENSION smartsync UPDATE TO '0.3.0'" to load this file. \quit

-- Every change to the extension's SQL objects between 0.2.0 and 0.3.0, one section per
-- change; sql/upgrade.sql checks that an updated 0.2.0 equals a fresh 0.3.0.

-- i15-server: the change signal: smartsync.tenants.notify and its registry trigger (src/notify.c), smartsync.poll_changes (src/poll.c)
ALTER TABLE smartsync.tenants ADD COLUMN notify boolean NOT NULL DEFAULT true;
COMMENT ON COLUMN smartsync.tenants.notify IS
'whether a commit that wrote to the tenant''s change log is signalled on the channel smartsync_changes, when the setting smartsync.notify is on (it is off by default)';

CREATE FUNCTION smartsync._notify_registry_changed()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'smartsync_notify_registry_changed';
COMMENT ON FUNCTION smartsync._notify_registry_changed() IS
'internal: AFTER STATEMENT trigger of smartsync.tenants: every backend forgets the tenants it cached for the change signal';
REVOKE ALL ON FUNCTION smartsync._notify_registry_changed() FROM PUBLIC;
CREATE TRIGGER notify_registry_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON smartsync.tenants
    FOR EACH STATEMENT EXECUTE FUNCTION smartsync._notify_registry_changed();

CREATE FUNCTION smartsync.poll_changes(p_watermark text DEFAULT NULL, p_tenants text[] DEFAULT NULL)
RETURNS jsonb
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'smartsync_poll_changes';
COMMENT ON FUNCTION smartsync.poll_changes(text, text[]) IS
'the change signal a server polls: {"watermark", "changes": [{"tenant", "practices": [...] or null for every practice}]}, the tenants (all, or those of p_tenants) with changes committed since p_watermark (the previous result''s watermark), each reported once; without a watermark only a watermark; reads the change logs directly (no privileges, no row-level security), so not executable by PUBLIC: setup_postgrest() grants it to authenticator';
REVOKE ALL ON FUNCTION smartsync.poll_changes(text, text[]) FROM PUBLIC;

-- i15-server: smartsync.sync_changed (src/changed.c), and api.sync_changed made by setup_postgrest()
CREATE FUNCTION smartsync.sync_changed(
    p_cursor       text,
    p_entity_types text DEFAULT NULL,
    p_practice_id  text DEFAULT NULL)
RETURNS boolean
LANGUAGE c STABLE
SET plan_cache_mode = force_generic_plan     -- its queries' kept plans: a call plans nothing
AS 'MODULE_PATHNAME', 'smartsync_sync_changed';
COMMENT ON FUNCTION smartsync.sync_changed(text, text, text) IS
'whether sync_pull with the same cursor (and p_entity_types, p_practice_id) would deliver anything now: true when it delivers a change, when the cursor is in the middle of a listing or drain (hasMore), or without a cursor; false when it delivers nothing; exact (the pull''s snapshot logic and change-log scan, stopped at the first change), index probes only, STABLE and read-only; the pull''s errors for a bad cursor';

-- Internal: the body of api.sync_changed (runs as the api owner).
CREATE FUNCTION smartsync._api_sync_changed(
    p_cursor       text,
    p_entity_types text,
    p_practice_id  text,
    entity_types   text,
    practice_id    text)
RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_code text; v_msg text; v_detail text; v_hint text;
BEGIN
    PERFORM smartsync._api_guard();
    RETURN smartsync.sync_changed(
        p_cursor       => p_cursor,
        p_entity_types => smartsync._api_param('p_entity_types', p_entity_types, 'entityTypes', entity_types),
        p_practice_id  => smartsync._api_param('p_practice_id', p_practice_id, 'practiceId', practice_id));
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS v_code = RETURNED_SQLSTATE, v_msg = MESSAGE_TEXT,
                            v_detail = PG_EXCEPTION_DETAIL, v_hint = PG_EXCEPTION_HINT;
    IF v_code LIKE 'SS%' THEN
        PERFORM smartsync._api_raise(v_code, v_msg, v_detail, v_hint);
    END IF;
    RAISE;
END
$$;
COMMENT ON FUNCTION smartsync._api_sync_changed(text, text, text, text, text) IS
'internal: body of api.sync_changed: smartsync.sync_changed with the spec''s parameter names and smartsync errors as PostgREST responses';

CREATE OR REPLACE FUNCTION smartsync.setup_postgrest(
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
                        AND to_regprocedure('smartsync.list_conflicts(text, text, interval, integer)') IS NOT NULL
                        AND to_regprocedure('smartsync.conflict_stats()') IS NOT NULL;
    v_functions  text[] := ARRAY['sync_push(jsonb)',
                                 'sync_pull(timestamptz, text, text, text, integer, text, text, text)',
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
        LANGUAGE sql VOLATILE SECURITY DEFINER
        SET search_path = pg_catalog, pg_temp
        AS 'SELECT smartsync._api_sync_push($1)';
        COMMENT ON FUNCTION %1$I.sync_push(jsonb) IS
$c$Push offline operations (the spec's POST /api/sync/push)

Body: {"operations": [{"id", "operation": "create"|"update"|"delete", "entityType", "entityId", "data", "version", "timestamp", "requiredPermissions"}], "clientTimestamp", "atomic"}. Every operation is applied once per (client, operation id), parents first, temporary ids mapped to real ids, conflicts detected and resolved or stored. Response: {"success", "processed", "failed", "conflicts", "results": [...]}. Tenant, practice, user, client and permissions come from the JWT claims, never from the body. Errors: {"code": smartsync SQLSTATE, "message", "details", "hint"} with status 400, 401, 403 or 413.$c$;
    $f$, api_schema);

    EXECUTE format($f$
        CREATE OR REPLACE FUNCTION %1$I.sync_pull(
            p_since        timestamptz DEFAULT NULL,
            p_cursor       text DEFAULT NULL,
            p_entity_types text DEFAULT NULL,
            p_practice_id  text DEFAULT NULL,
            p_limit        integer DEFAULT NULL,
            "lastSyncTimestamp" text DEFAULT NULL,
            "practiceId"   text DEFAULT NULL,
            "entityTypes"  text DEFAULT NULL)
        RETURNS jsonb
        LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = pg_catalog, pg_temp
        AS 'SELECT smartsync._api_sync_pull($1, $2, $3, $4, $5, $6, $7, $8)';
        COMMENT ON FUNCTION %1$I.sync_pull(timestamptz, text, text, text, integer, text, text, text) IS
$c$Pull server changes (the spec's GET /api/sync/pull)

One page of changes for the JWT's tenant (and practice): {"success", "timestamp", "changes": [{"entityType", "operation", "id", "data", "updatedAt", "version"}], "hasMore", "cursor", "full"}. Send the returned cursor as p_cursor for the exact next page; without a cursor the first pull lists the live rows. p_entity_types: comma-separated entity types; p_limit: page size. The spec's lastSyncTimestamp (milliseconds since 1970, or ISO 8601), practiceId and entityTypes are accepted as aliases of p_since, p_practice_id and p_entity_types. Errors: 400, 401, 403, and 410 when the cursor is older than the change-log retention (pull again without a cursor).$c$;
    $f$, api_schema);

    EXECUTE format($f$
        CREATE OR REPLACE FUNCTION %1$I.sync_changed(
            p_cursor       text DEFAULT NULL,
            p_entity_types text DEFAULT NULL,
            p_practice_id  text DEFAULT NULL,
            "entityTypes"  text DEFAULT NULL,
            "practiceId"   text DEFAULT NULL)
        RETURNS boolean
        LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = pg_catalog, pg_temp
        AS 'SELECT smartsync._api_sync_changed($1, $2, $3, $4, $5)';
        COMMENT ON FUNCTION %1$I.sync_changed(text, text, text, text, text) IS
$c$Has anything changed since a pull cursor?

true when GET /rpc/sync_pull with the same p_cursor (and p_entity_types, p_practice_id) would return changes now, or when the cursor is in the middle of a listing or drain (its response said hasMore), or without a cursor; false when it would return nothing. Exact, and far cheaper than a pull: poll it every few seconds and pull when it says true. Errors: those of sync_pull for the same parameters (400, 401, 403, 410).$c$;
    $f$, api_schema);

    IF v_conflicts THEN
        v_functions := v_functions || ARRAY['resolve_conflict(bigint, text, jsonb)',
                                             'list_conflicts(text, text, interval, integer)',
                                             'conflict_stats()'];
        EXECUTE format($f$
            CREATE OR REPLACE FUNCTION %1$I.resolve_conflict(conflict_id bigint, strategy text, resolved_data jsonb DEFAULT NULL)
            RETURNS jsonb
            LANGUAGE sql VOLATILE SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp
            AS 'SELECT smartsync._api_resolve_conflict($1, $2, $3)';
            COMMENT ON FUNCTION %1$I.resolve_conflict(bigint, text, jsonb) IS
$c$Resolve a stored conflict of the JWT's tenant

Body: {"conflict_id", "strategy": "server-wins"|"client-wins"|"merge"|"last-write-wins"|"manual", "resolved_data"} (resolved_data with manual). Errors: 404 for a conflict the tenant does not have, 409 when it is already resolved or the row changed since.$c$;

            CREATE OR REPLACE FUNCTION %1$I.list_conflicts(p_entity_type text DEFAULT NULL, p_severity text DEFAULT NULL,
                                                           p_min_age interval DEFAULT NULL, p_limit integer DEFAULT 100)
            RETURNS jsonb
            LANGUAGE sql STABLE SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp
            AS 'SELECT smartsync._api_list_conflicts($1, $2, $3, $4)';
            COMMENT ON FUNCTION %1$I.list_conflicts(text, text, interval, integer) IS
$c$List the open conflicts of the JWT's tenant (and practice)

Filters: p_entity_type, p_severity (low, medium, high, critical), p_min_age (an interval such as 1 hour), p_limit.$c$;

            CREATE OR REPLACE FUNCTION %1$I.conflict_stats()
            RETURNS jsonb
            LANGUAGE sql STABLE SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp
            AS 'SELECT smartsync._api_conflict_stats()';
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
