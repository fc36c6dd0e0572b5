-- sync_push trusts nothing from the client: what a request may write comes from
-- the request context's permissions, an update or delete says which version it
-- saw, a client clock can claim "now" but never the future, ids mean the same
-- whatever their spelling, field names match exactly, and a create of an id that
-- exists is an idempotent success or a conflict.
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
SELECT smartsync.provision_tenant('push_trust', 'push_trust');
INSERT INTO push_trust.clients (id, practice_id, name, email) VALUES (1, 1, 'Ann', 'ann@example.com');
ALTER TABLE push_trust.clients ALTER COLUMN id RESTART WITH 100;

-- Each result as op, ok, code, retryable, the short message.
CREATE FUNCTION pg_temp.results(r jsonb)
RETURNS TABLE (op text, ok text, code text, retryable text, error text) LANGUAGE sql AS $$
    SELECT x ->> 'operationId', x ->> 'success', x ->> 'code', x ->> 'retryable', x ->> 'error'
      FROM jsonb_array_elements(r -> 'results') x $$;

SET smartsync.tenant_id = 'push_trust';
SET smartsync.practice_id = '1';
SET smartsync.user_id = '42';
SET smartsync.client_id = 'phone-9';

-- 1. Authorization is the server's.  A phone that may only read creates nothing,
-- although its operation declares no requiredPermissions: every operation needs
-- "<entityType>:<create|update|delete>" from the context.  The refusal is
-- permanent (retryable false) and only acknowledged in the ledger; the rest of
-- the batch applies.
SET smartsync.permissions = '*:read';
SELECT * FROM pg_temp.results(smartsync.sync_push('{"operations": [
  {"id": "r1", "operation": "create", "entityType": "clients", "data": {"name": "Mallory"}},
  {"id": "r2", "operation": "update", "entityType": "clients", "entityId": 1, "data": {"name": "Mal"}, "version": 1},
  {"id": "r3", "operation": "delete", "entityType": "clients", "entityId": 1, "version": 1}]}'));
SELECT count(*) AS mallory FROM push_trust.clients WHERE name LIKE 'Mal%';
SELECT operation_id, outcome, error_code, request ->> 'operation' AS request
  FROM push_trust.sync_ledger WHERE client_id = 'phone-9' ORDER BY operation_id;
-- The payload's requiredPermissions add to the server's requirement, never remove it.
SET smartsync.permissions = 'clients:create';
SELECT * FROM pg_temp.results(smartsync.sync_push('{"operations": [
  {"id": "q1", "operation": "create", "entityType": "clients", "data": {"name": "Q1"}, "requiredPermissions": []},
  {"id": "q2", "operation": "create", "entityType": "clients", "data": {"name": "Q2"}, "requiredPermissions": ["clients:approve"]},
  {"id": "q3", "operation": "create", "entityType": "pets", "data": {"name": "Q3", "clientId": 1}}]}'));
-- Under "atomic", one refused operation refuses them all (it says why, the others SS427).
SELECT * FROM pg_temp.results(smartsync.sync_push('{"atomic": true, "operations": [
  {"id": "a1", "operation": "create", "entityType": "clients", "data": {"name": "A1"}},
  {"id": "a2", "operation": "create", "entityType": "pets", "data": {"name": "A2", "clientId": 1}}]}'));
SELECT count(*) AS atomic_rows FROM push_trust.clients WHERE name = 'A1';

-- A direct SQL caller without a permission list is denied by default.  A
-- superuser may trust direct SQL callers (smartsync.trust_direct_sql, e.g. per
-- role with ALTER ROLE ... SET); a permission list given is still applied, and
-- JWT callers are never trusted this way.
RESET smartsync.permissions;
SELECT * FROM pg_temp.results(smartsync.sync_push('{"operations": [
  {"id": "d1", "operation": "create", "entityType": "clients", "data": {"name": "D1"}}]}'));
SHOW smartsync.trust_direct_sql;
SET smartsync.trust_direct_sql = on;
SELECT * FROM pg_temp.results(smartsync.sync_push('{"operations": [
  {"id": "d2", "operation": "create", "entityType": "clients", "data": {"name": "D2"}}]}'));
SET smartsync.permissions = 'pets:create';
SELECT * FROM pg_temp.results(smartsync.sync_push('{"operations": [
  {"id": "d3", "operation": "create", "entityType": "clients", "data": {"name": "D3"}}]}'));
