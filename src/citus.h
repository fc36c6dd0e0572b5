/*
 * citus.h: the hooks through which smartsync runs on Citus schema-based
 * sharding (src/citus.c; README "Scaling out").  Each is a no-op (or answers
 * "not Citus") when the citus extension is not installed in the database.
 */
#ifndef SMARTSYNC_CITUS_H
#define SMARTSYNC_CITUS_H

#include "postgres.h"
#include "fmgr.h"
#include "utils/relcache.h"

/*
 * Entry points that read or write a tenant's data (push, pull, sync_changed,
 * resolution, the conflict listings) start with
 *     if (sync_citus_route(fcinfo, &result)) return result;
 * On a node that does not hold the request's tenant, the call runs on the node
 * that does, with the request context, and its result is returned here.
 */
extern bool sync_citus_route(FunctionCallInfo fcinfo, Datum *result);

/*
 * Capture on a shard (a trigger fires on tenant_x.clients_102009): returns
 * false for an ordinary table.  For a shard of a Citus table: *table_name is
 * the logical table's name, *log_shard the local shard of the co-located
 * sync_changes, *log_table that logical table (its identity sequence numbers
 * the rows), *origin_shard the local shard of sync_log_origin.
 */
extern bool sync_citus_capture_target(Relation rel, const char **table_name, Oid *log_shard,
									  Oid *log_table, Oid *origin_shard);

/*
 * Called by capture before it appends to a Citus tenant's change log: a log
 * that moved here from another node is adopted first (its rows renumbered
 * below every transaction id and sequence value of this node).
 */
extern void sync_citus_adopt_log(Oid origin_shard);

/*
 * Pull: whether the tenant's change log holds this node's transaction ids
 * (false between a move and the first write here), and the log's epoch, which
 * the pull cursor's origin includes.  Not Citus: true and 0.
 */
extern bool sync_citus_log_state(const char *schema, uint32 *epoch);

/*
 * poll_changes (poll.c) reads a tenant's change log with this node's snapshot:
 * raises SS853 for a tenant distributed by Citus, whose log is a shard on a
 * worker, instead of reporting no change.
 */
extern void sync_citus_refuse_poll(const char *schema);

/* Whether Citus is installed in this database (a cached lookup). */
extern bool sync_citus_installed(void);

/* The relation to read for an extension table: its local shard when Citus has made it a reference table. */
extern Oid	sync_citus_local_relation(Oid relid);

#endif							/* SMARTSYNC_CITUS_H */
