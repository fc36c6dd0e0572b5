/*
 * compat.h: shims for the PostgreSQL versions smartsync builds against (15 to 18),
 * so call sites stay free of #if PG_VERSION_NUM.
 *
 * Each shim is named after the PostgreSQL call it stands for, with the suffix
 * _compat, and takes the arguments of the oldest supported version's call (the
 * one the code was written against); a newer version's extra argument gets the
 * value that keeps the old behaviour.  The macros expand at the call site, so
 * this header needs none of the headers of the calls it wraps: the caller
 * includes those, as it would for the call itself.  Shims that need a body of
 * their own are in compat.c.
 */
#ifndef SMARTSYNC_COMPAT_H
#define SMARTSYNC_COMPAT_H

#if PG_VERSION_NUM < 150000
#error "smartsync requires PostgreSQL 15 or later"
#endif

#include "datatype/timestamp.h"

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
 * Decodes the fields of a date/time string (utils/datetime.h), returning 0 or a
 * DTERR_ code without raising.  16 added where the details of an error go; the
 * callers only need the code, so they go to a throwaway struct.
 */
#if PG_VERSION_NUM >= 160000
#define DecodeDateTime_compat(field, ftype, nf, dtype, tm, fsec, tzp) \
	DecodeDateTime((field), (ftype), (nf), (dtype), (tm), (fsec), (tzp), &(DateTimeErrorExtra) {0})
#else
#define DecodeDateTime_compat(field, ftype, nf, dtype, tm, fsec, tzp) \
	DecodeDateTime((field), (ftype), (nf), (dtype), (tm), (fsec), (tzp))
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
 * Parses text as timestamptz_in does, without raising: false when it is not a
 * timestamp (compat.c).  16 has soft errors for input functions; 15 decodes the
 * text itself the way timestamptz_in does.
 */
extern bool timestamptz_in_safe_compat(const char *str, TimestampTz *result);

#endif							/* SMARTSYNC_COMPAT_H */
