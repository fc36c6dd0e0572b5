-- smartsync.merge(local, server): the spec's attemptMerge.  A field equal on
-- both sides, or present on one side only, is kept; a field that differs on
-- both sides makes the merge fail (NULL).
-- smartsync.merge3(base, local, server): each field comes from the side that
-- changed it since base (removing a key is a change); the same change on both
-- sides is accepted; NULL only when both sides changed a field differently,
-- and merge3_conflicts names those fields.
-- In both, the metadata fields version, updatedAt and updated_at are the
-- server's (the client's when the server has none): they never conflict.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS smartsync;
RESET client_min_messages;

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

-- == merge (two-way) ==
-- fields on one side only are combined, equal fields kept
SELECT smartsync.merge('{"name": "Rex", "age": 4}', '{"name": "Rex", "weight": 12}') AS combined;
-- equal by value: numbers as numbers, nested objects regardless of key order (the client's spelling is kept)
SELECT smartsync.merge('{"n": 1.0, "o": {"b": [1, 2], "a": null}}', '{"n": 1, "o": {"a": null, "b": [1, 2.0]}}') AS equal_values;
-- a field changed on both sides: no merge
SELECT smartsync.merge('{"name": "Max", "age": 4}', '{"name": "Rex", "age": 4}') IS NULL AS differs_on_both;
SELECT smartsync.merge('{"a": null}', '{"a": 0}') IS NULL AS null_vs_zero_differs,
       smartsync.merge('{"tags": [1, 2]}', '{"tags": [2, 1]}') IS NULL AS array_order_differs;
-- null is a value that merges like any other; absent keys come from the other side
SELECT smartsync.merge('{"a": null}', '{"b": null}') AS nulls_kept;
-- metadata: the server's stamp wins, the client's when the server has none
SELECT smartsync.merge('{"name": "Rex", "version": 3, "updatedAt": "2024-01-01T00:00:00Z"}',
                       '{"name": "Rex", "version": 5, "updated_at": "2024-11-10T12:00:00Z"}') AS metadata;
-- empty objects
SELECT smartsync.merge('{}', '{}') AS both_empty, smartsync.merge('{}', '{"a": 1}') AS local_empty,
       smartsync.merge('{"a": 1}', '{}') AS server_empty;
-- unicode keys
SELECT smartsync.merge('{"été": 1, "😀": "x"}', '{"😀": "x", "na\"me": 2}') AS unicode_keys;

-- == merge3 (three-way) ==
-- each side changed a different field: both changes kept
SELECT smartsync.merge3('{"name": "Rex", "age": 3, "weight": 10}',
                        '{"name": "Max", "age": 3, "weight": 10}',
                        '{"name": "Rex", "age": 4, "weight": 10}') AS disjoint_changes;
-- both changed a field to the same value: accepted
SELECT smartsync.merge3('{"age": 3}', '{"age": 4}', '{"age": 4.0}') AS same_change;
-- both changed a field differently: a true conflict
SELECT smartsync.merge3('{"name": "Rex", "age": 3}', '{"name": "Max", "age": 4}', '{"name": "Bob", "age": 4}') IS NULL AS conflict,
       smartsync.merge3_conflicts('{"name": "Rex", "age": 3}', '{"name": "Max", "age": 4}', '{"name": "Bob", "age": 4}') AS conflicting_fields;
SELECT smartsync.merge3_conflicts('{"b": 1, "a": 1, "c": 1}', '{"b": 2, "a": 2, "c": 2}', '{"b": 3, "a": 3, "c": 2}') AS sorted_conflicts;
SELECT smartsync.merge3_conflicts('{"name": "Rex"}', '{"name": "Max"}', '{"name": "Rex"}') AS no_conflicts;
-- a key added on one side
SELECT smartsync.merge3('{"a": 1}', '{"a": 1, "b": 2}', '{"a": 1}') AS added_locally,
       smartsync.merge3('{"a": 1}', '{"a": 1}', '{"a": 1, "c": 3}') AS added_on_server;
-- the same key added on both sides: equal values merge, different ones conflict
SELECT smartsync.merge3('{}', '{"x": 1}', '{"x": 1}') AS added_same,
       smartsync.merge3_conflicts('{}', '{"x": 1}', '{"x": 2}') AS added_differently;
-- a key removed on one side (and unchanged on the other): removed
SELECT smartsync.merge3('{"a": 1, "b": 2}', '{"a": 1}', '{"a": 1, "b": 2}') AS removed_locally,
       smartsync.merge3('{"a": 1, "b": 2}', '{"a": 1, "b": 2}', '{"a": 1}') AS removed_on_server,
       smartsync.merge3('{"a": 1, "b": 2}', '{"a": 1}', '{"a": 1}') AS removed_on_both;
-- removed on one side, changed on the other: a conflict
SELECT smartsync.merge3_conflicts('{"a": 1, "b": 2}', '{"a": 1}', '{"a": 1, "b": 3}') AS removed_vs_changed;
-- set to null is a change, not a removal
SELECT smartsync.merge3('{"a": 1, "b": 2}', '{"a": 1, "b": null}', '{"a": 5, "b": 2}') AS set_to_null,
       smartsync.merge3_conflicts('{"b": 2}', '{"b": null}', '{}') AS null_vs_removed;
-- nested values are compared whole: changes inside one field on both sides conflict
SELECT smartsync.merge3_conflicts('{"addr": {"city": "Oslo", "zip": "0150"}}',
                                  '{"addr": {"city": "Bergen", "zip": "0150"}}',
                                  '{"addr": {"city": "Oslo", "zip": "5003"}}') AS nested_both_changed;
SELECT smartsync.merge3('{"addr": {"city": "Oslo"}, "tags": [1]}',
                        '{"addr": {"city": "Oslo"}, "tags": [1, 2]}',
                        '{"addr": {"city": "Bergen"}, "tags": [1.0]}') AS nested_one_side_each;
-- metadata: always the server's stamp (the client's when the server has none), never a conflict
SELECT smartsync.merge3('{"name": "Rex", "version": 2, "updated_at": "2024-01-01"}',
                        '{"name": "Max", "version": 2, "updated_at": "2024-02-01"}',
                        '{"name": "Rex", "version": 3, "updated_at": "2024-03-01"}') AS metadata,
       smartsync.merge3('{"version": 1}', '{"version": 2}', '{}') AS client_stamp_when_server_has_none,
       smartsync.merge3_conflicts('{"version": 1}', '{"version": 2}', '{"version": 3}') AS metadata_never_conflicts;
