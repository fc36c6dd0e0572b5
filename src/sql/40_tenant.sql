-- Tenant provisioning: the tenant schema, its sync tables, capture on its entity tables.

-- Internal: raise SS101 unless s is a plain lower-case identifier we may use as a tenant schema.
CREATE FUNCTION smartsync._check_schema_name(s text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF s IS NULL OR s !~ '^[a-z_][a-z0-9_]{0,62}$' THEN
        PERFORM smartsync._raise('SS101', format('invalid schema name %L', s),
            'A tenant schema name is 1 to 63 lower-case letters, digits and underscores, not starting with a digit.');
    END IF;
    IF s LIKE 'pg\_%' OR s IN ('public', 'smartsync', 'information_schema')
       OR EXISTS (SELECT 1 FROM smartsync.entity_types WHERE template_schema = s) THEN
        PERFORM smartsync._raise('SS111', format('schema name %I is reserved', s),
            'System schemas, public, smartsync and template schemas cannot hold a tenant.');
    END IF;
    -- the schema PostgREST exposes: api (setup_postgrest's default), or any schema
    -- holding the api functions smartsync_api owns
    IF s = 'api' OR EXISTS (SELECT 1 FROM pg_catalog.pg_proc p
                              JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
                              JOIN pg_catalog.pg_roles r ON r.oid = p.proowner
                             WHERE n.nspname = s AND r.rolname = 'smartsync_api') THEN
        PERFORM smartsync._raise('SS111', format('schema name %I is reserved', s),
            'It is the schema PostgREST exposes (smartsync.setup_postgrest): a tenant''s tables there would be served to every caller, and setup_postgrest could not run again.',
            'Provision the tenant in a schema of its own (the default is tenant_<id>).');
    END IF;
END
$$;

-- Internal: AFTER STATEMENT trigger of a tenant's sync_conflicts keeping
-- sync_conflict_counts (what a statement removed is subtracted, what it added
-- added), so counting the store never reads it (src/conflictstore.c).
CREATE FUNCTION smartsync._count_conflicts()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'smartsync_count_conflicts';
COMMENT ON FUNCTION smartsync._count_conflicts() IS
'internal: AFTER STATEMENT trigger of a tenant''s sync_conflicts keeping sync_conflict_counts (per practice scope, entity type, severity and status) in step';

-- Internal: the per-tenant sync tables (NOTES.md section 4: all of a tenant's sync state lives in its schema).
CREATE FUNCTION smartsync._create_sync_tables(s name)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET citus.enable_unsafe_triggers = on
AS $$
DECLARE
    tg record;
BEGIN
    EXECUTE format($ddl$
        CREATE TABLE IF NOT EXISTS %1$I.sync_changes (
            seq         bigint GENERATED ALWAYS AS IDENTITY,
            xid         xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
            entity_type text NOT NULL,
            entity_id   text NOT NULL,
            entity_key  bigint NOT NULL,
            operation   text NOT NULL CHECK (operation IN ('create', 'update', 'delete')),
            data        jsonb NOT NULL,
            version     bigint NOT NULL,
            practice_id text,
            user_id     text,
            client_id   text,
            changed_at  timestamptz NOT NULL DEFAULT pg_catalog.statement_timestamp(),
            PRIMARY KEY (xid, seq)
        );
        COMMENT ON TABLE %1$I.sync_changes IS 'smartsync change log: one row per captured insert, update or delete, stamped with the writing transaction id';

        CREATE TABLE IF NOT EXISTS %1$I.sync_id_map (
            client_id    text NOT NULL DEFAULT '',
            temp_id      text NOT NULL,
            entity_type  text NOT NULL,
            real_id      text NOT NULL,
            operation_id text,
            created_at   timestamptz,
            synced_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
            PRIMARY KEY (client_id, temp_id)
        );
        COMMENT ON TABLE %1$I.sync_id_map IS 'smartsync id map: temporary client ids -> real ids';

        CREATE TABLE IF NOT EXISTS %1$I.sync_ledger (
            client_id    text NOT NULL DEFAULT '',
            operation_id text NOT NULL,
            entity_type  text,
            entity_id    text,
            operation    text,
            user_id      text,
            practice_id  text,
            outcome      text NOT NULL
                CHECK (outcome IN ('applied', 'resolved', 'conflict', 'failed')),
            result       jsonb NOT NULL,
            received_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
            client_ts    timestamptz,
            request      jsonb,
            real_id      text,
            version      bigint,
            error_code   text,
            conflict_id  bigint,
            completed_at timestamptz,
            PRIMARY KEY (client_id, operation_id)
        );
        COMMENT ON TABLE %1$I.sync_ledger IS 'smartsync operation ledger: every pushed operation once, with who, when, what and the outcome';

        CREATE TABLE IF NOT EXISTS %1$I.sync_conflicts (
            conflict_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            entity_type     text NOT NULL,
            entity_id       text NOT NULL,
            operation       text NOT NULL,
            operation_id    text,
            client_id       text,
            user_id         text,
            practice_id     text,
            conflict_type   text NOT NULL,
            severity        text NOT NULL,
            affected_fields text[] NOT NULL DEFAULT '{}',
            local_data      jsonb,
            server_data     jsonb,
            base_data       jsonb,
            base_version    bigint,
            server_version  bigint,
            local_ts        timestamptz,
            status          text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
            strategy        text,
            resolved_data   jsonb,
            resolved_by     text,
            resolved_at     timestamptz,
            created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
            -- conflict resolution (src/resolve.c)
            resolved_client_id text,
            resolved_version   bigint,
            winner             text CHECK (winner IN ('server', 'client', 'merged', 'manual'))
        );
        CREATE INDEX IF NOT EXISTS sync_conflicts_open_idx
            ON %1$I.sync_conflicts (created_at, conflict_id) WHERE status = 'open';
        COMMENT ON TABLE %1$I.sync_conflicts IS 'smartsync conflict store: local, server and base data side by side, and how each conflict was resolved';

        -- the store's counts, kept by smartsync._count_conflicts() as conflicts are
        -- stored, resolved or removed: conflict_stats and the listing's total read
        -- these, not the store.  scope is the practice that sees the conflicts (''
        -- none: only contexts without a practice), every_practice their entity type
        -- has no practice column; shard spreads concurrent writers over rows
        CREATE TABLE IF NOT EXISTS %1$I.sync_conflict_counts (
            every_practice boolean NOT NULL,
            scope          text NOT NULL,
            entity_type    text NOT NULL,
            severity       text NOT NULL,
            status         text NOT NULL,
            shard          integer NOT NULL,
            n              bigint NOT NULL,
            PRIMARY KEY (every_practice, scope, entity_type, severity, status, shard)
        );
        COMMENT ON TABLE %1$I.sync_conflict_counts IS 'smartsync conflict counts per practice scope, entity type, severity and status (sums over shards), kept by triggers on sync_conflicts';
        -- one entity's changes in order: pull's latest-state check, push's base version
        -- and tombstone lookups; entity_key is smartsync.entity_key(entity_type, entity_id),
        -- so the index holds two integers (lookups compare type and id as well)
        CREATE INDEX IF NOT EXISTS sync_changes_entity_key_idx
            ON %1$I.sync_changes (entity_key, seq);
        CREATE TABLE IF NOT EXISTS %1$I.sync_pull_horizon (
            singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
            max_pruned_xid xid8 NOT NULL,
            pruned_before  timestamptz NOT NULL,
            pruned_at      timestamptz NOT NULL DEFAULT pg_catalog.now()
        );
        COMMENT ON TABLE %1$I.sync_pull_horizon IS 'smartsync retention horizon: the newest transaction and time whose changes smartsync.prune_changes() removed';
    $ddl$, s);
    -- the triggers keeping sync_conflict_counts, each made when missing and in a
    -- statement of its own: Citus forwards each to the shards (85_citus.sql)
    FOR tg IN SELECT * FROM (VALUES
            ('smartsync_count_ins', 'INSERT', 'NEW TABLE AS new_rows'),
            ('smartsync_count_upd', 'UPDATE', 'OLD TABLE AS old_rows NEW TABLE AS new_rows'),
            ('smartsync_count_del', 'DELETE', 'OLD TABLE AS old_rows')) AS v(name, event, tables)
         WHERE NOT EXISTS (SELECT 1 FROM pg_trigger t
                            WHERE t.tgrelid = format('%I.sync_conflicts', s)::regclass AND t.tgname = v.name) LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER %s ON %I.sync_conflicts REFERENCING %s
                            FOR EACH STATEMENT EXECUTE FUNCTION smartsync._count_conflicts()',
                       tg.name, tg.event, s, tg.tables);
    END LOOP;
END
$$;

-- Internal: remove smartsync's triggers from one table (its rows and log stay).
-- (citus.enable_unsafe_triggers: Citus allows triggers on distributed tables
-- only with it, 85_citus.sql; without Citus the setting does nothing.)
CREATE FUNCTION smartsync._untrack_table(s name, t name)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET citus.enable_unsafe_triggers = on
AS $$
DECLARE
    tg record;
BEGIN
    IF to_regclass(format('%I.%I', s, t)) IS NULL THEN
        RETURN;
    END IF;
    FOR tg IN SELECT tgname FROM pg_trigger
               WHERE tgrelid = format('%I.%I', s, t)::regclass AND NOT tgisinternal
                 AND tgname IN ('smartsync_stamp', 'smartsync_capture_ins', 'smartsync_capture_upd',
                                'smartsync_capture_del', 'smartsync_no_truncate') LOOP
        EXECUTE format('DROP TRIGGER %I ON %I.%I', tg.tgname, s, t);
    END LOOP;
END
$$;

-- Internal: make one entity type's table exist in schema s (from its template when
-- missing), give it version and updated_at, and (re)install its capture triggers.
CREATE FUNCTION smartsync._track_table(s name, etype text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET citus.enable_unsafe_triggers = on
AS $$
DECLARE
    e smartsync.entity_types;
    tmpl regclass;
    rel regclass;
    c record;
    defs text[] := '{}';
    d text;
    col record;
BEGIN
    SELECT * INTO e FROM smartsync.entity_types WHERE entity_type = etype;
    IF NOT FOUND THEN
        PERFORM smartsync._raise('SS106', format('unknown entity type %L', etype),
            'Only a registered entity type has a table to track.');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM smartsync.tenants t WHERE t.schema_name = s) THEN
        PERFORM smartsync._raise('SS101', format('schema %L is not a tenant schema', s),
            'Entity tables are tracked in the schema of a provisioned tenant.',
            'Provision the tenant with smartsync.provision_tenant().');
    END IF;
    tmpl := to_regclass(format('%I.%I', e.template_schema, e.table_name));
    rel := to_regclass(format('%I.%I', s, e.table_name));

    IF rel IS NULL THEN
        IF tmpl IS NULL THEN
            PERFORM smartsync._raise('SS110', format('template table %I.%I of entity type %L is gone',
                e.template_schema, e.table_name, etype),
                format('Schema %I has no table %I to adopt either.', s, e.table_name));
        END IF;
        EXECUTE format('CREATE TABLE %I.%I (LIKE %I.%I INCLUDING ALL)', s, e.table_name, e.template_schema, e.table_name);
        rel := to_regclass(format('%I.%I', s, e.table_name));
        PERFORM smartsync._citus_track(s, rel);   -- Citus: into the tenant's group (85_citus.sql)
        -- foreign keys between template tables, pointed at this tenant's tables
        PERFORM set_config('search_path', format('%I', e.template_schema), true);
        FOR c IN SELECT con.conname, pg_get_constraintdef(con.oid) AS def, r.relname AS target
                   FROM pg_constraint con JOIN pg_class r ON r.oid = con.confrelid
                  WHERE con.conrelid = tmpl AND con.contype = 'f'
                    AND r.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = e.template_schema)
                  ORDER BY con.conname LOOP
            IF to_regclass(format('%I.%I', s, c.target)) IS NOT NULL THEN
                defs := defs || format('ALTER TABLE %I.%I ADD CONSTRAINT %I %s', s, e.table_name, c.conname, c.def);
            END IF;
        END LOOP;
        PERFORM set_config('search_path', format('%I, pg_catalog, pg_temp', s), true);
        FOREACH d IN ARRAY defs LOOP
            EXECUTE d;
        END LOOP;
        PERFORM set_config('search_path', 'pg_catalog, pg_temp', true);
    ELSE
        -- adopting an existing table: it must have the registered key and columns
        IF smartsync._field_column(rel, e.pk_column) IS DISTINCT FROM e.pk_column
           OR NOT EXISTS (SELECT 1 FROM pg_constraint con JOIN pg_attribute a
                            ON a.attrelid = con.conrelid AND a.attnum = ANY (con.conkey)
                           WHERE con.conrelid = rel AND con.contype = 'p'
                             AND cardinality(con.conkey) = 1 AND a.attname = e.pk_column) THEN
            PERFORM smartsync._raise('SS104', format('table %s needs the single-column primary key %I', rel, e.pk_column),
                format('Entity type %L is registered with that key.', etype));
        END IF;
        IF e.practice_column IS NOT NULL AND smartsync._field_column(rel, e.practice_column) IS NULL THEN
            PERFORM smartsync._raise('SS103', format('table %s has no column %I', rel, e.practice_column),
                format('Entity type %L has it as its practice column.', etype));
        END IF;
    END IF;

    PERFORM smartsync._citus_track(s, rel);   -- Citus: into the tenant's group (85_citus.sql)

    -- version and updated_at, maintained by smartsync.stamp_row()
    FOR col IN SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS typ
                 FROM pg_attribute a
                WHERE a.attrelid = rel AND a.attname IN ('version', 'updated_at') AND NOT a.attisdropped LOOP
        IF (col.attname = 'version' AND col.typ <> 'bigint')
           OR (col.attname = 'updated_at' AND col.typ <> 'timestamp with time zone') THEN
            PERFORM smartsync._raise('SS112', format('column %I of table %s has type %s', col.attname, rel, col.typ),
                'A tracked table''s version is bigint and its updated_at is timestamptz.');
        END IF;
    END LOOP;
    EXECUTE format('ALTER TABLE %s ADD COLUMN IF NOT EXISTS version bigint NOT NULL DEFAULT 1,
                                  ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT pg_catalog.now()', rel);

    PERFORM smartsync._untrack_table(s, e.table_name);
    -- one statement per EXECUTE: Citus forwards each to the shards (85_citus.sql)
    FOREACH d IN ARRAY ARRAY[
        'CREATE TRIGGER smartsync_stamp BEFORE INSERT OR UPDATE ON %1$s
            FOR EACH ROW EXECUTE FUNCTION smartsync.stamp_row(%2$L, %4$L)',
        'CREATE TRIGGER smartsync_capture_ins AFTER INSERT ON %1$s
            REFERENCING NEW TABLE AS smartsync_new
            FOR EACH STATEMENT EXECUTE FUNCTION smartsync.capture(%3$L, %2$L, %4$L)',
        'CREATE TRIGGER smartsync_capture_upd AFTER UPDATE ON %1$s
            REFERENCING NEW TABLE AS smartsync_new
            FOR EACH STATEMENT EXECUTE FUNCTION smartsync.capture(%3$L, %2$L, %4$L)',
        'CREATE TRIGGER smartsync_capture_del AFTER DELETE ON %1$s
            REFERENCING OLD TABLE AS smartsync_old
            FOR EACH STATEMENT EXECUTE FUNCTION smartsync.capture(%3$L, %2$L, %4$L)',
        'CREATE TRIGGER smartsync_no_truncate BEFORE TRUNCATE ON %1$s
            FOR EACH STATEMENT EXECUTE FUNCTION smartsync.refuse_truncate()'] LOOP
        EXECUTE format(d, rel, e.pk_column, etype, coalesce(e.practice_column, ''));
    END LOOP;
    PERFORM smartsync._secure_tenant(s, e.table_name);   -- row-level security (80_api.sql)
END
$$;

CREATE FUNCTION smartsync.provision_tenant(tenant_id text, schema_name name DEFAULT NULL)
RETURNS name
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET client_min_messages = warning
AS $$
DECLARE
    v_schema name;
    v_existing name;
    v_owner text;
    e record;
BEGIN
    IF tenant_id IS NULL OR length(tenant_id) = 0 OR length(tenant_id) > 255
       OR tenant_id ~ '[[:cntrl:]]' THEN
        PERFORM smartsync._raise('SS101', format('invalid tenant id %L',
                CASE WHEN length(tenant_id) > 64 THEN left(tenant_id, 64) || '...' ELSE tenant_id END),
            'A tenant id is 1 to 255 printable characters.');
    END IF;
    v_schema := coalesce(provision_tenant.schema_name,
        left('tenant_' || lower(regexp_replace(tenant_id, '[^A-Za-z0-9_]', '_', 'g')), 63));
    PERFORM smartsync._check_schema_name(v_schema);

    SELECT t.schema_name INTO v_existing FROM smartsync.tenants t WHERE t.tenant_id = provision_tenant.tenant_id;
    IF v_existing IS NOT NULL AND v_existing <> v_schema THEN
        PERFORM smartsync._raise('SS107', format('tenant %L is already provisioned in schema %I', tenant_id, v_existing),
            'A tenant id is registered once.');
    END IF;
    SELECT t.tenant_id INTO v_owner FROM smartsync.tenants t
     WHERE t.schema_name = v_schema AND t.tenant_id <> provision_tenant.tenant_id;
    IF v_owner IS NOT NULL THEN
        PERFORM smartsync._raise('SS107', format('schema %I already belongs to tenant %L', v_schema, v_owner));
    END IF;

    EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I', v_schema);
    PERFORM smartsync._create_sync_tables(v_schema);
    INSERT INTO smartsync.tenants AS t (tenant_id, schema_name)
    VALUES (provision_tenant.tenant_id, v_schema)
    ON CONFLICT ON CONSTRAINT tenants_pkey DO NOTHING;

    FOR e IN SELECT entity_type FROM smartsync.entity_types ORDER BY sort_order, entity_type LOOP
        PERFORM smartsync._track_table(v_schema, e.entity_type);
    END LOOP;
    PERFORM smartsync._secure_tenant(v_schema);   -- row-level security (80_api.sql)
    PERFORM smartsync._citus_tenant(v_schema);    -- Citus: a distributed schema (85_citus.sql)
    RETURN v_schema;
END
$$;
COMMENT ON FUNCTION smartsync.provision_tenant(text, name) IS
'create (or adopt) a tenant schema, its sync tables, its entity tables from the templates, and capture on them; idempotent for the same tenant and schema';
