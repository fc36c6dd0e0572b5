-- Change capture (src/capture.c).

CREATE FUNCTION smartsync.stamp_row()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'smartsync_stamp_row';
COMMENT ON FUNCTION smartsync.stamp_row() IS
'BEFORE ROW trigger of tracked tables: version := 1 on insert, old version + 1 on update; updated_at := statement time; refuses primary-key changes';

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
