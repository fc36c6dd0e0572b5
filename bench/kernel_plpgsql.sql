-- The conflict kernel's semantics written in PL/pgSQL, as a baseline for
-- bench/bench_kernel.sh: compare only the keys the client sends (metadata and
-- _deleted aside), version before timestamps before data, severity from field
-- classes, three-way merge with the server's metadata.
CREATE SCHEMA kernel_plpgsql;

-- Fields the client sends whose values differ from the server's.
CREATE FUNCTION kernel_plpgsql.changed_fields(local jsonb, server jsonb)
RETURNS text[] LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    k text; v jsonb; result text[] := '{}';
BEGIN
    FOR k, v IN SELECT * FROM jsonb_each(coalesce(local, '{}')) LOOP
        CONTINUE WHEN k IN ('version', 'updatedAt', 'updated_at', '_deleted');
        IF NOT (server ? k) OR server -> k <> v THEN
            result := result || k;
        END IF;
    END LOOP;
    RETURN (SELECT coalesce(array_agg(x ORDER BY x COLLATE "C"), '{}') FROM unnest(result) x);
END $$;

-- Severity of changes to these fields under field_classes.
CREATE FUNCTION kernel_plpgsql.severity(fields text[], classes jsonb)
RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    f text; c text; lvl int := 0; l int;
BEGIN
    FOREACH f IN ARRAY fields LOOP
        c := coalesce(classes ->> f,
                      classes ->> lower(regexp_replace(f, '([a-z0-9])([A-Z])', '\1_\2', 'g')),
                      CASE WHEN f IN ('version', 'updatedAt', 'updated_at') THEN 'metadata' ELSE 'normal' END);
        l := CASE c WHEN 'metadata' THEN 0 WHEN 'normal' THEN 1 WHEN 'important' THEN 2 WHEN 'critical' THEN 3
             ELSE NULL END;
        IF l IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'SS303', MESSAGE = format('invalid field class for field "%s"', f);
        END IF;
        lvl := greatest(lvl, l);
    END LOOP;
    RETURN (ARRAY['low', 'medium', 'high', 'critical'])[lvl + 1];
END $$;

CREATE FUNCTION kernel_plpgsql.result(type text, fields text[], severity text)
RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('type', type, 'affectedFields', to_jsonb(fields),
                              'severity', severity, 'autoResolvable', severity = 'low')
$$;

-- detect_conflict in PL/pgSQL.
CREATE FUNCTION kernel_plpgsql.detect_conflict(local jsonb, server jsonb, local_ts timestamptz,
                                               operation text DEFAULT 'update', classes jsonb DEFAULT NULL)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    newer text := 'unknown'; fields text[]; server_ts timestamptz;
