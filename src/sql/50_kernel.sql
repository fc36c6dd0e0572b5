-- The conflict kernel (src/hash.c, src/conflict.c, src/merge.c): canonical
-- JSON and row hashes, field comparison, conflict detection, merges.

CREATE FUNCTION smartsync.canonical_json(data jsonb, exclude text[] DEFAULT NULL)
RETURNS text
LANGUAGE c IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'smartsync_canonical_json';
COMMENT ON FUNCTION smartsync.canonical_json(jsonb, text[]) IS
'RFC 8785 (JCS) canonical JSON text of data, the text row_hash hashes; for an object, without the top-level fields in exclude (NULL: version, updatedAt, updated_at)';

CREATE FUNCTION smartsync.row_hash(data jsonb, exclude text[] DEFAULT NULL)
RETURNS text
LANGUAGE c IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'smartsync_row_hash';
COMMENT ON FUNCTION smartsync.row_hash(jsonb, text[]) IS
'hex SHA-256 of the RFC 8785 canonical JSON of a JSON object, without the top-level fields in exclude (NULL: version, updatedAt, updated_at; ''{}'': none)';

CREATE FUNCTION smartsync.compare_fields(local_data jsonb, server_data jsonb, exclude text[] DEFAULT NULL)
RETURNS text[]
LANGUAGE c IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'smartsync_compare_fields';
COMMENT ON FUNCTION smartsync.compare_fields(jsonb, jsonb, text[]) IS
'sorted names of the top-level fields whose values differ (deep equality, 1 = 1.0; a key on one side only differs), without the fields in exclude (NULL: version, updatedAt, updated_at; ''{}'': none)';

CREATE FUNCTION smartsync.detect_conflict(
    local_data    jsonb,
    server_data   jsonb,
    local_ts      timestamptz,
    operation     text DEFAULT 'update',
    field_classes jsonb DEFAULT NULL,
    entity_type   text DEFAULT NULL)
RETURNS jsonb
LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'smartsync_detect_conflict';
COMMENT ON FUNCTION smartsync.detect_conflict(jsonb, jsonb, timestamptz, text, jsonb, text) IS
'the conflict between a client''s create/update/delete and the server row (NULL: none; "_deleted": true marks a tombstone): {"type","affectedFields","severity","autoResolvable"}, type one of missing_entity, deletion, version, timestamp, data; field classes given or read from the entity type';

CREATE FUNCTION smartsync.merge(local_data jsonb, server_data jsonb)
RETURNS jsonb
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'smartsync_merge';
COMMENT ON FUNCTION smartsync.merge(jsonb, jsonb) IS
'two-way merge (the spec''s attemptMerge): fields on one side only and equal fields; NULL when a field differs on both sides; metadata fields are the server''s';

CREATE FUNCTION smartsync.merge3(base_data jsonb, local_data jsonb, server_data jsonb)
RETURNS jsonb
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'smartsync_merge3';
COMMENT ON FUNCTION smartsync.merge3(jsonb, jsonb, jsonb) IS
'three-way merge: each field from the side that changed it since base (removing a key is a change), the same change on both sides accepted; NULL when both changed a field differently; metadata fields are the server''s';

CREATE FUNCTION smartsync.merge3_conflicts(base_data jsonb, local_data jsonb, server_data jsonb)
RETURNS text[]
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'smartsync_merge3_conflicts';
COMMENT ON FUNCTION smartsync.merge3_conflicts(jsonb, jsonb, jsonb) IS
'the fields merge3 cannot merge (both sides changed them differently), sorted; empty when merge3 succeeds';
