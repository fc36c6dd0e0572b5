-- The change signal: how a server learns that a tenant has new changes.
-- NOTIFY at commit (smartsync.notify, tenants.notify; its delivery is shown by
-- test/isolation/specs/signal_notify.spec, since psql prints a process id with
-- every notification) and smartsync.poll_changes(), polled by a server.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS smartsync;
\set ECHO none
\o /dev/null
SELECT to_regnamespace('vet_template') IS NULL AS need_vet \gset
\if :need_vet
\i examples/vet_schema.sql
\endif
\o
\set ECHO all
SELECT smartsync.provision_tenant('signal-a'), smartsync.provision_tenant('signal-b');
RESET client_min_messages;

CREATE FUNCTION pg_temp.try(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'ok';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM; END $$;

-- The setting: off by default (NOTIFY serializes committing writers), set by a
-- superuser, per database with ALTER DATABASE ... SET; the per-tenant switch.
SELECT name, setting, context, vartype FROM pg_settings WHERE name = 'smartsync.notify';
SELECT column_name, data_type, column_default FROM information_schema.columns
 WHERE table_schema = 'smartsync' AND table_name = 'tenants' AND column_name = 'notify';
CREATE ROLE signal_user;
SET ROLE signal_user;
SELECT pg_temp.try('SET smartsync.notify = on');   -- 42501: a superuser's setting
RESET ROLE;

-- poll_changes: without a watermark, only a watermark.
SELECT smartsync.poll_changes() ->> 'watermark' AS w \gset
SELECT smartsync.poll_changes() -> 'changes' AS changes, :'w' ~ '^\d+:\d+:[\d,]*$' AS watermark_form;

-- Nothing written: nothing changed.
SELECT smartsync.poll_changes(:'w') -> 'changes' AS changes;

-- Writes to two tenants: each tenant with the practices of its rows.
INSERT INTO tenant_signal_a.clients (id, practice_id, name) VALUES (1, 1, 'Ann'), (2, 2, 'Bob');
INSERT INTO tenant_signal_b.clients (id, practice_id, name) VALUES (1, 7, 'Cy');
SELECT smartsync.poll_changes(:'w') -> 'changes' AS changes;
-- only the tenants asked about
SELECT smartsync.poll_changes(:'w', '{signal-b,nobody}') -> 'changes' AS changes;
-- the next watermark: reported once
SELECT smartsync.poll_changes(:'w') ->> 'watermark' AS w \gset
SELECT smartsync.poll_changes(:'w') -> 'changes' AS changes;

-- A change of no practice (an entity type without a practice column) reaches
-- every practice: practices null.
INSERT INTO tenant_signal_a.sync_changes (entity_type, entity_id, entity_key, operation, data, version)
VALUES ('notes', '1', smartsync.entity_key('notes', '1'), 'create', '{"id": 1}', 1);
SELECT smartsync.poll_changes(:'w') -> 'changes' AS changes;
SELECT smartsync.poll_changes(:'w') ->> 'watermark' AS w \gset

-- A rolled-back write is no change; an uncommitted one not yet (the poll's own
-- transaction is one: its write counts once it has committed).
BEGIN;
UPDATE tenant_signal_a.clients SET name = 'x' WHERE id = 1;
SELECT smartsync.poll_changes(:'w') -> 'changes' AS changes_while_uncommitted;
ROLLBACK;
SELECT smartsync.poll_changes(:'w') -> 'changes' AS changes_after_rollback;

-- Waiting, for a server that calls again as soon as it has an answer: with
-- smartsync.poll_wait above 0 (0 by default: answer at once) and nothing new, a
-- call looks again every smartsync.poll_check_interval, taking a new snapshot,
-- and answers at the first change, or with none when the wait is over; the
-- watermark of a waited answer still reports each later change once. A change
-- already there is answered at once. So it is VOLATILE.
SELECT name, setting, unit, context, min_val, max_val FROM pg_settings
 WHERE name IN ('smartsync.poll_wait', 'smartsync.poll_check_interval') ORDER BY name;
SELECT provolatile FROM pg_proc WHERE oid = 'smartsync.poll_changes(text, text[])'::regprocedure;
SET smartsync.poll_wait = '30ms';
SET smartsync.poll_check_interval = '2ms';
SELECT smartsync.poll_changes(:'w') ->> 'watermark' AS w \gset
SELECT smartsync.poll_changes(:'w') -> 'changes' AS nothing_after_waiting;
SELECT smartsync.poll_changes(:'w') ->> 'watermark' AS w \gset
INSERT INTO tenant_signal_b.clients (id, practice_id, name) VALUES (2, 8, 'Dee');
SELECT smartsync.poll_changes(:'w') -> 'changes' AS at_once;
SELECT smartsync.poll_changes(:'w') ->> 'watermark' AS w \gset
SELECT smartsync.poll_changes(:'w') -> 'changes' AS reported_once;
-- (the range's wording differs between versions: up to it)
SELECT split_part(pg_temp.try('SET smartsync.poll_check_interval = 0'), ' (', 1) AS refused;
RESET smartsync.poll_wait;
RESET smartsync.poll_check_interval;

-- Malformed watermarks: SS801.
SELECT pg_temp.try($$ SELECT smartsync.poll_changes('soon') $$);
SELECT pg_temp.try($$ SELECT smartsync.poll_changes('10:5:') $$);
SELECT pg_temp.try($$ SELECT smartsync.poll_changes('5:10:7,6') $$);
SELECT pg_temp.try($$ SELECT smartsync.poll_changes('5:10:12') $$);

-- It reads every tenant's log without privileges or row-level security, so
-- nobody but a superuser (and authenticator, after setup_postgrest()) may call it.
SELECT has_function_privilege('signal_user', 'smartsync.poll_changes(text, text[])', 'EXECUTE') AS signal_user_may_poll;

-- The registry trigger that refreshes every session's cached tenants.
SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'smartsync.tenants'::regclass AND NOT tgisinternal;

DROP ROLE signal_user;
