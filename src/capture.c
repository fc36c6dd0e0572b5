/*
 * capture.c: the change-capture triggers of tracked tables.
 *
 *   smartsync.stamp_row()       BEFORE INSERT OR UPDATE, FOR EACH ROW:
 *                               version := 1 on insert, old version + 1 on
 *                               update; updated_at := statement time; refuses
 *                               a change of the primary key.
 *   smartsync.capture(type, pk, practice)
 *                               AFTER INSERT / UPDATE / DELETE, FOR EACH
 *                               STATEMENT with a transition table: appends
 *                               every affected row to the tenant's change log.
 *   smartsync.refuse_truncate() BEFORE TRUNCATE: a truncate would drop rows
 *                               without tombstones, so it is refused.
 *
 * The log rows are inserted directly (heap insert plus index insertion, as
 * COPY does): no SPI, no executor run per statement.  Whether a trigger's table
 * is a registered entity table is checked once per trigger; attribute numbers
 * of stamp_row are cached per relation.  Log columns capture does not fill
 * (seq, xid, changed_at) get their defaults; xid defaults to
 * pg_current_xact_id(), which the exact pull cursor needs.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "commands/sequence.h"
#include "utils/xid8.h"
#include "storage/proc.h"
#include "access/table.h"
#include "access/tableam.h"
#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "optimizer/optimizer.h"
#include "rewrite/rewriteHandler.h"
#include "utils/fmgroids.h"

#include "smartsync.h"
#include "citus.h"
#include "rowjson.h"

PG_FUNCTION_INFO_V1(smartsync_stamp_row);
PG_FUNCTION_INFO_V1(smartsync_capture);
PG_FUNCTION_INFO_V1(smartsync_refuse_truncate);

/* per-relation attribute numbers for stamp_row */
typedef struct StampEntry
{
	Oid			relid;			/* hash key */
	AttrNumber	version_att;
	AttrNumber	updated_at_att;
	AttrNumber	pk_att;
} StampEntry;

/*
 * Per capture trigger: what it needs to log a row, resolved on its first
 * statement (the table is checked to be a registered entity table then).
 * Dropped when the table or its tenant's change log is invalidated.
 */
typedef struct CaptureEntry
{
	Oid			tgoid;			/* hash key */
	bool		valid;
	MemoryContext cxt;			/* holds everything below */
	Oid			relid;
	Oid			logrelid;
	Oid			seqoid;			/* the log's seq identity sequence */
	Oid			citus_origin;	/* Citus: the log's origin shard (citus.c), else InvalidOid */
	AttrNumber	logatt[8];		/* LOG_NCOLS columns capture fills */
	AttrNumber	seq_att;
	AttrNumber	xid_att;
	AttrNumber	changed_at_att;
	bool		other_defaults; /* other log columns have defaults */
	AttrNumber	pk_att;
	AttrNumber	practice_att;
	AttrNumber	version_att;
	FmgrInfo	pk_out;
	FmgrInfo	practice_out;
	RowJsonPlan *json;
} CaptureEntry;

static HTAB *stamp_cache = NULL;
static HTAB *capture_cache = NULL;
static bool callback_registered = false;

/* Drops cached entries when a relation (or everything) is invalidated. */
static void
capture_relcache_callback(Datum arg, Oid relid)
{
	if (stamp_cache != NULL)
	{
		if (OidIsValid(relid))
			hash_search(stamp_cache, &relid, HASH_REMOVE, NULL);
		else
		{
			hash_destroy(stamp_cache);
			stamp_cache = NULL;
		}
	}
	if (capture_cache != NULL)
	{
		HASH_SEQ_STATUS status;
		CaptureEntry *e;

		/*
		 * Only mark entries stale: an invalidation can arrive while a capture
		 * is using its entry (any relation open or sequence access processes
		 * them), so the memory is freed when the entry is next filled.
		 */
		hash_seq_init(&status, capture_cache);
		while ((e = hash_seq_search(&status)) != NULL)
		{
			if (OidIsValid(relid) && e->relid != relid && e->logrelid != relid)
				continue;
			e->valid = false;
		}
	}
}

