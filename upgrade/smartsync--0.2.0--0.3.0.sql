-- smartsync 0.2.0 -> 0.3.0
\echo Use "ALTER EXTENSION smartsync UPDATE TO '0.3.0'" to load this file. \quit

-- Every change to the extension's SQL objects between 0.2.0 and 0.3.0, one section per
-- change; sql/upgrade.sql checks that an updated 0.2.0 equals a fresh 0.3.0.

-- i12-trust: the registry, provisioning and the request context
-- entity types that let legacy clients update and delete without a base version
ALTER TABLE smartsync.entity_types ADD COLUMN timestamp_detection boolean NOT NULL DEFAULT false;
COMMENT ON TABLE smartsync.entity_types IS
'entity types: the table inside every tenant schema, its key, dependencies, reference fields, field classes, practice column and default conflict strategy; sort_order is the dependency level (parents first); timestamp_detection lets legacy clients update and delete without a base version';
-- field names match column names exactly (or exactly their camelCase spelling)
CREATE OR REPLACE FUNCTION smartsync._field_column(rel regclass, field text)
RETURNS name
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT a.attname
      FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped
       AND (a.attname = field
            OR (a.attname ~ '^[a-z][a-z0-9]*(_[a-z0-9]+)+$'
                AND (SELECT string_agg(CASE WHEN x.n = 1 THEN x.p ELSE upper(left(x.p, 1)) || substr(x.p, 2) END,
                                       '' ORDER BY x.n)
                       FROM regexp_split_to_table(a.attname, '_') WITH ORDINALITY AS x(p, n)) = field))
     ORDER BY a.attname = field DESC
     LIMIT 1
$$;
-- register_entity_type: timestamp_detection; refuses temporary templates and NULL dependencies
DROP FUNCTION smartsync.register_entity_type(text, regclass, text[], jsonb, jsonb, text, text);
CREATE FUNCTION smartsync.register_entity_type(
    entity_type      text,
    template         regclass,
    depends_on       text[] DEFAULT '{}',
    reference_fields jsonb DEFAULT '{}',
    field_classes    jsonb DEFAULT '{}',
    practice_column  text DEFAULT NULL,
    default_strategy text DEFAULT 'manual',
    timestamp_detection boolean DEFAULT false)
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
    IF (SELECT c.relpersistence FROM pg_catalog.pg_class c WHERE c.oid = v_rel) = 't' THEN
        PERFORM smartsync._raise('SS113', format('template %s is a temporary table', v_rel),
            'A template outlives the session that registers it: every tenant provisioned later is made from it.',
            'Create the template as an ordinary table in a schema of its own.');
    END IF;
    IF array_position(depends_on, NULL) IS NOT NULL THEN
        PERFORM smartsync._raise('SS101', 'depends_on must not hold NULL',
            'depends_on lists the entity types this one depends on, each by its name.');
    END IF;
    IF timestamp_detection IS NULL THEN
        PERFORM smartsync._raise('SS108', 'timestamp_detection must not be null',
            'true lets updates and deletes of legacy clients come without a base version; false (the default) requires it.');
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
            field_classes, practice_column, default_strategy, timestamp_detection)
    VALUES (register_entity_type.entity_type, v_schema, v_table, v_pk, v_deps, v_refs,
            v_classes, v_practice, register_entity_type.default_strategy,
            register_entity_type.timestamp_detection)
    ON CONFLICT ON CONSTRAINT entity_types_pkey DO UPDATE
       SET template_schema = excluded.template_schema, table_name = excluded.table_name,
           pk_column = excluded.pk_column, depends_on = excluded.depends_on,
           reference_fields = excluded.reference_fields, field_classes = excluded.field_classes,
           practice_column = excluded.practice_column, default_strategy = excluded.default_strategy,
           timestamp_detection = excluded.timestamp_detection;

    PERFORM smartsync._sort_entity_types();

    -- tenants provisioned earlier get the new table and its capture now
    FOR t IN SELECT * FROM smartsync.tenants ORDER BY tenant_id LOOP
        PERFORM smartsync._track_table(t.schema_name, register_entity_type.entity_type);
    END LOOP;
