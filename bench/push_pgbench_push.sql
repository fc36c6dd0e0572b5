-- pgbench script of bench/bench_push.sh and bench/push_ab.sh: one client's next batch
-- (-D tbl, s, n) pushed through smartsync.sync_push as tenant bench_t<client>.
\set n :n + 1
\set c :client_id + 1
BEGIN;
SELECT set_config('smartsync.tenant_id', 'bench_t' || :c, true), set_config('smartsync.client_id', 'dev' || :c, true),
       set_config('smartsync.permissions', 'bp_items:*,bp_wide:*', true);
SELECT smartsync.sync_push(payload) ->> 'processed' FROM bench.batches WHERE tbl = :tbl AND size = :s AND path = 0 AND client = :c AND n = :n;
END;
