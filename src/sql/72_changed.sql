-- The change probe (src/changed.c): has anything changed since a pull cursor?

CREATE FUNCTION smartsync.sync_changed(
    p_cursor       text,
    p_entity_types text DEFAULT NULL,
    p_practice_id  text DEFAULT NULL)
RETURNS boolean
LANGUAGE c STABLE
SET plan_cache_mode = force_generic_plan     -- its queries' kept plans: a call plans nothing
AS 'MODULE_PATHNAME', 'smartsync_sync_changed';
COMMENT ON FUNCTION smartsync.sync_changed(text, text, text) IS
'whether sync_pull with the same cursor (and p_entity_types, p_practice_id) would deliver anything now: true when it delivers a change, when the cursor is in the middle of a listing or drain (hasMore), or without a cursor; false when it delivers nothing; exact (the pull''s snapshot logic and change-log scan, stopped at the first change), index probes only, STABLE and read-only; the pull''s errors for a bad cursor';