BEGIN
    IF operation NOT IN ('create', 'update', 'delete') OR operation IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'SS302', MESSAGE = format('invalid operation "%s"', operation);
    END IF;
    IF server IS NULL THEN
        IF operation = 'create' THEN RETURN NULL; END IF;
        RETURN kernel_plpgsql.result('missing_entity', '{}',
                                     CASE WHEN operation = 'update' THEN 'critical' ELSE 'low' END);
    END IF;
    IF server -> '_deleted' = 'true' THEN
        IF operation <> 'update' THEN RETURN NULL; END IF;
        RETURN kernel_plpgsql.result('deletion', kernel_plpgsql.changed_fields(local, server), 'critical');
    END IF;
    IF operation = 'create' THEN
        fields := kernel_plpgsql.changed_fields(local, server);
        IF cardinality(fields) = 0 THEN RETURN NULL; END IF;
        RETURN kernel_plpgsql.result('data', fields, kernel_plpgsql.severity(fields, classes));
    END IF;
    IF jsonb_typeof(local -> 'version') NOT IN ('null') AND jsonb_typeof(server -> 'version') NOT IN ('null') THEN
        newer := CASE WHEN local -> 'version' = server -> 'version' THEN 'no' ELSE 'version' END;
    ELSIF local_ts IS NOT NULL THEN
        SELECT max(CASE jsonb_typeof(v) WHEN 'number' THEN to_timestamp((v #>> '{}')::float8 / 1000)
                                        ELSE (v #>> '{}')::timestamptz END)
          INTO server_ts
          FROM (VALUES (server -> 'updatedAt'), (server -> 'updated_at')) x(v)
         WHERE jsonb_typeof(v) IS DISTINCT FROM 'null' AND v IS NOT NULL;
        IF server_ts IS NOT NULL THEN
            newer := CASE WHEN server_ts > local_ts THEN 'timestamp' ELSE 'no' END;
        END IF;
    END IF;
    IF newer = 'no' THEN RETURN NULL; END IF;
    fields := kernel_plpgsql.changed_fields(local, server);
    IF operation = 'delete' THEN
        IF newer = 'unknown' AND cardinality(fields) = 0 THEN RETURN NULL; END IF;
        RETURN kernel_plpgsql.result('deletion', fields, 'critical');
    END IF;
    IF cardinality(fields) = 0 THEN RETURN NULL; END IF;
    RETURN kernel_plpgsql.result(CASE newer WHEN 'version' THEN 'version' WHEN 'timestamp' THEN 'timestamp' ELSE 'data' END,
                                 fields, kernel_plpgsql.severity(fields, classes));
END $$;

-- merge3 in PL/pgSQL: NULL on a true conflict.
CREATE FUNCTION kernel_plpgsql.merge3(base jsonb, local jsonb, server jsonb)
RETURNS jsonb LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    k text; b jsonb; l jsonb; s jsonb; result jsonb := '{}';
BEGIN
    FOR k IN SELECT jsonb_object_keys(base) UNION SELECT jsonb_object_keys(local)
             UNION SELECT jsonb_object_keys(server) LOOP
        b := base -> k; l := local -> k; s := server -> k;
        IF k IN ('version', 'updatedAt', 'updated_at') THEN
            l := coalesce(s, l);
        ELSIF l IS NOT DISTINCT FROM s THEN
            NULL;
        ELSIF l IS NOT DISTINCT FROM b THEN
            l := s;
        ELSIF s IS NOT DISTINCT FROM b THEN
            NULL;
        ELSE
            RETURN NULL;
        END IF;
        IF l IS NOT NULL THEN
            result := result || jsonb_build_object(k, l);
        END IF;
    END LOOP;
    RETURN result;
END $$;

-- merge3 in plain SQL, set-based: every key of the three sides at once, one
-- jsonb_object_agg for the result (no per-key || of a growing object): the
-- fairer baseline for merge3.  NULL on a true conflict, like merge3.
CREATE FUNCTION kernel_plpgsql.merge3_sql(base jsonb, local jsonb, server jsonb)
RETURNS jsonb LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT CASE WHEN bool_or(m.conflict) THEN NULL
                ELSE coalesce(jsonb_object_agg(m.k, m.v) FILTER (WHERE m.v IS NOT NULL), '{}') END
      FROM (SELECT k.k,
                   CASE WHEN k.k IN ('version', 'updatedAt', 'updated_at') THEN coalesce(server -> k.k, local -> k.k)
                        WHEN local -> k.k IS NOT DISTINCT FROM server -> k.k THEN local -> k.k
                        WHEN local -> k.k IS NOT DISTINCT FROM base -> k.k THEN server -> k.k
                        WHEN server -> k.k IS NOT DISTINCT FROM base -> k.k THEN local -> k.k END AS v,
                   k.k NOT IN ('version', 'updatedAt', 'updated_at')
                   AND local -> k.k IS DISTINCT FROM server -> k.k
                   AND local -> k.k IS DISTINCT FROM base -> k.k
                   AND server -> k.k IS DISTINCT FROM base -> k.k AS conflict
              FROM (SELECT jsonb_object_keys(base) UNION SELECT jsonb_object_keys(local)
                    UNION SELECT jsonb_object_keys(server)) AS k(k)) m
$$;