RESET smartsync.permissions;
BEGIN;
SELECT set_config('request.jwt.claims', '{"role": "web_user", "tenant_id": "push_trust", "practice_id": 1, "client_id": "phone-9"}', true) \g /dev/null
SELECT * FROM pg_temp.results(smartsync.sync_push('{"operations": [
  {"id": "d4", "operation": "create", "entityType": "clients", "data": {"name": "D4"}}]}'));
COMMIT;
RESET smartsync.trust_direct_sql;
-- only a superuser sets it
CREATE ROLE regress_trust_clerk;
SET ROLE regress_trust_clerk;
SET smartsync.trust_direct_sql = on;
RESET ROLE;
DROP ROLE regress_trust_clerk;

-- 2. A client clock decides nothing on its own.  An update or delete carries the
-- base version the device last saw (op "version", or data.version); without
-- one it is refused for good (SS428).
SET smartsync.permissions = 'clients:*, pets:*, appointments:*, invoices:*';
SET smartsync.client_id = 'tablet-1';
SELECT * FROM pg_temp.results(smartsync.sync_push('{"operations": [
  {"id": "v1", "operation": "update", "entityType": "clients", "entityId": 1, "data": {"phone": "111"}, "timestamp": "2100-01-01T00:00:00Z"},
  {"id": "v2", "operation": "update", "entityType": "clients", "entityId": 1, "data": {"phone": "111"}, "timestamp": 1731230000000}]}'));
SELECT * FROM pg_temp.results(smartsync.sync_push('{"operations": [
  {"id": "v3", "operation": "update", "entityType": "clients", "entityId": 1, "data": {"phone": "222"}, "timestamp": 4102444800000},
  {"id": "v4", "operation": "delete", "entityType": "clients", "entityId": 1},
  {"id": "v5", "operation": "update", "entityType": "clients", "entityId": 1, "data": {"phone": "333", "version": 1}}]}'));
SELECT name, phone, version FROM push_trust.clients WHERE id = 1;

-- An entity type registered for legacy clients (timestamp_detection, off by
-- default) takes updates and deletes without a version, detected by timestamp.
-- A timestamp later than the server's receive time counts as that time: a
-- device clock can claim "now", never the future.  Here the server row was
-- changed at a time ahead of the push (its stamp held back to place it there):
-- the device's "2100" no longer beats it; it is a timestamp conflict.
SELECT smartsync.register_entity_type('clients', 'vet_template.clients', practice_column => 'practice_id',
         field_classes => '{"email": "important", "phone": "important"}', timestamp_detection => true);
SELECT timestamp_detection FROM smartsync.entity_types WHERE entity_type = 'clients';
ALTER TABLE push_trust.clients DISABLE TRIGGER smartsync_stamp;
UPDATE push_trust.clients SET email = 'ann@office.example', updated_at = now() + interval '1 day', version = 3 WHERE id = 1;
ALTER TABLE push_trust.clients ENABLE TRIGGER smartsync_stamp;
SELECT x ->> 'operationId' AS op, x ->> 'success' AS ok, x #>> '{conflictData,conflictType}' AS conflict
  FROM jsonb_array_elements(smartsync.sync_push('{"operations": [
  {"id": "t1", "operation": "update", "entityType": "clients", "entityId": 1, "data": {"email": "ann@tablet.example"},
   "timestamp": "2100-01-01T00:00:00Z"}]}') -> 'results') x;
-- what the client sent stays in the ledger, as it sent it
SELECT operation_id, client_ts = '2100-01-01T00:00:00Z' AS as_sent FROM push_trust.sync_ledger WHERE operation_id = 't1';
SELECT conflict_type, local_ts <= now() AS clamped FROM push_trust.sync_conflicts ORDER BY conflict_id DESC LIMIT 1;
SELECT smartsync.register_entity_type('clients', 'vet_template.clients', practice_column => 'practice_id',
         field_classes => '{"email": "important", "phone": "important"}');

