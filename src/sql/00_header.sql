-- smartsync install script, assembled by the Makefile from src/sql/*.sql
\echo Use "CREATE EXTENSION smartsync" to load this file. \quit

-- Internal helper: raise an error with a smartsync SQLSTATE from SQL glue.
CREATE FUNCTION smartsync._raise(code text, message text, detail text DEFAULT NULL, hint text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = code, MESSAGE = message,
        DETAIL = coalesce(detail, ''), HINT = coalesce(hint, '');
END
$$;
COMMENT ON FUNCTION smartsync._raise(text, text, text, text) IS 'internal: raise an error with a smartsync SQLSTATE';
