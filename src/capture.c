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
 *                               every affected row to the tenant's change log
 *                               in one INSERT ... SELECT.
 *   smartsync.refuse_truncate() BEFORE TRUNCATE: a truncate would drop rows
 *                               without tombstones, so it is refused.
 *
 * Plans are prepared once per trigger and kept (SPI_keepplan); attribute
 * numbers are cached per relation.  Nothing is looked up in the catalogs per
 * row.  The change log's xid column defaults to pg_current_xact_id(), which
 * the exact pull cursor needs.
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

#include "smartsync.h"

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

/* per-trigger prepared INSERT into the tenant's change log */
typedef struct CaptureEntry
{
	Oid			tgoid;			/* hash key */
	Oid			nspid;			/* schema the plan was built for */
	SPIPlanPtr	plan;
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
	/* Capture plans revalidate themselves through the plan cache. */
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
		newtup = td->tg_trigtuple;

	cols[0] = e->version_att;
	vals[0] = Int64GetDatum(version);
	cols[1] = e->updated_at_att;
	vals[1] = TimestampTzGetDatum(GetCurrentStatementStartTimestamp());

	PG_RETURN_POINTER(heap_modify_tuple_by_cols(newtup, desc, 2, cols, vals, nulls));
}

/* Raises SS121 unless rel is a registered entity table in a tenant schema. */
static void
check_tracked(Relation rel, const char *entity_type, const char *nspname)
{
	Oid			argtypes[3] = {TEXTOID, TEXTOID, TEXTOID};
	Datum		values[3];
	int			rc;

	values[0] = CStringGetTextDatum(entity_type);
	values[1] = CStringGetTextDatum(RelationGetRelationName(rel));
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
						nspname, RelationGetRelationName(rel)),
				 errdetail("The capture trigger names entity type \"%s\".", entity_type),
				 errhint("Register the entity type and provision the tenant instead of creating capture triggers by hand.")));
}

/* Builds the INSERT ... SELECT that logs the transition table of one trigger. */
static char *
capture_query(TriggerData *td, const char *nspname)
{
	Trigger    *tg = td->tg_trigger;
	StringInfoData q;
	bool		is_delete = TRIGGER_FIRED_BY_DELETE(td->tg_event);
	const char *practice = tg->tgargs[2];

	initStringInfo(&q);
	appendStringInfo(&q,
					 "INSERT INTO %s.sync_changes "
					 "(entity_type, entity_id, operation, data, version, practice_id, user_id, client_id) "
					 "SELECT $1, t.%s::text, $2, to_jsonb(t), t.version%s, ",
					 quote_identifier(nspname),
					 quote_identifier(tg->tgargs[1]),
					 is_delete ? " + 1" : "");
	if (practice[0] != '\0')
		appendStringInfo(&q, "t.%s::text", quote_identifier(practice));
	else
		appendStringInfoString(&q, "NULL::text");
	appendStringInfo(&q, ", $3, $4 FROM %s t",
					 quote_identifier(is_delete ? tg->tgoldtable : tg->tgnewtable));
	return q.data;
}

/*
 * smartsync.capture(entity_type, pk_column, practice_column): AFTER STATEMENT
 * trigger appending the statement's rows to the tenant's change log.
 */
Datum
smartsync_capture(PG_FUNCTION_ARGS)
{
	TriggerData *td = check_trigger_call(fcinfo, "smartsync.capture");
	Relation	rel = td->tg_relation;
	Trigger    *tg = td->tg_trigger;
	Oid			nspid = RelationGetNamespace(rel);
	CaptureEntry *e;
	bool		found;
	const char *op;
	SyncContext ctx;
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	int			rc;

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

	sync_context_read(&ctx);

	capture_init_caches();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rc = SPI_register_trigger_data(td);
	if (rc != SPI_OK_TD_REGISTER)
		elog(ERROR, "SPI_register_trigger_data failed: %s", SPI_result_code_string(rc));

	e = hash_search(capture_cache, &tg->tgoid, HASH_ENTER, &found);
	if (!found || e->nspid != nspid || e->plan == NULL)
	{
		Oid			argtypes[4] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID};
		char	   *nspname = get_namespace_name(nspid);
		SPIPlanPtr	plan;

		if (found && e->plan != NULL)
			SPI_freeplan(e->plan);
		e->plan = NULL;
		e->nspid = nspid;
		check_tracked(rel, tg->tgargs[0], nspname);
		plan = SPI_prepare(capture_query(td, nspname), 4, argtypes);
		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		e->plan = plan;
	}

	values[0] = CStringGetTextDatum(tg->tgargs[0]);
	values[1] = CStringGetTextDatum(op);
	if (ctx.user_id)
		values[2] = CStringGetTextDatum(ctx.user_id);
	else
		nulls[2] = 'n';
	if (ctx.client_id)
		values[3] = CStringGetTextDatum(ctx.client_id);
	else
		nulls[3] = 'n';

	rc = SPI_execute_plan(e->plan, values, nulls, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "capture insert failed: %s", SPI_result_code_string(rc));
	SPI_finish();
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
