-- Capture spread over tenants: 1,000 tenants (schemas tenant_1 .. tenant_1000),
-- each with a tracked 17-column visits table of 10 rows, and the same 1,000
-- tables untracked (schemas plain_1 .. plain_1000): CALL spread_setup(1, 1000).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS smartsync;
CREATE SCHEMA spread_tpl;
CREATE TABLE spread_tpl.visits (
    id              bigint PRIMARY KEY,
    practice_id     integer NOT NULL,
    pet_id          bigint NOT NULL,
    practitioner_id bigint,
    title           text NOT NULL,
    date            timestamptz NOT NULL,
    duration        integer NOT NULL,
    status          text NOT NULL,
    room            text,
    reason          text,
    price_cents     integer NOT NULL,
    paid            boolean NOT NULL,
    reminder_sent   boolean NOT NULL,
    created_by      text,
    qty             integer NOT NULL,
    version         bigint NOT NULL DEFAULT 1,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
SELECT smartsync.register_entity_type('visits', 'spread_tpl.visits', practice_column => 'practice_id');
CREATE PROCEDURE spread_setup(first int, last int) LANGUAGE plpgsql AS $$
DECLARE
    s text;
BEGIN
    FOR t IN first..last LOOP
        PERFORM smartsync.provision_tenant('t' || t, 'tenant_' || t);
        EXECUTE format('CREATE SCHEMA plain_%s', t);
        EXECUTE format('CREATE TABLE plain_%s.visits (LIKE spread_tpl.visits INCLUDING ALL)', t);
        FOREACH s IN ARRAY ARRAY['tenant_' || t, 'plain_' || t] LOOP
            EXECUTE format($i$
                INSERT INTO %I.visits (id, practice_id, pet_id, practitioner_id, title, date, duration, status,
                                       room, reason, price_cents, paid, reminder_sent, created_by, qty)
                SELECT g, 1, g * 11, 1 + g %% 7, 'Visit ' || g, '2026-01-01'::timestamptz + g * interval '1 hour',
                       20, 'scheduled', 'Room ' || (g %% 5), 'Annual check-up and vaccination', 3500, false,
                       false, 'front-desk', 0
                  FROM generate_series(1, 10) g $i$, s);
        END LOOP;
        COMMIT;
    END LOOP;
END $$;
