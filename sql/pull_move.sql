-- A row moved to another practice: the old practice's devices receive it as a
-- delete (a tombstone with the row as they knew it), the new practice's as a
-- create, in cursor pulls, in pulls by time and in listings.  A context
-- without a practice sees the row stay.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS smartsync;
RESET client_min_messages;
CREATE FUNCTION pg_temp.show(r jsonb) RETURNS text LANGUAGE sql AS $$
    SELECT format('hasMore=%s full=%s: %s', r->'hasMore', r->'full',
                  coalesce(string_agg(format('%s %s %s %s@%s v%s', c->>'entityType', c->>'operation', c->'id',
                                             c->'data'->>'name', c->'data'->>'practice_id', c->>'version'),
                                      ', ' ORDER BY n), '-'))
      FROM jsonb_array_elements(r->'changes') WITH ORDINALITY AS x(c, n)
$$;

CREATE SCHEMA pm_tpl;
CREATE TABLE pm_tpl.pm_owners (id int PRIMARY KEY, practice_id int NOT NULL, name text NOT NULL);
CREATE TABLE pm_tpl.pm_pets (id int PRIMARY KEY, practice_id int NOT NULL, owner_id int REFERENCES pm_tpl.pm_owners (id),
                             name text NOT NULL);
SELECT smartsync.register_entity_type('pm_owners', 'pm_tpl.pm_owners', practice_column => 'practice_id');
SELECT smartsync.register_entity_type('pm_pets', 'pm_tpl.pm_pets', practice_column => 'practice_id',
                                      reference_fields => '{"ownerId": "pm_owners"}');
SET client_min_messages = warning;
SELECT smartsync.provision_tenant('pm');
RESET client_min_messages;
INSERT INTO tenant_pm.pm_owners VALUES (1, 1, 'Ann'), (2, 2, 'Bob');
INSERT INTO tenant_pm.pm_pets VALUES (10, 1, 1, 'Rex'), (11, 1, 1, 'Tom'), (20, 2, 2, 'Kit');

-- Three devices: one of practice 1, one of practice 2, and a back-office
-- context of the whole tenant (no practice); each takes its first sync.
SET smartsync.tenant_id = 'pm';
SET smartsync.practice_id = '1';
SELECT smartsync.sync_pull() AS r \gset
SELECT pg_temp.show(:'r'), :'r'::jsonb->>'cursor' AS c1 \gset
SELECT :'show' AS practice_1;
SET smartsync.practice_id = '2';
SELECT smartsync.sync_pull() AS r \gset
SELECT pg_temp.show(:'r'), :'r'::jsonb->>'cursor' AS c2 \gset
SELECT :'show' AS practice_2;
RESET smartsync.practice_id;
SELECT smartsync.sync_pull() AS r \gset
SELECT :'r'::jsonb->>'cursor' AS c0 \gset
SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS t0 \gset

-- Rex moves to practice 2 (renamed on the way); Tom is only renamed.
UPDATE tenant_pm.pm_pets SET practice_id = 2, name = 'Rex at 2' WHERE id = 10;
UPDATE tenant_pm.pm_pets SET name = 'Tom B' WHERE id = 11;

-- Cursor pulls: practice 1 loses Rex (its last image there), practice 2
-- gains it as a create, the back office sees one update of the row.
SET smartsync.practice_id = '1';
SELECT pg_temp.show(smartsync.sync_pull(p_cursor => :'c1')) AS practice_1;
SET smartsync.practice_id = '2';
SELECT pg_temp.show(smartsync.sync_pull(p_cursor => :'c2')) AS practice_2;
RESET smartsync.practice_id;
SELECT pg_temp.show(smartsync.sync_pull(p_cursor => :'c0')) AS no_practice;

-- Pulls by time (the spec's lastSyncTimestamp) see the same.
SET smartsync.practice_id = '1';
SELECT pg_temp.show(smartsync.sync_pull(:'t0')) AS practice_1_since;
SET smartsync.practice_id = '2';
SELECT pg_temp.show(smartsync.sync_pull(:'t0')) AS practice_2_since;

-- Listings (a first sync) show each row in the practice it is in now.
SET smartsync.practice_id = '1';
SELECT pg_temp.show(smartsync.sync_pull()) AS practice_1_listing;
SET smartsync.practice_id = '2';
SELECT pg_temp.show(smartsync.sync_pull()) AS practice_2_listing;

-- Changes after the move reach only the practice the row is in; moving it
-- back is a create for practice 1 and a delete for practice 2.
SET smartsync.practice_id = '1';
SELECT smartsync.sync_pull() ->> 'cursor' AS c1 \gset
SET smartsync.practice_id = '2';
SELECT smartsync.sync_pull() ->> 'cursor' AS c2 \gset
UPDATE tenant_pm.pm_pets SET name = 'Rex at 2, fed' WHERE id = 10;
SET smartsync.practice_id = '1';
SELECT pg_temp.show(smartsync.sync_pull(p_cursor => :'c1')) AS practice_1;
SET smartsync.practice_id = '2';
SELECT pg_temp.show(smartsync.sync_pull(p_cursor => :'c2')) AS practice_2;
UPDATE tenant_pm.pm_pets SET practice_id = 1 WHERE id = 10;
SET smartsync.practice_id = '1';
SELECT pg_temp.show(smartsync.sync_pull(p_cursor => :'c1')) AS practice_1;
SET smartsync.practice_id = '2';
SELECT pg_temp.show(smartsync.sync_pull(p_cursor => :'c2')) AS practice_2;

-- A row created and moved away before practice 1's device pulled arrives
-- there only as a delete (the device never had it: nothing to remove).
SET smartsync.practice_id = '1';
SELECT smartsync.sync_pull() ->> 'cursor' AS c1 \gset
INSERT INTO tenant_pm.pm_pets VALUES (12, 1, 1, 'Pip');
UPDATE tenant_pm.pm_pets SET practice_id = 2 WHERE id = 12;
SELECT pg_temp.show(smartsync.sync_pull(p_cursor => :'c1')) AS practice_1;

-- Several rows moved by one statement, parents and children: practice 2's
-- device gets creates parents first, practice 1's deletes children first.
SET smartsync.practice_id = '2';
SELECT smartsync.sync_pull() ->> 'cursor' AS c2 \gset
SET smartsync.practice_id = '1';
SELECT smartsync.sync_pull() ->> 'cursor' AS c1 \gset
BEGIN;
UPDATE tenant_pm.pm_owners SET practice_id = 2 WHERE id = 1;
UPDATE tenant_pm.pm_pets SET practice_id = 2 WHERE owner_id = 1;
COMMIT;
SELECT pg_temp.show(smartsync.sync_pull(p_cursor => :'c1')) AS practice_1;
SET smartsync.practice_id = '2';
SELECT pg_temp.show(smartsync.sync_pull(p_cursor => :'c2')) AS practice_2;

-- What the log holds for one move: a delete under the old practice (the row
-- before the move), a create under the new one, both at the new version.
SELECT entity_id, operation, practice_id, version, data->>'name' AS name
  FROM tenant_pm.sync_changes WHERE entity_type = 'pm_pets' AND entity_id = '10' ORDER BY seq;
RESET smartsync.practice_id;
RESET smartsync.tenant_id;

SET client_min_messages = warning;
SELECT smartsync.unregister_entity_type('pm_pets');
SELECT smartsync.unregister_entity_type('pm_owners');
DELETE FROM smartsync.tenants WHERE tenant_id = 'pm';
DROP SCHEMA pm_tpl, tenant_pm CASCADE;
