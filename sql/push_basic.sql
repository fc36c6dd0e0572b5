-- sync_push: the spec's push flow.  Operations applied once, parents first,
-- temporary ids mapped to real ids, every operation recorded in the ledger.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS smartsync;
\set VERBOSITY sqlstate
\set ECHO none
\o /dev/null
SELECT to_regnamespace('vet_template') IS NULL AS need_vet \gset
\if :need_vet
\i examples/vet_schema.sql
\endif
\o
\set ECHO all
SELECT smartsync.provision_tenant('push_basic', 'push_basic');

-- Results without the volatile server timestamps (updated_at).
CREATE SCHEMA push_basic_t;
CREATE FUNCTION push_basic_t.clean(j jsonb) RETURNS jsonb LANGUAGE sql AS $$
  SELECT CASE jsonb_typeof(j)
    WHEN 'object' THEN (SELECT coalesce(jsonb_object_agg(k, push_basic_t.clean(v)), '{}')
                          FROM jsonb_each(j) AS e(k, v) WHERE k <> 'updated_at')
    WHEN 'array' THEN (SELECT coalesce(jsonb_agg(push_basic_t.clean(v) ORDER BY n), '[]')
                         FROM jsonb_array_elements(j) WITH ORDINALITY AS a(v, n))
    ELSE j END $$;

-- The request context: tenant, practice, user, device, permissions.
SET smartsync.tenant_id = 'push_basic';
SET smartsync.practice_id = '1';
SET smartsync.user_id = '42';
SET smartsync.client_id = 'tablet-1';
SET smartsync.permissions = 'clients:*,pets:*,appointments:*,soap_notes:*,invoices:*';

-- A client and a pet already on the server.
SELECT smartsync.sync_push('{"operations": [
  {"id": "c1", "operation": "create", "entityType": "clients", "entityId": 1007,
   "data": {"name": "Ann Smith", "email": "ann@example.com"}},
  {"id": "p1", "operation": "create", "entityType": "pets", "entityId": 1009,
   "data": {"name": "Rex", "clientId": 1007, "species": "dog"}}]}') ->> 'processed' AS processed;

-- The spec's example request gives the spec's response: realId for tempId.
SELECT jsonb_pretty(smartsync.sync_push('{
  "operations": [
    {
      "id": 123,
      "operation": "create",
      "entityType": "appointments",
      "entityId": "temp_12345",
      "data": {"title": "Annual checkup", "petId": 1009, "date": "2024-11-10T12:00:00Z"},
      "timestamp": 1699000000000,
      "tenantId": "push_basic",
      "practiceId": 1,
      "userId": 42
    }
  ],
  "clientTimestamp": 1699000000500
}'));

-- The id map: temp -> real, with the client's creation time and the operation.
SELECT client_id, temp_id, entity_type, real_id, operation_id, created_at
  FROM push_basic.sync_id_map ORDER BY temp_id;

-- The row, written through the tracked table: version 1, captured in the change log
-- with the user and the client.
SELECT id, practice_id, pet_id, title, date, version FROM push_basic.appointments;
SELECT entity_type, entity_id, operation, version, practice_id, user_id, client_id
  FROM push_basic.sync_changes ORDER BY seq;

-- Dependency order: the payload lists children first, the push creates parents
-- first, and references to temporary ids (entityId or a reference field such as
-- petId) are rewritten to the real ids, within the batch.
SELECT r ->> 'operationId' AS op, r ->> 'entityType' AS type, r ->> 'tempId' AS temp,
       r -> 'realId' AS real_id, r -> 'success' AS ok
  FROM jsonb_array_elements(smartsync.sync_push('{"operations": [
    {"id": 13, "operation": "create", "entityType": "soap_notes", "entityId": "temp_n1",
     "data": {"appointmentId": "temp_a1", "subjective": "limping"}, "timestamp": 1699000000013},
    {"id": 12, "operation": "create", "entityType": "appointments", "entityId": "temp_a1",
     "data": {"title": "Limp", "petId": "temp_p2", "date": "2024-11-11T09:00:00Z"}, "timestamp": 1699000000012},
    {"id": 14, "operation": "create", "entityType": "invoices", "entityId": "temp_i1",
     "data": {"appointmentId": "temp_a1", "clientId": "temp_c2", "amountCents": 4500}, "timestamp": 1699000000014},
    {"id": 11, "operation": "create", "entityType": "pets", "entityId": "temp_p2",
     "data": {"name": "Tom", "clientId": "temp_c2", "species": "cat"}, "timestamp": 1699000000011},
    {"id": 10, "operation": "create", "entityType": "clients", "entityId": "temp_c2",
     "data": {"name": "Bob Jones"}, "timestamp": 1699000000010}
  ]}') -> 'results') AS r;
-- the order in which they were applied
SELECT entity_type, entity_id, operation FROM push_basic.sync_changes
 WHERE client_id = 'tablet-1' AND seq > 3 ORDER BY seq;
SELECT p.name AS pet, c.name AS owner, a.title, s.subjective, i.amount_cents
  FROM push_basic.soap_notes s JOIN push_basic.appointments a ON a.id = s.appointment_id
  JOIN push_basic.pets p ON p.id = a.pet_id JOIN push_basic.clients c ON c.id = p.client_id
  JOIN push_basic.invoices i ON i.appointment_id = a.id;

-- A later batch refers to a temporary id mapped by an earlier one.
SELECT push_basic_t.clean(smartsync.sync_push('{"operations": [
  {"id": 20, "operation": "update", "entityType": "appointments", "entityId": "temp_a1",
   "data": {"notes": "bring the x-rays", "petId": "temp_p2"}, "version": 1}]}')) AS r;

-- Deletes run children first: the invoice and the note go before their appointment.
SELECT r ->> 'operationId' AS op, r ->> 'entityType' AS type, r -> 'success' AS ok, r -> 'version' AS version
  FROM jsonb_array_elements(smartsync.sync_push('{"operations": [
    {"id": 30, "operation": "delete", "entityType": "appointments", "entityId": "temp_a1", "version": 2},
    {"id": 31, "operation": "delete", "entityType": "soap_notes", "entityId": "temp_n1", "version": 1},
    {"id": 32, "operation": "delete", "entityType": "invoices", "entityId": "temp_i1", "version": 1}
  ]}') -> 'results') AS r;
SELECT entity_type, operation, version FROM push_basic.sync_changes
 WHERE operation = 'delete' ORDER BY seq;

-- Priority, then client timestamp, order operations of the same kind and level;
-- equal keys keep the payload's order.
SELECT smartsync.sync_push('{"operations": [
    {"id": "low",    "operation": "create", "entityType": "clients", "data": {"name": "L"}, "priority": "low"},
    {"id": "late",   "operation": "create", "entityType": "clients", "data": {"name": "T2"}, "timestamp": "2024-01-02T00:00:00Z"},
    {"id": "early",  "operation": "create", "entityType": "clients", "data": {"name": "T1"}, "timestamp": "2024-01-01T00:00:00Z"},
    {"id": "untimed","operation": "create", "entityType": "clients", "data": {"name": "U"}},
    {"id": "high",   "operation": "create", "entityType": "clients", "data": {"name": "H"}, "priority": "high"},
    {"id": "same",   "operation": "create", "entityType": "clients", "data": {"name": "U2"}}
  ]}') ->> 'processed' AS processed;