/* Creates the caches on first use. */
static void
capture_init_caches(void)
{
	HASHCTL		ctl;

	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(capture_relcache_callback, (Datum) 0);
		callback_registered = true;
	}
	if (stamp_cache == NULL)
	{
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(StampEntry);
		stamp_cache = hash_create("smartsync stamp cache", 64, &ctl,
								  HASH_ELEM | HASH_BLOBS);
	}
	if (capture_cache == NULL)
	{
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(CaptureEntry);
		capture_cache = hash_create("smartsync capture cache", 64, &ctl,
									HASH_ELEM | HASH_BLOBS);
	}
}

/* Raises SS120 unless fcinfo is a trigger call of the expected kind. */
static TriggerData *
check_trigger_call(FunctionCallInfo fcinfo, const char *fname)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_SS_TRIGGER_MISUSE),
				 errmsg("%s() must be called as a trigger", fname),
				 errhint("smartsync.provision_tenant() installs the capture triggers.")));
	return (TriggerData *) fcinfo->context;
}

/* Finds a column by name; raises SS112 when it is missing or of the wrong type. */
static AttrNumber
required_column(Relation rel, const char *name, Oid typid)
{
	TupleDesc	desc = RelationGetDescr(rel);

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || strcmp(NameStr(att->attname), name) != 0)
			continue;
		if (typid != InvalidOid && att->atttypid != typid)
			ereport(ERROR,
					(errcode(ERRCODE_SS_MISSING_ROW_COLUMNS),
					 errmsg("column \"%s\" of tracked table \"%s\" has type %s, not %s",
							name, RelationGetRelationName(rel),
							format_type_be(att->atttypid), format_type_be(typid))));
		return att->attnum;
	}
	ereport(ERROR,
			(errcode(ERRCODE_SS_MISSING_ROW_COLUMNS),
			 errmsg("tracked table \"%s\" has no column \"%s\"",
					RelationGetRelationName(rel), name),
			 errhint("smartsync.provision_tenant() adds version and updated_at to tracked tables.")));
	return InvalidAttrNumber;	/* keep compiler quiet */
}

/*
 * The version the next insert into one relation starts at, for re-creating a
 * deleted row (conflict resolution): the row must continue after its
 * tombstone, or a device holding the old row's version 1 would pass version
 * checks against the new row.  Honoured only within the transaction that set
 * it, and only once.
 */
static Oid	next_insert_relid = InvalidOid;
static int64 next_insert_version = 0;
static LocalTransactionId next_insert_lxid = InvalidLocalTransactionId;

/* Makes the next insert into relid (in this transaction) get version. */
void
sync_stamp_next_insert(Oid relid, int64 version)
{
	next_insert_relid = relid;
	next_insert_version = version;
	next_insert_lxid = MyProc->lxid;
}

/*
 * smartsync.stamp_row(): BEFORE ROW trigger keeping version and updated_at.
 * Argument 0 is the primary-key column, whose change is refused.
 */
