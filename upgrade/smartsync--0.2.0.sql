-- smartsync install script, assembled by the Makefile from src/sql/*.sql
\echo Use "CREATE EXTENSION smartsync" to load this file. \quit

-- Internal helper: raise an error with a smartsync SQLSTATE from SQL glue.
CREATE FUNCTION smartsync._raise(code text, message text, detail text DEFAULT NULL, hint text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = code, MESSAGE = message,
        DETAIL = coalesce(detail, ''), HINT = coalesce(hint, '');
END
$$;
COMMENT ON FUNCTION smartsync._raise(text, text, text, text) IS 'internal: raise an error with a smartsync SQLSTATE';
-- The registry: tenants and entity types.

CREATE TABLE smartsync.tenants (
    tenant_id   text PRIMARY KEY,
    schema_name name NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE smartsync.tenants IS 'tenants: tenant id -> the schema that holds its tables and sync state';

CREATE TABLE smartsync.entity_types (
    entity_type      text PRIMARY KEY,
    template_schema  name NOT NULL,
    table_name       name NOT NULL,
    pk_column        name NOT NULL,
    depends_on       text[] NOT NULL DEFAULT '{}',
    reference_fields jsonb NOT NULL DEFAULT '{}',
    field_classes    jsonb NOT NULL DEFAULT '{}',
    practice_column  name,
    default_strategy text NOT NULL DEFAULT 'manual'
        CHECK (default_strategy IN ('server-wins', 'client-wins', 'merge', 'last-write-wins', 'manual')),
    sort_order       integer NOT NULL DEFAULT 0,
    registered_at    timestamptz NOT NULL DEFAULT now(),
    -- conflict policy (smartsync.set_conflict_policy): severities push resolves at once
    -- in the client's favour whatever the strategy; the spec's default: low
    auto_resolve     text[] NOT NULL DEFAULT '{low}'
        CHECK (auto_resolve <@ ARRAY['low', 'medium', 'high']::text[]),
    UNIQUE (table_name)
);
COMMENT ON TABLE smartsync.entity_types IS
'entity types: the table inside every tenant schema, its key, dependencies, reference fields, field classes, practice column and default conflict strategy; sort_order is the dependency level (parents first)';

SELECT pg_catalog.pg_extension_config_dump('smartsync.tenants', '');
SELECT pg_catalog.pg_extension_config_dump('smartsync.entity_types', '');

-- Internal: the column of rel that a field name means: the name itself, or the
-- snake_case spelling of a camelCase name (petId -> pet_id).  NULL if none.
CREATE FUNCTION smartsync._field_column(rel regclass, field text)
RETURNS name
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT a.attname
      FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped
       AND a.attname IN (field, lower(regexp_replace(field, '([a-z0-9])([A-Z])', '\1_\2', 'g')))
     ORDER BY a.attname = field DESC
     LIMIT 1
$$;

-- Internal: recompute every entity type's dependency level; raise SS105 on a cycle.
CREATE FUNCTION smartsync._sort_entity_types()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    remaining int;
    level int := 0;
    placed text[] := '{}';
    batch text[];
BEGIN
    SELECT count(*) INTO remaining FROM smartsync.entity_types;
    WHILE remaining > 0 LOOP
        SELECT array_agg(entity_type ORDER BY entity_type) INTO batch
          FROM smartsync.entity_types
         WHERE NOT (entity_type = ANY (placed))
           AND depends_on <@ placed;
        IF batch IS NULL THEN
            PERFORM smartsync._raise('SS105', 'entity type dependencies form a cycle',
                format('These entity types depend on each other: %s.',
                       (SELECT string_agg(entity_type, ', ' ORDER BY entity_type)
                          FROM smartsync.entity_types WHERE NOT (entity_type = ANY (placed)))),
                'Remove one of the dependencies.');
        END IF;
        UPDATE smartsync.entity_types SET sort_order = level WHERE entity_type = ANY (batch);
        placed := placed || batch;
        remaining := remaining - cardinality(batch);
        level := level + 1;
    END LOOP;
END
$$;

CREATE FUNCTION smartsync.register_entity_type(
    entity_type      text,
    template         regclass,
    depends_on       text[] DEFAULT '{}',
    reference_fields jsonb DEFAULT '{}',
    field_classes    jsonb DEFAULT '{}',
    practice_column  text DEFAULT NULL,
    default_strategy text DEFAULT 'manual')
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET client_min_messages = warning
AS $$
DECLARE
    v_rel      regclass := template;
    v_schema   name;
    v_table    name;
    v_pk       name;
    v_pk_count int;
    v_refs     jsonb := '{}';
    v_classes  jsonb := '{}';
    v_deps     text[];
    v_practice name;
    k text;
    v jsonb;
    col name;
    t record;
BEGIN
    IF entity_type IS NULL OR entity_type !~ '^[a-z][a-z0-9_]{0,62}$' THEN
        PERFORM smartsync._raise('SS101', format('invalid entity type name %L', entity_type),
            'An entity type name is 1 to 63 lower-case letters, digits and underscores, starting with a letter.');
    END IF;
    IF v_rel IS NULL THEN
        PERFORM smartsync._raise('SS101', 'template table must not be null');
    END IF;
    SELECT n.nspname, c.relname INTO v_schema, v_table
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = v_rel AND c.relkind IN ('r', 'p');
    IF v_table IS NULL THEN
        PERFORM smartsync._raise('SS101', format('%s is not a table', v_rel));
    END IF;
    IF v_table LIKE 'sync\_%' THEN
        PERFORM smartsync._raise('SS111', format('table name %I is reserved', v_table),
            'Names starting with sync_ are smartsync''s own tables in each tenant schema.');
    END IF;
    IF EXISTS (SELECT 1 FROM smartsync.tenants WHERE schema_name = v_schema) THEN
        PERFORM smartsync._raise('SS101', format('template %s lies in a tenant schema', v_rel),
            'The template is the model every tenant''s table is made from; keep it in a schema of its own.');
    END IF;
    IF EXISTS (SELECT 1 FROM smartsync.entity_types e
                WHERE e.table_name = v_table AND e.entity_type <> register_entity_type.entity_type) THEN
        PERFORM smartsync._raise('SS101', format('table %I is already registered as another entity type', v_table));
    END IF;

    -- a single-column primary key
    SELECT count(*), min(a.attname) INTO v_pk_count, v_pk
      FROM pg_catalog.pg_constraint con
      JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = ANY (con.conkey)
     WHERE con.conrelid = v_rel AND con.contype = 'p';
    IF v_pk_count <> 1 THEN
        PERFORM smartsync._raise('SS104',
            format('table %s needs a single-column primary key', v_rel),
            CASE WHEN v_pk_count = 0 THEN 'It has no primary key.'
                 ELSE format('Its primary key has %s columns.', v_pk_count) END);
    END IF;

    -- practice column
    IF practice_column IS NOT NULL THEN
        v_practice := smartsync._field_column(v_rel, practice_column);
        IF v_practice IS NULL THEN
            PERFORM smartsync._raise('SS103', format('table %s has no column %I', v_rel, practice_column),
                'The practice column is used for practice isolation.');
        END IF;
    END IF;

    -- reference fields: {"petId": "pets"} -> {"pet_id": "pets"}
    IF jsonb_typeof(coalesce(reference_fields, '{}')) <> 'object' THEN
        PERFORM smartsync._raise('SS101', 'reference_fields must be a JSON object of field -> entity type');
    END IF;
    FOR k, v IN SELECT * FROM jsonb_each(coalesce(reference_fields, '{}')) LOOP
        col := smartsync._field_column(v_rel, k);
        IF col IS NULL THEN
            PERFORM smartsync._raise('SS103', format('table %s has no column %I', v_rel, k),
                'Every reference field must be a column of the template table.');
        END IF;
        IF jsonb_typeof(v) <> 'string' THEN
            PERFORM smartsync._raise('SS101', format('reference field %I must name an entity type', k));
        END IF;
        IF v #>> '{}' <> register_entity_type.entity_type
           AND NOT EXISTS (SELECT 1 FROM smartsync.entity_types e WHERE e.entity_type = v #>> '{}') THEN
            PERFORM smartsync._raise('SS106', format('unknown entity type %L', v #>> '{}'),
                format('Reference field %I names it.', k), 'Register the referenced entity type first.');
        END IF;
        v_refs := v_refs || jsonb_build_object(col, v);
    END LOOP;

    -- field classes: {"notes": "important"}
    IF jsonb_typeof(coalesce(field_classes, '{}')) <> 'object' THEN
        PERFORM smartsync._raise('SS101', 'field_classes must be a JSON object of field -> class');
    END IF;
    FOR k, v IN SELECT * FROM jsonb_each(coalesce(field_classes, '{}')) LOOP
        col := smartsync._field_column(v_rel, k);
        IF col IS NULL THEN
            PERFORM smartsync._raise('SS103', format('table %s has no column %I', v_rel, k),
                'Every field with a class must be a column of the template table.');
        END IF;
        IF jsonb_typeof(v) <> 'string' OR v #>> '{}' NOT IN ('metadata', 'normal', 'important', 'critical') THEN
            PERFORM smartsync._raise('SS108', format('invalid field class %s for field %I', v, k),
                'A field class is one of metadata, normal, important, critical.');
        END IF;
        v_classes := v_classes || jsonb_build_object(col, v);
    END LOOP;

    IF default_strategy IS NULL OR default_strategy NOT IN ('server-wins', 'client-wins', 'merge', 'last-write-wins', 'manual') THEN
        PERFORM smartsync._raise('SS108', format('invalid conflict strategy %L', default_strategy),
            'A strategy is one of server-wins, client-wins, merge, last-write-wins, manual.');
    END IF;

    -- dependencies: the listed ones plus every referenced type, without itself
    SELECT coalesce(array_agg(DISTINCT d ORDER BY d), '{}') INTO v_deps
      FROM (SELECT unnest(coalesce(depends_on, '{}')) AS d
            UNION SELECT value #>> '{}' FROM jsonb_each(v_refs)) s
     WHERE d <> register_entity_type.entity_type;
    SELECT min(d) INTO k FROM unnest(v_deps) d
     WHERE NOT EXISTS (SELECT 1 FROM smartsync.entity_types e WHERE e.entity_type = d);
    IF k IS NOT NULL THEN
        PERFORM smartsync._raise('SS106', format('unknown entity type %L', k),
            format('Entity type %L depends on it.', register_entity_type.entity_type),
            'Register the entity types it depends on first.');
    END IF;
    IF register_entity_type.entity_type = ANY (coalesce(depends_on, '{}')) THEN
        PERFORM smartsync._raise('SS105', format('entity type %L cannot depend on itself', register_entity_type.entity_type));
    END IF;

    INSERT INTO smartsync.entity_types AS e
           (entity_type, template_schema, table_name, pk_column, depends_on, reference_fields,
            field_classes, practice_column, default_strategy)
    VALUES (register_entity_type.entity_type, v_schema, v_table, v_pk, v_deps, v_refs,
            v_classes, v_practice, register_entity_type.default_strategy)
    ON CONFLICT ON CONSTRAINT entity_types_pkey DO UPDATE
       SET template_schema = excluded.template_schema, table_name = excluded.table_name,
           pk_column = excluded.pk_column, depends_on = excluded.depends_on,
           reference_fields = excluded.reference_fields, field_classes = excluded.field_classes,
           practice_column = excluded.practice_column, default_strategy = excluded.default_strategy;

    PERFORM smartsync._sort_entity_types();

    -- tenants provisioned earlier get the new table and its capture now
    FOR t IN SELECT * FROM smartsync.tenants ORDER BY tenant_id LOOP
        PERFORM smartsync._track_table(t.schema_name, register_entity_type.entity_type);
    END LOOP;
END
$$;
COMMENT ON FUNCTION smartsync.register_entity_type(text, regclass, text[], jsonb, jsonb, text, text) IS
'register (or update) an entity type from its template table; idempotent; provisioned tenants get the table and its capture';

CREATE FUNCTION smartsync.unregister_entity_type(entity_type text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET client_min_messages = warning
AS $$
DECLARE
    e smartsync.entity_types;
    t record;
    dependents text;
BEGIN
    SELECT * INTO e FROM smartsync.entity_types x WHERE x.entity_type = unregister_entity_type.entity_type;
    IF NOT FOUND THEN
        PERFORM smartsync._raise('SS106', format('unknown entity type %L', unregister_entity_type.entity_type));
    END IF;
    SELECT string_agg(x.entity_type, ', ' ORDER BY x.entity_type) INTO dependents
      FROM smartsync.entity_types x WHERE unregister_entity_type.entity_type = ANY (x.depends_on);
    IF dependents IS NOT NULL THEN
        PERFORM smartsync._raise('SS109', format('entity type %L is depended on', e.entity_type),
            format('These entity types depend on it: %s.', dependents), 'Unregister them first.');
    END IF;
    FOR t IN SELECT * FROM smartsync.tenants LOOP
        PERFORM smartsync._untrack_table(t.schema_name, e.table_name);
    END LOOP;
    DELETE FROM smartsync.entity_types x WHERE x.entity_type = e.entity_type;
END
$$;
COMMENT ON FUNCTION smartsync.unregister_entity_type(text) IS
'stop tracking an entity type in every tenant (its tables and change log stay); refused while other types depend on it';
-- The request context (src/context.c).

CREATE FUNCTION smartsync.context()
RETURNS jsonb
LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'smartsync_context';
COMMENT ON FUNCTION smartsync.context() IS
'the request context as smartsync sees it: tenant (and its schema), practice, user, client, permissions; from request.jwt.claims when set, else from the smartsync.* settings';
-- Change capture (src/capture.c).

CREATE FUNCTION smartsync.stamp_row()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'smartsync_stamp_row';
COMMENT ON FUNCTION smartsync.stamp_row() IS
'BEFORE ROW trigger of tracked tables: version := 1 on insert, old version + 1 on update; updated_at := statement time; refuses primary-key changes';

CREATE FUNCTION smartsync.capture()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'smartsync_capture';
COMMENT ON FUNCTION smartsync.capture() IS
'AFTER STATEMENT trigger of tracked tables: appends the affected rows to the tenant''s change log (sync_changes)';

CREATE FUNCTION smartsync.refuse_truncate()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'smartsync_refuse_truncate';
COMMENT ON FUNCTION smartsync.refuse_truncate() IS
'BEFORE TRUNCATE trigger of tracked tables: a truncate would lose deletes, so it is refused';
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
END
$$;

-- Internal: the per-tenant sync tables (NOTES.md section 4: all of a tenant's sync state lives in its schema).
CREATE FUNCTION smartsync._create_sync_tables(s name)
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
        -- and tombstone lookups; and pull's retention horizon
        CREATE INDEX IF NOT EXISTS sync_changes_entity_seq_idx
            ON %1$I.sync_changes (entity_type, entity_id, seq);
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

-- Internal: remove smartsync's triggers from one table (its rows and log stay).
CREATE FUNCTION smartsync._untrack_table(s name, t name)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
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
            FOR EACH ROW EXECUTE FUNCTION smartsync.stamp_row(%2$L);
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
        PERFORM smartsync._raise('SS101', format('invalid tenant id %L', tenant_id),
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
    RETURN v_schema;
END
$$;
COMMENT ON FUNCTION smartsync.provision_tenant(text, name) IS
'create (or adopt) a tenant schema, its sync tables, its entity tables from the templates, and capture on them; idempotent for the same tenant and schema';
-- The conflict kernel (src/hash.c, src/conflict.c, src/merge.c): canonical
-- JSON and row hashes, field comparison, conflict detection, merges.

CREATE FUNCTION smartsync.canonical_json(data jsonb, exclude text[] DEFAULT NULL)
RETURNS text
LANGUAGE c IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'smartsync_canonical_json';
COMMENT ON FUNCTION smartsync.canonical_json(jsonb, text[]) IS
'RFC 8785 (JCS) canonical JSON text of data, the text row_hash hashes; for an object, without the top-level fields in exclude (NULL: version, updatedAt, updated_at)';

CREATE FUNCTION smartsync.row_hash(data jsonb, exclude text[] DEFAULT NULL)
RETURNS text
LANGUAGE c IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'smartsync_row_hash';
COMMENT ON FUNCTION smartsync.row_hash(jsonb, text[]) IS
'hex SHA-256 of the RFC 8785 canonical JSON of a JSON object, without the top-level fields in exclude (NULL: version, updatedAt, updated_at; ''{}'': none)';

CREATE FUNCTION smartsync.compare_fields(local_data jsonb, server_data jsonb, exclude text[] DEFAULT NULL)
RETURNS text[]
LANGUAGE c IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'smartsync_compare_fields';
COMMENT ON FUNCTION smartsync.compare_fields(jsonb, jsonb, text[]) IS
'sorted names of the top-level fields whose values differ (deep equality, 1 = 1.0; a key on one side only differs), without the fields in exclude (NULL: version, updatedAt, updated_at; ''{}'': none)';

CREATE FUNCTION smartsync.detect_conflict(
    local_data    jsonb,
    server_data   jsonb,
    local_ts      timestamptz,
    operation     text DEFAULT 'update',
    field_classes jsonb DEFAULT NULL,
    entity_type   text DEFAULT NULL)
RETURNS jsonb
LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'smartsync_detect_conflict';
COMMENT ON FUNCTION smartsync.detect_conflict(jsonb, jsonb, timestamptz, text, jsonb, text) IS
'the conflict between a client''s create/update/delete and the server row (NULL: none; "_deleted": true marks a tombstone): {"type","affectedFields","severity","autoResolvable"}, type one of missing_entity, deletion, version, timestamp, data; field classes given or read from the entity type';

CREATE FUNCTION smartsync.merge(local_data jsonb, server_data jsonb)
RETURNS jsonb
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'smartsync_merge';
COMMENT ON FUNCTION smartsync.merge(jsonb, jsonb) IS
'two-way merge (the spec''s attemptMerge): fields on one side only and equal fields; NULL when a field differs on both sides; metadata fields are the server''s';

CREATE FUNCTION smartsync.merge3(base_data jsonb, local_data jsonb, server_data jsonb)
RETURNS jsonb
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'smartsync_merge3';
COMMENT ON FUNCTION smartsync.merge3(jsonb, jsonb, jsonb) IS
'three-way merge: each field from the side that changed it since base (removing a key is a change), the same change on both sides accepted; NULL when both changed a field differently; metadata fields are the server''s';

CREATE FUNCTION smartsync.merge3_conflicts(base_data jsonb, local_data jsonb, server_data jsonb)
RETURNS text[]
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'smartsync_merge3_conflicts';
COMMENT ON FUNCTION smartsync.merge3_conflicts(jsonb, jsonb, jsonb) IS
'the fields merge3 cannot merge (both sides changed them differently), sorted; empty when merge3 succeeds';
-- Push: apply a batch of offline operations exactly once (src/push.c, pushapply.c, pushledger.c).

CREATE FUNCTION smartsync.sync_push(jsonb)
RETURNS jsonb
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'smartsync_sync_push';
COMMENT ON FUNCTION smartsync.sync_push(jsonb) IS
'POST /api/sync/push: apply {"operations":[...]} exactly once per (client, operation id), parents first, temporary ids mapped, conflicts detected, resolved or stored; returns {"success","processed","failed","conflicts","results"}; "atomic": true for all-or-nothing';
-- The conflict store and its resolution (src/resolve.c; README section "Conflicts").

CREATE FUNCTION smartsync.resolve_conflict(conflict_id bigint, strategy text, resolved_data jsonb DEFAULT NULL)
RETURNS jsonb
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'smartsync_resolve_conflict';
COMMENT ON FUNCTION smartsync.resolve_conflict(bigint, text, jsonb) IS
'resolve one open conflict of the request context''s tenant with server-wins, client-wins, merge, last-write-wins or manual (resolved_data required); writes through the tracked table (version + 1, change log), refuses a conflict whose server row changed since; returns {"conflictId","status","strategy","winner","entityType","entityId","data","version","resolvedBy","resolvedAt"}';

CREATE FUNCTION smartsync.list_conflicts(p_entity_type text DEFAULT NULL, p_severity text DEFAULT NULL,
                                         p_min_age interval DEFAULT NULL, p_limit integer DEFAULT 100)
RETURNS jsonb
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'smartsync_list_conflicts';
COMMENT ON FUNCTION smartsync.list_conflicts(text, text, interval, integer) IS
'the open conflicts of the request context''s tenant and practice, oldest first, filtered by entity type, severity and minimum age; each with local, server and base data and the affected fields side by side: {"conflicts":[...],"total","limit"}';

CREATE FUNCTION smartsync.conflict_stats()
RETURNS jsonb
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'smartsync_conflict_stats';
COMMENT ON FUNCTION smartsync.conflict_stats() IS
'counts of the request context''s conflicts: {"open","resolved","bySeverity":{low,medium,high,critical},"byEntityType":{...},"oldestOpenAt"} (open ones per severity and entity type)';

-- The conflict policy of an entity type: its default strategy (used by push when
-- a conflict is not auto-resolved) and the severities push resolves at once.
CREATE FUNCTION smartsync.set_conflict_policy(entity_type text, default_strategy text DEFAULT NULL,
                                              auto_resolve text[] DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_bad text;
    r smartsync.entity_types;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM smartsync.entity_types e WHERE e.entity_type = set_conflict_policy.entity_type) THEN
        PERFORM smartsync._raise('SS106', format('unknown entity type %L', set_conflict_policy.entity_type),
            'Only a registered entity type has a conflict policy.', 'smartsync.entity_types lists the registered types.');
    END IF;
    IF default_strategy IS NOT NULL
       AND default_strategy NOT IN ('server-wins', 'client-wins', 'merge', 'last-write-wins', 'manual') THEN
        PERFORM smartsync._raise('SS108', format('invalid conflict strategy %L', default_strategy),
            'A strategy is one of server-wins, client-wins, merge, last-write-wins, manual.');
    END IF;
    IF auto_resolve IS NOT NULL THEN
        SELECT min(coalesce(s, 'null')) INTO v_bad FROM unnest(auto_resolve) s
         WHERE s IS NULL OR s NOT IN ('low', 'medium', 'high');
        IF v_bad IS NOT NULL THEN
            PERFORM smartsync._raise('SS108', format('invalid auto-resolve severity %L', v_bad),
                CASE WHEN v_bad = 'critical'
                     THEN 'Critical conflicts are never resolved automatically: they need a decision.'
                     ELSE 'The severities that can resolve automatically are low, medium and high.' END);
        END IF;
    END IF;
    UPDATE smartsync.entity_types e
       SET default_strategy = coalesce(set_conflict_policy.default_strategy, e.default_strategy),
           auto_resolve = coalesce((SELECT array_agg(s ORDER BY array_position(ARRAY['low', 'medium', 'high'], s)) FROM (SELECT DISTINCT s FROM unnest(set_conflict_policy.auto_resolve) s) d),
                                   CASE WHEN set_conflict_policy.auto_resolve IS NOT NULL THEN '{}'::text[] END,
                                   e.auto_resolve)
     WHERE e.entity_type = set_conflict_policy.entity_type
    RETURNING * INTO r;
    RETURN jsonb_build_object('entityType', r.entity_type, 'defaultStrategy', r.default_strategy,
                              'autoResolve', to_jsonb(r.auto_resolve));
END
$$;
COMMENT ON FUNCTION smartsync.set_conflict_policy(text, text, text[]) IS
'set an entity type''s conflict policy: default_strategy (push resolves conflicts it does not auto-resolve with it; manual stores them) and auto_resolve (severities push settles at once in the client''s favour, low, medium or high; default {low}); NULL keeps the current value; returns the policy';
REVOKE ALL ON FUNCTION smartsync.set_conflict_policy(text, text, text[]) FROM PUBLIC;
-- The pull (src/pull.c): smartsync.sync_pull() and change-log retention.

-- The secret that signs pull cursors (HMAC-SHA256).  One row, made at CREATE
-- EXTENSION from gen_random_uuid() (pg_strong_random) randomness; pg_dump keeps
-- it.  Only the extension's C code reads it: nobody else is granted access.
CREATE TABLE smartsync.pull_secret (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    secret     bytea NOT NULL CHECK (octet_length(secret) >= 32),
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE smartsync.pull_secret IS 'the per-database secret that signs sync_pull cursors; replacing it invalidates every cursor (clients get SS502 and pull again without one)';
INSERT INTO smartsync.pull_secret (secret)
SELECT decode(replace(gen_random_uuid()::text || gen_random_uuid()::text
                      || gen_random_uuid()::text, '-', ''), 'hex');
SELECT pg_catalog.pg_extension_config_dump('smartsync.pull_secret', '');
REVOKE ALL ON smartsync.pull_secret FROM PUBLIC;

CREATE FUNCTION smartsync.sync_pull(
    p_since        timestamptz DEFAULT NULL,
    p_cursor       text DEFAULT NULL,
    p_entity_types text DEFAULT NULL,
    p_practice_id  text DEFAULT NULL,
    p_limit        integer DEFAULT NULL)
RETURNS jsonb
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'smartsync_sync_pull';
COMMENT ON FUNCTION smartsync.sync_pull(timestamptz, text, text, text, integer) IS
'GET /api/sync/pull: one page of changes for the request context''s tenant, {success, timestamp, changes[{entityType, operation, id, data, updatedAt, version}], hasMore, cursor, full}; send back cursor for an exact next page; without a cursor the first pull lists the live rows';

CREATE FUNCTION smartsync.prune_changes(p_tenant_id text, p_older_than interval)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_schema name;
    v_cutoff timestamptz;
    v_count  bigint;
    v_max    xid8;
BEGIN
    IF p_older_than IS NULL OR p_older_than < interval '0' THEN
        PERFORM smartsync._raise('SS509', format('invalid retention %L', p_older_than),
            'The retention is a non-negative interval: changes older than now() minus it are pruned.');
    END IF;
    SELECT t.schema_name INTO v_schema FROM smartsync.tenants t WHERE t.tenant_id = p_tenant_id;
    IF v_schema IS NULL THEN
        PERFORM smartsync._raise('SS203', format('tenant "%s" is not provisioned', p_tenant_id), NULL,
            'Provision it with smartsync.provision_tenant().');
    END IF;
    v_cutoff := now() - p_older_than;
    EXECUTE format('WITH d AS (DELETE FROM %I.sync_changes WHERE changed_at < $1 RETURNING xid)
                    SELECT count(*), max(xid) FROM d', v_schema)
       INTO v_count, v_max USING v_cutoff;
    IF v_count > 0 THEN
        EXECUTE format('INSERT INTO %1$I.sync_pull_horizon AS h (max_pruned_xid, pruned_before)
                        VALUES ($1, $2)
                        ON CONFLICT (singleton) DO UPDATE
                           SET max_pruned_xid = greatest(h.max_pruned_xid, excluded.max_pruned_xid),
                               pruned_before = greatest(h.pruned_before, excluded.pruned_before),
                               pruned_at = now()', v_schema)
          USING v_max, v_cutoff;
    END IF;
    RETURN v_count;
END
$$;
COMMENT ON FUNCTION smartsync.prune_changes(text, interval) IS
'delete a tenant''s change-log rows older than now() minus the interval and record the retention horizon; a client whose cursor predates it gets SS505 (must refetch); returns the number of rows deleted';
REVOKE ALL ON FUNCTION smartsync.prune_changes(text, interval) FROM PUBLIC;
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
-- when request.jwt.claims is set, else the smartsync.tenant_id setting.
CREATE FUNCTION smartsync.current_tenant_id()
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN coalesce(current_setting('request.jwt.claims', true), '') = ''
                THEN nullif(current_setting('smartsync.tenant_id', true), '')
                ELSE (SELECT coalesce(c ->> 'tenant_id', c ->> 'tenantId')
                        FROM (SELECT current_setting('request.jwt.claims', true)::jsonb) AS s(c)
                       WHERE jsonb_typeof(c) = 'object')
           END
$$;
COMMENT ON FUNCTION smartsync.current_tenant_id() IS
'the request context''s tenant id as row-level security sees it: the tenant_id (or tenantId) claim when request.jwt.claims is set, else the smartsync.tenant_id setting; NULL when none';

-- The practice of the request context, or NULL, read like current_tenant_id().
CREATE FUNCTION smartsync.current_practice_id()
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN coalesce(current_setting('request.jwt.claims', true), '') = ''
                THEN nullif(current_setting('smartsync.practice_id', true), '')
                ELSE (SELECT coalesce(c ->> 'practice_id', c ->> 'practiceId')
                        FROM (SELECT current_setting('request.jwt.claims', true)::jsonb) AS s(c)
                       WHERE jsonb_typeof(c) = 'object')
           END
$$;
COMMENT ON FUNCTION smartsync.current_practice_id() IS
'the request context''s practice id as row-level security sees it: the practice_id (or practiceId) claim when request.jwt.claims is set, else the smartsync.practice_id setting; NULL when none';

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
        EXECUTE format('CREATE POLICY smartsync_tenant ON %s AS PERMISSIVE FOR ALL
                            USING (%s = %L) WITH CHECK (%s = %L)',
                       r.rel, v_ctx_tenant, v_tenant, v_ctx_tenant, v_tenant);
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
            EXECUTE format('CREATE POLICY smartsync_practice ON %s AS RESTRICTIVE FOR ALL
                                USING (%s) WITH CHECK (%s)', r.rel, v_practice, v_practice);
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
COMMENT ON FUNCTION smartsync._secure_tenant(name, name) IS
'internal: row-level security (ENABLE + FORCE, tenant and practice policies) and the api owner''s privileges on a tenant schema''s tables; idempotent';

-- --- HTTP statuses ---------------------------------------------------------

-- The HTTP status PostgREST answers for a SQLSTATE raised by smartsync
-- (smartsync's own, class SS), NULL for any other SQLSTATE (PostgREST's own
-- mapping applies to those: 42501 -> 403 or 401, 23505 -> 409, ...).
CREATE FUNCTION smartsync.http_status(sqlstate text)
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN sqlstate IS NULL OR sqlstate NOT LIKE 'SS___' THEN NULL
        -- who is calling
        WHEN sqlstate IN ('SS201', 'SS202') THEN 401
        WHEN sqlstate IN ('SS203', 'SS420', 'SS421', 'SS426', 'SS503', 'SS507', 'SS508') THEN 403
        -- batch too large, must refetch
        WHEN sqlstate = 'SS403' THEN 413
        WHEN sqlstate = 'SS505' THEN 410
        -- stale or concurrent state
        WHEN sqlstate IN ('SS425', 'SS427') THEN 409
        -- the server's configuration, not the request
        WHEN sqlstate IN ('SS104', 'SS110', 'SS112', 'SS120', 'SS121', 'SS701') THEN 500
        -- conflict resolution: unknown conflict; another practice's; already
        -- resolved, changed since, or a merge the data does not allow
        WHEN sqlstate = 'SS601' THEN 404
        WHEN sqlstate = 'SS604' THEN 403
        WHEN sqlstate IN ('SS602', 'SS603', 'SS606', 'SS608') THEN 409
        -- everything else a client sends wrong
        ELSE 400
    END
$$;
COMMENT ON FUNCTION smartsync.http_status(text) IS
'the HTTP status the api answers for a smartsync SQLSTATE (class SS): 400 invalid request, 401 no or malformed identity, 403 forbidden, 404 unknown conflict, 409 stale or concurrent, 410 must refetch, 413 batch too large, 500 server configuration; NULL for other SQLSTATEs';

-- Internal: re-raises a smartsync error as PostgREST's custom error: SQLSTATE
-- PGRST, the message a JSON body {code, message, details, hint} with the
-- smartsync SQLSTATE as code, the detail {status, headers}.
CREATE FUNCTION smartsync._api_raise(code text, message text, detail text, hint text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_status integer := coalesce(smartsync.http_status(code), 400);
BEGIN
    RAISE SQLSTATE 'PGRST' USING
        MESSAGE = jsonb_strip_nulls(jsonb_build_object(
            'code', code, 'message', message,
            'details', nullif(detail, ''), 'hint', nullif(hint, '')))::text,
        DETAIL = jsonb_build_object(
            'status', v_status,
            'headers', CASE WHEN v_status = 401
                            THEN jsonb_build_object('WWW-Authenticate', 'Bearer')
                            ELSE '{}'::jsonb END)::text;
END
$$;
COMMENT ON FUNCTION smartsync._api_raise(text, text, text, text) IS
'internal: raise a smartsync error as PostgREST''s PGRST error: body {code, message, details, hint} with the smartsync SQLSTATE as code, HTTP status from smartsync.http_status()';

-- Internal: refuses an api call that has no JWT claims (SS201: the api never
-- reads the smartsync.* settings) or that runs as a role bypassing row-level
-- security (SS701: the api functions must be owned by smartsync_api).
CREATE FUNCTION smartsync._api_guard()
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = current_user AND (rolsuper OR rolbypassrls)) THEN
        PERFORM smartsync._raise('SS701', 'the api runs as a role that bypasses row-level security',
            'The api functions must run as smartsync_api, a role without SUPERUSER and BYPASSRLS.',
            'Run smartsync.setup_postgrest() as a superuser to (re)create the api functions.');
    END IF;
    IF coalesce(current_setting('request.jwt.claims', true), '') = '' THEN
        PERFORM smartsync._raise('SS201', 'no tenant in the request context',
            'The api reads the tenant from request.jwt.claims, which is not set.',
            'Send a JWT with a "tenant_id" claim.');
    END IF;
END
$$;

-- Internal: the body of api.sync_push (runs as the api owner).
CREATE FUNCTION smartsync._api_sync_push(payload jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_code text; v_msg text; v_detail text; v_hint text;
BEGIN
    PERFORM smartsync._api_guard();
    RETURN smartsync.sync_push(payload);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS v_code = RETURNED_SQLSTATE, v_msg = MESSAGE_TEXT,
                            v_detail = PG_EXCEPTION_DETAIL, v_hint = PG_EXCEPTION_HINT;
    IF v_code LIKE 'SS%' THEN
        PERFORM smartsync._api_raise(v_code, v_msg, v_detail, v_hint);
    END IF;
    RAISE;
END
$$;
COMMENT ON FUNCTION smartsync._api_sync_push(jsonb) IS
'internal: body of api.sync_push: smartsync.sync_push with smartsync errors as PostgREST responses';

-- Internal: parses the spec's lastSyncTimestamp: epoch milliseconds or an ISO timestamp.
CREATE FUNCTION smartsync._api_timestamp(name text, value text)
RETURNS timestamptz
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF value IS NULL OR value = '' THEN
        RETURN NULL;
    ELSIF value ~ '^\s*[0-9]{1,15}\s*$' THEN
        RETURN to_timestamp(value::numeric / 1000);
    END IF;
    RETURN value::timestamptz;
EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR invalid_parameter_value THEN
    PERFORM smartsync._raise('SS702', format('invalid %s %L', name, value),
        'It is a time in milliseconds since 1970-01-01 UTC, or an ISO 8601 timestamp with its zone.',
        'Encode "+" in a query string as %2B.');
END
$$;

-- Internal: one pull parameter given under two names (p_x and the spec's name).
CREATE FUNCTION smartsync._api_param(name text, value text, alias text, alias_value text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF value IS NOT NULL AND alias_value IS NOT NULL AND value <> alias_value THEN
        PERFORM smartsync._raise('SS702', format('parameters %s and %s disagree', name, alias),
            format('%s is the spec''s name of %s; send one of them.', alias, name));
    END IF;
    RETURN coalesce(value, alias_value);
END
$$;

-- Internal: the body of api.sync_pull (runs as the api owner).
CREATE FUNCTION smartsync._api_sync_pull(
    p_since        timestamptz,
    p_cursor       text,
    p_entity_types text,
    p_practice_id  text,
    p_limit        integer,
    last_sync_timestamp text,
    practice_id    text,
    entity_types   text)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_since timestamptz;
    v_code text; v_msg text; v_detail text; v_hint text;
BEGIN
    PERFORM smartsync._api_guard();
    v_since := smartsync._api_timestamp('lastSyncTimestamp', last_sync_timestamp);
    IF p_since IS NOT NULL AND v_since IS NOT NULL AND p_since <> v_since THEN
        PERFORM smartsync._raise('SS702', 'parameters p_since and lastSyncTimestamp disagree',
            'lastSyncTimestamp is the spec''s name of p_since; send one of them.');
    END IF;
    RETURN smartsync.sync_pull(
        p_since        => coalesce(p_since, v_since),
        p_cursor       => p_cursor,
        p_entity_types => smartsync._api_param('p_entity_types', p_entity_types, 'entityTypes', entity_types),
        p_practice_id  => smartsync._api_param('p_practice_id', p_practice_id, 'practiceId', practice_id),
        p_limit        => p_limit);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS v_code = RETURNED_SQLSTATE, v_msg = MESSAGE_TEXT,
                            v_detail = PG_EXCEPTION_DETAIL, v_hint = PG_EXCEPTION_HINT;
    IF v_code LIKE 'SS%' THEN
        PERFORM smartsync._api_raise(v_code, v_msg, v_detail, v_hint);
    END IF;
    RAISE;
END
$$;
COMMENT ON FUNCTION smartsync._api_sync_pull(timestamptz, text, text, text, integer, text, text, text) IS
'internal: body of api.sync_pull: smartsync.sync_pull with the spec''s parameter names and smartsync errors as PostgREST responses';

-- Internal: the bodies of the conflict endpoints (issue 6's functions), same pattern.
CREATE FUNCTION smartsync._api_resolve_conflict(conflict_id bigint, strategy text, resolved_data jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_code text; v_msg text; v_detail text; v_hint text;
BEGIN
    PERFORM smartsync._api_guard();
    RETURN smartsync.resolve_conflict(conflict_id, strategy, resolved_data);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS v_code = RETURNED_SQLSTATE, v_msg = MESSAGE_TEXT,
                            v_detail = PG_EXCEPTION_DETAIL, v_hint = PG_EXCEPTION_HINT;
    IF v_code LIKE 'SS%' THEN
        PERFORM smartsync._api_raise(v_code, v_msg, v_detail, v_hint);
    END IF;
    RAISE;
END
$$;

CREATE FUNCTION smartsync._api_list_conflicts(p_entity_type text, p_severity text, p_min_age interval, p_limit integer)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_code text; v_msg text; v_detail text; v_hint text;
BEGIN
    PERFORM smartsync._api_guard();
    RETURN smartsync.list_conflicts(p_entity_type => p_entity_type, p_severity => p_severity,
                                    p_min_age => p_min_age, p_limit => coalesce(p_limit, 100));
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS v_code = RETURNED_SQLSTATE, v_msg = MESSAGE_TEXT,
                            v_detail = PG_EXCEPTION_DETAIL, v_hint = PG_EXCEPTION_HINT;
    IF v_code LIKE 'SS%' THEN
        PERFORM smartsync._api_raise(v_code, v_msg, v_detail, v_hint);
    END IF;
    RAISE;
END
$$;

CREATE FUNCTION smartsync._api_conflict_stats()
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_code text; v_msg text; v_detail text; v_hint text;
BEGIN
    PERFORM smartsync._api_guard();
    RETURN smartsync.conflict_stats();
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS v_code = RETURNED_SQLSTATE, v_msg = MESSAGE_TEXT,
                            v_detail = PG_EXCEPTION_DETAIL, v_hint = PG_EXCEPTION_HINT;
    IF v_code LIKE 'SS%' THEN
        PERFORM smartsync._api_raise(v_code, v_msg, v_detail, v_hint);
    END IF;
    RAISE;
END
$$;

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
                        AND to_regprocedure('smartsync.list_conflicts(text, text, interval, integer)') IS NOT NULL
                        AND to_regprocedure('smartsync.conflict_stats()') IS NOT NULL;
    v_functions  text[] := ARRAY['sync_push(jsonb)',
                                 'sync_pull(timestamptz, text, text, text, integer, text, text, text)'];
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
            'smartsync: offline-first sync. POST /rpc/sync_push sends offline operations; GET /rpc/sync_pull fetches changes.');
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
'set up PostgREST access (idempotent; superuser): roles authenticator (LOGIN NOINHERIT, password if given), the anonymous and web roles (NOLOGIN), smartsync_api (NOLOGIN, owns the api functions); the exposed schema with sync_push, sync_pull and the conflict endpoints, executable by the web role only; row-level security and privileges on every tenant schema';

REVOKE ALL ON FUNCTION smartsync.setup_postgrest(text, name, name, name) FROM PUBLIC;
REVOKE ALL ON FUNCTION smartsync._secure_tenant(name, name) FROM PUBLIC;
REVOKE ALL ON FUNCTION smartsync._check_api_role(name, text) FROM PUBLIC;
-- Administrative functions are not for PUBLIC.
REVOKE ALL ON FUNCTION smartsync.register_entity_type(text, regclass, text[], jsonb, jsonb, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION smartsync.unregister_entity_type(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION smartsync.provision_tenant(text, name) FROM PUBLIC;
REVOKE ALL ON FUNCTION smartsync._raise(text, text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION smartsync._sort_entity_types() FROM PUBLIC;
REVOKE ALL ON FUNCTION smartsync._check_schema_name(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION smartsync._create_sync_tables(name) FROM PUBLIC;
REVOKE ALL ON FUNCTION smartsync._untrack_table(name, name) FROM PUBLIC;
REVOKE ALL ON FUNCTION smartsync._track_table(name, text) FROM PUBLIC;
-- Dump and restore (README "Reliability").  smartsync.pull_secret is an extension
-- configuration table, so pg_dump keeps its row; but a restore runs CREATE
-- EXTENSION first, and that makes a fresh secret.  The restored row replaces it,
-- so a restored database keeps the secret that signed its clients' cursors.
CREATE FUNCTION smartsync._pull_secret_replace()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM smartsync.pull_secret;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION smartsync._pull_secret_replace() FROM PUBLIC;
CREATE TRIGGER pull_secret_replace BEFORE INSERT ON smartsync.pull_secret
    FOR EACH ROW EXECUTE FUNCTION smartsync._pull_secret_replace();