END
$$;
COMMENT ON FUNCTION smartsync.register_entity_type(text, regclass, text[], jsonb, jsonb, text, text, boolean) IS
'register (or update) an entity type from its template table; idempotent; provisioned tenants get the table and its capture; timestamp_detection lets legacy clients update and delete without a base version (off by default)';
REVOKE ALL ON FUNCTION smartsync.register_entity_type(text, regclass, text[], jsonb, jsonb, text, text, boolean) FROM PUBLIC;
-- provisioning refuses the schema PostgREST exposes; _track_table refuses wrong arguments with SS106 / SS101
CREATE OR REPLACE FUNCTION smartsync._check_schema_name(s text)
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
CREATE OR REPLACE FUNCTION smartsync.provision_tenant(tenant_id text, schema_name name DEFAULT NULL)
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
    RETURN v_schema;
END
$$;
COMMENT ON FUNCTION smartsync.provision_tenant(text, name) IS
'create (or adopt) a tenant schema, its sync tables, its entity tables from the templates, and capture on them; idempotent for the same tenant and schema';
-- practice ids in canonical form (1, "1", 1.0, 1e0 alike), as the C context reads them
CREATE OR REPLACE FUNCTION smartsync.current_practice_id()
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN length(p.v) <= 64 AND p.v ~ '^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]{1,3})?$'
                THEN trim_scale(p.v::numeric)::text
                ELSE p.v END
      FROM (SELECT CASE WHEN coalesce(current_setting('request.jwt.claims', true), '') = ''
                        THEN nullif(current_setting('smartsync.practice_id', true), '')
                        ELSE (SELECT coalesce(c ->> 'practice_id', c ->> 'practiceId')
                                FROM (SELECT current_setting('request.jwt.claims', true)::jsonb) AS s(c)
                               WHERE jsonb_typeof(c) = 'object')
                   END) AS p(v)
$$;
COMMENT ON FUNCTION smartsync.current_practice_id() IS
'the request context''s practice id as row-level security sees it: the practice_id (or practiceId) claim when request.jwt.claims is set, else the smartsync.practice_id setting, a number in canonical form (1, "1", 1.0 and 1e0 are "1"); NULL when none';

-- i12-trust: pull: p_since is text read by the one strict timestamp parser; retention out of range is SS509
DROP FUNCTION smartsync.sync_pull(timestamptz, text, text, text, integer);
CREATE FUNCTION smartsync.sync_pull(
    p_since        text DEFAULT NULL,
    p_cursor       text DEFAULT NULL,
    p_entity_types text DEFAULT NULL,
    p_practice_id  text DEFAULT NULL,
    p_limit        integer DEFAULT NULL)
RETURNS jsonb
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'smartsync_sync_pull';
COMMENT ON FUNCTION smartsync.sync_pull(text, text, text, text, integer) IS
'GET /api/sync/pull: one page of changes for the request context''s tenant, {success, timestamp, changes[{entityType, operation, id, data, updatedAt, version}], hasMore, cursor, full}; send back cursor for an exact next page; without a cursor the first pull lists the live rows; p_since (epoch milliseconds or ISO 8601 with offset) reads changes at or after it, and timestamp is a safe watermark to send back as p_since';

CREATE OR REPLACE FUNCTION smartsync.prune_changes(p_tenant_id text, p_older_than interval)
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
    BEGIN
        v_cutoff := now() - p_older_than;
    EXCEPTION WHEN datetime_field_overflow OR interval_field_overflow THEN
        PERFORM smartsync._raise('SS509', 'invalid retention: out of range',
            'The retention is a non-negative interval: changes older than now() minus it are pruned.');
    END;
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

