-- pgbench script of bench/bench_push.sh and bench/push_ab.sh: the same batch written by
-- the PL/pgSQL baseline (bench.plain_batch) in tenant bench_t<client>'s schema.
\set n :n + 1
\set c :client_id + 1
BEGIN;
SELECT set_config('search_path', 'bench_t' || :c, true), set_config('smartsync.client_id', 'dev' || :c, true),
       set_config('smartsync.permissions', 'bp_items:*,bp_wide:*', true);
SELECT bench.plain_batch(:tbl, payload) FROM bench.batches WHERE tbl = :tbl AND size = :s AND path = 1 AND client = :c AND n = :n;
END;