Datum
smartsync_stamp_row(PG_FUNCTION_ARGS)
{
	TriggerData *td = check_trigger_call(fcinfo, "smartsync.stamp_row");
	Relation	rel = td->tg_relation;
	TupleDesc	desc = RelationGetDescr(rel);
	Oid			relid = RelationGetRelid(rel);
	StampEntry *e;
	bool		found;
	HeapTuple	newtup;
	int			cols[2];
	Datum		vals[2];
	bool		nulls[2] = {false, false};
	int64		version = 1;

	if (!TRIGGER_FIRED_BEFORE(td->tg_event) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		!(TRIGGER_FIRED_BY_INSERT(td->tg_event) || TRIGGER_FIRED_BY_UPDATE(td->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_SS_TRIGGER_MISUSE),
				 errmsg("smartsync.stamp_row() must be a BEFORE INSERT OR UPDATE row trigger")));
	if (td->tg_trigger->tgnargs != 1)
		ereport(ERROR,
				(errcode(ERRCODE_SS_TRIGGER_MISUSE),
				 errmsg("smartsync.stamp_row() takes the primary-key column as its one argument")));

	capture_init_caches();
	e = hash_search(stamp_cache, &relid, HASH_ENTER, &found);
	if (!found)
	{
		PG_TRY();
		{
			e->version_att = required_column(rel, "version", INT8OID);
			e->updated_at_att = required_column(rel, "updated_at", TIMESTAMPTZOID);
			e->pk_att = required_column(rel, td->tg_trigger->tgargs[0], InvalidOid);
		}
		PG_CATCH();
		{
			hash_search(stamp_cache, &relid, HASH_REMOVE, NULL);
			PG_RE_THROW();
		}
		PG_END_TRY();
	}

	if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
	{
		HeapTuple	oldtup = td->tg_trigtuple;
		bool		oldnull,
					newnull;
		Datum		oldpk = heap_getattr(oldtup, e->pk_att, desc, &oldnull);
		Datum		newpk = heap_getattr(td->tg_newtuple, e->pk_att, desc, &newnull);
		Form_pg_attribute pkatt = TupleDescAttr(desc, e->pk_att - 1);
		Datum		oldver;
		bool		vernull;

		if (oldnull != newnull ||
			(!oldnull && !datumIsEqual(oldpk, newpk, pkatt->attbyval, pkatt->attlen)))
			ereport(ERROR,
					(errcode(ERRCODE_SS_PK_CHANGED),
					 errmsg("the primary key of a tracked row cannot change"),
					 errdetail("Table \"%s\" is tracked by smartsync; clients know rows by their id.",
							   RelationGetRelationName(rel)),
					 errhint("Delete the row and insert a new one instead.")));
		oldver = heap_getattr(oldtup, e->version_att, desc, &vernull);
		version = vernull ? 1 : DatumGetInt64(oldver) + 1;
		newtup = td->tg_newtuple;
	}
	else
	{
		newtup = td->tg_trigtuple;
		if (next_insert_relid == relid && next_insert_lxid == MyProc->lxid)
			version = next_insert_version;
		next_insert_relid = InvalidOid;
	}

	cols[0] = e->version_att;
	vals[0] = Int64GetDatum(version);
	cols[1] = e->updated_at_att;
	vals[1] = TimestampTzGetDatum(GetCurrentStatementStartTimestamp());

	PG_RETURN_POINTER(heap_modify_tuple_by_cols(newtup, desc, 2, cols, vals, nulls));
}

/* Raises SS121 unless rel (named relname) is a registered entity table in a tenant schema. */
static void
check_tracked(Relation rel, const char *relname, const char *entity_type, const char *nspname)
{
	Oid			argtypes[3] = {TEXTOID, TEXTOID, TEXTOID};
	Datum		values[3];
	int			rc;

	values[0] = CStringGetTextDatum(entity_type);
	values[1] = CStringGetTextDatum(relname);
	values[2] = CStringGetTextDatum(nspname);
	rc = SPI_execute_with_args("SELECT 1 FROM smartsync.entity_types e, smartsync.tenants t "
							   "WHERE e.entity_type = $1 AND e.table_name::text = $2 "
							   "AND t.schema_name::text = $3",
							   3, argtypes, values, NULL, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(rc));
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_SS_NOT_TRACKED),
				 errmsg("table \"%s.%s\" is not a registered entity table of a tenant",
						nspname, relname),
				 errdetail("The capture trigger names entity type \"%s\".", entity_type),
				 errhint("Register the entity type and provision the tenant instead of creating capture triggers by hand.")));
}

