-- smartsync.row_hash and smartsync.canonical_json: RFC 8785 (JCS) canonical
-- JSON and its SHA-256.  A browser reproduces every hash here with
-- crypto.subtle.digest('SHA-256', utf8(canonicalize(row))) after dropping the
-- metadata fields version, updatedAt and updated_at.
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

-- The README's test vectors: input, canonical form, hash (computed in Node.js
-- with the canonicalize algorithm and crypto.createHash('sha256')).
CREATE TEMP TABLE vectors (n int, input text, canonical text, hash text);
INSERT INTO vectors VALUES
(1, '{}', '{}', '44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a'),
(2, '{"b": 2, "a": 1}', '{"a":1,"b":2}', '43258cff783fe7036d8a43033f830adfc60ec037382473548ac742b888292777'),
(3, '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001], "string": "\u20ac$\u000F\u000aA''\u0042\u0022\u005c\\\"\/", "literals": [null, true, false]}',
    '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA''B\"\\\\\"/"}',
    '2d5e01a318d0f0879ab568c4be289c8b1f64ef8921a53c6277d5e069978baacb'),
(4, '{"n": [1, 1.0, 1e0, -0, 0.1, 100, 1e21, 1e-7, 0.000001, 123456789012345678901234, 9007199254740993, 65296757383139420]}',
    '{"n":[1,1,1,0,0.1,100,1e+21,1e-7,0.000001,1.2345678901234569e+23,9007199254740992,65296757383139420]}',
    '812f724801bc56df61c77b9e040dc553a841b63bd427ee3b117c8ec9ecadbe5f'),
(5, '{"\u20ac": 1, "\r": 2, "10": 3, "1": 4, "\ud83d\ude00": 5, "\ufb33": 6, "a\tb": 7}',
    '{"\r":2,"1":4,"10":3,"a\tb":7,"€":1,"😀":5,"' || chr(x'fb33'::int) || '":6}',
    '7b5fd389c7593a98886f3a6c4bffbe24e8b58c6fd6fb5b2475d45055aa2af18f'),
(6, '{"id": 7, "name": "Rex", "tags": ["a", {"z": null, "y": false}], "version": 3, "updatedAt": "2024-11-10T12:00:00Z"}',
    '{"id":7,"name":"Rex","tags":["a",{"y":false,"z":null}]}',
    'add4c5067490b8df0fafc416f659581c4e91b4d212d8580d17ad86da1243dec6');

-- every vector: the canonical form and the hash are exactly the README's
SELECT n, smartsync.canonical_json(input::jsonb) AS canonical,
       smartsync.canonical_json(input::jsonb) = canonical AS canonical_ok,
       smartsync.row_hash(input::jsonb) = hash AS hash_ok
  FROM vectors ORDER BY n;

-- the hash is the SHA-256 of the UTF-8 canonical text, in lower-case hex
SELECT n, smartsync.row_hash(input::jsonb) AS row_hash,
       smartsync.row_hash(input::jsonb) = encode(sha256(convert_to(canonical, 'UTF8')), 'hex') AS is_sha256_of_canonical
  FROM vectors ORDER BY n;

-- key order and whitespace do not matter
SELECT smartsync.row_hash('{"a": 1, "b": {"d": [1, 2], "c": "x"}}')
     = smartsync.row_hash('{"b":{"c":"x","d":[1,2]},"a":1}') AS key_order_ignored;

-- array order does matter
SELECT smartsync.row_hash('{"a": [1, 2]}') = smartsync.row_hash('{"a": [2, 1]}') AS array_order_ignored;

-- numbers are written as JavaScript writes the nearest double
SELECT x AS input, smartsync.canonical_json(x::jsonb) AS canonical
  FROM (VALUES ('1'), ('1.0'), ('1e0'), ('-0'), ('-0.0'), ('1.50'), ('-12.5e-1'), ('100'),
               ('1e20'), ('1e21'), ('123e-20'), ('0.0000001'), ('0.000001'), ('1e-400'),
               ('9007199254740993'), ('3.141592653589793238462643383279'), ('-1.7976931348623157e308'),
               ('5e-324'), ('999999999999999999999'), ('1000000000000000000000')) v(x);