-- nothing changed anywhere; everything empty
SELECT smartsync.merge3('{"a": 1}', '{"a": 1}', '{"a": 1}') AS unchanged, smartsync.merge3('{}', '{}', '{}') AS all_empty;
-- a partial update must be completed from base first: base || patch
SELECT smartsync.merge3(b, b || '{"age": 4}', s) AS partial_update
  FROM (SELECT '{"name": "Rex", "age": 3}'::jsonb AS b, '{"name": "Max", "age": 3}'::jsonb AS s) x;

-- == errors and NULLs ==
SELECT pg_temp.try($$SELECT smartsync.merge('[1]', '{}')$$) AS merge_local_array;
SELECT pg_temp.try($$SELECT smartsync.merge('{}', 'true')$$) AS merge_server_boolean;
SELECT pg_temp.try($$SELECT smartsync.merge3('"base"', '{}', '{}')$$) AS merge3_base_string;
SELECT pg_temp.try($$SELECT smartsync.merge3_conflicts('{}', '{}', '[]')$$) AS conflicts_server_array;
SELECT smartsync.merge(NULL, '{}') IS NULL AS merge_strict, smartsync.merge3('{}', NULL, '{}') IS NULL AS merge3_strict,
       smartsync.merge3_conflicts(NULL, '{}', '{}') IS NULL AS merge3_conflicts_strict;