-- i12-trust: the api: every code's HTTP status (NULL for codes smartsync does not define), sync_pull's p_since as text
CREATE OR REPLACE FUNCTION smartsync.http_status(sqlstate text)
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        -- who is calling
        WHEN sqlstate IN ('SS201', 'SS202') THEN 401
        WHEN sqlstate IN ('SS203', 'SS420', 'SS421', 'SS426', 'SS503', 'SS507', 'SS508',
                          'SS604', 'SS610') THEN 403
        -- an unknown conflict
        WHEN sqlstate = 'SS601' THEN 404
        -- stale or concurrent state, a merge the data does not allow
        WHEN sqlstate IN ('SS425', 'SS427', 'SS602', 'SS603', 'SS606', 'SS608') THEN 409
        -- must refetch
        WHEN sqlstate = 'SS505' THEN 410
        -- too large: split the batch, shorten the value
        WHEN sqlstate IN ('SS403', 'SS412', 'SS429', 'SS611') THEN 413
        -- an update or delete without the base version it was made on
        WHEN sqlstate = 'SS428' THEN 428
        -- the server's configuration, not the request
        WHEN sqlstate IN ('SS104', 'SS110', 'SS112', 'SS120', 'SS121', 'SS701') THEN 500
        -- everything else a client sends wrong
        WHEN sqlstate IN ('SS101', 'SS103', 'SS105', 'SS106', 'SS107', 'SS108', 'SS109', 'SS111',
                          'SS113', 'SS122', 'SS123',
                          'SS301', 'SS302', 'SS303', 'SS304', 'SS305',
                          'SS401', 'SS402', 'SS404', 'SS405', 'SS406', 'SS407', 'SS408', 'SS409',
                          'SS410', 'SS411', 'SS422', 'SS423', 'SS424', 'SS430',
                          'SS501', 'SS502', 'SS504', 'SS506', 'SS509', 'SS510', 'SS511',
                          'SS605', 'SS607', 'SS609', 'SS702', 'SS703') THEN 400
    END
$$;
COMMENT ON FUNCTION smartsync.http_status(text) IS
'the HTTP status the api answers for a SQLSTATE smartsync defines (class SS): 400 invalid request, 401 no or malformed identity, 403 forbidden, 404 unknown conflict, 409 stale or concurrent, 410 must refetch, 413 too large, 428 no base version, 500 server configuration; NULL for any other code (another class, or an SS code smartsync does not define), which the api answers with 400';
DROP FUNCTION smartsync._api_timestamp(text, text);
DROP FUNCTION smartsync._api_sync_pull(timestamptz, text, text, text, integer, text, text, text);
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
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_code text; v_msg text; v_detail text; v_hint text;
BEGIN
    PERFORM smartsync._api_guard();
    -- a time is checked by sync_pull's strict parser (SS510), whichever name it came under
    RETURN smartsync.sync_pull(
        p_since        => smartsync._api_param('p_since', p_since, 'lastSyncTimestamp', last_sync_timestamp),
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
COMMENT ON FUNCTION smartsync._api_sync_pull(text, text, text, text, integer, text, text, text) IS
'internal: body of api.sync_pull: smartsync.sync_pull with the spec''s parameter names and smartsync errors as PostgREST responses';
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
                                 'sync_pull(text, text, text, text, integer, text, text, text)'];
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
        LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = pg_catalog, pg_temp
        AS 'SELECT smartsync._api_sync_pull($1, $2, $3, $4, $5, $6, $7, $8)';
        COMMENT ON FUNCTION %1$I.sync_pull(text, text, text, text, integer, text, text, text) IS
