-- bench_pull: one tenant, one entity type (a ~300-byte row), cursors kept in a table.
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
SELECT smartsync.provision_tenant('bench', 'tenant_bench');
CREATE TABLE bench_cursor (name text PRIMARY KEY, cursor text NOT NULL);

-- Stores the cursor a pull hands back (a listing page of everything: a cursor "now").
CREATE PROCEDURE bench_mark(p_name text) LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('smartsync.tenant_id', 'bench', true);
    INSERT INTO bench_cursor
    VALUES (p_name, smartsync.sync_pull(p_limit => 10000)->>'cursor')
    ON CONFLICT (name) DO UPDATE SET cursor = excluded.cursor;
END $$;

-- Older history: change-log rows written straight into the log (as capture
-- would have, but faster), in transactions of per_tx rows.
CREATE PROCEDURE bench_fill(total int, per_tx int) LANGUAGE plpgsql AS $$
DECLARE
    done int := 0;
BEGIN
    WHILE done < total LOOP
        INSERT INTO tenant_bench.sync_changes (entity_type, entity_id, operation, data, version, practice_id, client_id)
        SELECT 'bench_items', (1000000 + g)::text, 'update',
               jsonb_build_object('id', 1000000 + g, 'practice_id', 1, 'name', 'filler ' || g,
                                  'species', 'cat', 'qty', g % 100, 'status', 'active',
                                  'notes', 'seen for a yearly checkup, all fine, next visit in a year',
                                  'version', 2, 'updated_at', now()),
               2, '1', 'other-device'
          FROM generate_series(done + 1, least(done + per_tx, total)) g;
        done := done + per_tx;
        COMMIT;
    END LOOP;
END $$;
