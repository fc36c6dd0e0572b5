/*
 * kernel.h: the conflict kernel's C interface (hash.c, conflict.c, merge.c),
 * used by push and by conflict resolution.  The SQL functions row_hash,
 * compare_fields, detect_conflict, merge and merge3 are thin wrappers.
 *
 * All inputs are jsonb objects (callers check JB_ROOT_IS_OBJECT or let these
 * raise SS301).  Results are palloc'd in CurrentMemoryContext.
 */
#ifndef SMARTSYNC_KERNEL_H
#define SMARTSYNC_KERNEL_H

#include "postgres.h"
#include "nodes/pg_list.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

/* SQLSTATEs of the kernel: SS3xx */
#define ERRCODE_SS_NOT_AN_OBJECT		MAKE_SQLSTATE('S','S','3','0','1')
#define ERRCODE_SS_INVALID_OPERATION	MAKE_SQLSTATE('S','S','3','0','2')
#define ERRCODE_SS_INVALID_FIELD_CLASS	MAKE_SQLSTATE('S','S','3','0','3')

/* Hex SHA-256 of the canonical JSON of data without the excluded top-level keys. */
extern char *sync_row_hash(Jsonb *data, List *exclude);

/* Sorted names (char *) of top-level fields that differ; exclude is a List of char *. */
extern List *sync_compare_fields(Jsonb *local, Jsonb *server, List *exclude);

/*
 * Conflict between a client's change and the server row, or NULL when none.
 *   local:        the client's data (may carry "version": the base version it saw)
 *   server:       the server row, NULL when the row does not exist
 *   server_deleted: the row exists only as a tombstone (server holds its last image)
 *   local_ts:     when the client made the change; has_local_ts false when unknown
 *   operation:    "create", "update" or "delete"
 *   field_classes: field -> class object, or NULL for "all normal"
 * Result: {"type","affectedFields","severity","autoResolvable"} as detect_conflict returns.
 */
extern Jsonb *sync_detect_conflict(Jsonb *local, Jsonb *server, bool server_deleted,
								   TimestampTz local_ts, bool has_local_ts,
								   const char *operation, Jsonb *field_classes);

/* The spec's attemptMerge: NULL when a field differs on both sides. */
extern Jsonb *sync_merge(Jsonb *local, Jsonb *server);

/*
 * Three-way merge against base.  NULL on a true conflict, and then, when
 * conflicting is not NULL, *conflicting lists the truly conflicting fields.
 */
extern Jsonb *sync_merge3(Jsonb *base, Jsonb *local, Jsonb *server, List **conflicting);

#endif							/* SMARTSYNC_KERNEL_H */
