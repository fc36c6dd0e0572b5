/*
 * changelog.c: reading one entity's history from the change log.
 *
 * Capture (capture.c) logs a create and a delete with the whole row, and an
 * update with only the columns it set and updated_at (its version is the log
 * row's version), except every SYNC_LOG_FULL_EVERY'th
 * version (and every update of a table whose other BEFORE UPDATE triggers
 * could change any column), which carries the whole row.  The row as it was
 * at a version is therefore the nearest whole image at or before it, with the
 * updates after it applied in order: a walk of at most SYNC_LOG_FULL_EVERY
 * log rows through the log's (entity_key, seq) index.  Push and conflict
 * resolution use it for the base version of a three-way merge.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "smartsync.h"
#include "push.h"

/*
 * Runs (not read-only) a plan reading one entity's log rows newest first,
 * ORDER BY entity_key DESC, seq DESC with a LIMIT: planned with bitmap and
 * sequential scans disabled, so that it walks the (entity_key, seq) index
 * backwards and stops at its LIMIT whatever the planner estimates of the
 * entity's rows.  An estimate of a row or two (the log's statistics stale,
 * or an average over entities of which one is busy) makes a bitmap scan and a
 * sort look cheaper, and that reads every row of the entity: the whole
 * history of a row updated 60,000 times took 46 ms instead of 0.5.
 */
int
sync_log_exec_entity(SPIPlanPtr plan, Datum *values)
{
	static const char *const off[] = {"enable_bitmapscan", "enable_seqscan"};

	return push_exec_planner_off(plan, values, NULL, 0, off, lengthof(off));
}

/*
 * The row of entity (type, id) in the log of schema qschema (quoted) as it
 * was at version: NULL when the log no longer holds it.  Called inside SPI.
 */
Jsonb *
sync_log_row_at(const char *qschema, const char *type, const char *id, int64 version)
{
	Oid			argtypes[5] = {INT8OID, TEXTOID, TEXTOID, INT8OID, INT8OID};
	Datum		values[5];
	char	   *sql;
	int			rc;
	int			base = -1;
	Jsonb	   *row = NULL;
	SPITupleTable *tt;
	uint64		n;

	/* the change that made the version, and the log rows before it down to a whole image */
	sql = psprintf("SELECT c.operation, c.data, c.version, "
				   "pg_catalog.jsonb_build_object('version', c.version) "
				   "FROM %1$s.sync_changes AS c "
				   "WHERE c.entity_key = $1 AND c.entity_type = $2 AND c.entity_id = $3 "
				   "AND c.seq <= (SELECT v.seq FROM %1$s.sync_changes AS v "
				   "WHERE v.entity_key = $1 AND v.entity_type = $2 AND v.entity_id = $3 "
				   "AND v.version = $4 AND v.operation <> 'delete' "
				   "ORDER BY v.entity_key DESC, v.seq DESC LIMIT 1) "
				   "ORDER BY c.entity_key DESC, c.seq DESC LIMIT $5",
				   qschema);
	values[0] = Int64GetDatum(sync_entity_key(type, strlen(type), id, strlen(id)));
	values[1] = CStringGetTextDatum(type);
	values[2] = CStringGetTextDatum(id);
	values[3] = Int64GetDatum(version);
	values[4] = Int64GetDatum(SYNC_LOG_FULL_EVERY + 1);
	rc = sync_log_exec_entity(push_plan_ex(sql, 5, argtypes, true), values);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "change log read failed: %s", SPI_result_code_string(rc));
	tt = SPI_tuptable;
	n = SPI_processed;

	/* newest first: find the nearest whole image */
	for (uint64 i = 0; i < n; i++)
	{
		char	   *op = SPI_getvalue(tt->vals[i], tt->tupdesc, 1);
		bool		isnull;
		int64		v = DatumGetInt64(SPI_getbinval(tt->vals[i], tt->tupdesc, 3, &isnull));

		if (strcmp(op, "delete") == 0)
			break;				/* another life of the row: not this one's history */
		if (strcmp(op, "create") == 0 || sync_log_row_is_whole(v))
		{
			base = (int) i;
			break;
		}
	}
	/*
	 * then the updates after it, oldest first: the columns each set (with
	 * updated_at), and its version (the log row's version)
	 */
	for (int i = base; i >= 0; i--)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(tt->vals[i], tt->tupdesc, 2, &isnull);

		if (isnull)
			continue;
		if (row == NULL)
			row = DatumGetJsonbPCopy(d);
		else
		{
			Datum		stamp = SPI_getbinval(tt->vals[i], tt->tupdesc, 4, &isnull);

			row = DatumGetJsonbP(DirectFunctionCall2(jsonb_concat, JsonbPGetDatum(row), d));
			row = DatumGetJsonbP(DirectFunctionCall2(jsonb_concat, JsonbPGetDatum(row), stamp));
		}
	}
	SPI_freetuptable(tt);
	return row;
}

PG_FUNCTION_INFO_V1(smartsync_row_at_version);

/*
 * smartsync.row_at_version(tenant_id text, entity_type text, entity_id text,
 * version bigint) RETURNS jsonb: the row as it was at version, rebuilt from
 * the tenant's change log (NULL when the log no longer holds it).
 */
Datum
smartsync_row_at_version(PG_FUNCTION_ARGS)
{
	char	   *tenant = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *type = text_to_cstring(PG_GETARG_TEXT_PP(1));
	char	   *id = text_to_cstring(PG_GETARG_TEXT_PP(2));
	int64		version = PG_GETARG_INT64(3);
	const char *qschema = quote_identifier(sync_tenant_schema(tenant));
	MemoryContext cxt = CurrentMemoryContext;
	Jsonb	   *row;
	Jsonb	   *result = NULL;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	row = sync_log_row_at(qschema, type, id, version);
	if (row != NULL)
	{
		result = MemoryContextAlloc(cxt, VARSIZE(row));
		memcpy(result, row, VARSIZE(row));
	}
	SPI_finish();
	if (result == NULL)
		PG_RETURN_NULL();
	PG_RETURN_JSONB_P(result);
}