/* Log columns capture fills itself; every other column gets its default. */
enum
{
	LOG_ENTITY_TYPE,
	LOG_ENTITY_ID,
	LOG_OPERATION,
	LOG_DATA,
	LOG_VERSION,
	LOG_PRACTICE_ID,
	LOG_USER_ID,
	LOG_CLIENT_ID,
	LOG_NCOLS
};
static const char *const log_colnames[LOG_NCOLS] = {
	"entity_type", "entity_id", "operation", "data", "version",
	"practice_id", "user_id", "client_id"
};
static const Oid log_coltypes[LOG_NCOLS] = {
	TEXTOID, TEXTOID, TEXTOID, JSONBOID, INT8OID, TEXTOID, TEXTOID, TEXTOID
};

/*
 * Resolves what a capture trigger needs, once: the tenant's change log, its
 * columns and sequence, the source columns and their output functions, and
 * the row-to-jsonb plan.  Raises SS121 for a table that is not tracked.
 */
static void
capture_entry_fill(CaptureEntry *e, TriggerData *td)
{
	Relation	rel = td->tg_relation;
	Trigger    *tg = td->tg_trigger;
	TupleDesc	desc = RelationGetDescr(rel);
	Relation	logrel;
	TupleDesc	logdesc;
	Oid			outfunc;
	bool		varlena;
	MemoryContext oldcxt;
	const char *relname = RelationGetRelationName(rel);
	Oid			seqrelid;

	/* Citus: a shard stands for its table and logs to the co-located log shard */
	e->citus_origin = InvalidOid;
	if (!sync_citus_capture_target(rel, &relname, &e->logrelid, &seqrelid, &e->citus_origin))
		e->logrelid = seqrelid = get_relname_relid("sync_changes", RelationGetNamespace(rel));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	check_tracked(rel, relname, tg->tgargs[0], get_namespace_name(RelationGetNamespace(rel)));
	SPI_finish();

	e->relid = RelationGetRelid(rel);
	if (!OidIsValid(e->logrelid))
		ereport(ERROR,
				(errcode(ERRCODE_SS_NOT_TRACKED),
				 errmsg("schema \"%s\" has no change log",
						get_namespace_name(RelationGetNamespace(rel))),
				 errhint("Provision the tenant with smartsync.provision_tenant().")));

	e->cxt = AllocSetContextCreate(CacheMemoryContext, "smartsync capture entry",
								   ALLOCSET_SMALL_SIZES);
	oldcxt = MemoryContextSwitchTo(e->cxt);

	/* the source columns */
	e->pk_att = required_column(rel, tg->tgargs[1], InvalidOid);
	e->version_att = required_column(rel, "version", INT8OID);
	getTypeOutputInfo(TupleDescAttr(desc, e->pk_att - 1)->atttypid, &outfunc, &varlena);
	fmgr_info_cxt(outfunc, &e->pk_out, e->cxt);
	e->practice_att = InvalidAttrNumber;
	if (tg->tgargs[2][0] != '\0')
	{
		e->practice_att = required_column(rel, tg->tgargs[2], InvalidOid);
		getTypeOutputInfo(TupleDescAttr(desc, e->practice_att - 1)->atttypid, &outfunc, &varlena);
		fmgr_info_cxt(outfunc, &e->practice_out, e->cxt);
	}
	e->json = rowjson_plan_create(desc);

	/* the change log's columns */
	logrel = table_open(e->logrelid, AccessShareLock);
	logdesc = RelationGetDescr(logrel);
	for (int c = 0; c < LOG_NCOLS; c++)
		e->logatt[c] = InvalidAttrNumber;
	e->seq_att = e->xid_att = e->changed_at_att = InvalidAttrNumber;
	e->seqoid = InvalidOid;
	e->other_defaults = false;
	for (int i = 0; i < logdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(logdesc, i);
		const char *name = NameStr(att->attname);
		bool		ours = false;

		if (att->attisdropped)
			continue;
		for (int c = 0; c < LOG_NCOLS; c++)
		{
			if (strcmp(name, log_colnames[c]) == 0)
			{
				if (att->atttypid != log_coltypes[c])
					elog(ERROR, "change log column \"%s\" has an unexpected type", name);
				e->logatt[c] = att->attnum;
				ours = true;
			}
		}
		if (ours)
			continue;
		if (strcmp(name, "seq") == 0 && att->atttypid == INT8OID &&
			(att->attidentity || seqrelid != e->logrelid))
		{
			e->seq_att = att->attnum;
			e->seqoid = getIdentitySequence(seqrelid, get_attnum(seqrelid, "seq"), false);
		}
		else if (strcmp(name, "xid") == 0 && att->atttypid == XID8OID)
			e->xid_att = att->attnum;
		else if (strcmp(name, "changed_at") == 0 && att->atttypid == TIMESTAMPTZOID)
			e->changed_at_att = att->attnum;
		else if (att->atthasdef || att->attidentity)
			e->other_defaults = true;
	}
	table_close(logrel, AccessShareLock);
	for (int c = 0; c < LOG_NCOLS; c++)
		if (e->logatt[c] == InvalidAttrNumber)
			elog(ERROR, "change log of schema \"%s\" has no column \"%s\"",
				 get_namespace_name(RelationGetNamespace(rel)), log_colnames[c]);
	if (e->seq_att == InvalidAttrNumber || e->xid_att == InvalidAttrNumber)
		elog(ERROR, "change log of schema \"%s\" lacks its seq or xid column",
			 get_namespace_name(RelationGetNamespace(rel)));
	MemoryContextSwitchTo(oldcxt);
	e->valid = true;
}

