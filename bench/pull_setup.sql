-- bench_pull: one entity type (a ~300-byte row), four tenants with logs of their
-- own (small and big logs, for 1,000 updates and for 10,000-create pages),
-- cursors kept in a table.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS smartsync;
CREATE SCHEMA bench_tpl;
CREATE TABLE bench_tpl.bench_items (
    id          bigint PRIMARY KEY,
    practice_id integer NOT NULL,
    name        text NOT NULL,
    species     text,
    qty         integer NOT NULL DEFAULT 0,
    status      text NOT NULL DEFAULT 'active',
    notes       text
);
SELECT smartsync.register_entity_type('bench_items', 'bench_tpl.bench_items', practice_column => 'practice_id');
SELECT smartsync.provision_tenant(t, 'tenant_' || t) FROM unnest(ARRAY['small', 'big', 'page_small', 'page_big']) t;
CREATE TABLE bench_cursor (name text PRIMARY KEY, cursor text NOT NULL);

-- Stores the cursor a pull of tenant p_tenant hands back (a listing page of
-- everything: a cursor "now").
CREATE PROCEDURE bench_mark(p_tenant text, p_name text) LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('smartsync.tenant_id', p_tenant, true);
    INSERT INTO bench_cursor
    VALUES (p_name, smartsync.sync_pull(p_limit => 10000)->>'cursor')
    ON CONFLICT (name) DO UPDATE SET cursor = excluded.cursor;
END $$;

-- Rows of the entity table (each insert is captured).
CREATE PROCEDURE bench_rows(p_tenant text, first bigint, last bigint) LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format($i$
        INSERT INTO %I.bench_items (id, practice_id, name, species, qty, notes)
        SELECT g, 1, 'pet ' || g, 'dog', g %% 50, 'seen for a yearly checkup, all fine, next visit in a year'
          FROM generate_series($1, $2) g $i$, 'tenant_' || p_tenant) USING first, last;
END $$;

-- Older history: change-log rows written straight into a tenant's log (as
-- capture would have, but faster), in transactions of per_tx rows.
CREATE PROCEDURE bench_fill(p_tenant text, total int, per_tx int) LANGUAGE plpgsql AS $$
DECLARE
    done int := 0;
BEGIN
    WHILE done < total LOOP
        EXECUTE format($i$
            INSERT INTO %I.sync_changes (entity_type, entity_id, entity_key, operation, data, version, practice_id, client_id)
            SELECT 'bench_items', (1000000 + g)::text, smartsync.entity_key('bench_items', (1000000 + g)::text), 'update',
                   jsonb_build_object('qty', g %% 100, 'version', 2, 'updated_at', now()),
                   2, '1', 'other-device'
              FROM generate_series($1, $2) g $i$, 'tenant_' || p_tenant)
        USING done + 1, least(done + per_tx, total);
        done := done + per_tx;
        COMMIT;
    END LOOP;
END $$;
