-- smartsync demo: a veterinary practice, told step by step.
\pset footer off
SET client_min_messages = warning;
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
SELECT seq, xid, entity_type, entity_id AS id, operation, version, practice_id AS practice,
       left((data - 'updated_at' - 'version')::text, 60) AS data
  FROM tenant_happy_paws.sync_changes ORDER BY seq;
