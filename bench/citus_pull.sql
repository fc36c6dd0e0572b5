-- Citus benchmark (bench/bench_citus.sh), the pull's tenant cp: 1,000 rows
-- created, a cursor (on the node that holds cp), the 1,000 rows updated.
SET client_min_messages = warning;
SET smartsync.tenant_id = 'cp';
INSERT INTO cp.bc_items (id, practice_id, title, status, qty, notes)
SELECT i, 1, 'item ' || i, 'open', 1, 'seen for a yearly checkup, all fine, next visit in a year'
  FROM generate_series(1, 1000) i;
CREATE TABLE bench.cursor AS
SELECT smartsync.sync_pull(p_entity_types => 'bc_items', p_limit => 10000) ->> 'cursor' AS cursor;
UPDATE cp.bc_items SET qty = qty + 1, status = 'checked-in';
RESET smartsync.tenant_id;
VACUUM ANALYZE cp.bc_items;
