-- smartsync.detect_conflict(local_data, server_data, local_ts, operation,
-- field_classes, entity_type): the conflict between a client's change and
-- the server row, or NULL.  The rules, in order:
--   no server row:   create -> none; update -> missing_entity (critical); delete -> missing_entity (low)
--   tombstone ("_deleted": true): update -> deletion (critical); create, delete -> none
--   create of a row the server has: data conflict when a field the client sends differs
--   has the server changed since the client saw it?
--     both sides carry "version": they differ           -> version
--     else local_ts and the server's updatedAt/updated_at: server later -> timestamp
--     else unknown                                       -> data
--   update: a conflict only when a field the client sends differs (partial updates
--     compare only the keys they carry; metadata fields never count)
--   delete: deletion (critical) when the server changed since; with no way to tell,
--     when the client's image differs from the server's
-- Severity: the highest class of the affected fields (metadata low, normal medium,
-- important high, critical critical); autoResolvable when low.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS smartsync;
RESET client_min_messages;
SET timezone = 'UTC';

-- Runs a statement and reports SQLSTATE, message and detail instead of failing.
CREATE FUNCTION pg_temp.try(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE st text; msg text; det text;
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
    RETURN st || ': ' || msg || coalesce(' / ' || nullif(det, ''), '');
END $$;

-- == missing_entity: the server has no such row ==
SELECT smartsync.detect_conflict('{"name": "Rex"}', NULL, now(), 'update') AS update_missing;
SELECT smartsync.detect_conflict('{"name": "Rex"}', NULL, now(), 'delete') AS delete_missing;
SELECT smartsync.detect_conflict(NULL, NULL, NULL, 'delete') AS delete_missing_without_data;
SELECT smartsync.detect_conflict('{"name": "Rex"}', NULL, now(), 'create') IS NULL AS create_new_row_is_fine;

-- == deletion: the server row is a tombstone ("_deleted": true, with its last image) ==
SELECT smartsync.detect_conflict('{"name": "Max", "age": 4, "version": 2}',
                                 '{"name": "Rex", "age": 4, "version": 3, "_deleted": true}',
                                 '2024-11-10 12:00+00', 'update') AS update_of_deleted_row;
SELECT smartsync.detect_conflict('{"name": "Rex", "version": 3}', '{"name": "Rex", "version": 3, "_deleted": true}',
                                 NULL, 'update') AS same_data_still_deleted;
SELECT smartsync.detect_conflict('{}', '{"name": "Rex", "_deleted": true}', now(), 'delete') IS NULL AS delete_of_deleted_row,
       smartsync.detect_conflict('{"name": "Rex"}', '{"name": "Rex", "_deleted": true}', now(), 'create') IS NULL AS create_over_tombstone,
       smartsync.detect_conflict('{"name": "Max"}', '{"name": "Rex", "_deleted": false}', NULL, 'update') AS deleted_false_is_a_live_row;

-- == deletion: the client deletes a row the server changed since ==
SELECT smartsync.detect_conflict('{"name": "Rex", "version": 2}', '{"name": "Max", "version": 3}', NULL, 'delete') AS delete_after_server_update;
SELECT smartsync.detect_conflict('{"version": 2}', '{"name": "Max", "version": 3}', NULL, 'delete') AS delete_with_version_only;
SELECT smartsync.detect_conflict('{}', '{"name": "Max", "updated_at": "2024-11-10T12:00:01Z"}', '2024-11-10 12:00+00', 'delete') AS delete_after_server_update_by_time;
SELECT smartsync.detect_conflict('{"name": "Max", "version": 3}', '{"name": "Max", "version": 3}', NULL, 'delete') IS NULL AS delete_of_current_version,
       smartsync.detect_conflict('{}', '{"name": "Max", "updated_at": "2024-11-10T11:59:59Z"}', '2024-11-10 12:00+00', 'delete') IS NULL AS delete_after_server_time;
-- no version and no times: the client's image of the row decides
SELECT smartsync.detect_conflict('{"name": "Rex"}', '{"name": "Max"}', NULL, 'delete') AS delete_of_stale_image,
       smartsync.detect_conflict('{"name": "Max"}', '{"name": "Max", "age": 4}', NULL, 'delete') IS NULL AS delete_of_current_image,
       smartsync.detect_conflict('{}', '{"name": "Max"}', NULL, 'delete') IS NULL AS delete_without_image;

-- == version: the client's base version is not the server's ==
SELECT smartsync.detect_conflict('{"name": "Max", "version": 3}', '{"name": "Rex", "age": 4, "version": 5}',
                                 '2024-11-10 12:00+00') AS version_conflict;
-- the server is newer but nothing the client sends differs: no conflict
SELECT smartsync.detect_conflict('{"name": "Rex", "version": 3}', '{"name": "Rex", "age": 5, "version": 5}',
                                 '2024-11-10 12:00+00') IS NULL AS newer_server_same_fields;
-- the same version: no conflict, whatever the times say
SELECT smartsync.detect_conflict('{"name": "Max", "version": 5}',
                                 '{"name": "Rex", "version": 5, "updatedAt": "2030-01-01T00:00:00Z"}',
                                 '2024-11-10 12:00+00') IS NULL AS same_version,
       smartsync.detect_conflict('{"name": "Max", "version": 5}', '{"name": "Rex", "version": 5.0}', NULL) IS NULL AS version_5_is_5_0;
-- a partial update compares only the fields it carries
SELECT smartsync.detect_conflict('{"age": 5, "version": 1}', '{"name": "Rex", "age": 4, "notes": "x", "version": 2}', NULL) AS partial_update;
SELECT smartsync.detect_conflict('{"age": 4, "version": 1}', '{"name": "Max", "age": 4, "notes": "x", "version": 2}', NULL) IS NULL AS partial_update_untouched_fields;

-- == timestamp: no versions; the server changed after the client's change ==
SELECT smartsync.detect_conflict('{"name": "Max", "age": 4}', '{"name": "Rex", "age": 4, "updatedAt": "2024-11-10T12:30:00Z"}',
                                 '2024-11-10 12:00+00') AS server_later;
SELECT smartsync.detect_conflict('{"name": "Max"}', '{"name": "Rex", "updatedAt": "2024-11-10T11:30:00Z"}',
                                 '2024-11-10 12:00+00') IS NULL AS server_earlier,
       smartsync.detect_conflict('{"name": "Max"}', '{"name": "Rex", "updatedAt": "2024-11-10T12:00:00Z"}',
                                 '2024-11-10 12:00+00') IS NULL AS same_instant,
       smartsync.detect_conflict('{"name": "Rex"}', '{"name": "Rex", "updatedAt": "2024-11-10T12:30:00Z"}',
                                 '2024-11-10 12:00+00') IS NULL AS server_later_same_fields;
-- updated_at (the column stamp_row keeps) works too; epoch milliseconds as well; the later of both counts
SELECT smartsync.detect_conflict('{"name": "Max"}', '{"name": "Rex", "updated_at": "2024-11-10 13:00:00+01"}',
                                 '2024-11-10 11:59:59+00') ->> 'type' AS updated_at_with_offset,
       smartsync.detect_conflict('{"name": "Max"}', '{"name": "Rex", "updatedAt": 1731240000001}',
                                 '2024-11-10 12:00+00') ->> 'type' AS epoch_ms_later,
       smartsync.detect_conflict('{"name": "Max"}', '{"name": "Rex", "updatedAt": 1731240000000}',
                                 '2024-11-10 12:00+00') IS NULL AS epoch_ms_same,
       smartsync.detect_conflict('{"name": "Max"}', '{"name": "Rex", "updatedAt": "2024-11-10T11:00:00Z", "updated_at": "2024-11-10T12:30:00Z"}',
                                 '2024-11-10 12:00+00') ->> 'type' AS later_of_both;
-- a version on one side only: the times decide
SELECT smartsync.detect_conflict('{"name": "Max", "version": 2}', '{"name": "Rex", "updated_at": "2024-11-10T12:30:00Z"}',
                                 '2024-11-10 12:00+00') ->> 'type' AS local_version_only;

-- == data: nothing tells whether the client saw the server's row ==
SELECT smartsync.detect_conflict('{"name": "Max"}', '{"name": "Rex"}', NULL) AS no_version_no_times;
SELECT smartsync.detect_conflict('{"name": "Max"}', '{"name": "Rex"}', '2024-11-10 12:00+00') AS no_server_timestamp;
SELECT smartsync.detect_conflict('{"name": "Rex"}', '{"name": "Rex", "age": 3}', NULL) IS NULL AS no_ordering_same_fields;
-- a create of a row the server already has: a conflict only when the data differs
SELECT smartsync.detect_conflict('{"name": "Max", "age": 3}', '{"name": "Rex", "age": 3, "version": 1}', now(), 'create') AS create_existing_row,
       smartsync.detect_conflict('{"name": "Rex", "age": 3}', '{"name": "Rex", "age": 3, "version": 1}', now(), 'create') IS NULL AS create_replayed;

-- == metadata differences are never a conflict ==
SELECT smartsync.detect_conflict('{"name": "Rex", "version": 1, "updatedAt": "2024-01-01T00:00:00Z"}',
                                 '{"name": "Rex", "version": 2, "updated_at": "2024-11-10T12:30:00Z"}',
                                 '2024-11-10 12:00+00') IS NULL AS metadata_only;

-- == severity from field classes ==
-- classes given: unlisted fields are normal; fields classed metadata alone are low and auto-resolvable
SELECT f AS changed, smartsync.detect_conflict(l, s, NULL, 'update',
       '{"notes": "important", "diagnosis": "critical", "lastViewedAt": "metadata", "name": "normal"}') AS conflict
  FROM (VALUES
    ('lastViewedAt',       '{"lastViewedAt": "b", "version": 1}'::jsonb, '{"lastViewedAt": "a", "version": 2}'::jsonb),
    ('name',               '{"name": "b", "version": 1}', '{"name": "a", "version": 2}'),
    ('age (unlisted)',     '{"age": 2, "version": 1}', '{"age": 1, "version": 2}'),
    ('notes',              '{"notes": "b", "version": 1}', '{"notes": "a", "version": 2}'),
    ('diagnosis',          '{"diagnosis": "b", "version": 1}', '{"diagnosis": "a", "version": 2}'),
    ('notes+lastViewedAt', '{"notes": "b", "lastViewedAt": "b", "version": 1}', '{"notes": "a", "lastViewedAt": "a", "version": 2}'),
    ('all',                '{"notes": "b", "diagnosis": "b", "age": 2, "version": 1}', '{"notes": "a", "diagnosis": "a", "age": 1, "version": 2}')
  ) v(f, l, s);
-- the registry keys classes by column: a camelCase field finds its snake_case class
SELECT smartsync.detect_conflict('{"petId": 2, "version": 1}', '{"petId": 1, "version": 2}', NULL, 'update',
                                 '{"pet_id": "critical"}') ->> 'severity' AS camel_case_field;
-- a delete against a changed row is critical whatever the classes say
SELECT smartsync.detect_conflict('{"lastViewedAt": "b", "version": 1}', '{"lastViewedAt": "a", "version": 2}', NULL, 'delete',
                                 '{"lastViewedAt": "metadata"}') ->> 'severity' AS delete_severity;

-- classes from the registry: entity_type names a registered type
CREATE SCHEMA kernel_detect_tpl;
CREATE TABLE kernel_detect_tpl.kernel_visits (id text PRIMARY KEY, pet_id int, notes text, diagnosis text,
                                              seen_at text, version bigint, updated_at timestamptz);
SELECT smartsync.register_entity_type('kernel_visits', 'kernel_detect_tpl.kernel_visits',
       field_classes => '{"notes": "important", "diagnosis": "critical", "seenAt": "metadata"}');
SELECT field_classes FROM smartsync.entity_types WHERE entity_type = 'kernel_visits';
SELECT f AS changed, smartsync.detect_conflict(l, s, NULL, 'update', NULL, 'kernel_visits') AS conflict
  FROM (VALUES
    ('seenAt',    '{"seenAt": "b", "version": 1}'::jsonb, '{"seenAt": "a", "version": 2}'::jsonb),
    ('pet_id',    '{"pet_id": 2, "version": 1}', '{"pet_id": 1, "version": 2}'),
    ('notes',     '{"notes": "b", "version": 1}', '{"notes": "a", "version": 2}'),
    ('diagnosis', '{"diagnosis": "b", "version": 1}', '{"diagnosis": "a", "version": 2}')
  ) v(f, l, s);
-- explicit field_classes win over the registry
SELECT smartsync.detect_conflict('{"diagnosis": "b", "version": 1}', '{"diagnosis": "a", "version": 2}', NULL, 'update',
                                 '{}', 'kernel_visits') ->> 'severity' AS explicit_classes_win;
SELECT pg_temp.try($$SELECT smartsync.detect_conflict('{"a": 1, "version": 1}', '{"a": 2, "version": 2}', NULL, 'update', NULL, 'no_such_type')$$) AS unknown_entity_type;
SELECT smartsync.unregister_entity_type('kernel_visits');
DROP SCHEMA kernel_detect_tpl CASCADE;

-- == errors ==
SELECT pg_temp.try($$SELECT smartsync.detect_conflict('{}', '{}', now(), 'upsert')$$) AS bad_operation;
SELECT pg_temp.try($$SELECT smartsync.detect_conflict('{}', '{}', now(), NULL)$$) AS null_operation;
SELECT pg_temp.try($$SELECT smartsync.detect_conflict('{}', '{}', now(), 'update', '{"notes": "urgent"}')$$) AS bad_field_class;
SELECT pg_temp.try($$SELECT smartsync.detect_conflict('{}', '{}', now(), 'update', '{"notes": 3}')$$) AS field_class_not_a_string;
SELECT pg_temp.try($$SELECT smartsync.detect_conflict('{}', '{}', now(), 'update', '["notes"]')$$) AS field_classes_not_an_object;
SELECT pg_temp.try($$SELECT smartsync.detect_conflict('[]', '{}', now())$$) AS local_not_an_object;
SELECT pg_temp.try($$SELECT smartsync.detect_conflict('{}', '"row"', now())$$) AS server_not_an_object;
SELECT pg_temp.try($$SELECT smartsync.detect_conflict('{"a": 1}', '{"a": 2, "updatedAt": "yesterday-ish"}', now())$$) AS bad_server_timestamp;
SELECT pg_temp.try($$SELECT smartsync.detect_conflict('{"a": 1}', '{"a": 2, "updated_at": true}', now())$$) AS timestamp_of_wrong_type;
-- One strict parser of times, the same as push's and pull's: epoch milliseconds
-- (an integer) or ISO 8601 with date, time and offset.  PostgreSQL's special
-- words, free-form dates and times without an offset are refused (SS305).
SELECT w AS server_updated_at, pg_temp.try(format($$SELECT smartsync.detect_conflict('{"a": 1}', %L, now())$$,
                                                 jsonb_build_object('a', 2, 'updatedAt', w))) AS answer
  FROM unnest(ARRAY['now', 'today', 'tomorrow', 'yesterday', 'epoch', 'infinity', '-infinity', 'allballs',
                    'Jan 1 2024', '2024-01-01', '2024-01-01T12:00:00', '+1731200000000', '1900-01-01T00:00:00Z']) w;
SELECT pg_temp.try($$SELECT smartsync.detect_conflict('{"a": 1}', '{"a": 2, "updatedAt": 1731240000000.5}', now())$$) AS fraction_of_a_millisecond;
SELECT smartsync.detect_conflict('{"a": 1}', '{"a": 2, "updatedAt": "2024-11-10T12:00:00.000001+00:00"}', '2024-11-10 12:00+00') ->> 'type' AS iso_microseconds,
       smartsync.detect_conflict('{"a": 1}', '{"a": 2, "updatedAt": "1731240000001"}', '2024-11-10 12:00+00') ->> 'type' AS epoch_ms_string;
