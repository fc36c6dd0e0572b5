-- smartsync on a Citus cluster (README "Scaling out"): a coordinator and two
-- workers on loopback (test/citus.sh).  smartsync is created on the
-- coordinator and Citus creates it on every node; smartsync.citus_setup() turns
-- it on for the cluster.
SET client_min_messages = warning;
CREATE EXTENSION smartsync;
\set ECHO none
\o /dev/null
\i examples/vet_schema.sql
\o
\set ECHO all
RESET client_min_messages;

-- The nodes by name: the coordinator, worker1 and worker2 (in the order added).
CREATE SCHEMA citus_t;
CREATE TABLE citus_t.nodes AS
SELECT groupid, nodename, nodeport, CASE WHEN groupid = 0 THEN 'coordinator' ELSE 'worker' || groupid END AS node
  FROM pg_dist_node;
-- The node that holds a tenant (its change log's shard).
CREATE FUNCTION citus_t.node_of(tenant text) RETURNS text LANGUAGE sql AS $$
  SELECT n.node FROM smartsync.tenants t
    JOIN pg_dist_shard s ON s.logicalrelid = format('%I.sync_changes', t.schema_name)::regclass
    JOIN pg_dist_placement p ON p.shardid = s.shardid
    JOIN citus_t.nodes n ON n.groupid = p.groupid
   WHERE t.tenant_id = tenant $$;
-- Moves a tenant's schema to a node (as a rebalance would).
CREATE FUNCTION citus_t.move(tenant text, target text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE n citus_t.nodes; s name;
BEGIN
  SELECT * INTO n FROM citus_t.nodes WHERE node = target;
  SELECT schema_name INTO s FROM smartsync.tenants WHERE tenant_id = tenant;
  IF citus_t.node_of(tenant) <> target THEN
    PERFORM citus_schema_move(s::regnamespace, n.nodename, n.nodeport);
  END IF;
  RETURN citus_t.node_of(tenant);
END $$;
-- A command's result on every node, by node name.
CREATE FUNCTION citus_t.on_all_nodes(command text) RETURNS TABLE (node text, result text)
LANGUAGE sql AS $$
  SELECT n.node, r.result FROM run_command_on_all_nodes(command) r
    JOIN pg_dist_node d ON d.nodeid = r.nodeid JOIN citus_t.nodes n ON n.groupid = d.groupid
   ORDER BY n.groupid $$;

-- Which node a change log's transaction ids come from (sync_log_origin.node_id
-- is that node's system identifier), and the log's epoch.
CREATE TABLE citus_t.sysids AS
SELECT node, result::bigint AS sysid FROM citus_t.on_all_nodes($$SELECT system_identifier FROM pg_control_system()$$);
CREATE FUNCTION citus_t.log_origin(tenant text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE n bigint; e integer;
BEGIN
  EXECUTE format('SELECT node_id, epoch FROM %I.sync_log_origin',
                 (SELECT schema_name FROM smartsync.tenants WHERE tenant_id = tenant)) INTO n, e;
  RETURN coalesce((SELECT s.node FROM citus_t.sysids s WHERE s.sysid = n), 'none') || ', epoch ' || e;
END $$;

-- smartsync exists on every node.
SELECT * FROM citus_t.on_all_nodes($$SELECT extversion FROM pg_extension WHERE extname = 'smartsync'$$);

-- citus_setup(): the registry and the pull secret become reference tables, a
-- copy on every node; every tenant schema (none yet) becomes distributed.
SELECT smartsync.citus_setup();
SELECT logicalrelid, partmethod, repmodel FROM pg_dist_partition
 WHERE logicalrelid::text LIKE 'smartsync.%' ORDER BY 1;
SELECT * FROM citus_t.on_all_nodes($$SELECT count(*) FROM smartsync.entity_types$$);
-- One secret signs and checks cursors on every node.
SELECT count(DISTINCT result) AS secrets, count(*) AS nodes
  FROM citus_t.on_all_nodes($$SELECT md5(secret::text) FROM smartsync.pull_secret$$);
-- Run again, it changes nothing.
SELECT smartsync.citus_setup();

-- PostgREST: Citus connects to the workers as the current user, so the api owner
-- logs in (no password, no superuser, no BYPASSRLS); the roles exist on every node.
SELECT r - 'functions' AS setup FROM smartsync.setup_postgrest() AS r;
SELECT rolname, rolcanlogin AS login, rolsuper AS super, rolbypassrls AS bypassrls
  FROM pg_roles WHERE rolname IN ('authenticator', 'anon', 'web_user', 'smartsync_api') ORDER BY rolname;
SELECT * FROM citus_t.on_all_nodes($$SELECT string_agg(rolname || ':' || rolcanlogin, ' ' ORDER BY rolname)
  FROM pg_roles WHERE rolname IN ('authenticator', 'anon', 'web_user', 'smartsync_api')$$);

-- Provisioning distributes each tenant's schema: one co-located group of
-- single-shard tables (entity tables and sync tables together) on one node.
SELECT smartsync.provision_tenant('happy-paws');
SELECT smartsync.provision_tenant('city-vets');
SELECT n.nspname AS schema, count(*) AS tables, count(DISTINCT p.colocationid) AS groups,
       bool_and(p.partmethod = 'n') AS single_shard
  FROM pg_dist_schema d JOIN pg_namespace n ON n.oid = d.schemaid
  JOIN pg_dist_partition p ON p.colocationid = d.colocationid
 GROUP BY n.nspname ORDER BY 1;
-- Citus placed them; the test places happy-paws on worker1, city-vets on worker2.
SELECT citus_t.move('happy-paws', 'worker1') AS happy_paws;
SELECT citus_t.move('city-vets', 'worker2') AS city_vets;

-- Row-level security in the form Citus accepts (no subquery), on every shard.
SELECT c.relname, p.polname, pg_get_expr(p.polqual, p.polrelid) AS using_expr
  FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
 WHERE c.relnamespace = 'tenant_happy_paws'::regnamespace AND c.relname IN ('pets', 'sync_changes', 'sync_log_origin')
 ORDER BY 1, 2;
-- The capture triggers are on each shard.
SELECT result FROM run_command_on_placements('tenant_happy_paws.pets',
  $$SELECT string_agg(tgname, ' ' ORDER BY tgname) FROM pg_trigger WHERE tgrelid = '%s'::regclass AND NOT tgisinternal$$);
-- sync_log_origin: the node whose transaction ids the change log holds (none
-- before the first change) and its epoch; its one row also routes calls.
SELECT citus_t.log_origin('happy-paws');

-- An entity type registered later joins every tenant's group on its node, with
-- its capture triggers (those that fire on the shards: TRUNCATE is refused on the
-- coordinator, where Citus runs it).
CREATE TABLE vet_template.labs (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                                practice_id integer NOT NULL, result text);
SELECT smartsync.register_entity_type('labs', 'vet_template.labs', practice_column => 'practice_id');
SELECT p.logicalrelid, p.colocationid = (SELECT colocationid FROM pg_dist_partition
                                          WHERE logicalrelid = 'tenant_happy_paws.sync_changes'::regclass) AS colocated
  FROM pg_dist_partition p WHERE p.logicalrelid::text LIKE 'tenant_happy_paws.labs';
SELECT result FROM run_command_on_placements('tenant_happy_paws.labs',
  $$SELECT string_agg(regexp_replace(tgname, '_\d+$', ''), ' ' ORDER BY tgname) FROM pg_trigger WHERE tgrelid = '%s'::regclass$$);
\set VERBOSITY terse
TRUNCATE tenant_happy_paws.labs;
\set VERBOSITY default
SELECT smartsync.unregister_entity_type('labs');
SELECT result FROM run_command_on_placements('tenant_happy_paws.labs',
  $$SELECT count(*) FROM pg_trigger WHERE tgrelid = '%s'::regclass$$);
DROP TABLE tenant_happy_paws.labs, tenant_city_vets.labs, vet_template.labs;

-- Provisioning again is idempotent; the tenant stays where it is.
SELECT smartsync.provision_tenant('happy-paws');
SELECT citus_t.node_of('happy-paws') AS happy_paws, citus_t.node_of('city-vets') AS city_vets;
