-- smartsync demo: a veterinary practice, told step by step.
--
-- The spec's manual test and conflict test procedures: two devices go offline,
-- one creates a client, a pet and an appointment with temporary ids, the
-- appointment (and a pet) are edited on the server and on the other device,
-- the devices come back online, push, pull, the conflicts are detected,
-- merged, and every device ends with the server's data.
--
-- The devices are simulated in SQL (schema "demo": each device's local store,
-- outbox and pull cursor).  Their requests are made as PostgREST makes them: a
-- transaction, the JWT claims set with set_config('request.jwt.claims', ..., true),
-- then the call to smartsync.sync_push / smartsync.sync_pull.
\pset footer off
\pset null ''
SET client_min_messages = warning;
SET TimeZone = 'UTC';
\echo
\echo
\echo '== 1. Install smartsync and register the practice''s entity types (examples/vet_schema.sql)'
CREATE EXTENSION smartsync;
\o /dev/null
\i examples/vet_schema.sql
\o
SELECT entity_type, depends_on, reference_fields, practice_column AS practice, default_strategy AS strategy
  FROM smartsync.entity_types ORDER BY sort_order, entity_type;

\echo
\echo '== 2. Provision the tenant "happy-paws": its own schema with the entity tables and sync tables'
SELECT smartsync.provision_tenant('happy-paws') AS tenant_schema;
SELECT c.relname AS "tables in tenant_happy_paws"
  FROM pg_class c WHERE c.relnamespace = 'tenant_happy_paws'::regnamespace AND c.relkind = 'r' ORDER BY 1;

\echo
\echo '== 3. The front desk writes with plain SQL; every write is captured by the C trigger'
INSERT INTO tenant_happy_paws.clients (practice_id, name, email) VALUES (1, 'Maria Lopez', 'maria@example.com');
INSERT INTO tenant_happy_paws.practitioners (practice_id, name, specialty) VALUES (1, 'Dr. Chen', 'surgery');
INSERT INTO tenant_happy_paws.pets (practice_id, client_id, name, species) VALUES (1, 1, 'Biscuit', 'dog');
INSERT INTO tenant_happy_paws.appointments (practice_id, pet_id, practitioner_id, title, date)
     VALUES (1, 1, 1, 'Annual check-up', '2026-12-01 09:00+00');
UPDATE tenant_happy_paws.appointments SET duration = 45, notes = 'bring vaccination card' WHERE id = 1;
DELETE FROM tenant_happy_paws.practitioners WHERE id = 1 AND false;  -- (no row: nothing logged)
SELECT id, title, duration, version FROM tenant_happy_paws.appointments;

\echo
\echo '== 4. The tenant''s change log: one row per change, with its transaction id and version'
\echo '      (a create logs the row, an update the columns it set)'
SELECT seq, xid, entity_type, entity_id AS id, operation, version, practice_id AS practice,
       left((data - 'updated_at' - 'version')::text, 60) AS data
  FROM tenant_happy_paws.sync_changes ORDER BY seq;

