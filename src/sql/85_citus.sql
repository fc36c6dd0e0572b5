-- Citus schema-based sharding (src/citus.c; README "Scaling out").
--
-- On a Citus coordinator, smartsync.citus_setup() turns smartsync on for the
-- cluster: the registry (smartsync.tenants, smartsync.entity_types) and the pull
-- secret become reference tables, copied on every node, and every tenant schema
-- becomes a distributed schema: its tables one co-located group of single-shard
-- tables on one node.  From then on provisioning distributes each new tenant,
-- and push, pull and resolution run on the node that holds the tenant.  Nothing
-- here does anything in a database without the citus extension.

-- Internal: true when smartsync runs on Citus in this database (citus_setup() was run).
CREATE FUNCTION smartsync._citus_enabled()
RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN
        RETURN false;
    END IF;
    RETURN EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition
                    WHERE logicalrelid = 'smartsync.tenants'::regclass);
END
$$;
COMMENT ON FUNCTION smartsync._citus_enabled() IS
'internal: true when smartsync runs on Citus in this database (smartsync.citus_setup() made the registry reference tables)';

-- Internal: true when schema s is a Citus distributed (tenant) schema.
CREATE FUNCTION smartsync._citus_distributed(s name)
RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN
        RETURN false;
    END IF;
    RETURN EXISTS (SELECT 1 FROM pg_catalog.pg_dist_schema WHERE schemaid = to_regnamespace(s));
END
$$;
COMMENT ON FUNCTION smartsync._citus_distributed(name) IS
'internal: true when the schema is a Citus distributed (tenant) schema';

-- Internal: a table made in tenant schema s by a function (Citus converts only
-- top-level CREATE TABLEs) joins the schema's co-located group.  Called by
-- _track_table.  (citus.enable_unsafe_triggers: Citus distributes a table with
-- triggers, and creates or drops triggers on one, only with it.)
CREATE FUNCTION smartsync._citus_track(s name, rel regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET client_min_messages = warning
SET citus.enable_unsafe_triggers = on
AS $$
BEGIN
    IF NOT smartsync._citus_enabled() THEN
        RETURN;
    END IF;
    IF smartsync._citus_distributed(s)
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition WHERE logicalrelid = rel) THEN
        PERFORM create_distributed_table(rel, NULL, colocate_with => format('%I.sync_changes', s));
    END IF;
END
$$;
COMMENT ON FUNCTION smartsync._citus_track(name, regclass) IS
'internal: on Citus, a table made in a distributed tenant schema by provisioning joins the schema''s co-located group';

-- Internal: tenant schema s on Citus: its change-log origin (the node whose
-- transaction ids the log holds, and an epoch: src/citus.c), then the schema
-- distributed (Citus picks the node).  Idempotent; called by provision_tenant.
CREATE FUNCTION smartsync._citus_tenant(s name)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET client_min_messages = warning
SET citus.enable_unsafe_triggers = on
AS $$
BEGIN
    IF NOT smartsync._citus_enabled() THEN
        RETURN;
    END IF;
    IF to_regclass(format('%I.sync_log_origin', s)) IS NULL THEN
        EXECUTE format($ddl$
            CREATE TABLE %1$I.sync_log_origin (
                singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
                node_id    bigint,
                epoch      integer NOT NULL DEFAULT 0,
                adopted_at timestamptz
            );
            COMMENT ON TABLE %1$I.sync_log_origin IS 'smartsync on Citus: the node whose transaction ids the change log holds (its system identifier; NULL: none yet) and how often the log was adopted by a node; the row also routes calls to the tenant''s node';
            INSERT INTO %1$I.sync_log_origin DEFAULT VALUES;
        $ddl$, s);
        IF smartsync._citus_distributed(s) THEN
            PERFORM create_distributed_table(format('%I.sync_log_origin', s)::regclass, NULL,
                                             colocate_with => format('%I.sync_changes', s));
        END IF;
        PERFORM smartsync._secure_tenant(s, 'sync_log_origin');
        -- routing reads it as any caller, before the caller's context is set there
        EXECUTE format('CREATE POLICY smartsync_route ON %I.sync_log_origin AS PERMISSIVE FOR SELECT USING (true)', s);
        EXECUTE format('GRANT SELECT ON %I.sync_log_origin TO PUBLIC', s);
    END IF;
    IF NOT smartsync._citus_distributed(s) THEN
        PERFORM smartsync._secure_tenant(s);   -- policies in the form Citus accepts
        PERFORM citus_schema_distribute(s::regnamespace);
    END IF;
END
$$;
COMMENT ON FUNCTION smartsync._citus_tenant(name) IS
'internal: on Citus, a tenant schema''s change-log origin (sync_log_origin) and the schema distributed; idempotent';

