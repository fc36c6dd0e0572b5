/*
 * conflictstore.c: reading the conflict store (smartsync.list_conflicts,
 * smartsync.conflict_stats).
 *
 * Both read the request context's tenant schema only.  When the context names
 * a practice they see the conflicts recorded in that practice, and those
 * recorded without one whose row (server data, else local data) is of that
 * practice or whose entity type has no practice column.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "smartsync.h"
#include "citus.h"
#include "kernel.h"
#include "push.h"
#include "resolve.h"

PG_FUNCTION_INFO_V1(smartsync_list_conflicts);
PG_FUNCTION_INFO_V1(smartsync_conflict_stats);

#define LIST_MAX_LIMIT 1000

static const char *const severities[] = {"low", "medium", "high", "critical"};

/* The WHERE condition on practice; $n is the context's practice (text, may be null). */
static char *
practice_condition(int n)
{
	return psprintf("($%1$d::pg_catalog.text IS NULL OR c.practice_id = $%1$d "
					"OR (c.practice_id IS NULL AND (e.practice_column IS NULL "
					"OR COALESCE(c.server_data, c.local_data) ->> e.practice_column::pg_catalog.text = $%1$d)))",
					n);
}

/* Pushes key: the jsonb column col of the current SPI row (null when null). */
static Jsonb *
push_col(JsonbParseState **ps, const char *key, HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);
	Jsonb	   *jb = isnull ? NULL : DatumGetJsonbP(d);

	push_key(ps, key);
	push_jsonb(ps, WJB_VALUE, jb);
	return jb;
}

/* Pushes key: the text column col (null when null). */
static char *
push_text_col(JsonbParseState **ps, const char *key, HeapTuple tup, TupleDesc desc, int col)
{
	char	   *s = SPI_getvalue(tup, desc, col);

	push_key(ps, key);
	if (s)
		push_str(ps, WJB_VALUE, s);
	else
		push_null(ps);
	return s;
}

/* Pushes key: the int8 column col (null when null). */
static void
push_int8_col(JsonbParseState **ps, const char *key, HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	push_key(ps, key);
	if (isnull)
		push_null(ps);
	else
		push_int64(ps, DatumGetInt64(d));
}

/* Pushes the value of field f in row, or null when absent. */
static void
push_field_value(JsonbParseState **ps, Jsonb *row, const char *f)
{
	JsonbValue *v = NULL;

	if (row != NULL && JB_ROOT_IS_OBJECT(row))
		v = getKeyJsonValueFromContainer(&row->root, f, strlen(f), NULL);
	if (v != NULL)
		pushJsonbValue(ps, WJB_VALUE, v);
	else
		push_null(ps);
}

/* Raises SS609 about a listing parameter. */
static void
bad_filter(const char *msg, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_SS_CONFLICT_FILTER),
			 errmsg("invalid conflict filter: %s", msg),
			 errdetail("%s", detail)));
}

/* Raises SS609 unless s is a severity. */
static void
check_severity(const char *s)
{
	for (int i = 0; i < (int) lengthof(severities); i++)
		if (strcmp(s, severities[i]) == 0)
			return;
	bad_filter(psprintf("unknown severity \"%s\"", s),
			   "A severity is one of low, medium, high, critical.");
}

/*
 * smartsync.list_conflicts(p_entity_type text, p_severity text,
 * p_min_age interval, p_limit integer) RETURNS jsonb
 */