SELECT string_agg(data ->> 'name', ' ' ORDER BY seq) AS applied_order
  FROM push_basic.sync_changes WHERE entity_type = 'clients' AND data ->> 'name' IN ('L', 'T1', 'T2', 'U', 'H', 'U2');

-- Exactly once: the same batch again (the response was lost) returns the stored
-- results, marked "replayed", and changes nothing.
SELECT count(*) AS changes_before FROM push_basic.sync_changes \gset
SELECT r ->> 'operationId' AS op, r -> 'realId' AS real_id, r -> 'replayed' AS replayed
  FROM jsonb_array_elements(smartsync.sync_push('{"operations": [
    {"id": 10, "operation": "create", "entityType": "clients", "entityId": "temp_c2",
     "data": {"name": "Bob Jones"}, "timestamp": 1699000000010},
    {"id": 123, "operation": "create", "entityType": "appointments", "entityId": "temp_12345",
     "data": {"title": "Annual checkup", "petId": 1009, "date": "2024-11-10T12:00:00Z"}}
  ]}') -> 'results') AS r;
SELECT count(*) - :changes_before AS new_changes FROM push_basic.sync_changes;
SELECT count(*) AS clients_named_bob FROM push_basic.clients WHERE name = 'Bob Jones';

-- Operation ids are per client: another device's operation 123 is a new operation.
SET smartsync.client_id = 'phone-2';
SELECT smartsync.sync_push('{"operations": [
  {"id": 123, "operation": "create", "entityType": "clients", "entityId": "temp_12345",
   "data": {"name": "Cy"}}]}') -> 'results' -> 0 -> 'replayed' AS replayed;
-- ... and its temporary ids are its own
SELECT client_id, temp_id, entity_type, real_id FROM push_basic.sync_id_map
 WHERE temp_id = 'temp_12345' ORDER BY client_id;

-- Without a device id in the context, the payload's clientId (or deviceId) names
-- the client; capture sees it for the duration of the push.
RESET smartsync.client_id;
SELECT smartsync.sync_push('{"clientId": "laptop-3", "operations": [
  {"id": 1, "operation": "create", "entityType": "clients", "data": {"name": "Dee"}}]}') ->> 'clientId' AS client;
SELECT client_id, entity_type, operation FROM push_basic.sync_changes ORDER BY seq DESC LIMIT 1;
SHOW smartsync.client_id;
SET smartsync.client_id = 'tablet-1';

-- Through PostgREST the context comes from the JWT claims; a device claim is optional.
BEGIN;
SELECT set_config('request.jwt.claims',
  '{"role": "web_user", "tenant_id": "push_basic", "practice_id": 1, "sub": "42", "permissions": ["clients:create"]}', true);
SELECT smartsync.sync_push('{"deviceId": "kiosk-4", "operations": [
  {"id": "k1", "operation": "create", "entityType": "clients", "data": {"name": "Eve"},
   "requiredPermissions": ["clients:create"]}]}') -> 'results' -> 0 -> 'success' AS ok;
SELECT client_id, user_id, practice_id FROM push_basic.sync_changes ORDER BY seq DESC LIMIT 1;
SELECT current_setting('request.jwt.claims')::jsonb ? 'client_id' AS claims_changed;
COMMIT;

-- The ledger: who, when, what and the outcome of every operation.  The request
-- as sent is kept for operations that did not apply; an applied one is in the
-- change log at (entity_type, real_id, version).
SELECT client_id, operation_id, entity_type, entity_id, operation, user_id, practice_id,
       outcome, real_id, version, error_code, client_ts IS NOT NULL AS has_client_ts,
       request IS NOT NULL AS request_kept, received_at <= completed_at AS timed
  FROM push_basic.sync_ledger WHERE client_id = 'tablet-1' AND operation_id IN ('123', '10', '20', '30')
 ORDER BY operation_id;

-- An empty batch is fine.
SELECT smartsync.sync_push('{"operations": []}');

RESET smartsync.tenant_id;
RESET smartsync.practice_id;
RESET smartsync.user_id;
RESET smartsync.client_id;
RESET smartsync.permissions;
