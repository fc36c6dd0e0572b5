-- Capture benchmark tables: the same realistic rows three ways (untracked,
-- tracked by smartsync, and with a hand-written PL/pgSQL audit trigger):
--   records: 20 columns (~1 KB as JSON), visits: 17 columns (~0.5 KB as JSON),
--   20,000 rows each, so each of two clients updates 10,000 rows of its own.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS smartsync;

CREATE SCHEMA bench_tpl;
CREATE TABLE bench_tpl.records (
    id          bigint PRIMARY KEY,
    practice_id integer NOT NULL,
    client_id   bigint NOT NULL,
    pet_id      bigint NOT NULL,
    title       text NOT NULL,
    status      text NOT NULL,
    kind        text NOT NULL,
    room        text,
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    duration    integer NOT NULL,
    weight_kg   numeric(6,2),
    temperature numeric(4,1),
    price_cents integer NOT NULL,
    paid        boolean NOT NULL,
    notes       text,
    tags        text[],
    qty         integer NOT NULL,
    version     bigint NOT NULL DEFAULT 1,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE bench_tpl.visits (
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
SELECT smartsync.register_entity_type('records', 'bench_tpl.records', practice_column => 'practice_id');
SELECT smartsync.register_entity_type('visits', 'bench_tpl.visits', practice_column => 'practice_id');

-- tracked by smartsync
SELECT smartsync.provision_tenant('bench', 'tracked');

-- untracked: the same tables, no trigger
CREATE SCHEMA untracked;
CREATE TABLE untracked.records (LIKE bench_tpl.records INCLUDING ALL);
CREATE TABLE untracked.visits (LIKE bench_tpl.visits INCLUDING ALL);

-- what users write by hand: a PL/pgSQL trigger keeping version and updated_at
-- and logging to_jsonb(NEW) to an audit table
CREATE SCHEMA plpgsql;
CREATE TABLE plpgsql.records (LIKE bench_tpl.records INCLUDING ALL);
CREATE TABLE plpgsql.visits (LIKE bench_tpl.visits INCLUDING ALL);
CREATE TABLE plpgsql.change_log (
    id         bigserial PRIMARY KEY,
    table_name text NOT NULL,
    operation  text NOT NULL,
    row_data   jsonb NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE FUNCTION plpgsql.log_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO plpgsql.change_log (table_name, operation, row_data) VALUES (TG_TABLE_NAME, TG_OP, to_jsonb(OLD));
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        NEW.version := OLD.version + 1;
    END IF;
    NEW.updated_at := now();
    INSERT INTO plpgsql.change_log (table_name, operation, row_data) VALUES (TG_TABLE_NAME, TG_OP, to_jsonb(NEW));
    RETURN NEW;
END $$;
CREATE TRIGGER log_change BEFORE INSERT OR UPDATE OR DELETE ON plpgsql.records
    FOR EACH ROW EXECUTE FUNCTION plpgsql.log_change();
CREATE TRIGGER log_change BEFORE INSERT OR UPDATE OR DELETE ON plpgsql.visits
    FOR EACH ROW EXECUTE FUNCTION plpgsql.log_change();

-- 20,000 rows in every variant
DO $$
DECLARE s text;
BEGIN
    FOREACH s IN ARRAY ARRAY['untracked', 'tracked', 'plpgsql'] LOOP
        EXECUTE format($i$
            INSERT INTO %I.records (id, practice_id, client_id, pet_id, title, status, kind, room,
                                    starts_at, ends_at, duration, weight_kg, temperature, price_cents,
                                    paid, notes, tags, qty)
            SELECT g, 1 + g %% 3, g * 7, g * 11, 'Appointment ' || g, 'scheduled', 'check-up', 'Room ' || (g %% 5),
                   '2026-01-01'::timestamptz + g * interval '1 hour', '2026-01-01'::timestamptz + g * interval '1 hour' + interval '30 min',
                   30, 12.5, 38.6, 4500, false, repeat('Patient history and observations. ', 12),
                   ARRAY['vaccination', 'annual'], 0
              FROM generate_series(1, 20000) g $i$, s);
        EXECUTE format($i$
            INSERT INTO %I.visits (id, practice_id, pet_id, practitioner_id, title, date, duration, status,
                                   room, reason, price_cents, paid, reminder_sent, created_by, qty)
            SELECT g, 1 + g %% 3, g * 11, 1 + g %% 7, 'Visit ' || g,
                   '2026-01-01'::timestamptz + g * interval '1 hour', 20, 'scheduled',
                   'Room ' || (g %% 5), 'Annual check-up and vaccination', 3500, false, false, 'front-desk', 0
              FROM generate_series(1, 20000) g $i$, s);
    END LOOP;
END $$;
TRUNCATE plpgsql.change_log;
VACUUM ANALYZE;
