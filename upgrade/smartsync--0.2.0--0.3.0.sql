-- smartsync 0.2.0 -> 0.3.0
\echo Use "ALTER EXTENSION smartsync UPDATE TO '0.3.0'" to load this file. \quit

-- Every change to the extension's SQL objects between 0.2.0 and 0.3.0, one section per
-- change; sql/upgrade.sql checks that an updated 0.2.0 equals a fresh 0.3.0.

-- i13-capture: a narrower, cheaper change log.  Each log row gets entity_key
-- (smartsync.entity_key(entity_type, entity_id)), indexed with seq in place of
-- the (entity_type, entity_id, seq) index; an update logs the columns it set
-- (the whole row every 32nd version); stamp_row gets the practice column and
-- notes a row moving to another practice, which capture logs as a delete there
-- and a create in the new one; smartsync.row_at_version rebuilds a version.
COMMENT ON FUNCTION smartsync.stamp_row() IS
'BEFORE ROW trigger of tracked tables: version := 1 on insert, old version + 1 on update; updated_at := statement time; refuses primary-key changes; notes a row moving to another practice for capture';
CREATE FUNCTION smartsync.entity_key(entity_type text, entity_id text)
RETURNS bigint
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'smartsync_entity_key';
COMMENT ON FUNCTION smartsync.entity_key(text, text) IS
'the 64-bit key of one entity in the change log (sync_changes.entity_key, indexed with seq): a portable hash of its entity type and id; lookups compare type and id as well';

CREATE FUNCTION smartsync.row_at_version(tenant_id text, entity_type text, entity_id text, version bigint)
RETURNS jsonb
LANGUAGE c STABLE STRICT
AS 'MODULE_PATHNAME', 'smartsync_row_at_version';
COMMENT ON FUNCTION smartsync.row_at_version(text, text, text, bigint) IS
'an entity''s row as it was at a version, rebuilt from the tenant''s change log (the nearest whole image and the updates after it), as push and conflict resolution read a three-way merge''s base; NULL when the log no longer holds it; not granted to PUBLIC';
REVOKE ALL ON FUNCTION smartsync.row_at_version(text, text, text, bigint) FROM PUBLIC;

CREATE OR REPLACE FUNCTION smartsync._create_sync_tables(s name)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
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
END
$$;

CREATE OR REPLACE FUNCTION smartsync._track_table(s name, etype text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
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
    SELECT * INTO STRICT e FROM smartsync.entity_types WHERE entity_type = etype;
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
    EXECUTE format($trg$
        CREATE TRIGGER smartsync_stamp BEFORE INSERT OR UPDATE ON %1$s
            FOR EACH ROW EXECUTE FUNCTION smartsync.stamp_row(%2$L, %4$L);
        CREATE TRIGGER smartsync_capture_ins AFTER INSERT ON %1$s
            REFERENCING NEW TABLE AS smartsync_new
            FOR EACH STATEMENT EXECUTE FUNCTION smartsync.capture(%3$L, %2$L, %4$L);
        CREATE TRIGGER smartsync_capture_upd AFTER UPDATE ON %1$s
            REFERENCING NEW TABLE AS smartsync_new
            FOR EACH STATEMENT EXECUTE FUNCTION smartsync.capture(%3$L, %2$L, %4$L);
        CREATE TRIGGER smartsync_capture_del AFTER DELETE ON %1$s
            REFERENCING OLD TABLE AS smartsync_old
            FOR EACH STATEMENT EXECUTE FUNCTION smartsync.capture(%3$L, %2$L, %4$L);
        CREATE TRIGGER smartsync_no_truncate BEFORE TRUNCATE ON %1$s
            FOR EACH STATEMENT EXECUTE FUNCTION smartsync.refuse_truncate();
    $trg$, rel, e.pk_column, etype, coalesce(e.practice_column, ''));
    PERFORM smartsync._secure_tenant(s, e.table_name);   -- row-level security (80_api.sql)
END
$$;

-- existing tenant schemas: key and index every log row, give stamp_row the practice column
DO $upgrade$
DECLARE
    t record;
    e record;
    rel regclass;
BEGIN
    FOR t IN SELECT tenant_id, schema_name FROM smartsync.tenants ORDER BY tenant_id LOOP
        IF to_regclass(format('%I.sync_changes', t.schema_name)) IS NULL THEN
            CONTINUE;
        END IF;
        EXECUTE format('ALTER TABLE %I.sync_changes ADD COLUMN IF NOT EXISTS entity_key bigint', t.schema_name);
        EXECUTE format('UPDATE %I.sync_changes SET entity_key = smartsync.entity_key(entity_type, entity_id)
                         WHERE entity_key IS NULL', t.schema_name);
        EXECUTE format('ALTER TABLE %I.sync_changes ALTER COLUMN entity_key SET NOT NULL', t.schema_name);
        EXECUTE format('CREATE INDEX IF NOT EXISTS sync_changes_entity_key_idx ON %I.sync_changes (entity_key, seq)',
                       t.schema_name);
        EXECUTE format('DROP INDEX IF EXISTS %I.sync_changes_entity_seq_idx', t.schema_name);
        FOR e IN SELECT et.table_name, et.pk_column, et.practice_column FROM smartsync.entity_types et LOOP
            rel := to_regclass(format('%I.%I', t.schema_name, e.table_name));
            IF rel IS NULL OR NOT EXISTS (SELECT 1 FROM pg_trigger
                                           WHERE tgrelid = rel AND tgname = 'smartsync_stamp') THEN
                CONTINUE;
            END IF;
            EXECUTE format('DROP TRIGGER smartsync_stamp ON %s', rel);
            EXECUTE format('CREATE TRIGGER smartsync_stamp BEFORE INSERT OR UPDATE ON %s
                                FOR EACH ROW EXECUTE FUNCTION smartsync.stamp_row(%L, %L)',
                           rel, e.pk_column, coalesce(e.practice_column, ''));
        END LOOP;
    END LOOP;
END
$upgrade$;

-- i13-capture: row-level security policies of tenant tables state their condition
-- once (FOR ALL ... USING, no WITH CHECK repeating it): every backend's first
-- use of a tenant table parses half as much.  Existing tenant schemas get the
-- new policies.
CREATE OR REPLACE FUNCTION smartsync._secure_tenant(s name, only_table name DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET client_min_messages = warning
AS $$
DECLARE
    v_tenant text;
    v_api    boolean := EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'smartsync_api');
    v_ctx_tenant   constant text := '(SELECT smartsync.current_tenant_id())';
    v_ctx_practice constant text := '(SELECT smartsync.current_practice_id())';
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
                THEN format('%1$s IS NULL OR %2$I::text = %1$s', v_ctx_practice, r.practice_column)
            WHEN r.entity_type IS NULL AND r.relname IN ('sync_changes', 'sync_conflicts')
                THEN format('%1$s IS NULL OR practice_id IS NULL OR practice_id = %1$s', v_ctx_practice)
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
                     WHEN r.relname IN ('sync_changes', 'sync_pull_horizon') THEN 'SELECT'
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

DO $upgrade$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT schema_name FROM smartsync.tenants ORDER BY tenant_id LOOP
        PERFORM smartsync._secure_tenant(t.schema_name);
    END LOOP;
END
$upgrade$;
