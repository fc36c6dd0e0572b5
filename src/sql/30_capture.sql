-- Change capture (src/capture.c).

CREATE FUNCTION smartsync.stamp_row()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'smartsync_stamp_row';
COMMENT ON FUNCTION smartsync.stamp_row() IS
'BEFORE ROW trigger of tracked tables: version := 1 on insert, old version + 1 on update; updated_at := statement time; refuses primary-key changes; notes a row moving to another practice for capture';

CREATE FUNCTION smartsync.capture()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'smartsync_capture';
COMMENT ON FUNCTION smartsync.capture() IS
'AFTER STATEMENT trigger of tracked tables: appends the affected rows to the tenant''s change log (sync_changes)';

CREATE FUNCTION smartsync.refuse_truncate()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'smartsync_refuse_truncate';
COMMENT ON FUNCTION smartsync.refuse_truncate() IS
'BEFORE TRUNCATE trigger of tracked tables: a truncate would lose deletes, so it is refused';

CREATE FUNCTION smartsync.entity_key(entity_type text, entity_id text)
RETURNS bigint
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'smartsync_entity_key';
COMMENT ON FUNCTION smartsync.entity_key(text, text) IS
'the 64-bit key of one entity in the change log (sync_changes.entity_key, indexed with seq), the same on every server: for an id written as a decimal integer below 2^40, 23 bits of a hash of the entity type above the id (non-negative, in id order); for any other id, a hash of type and id with the top bit set (negative); lookups compare type and id as well';

CREATE FUNCTION smartsync.row_at_version(tenant_id text, entity_type text, entity_id text, version bigint)
RETURNS jsonb
LANGUAGE c STABLE STRICT
AS 'MODULE_PATHNAME', 'smartsync_row_at_version';
COMMENT ON FUNCTION smartsync.row_at_version(text, text, text, bigint) IS
'an entity''s row as it was at a version, rebuilt from the tenant''s change log (the nearest whole image and the updates after it), as push and conflict resolution read a three-way merge''s base; NULL when the log no longer holds it; not granted to PUBLIC';
REVOKE ALL ON FUNCTION smartsync.row_at_version(text, text, text, bigint) FROM PUBLIC;
