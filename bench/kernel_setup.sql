-- Data for bench/bench_kernel.sh: 20,000 (base, local, server) triples of a
-- realistic 20-field veterinary record (~1 KB as JSON).  The client changed
-- two fields since base, the server two others and its version: detect_conflict
-- finds a version conflict on the client's fields, merge3 merges.
-- stored plain (no compression), so the figures are the functions' cost, not pglz's
CREATE TABLE kernel_rows (base jsonb, local jsonb, server jsonb, local_ts timestamptz);
ALTER TABLE kernel_rows ALTER base SET STORAGE PLAIN, ALTER local SET STORAGE PLAIN, ALTER server SET STORAGE PLAIN;
INSERT INTO kernel_rows
SELECT base, local, server, timestamptz '2024-11-10 12:00+00' AS local_ts
  FROM (
    SELECT b AS base,
           b || jsonb_build_object('weight', (b ->> 'weight')::numeric + 0.5, 'notes', (b ->> 'notes') || ' Rechecked.') AS local,
           b || jsonb_build_object('diagnosis', 'otitis externa, improving', 'status', 'follow-up',
                                   'version', (b ->> 'version')::int + 1, 'updatedAt', '2024-11-10T12:30:00.000Z') AS server
      FROM (
        SELECT jsonb_build_object(
                 'id', 'pet_' || i,
                 'name', (ARRAY['Rex', 'Bella', 'Max', 'Luna', 'Charlie'])[1 + i % 5],
                 'species', (ARRAY['dog', 'cat', 'rabbit'])[1 + i % 3],
                 'breed', 'Labrador Retriever',
                 'color', 'golden',
                 'sex', CASE WHEN i % 2 = 0 THEN 'M' ELSE 'F' END,
                 'birthDate', '2019-04-' || lpad((1 + i % 28)::text, 2, '0'),
                 'weight', 20 + (i % 200) / 10.0,
                 'microchip', '985112' || lpad(i::text, 9, '0'),
                 'ownerId', 'client_' || (i / 3),
                 'practiceId', 1 + i % 4,
                 'notes', 'Friendly; mild anxiety at the clinic. Prefers the left side for injections. '
                          || 'Owner reports occasional scratching of the left ear after swimming; advised drying. '
                          || 'Diet: grain-free kibble twice a day, no table scraps.',
                 'diagnosis', 'otitis externa',
                 'allergies', jsonb_build_array('penicillin', 'chicken'),
                 'vaccinations', jsonb_build_array(
                     jsonb_build_object('name', 'rabies', 'date', '2024-03-01', 'lot', 'RB' || i),
                     jsonb_build_object('name', 'DHPP', 'date', '2024-03-01', 'lot', 'DH' || i)),
                 'address', jsonb_build_object('street', i || ' Harbour Road', 'city', 'Bergen', 'zip', '5003'),
                 'active', true,
                 'status', 'active',
                 'version', 1 + i % 7,
                 'updatedAt', '2024-11-09T08:15:00.000Z') AS b
          FROM generate_series(1, 20000) i) s) t;

CREATE FUNCTION bench_seconds(q text) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
    EXECUTE q;
    RETURN extract(epoch FROM clock_timestamp() - t0);
END $$;