CREATE FUNCTION smartsync.citus_setup()
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET client_min_messages = warning
SET citus.enable_unsafe_triggers = on
AS $$
DECLARE
    t record;
    v_tenants integer := 0;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN
        PERFORM smartsync._raise('SS852', 'the citus extension is not installed in this database',
            'smartsync.citus_setup() distributes tenants over a Citus cluster.',
            'CREATE EXTENSION citus first (README "Scaling out").');
    END IF;
    IF (SELECT groupid FROM pg_catalog.pg_dist_local_group) <> 0 THEN
        PERFORM smartsync._raise('SS852', 'smartsync.citus_setup() must run on the coordinator',
            'This node is a Citus worker.');
    END IF;
    IF NOT smartsync._citus_enabled() THEN
        PERFORM create_reference_table('smartsync.tenants');
        PERFORM create_reference_table('smartsync.entity_types');
        -- the restore trigger would run a distributed DELETE inside each copy
        ALTER TABLE smartsync.pull_secret DISABLE TRIGGER pull_secret_replace;
        PERFORM create_reference_table('smartsync.pull_secret');
        PERFORM truncate_local_data_after_distributing_table('smartsync.tenants');
        PERFORM truncate_local_data_after_distributing_table('smartsync.entity_types');
        PERFORM truncate_local_data_after_distributing_table('smartsync.pull_secret');
    END IF;
    -- Citus connects to the workers as the current user: the api owner must log in
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'smartsync_api') THEN
        ALTER ROLE smartsync_api LOGIN;
    END IF;
    FOR t IN SELECT schema_name FROM smartsync.tenants ORDER BY tenant_id LOOP
        PERFORM smartsync._citus_tenant(t.schema_name);
        v_tenants := v_tenants + 1;
    END LOOP;
    RETURN jsonb_build_object('tenants', v_tenants,
        'nodes', (SELECT count(*) FROM pg_catalog.pg_dist_node WHERE isactive AND noderole = 'primary'));
END
$$;
COMMENT ON FUNCTION smartsync.citus_setup() IS
'on a Citus coordinator (superuser, idempotent): the registry and the pull secret become reference tables, every tenant schema a distributed schema; provisioning then distributes new tenants, and push, pull and resolution run on the node that holds the tenant';

-- The other half of sync_citus_route (src/citus.c): runs a routed call on the
-- node holding the tenant, with the caller's request context.
CREATE FUNCTION smartsync._citus_call(ctx jsonb, fn text, args bytea[])
RETURNS bytea
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'smartsync_citus_call';
COMMENT ON FUNCTION smartsync._citus_call(jsonb, text, bytea[]) IS
'internal: runs a push, pull, resolution or conflict listing routed to this node (the node that holds the tenant) with the caller''s request context; only sets what the caller could set itself and checks the caller''s EXECUTE privilege; returns the bytes of the function''s jsonb result';

CREATE FUNCTION smartsync._citus_adopt(tenant_id text)
RETURNS integer
LANGUAGE c VOLATILE STRICT
AS 'MODULE_PATHNAME', 'smartsync_citus_adopt';
COMMENT ON FUNCTION smartsync._citus_adopt(text) IS
'internal: adopts the tenant''s change log on this node, the node that holds it (run there by citus_adopt_log); returns the log''s epoch';

CREATE FUNCTION smartsync.citus_adopt_log(tenant_id text)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_schema name;
    v_epoch integer;
BEGIN
    SELECT t.schema_name INTO v_schema FROM smartsync.tenants t WHERE t.tenant_id = citus_adopt_log.tenant_id;
    IF v_schema IS NULL THEN
        PERFORM smartsync._raise('SS203', format('tenant "%s" is not provisioned', citus_adopt_log.tenant_id), NULL,
            'Provision it with smartsync.provision_tenant().');
    END IF;
    IF NOT smartsync._citus_distributed(v_schema) THEN
        RETURN NULL;
    END IF;
    -- a router query: runs on the node that holds the tenant
    EXECUTE format('SELECT smartsync._citus_adopt($1) FROM %I.sync_log_origin', v_schema)
       INTO v_epoch USING citus_adopt_log.tenant_id;
    RETURN v_epoch;
END
$$;
COMMENT ON FUNCTION smartsync.citus_adopt_log(text) IS
'after citus_schema_move (or a rebalance) of a tenant: makes its change log the new node''s at once (the first write there would do it otherwise); returns the log''s epoch; NULL for a tenant that is not distributed';

REVOKE ALL ON FUNCTION smartsync.citus_setup() FROM PUBLIC;
REVOKE ALL ON FUNCTION smartsync.citus_adopt_log(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION smartsync._citus_adopt(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION smartsync._citus_track(name, regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION smartsync._citus_tenant(name) FROM PUBLIC;
