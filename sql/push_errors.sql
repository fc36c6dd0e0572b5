-- sync_push: what it refuses.  A malformed payload is refused whole, before
-- anything is written, each mistake with its own SQLSTATE.  A bad operation fails
-- alone: reported with its error code, acknowledged in the ledger, the rest applied.
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
SELECT smartsync.provision_tenant('push_errors', 'push_errors');

SET smartsync.tenant_id = 'push_errors';
SET smartsync.practice_id = '1';
SET smartsync.user_id = '42';
SET smartsync.client_id = 'tablet-1';
SET smartsync.permissions = 'clients:*, pets:*, invoices:*, appointments:*';

-- The whole payload is checked first.  Errors show their SQLSTATE only, then
-- the message once each with VERBOSITY default further down.
SELECT smartsync.sync_push(NULL);                                    -- SS401
SELECT smartsync.sync_push('[1, 2]');                                -- SS401
SELECT smartsync.sync_push('"push"');                                -- SS401
SELECT smartsync.sync_push('{}');                                    -- SS402
SELECT smartsync.sync_push('{"operations": {"id": 1}}');             -- SS402
SELECT smartsync.sync_push('{"operations": [42]}');                  -- SS404
SELECT smartsync.sync_push('{"operations": [{"operation": "create", "entityType": "clients", "data": {}}]}');  -- SS405 id
SELECT smartsync.sync_push('{"operations": [{"id": 1, "entityType": "clients", "data": {}}]}');               -- SS405 operation
SELECT smartsync.sync_push('{"operations": [{"id": 1, "operation": "create", "data": {}}]}');                 -- SS405 entityType
SELECT smartsync.sync_push('{"operations": [{"id": 1, "operation": "update", "entityType": "clients", "data": {}}]}');  -- SS405 entityId
SELECT smartsync.sync_push('{"operations": [{"id": 1, "operation": "create", "entityType": "clients"}]}');     -- SS405 data
SELECT smartsync.sync_push('{"operations": [{"id": true, "operation": "create", "entityType": "clients", "data": {}}]}');  -- SS406
SELECT smartsync.sync_push('{"operations": [{"id": "", "operation": "create", "entityType": "clients", "data": {}}]}');    -- SS406
SELECT smartsync.sync_push('{"operations": [{"id": 1, "operation": 3, "entityType": "clients", "data": {}}]}');           -- SS406
SELECT smartsync.sync_push('{"operations": [{"id": 1, "operation": "create", "entityType": "clients", "data": {}, "timestamp": "soon"}]}');  -- SS406
SELECT smartsync.sync_push('{"operations": [{"id": 1, "operation": "create", "entityType": "clients", "data": {}, "timestamp": true}]}');    -- SS406
SELECT smartsync.sync_push('{"operations": [{"id": 1, "operation": "update", "entityType": "clients", "entityId": 1, "data": {}, "version": -1}]}');  -- SS406
SELECT smartsync.sync_push('{"operations": [{"id": 1, "operation": "update", "entityType": "clients", "entityId": 1, "data": {}, "version": 1.5}]}'); -- SS406
SELECT smartsync.sync_push('{"operations": [{"id": 1, "operation": "create", "entityType": "clients", "data": {}, "priority": "urgent"}]}');    -- SS406
SELECT smartsync.sync_push('{"operations": [{"id": 1, "operation": "create", "entityType": "clients", "data": {}, "maxRetries": "3"}]}');      -- SS406
SELECT smartsync.sync_push('{"operations": [{"id": 1, "operation": "create", "entityType": "clients", "data": {}, "requiredPermissions": "clients:create"}]}');  -- SS406
SELECT smartsync.sync_push('{"operations": [{"id": 1, "operation": "create", "entityType": "clients", "data": {}, "requiredPermissions": [1]}]}');  -- SS406
SELECT smartsync.sync_push('{"operations": [{"id": 1, "operation": "create", "entityType": "clients", "data": {}, "tenantId": {}}]}');  -- SS406
SELECT smartsync.sync_push('{"operations": [], "clientTimestamp": "later"}');  -- SS406
SELECT smartsync.sync_push('{"operations": [], "atomic": "yes"}');             -- SS406
SELECT smartsync.sync_push('{"operations": [{"id": 1, "operation": "upsert", "entityType": "clients", "data": {}}]}');    -- SS407
SELECT smartsync.sync_push('{"operations": [{"id": 1, "operation": "create", "entityType": "horses", "data": {}}]}');     -- SS408
SELECT smartsync.sync_push('{"operations": [{"id": 1, "operation": "create", "entityType": "clients", "data": {"name": "A"}},
                                            {"id": 1, "operation": "create", "entityType": "clients", "data": {"name": "B"}}]}');  -- SS409