SELECT smartsync.row_hash('{"n": 1}') = smartsync.row_hash('{"n": 1.0}') AS one_is_one_point_zero,
       smartsync.row_hash('{"n": 1}') = smartsync.row_hash('{"n": 1e0}') AS one_is_1e0,
       smartsync.row_hash('{"n": -0}') = smartsync.row_hash('{"n": 0}') AS minus_zero_is_zero;

-- numbers beyond double range cannot be canonicalized (RFC 8785 needs IEEE 754 doubles)
SELECT pg_temp.try($$SELECT smartsync.row_hash('{"n": 1e400}')$$) AS huge;
SELECT pg_temp.try($$SELECT smartsync.row_hash('{"n": [-2e308]}')$$) AS huge_negative;

-- strings: only ", \ and control characters are escaped; \b \f \n \r \t by name, others as \u00xx
SELECT smartsync.canonical_json('["\"q\"", "back\\slash", "\b\f\n\r\t", "\u0001\u001f", "/", "é😀"]'::jsonb) AS strings;
-- long strings (over 64 kB) too
SELECT smartsync.canonical_json(to_jsonb(repeat('a"é' || chr(10), 50000))) = '"' || repeat('a\"é\n', 50000) || '"' AS long_string_ok;
-- DEL and U+2028 are written as they are
SELECT smartsync.canonical_json('["\u007f", "\u2028"]') = '["' || chr(127) || '","' || chr(8232) || '"]' AS written_raw;

-- keys sort by UTF-16 code units: U+FB33 (BMP, above the surrogates) after U+1F600
SELECT smartsync.canonical_json('{"\ufb33": 1, "\ud83d\ude00": 2, "\u00e9": 3, "z": 4, "Z": 5, "": 6, "aa": 7, "a": 8}'::jsonb) AS key_order;

-- a null value is not an absent key
SELECT smartsync.row_hash('{"a": null}') = smartsync.row_hash('{}') AS null_is_absent;

-- empty containers and deep nesting
SELECT smartsync.canonical_json('{"o": {}, "a": [], "n": [[[]]], "e": {"": {"": ""}}}') AS empties;
SELECT smartsync.canonical_json((repeat('{"a":[', 1000) || '1' || repeat(']}', 1000))::jsonb)
     = repeat('{"a":[', 1000) || '1' || repeat(']}', 1000) AS deep_nesting_ok;

-- metadata fields: dropped by default (top level only), kept with '{}', replaced by a list
SELECT smartsync.canonical_json('{"id": 1, "version": 2, "updatedAt": "x", "updated_at": "y", "meta": {"version": 9}}') AS default_exclusion;
SELECT smartsync.canonical_json('{"id": 1, "version": 2, "updatedAt": "x", "updated_at": "y"}', '{}') AS exclude_nothing;
SELECT smartsync.canonical_json('{"id": 1, "version": 2, "notes": "n"}', '{notes}') AS exclude_notes_only;
SELECT smartsync.canonical_json('{"id": 1, "notes": "n"}', ARRAY[NULL, 'notes']) AS null_elements_ignored;
SELECT smartsync.row_hash('{"id": 1, "name": "a", "version": 1, "updated_at": "2024-01-01"}')
     = smartsync.row_hash('{"id": 1, "name": "a", "version": 7, "updated_at": "2025-06-30"}') AS metadata_ignored,
       smartsync.row_hash('{"id": 1, "version": 1}', '{}')
     = smartsync.row_hash('{"id": 1, "version": 7}', '{}') AS metadata_compared_with_empty_exclude;

-- canonical_json takes any JSON; row_hash takes only an object (SS301)
SELECT smartsync.canonical_json('[3, {"b": 1, "a": 2}]') AS array_root, smartsync.canonical_json('"s"') AS string_root,
       smartsync.canonical_json('1.0') AS number_root, smartsync.canonical_json('null') AS null_root;
SELECT pg_temp.try($$SELECT smartsync.row_hash('[1, 2]')$$) AS array_input;
SELECT pg_temp.try($$SELECT smartsync.row_hash('"text"')$$) AS string_input;
SELECT pg_temp.try($$SELECT smartsync.row_hash('null')$$) AS json_null_input;

-- SQL NULL in, NULL out
SELECT smartsync.row_hash(NULL) IS NULL AS null_hash, smartsync.canonical_json(NULL) IS NULL AS null_canonical;