$c$Pull server changes (the spec's GET /api/sync/pull)

One page of changes for the JWT's tenant (and practice): {"success", "timestamp", "changes": [{"entityType", "operation", "id", "data", "updatedAt", "version"}], "hasMore", "cursor", "full"}. Send the returned cursor as p_cursor for the exact next page; without a cursor the first pull lists the live rows. p_entity_types: comma-separated entity types; p_limit: page size. The spec's lastSyncTimestamp (milliseconds since 1970, or ISO 8601 with offset), practiceId and entityTypes are accepted as aliases of p_since, p_practice_id and p_entity_types; the response's timestamp is a safe watermark to send back as lastSyncTimestamp. Errors: 400, 401, 403, and 410 when the cursor is older than the change-log retention (pull again without a cursor).$c$;
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
        LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = pg_catalog, pg_temp
        AS 'SELECT smartsync._api_sync_pull($1, $2, $3, $4, $5, $6, $7, $8)';
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

-- i15-perf: current_tenant_id() and current_practice_id() in C (src/context.c): the same
-- answers, without planning a SQL function in every statement a policy checks.  CREATE OR
-- REPLACE keeps their oids, which the tenant policies hold.
CREATE OR REPLACE FUNCTION smartsync.current_tenant_id()
RETURNS text
LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'smartsync_current_tenant_id';
COMMENT ON FUNCTION smartsync.current_tenant_id() IS
'the request context''s tenant id as row-level security sees it: the tenant_id (or tenantId) claim when request.jwt.claims is set, else the smartsync.tenant_id setting; NULL when none';

CREATE OR REPLACE FUNCTION smartsync.current_practice_id()
RETURNS text
LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'smartsync_current_practice_id';
COMMENT ON FUNCTION smartsync.current_practice_id() IS
'the request context''s practice id as row-level security sees it: the practice_id (or practiceId) claim when request.jwt.claims is set, else the smartsync.practice_id setting, a number in canonical form (1, "1", 1.0 and 1e0 are "1"); NULL when none';

-- i18-citus: Citus schema-based sharding (README "Scaling out"): src/sql/85_citus.sql
-- whole; provisioning calls its hooks (_track_table, provision_tenant), triggers
-- are created one statement at a time and with citus.enable_unsafe_triggers
-- (_track_table, _untrack_table), row-level security takes the form Citus
-- accepts once citus_setup() ran (_secure_tenant), the api owner logs in on
-- Citus (setup_postgrest, after i15-server's), SS851, SS852 and SS853 have their HTTP
-- statuses (http_status), prune_changes' horizon upsert takes pruned_at from
-- excluded (Citus refuses now() there).  (sync_changed's routing and
-- poll_changes' refusal of Citus tenants are in C: no SQL object changes.)

CREATE OR REPLACE FUNCTION smartsync._untrack_table(s name, t name)
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

CREATE OR REPLACE FUNCTION smartsync._track_table(s name, etype text)
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
            FOR EACH ROW EXECUTE FUNCTION smartsync.stamp_row(%2$L)',
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

CREATE OR REPLACE FUNCTION smartsync.provision_tenant(tenant_id text, schema_name name DEFAULT NULL)
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

CREATE OR REPLACE FUNCTION smartsync._secure_tenant(s name, only_table name DEFAULT NULL)
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
        EXECUTE format('CREATE POLICY smartsync_tenant ON %s AS PERMISSIVE FOR ALL
                            USING (%s = %L) WITH CHECK (%s = %L)',
                       r.rel, v_ctx_tenant, v_tenant, v_ctx_tenant, v_tenant);
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
            EXECUTE format('CREATE POLICY smartsync_practice ON %s AS RESTRICTIVE FOR ALL
                                USING (%s) WITH CHECK (%s)', r.rel, v_practice, v_practice);
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

CREATE OR REPLACE FUNCTION smartsync.http_status(sqlstate text)
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        -- who is calling
        WHEN sqlstate IN ('SS201', 'SS202') THEN 401
        WHEN sqlstate IN ('SS203', 'SS420', 'SS421', 'SS426', 'SS503', 'SS507', 'SS508',
                          'SS604', 'SS610') THEN 403
        -- an unknown conflict
        WHEN sqlstate = 'SS601' THEN 404
        -- stale or concurrent state, a merge the data does not allow
        WHEN sqlstate IN ('SS425', 'SS427', 'SS602', 'SS603', 'SS606', 'SS608') THEN 409
        -- must refetch
        WHEN sqlstate = 'SS505' THEN 410
        -- too large: split the batch, shorten the value
        WHEN sqlstate IN ('SS403', 'SS412', 'SS429', 'SS611') THEN 413
        -- an update or delete without the base version it was made on
        WHEN sqlstate = 'SS428' THEN 428
        -- the server's configuration, not the request
        WHEN sqlstate IN ('SS104', 'SS110', 'SS112', 'SS120', 'SS121', 'SS701', 'SS852', 'SS853') THEN 500
        -- Citus: the tenant moved while the request was on its way: retry
        WHEN sqlstate = 'SS851' THEN 503
        -- everything else a client sends wrong
        WHEN sqlstate IN ('SS101', 'SS103', 'SS105', 'SS106', 'SS107', 'SS108', 'SS109', 'SS111',
                          'SS113', 'SS122', 'SS123',
                          'SS301', 'SS302', 'SS303', 'SS304', 'SS305',
                          'SS401', 'SS402', 'SS404', 'SS405', 'SS406', 'SS407', 'SS408', 'SS409',
                          'SS410', 'SS411', 'SS422', 'SS423', 'SS424', 'SS430',
                          'SS501', 'SS502', 'SS504', 'SS506', 'SS509', 'SS510', 'SS511',
                          'SS605', 'SS607', 'SS609', 'SS702', 'SS703') THEN 400
    END
$$;
COMMENT ON FUNCTION smartsync.http_status(text) IS
'the HTTP status the api answers for a SQLSTATE smartsync defines (class SS): 400 invalid request, 401 no or malformed identity, 403 forbidden, 404 unknown conflict, 409 stale or concurrent, 410 must refetch, 413 too large, 428 no base version, 500 server configuration, 503 tenant moving between nodes (retry); NULL for any other code (another class, or an SS code smartsync does not define), which the api answers with 400';

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
        LANGUAGE sql VOLATILE SECURITY DEFINER
        SET search_path = pg_catalog, pg_temp
        AS 'SELECT smartsync._api_sync_push($1)';
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
        LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = pg_catalog, pg_temp
        AS 'SELECT smartsync._api_sync_pull($1, $2, $3, $4, $5, $6, $7, $8)';
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

CREATE OR REPLACE FUNCTION smartsync.prune_changes(p_tenant_id text, p_older_than interval)
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
    BEGIN
        v_cutoff := now() - p_older_than;
    EXCEPTION WHEN datetime_field_overflow OR interval_field_overflow THEN
        PERFORM smartsync._raise('SS509', 'invalid retention: out of range',
            'The retention is a non-negative interval: changes older than now() minus it are pruned.');
    END;
    EXECUTE format('WITH d AS (DELETE FROM %I.sync_changes WHERE changed_at < $1 RETURNING xid)
                    SELECT count(*), max(xid) FROM d', v_schema)
       INTO v_count, v_max USING v_cutoff;
    IF v_count > 0 THEN
        -- pruned_at from excluded (its default, now()): Citus takes only immutable functions in DO UPDATE
        EXECUTE format('INSERT INTO %1$I.sync_pull_horizon AS h (max_pruned_xid, pruned_before)
                        VALUES ($1, $2)
                        ON CONFLICT (singleton) DO UPDATE
                           SET max_pruned_xid = greatest(h.max_pruned_xid, excluded.max_pruned_xid),
                               pruned_before = greatest(h.pruned_before, excluded.pruned_before),
                               pruned_at = excluded.pruned_at', v_schema)
          USING v_max, v_cutoff;
    END IF;
    RETURN v_count;
END
$$;

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

-- i13-push: backends cache the registry (tenants, entity types, src/registry.c); a change
-- of smartsync.tenants reaches them through notify_registry_changed (i15-server, above),
-- a change of smartsync.entity_types through this trigger
CREATE FUNCTION smartsync._registry_changed()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'smartsync_registry_changed';
COMMENT ON FUNCTION smartsync._registry_changed() IS
'internal: AFTER STATEMENT trigger of smartsync.entity_types: every backend drops its cached copy of the registered types when the change commits';
REVOKE ALL ON FUNCTION smartsync._registry_changed() FROM PUBLIC;
CREATE TRIGGER smartsync_registry_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON smartsync.entity_types
    FOR EACH STATEMENT EXECUTE FUNCTION smartsync._registry_changed();

-- >>> i13-capture (generated from src/sql by the i13-capture task; keep in step with it)

-- i13-capture: a cheaper change log.  Each log row gets entity_key
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

-- i13-capture: the conflict store keeps its counts (sync_conflict_counts, by
-- smartsync._count_conflicts triggers): conflict_stats and the listing's total
-- read them; list_conflicts pages by keyset (p_after, "hasMore", "next").
CREATE FUNCTION smartsync._count_conflicts()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'smartsync_count_conflicts';
COMMENT ON FUNCTION smartsync._count_conflicts() IS
'internal: AFTER STATEMENT trigger of a tenant''s sync_conflicts keeping sync_conflict_counts (per practice scope, entity type, severity and status) in step';
DROP FUNCTION smartsync.list_conflicts(text, text, interval, integer);
CREATE FUNCTION smartsync.list_conflicts(p_entity_type text DEFAULT NULL, p_severity text DEFAULT NULL,
                                         p_min_age interval DEFAULT NULL, p_limit integer DEFAULT 100,
                                         p_after bigint DEFAULT NULL)
RETURNS jsonb
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'smartsync_list_conflicts';
COMMENT ON FUNCTION smartsync.list_conflicts(text, text, interval, integer, bigint) IS
'the open conflicts of the request context''s tenant and practice, oldest first, filtered by entity type, severity and minimum age; each with local, server and base data and the affected fields side by side: {"conflicts":[...],"total","limit","hasMore","next"}; a page reads what it holds, the next one starts after p_after (the previous page''s "next", its last conflictId); total comes from kept counts';
COMMENT ON FUNCTION smartsync.conflict_stats() IS
'counts of the request context''s conflicts: {"open","resolved","bySeverity":{low,medium,high,critical},"byEntityType":{...},"oldestOpenAt"} (open ones per severity and entity type), read from the counts triggers keep (sync_conflict_counts), not from the store';
DROP FUNCTION smartsync._api_list_conflicts(text, text, interval, integer);
CREATE FUNCTION smartsync._api_list_conflicts(p_entity_type text, p_severity text, p_min_age interval, p_limit integer,
                                              p_after bigint DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_code text; v_msg text; v_detail text; v_hint text;
BEGIN
    PERFORM smartsync._api_guard();
    RETURN smartsync.list_conflicts(p_entity_type => p_entity_type, p_severity => p_severity,
                                    p_min_age => p_min_age, p_limit => coalesce(p_limit, 100),
                                    p_after => p_after);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS v_code = RETURNED_SQLSTATE, v_msg = MESSAGE_TEXT,
                            v_detail = PG_EXCEPTION_DETAIL, v_hint = PG_EXCEPTION_HINT;
    IF v_code LIKE 'SS%' THEN
        PERFORM smartsync._api_raise(v_code, v_msg, v_detail, v_hint);
    END IF;
    RAISE;
END
$$;

-- i13-capture: row-level security policies of tenant tables state their
-- condition once (FOR ALL ... USING, no WITH CHECK repeating it), so a
-- backend's first use of a tenant table parses half as much; setup_postgrest
-- makes list_conflicts with p_after.
CREATE OR REPLACE FUNCTION smartsync._secure_tenant(s name, only_table name DEFAULT NULL)
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
        LANGUAGE sql VOLATILE SECURITY DEFINER
        SET search_path = pg_catalog, pg_temp
        AS 'SELECT smartsync._api_sync_push($1)';
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
        LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = pg_catalog, pg_temp
        AS 'SELECT smartsync._api_sync_pull($1, $2, $3, $4, $5, $6, $7, $8)';
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
        LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = pg_catalog, pg_temp
        AS 'SELECT smartsync._api_sync_changed($1, $2, $3, $4, $5)';
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
            LANGUAGE sql VOLATILE SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp
            AS 'SELECT smartsync._api_resolve_conflict($1, $2, $3)';
            COMMENT ON FUNCTION %1$I.resolve_conflict(bigint, text, jsonb) IS
$c$Resolve a stored conflict of the JWT's tenant

Body: {"conflict_id", "strategy": "server-wins"|"client-wins"|"merge"|"last-write-wins"|"manual", "resolved_data"} (resolved_data with manual). Errors: 404 for a conflict the tenant does not have, 409 when it is already resolved or the row changed since.$c$;

            -- (an api schema set up by 0.2.0 has list_conflicts without p_after)
            DROP FUNCTION IF EXISTS %1$I.list_conflicts(text, text, interval, integer);
            CREATE OR REPLACE FUNCTION %1$I.list_conflicts(p_entity_type text DEFAULT NULL, p_severity text DEFAULT NULL,
                                                           p_min_age interval DEFAULT NULL, p_limit integer DEFAULT 100,
                                                           p_after bigint DEFAULT NULL)
            RETURNS jsonb
            LANGUAGE sql STABLE SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp
            AS 'SELECT smartsync._api_list_conflicts($1, $2, $3, $4, $5)';
            COMMENT ON FUNCTION %1$I.list_conflicts(text, text, interval, integer, bigint) IS
$c$List the open conflicts of the JWT's tenant (and practice)

Filters: p_entity_type, p_severity (low, medium, high, critical), p_min_age (an interval such as 1 hour), p_limit. Pages: send the response's "next" (the last conflictId) as p_after for the next page.$c$;

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

-- i13-capture: provisioning makes the new log, counts and triggers
CREATE OR REPLACE FUNCTION smartsync._create_sync_tables(s name)
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
CREATE OR REPLACE FUNCTION smartsync._track_table(s name, etype text)
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

-- i13-capture: existing tenant schemas: every log row keyed and indexed, stamp_row
-- given the practice column, conflict counts made and filled, policies renewed
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
        EXECUTE format('DROP INDEX IF EXISTS %I.sync_changes_entity_seq_idx', t.schema_name);
        IF to_regclass(format('%I.sync_changes_entity_key_idx', t.schema_name)) IS NULL THEN
            EXECUTE format('CREATE INDEX sync_changes_entity_key_idx ON %I.sync_changes (entity_key, seq)',
                           t.schema_name);
        END IF;
        -- the conflict counts, as provisioning makes them (a table made by this script
        -- would belong to the extension: it is handed back to the tenant schema)
        IF to_regclass(format('%I.sync_conflict_counts', t.schema_name)) IS NULL THEN
            EXECUTE format($f$
                CREATE TABLE %1$I.sync_conflict_counts (
                    every_practice boolean NOT NULL,
                    scope          text NOT NULL,
                    entity_type    text NOT NULL,
                    severity       text NOT NULL,
                    status         text NOT NULL,
                    shard          integer NOT NULL,
                    n              bigint NOT NULL,
                    PRIMARY KEY (every_practice, scope, entity_type, severity, status, shard)
                );
                ALTER EXTENSION smartsync DROP TABLE %1$I.sync_conflict_counts;
                COMMENT ON TABLE %1$I.sync_conflict_counts IS 'smartsync conflict counts per practice scope, entity type, severity and status (sums over shards), kept by triggers on sync_conflicts';
                INSERT INTO %1$I.sync_conflict_counts (every_practice, scope, entity_type, severity, status, shard, n)
                SELECT c.practice_id IS NULL AND e.practice_column IS NULL,
                       CASE WHEN c.practice_id IS NOT NULL THEN c.practice_id
                            WHEN e.practice_column IS NULL THEN ''
                            ELSE coalesce(coalesce(c.server_data, c.local_data) ->> e.practice_column::text, '') END,
                       c.entity_type, c.severity, c.status, 0, count(*)
                  FROM %1$I.sync_conflicts AS c LEFT JOIN smartsync.entity_types AS e ON e.entity_type = c.entity_type
                 GROUP BY 1, 2, 3, 4, 5;
                CREATE OR REPLACE TRIGGER smartsync_count_ins AFTER INSERT ON %1$I.sync_conflicts
                    REFERENCING NEW TABLE AS new_rows
                    FOR EACH STATEMENT EXECUTE FUNCTION smartsync._count_conflicts();
                CREATE OR REPLACE TRIGGER smartsync_count_upd AFTER UPDATE ON %1$I.sync_conflicts
                    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
                    FOR EACH STATEMENT EXECUTE FUNCTION smartsync._count_conflicts();
                CREATE OR REPLACE TRIGGER smartsync_count_del AFTER DELETE ON %1$I.sync_conflicts
                    REFERENCING OLD TABLE AS old_rows
                    FOR EACH STATEMENT EXECUTE FUNCTION smartsync._count_conflicts();
            $f$, t.schema_name);
        END IF;
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
        PERFORM smartsync._secure_tenant(t.schema_name);
    END LOOP;
END
$upgrade$;
-- <<< i13-capture

-- s4-poll: smartsync.poll_changes may wait for a change (settings smartsync.poll_wait and
-- smartsync.poll_check_interval, src/poll.c), reading newer snapshots than its statement's:
-- VOLATILE, and its comment says so.
ALTER FUNCTION smartsync.poll_changes(text, text[]) VOLATILE;
COMMENT ON FUNCTION smartsync.poll_changes(text, text[]) IS
'the change signal a server polls: {"watermark", "changes": [{"tenant", "practices": [...] or null for every practice}]}, the tenants (all, or those of p_tenants) with changes committed since p_watermark (the previous result''s watermark), each reported once; without a watermark only a watermark; with the setting smartsync.poll_wait above 0 and nothing new, it waits that long for a change, looking every smartsync.poll_check_interval (so VOLATILE: it reads newer snapshots than its statement''s); reads the change logs directly (no privileges, no row-level security), so not executable by PUBLIC: setup_postgrest() grants it to authenticator';
-- <<< s4-poll

-- s4-api: the api functions in C (src/api.c): the guard, the spec's parameter
-- names and the translation of smartsync errors into PostgREST's PGRST error
-- without PL/pgSQL or a subtransaction.  smartsync._api_* (what an api schema
-- made by 0.2.0 calls) become the C functions, setup_postgrest() makes the api
-- functions themselves C (SECURITY DEFINER, owned by smartsync_api), and
-- http_status() reads the same table in C.  _api_guard, _api_param and
-- _api_raise are gone.
DROP FUNCTION smartsync._api_guard();
DROP FUNCTION smartsync._api_param(text, text, text, text);
DROP FUNCTION smartsync._api_raise(text, text, text, text);

CREATE OR REPLACE FUNCTION smartsync.http_status(sqlstate text)
RETURNS integer
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'smartsync_http_status';

CREATE OR REPLACE FUNCTION smartsync._api_sync_push(payload jsonb)
RETURNS jsonb
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'smartsync_api_sync_push';

CREATE OR REPLACE FUNCTION smartsync._api_sync_pull(
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

CREATE OR REPLACE FUNCTION smartsync._api_sync_changed(
    p_cursor       text,
    p_entity_types text,
    p_practice_id  text,
    entity_types   text,
    practice_id    text)
RETURNS boolean
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'smartsync_api_sync_changed';

CREATE OR REPLACE FUNCTION smartsync._api_resolve_conflict(conflict_id bigint, strategy text, resolved_data jsonb)
RETURNS jsonb
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'smartsync_api_resolve_conflict';

CREATE OR REPLACE FUNCTION smartsync._api_list_conflicts(p_entity_type text, p_severity text, p_min_age interval, p_limit integer,
                                              p_after bigint DEFAULT NULL)
RETURNS jsonb
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'smartsync_api_list_conflicts';

CREATE OR REPLACE FUNCTION smartsync._api_conflict_stats()
RETURNS jsonb
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'smartsync_api_conflict_stats';

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

-- s5-capture: entity_key keeps the order of integer ids (the function's C code
-- changed; the i13-capture section above computes every log row's key with it)
COMMENT ON FUNCTION smartsync.entity_key(text, text) IS
'the 64-bit key of one entity in the change log (sync_changes.entity_key, indexed with seq), the same on every server: for an id written as a decimal integer below 2^40, 23 bits of a hash of the entity type above the id (non-negative, in id order); for any other id, a hash of type and id with the top bit set (negative); lookups compare type and id as well';