/*
 * Appends every row of the transition table to the tenant's change log:
 * heap insert plus index insertion, as COPY does, with no SPI and no
 * executor run, so a single-row statement costs little more than the row.
 */
static void
capture_rows(TriggerData *td, CaptureEntry *e, const char *op, const SyncContext *ctx)
{
	Relation	rel = td->tg_relation;
	Trigger    *tg = td->tg_trigger;
	bool		is_delete = TRIGGER_FIRED_BY_DELETE(td->tg_event);
	Tuplestorestate *ts = is_delete ? td->tg_oldtable : td->tg_newtable;
	Relation	logrel;
	TupleDesc	logdesc;
	ResultRelInfo *rri;
	EState	   *estate;
	ExprContext *econtext;
	TupleTableSlot *src;
	TupleTableSlot *dst;
	ExprState **defaults = NULL;
	Datum		etype_d = CStringGetTextDatum(tg->tgargs[0]);
	Datum		op_d = CStringGetTextDatum(op);
	Datum		user_d = ctx->user_id ? CStringGetTextDatum(ctx->user_id) : (Datum) 0;
	Datum		client_d = ctx->client_id ? CStringGetTextDatum(ctx->client_id) : (Datum) 0;
	Datum		xid_d = FullTransactionIdGetDatum(GetTopFullTransactionId());

	/*
	 * changed_at: the clock now, after the transaction has its xid, not the
	 * statement's start: pull's time watermark (src/pull.c) relies on every
	 * change being stamped no earlier than its transaction took its xid.
	 */
	Datum		now_d = TimestampTzGetDatum(GetCurrentTimestamp());
	CommandId	cid = GetCurrentCommandId(true);
	const AttrNumber *la = e->logatt;

	logrel = table_open(e->logrelid, RowExclusiveLock);
	logdesc = RelationGetDescr(logrel);
	estate = CreateExecutorState();
	econtext = GetPerTupleExprContext(estate);
	rri = makeNode(ResultRelInfo);
	InitResultRelInfo(rri, logrel, 1, NULL, 0);
	ExecOpenIndices(rri, false);

	/* columns added to the log by others get their defaults */
	if (e->other_defaults)
	{
		defaults = palloc0(sizeof(ExprState *) * logdesc->natts);
		for (int i = 0; i < logdesc->natts; i++)
		{
			AttrNumber	attnum = i + 1;
			Node	   *def;
			bool		ours = (attnum == e->seq_att || attnum == e->xid_att ||
								attnum == e->changed_at_att);

			for (int c = 0; c < LOG_NCOLS; c++)
				ours |= (attnum == la[c]);
			if (ours || TupleDescAttr(logdesc, i)->attisdropped)
				continue;
			def = build_column_default(logrel, attnum);
			if (def != NULL)
				defaults[i] = ExecInitExpr(expression_planner((Expr *) def), NULL);
		}
	}

	src = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsMinimalTuple);
	dst = MakeSingleTupleTableSlot(logdesc, &TTSOpsVirtual);

	while (tuplestore_gettupleslot(ts, true, false, src))
	{
		MemoryContext oldcxt;
		Datum	   *v;
		bool	   *n;
		bool		isnull;
		Datum		d;

		ResetPerTupleExprContext(estate);
		oldcxt = MemoryContextSwitchTo(GetPerTupleMemoryContext(estate));

		ExecClearTuple(dst);
		v = dst->tts_values;
		n = dst->tts_isnull;
		for (int i = 0; i < logdesc->natts; i++)
		{
			n[i] = true;
			v[i] = (Datum) 0;
			if (defaults != NULL && defaults[i] != NULL)
				v[i] = ExecEvalExpr(defaults[i], econtext, &n[i]);
		}

		v[e->seq_att - 1] = Int64GetDatum(nextval_internal(e->seqoid, false));
		n[e->seq_att - 1] = false;
		v[e->xid_att - 1] = xid_d;
		n[e->xid_att - 1] = false;
		if (e->changed_at_att != InvalidAttrNumber)
		{
			v[e->changed_at_att - 1] = now_d;
			n[e->changed_at_att - 1] = false;
		}
		v[la[LOG_ENTITY_TYPE] - 1] = etype_d;
		n[la[LOG_ENTITY_TYPE] - 1] = false;
		d = slot_getattr(src, e->pk_att, &isnull);
		if (!isnull)
			v[la[LOG_ENTITY_ID] - 1] = CStringGetTextDatum(OutputFunctionCall(&e->pk_out, d));
		n[la[LOG_ENTITY_ID] - 1] = isnull;
		v[la[LOG_OPERATION] - 1] = op_d;
		n[la[LOG_OPERATION] - 1] = false;
		v[la[LOG_DATA] - 1] = JsonbPGetDatum(rowjson_convert(e->json, src));
		n[la[LOG_DATA] - 1] = false;
		v[la[LOG_VERSION] - 1] = slot_getattr(src, e->version_att, &isnull);
		n[la[LOG_VERSION] - 1] = isnull;
		if (!isnull && is_delete)	/* a tombstone is the next version */
			v[la[LOG_VERSION] - 1] = Int64GetDatum(DatumGetInt64(v[la[LOG_VERSION] - 1]) + 1);
		if (e->practice_att != InvalidAttrNumber)
		{
			d = slot_getattr(src, e->practice_att, &isnull);
			if (!isnull)
				v[la[LOG_PRACTICE_ID] - 1] = CStringGetTextDatum(OutputFunctionCall(&e->practice_out, d));
			n[la[LOG_PRACTICE_ID] - 1] = isnull;
		}
		v[la[LOG_USER_ID] - 1] = user_d;
		n[la[LOG_USER_ID] - 1] = (ctx->user_id == NULL);
		v[la[LOG_CLIENT_ID] - 1] = client_d;
		n[la[LOG_CLIENT_ID] - 1] = (ctx->client_id == NULL);

		if (n[la[LOG_ENTITY_ID] - 1] || n[la[LOG_VERSION] - 1])
			ereport(ERROR,
					(errcode(ERRCODE_SS_MISSING_ROW_COLUMNS),
					 errmsg("a tracked row of \"%s\" has no id or no version", RelationGetRelationName(rel))));

		ExecStoreVirtualTuple(dst);
		table_tuple_insert(logrel, dst, cid, 0, NULL);
		if (rri->ri_NumIndices > 0)
			ExecInsertIndexTuples(rri, dst, estate, false, false, NULL, NIL);
		MemoryContextSwitchTo(oldcxt);
	}

	ExecDropSingleTupleTableSlot(src);
	ExecDropSingleTupleTableSlot(dst);
	ExecCloseIndices(rri);
	FreeExecutorState(estate);
	table_close(logrel, NoLock);
}

