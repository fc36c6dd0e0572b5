-- The change signal: how a server learns that a tenant has new changes.
--   * NOTIFY (src/notify.c): one notification on the channel smartsync_changes
--     per tenant and committing transaction that wrote to its change log, when
--     the setting smartsync.notify is on (off by default: it serializes
--     committing writers) and the registry's tenants.notify is true;
--   * polling (src/poll.c): smartsync.poll_changes(), which costs writers nothing.

ALTER TABLE smartsync.tenants ADD COLUMN notify boolean NOT NULL DEFAULT true;
COMMENT ON COLUMN smartsync.tenants.notify IS
'whether a commit that wrote to the tenant''s change log is signalled on the channel smartsync_changes, when the setting smartsync.notify is on (it is off by default)';

CREATE FUNCTION smartsync._notify_registry_changed()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'smartsync_notify_registry_changed';
COMMENT ON FUNCTION smartsync._notify_registry_changed() IS
'internal: AFTER STATEMENT trigger of smartsync.tenants: every backend forgets the tenants it cached for the change signal';
REVOKE ALL ON FUNCTION smartsync._notify_registry_changed() FROM PUBLIC;
CREATE TRIGGER notify_registry_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON smartsync.tenants
    FOR EACH STATEMENT EXECUTE FUNCTION smartsync._notify_registry_changed();

CREATE FUNCTION smartsync.poll_changes(p_watermark text DEFAULT NULL, p_tenants text[] DEFAULT NULL)
RETURNS jsonb
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'smartsync_poll_changes';
COMMENT ON FUNCTION smartsync.poll_changes(text, text[]) IS
'the change signal a server polls: {"watermark", "changes": [{"tenant", "practices": [...] or null for every practice}]}, the tenants (all, or those of p_tenants) with changes committed since p_watermark (the previous result''s watermark), each reported once; without a watermark only a watermark; with the setting smartsync.poll_wait above 0 and nothing new, it waits that long for a change, looking every smartsync.poll_check_interval (so VOLATILE: it reads newer snapshots than its statement''s); reads the change logs directly (no privileges, no row-level security), so not executable by PUBLIC: setup_postgrest() grants it to authenticator';
REVOKE ALL ON FUNCTION smartsync.poll_changes(text, text[]) FROM PUBLIC;
