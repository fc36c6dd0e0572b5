-- Dump and restore (README "Reliability").  smartsync.pull_secret is an extension
-- configuration table, so pg_dump keeps its row; but a restore runs CREATE
-- EXTENSION first, and that makes a fresh secret.  The restored row replaces it,
-- so a restored database keeps the secret that signed its clients' cursors.
CREATE FUNCTION smartsync._pull_secret_replace()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM smartsync.pull_secret;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION smartsync._pull_secret_replace() FROM PUBLIC;
CREATE TRIGGER pull_secret_replace BEFORE INSERT ON smartsync.pull_secret
    FOR EACH ROW EXECUTE FUNCTION smartsync._pull_secret_replace();