SELECT smartsync.sync_push('{"operations": [], "clientId": "other"}');         -- SS410 disagrees with the context
SELECT smartsync.sync_push('{"operations": [{"id": 1, "operation": "create", "entityType": "clients", "data": "Ann"}]}');  -- SS411
SELECT smartsync.sync_push('{"operations": [{"id": 1, "operation": "create", "entityType": "clients", "data": ["Ann"]}]}');  -- SS411

-- The messages say which operation and field.
\set VERBOSITY default
SELECT smartsync.sync_push('{"operations": [{"id": 1, "operation": "create", "entityType": "clients", "data": {"name": "A"}},
                                            {"id": 2, "operation": "update", "entityType": "clients", "entityId": 1, "data": 5}]}');
SELECT smartsync.sync_push('{"operations": [{"id": 1, "operation": "create", "entityType": "clients", "data": {}, "timestamp": "soon"}]}');
RESET smartsync.client_id;
SELECT smartsync.sync_push('{"operations": []}');
SELECT smartsync.sync_push('{"operations": [], "clientId": "a", "deviceId": "b"}');
SET smartsync.client_id = 'tablet-1';
\set VERBOSITY sqlstate
-- A context without a tenant, or with an unknown one, is the context's error.
RESET smartsync.tenant_id;
SELECT smartsync.sync_push('{"operations": []}');                    -- SS201
SET smartsync.tenant_id = 'nobody';
SELECT smartsync.sync_push('{"operations": []}');                    -- SS203
SET smartsync.tenant_id = 'push_errors';

-- Nothing was written by any of these.
SELECT (SELECT count(*) FROM push_errors.sync_ledger) AS ledger,
       (SELECT count(*) FROM push_errors.sync_changes) AS changes;

-- Batch size: 50 by default (the spec's), settable up to smartsync.max_batch_size.
SHOW smartsync.batch_size;
SHOW smartsync.max_batch_size;
SET smartsync.batch_size = 2;
SELECT smartsync.sync_push(jsonb_build_object('operations', (SELECT jsonb_agg(jsonb_build_object(
         'id', i, 'operation', 'create', 'entityType', 'clients', 'data', jsonb_build_object('name', 'c' || i)))
       FROM generate_series(1, 3) i)));                               -- SS403
SET smartsync.max_batch_size = 1;
SELECT smartsync.sync_push(jsonb_build_object('operations', (SELECT jsonb_agg(jsonb_build_object(
         'id', i, 'operation', 'create', 'entityType', 'clients', 'data', jsonb_build_object('name', 'c' || i)))
       FROM generate_series(1, 2) i)));                               -- SS403: the hard maximum wins
RESET smartsync.max_batch_size;
RESET smartsync.batch_size;

-- One failing operation does not undo the others.  Each failure says its code and
-- whether a retry can help.
CREATE TEMP TABLE push_errors_r AS
SELECT smartsync.sync_push('{"operations": [
  {"id": "ok1", "operation": "create", "entityType": "clients", "entityId": "temp_c1", "data": {"name": "Ann"}},
  {"id": "tenant", "operation": "create", "entityType": "clients", "data": {"name": "X"}, "tenantId": "someone-else"},
  {"id": "practice", "operation": "create", "entityType": "clients", "data": {"name": "X"}, "practiceId": 2},
  {"id": "user", "operation": "create", "entityType": "clients", "data": {"name": "X"}, "userId": 7},
  {"id": "perm", "operation": "create", "entityType": "pets", "data": {"name": "X", "clientId": "temp_c1"},
   "requiredPermissions": ["billing:approve"]},
  {"id": "field", "operation": "create", "entityType": "clients", "data": {"name": "X", "nickname": "Y"}},
  {"id": "twice", "operation": "create", "entityType": "clients", "data": {"name": "X", "practiceId": 1, "practice_id": 1}},
  {"id": "unknown-temp", "operation": "create", "entityType": "pets", "data": {"name": "X", "clientId": "temp_ghost"}},
  {"id": "wrong-type-temp", "operation": "create", "entityType": "invoices", "data": {"clientId": "temp_p1", "amountCents": 1}},
  {"id": "p1", "operation": "create", "entityType": "pets", "entityId": "temp_p1", "data": {"name": "Rex", "clientId": "temp_c1"}},
  {"id": "temp-taken", "operation": "create", "entityType": "clients", "entityId": "temp_c1", "data": {"name": "Again"}},
  {"id": "other-practice", "operation": "create", "entityType": "clients", "data": {"name": "X", "practiceId": 2}},
  {"id": "not-null", "operation": "create", "entityType": "clients", "data": {"email": "x@example.com"}},
  {"id": "bad-value", "operation": "create", "entityType": "appointments",
   "data": {"title": "T", "petId": "temp_p1", "date": "someday"}},
  {"id": "fk", "operation": "create", "entityType": "pets", "data": {"name": "X", "clientId": 999999}},
  {"id": "ok2", "operation": "update", "entityType": "clients", "entityId": "temp_c1", "data": {"phone": "555"}, "version": 1}
]}') AS r;
SELECT r ->> 'success' AS success, r ->> 'processed' AS processed, r ->> 'failed' AS failed,
       r ->> 'conflicts' AS conflicts FROM push_errors_r;