Datum
smartsync_list_conflicts(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = CurrentMemoryContext;
	PushBatch	b;
	char	   *entity_type = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *severity = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	Interval   *min_age = PG_ARGISNULL(2) ? NULL : PG_GETARG_INTERVAL_P(2);
	int32		limit = PG_ARGISNULL(3) ? 100 : PG_GETARG_INT32(3);
	Oid			argtypes[5] = {TEXTOID, TEXTOID, INTERVALOID, TEXTOID, INT4OID};
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	char	   *sql;
	int			rc;
	int64		total = 0;
	JsonbParseState *ps = NULL;
	JsonbValue *res;
	Jsonb	   *result;
	Datum		routed;

	if (sync_citus_route(fcinfo, &routed))	/* Citus: list on the tenant's node */
		return routed;
	if (severity != NULL)
		check_severity(severity);
	if (limit < 1 || limit > LIST_MAX_LIMIT)
		bad_filter(psprintf("p_limit %d is out of range", limit),
				   psprintf("p_limit is between 1 and %d.", LIST_MAX_LIMIT));
	if (min_age != NULL &&
		DatumGetInt32(DirectFunctionCall2(interval_cmp, IntervalPGetDatum(min_age),
										  DirectFunctionCall3(interval_in, CStringGetDatum("0"),
															  ObjectIdGetDatum(InvalidOid),
															  Int32GetDatum(-1)))) < 0)
		bad_filter("p_min_age is negative", "p_min_age is how old a conflict is at least, e.g. '1 hour'.");
	/* beyond this, now() - p_min_age leaves the range of timestamps */
	if (min_age != NULL &&
		DatumGetInt32(DirectFunctionCall2(interval_cmp, IntervalPGetDatum(min_age),
										  DirectFunctionCall3(interval_in, CStringGetDatum("1000 years"),
															  ObjectIdGetDatum(InvalidOid),
															  Int32GetDatum(-1)))) > 0)
		bad_filter("p_min_age is out of range", "p_min_age is how old a conflict is at least, at most 1000 years.");

	conflict_context(&b, cxt);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	MemoryContextSwitchTo(cxt);

	sql = psprintf("SELECT c.conflict_id, c.entity_type, c.entity_id, c.operation, c.operation_id, "
				   "c.client_id, c.user_id, c.practice_id, c.conflict_type, c.severity, "
				   "pg_catalog.to_jsonb(c.affected_fields), c.local_data, c.server_data, c.base_data, "
				   "c.base_version, c.server_version, pg_catalog.to_jsonb(c.local_ts), "
				   "pg_catalog.to_jsonb(c.created_at), pg_catalog.count(*) OVER () "
				   "FROM %s.sync_conflicts AS c "
				   "LEFT JOIN smartsync.entity_types AS e ON e.entity_type = c.entity_type "
				   "WHERE c.status = 'open' "
				   "AND ($1::pg_catalog.text IS NULL OR c.entity_type = $1) "
				   "AND ($2::pg_catalog.text IS NULL OR c.severity = $2) "
				   "AND ($3::pg_catalog.interval IS NULL OR c.created_at <= pg_catalog.now() - $3) "
				   "AND %s "
				   "ORDER BY c.created_at, c.conflict_id LIMIT $5",
				   b.qschema, practice_condition(4));
	values[0] = entity_type ? CStringGetTextDatum(entity_type) : (Datum) 0;
	nulls[0] = entity_type ? ' ' : 'n';
	values[1] = severity ? CStringGetTextDatum(severity) : (Datum) 0;
	nulls[1] = severity ? ' ' : 'n';
	values[2] = min_age ? IntervalPGetDatum(min_age) : (Datum) 0;
	nulls[2] = min_age ? ' ' : 'n';
	values[3] = b.ctx.practice_id ? CStringGetTextDatum(b.ctx.practice_id) : (Datum) 0;
	nulls[3] = b.ctx.practice_id ? ' ' : 'n';
	values[4] = Int32GetDatum(limit);
	rc = push_exec(push_plan(sql, 5, argtypes), values, nulls, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading the conflict store failed: %s", SPI_result_code_string(rc));

	{
		SPITupleTable *tt = SPI_tuptable;
		uint64		n = SPI_processed;

		pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
		push_key(&ps, "conflicts");
		pushJsonbValue(&ps, WJB_BEGIN_ARRAY, NULL);
		for (uint64 i = 0; i < n; i++)
		{
			HeapTuple	tup = tt->vals[i];
			TupleDesc	desc = tt->tupdesc;
			char	   *type = SPI_getvalue(tup, desc, 2);
			char	   *id = SPI_getvalue(tup, desc, 3);
			PushEntity *e = conflict_entity(&b, type, true);
			Jsonb	   *fields;
			Jsonb	   *local;
			Jsonb	   *server;
			Jsonb	   *base;
			bool		isnull;
			Datum		d;

			pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
			push_int8_col(&ps, "conflictId", tup, desc, 1);
			push_key(&ps, "entityType");
			push_str(&ps, WJB_VALUE, type);
			d = SPI_getbinval(tup, desc, 13, &isnull);
			server = isnull ? NULL : DatumGetJsonbP(d);
			push_key(&ps, "entityId");
			conflict_push_entity_id(&ps, e, server, id);
			push_text_col(&ps, "operation", tup, desc, 4);
			push_text_col(&ps, "operationId", tup, desc, 5);
			push_text_col(&ps, "clientId", tup, desc, 6);
			push_text_col(&ps, "userId", tup, desc, 7);
			push_text_col(&ps, "practiceId", tup, desc, 8);
			push_text_col(&ps, "conflictType", tup, desc, 9);
			push_text_col(&ps, "severity", tup, desc, 10);
			fields = push_col(&ps, "affectedFields", tup, desc, 11);
			local = push_col(&ps, "localData", tup, desc, 12);
			(void) push_col(&ps, "serverData", tup, desc, 13);
			base = push_col(&ps, "baseData", tup, desc, 14);
			push_int8_col(&ps, "baseVersion", tup, desc, 15);
			push_int8_col(&ps, "serverVersion", tup, desc, 16);
			(void) push_col(&ps, "localTimestamp", tup, desc, 17);
			(void) push_col(&ps, "createdAt", tup, desc, 18);

			/* the affected fields side by side: what a UI shows */
			push_key(&ps, "fields");
			pushJsonbValue(&ps, WJB_BEGIN_ARRAY, NULL);
			if (fields != NULL && JB_ROOT_IS_ARRAY(fields) && !JB_ROOT_IS_SCALAR(fields))
			{
				JsonbIterator *it = JsonbIteratorInit(&fields->root);
				JsonbValue	v;
				JsonbIteratorToken tok;

				while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
				{
					char	   *f;

					if (tok != WJB_ELEM || v.type != jbvString)
						continue;
					f = pnstrdup(v.val.string.val, v.val.string.len);
					pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
					push_key(&ps, "field");
					push_str(&ps, WJB_VALUE, f);
					push_key(&ps, "local");
					push_field_value(&ps, local, f);
					push_key(&ps, "server");
					push_field_value(&ps, server, f);
					push_key(&ps, "base");
					push_field_value(&ps, base, f);
					pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
				}
			}
			pushJsonbValue(&ps, WJB_END_ARRAY, NULL);
			pushJsonbValue(&ps, WJB_END_OBJECT, NULL);

			d = SPI_getbinval(tup, desc, 19, &isnull);
			if (!isnull)
				total = DatumGetInt64(d);
		}
		pushJsonbValue(&ps, WJB_END_ARRAY, NULL);
		push_key(&ps, "total");
		push_int64(&ps, total);
		push_key(&ps, "limit");
		push_int64(&ps, limit);
		res = pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
		result = JsonbValueToJsonb(res);
		SPI_freetuptable(tt);
	}

	SPI_finish();
	MemoryContextSwitchTo(cxt);
	PG_RETURN_JSONB_P(result);
}

/* smartsync.conflict_stats() RETURNS jsonb */
Datum
smartsync_conflict_stats(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = CurrentMemoryContext;
	PushBatch	b;
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	char		nulls[1] = {' '};
	char	   *sql;
	int			rc;
	int64		open = 0;
	int64		resolved = 0;
	int64		by_severity[lengthof(severities)] = {0};
	Jsonb	   *oldest = NULL;
	JsonbParseState *ps = NULL;
	JsonbValue *res;
	Jsonb	   *result;
	Datum		routed;

	if (sync_citus_route(fcinfo, &routed))	/* Citus: count on the tenant's node */
		return routed;
	conflict_context(&b, cxt);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	MemoryContextSwitchTo(cxt);

	sql = psprintf("SELECT c.status = 'open', c.severity, c.entity_type, pg_catalog.count(*), "
				   "pg_catalog.to_jsonb(pg_catalog.min(pg_catalog.min(c.created_at)) "
				   "FILTER (WHERE c.status = 'open') OVER ()) "
				   "FROM %s.sync_conflicts AS c "
				   "LEFT JOIN smartsync.entity_types AS e ON e.entity_type = c.entity_type "
				   "WHERE %s GROUP BY 1, 2, 3 ORDER BY 3, 2, 1",
				   b.qschema, practice_condition(1));
	values[0] = b.ctx.practice_id ? CStringGetTextDatum(b.ctx.practice_id) : (Datum) 0;
	nulls[0] = b.ctx.practice_id ? ' ' : 'n';
	rc = push_exec(push_plan(sql, 1, argtypes), values, nulls, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading the conflict store failed: %s", SPI_result_code_string(rc));

	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	push_key(&ps, "byEntityType");
	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	{
		char	   *prev_type = NULL;
		int64		type_open = 0;

		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;
			Datum		first_open = SPI_getbinval(tup, desc, 5, &isnull);
			bool		is_open;
			char	   *sev;
			char	   *type;
			int64		n;

			if (i == 0 && !isnull)
				oldest = DatumGetJsonbPCopy(first_open);
			is_open = DatumGetBool(SPI_getbinval(tup, desc, 1, &isnull));
			sev = SPI_getvalue(tup, desc, 2);
			type = SPI_getvalue(tup, desc, 3);
			n = DatumGetInt64(SPI_getbinval(tup, desc, 4, &isnull));

			if (prev_type != NULL && strcmp(prev_type, type) != 0)
			{
				if (type_open > 0)
				{
					push_key(&ps, prev_type);
					push_int64(&ps, type_open);
				}
				type_open = 0;
			}
			prev_type = type;
			if (!is_open)
			{
				resolved += n;
				continue;
			}
			open += n;
			type_open += n;
			for (int s = 0; s < (int) lengthof(severities); s++)
				if (sev != NULL && strcmp(sev, severities[s]) == 0)
					by_severity[s] += n;
		}
		if (prev_type != NULL && type_open > 0)
		{
			push_key(&ps, prev_type);
			push_int64(&ps, type_open);
		}
	}
	pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
	SPI_freetuptable(SPI_tuptable);

	push_key(&ps, "open");
	push_int64(&ps, open);
	push_key(&ps, "resolved");
	push_int64(&ps, resolved);
	push_key(&ps, "bySeverity");
	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	for (int s = 0; s < (int) lengthof(severities); s++)
	{
		push_key(&ps, severities[s]);
		push_int64(&ps, by_severity[s]);
	}
	pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
	push_key(&ps, "oldestOpenAt");
	push_jsonb(&ps, WJB_VALUE, oldest);
	res = pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
	result = JsonbValueToJsonb(res);

	SPI_finish();
	MemoryContextSwitchTo(cxt);
	PG_RETURN_JSONB_P(result);
}