-- One strict parser for every client timestamp: integer epoch milliseconds (a
-- number, or a string of digits) or ISO 8601 with date, time and offset.
SELECT * FROM pg_temp.results(smartsync.sync_push('{"operations": [
  {"id": "ts1", "operation": "create", "entityType": "clients", "data": {"name": "T1"}, "timestamp": 1731230000000},
  {"id": "ts2", "operation": "create", "entityType": "clients", "data": {"name": "T2"}, "timestamp": "1731230000000"},
  {"id": "ts3", "operation": "create", "entityType": "clients", "data": {"name": "T3"}, "timestamp": 1.73123e12},
  {"id": "ts4", "operation": "create", "entityType": "clients", "data": {"name": "T4"}, "timestamp": "2024-11-10T12:00:00Z"},
  {"id": "ts5", "operation": "create", "entityType": "clients", "data": {"name": "T5"}, "timestamp": "2024-11-10T17:30:00.123456789+05:30"},
  {"id": "ts6", "operation": "create", "entityType": "clients", "data": {"name": "T6"}, "timestamp": "2024-11-10 12:00:00+00"}],
  "clientTimestamp": "2024-11-10T12:00:01.5Z"}'));
SELECT operation_id, to_char(client_ts AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS sent
  FROM push_trust.sync_ledger WHERE operation_id LIKE 'ts_' ORDER BY 1;
-- PostgreSQL's special words and free-form dates are refused, the push as a whole (SS406)
\set VERBOSITY default
SELECT smartsync.sync_push('{"operations": [{"id": "w", "operation": "create", "entityType": "clients", "data": {"name": "W"}, "timestamp": "tomorrow"}]}');
SELECT smartsync.sync_push('{"operations": [{"id": "w", "operation": "create", "entityType": "clients", "data": {"name": "W"}, "timestamp": "Jan 1 2024"}]}');
\set VERBOSITY sqlstate
SELECT smartsync.sync_push('{"operations": [{"id": "w", "operation": "create", "entityType": "clients", "data": {"name": "W"}, "timestamp": "now"}]}');
SELECT smartsync.sync_push('{"operations": [{"id": "w", "operation": "create", "entityType": "clients", "data": {"name": "W"}, "timestamp": "infinity"}]}');
SELECT smartsync.sync_push('{"operations": [{"id": "w", "operation": "create", "entityType": "clients", "data": {"name": "W"}, "timestamp": "epoch"}]}');
SELECT smartsync.sync_push('{"operations": [{"id": "w", "operation": "create", "entityType": "clients", "data": {"name": "W"}, "timestamp": "allballs"}]}');
SELECT smartsync.sync_push('{"operations": [{"id": "w", "operation": "create", "entityType": "clients", "data": {"name": "W"}, "timestamp": "2024-01-01T12:00:00"}]}');
SELECT smartsync.sync_push('{"operations": [{"id": "w", "operation": "create", "entityType": "clients", "data": {"name": "W"}, "timestamp": 1699000000000.5}]}');
SELECT smartsync.sync_push('{"operations": [], "clientTimestamp": "yesterday"}');

-- 4. One id whatever its spelling: 1, 1.0 and 1e0 are the same operation id (a
-- replay), and a fraction is no operation id.
SELECT * FROM pg_temp.results(smartsync.sync_push('{"operations": [
  {"id": 7, "operation": "create", "entityType": "clients", "data": {"name": "Seven"}}]}'));
SELECT x ->> 'operationId' AS op, x ->> 'replayed' AS replayed
  FROM jsonb_array_elements(smartsync.sync_push('{"operations": [
  {"id": 7.0, "operation": "create", "entityType": "clients", "data": {"name": "Seven"}},
  {"id": "8", "operation": "create", "entityType": "clients", "data": {"name": "Eight"}}]}') -> 'results') x;
SELECT x ->> 'operationId' AS op, x ->> 'replayed' AS replayed
  FROM jsonb_array_elements(smartsync.sync_push('{"operations": [
  {"id": 7e0, "operation": "create", "entityType": "clients", "data": {"name": "Seven"}},
  {"id": 8, "operation": "create", "entityType": "clients", "data": {"name": "Eight"}}]}') -> 'results') x;
SELECT count(*) AS sevens FROM push_trust.clients WHERE name = 'Seven';
SELECT smartsync.sync_push('{"operations": [{"id": 7.5, "operation": "create", "entityType": "clients", "data": {"name": "X"}}]}');  -- SS406
-- Lengths count characters: 255 two-byte characters are an id, 256 are not.
SELECT x ->> 'success' AS ok
  FROM jsonb_array_elements(smartsync.sync_push(jsonb_build_object('operations', jsonb_build_array(
       jsonb_build_object('id', repeat('é', 255), 'operation', 'create', 'entityType', 'clients', 'data', '{"name": "Long"}'::jsonb)))) -> 'results') x;
SELECT smartsync.sync_push(jsonb_build_object('operations', jsonb_build_array(
       jsonb_build_object('id', repeat('é', 256), 'operation', 'create', 'entityType', 'clients', 'data', '{"name": "Long"}'::jsonb))));  -- SS406
-- A payload's clientId obeys the claim's rules: 1 to 255 characters, no control characters.
RESET smartsync.client_id;
SELECT smartsync.sync_push(jsonb_build_object('clientId', repeat('é', 255), 'operations', '[]'::jsonb)) ->> 'success' AS ok;
SELECT smartsync.sync_push('{"clientId": "tab\nlet", "operations": []}');         -- SS406
SELECT smartsync.sync_push('{"clientId": "tab\u0007let", "operations": []}');     -- SS406
SET smartsync.client_id = 'tablet-1';

-- A practice id is the same practice whether sent as 1, "1", 1.0 or 1e0.
SELECT * FROM pg_temp.results(smartsync.sync_push('{"operations": [
  {"id": "p1", "operation": "create", "entityType": "clients", "data": {"name": "P1"}, "practiceId": 1.0},
  {"id": "p2", "operation": "create", "entityType": "clients", "data": {"name": "P2"}, "practiceId": "1"},
  {"id": "p3", "operation": "create", "entityType": "clients", "data": {"name": "P3", "practiceId": 1e0}},
  {"id": "p4", "operation": "create", "entityType": "clients", "data": {"name": "P4", "practiceId": "1.00"}},
  {"id": "p5", "operation": "create", "entityType": "clients", "data": {"name": "P5"}, "practiceId": 2.0}]}'));
SET smartsync.practice_id = '1.0';
SELECT smartsync.context() ->> 'practiceId' AS practice, smartsync.current_practice_id() AS rls_practice;
SET smartsync.practice_id = '1';

-- Field names match column names exactly, or exactly their camelCase spelling
-- (pet_id: petId).  "NAME", "petID" and "Pet_Id" name no column.
SELECT * FROM pg_temp.results(smartsync.sync_push('{"operations": [
  {"id": "f1", "operation": "create", "entityType": "pets", "data": {"name": "Rex", "clientId": 1}},
  {"id": "f2", "operation": "create", "entityType": "pets", "data": {"name": "Tom", "client_id": 1}},
  {"id": "f3", "operation": "create", "entityType": "pets", "data": {"NAME": "Max", "clientId": 1}},
  {"id": "f4", "operation": "create", "entityType": "pets", "data": {"name": "Max", "clientID": 1}},
  {"id": "f5", "operation": "create", "entityType": "pets", "data": {"name": "Max", "Client_Id": 1}}]}'));

-- 5. A create whose id exists already.  The same content is an idempotent
-- success that answers the existing row; different content is a data conflict,
-- handled by the entity type's policy (clients: stored for a manual decision).
SELECT x ->> 'operationId' AS op, x ->> 'success' AS ok, x ->> 'alreadyExists' AS exists,
       x #>> '{data,name}' AS name, x ->> 'version' AS version, x ->> 'conflict' AS conflict,
       x #>> '{conflictData,conflictType}' AS type, x #> '{conflictData,affectedFields}' AS fields,
       x ->> 'severity' AS severity
  FROM jsonb_array_elements(smartsync.sync_push('{"operations": [
  {"id": "e1", "operation": "create", "entityType": "clients", "entityId": 500, "data": {"name": "Eve", "email": "eve@example.com"}}]}')
       -> 'results') x;
