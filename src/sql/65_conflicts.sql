-- The conflict store and its resolution (src/resolve.c; README section "Conflicts").

CREATE FUNCTION smartsync.resolve_conflict(conflict_id bigint, strategy text, resolved_data jsonb DEFAULT NULL)
RETURNS jsonb
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'smartsync_resolve_conflict';
COMMENT ON FUNCTION smartsync.resolve_conflict(bigint, text, jsonb) IS
'resolve one open conflict of the request context''s tenant with server-wins, client-wins, merge, last-write-wins or manual (resolved_data required); writes through the tracked table (version + 1, change log), refuses a conflict whose server row changed since; returns {"conflictId","status","strategy","winner","entityType","entityId","data","version","resolvedBy","resolvedAt"}';

CREATE FUNCTION smartsync.list_conflicts(p_entity_type text DEFAULT NULL, p_severity text DEFAULT NULL,
                                         p_min_age interval DEFAULT NULL, p_limit integer DEFAULT 100,
                                         p_after bigint DEFAULT NULL)
RETURNS jsonb
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'smartsync_list_conflicts';
COMMENT ON FUNCTION smartsync.list_conflicts(text, text, interval, integer, bigint) IS
'the open conflicts of the request context''s tenant and practice, oldest first, filtered by entity type, severity and minimum age; each with local, server and base data and the affected fields side by side: {"conflicts":[...],"total","limit","hasMore","next"}; a page reads what it holds, the next one starts after p_after (the previous page''s "next", its last conflictId); total comes from kept counts';

CREATE FUNCTION smartsync.conflict_stats()
RETURNS jsonb
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'smartsync_conflict_stats';
COMMENT ON FUNCTION smartsync.conflict_stats() IS
'counts of the request context''s conflicts: {"open","resolved","bySeverity":{low,medium,high,critical},"byEntityType":{...},"oldestOpenAt"} (open ones per severity and entity type), read from the counts triggers keep (sync_conflict_counts), not from the store';

-- The conflict policy of an entity type: its default strategy (used by push when
-- a conflict is not auto-resolved) and the severities push resolves at once.
CREATE FUNCTION smartsync.set_conflict_policy(entity_type text, default_strategy text DEFAULT NULL,
                                              auto_resolve text[] DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_bad text;
    r smartsync.entity_types;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM smartsync.entity_types e WHERE e.entity_type = set_conflict_policy.entity_type) THEN
        PERFORM smartsync._raise('SS106', format('unknown entity type %L', set_conflict_policy.entity_type),
            'Only a registered entity type has a conflict policy.', 'smartsync.entity_types lists the registered types.');
    END IF;
    IF default_strategy IS NOT NULL
       AND default_strategy NOT IN ('server-wins', 'client-wins', 'merge', 'last-write-wins', 'manual') THEN
        PERFORM smartsync._raise('SS108', format('invalid conflict strategy %L', default_strategy),
            'A strategy is one of server-wins, client-wins, merge, last-write-wins, manual.');
    END IF;
    IF auto_resolve IS NOT NULL THEN
        SELECT min(coalesce(s, 'null')) INTO v_bad FROM unnest(auto_resolve) s
         WHERE s IS NULL OR s NOT IN ('low', 'medium', 'high');
        IF v_bad IS NOT NULL THEN
            PERFORM smartsync._raise('SS108', format('invalid auto-resolve severity %L', v_bad),
                CASE WHEN v_bad = 'critical'
                     THEN 'Critical conflicts are never resolved automatically: they need a decision.'
                     ELSE 'The severities that can resolve automatically are low, medium and high.' END);
        END IF;
    END IF;
    UPDATE smartsync.entity_types e
       SET default_strategy = coalesce(set_conflict_policy.default_strategy, e.default_strategy),
           auto_resolve = coalesce((SELECT array_agg(s ORDER BY array_position(ARRAY['low', 'medium', 'high'], s)) FROM (SELECT DISTINCT s FROM unnest(set_conflict_policy.auto_resolve) s) d),
                                   CASE WHEN set_conflict_policy.auto_resolve IS NOT NULL THEN '{}'::text[] END,
                                   e.auto_resolve)
     WHERE e.entity_type = set_conflict_policy.entity_type
    RETURNING * INTO r;
    RETURN jsonb_build_object('entityType', r.entity_type, 'defaultStrategy', r.default_strategy,
                              'autoResolve', to_jsonb(r.auto_resolve));
END
$$;
COMMENT ON FUNCTION smartsync.set_conflict_policy(text, text, text[]) IS
'set an entity type''s conflict policy: default_strategy (push resolves conflicts it does not auto-resolve with it; manual stores them) and auto_resolve (severities push settles at once in the client''s favour, low, medium or high; default {low}); NULL keeps the current value; returns the policy';
REVOKE ALL ON FUNCTION smartsync.set_conflict_policy(text, text, text[]) FROM PUBLIC;