SELECT x ->> 'operationId' AS op, x ->> 'success' AS ok, x ->> 'code' AS code,
       x ->> 'retryable' AS retryable, x ->> 'error' AS error
  FROM push_errors_r, jsonb_array_elements(r -> 'results') AS x;
SELECT name, phone, version FROM push_errors.clients ORDER BY id;
SELECT name FROM push_errors.pets ORDER BY id;

-- Failures are acknowledged: the ledger keeps them, and pushing them again
-- returns the same failure (the client does not retry them forever).
SELECT operation_id, outcome, error_code, request ->> 'operation' AS requested
  FROM push_errors.sync_ledger ORDER BY received_at, operation_id;
SELECT x ->> 'operationId' AS op, x ->> 'code' AS code, x ->> 'replayed' AS replayed
  FROM jsonb_array_elements(smartsync.sync_push('{"operations": [
    {"id": "fk", "operation": "create", "entityType": "pets", "data": {"name": "X", "clientId": 999999}}]}') -> 'results') AS x;

-- A context without any permission list grants none.
RESET smartsync.permissions;
SELECT x ->> 'code' AS code, x ->> 'detail' AS detail
  FROM jsonb_array_elements(smartsync.sync_push('{"operations": [
    {"id": "np", "operation": "create", "entityType": "clients", "data": {"name": "X"},
     "requiredPermissions": ["clients:create"]}]}') -> 'results') AS x;

-- Wildcards grant permissions as pull's do: "type:*", "*:action", "*".
SET smartsync.permissions = 'pets:*, *:update, clients:create';
SELECT x ->> 'operationId' AS op, x ->> 'success' AS ok, x ->> 'code' AS code
  FROM jsonb_array_elements(smartsync.sync_push('{"operations": [
    {"id": "wild1", "operation": "create", "entityType": "clients", "entityId": "temp_cw", "data": {"name": "W"},
     "requiredPermissions": ["clients:delete"]},
    {"id": "wild2", "operation": "create", "entityType": "clients", "entityId": "temp_cw2", "data": {"name": "W"},
     "requiredPermissions": ["pets:create", "clients:update"]}]}') -> 'results') AS x;
SET smartsync.permissions = '*';
SELECT x ->> 'operationId' AS op, x ->> 'success' AS ok, x ->> 'code' AS code
  FROM jsonb_array_elements(smartsync.sync_push('{"operations": [
    {"id": "wild3", "operation": "delete", "entityType": "clients", "entityId": "temp_cw2", "version": 1,
     "requiredPermissions": ["clients:delete"]}]}') -> 'results') AS x;

-- An update or delete of a row of another practice is refused.
SET smartsync.practice_id = '2';
SELECT x ->> 'code' AS code, x ->> 'error' AS error
  FROM jsonb_array_elements(smartsync.sync_push('{"operations": [
    {"id": "xp", "operation": "update", "entityType": "clients", "entityId": "temp_c1", "data": {"phone": "1"}, "version": 2},
    {"id": "xd", "operation": "delete", "entityType": "clients", "entityId": "temp_c1", "version": 2}]}') -> 'results') AS x;
SET smartsync.practice_id = '1';

-- PostgreSQL privileges apply too: the push runs as its caller.
CREATE ROLE regress_push_clerk;
GRANT USAGE ON SCHEMA smartsync, push_errors TO regress_push_clerk;
GRANT SELECT ON smartsync.tenants, smartsync.entity_types TO regress_push_clerk;
GRANT SELECT, INSERT, UPDATE, DELETE ON push_errors.sync_ledger, push_errors.sync_id_map,
      push_errors.sync_conflicts TO regress_push_clerk;
