-- The request context: who is calling, read from PostgREST's JWT claims when
-- they are set, otherwise from smartsync.* settings set by a direct SQL caller.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS smartsync;
RESET client_min_messages;
-- errors are shown as SQLSTATE: message
CREATE FUNCTION pg_temp.try(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'ok';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM; END $$;

SELECT smartsync.provision_tenant('ctx-clinic');

-- No context at all: SS201.
SELECT pg_temp.try('SELECT smartsync.context()');

-- A direct SQL caller sets smartsync.* settings.
SET smartsync.tenant_id = 'ctx-clinic';
SET smartsync.practice_id = '1';
SET smartsync.user_id = '42';
SET smartsync.client_id = 'tablet-7';
SET smartsync.permissions = 'appointments:create, appointments:update,pets:read';
SELECT jsonb_pretty(smartsync.context());

-- An unknown tenant: SS203.
SET smartsync.tenant_id = 'nobody';
SELECT pg_temp.try('SELECT smartsync.context()');
RESET smartsync.tenant_id;

-- PostgREST sets request.jwt.claims (SET LOCAL) per request; the claims then
-- are the whole context: the settings above are ignored.
BEGIN;
SELECT set_config('request.jwt.claims',
  '{"role":"web_user","tenant_id":"ctx-clinic","practice_id":2,"sub":"user-9","device_id":"phone-3","permissions":["pets:read","pets:update"]}', true);
SELECT jsonb_pretty(smartsync.context());
COMMIT;

-- Permissions may also be an OAuth-style space-separated string.
BEGIN;
SELECT set_config('request.jwt.claims', '{"role":"web_user","tenant_id":"ctx-clinic","permissions":"pets:read clients:read"}', true);
SELECT smartsync.context()->'permissions' AS permissions, smartsync.context()->'userId' AS user_id;
COMMIT;

-- Anonymous PostgREST requests carry only a role: no tenant, SS201.
BEGIN;
SELECT set_config('request.jwt.claims', '{"role":"anon"}', true);
SELECT pg_temp.try('SELECT smartsync.context()');
COMMIT;

-- Malformed claims: SS202.
BEGIN;
SELECT set_config('request.jwt.claims', '{not json', true);
SELECT pg_temp.try('SELECT smartsync.context()');
SELECT set_config('request.jwt.claims', '[1, 2]', true);
SELECT pg_temp.try('SELECT smartsync.context()');
SELECT set_config('request.jwt.claims', '{"tenant_id": {"nested": true}}', true);
SELECT pg_temp.try('SELECT smartsync.context()');
SELECT set_config('request.jwt.claims', '{"tenant_id": ""}', true);
SELECT pg_temp.try('SELECT smartsync.context()');
SELECT set_config('request.jwt.claims', '{"tenant_id": "ctx-clinic", "permissions": [1, 2]}', true);
SELECT pg_temp.try('SELECT smartsync.context()');
SELECT set_config('request.jwt.claims', '{"tenant_id": "ctx-clinic", "permissions": {"a": 1}}', true);
SELECT pg_temp.try('SELECT smartsync.context()');
-- a client id claim obeys the rules of a push's clientId: 1 to 255 characters,
-- no control characters
SELECT set_config('request.jwt.claims', '{"tenant_id": "ctx-clinic", "client_id": "tab\u0001let"}', true);
SELECT pg_temp.try('SELECT smartsync.context()');
SELECT set_config('request.jwt.claims', json_build_object('tenant_id', 'ctx-clinic', 'client_id', repeat('d', 256))::text, true);
SELECT pg_temp.try('SELECT smartsync.context()');
COMMIT;
-- ... and so does the setting
SET smartsync.tenant_id = 'ctx-clinic';
SET smartsync.client_id = 'tab
let';
SELECT pg_temp.try('SELECT smartsync.context()');
RESET smartsync.client_id;

-- A practice is one practice whatever its spelling: 1, "1", 1.0 and 1e0 are "1",
-- in the context and in row-level security alike.
BEGIN;
SELECT set_config('request.jwt.claims', '{"role":"web_user","tenant_id":"ctx-clinic","practice_id":1.0}', true);
SELECT smartsync.context() ->> 'practiceId' AS practice, smartsync.current_practice_id() AS rls_practice;
SELECT set_config('request.jwt.claims', '{"role":"web_user","tenant_id":"ctx-clinic","practice_id":"1e0"}', true);
SELECT smartsync.context() ->> 'practiceId' AS practice, smartsync.current_practice_id() AS rls_practice;
SELECT set_config('request.jwt.claims', '{"role":"web_user","tenant_id":"ctx-clinic","practice_id":"north"}', true);
SELECT smartsync.context() ->> 'practiceId' AS practice, smartsync.current_practice_id() AS rls_practice;
COMMIT;
RESET smartsync.tenant_id;

-- Only smartsync.* names that exist are accepted.
SELECT pg_temp.try('SET smartsync.tenant = ''x''');

SET client_min_messages = warning;
DELETE FROM smartsync.tenants WHERE tenant_id = 'ctx-clinic';
DROP SCHEMA tenant_ctx_clinic CASCADE;
