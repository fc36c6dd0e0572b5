-- The pull (src/pull.c): smartsync.sync_pull() and change-log retention.

-- The secret that signs pull cursors (HMAC-SHA256).  One row, made at CREATE
-- EXTENSION from gen_random_uuid() (pg_strong_random) randomness; pg_dump keeps
-- it.  Only the extension's C code reads it: nobody else is granted access.
CREATE TABLE smartsync.pull_secret (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    secret     bytea NOT NULL CHECK (octet_length(secret) >= 32),
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE smartsync.pull_secret IS 'the per-database secret that signs sync_pull cursors; replacing it invalidates every cursor (clients get SS502 and pull again without one)';
INSERT INTO smartsync.pull_secret (secret)
SELECT decode(replace(gen_random_uuid()::text || gen_random_uuid()::text
                      || gen_random_uuid()::text, '-', ''), 'hex');
SELECT pg_catalog.pg_extension_config_dump('smartsync.pull_secret', '');
REVOKE ALL ON smartsync.pull_secret FROM PUBLIC;

CREATE FUNCTION smartsync.sync_pull(
    p_since        text DEFAULT NULL,
    p_cursor       text DEFAULT NULL,
    p_entity_types text DEFAULT NULL,
    p_practice_id  text DEFAULT NULL,
    p_limit        integer DEFAULT NULL)
RETURNS jsonb
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'smartsync_sync_pull';
COMMENT ON FUNCTION smartsync.sync_pull(text, text, text, text, integer) IS
'GET /api/sync/pull: one page of changes for the request context''s tenant, {success, timestamp, changes[{entityType, operation, id, data, updatedAt, version}], hasMore, cursor, full}; send back cursor for an exact next page; without a cursor the first pull lists the live rows; p_since (epoch milliseconds or ISO 8601 with offset) reads changes at or after it, and timestamp is a safe watermark to send back as p_since';

CREATE FUNCTION smartsync.prune_changes(p_tenant_id text, p_older_than interval)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_schema name;
    v_cutoff timestamptz;
    v_count  bigint;
    v_max    xid8;
BEGIN
    IF p_older_than IS NULL OR p_older_than < interval '0' THEN
        PERFORM smartsync._raise('SS509', format('invalid retention %L', p_older_than),
            'The retention is a non-negative interval: changes older than now() minus it are pruned.');
    END IF;
    SELECT t.schema_name INTO v_schema FROM smartsync.tenants t WHERE t.tenant_id = p_tenant_id;
    IF v_schema IS NULL THEN
        PERFORM smartsync._raise('SS203', format('tenant "%s" is not provisioned', p_tenant_id), NULL,
            'Provision it with smartsync.provision_tenant().');
    END IF;
    BEGIN
        v_cutoff := now() - p_older_than;
    EXCEPTION WHEN datetime_field_overflow OR interval_field_overflow THEN
        PERFORM smartsync._raise('SS509', 'invalid retention: out of range',
            'The retention is a non-negative interval: changes older than now() minus it are pruned.');
    END;
    EXECUTE format('WITH d AS (DELETE FROM %I.sync_changes WHERE changed_at < $1 RETURNING xid)
                    SELECT count(*), max(xid) FROM d', v_schema)
       INTO v_count, v_max USING v_cutoff;
    IF v_count > 0 THEN
        -- pruned_at from excluded (its default, now()): Citus takes only immutable functions in DO UPDATE
        EXECUTE format('INSERT INTO %1$I.sync_pull_horizon AS h (max_pruned_xid, pruned_before)
                        VALUES ($1, $2)
                        ON CONFLICT (singleton) DO UPDATE
                           SET max_pruned_xid = greatest(h.max_pruned_xid, excluded.max_pruned_xid),
                               pruned_before = greatest(h.pruned_before, excluded.pruned_before),
                               pruned_at = excluded.pruned_at', v_schema)
          USING v_max, v_cutoff;
    END IF;
    RETURN v_count;
END
$$;
COMMENT ON FUNCTION smartsync.prune_changes(text, interval) IS
'delete a tenant''s change-log rows older than now() minus the interval and record the retention horizon; a client whose cursor predates it gets SS505 (must refetch); returns the number of rows deleted';
REVOKE ALL ON FUNCTION smartsync.prune_changes(text, interval) FROM PUBLIC;
