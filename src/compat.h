/*
 * compat.h: shims for the PostgreSQL versions smartsync builds against (15 to 18),
 * so call sites stay free of #if PG_VERSION_NUM.
 *
 * Each shim is named after the PostgreSQL call it stands for, with the suffix
 * _compat, and takes the arguments of the oldest supported version's call (the
 * one the code was written against); a newer version's extra argument gets the
 * value that keeps the old behaviour.  The macros expand at the call site, so
 * this header needs none of the headers of the calls it wraps: the caller
 * includes those, as it would for the call itself.  A shim that needs a body of
 * its own would go into a small compat file of its concern.
 */
#ifndef SMARTSYNC_COMPAT_H
#define SMARTSYNC_COMPAT_H

#if PG_VERSION_NUM < 150000
#error "smartsync requires PostgreSQL 15 or later"
#endif

/*
 * Inserts the index entries of a newly inserted tuple (executor/executor.h).
 * 16 added onlySummarizing (true: only BRIN-like indexes, after a HOT update);
 * a plain insert updates every index.
 */
#if PG_VERSION_NUM >= 160000
#define ExecInsertIndexTuples_compat(rri, slot, estate, update, noDupErr, specConflict, arbiterIndexes) \
	ExecInsertIndexTuples((rri), (slot), (estate), (update), (noDupErr), (specConflict), (arbiterIndexes), false)
#else
#define ExecInsertIndexTuples_compat(rri, slot, estate, update, noDupErr, specConflict, arbiterIndexes) \
	ExecInsertIndexTuples((rri), (slot), (estate), (update), (noDupErr), (specConflict), (arbiterIndexes))
#endif

/*
 * The sequence of an identity column of an open relation (catalog/dependency.h).
 * 17 takes the Relation (for partitions), earlier versions its OID.
 */
#if PG_VERSION_NUM >= 170000
#define getIdentitySequence_compat(rel, attnum, missing_ok) \
	getIdentitySequence((rel), (attnum), (missing_ok))
#else
#define getIdentitySequence_compat(rel, attnum, missing_ok) \
	getIdentitySequence(RelationGetRelid(rel), (attnum), (missing_ok))
#endif

/*
 * A JSON lexer over a C string (common/jsonapi.h), allocated in the current memory
 * context.  17 takes a caller-supplied context to fill, or NULL to allocate one.
 */
#if PG_VERSION_NUM >= 170000
#define makeJsonLexContextCstringLen_compat(json, len, encoding, need_escapes) \
	makeJsonLexContextCstringLen(NULL, (json), (len), (encoding), (need_escapes))
#else
#define makeJsonLexContextCstringLen_compat(json, len, encoding, need_escapes) \
	makeJsonLexContextCstringLen((json), (len), (encoding), (need_escapes))
#endif

/*
 * The local transaction id of this backend's current top-level transaction
 * (storage/proc.h).  17 moved it into PGPROC's virtual transaction id.
 */
#if PG_VERSION_NUM >= 170000
#define MyProcLocalTransactionId_compat() (MyProc->vxid.lxid)
#else
#define MyProcLocalTransactionId_compat() (MyProc->lxid)
#endif

/*
 * The local copy of the status of the backend at position idx (from 1) of this
 * transaction's snapshot of backend statuses (utils/backend_status.h).  16
 * renamed it.
 */
#if PG_VERSION_NUM >= 160000
#define pgstat_fetch_stat_local_beentry_compat(idx) \
	pgstat_get_local_beentry_by_index(idx)
#else
#define pgstat_fetch_stat_local_beentry_compat(idx) \
	pgstat_fetch_stat_local_beentry(idx)
#endif

/*
 * The OID of a relation's primary-key index (utils/relcache.h).  18 asks whether a
 * DEFERRABLE primary key will do; earlier versions never returned one.
 */
#if PG_VERSION_NUM >= 180000
#define RelationGetPrimaryKeyIndex_compat(rel) \
	RelationGetPrimaryKeyIndex((rel), false)
#else
#define RelationGetPrimaryKeyIndex_compat(rel) \
	RelationGetPrimaryKeyIndex(rel)
#endif

/*
 * Starts an index scan (access/genam.h).  18 added where EXPLAIN ANALYZE's index
 * instrumentation goes: none here.
 */
#if PG_VERSION_NUM >= 180000
#define index_beginscan_compat(heap, index, snapshot, nkeys, norderbys) \
	index_beginscan((heap), (index), (snapshot), NULL, (nkeys), (norderbys))
#else
#define index_beginscan_compat(heap, index, snapshot, nkeys, norderbys) \
	index_beginscan((heap), (index), (snapshot), (nkeys), (norderbys))
#endif

/*
 * A possibly qualified name as a list of String nodes (utils/regproc.h).  16 added
 * the soft-error context: none here, a malformed name raises its error.
 */
#if PG_VERSION_NUM >= 160000
#define stringToQualifiedNameList_compat(string) \
	stringToQualifiedNameList((string), NULL)
#else
#define stringToQualifiedNameList_compat(string) \
	stringToQualifiedNameList(string)
#endif

/*
 * Whether a role holds a privilege on a function (utils/acl.h).  16 replaced the
 * per-catalog checks with object_aclcheck (the caller includes catalog/pg_proc.h).
 */
#if PG_VERSION_NUM >= 160000
#define pg_proc_aclcheck_compat(proc_oid, roleid, mode) \
	object_aclcheck(ProcedureRelationId, (proc_oid), (roleid), (mode))
#else
#define pg_proc_aclcheck_compat(proc_oid, roleid, mode) \
	pg_proc_aclcheck((proc_oid), (roleid), (mode))
#endif

/*
 * Sort support for one key column of a btree index (utils/sortsupport.h).  18
 * takes whether the column sorts in reverse instead of the btree strategy
 * (BTGreaterStrategyNumber: a DESC column).
 */
#if PG_VERSION_NUM >= 180000
#define PrepareSortSupportFromIndexRel_compat(rel, strategy, ssup) \
	PrepareSortSupportFromIndexRel((rel), (strategy) == BTGreaterStrategyNumber, (ssup))
#else
#define PrepareSortSupportFromIndexRel_compat(rel, strategy, ssup) \
	PrepareSortSupportFromIndexRel((rel), (strategy), (ssup))
#endif

#endif							/* SMARTSYNC_COMPAT_H */