SELECT x ->> 'operationId' AS op, x ->> 'success' AS ok, x ->> 'alreadyExists' AS exists,
       x #>> '{data,name}' AS name, x ->> 'version' AS version, x ->> 'conflict' AS conflict,
       x #>> '{conflictData,conflictType}' AS type, x #> '{conflictData,affectedFields}' AS fields,
       x ->> 'severity' AS severity
  FROM jsonb_array_elements(smartsync.sync_push('{"operations": [
  {"id": "e2", "operation": "create", "entityType": "clients", "entityId": 500, "data": {"name": "Eve", "email": "eve@example.com"}},
  {"id": "e3", "operation": "create", "entityType": "clients", "entityId": 500, "data": {"name": "Eve", "email": "eve@elsewhere.example"}},
  {"id": "e4", "operation": "create", "entityType": "clients", "entityId": 1, "data": {"name": "Ann", "practiceId": 1}}]}')
       -> 'results') x;
SELECT id, name, email, version FROM push_trust.clients WHERE id IN (1, 500) ORDER BY id;
SELECT entity_id, operation, conflict_type, affected_fields, status FROM push_trust.sync_conflicts
 WHERE operation = 'create';
-- A type whose policy decides it at once (client-wins): the client's fields are written.
SELECT smartsync.set_conflict_policy('clients', default_strategy => 'client-wins') ->> 'defaultStrategy' AS strategy;
SELECT x ->> 'success' AS ok, x #>> '{resolution,strategy}' AS strategy, x #>> '{resolution,conflictType}' AS type,
       x #>> '{data,phone}' AS phone, x #>> '{data,email}' AS email
  FROM jsonb_array_elements(smartsync.sync_push('{"operations": [
  {"id": "e5", "operation": "create", "entityType": "clients", "entityId": 500, "data": {"name": "Eve", "phone": "555"}}]}')
       -> 'results') x;