/*
 * smartsync.capture(entity_type, pk_column, practice_column): AFTER STATEMENT
 * trigger appending the statement's rows to the tenant's change log.
 */
Datum
smartsync_capture(PG_FUNCTION_ARGS)
{
	TriggerData *td = check_trigger_call(fcinfo, "smartsync.capture");
	Trigger    *tg = td->tg_trigger;
	CaptureEntry *e;
	bool		found;
	const char *op;
	SyncContext ctx;

	if (!TRIGGER_FIRED_AFTER(td->tg_event) || !TRIGGER_FIRED_FOR_STATEMENT(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_SS_TRIGGER_MISUSE),
				 errmsg("smartsync.capture() must be an AFTER statement trigger with a transition table")));
	if (tg->tgnargs != 3)
		ereport(ERROR,
				(errcode(ERRCODE_SS_TRIGGER_MISUSE),
				 errmsg("smartsync.capture() takes three arguments: entity type, primary-key column, practice column")));

	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		op = "create";
	else if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
		op = "update";
	else if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
		op = "delete";
	else
		ereport(ERROR,
				(errcode(ERRCODE_SS_TRIGGER_MISUSE),
				 errmsg("smartsync.capture() handles INSERT, UPDATE and DELETE only")));

	if ((TRIGGER_FIRED_BY_DELETE(td->tg_event) && td->tg_oldtable == NULL) ||
		(!TRIGGER_FIRED_BY_DELETE(td->tg_event) && td->tg_newtable == NULL))
		ereport(ERROR,
				(errcode(ERRCODE_SS_TRIGGER_MISUSE),
				 errmsg("smartsync.capture() needs a transition table"),
				 errhint("Use REFERENCING NEW TABLE AS smartsync_new (OLD TABLE AS smartsync_old for DELETE).")));

	/* nothing to log for a statement that touched no row */
	if (TRIGGER_FIRED_BY_DELETE(td->tg_event) ?
		tuplestore_tuple_count(td->tg_oldtable) == 0 :
		tuplestore_tuple_count(td->tg_newtable) == 0)
		return PointerGetDatum(NULL);

	/* once per trigger: is this a registered entity table, and where is its log? */
	capture_init_caches();
	e = hash_search(capture_cache, &tg->tgoid, HASH_ENTER, &found);
	if (!found)
	{
		e->valid = false;
		e->cxt = NULL;
		e->relid = e->logrelid = InvalidOid;
	}
	if (!e->valid)
	{
		if (e->cxt != NULL)
			MemoryContextDelete(e->cxt);
		e->cxt = NULL;
		PG_TRY();
		{
			capture_entry_fill(e, td);
		}
		PG_CATCH();
		{
			if (e->cxt != NULL)
				MemoryContextDelete(e->cxt);
			hash_search(capture_cache, &tg->tgoid, HASH_REMOVE, NULL);
			PG_RE_THROW();
		}
		PG_END_TRY();
	}

	sync_context_read(&ctx);
	if (OidIsValid(e->citus_origin))
		sync_citus_adopt_log(e->citus_origin);	/* a log moved here is adopted first */
	capture_rows(td, e, op, &ctx);
	sync_notify_capture(td);	/* the change signal at commit (notify.c) */
	return PointerGetDatum(NULL);
}

/* smartsync.refuse_truncate(): BEFORE TRUNCATE trigger of tracked tables. */
Datum
smartsync_refuse_truncate(PG_FUNCTION_ARGS)
{
	TriggerData *td = check_trigger_call(fcinfo, "smartsync.refuse_truncate");

	ereport(ERROR,
			(errcode(ERRCODE_SS_TRUNCATE),
			 errmsg("cannot truncate tracked table \"%s\"", RelationGetRelationName(td->tg_relation)),
			 errdetail("A truncate removes rows without tombstones, so devices would never learn of the deletes."),
			 errhint("Use DELETE so every removed row leaves a tombstone.")));
	return PointerGetDatum(NULL);
}
