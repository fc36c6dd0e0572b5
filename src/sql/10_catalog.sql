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
    UNIQUE (table_name),
    -- legacy clients: updates and deletes may come without a base version
    -- (conflicts are then detected by the client's timestamp alone)
    timestamp_detection boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE smartsync.entity_types IS
'entity types: the table inside every tenant schema, its key, dependencies, reference fields, field classes, practice column and default conflict strategy; sort_order is the dependency level (parents first); timestamp_detection lets legacy clients update and delete without a base version';

SELECT pg_catalog.pg_extension_config_dump('smartsync.tenants', '');
SELECT pg_catalog.pg_extension_config_dump('smartsync.entity_types', '');

-- Internal: the column of rel that a field name means: the column of exactly
-- that name, else the column whose camelCase spelling it is exactly (petId ->
-- pet_id; "PetId", "petID" and "NAME" name no column).  NULL if none.  Push
-- matches data keys the same way (src/pushapply.c push_find_column).
CREATE FUNCTION smartsync._field_column(rel regclass, field text)
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

-- Backends keep copies of the registry (src/registry.c): a change of either table
-- tells every backend to drop its copy when the change commits (a relcache
-- invalidation of the table: smartsync.tenants sends it from its trigger
-- notify_registry_changed, src/sql/75_signal.sql; smartsync.entity_types from this one).
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