GRANT SELECT, INSERT ON push_errors.sync_changes TO regress_push_clerk;
GRANT SELECT, INSERT, UPDATE ON push_errors.clients TO regress_push_clerk;
GRANT SELECT ON push_errors.invoices TO regress_push_clerk;
SET ROLE regress_push_clerk;
SELECT x ->> 'operationId' AS op, x ->> 'success' AS ok, x ->> 'code' AS code
  FROM jsonb_array_elements(smartsync.sync_push('{"operations": [
    {"id": "priv-ok", "operation": "create", "entityType": "clients", "data": {"name": "Clerk"}},
    {"id": "priv-no", "operation": "create", "entityType": "invoices", "data": {"clientId": 1, "amountCents": 5}}]}') -> 'results') AS x;
RESET ROLE;
DROP OWNED BY regress_push_clerk;
DROP ROLE regress_push_clerk;

-- A transient failure (serialization failure, deadlock, lock timeout) says
-- "retryable": true and is not recorded, so pushing the operation again applies
-- it.  A trigger stands in for the lock timeout and the serialization failure.
CREATE FUNCTION push_errors.flaky() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('push_errors.flaky', true) = 'on' AND NEW.name IN ('locked', 'serial') THEN
        RAISE EXCEPTION 'simulated transient failure'
            USING ERRCODE = CASE NEW.name WHEN 'locked' THEN '55P03' ELSE '40001' END;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER flaky BEFORE INSERT ON push_errors.clients FOR EACH ROW EXECUTE FUNCTION push_errors.flaky();
SET push_errors.flaky = 'on';
SELECT x ->> 'operationId' AS op, x ->> 'success' AS ok, x ->> 'code' AS code, x ->> 'retryable' AS retryable
  FROM jsonb_array_elements(smartsync.sync_push('{"operations": [
    {"id": "r1", "operation": "create", "entityType": "clients", "data": {"name": "locked"}},
    {"id": "r2", "operation": "create", "entityType": "clients", "data": {"name": "serial"}},
    {"id": "r3", "operation": "create", "entityType": "clients", "data": {"name": "steady"}}]}') -> 'results') AS x;
SELECT operation_id, outcome FROM push_errors.sync_ledger WHERE operation_id LIKE 'r_' ORDER BY 1;
SET push_errors.flaky = 'off';
SELECT x ->> 'operationId' AS op, x ->> 'success' AS ok, coalesce(x ->> 'replayed', 'false') AS replayed
  FROM jsonb_array_elements(smartsync.sync_push('{"operations": [
    {"id": "r1", "operation": "create", "entityType": "clients", "data": {"name": "locked"}},
    {"id": "r2", "operation": "create", "entityType": "clients", "data": {"name": "serial"}},
    {"id": "r3", "operation": "create", "entityType": "clients", "data": {"name": "steady"}}]}') -> 'results') AS x;
DROP TRIGGER flaky ON push_errors.clients;
DROP FUNCTION push_errors.flaky();

-- All or nothing: with "atomic": true one failure rolls the whole batch back;
-- nothing is applied or recorded, and the response says which operation failed.
SELECT count(*) AS clients_before FROM push_errors.clients \gset
WITH p AS (SELECT smartsync.sync_push('{"atomic": true, "operations": [
    {"id": "a1", "operation": "create", "entityType": "clients", "data": {"name": "Atom 1"}},
    {"id": "a2", "operation": "create", "entityType": "clients", "data": {"email": "no name"}},
    {"id": "a3", "operation": "create", "entityType": "clients", "data": {"name": "Atom 3"}}]}') AS r)
SELECT p.r ->> 'success' AS success, p.r ->> 'atomic' AS atomic, x ->> 'operationId' AS op,
       x ->> 'code' AS code, x ->> 'retryable' AS retryable,
       CASE WHEN x ->> 'code' = 'SS427' THEN x ->> 'detail' END AS detail
  FROM p, jsonb_array_elements(p.r -> 'results') AS x;
SELECT count(*) - :clients_before AS new_clients FROM push_errors.clients;
SELECT count(*) AS recorded FROM push_errors.sync_ledger WHERE operation_id LIKE 'a_';
-- fixed, the same batch applies whole
SELECT x ->> 'operationId' AS op, x ->> 'success' AS ok
  FROM jsonb_array_elements(smartsync.sync_push('{"atomic": true, "operations": [
    {"id": "a1", "operation": "create", "entityType": "clients", "data": {"name": "Atom 1"}},
    {"id": "a2", "operation": "create", "entityType": "clients", "data": {"name": "Atom 2"}},
    {"id": "a3", "operation": "create", "entityType": "clients", "data": {"name": "Atom 3"}}]}') -> 'results') AS x;
SELECT count(*) - :clients_before AS new_clients FROM push_errors.clients;

RESET smartsync.tenant_id;
RESET smartsync.practice_id;
RESET smartsync.user_id;
RESET smartsync.client_id;
RESET smartsync.permissions;
