-- smartsync.compare_fields(local_data, server_data, exclude): the sorted names
-- of the top-level fields whose values differ.  Values compare deeply (object
-- key order does not matter, array order does, numbers compare as numbers);
-- a key present on one side only differs.  By default the metadata fields
-- version, updatedAt and updated_at are not compared; pass '{}' to compare them.
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

-- equal rows: nothing differs (an empty array, not NULL)
SELECT smartsync.compare_fields('{"name": "Rex", "age": 3}', '{"age": 3, "name": "Rex"}') AS equal_rows;
SELECT smartsync.compare_fields('{}', '{}') AS empty_objects;

-- changed fields, sorted by name (bytewise: upper case before lower case, ASCII before é)
SELECT smartsync.compare_fields('{"name": "Rex", "weight": 12, "Breed": "lab", "éa": 1, "age": 3}',
                                '{"name": "Max", "weight": 13, "Breed": "pug", "éa": 2, "age": 3}') AS changed;

-- a key on one side only differs, whichever side
SELECT smartsync.compare_fields('{"a": 1, "b": 2}', '{"a": 1}') AS only_local,
       smartsync.compare_fields('{"a": 1}', '{"a": 1, "c": 3}') AS only_server;

-- null is a value: null vs absent differs, null vs null does not
SELECT smartsync.compare_fields('{"a": null}', '{}') AS null_vs_absent,
       smartsync.compare_fields('{"a": null}', '{"a": null}') AS null_vs_null,
       smartsync.compare_fields('{"a": null}', '{"a": 0}') AS null_vs_zero;

-- numbers compare as numbers; a string or boolean is never equal to a number
SELECT smartsync.compare_fields('{"a": 1, "b": 1e0, "c": 100, "d": -0, "e": 0.10}',
                                '{"a": 1.0, "b": 1.000, "c": 1e2, "d": 0, "e": 0.1}') AS numerically_equal;
SELECT smartsync.compare_fields('{"a": 1, "b": true, "c": "x"}', '{"a": "1", "b": "true", "c": ["x"]}') AS type_differs;
SELECT smartsync.compare_fields('{"big": 123456789012345678901234567890}', '{"big": 123456789012345678901234567891}') AS beyond_double_still_exact;

-- nested objects: key order is irrelevant, any inner change counts for the top-level field
SELECT smartsync.compare_fields('{"addr": {"city": "Oslo", "zip": "0150", "geo": {"lat": 59.9, "lon": 10.7}}}',
                                '{"addr": {"geo": {"lon": 10.70, "lat": 59.90}, "zip": "0150", "city": "Oslo"}}') AS nested_equal;
SELECT smartsync.compare_fields('{"addr": {"city": "Oslo", "geo": {"lat": 59.9}}, "x": 1}',
                                '{"addr": {"city": "Oslo", "geo": {"lat": 60.0}}, "x": 1}') AS nested_change;
SELECT smartsync.compare_fields('{"addr": {"city": "Oslo"}}', '{"addr": {"city": "Oslo", "zip": null}}') AS nested_extra_key;

-- arrays: order matters, elements compare deeply
SELECT smartsync.compare_fields('{"tags": [1, {"a": [2.0]}], "ids": [1, 2]}',
                                '{"tags": [1.0, {"a": [2]}], "ids": [2, 1]}') AS arrays;
SELECT smartsync.compare_fields('{"a": []}', '{"a": {}}') AS empty_array_vs_object,
       smartsync.compare_fields('{"a": [1]}', '{"a": 1}') AS array_vs_scalar;

-- unicode and escaped keys
SELECT smartsync.compare_fields('{"na\"me": 1, "\u00e9t\u00e9": "a", "😀": true, "tab\tkey": 1}',
                                '{"na\"me": 2, "été": "b", "😀": true, "tab\tkey": 1}') AS unicode_keys;

-- metadata fields: not compared by default; '{}' compares everything; a list replaces the default
SELECT smartsync.compare_fields('{"name": "a", "version": 1, "updatedAt": "x", "updated_at": "y"}',
                                '{"name": "a", "version": 2, "updatedAt": "z"}') AS default_exclusion,
       smartsync.compare_fields('{"name": "a", "version": 1, "updatedAt": "x", "updated_at": "y"}',
                                '{"name": "a", "version": 2, "updatedAt": "z"}', '{}') AS exclude_nothing,
       smartsync.compare_fields('{"name": "a", "notes": "n", "version": 1}',
                                '{"name": "b", "notes": "m", "version": 2}', '{notes}') AS exclude_notes;
SELECT smartsync.compare_fields('{"meta": {"version": 1}}', '{"meta": {"version": 2}}') AS only_top_level_excluded;

-- errors: both sides must be JSON objects (SS301)
SELECT pg_temp.try($$SELECT smartsync.compare_fields('[1]', '{}')$$) AS local_array;
SELECT pg_temp.try($$SELECT smartsync.compare_fields('{}', '42')$$) AS server_number;

-- SQL NULL in, NULL out
SELECT smartsync.compare_fields(NULL, '{}') IS NULL AS null_local, smartsync.compare_fields('{}', NULL) IS NULL AS null_server;