SELECT smartsync.set_conflict_policy('clients', default_strategy => 'manual') ->> 'defaultStrategy' AS strategy;

-- 3. Every size is bounded.  Limits a superuser sets, checked before anything
-- is applied: the payload (SS412, the push refused), a field's value (SS429)
-- and a field name's length (SS430, per operation).
SHOW smartsync.max_payload_size;
SHOW smartsync.max_value_size;
SHOW smartsync.max_field_name_length;
SET smartsync.max_value_size = '1kB';
SELECT * FROM pg_temp.results(smartsync.sync_push(jsonb_build_object('operations', jsonb_build_array(
  jsonb_build_object('id', 'z1', 'operation', 'create', 'entityType', 'clients', 'data', jsonb_build_object('name', repeat('x', 20000), 'email', 'x@example.com')),
  jsonb_build_object('id', 'z2', 'operation', 'create', 'entityType', 'clients', 'data', jsonb_build_object('name', 'Z2', repeat('f', 64), 1)),
  jsonb_build_object('id', 'z3', 'operation', 'create', 'entityType', 'clients', 'data', jsonb_build_object('name', 'Z3'))))));
-- The ledger keeps a bounded copy of a refused request (here 20 kB): a summary, a few hundred bytes.
SELECT operation_id, pg_column_size(request) < 2000 AS bounded, request -> 'data' -> '_truncated' AS truncated,
       request -> 'data' -> 'bytes' AS bytes, request -> 'data' -> 'fields' AS fields
  FROM push_trust.sync_ledger WHERE operation_id = 'z1';
RESET smartsync.max_value_size;
SET smartsync.max_payload_size = '1kB';
SELECT smartsync.sync_push(jsonb_build_object('operations', jsonb_build_array(
  jsonb_build_object('id', 'z4', 'operation', 'create', 'entityType', 'clients', 'data', jsonb_build_object('name', repeat('x', 2000))))));  -- SS412
RESET smartsync.max_payload_size;
-- Error messages quote a short prefix of a client value, never the value whole:
-- a 1 MB string in an integer field.
SELECT code, length(error) < 300 AS short, left(error, 60) AS error
  FROM pg_temp.results(smartsync.sync_push(jsonb_build_object('operations', jsonb_build_array(
  jsonb_build_object('id', 'z5', 'operation', 'create', 'entityType', 'invoices',
                     'data', jsonb_build_object('clientId', 1, 'amountCents', repeat('9x', 500000)))))));
\set VERBOSITY default
SELECT smartsync.sync_push(jsonb_build_object('operations', jsonb_build_array(
  jsonb_build_object('id', 'z6', 'operation', 'create', 'entityType', repeat('horse', 200000), 'data', '{}'::jsonb))));
\set VERBOSITY sqlstate

RESET smartsync.tenant_id;
RESET smartsync.practice_id;
RESET smartsync.user_id;
RESET smartsync.client_id;
RESET smartsync.permissions;