-- ---------------------------------------------------------------------------
-- The devices: local stores, outboxes and cursors (what IndexedDB holds in the
-- spec's client), and the client-side logic of applying responses.
\o /dev/null
CREATE SCHEMA demo;
CREATE TABLE demo.devices (
    device  text PRIMARY KEY,
    who     text NOT NULL,
    claims  jsonb NOT NULL,
    cursor  text,
    next_op integer NOT NULL DEFAULT 1
);
CREATE TABLE demo.local_rows (
    device      text NOT NULL,
    entity_type text NOT NULL,
    id          text NOT NULL,
    data        jsonb NOT NULL,
    version     bigint,
    status      text NOT NULL,           -- synced, pending, conflict
    PRIMARY KEY (device, entity_type, id)
);
CREATE TABLE demo.outbox (
    device text NOT NULL,
    seq    integer NOT NULL,
    op     jsonb NOT NULL,
    PRIMARY KEY (device, seq)
);

-- A request as PostgREST makes it: the device's JWT claims, local to the transaction.
CREATE FUNCTION demo.request(p_device text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('request.jwt.claims', (SELECT claims::text FROM demo.devices WHERE device = p_device), true);
    RETURN p_device;
END $$;

-- A short label of a row, for the tables below.
CREATE FUNCTION demo.label(p_type text, d jsonb) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_type
        WHEN 'clients' THEN d->>'name'
        WHEN 'practitioners' THEN d->>'name'
        WHEN 'pets' THEN concat_ws(' ', d->>'name', '(' || concat_ws(', ', d->>'species', d->>'breed',
                                   'allergies: ' || (d->>'allergies')) || ')')
        WHEN 'appointments' THEN concat_ws(' ', d->>'title',
                                   to_char((d->>'date')::timestamptz, 'Mon DD HH24:MI'),
                                   (d->>'duration') || 'min', nullif('"' || (d->>'notes') || '"', '""'))
        ELSE d::text END
$$;

-- An offline action: changes the local store and queues the operation.
CREATE FUNCTION demo.queue(p_device text, p_operation text, p_type text, p_id text,
                           p_data jsonb DEFAULT '{}', p_priority text DEFAULT NULL)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_dev demo.devices;
    v_row demo.local_rows;
    v_op  jsonb;
BEGIN
    UPDATE demo.devices SET next_op = next_op + 1 WHERE device = p_device RETURNING * INTO v_dev;
    SELECT * INTO v_row FROM demo.local_rows WHERE device = p_device AND entity_type = p_type AND id = p_id;
    v_op := jsonb_build_object('id', v_dev.next_op - 1, 'operation', p_operation,
                               'entityType', p_type, 'entityId', p_id,
                               'timestamp', (extract(epoch FROM clock_timestamp()) * 1000)::bigint);
    IF p_operation = 'create' THEN
        INSERT INTO demo.local_rows VALUES (p_device, p_type, p_id, p_data || jsonb_build_object('id', p_id), NULL, 'pending');
        v_op := v_op || jsonb_build_object('data', p_data);
    ELSIF p_operation = 'update' THEN
        UPDATE demo.local_rows SET data = data || p_data, status = 'pending'
         WHERE device = p_device AND entity_type = p_type AND id = p_id;
        v_op := v_op || jsonb_build_object('data', p_data, 'version', v_row.version);
    ELSE
        DELETE FROM demo.local_rows WHERE device = p_device AND entity_type = p_type AND id = p_id;
        v_op := v_op || jsonb_build_object('version', v_row.version);
    END IF;
    IF p_priority IS NOT NULL THEN
        v_op := v_op || jsonb_build_object('priority', p_priority);
    END IF;
    INSERT INTO demo.outbox VALUES (p_device, v_dev.next_op - 1, v_op);
    RETURN v_op;
END $$;

-- The push body: the outbox, highest priority first (then in queue order).
CREATE FUNCTION demo.outbox_payload(p_device text) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('operations', coalesce(jsonb_agg(op ORDER BY coalesce(op->>'priority' = 'high', false) DESC, seq), '[]'))
      FROM demo.outbox WHERE device = p_device
$$;

-- Applies a push response to the device: temporary ids become real ids (in the
-- row and wherever another local row or queued operation refers to it), versions
-- are taken, merged rows replace the local ones; acknowledged operations leave
-- the outbox.  Returns what it did, one row per operation.
CREATE FUNCTION demo.apply_push(p_device text, p_response jsonb)
RETURNS TABLE ("op" text, "entityType" text, "entityId" text, outcome text, "realId" text, version text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    r jsonb;
    v_temp text;
    v_real jsonb;
BEGIN
    FOR r IN SELECT x FROM jsonb_array_elements(p_response->'results') x LOOP
        op := r->>'operationId';
        "entityType" := r->>'entityType';
        "entityId" := coalesce(r->>'tempId', r->>'entityId');
        "realId" := r->>'realId';
        version := r->>'version';
        v_temp := r->>'tempId';
        IF v_temp IS NOT NULL AND (r->>'success')::boolean THEN
            v_real := r->'realId';
            UPDATE demo.local_rows SET id = v_real #>> '{}', data = data || jsonb_build_object('id', v_real)
             WHERE device = p_device AND entity_type = r->>'entityType' AND id = v_temp;
            UPDATE demo.local_rows l SET data = (SELECT jsonb_object_agg(k, CASE WHEN v = to_jsonb(v_temp) THEN v_real ELSE v END)
                                                   FROM jsonb_each(l.data) e(k, v))
             WHERE device = p_device;
            UPDATE demo.outbox o SET op = jsonb_set(o.op, '{data}', (SELECT jsonb_object_agg(k, CASE WHEN v = to_jsonb(v_temp) THEN v_real ELSE v END)
                                                                       FROM jsonb_each(o.op->'data') e(k, v)))
             WHERE device = p_device AND o.op ? 'data' AND o.op->'data' <> '{}';
            UPDATE demo.outbox o SET op = jsonb_set(o.op, '{entityId}', v_real)
             WHERE device = p_device AND o.op->>'entityId' = v_temp;
        END IF;
        IF r ? 'data' AND jsonb_typeof(r->'data') = 'object' THEN
            UPDATE demo.local_rows SET data = r->'data', version = (r->>'version')::bigint, status = 'synced'
             WHERE device = p_device AND entity_type = r->>'entityType' AND id = r->>'entityId';
            outcome := format('merged: %s', r#>>'{resolution,strategy}');
        ELSIF (r->>'success')::boolean THEN
            UPDATE demo.local_rows SET version = (r->>'version')::bigint, status = 'synced',
                   data = data || jsonb_build_object('version', r->'version')
             WHERE device = p_device AND entity_type = r->>'entityType'
               AND id = coalesce(r->>'realId', r->>'entityId');
            outcome := 'applied';
        ELSIF (r->>'conflict')::boolean THEN
            UPDATE demo.local_rows SET status = 'conflict'
             WHERE device = p_device AND entity_type = r->>'entityType' AND id = r->>'entityId';
            outcome := format('conflict #%s stored', r->>'conflictId');
        ELSE
            outcome := format('failed: %s', r->>'error');
        END IF;
        IF (r->>'success')::boolean OR NOT coalesce((r->>'retryable')::boolean, false) THEN
            DELETE FROM demo.outbox WHERE device = p_device AND seq = (r->>'operationId')::integer;
        END IF;
        RETURN NEXT;
    END LOOP;
END $$;

-- Applies a pull response: creates and updates replace the local row, deletes
-- remove it; the cursor is kept for the next pull.
CREATE FUNCTION demo.apply_pull(p_device text, p_response jsonb)
RETURNS TABLE ("entityType" text, operation text, id text, version bigint, "now on the device" text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    c jsonb;
BEGIN
    UPDATE demo.devices SET cursor = p_response->>'cursor' WHERE device = p_device;
    FOR c IN SELECT x FROM jsonb_array_elements(p_response->'changes') x LOOP
        "entityType" := c->>'entityType';
        operation := c->>'operation';
        id := c->>'id';
        version := (c->>'version')::bigint;
        IF operation = 'delete' THEN
            DELETE FROM demo.local_rows l WHERE l.device = p_device AND l.entity_type = "entityType" AND l.id = c->>'id';
            "now on the device" := '(deleted)';
        ELSE
            INSERT INTO demo.local_rows VALUES (p_device, "entityType", c->>'id', c->'data', version, 'synced')
            ON CONFLICT (device, entity_type, id) DO UPDATE SET data = excluded.data, version = excluded.version, status = 'synced';
            "now on the device" := demo.label("entityType", c->'data');
        END IF;
        RETURN NEXT;
    END LOOP;
END $$;

-- A device's local store.
CREATE FUNCTION demo.store(p_device text)
RETURNS TABLE ("entityType" text, id text, version bigint, status text, "local row" text, "refers to" text)
LANGUAGE sql AS $$
    SELECT l.entity_type, l.id, l.version, l.status, demo.label(l.entity_type, l.data),
           (SELECT string_agg(format('%s %s', f.key, l.data->>f.key), ', ' ORDER BY f.key)
              FROM jsonb_each_text(t.reference_fields) f WHERE l.data->>f.key IS NOT NULL)
      FROM demo.local_rows l JOIN smartsync.entity_types t USING (entity_type)
     WHERE l.device = p_device ORDER BY t.sort_order, l.entity_type, l.id COLLATE "C"
$$;

-- The server's rows as a device of practice 1 sees them, and a device's row in
-- the same typed form (so '2026-12-01T09:00:00Z' equals '2026-12-01T09:00:00+00:00').
CREATE FUNCTION demo.server_rows()
RETURNS TABLE (entity_type text, id text, data jsonb, sort_order integer)
LANGUAGE plpgsql AS $$
DECLARE t record;
BEGIN
    FOR t IN SELECT * FROM smartsync.entity_types LOOP
        RETURN QUERY EXECUTE format('SELECT %L::text, r.%I::text, to_jsonb(r) - ''updated_at'', %s
                                       FROM tenant_happy_paws.%I r WHERE r.%I = 1',
                                    t.entity_type, t.pk_column, t.sort_order, t.table_name, t.practice_column);
    END LOOP;
END $$;
CREATE FUNCTION demo.typed(p_type text, d jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE v jsonb;
BEGIN
    EXECUTE format('SELECT to_jsonb(jsonb_populate_record(NULL::tenant_happy_paws.%I, $1)) - ''updated_at''',
                   (SELECT table_name FROM smartsync.entity_types WHERE entity_type = p_type))
       INTO v USING d;
    RETURN v;
END $$;
\o

\echo
\echo '== 5. Two devices sign in: Dr. Chen''s tablet (A) and the front desk laptop (B).'
\echo '      Each request carries its JWT claims, as PostgREST sets them for the call:'
INSERT INTO demo.devices (device, who, claims) VALUES
  ('tablet-A', 'Dr. Chen', '{"role": "web_user", "tenant_id": "happy-paws", "practice_id": 1, "user_id": "2", "device_id": "tablet-A", "permissions": ["*"]}'),
  ('laptop-B', 'front desk', '{"role": "web_user", "tenant_id": "happy-paws", "practice_id": 1, "user_id": "3", "device_id": "laptop-B", "permissions": ["*"]}');
SELECT device, who, claims::text AS "request.jwt.claims" FROM demo.devices ORDER BY device DESC;
\echo '   Their first pull (GET /rpc/sync_pull, no cursor) lists the live rows, parents first:'
BEGIN READ ONLY;
SELECT demo.request('tablet-A') AS device \gset
SELECT smartsync.sync_pull() AS response \gset
COMMIT;
SELECT * FROM demo.apply_pull('tablet-A', :'response') \g /dev/null
BEGIN READ ONLY;
SELECT demo.request('laptop-B') AS device \gset
SELECT smartsync.sync_pull() AS response \gset
COMMIT;
SELECT * FROM demo.apply_pull('laptop-B', :'response') \g /dev/null
SELECT s."entityType", s.id, s.version, s."local row",
       (SELECT count(*) FROM demo.local_rows l WHERE l.device = 'tablet-A') AS "rows on A",
       (SELECT count(*) FROM demo.local_rows l WHERE l.device = 'laptop-B') AS "rows on B"
  FROM demo.store('tablet-A') s;

\echo
\echo '== 6. Both devices go offline.  Dr. Chen''s tablet (A) registers a new client, her cat and'
\echo '      an appointment, with temporary ids; the pet refers to temp_c1, the appointment to temp_p1.'
\echo '      The appointment is urgent (priority high), so the outbox sends it first.'
SELECT op->'id' AS "op id", op->>'operation' AS operation, op->>'entityType' AS "entityType",
       op->>'entityId' AS "entityId", jsonb_strip_nulls(op->'data') - 'practice_id' AS data, op->>'priority' AS priority
  FROM (VALUES
    (demo.queue('tablet-A', 'create', 'clients', 'temp_c1',
        '{"practice_id": 1, "name": "Tom Baker", "email": "tom@example.com", "phone": null, "notes": null}')),
    (demo.queue('tablet-A', 'create', 'pets', 'temp_p1',
        '{"practice_id": 1, "client_id": "temp_c1", "name": "Luna", "species": "cat", "breed": null, "birth_date": null, "allergies": null}')),
    (demo.queue('tablet-A', 'create', 'appointments', 'temp_a1',
        '{"practice_id": 1, "pet_id": "temp_p1", "practitioner_id": 1, "title": "Vaccination", "date": "2026-12-01T11:00:00+00:00", "duration": 20, "status": "scheduled", "notes": null}',
        'high'))) q(op);
\echo '   The spec''s "Verify Queue": pending operations per device'
SELECT d.device, count(o.seq) AS pending FROM demo.devices d LEFT JOIN demo.outbox o USING (device)
 GROUP BY d.device ORDER BY d.device DESC;

\echo
\echo '== 7. The front desk laptop (B), offline too, adds a note to Biscuit''s check-up and records'
\echo '      an allergy; each change is queued with the version the laptop last saw.'
SELECT op->'id' AS "op id", op->>'operation' AS operation, op->>'entityType' AS "entityType",
       op->'entityId' AS "entityId", op->'data' AS data, op->'version' AS "base version"
  FROM (VALUES
    (demo.queue('laptop-B', 'update', 'appointments', '1', '{"notes": "bring vaccination card and x-rays"}')),
    (demo.queue('laptop-B', 'update', 'pets', '1', '{"allergies": "penicillin"}'))) q(op);
\echo '   Meanwhile, on the server, the practice manager moves the check-up to 10:30 and'
\echo '   fills in Biscuit''s breed (plain SQL again: versions go up, the change log records it).'
UPDATE tenant_happy_paws.appointments SET date = '2026-12-01 10:30+00' WHERE id = 1;
UPDATE tenant_happy_paws.pets SET breed = 'beagle' WHERE id = 1;
SELECT 'appointments' AS "entityType", id, version, demo.label('appointments', to_jsonb(a)) AS "on the server"
  FROM tenant_happy_paws.appointments a
UNION ALL
SELECT 'pets', id, version, demo.label('pets', to_jsonb(p)) FROM tenant_happy_paws.pets p;

\echo
\echo '== 8. The tablet (A) is back online and pushes its outbox (POST /rpc/sync_push).'
\echo '      Sent appointment first; applied parents first; each temp id mapped to a real id:'
BEGIN;
SELECT demo.request('tablet-A') AS device \gset
SELECT demo.outbox_payload('tablet-A') AS payload \gset
SELECT smartsync.sync_push(:'payload') AS response \gset
COMMIT;
SELECT r."op", r."entityType", r."entityId" AS "tempId", r."realId", r.version, r.outcome,
       s.n AS "sent #",
       (SELECT count(*) FROM tenant_happy_paws.sync_changes c
         WHERE c.client_id = 'tablet-A' AND c.seq <= (SELECT max(c2.seq) FROM tenant_happy_paws.sync_changes c2
                                                       WHERE c2.client_id = 'tablet-A' AND c2.entity_type = r."entityType"
                                                         AND c2.entity_id = r."realId")) AS "applied #"
  FROM demo.apply_push('tablet-A', :'response') r
  JOIN (SELECT o->>'id' AS id, n FROM jsonb_array_elements(:'payload'::jsonb->'operations') WITH ORDINALITY a(o, n)) s
    ON s.id = r."op"
 ORDER BY "applied #";
SELECT (:'response'::jsonb)->'success' AS success, (:'response'::jsonb)->'processed' AS processed,
       (:'response'::jsonb)->'failed' AS failed, (:'response'::jsonb)->'conflicts' AS conflicts;
\echo '   The id map on the server, and the tablet''s store now (real ids, references rewritten):'
SELECT client_id, temp_id, entity_type, real_id, operation_id FROM tenant_happy_paws.sync_id_map ORDER BY real_id, temp_id;
SELECT * FROM demo.store('tablet-A');

\echo
\echo '== 9. The laptop (B) is back online and pushes.  Both of its changes meet a newer server row:'
BEGIN;
SELECT demo.request('laptop-B') AS device \gset
SELECT demo.outbox_payload('laptop-B') AS payload \gset
SELECT smartsync.sync_push(:'payload') AS response \gset
COMMIT;
SELECT r->>'entityType' AS "entityType", r->'entityId' AS id,
       coalesce(r#>>'{resolution,conflictType}', r#>>'{conflictData,conflictType}') AS "conflictType",
       coalesce(r#>'{resolution,affectedFields}', r#>'{conflictData,affectedFields}') AS "affectedFields",
       r->>'severity' AS severity,
       CASE WHEN r ? 'resolution' THEN format('%s at once (the appointments strategy is %s)', r#>>'{resolution,winner}', r#>>'{resolution,strategy}')
            ELSE format('stored as conflict %s (the pets strategy is manual)', r->>'conflictId') END AS outcome
  FROM jsonb_array_elements(:'response'::jsonb->'results') r;
SELECT * FROM demo.apply_push('laptop-B', :'response') \g /dev/null
\echo '   The appointment was merged three-way against the version B had seen: the server''s'
\echo '   new time and B''s note are both kept (and B took the merged row from the response):'
SELECT id, to_char(date, 'Mon DD HH24:MI') AS date, duration, notes, version FROM tenant_happy_paws.appointments WHERE id = 1;

\echo
\echo '== 10. The conflict store (the spec''s "Verify Conflict Detection"): the open conflict with'
\echo '       the laptop''s data, the server''s and the base version side by side'
SELECT conflict_id, entity_type, entity_id AS id, conflict_type, severity, affected_fields, status,
       local_data->>'allergies' AS "local allergies",
       format('%s / %s', server_data->>'breed', coalesce(server_data->>'allergies', '-')) AS "server breed/allergies",
       format('%s / %s', coalesce(base_data->>'breed', '-'), coalesce(base_data->>'allergies', '-')) AS "base breed/allergies",
       base_version, server_version
  FROM tenant_happy_paws.sync_conflicts ORDER BY conflict_id;

\echo
\echo '== 11. Resolve it with merge (the spec''s resolveConflict(conflict.id, {strategy: "merge"}))'
\echo '       The front desk laptop (B) resolves it (POST /rpc/resolve_conflict); the merge is three-way'
\echo '       against the base version: the server''s breed and B''s allergy are both kept.'
BEGIN;
SELECT demo.request('laptop-B') AS device \gset
SELECT smartsync.resolve_conflict(1, 'merge') AS resolution \gset
COMMIT;
SELECT r->'conflictId' AS "conflictId", r->>'strategy' AS strategy, r->>'winner' AS winner, r->>'status' AS status,
       r->'written' AS written, r->'version' AS version, r->>'resolvedBy' AS "resolvedBy",
       demo.label(r->>'entityType', r->'data') AS "row now"
  FROM (SELECT :'resolution'::jsonb AS r) x;
\echo '   The laptop takes the resolved row from the answer (its own write is not pulled back):'
UPDATE demo.local_rows l SET data = r->'data', version = (r->>'version')::bigint, status = 'synced'
  FROM (SELECT :'resolution'::jsonb AS r) x
 WHERE l.device = 'laptop-B' AND l.entity_type = r->>'entityType' AND l.id = r->>'entityId';
SELECT * FROM demo.store('laptop-B') WHERE "entityType" = 'pets';

\echo
\echo '== 12. Both devices pull with their cursors: each gets what the others changed'
\echo '       (and not its own changes back)'
BEGIN READ ONLY;
SELECT demo.request('tablet-A') AS device \gset
SELECT smartsync.sync_pull(p_cursor => cursor) AS response FROM demo.devices WHERE device = 'tablet-A' \gset
COMMIT;
SELECT 'tablet-A' AS device, * FROM demo.apply_pull('tablet-A', :'response');
BEGIN READ ONLY;
SELECT demo.request('laptop-B') AS device \gset
SELECT smartsync.sync_pull(p_cursor => cursor) AS response FROM demo.devices WHERE device = 'laptop-B' \gset
COMMIT;
SELECT 'laptop-B' AS device, * FROM demo.apply_pull('laptop-B', :'response');

\echo
\echo '== 13. The end: tablet A, laptop B and the server hold the same rows'
SELECT s.entity_type AS "entityType", s.id, demo.label(s.entity_type, s.data) AS "server row", s.data->'version' AS version,
       CASE WHEN demo.typed(s.entity_type, a.data) = s.data AND a.version = (s.data->>'version')::bigint
            THEN 'same' ELSE 'DIFFERENT' END AS "tablet A",
       CASE WHEN demo.typed(s.entity_type, b.data) = s.data AND b.version = (s.data->>'version')::bigint
            THEN 'same' ELSE 'DIFFERENT' END AS "laptop B"
  FROM demo.server_rows() s
  LEFT JOIN demo.local_rows a ON a.device = 'tablet-A' AND a.entity_type = s.entity_type AND a.id = s.id
  LEFT JOIN demo.local_rows b ON b.device = 'laptop-B' AND b.entity_type = s.entity_type AND b.id = s.id
 ORDER BY s.sort_order, s.entity_type, s.id COLLATE "C";
SELECT (SELECT count(*) FROM demo.local_rows WHERE device = 'tablet-A') AS "rows on A",
       (SELECT count(*) FROM demo.local_rows WHERE device = 'laptop-B') AS "rows on B",
       (SELECT count(*) FROM demo.server_rows()) AS "rows on the server",
       (SELECT count(*) FROM demo.outbox) AS "queued operations",
       (SELECT count(*) FROM tenant_happy_paws.sync_conflicts WHERE status = 'open') AS "open conflicts";
\echo '   The ledger: every pushed operation once, with its outcome'
SELECT client_id AS device, operation_id AS op, entity_type, entity_id AS id, operation, outcome, real_id, version
  FROM tenant_happy_paws.sync_ledger ORDER BY client_id DESC, operation_id::int;
