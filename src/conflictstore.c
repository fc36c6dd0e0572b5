/*
 * conflictstore.c: reading the conflict store (smartsync.list_conflicts,
 * smartsync.conflict_stats).
 *
 * Both read the request context's tenant schema only.  When the context names
 * a practice they see the conflicts recorded in that practice, and those
 * recorded without one whose row (server data, else local data) is of that
 * practice or whose entity type has no practice column.
 *
 * A listing page reads what it shows: keyset pages along the open conflicts'
 * index (created_at, conflict_id), the next page after the last conflict id
 * of the previous one.  Counts come from sync_conflict_counts, which triggers
 * keep per practice scope, entity type, severity and status
 * (smartsync._count_conflicts), so neither the stats nor a listing's total
 * read the store.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
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

/* The same rule on sync_conflict_counts rows k; $n is the context's practice. */
static char *
count_scope_condition(int n)
{
	return psprintf("($%1$d::pg_catalog.text IS NULL OR k.every_practice OR k.scope = $%1$d)", n);
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
 * The open conflicts counted for the filters: the kept counts, less those
 * younger than min_age (read from the store: the young ones are few).
 */
static int64
count_open(PushBatch *b, Datum *values, const char *nulls, bool min_age)
{
	Oid			argtypes[4] = {TEXTOID, TEXTOID, INTERVALOID, TEXTOID};
	char	   *sql;
	int			rc;
	bool		isnull;
	int64		total = 0;

	sql = psprintf("SELECT coalesce(sum(k.n), 0)::pg_catalog.int8 FROM %s.sync_conflict_counts AS k "
				   "WHERE k.status = 'open' "
				   "AND ($1::pg_catalog.text IS NULL OR k.entity_type = $1) "
				   "AND ($2::pg_catalog.text IS NULL OR k.severity = $2) AND %s",
				   b->qschema, count_scope_condition(4));
	rc = push_exec(push_plan(sql, 4, argtypes), values, nulls, 0);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "reading the conflict counts failed: %s", SPI_result_code_string(rc));
	total = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_freetuptable(SPI_tuptable);
	if (!min_age)
		return total;

	sql = psprintf("SELECT pg_catalog.count(*) FROM %s.sync_conflicts AS c "
				   "LEFT JOIN smartsync.entity_types AS e ON e.entity_type = c.entity_type "
				   "WHERE c.status = 'open' AND c.created_at > pg_catalog.now() - $3 "
				   "AND ($1::pg_catalog.text IS NULL OR c.entity_type = $1) "
				   "AND ($2::pg_catalog.text IS NULL OR c.severity = $2) AND %s",
				   b->qschema, practice_condition(4));
	rc = push_exec(push_plan(sql, 4, argtypes), values, nulls, 0);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "reading the conflict store failed: %s", SPI_result_code_string(rc));
	total -= DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_freetuptable(SPI_tuptable);
	return Max(total, 0);
}

/*
 * smartsync.list_conflicts(p_entity_type text, p_severity text,
 * p_min_age interval, p_limit integer, p_after bigint) RETURNS jsonb
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
	bool		has_after = PG_NARGS() > 4 && !PG_ARGISNULL(4);
	int64		after = has_after ? PG_GETARG_INT64(4) : 0;
	Oid			argtypes[7] = {TEXTOID, TEXTOID, INTERVALOID, TEXTOID, INT4OID, TIMESTAMPTZOID, INT8OID};
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', 'n', 'n'};
	char	   *sql;
	int			rc;
	int64		total;
	int64		last_id = 0;
	bool		more = false;
	SPITupleTable *page = NULL;
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

	values[0] = entity_type ? CStringGetTextDatum(entity_type) : (Datum) 0;
	nulls[0] = entity_type ? ' ' : 'n';
	values[1] = severity ? CStringGetTextDatum(severity) : (Datum) 0;
	nulls[1] = severity ? ' ' : 'n';
	values[2] = min_age ? IntervalPGetDatum(min_age) : (Datum) 0;
	nulls[2] = min_age ? ' ' : 'n';
	values[3] = b.ctx.practice_id ? CStringGetTextDatum(b.ctx.practice_id) : (Datum) 0;
	nulls[3] = b.ctx.practice_id ? ' ' : 'n';
	values[4] = Int32GetDatum(limit + 1);

	/* the page after p_after: the position (created_at, conflict_id) of that conflict */
	if (has_after)
	{
		Oid			aftertypes[1] = {INT8OID};
		Datum		aftervalues[1] = {Int64GetDatum(after)};
		bool		isnull;

		sql = psprintf("SELECT c.created_at FROM %s.sync_conflicts AS c WHERE c.conflict_id = $1",
					   b.qschema);
		rc = push_exec(push_plan(sql, 1, aftertypes), aftervalues, NULL, 1);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "reading the conflict store failed: %s", SPI_result_code_string(rc));
		if (SPI_processed == 0)
			bad_filter(psprintf("p_after " INT64_FORMAT " is not a conflict of the tenant", after),
					   "p_after is the conflictId of the last conflict of the previous page (the response's \"next\").");
		values[5] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		values[6] = Int64GetDatum(after);
		nulls[5] = nulls[6] = ' ';
		SPI_freetuptable(SPI_tuptable);
	}

	/* one page along the open conflicts' index: it reads what it shows */
	sql = psprintf("SELECT c.conflict_id, c.entity_type, c.entity_id, c.operation, c.operation_id, "
				   "c.client_id, c.user_id, c.practice_id, c.conflict_type, c.severity, "
				   "pg_catalog.to_jsonb(c.affected_fields), c.local_data, c.server_data, c.base_data, "
				   "c.base_version, c.server_version, pg_catalog.to_jsonb(c.local_ts), "
				   "pg_catalog.to_jsonb(c.created_at) "
				   "FROM %s.sync_conflicts AS c "
				   "LEFT JOIN smartsync.entity_types AS e ON e.entity_type = c.entity_type "
				   "WHERE c.status = 'open' "
				   "AND ($6::pg_catalog.timestamptz IS NULL OR (c.created_at, c.conflict_id) > ($6, $7)) "
				   "AND ($1::pg_catalog.text IS NULL OR c.entity_type = $1) "
				   "AND ($2::pg_catalog.text IS NULL OR c.severity = $2) "
				   "AND ($3::pg_catalog.interval IS NULL OR c.created_at <= pg_catalog.now() - $3) "
				   "AND %s "
				   "ORDER BY c.created_at, c.conflict_id LIMIT $5",
				   b.qschema, practice_condition(4));
	rc = push_exec(push_plan(sql, 7, argtypes), values, nulls, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading the conflict store failed: %s", SPI_result_code_string(rc));

	{
		SPITupleTable *tt = SPI_tuptable;
		uint64		n = SPI_processed;

		if (n > (uint64) limit)
		{
			more = true;
			n = limit;
		}
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

			last_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
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
		}
		pushJsonbValue(&ps, WJB_END_ARRAY, NULL);
		/* (the page's rows stay until the result is built: its values point into them) */
		page = tt;
	}
	total = count_open(&b, values, nulls, min_age != NULL);
	push_key(&ps, "total");
	push_int64(&ps, total);
	push_key(&ps, "limit");
	push_int64(&ps, limit);
	push_key(&ps, "hasMore");
	push_bool(&ps, more);
	push_key(&ps, "next");
	if (more)
		push_int64(&ps, last_id);
	else
		push_null(&ps);
	res = pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
	result = JsonbValueToJsonb(res);
	SPI_freetuptable(page);

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
	values[0] = b.ctx.practice_id ? CStringGetTextDatum(b.ctx.practice_id) : (Datum) 0;
	nulls[0] = b.ctx.practice_id ? ' ' : 'n';

	/* the oldest open conflict the context sees: the first along the open conflicts' index */
	sql = psprintf("SELECT pg_catalog.to_jsonb(c.created_at) FROM %s.sync_conflicts AS c "
				   "LEFT JOIN smartsync.entity_types AS e ON e.entity_type = c.entity_type "
				   "WHERE c.status = 'open' AND %s ORDER BY c.created_at, c.conflict_id LIMIT 1",
				   b.qschema, practice_condition(1));
	rc = push_exec(push_plan(sql, 1, argtypes), values, nulls, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading the conflict store failed: %s", SPI_result_code_string(rc));
	if (SPI_processed > 0)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			oldest = DatumGetJsonbPCopy(d);
	}
	SPI_freetuptable(SPI_tuptable);

	/* the counts, from the kept counts */
	sql = psprintf("SELECT k.status = 'open', k.severity, k.entity_type, sum(k.n)::pg_catalog.int8 "
				   "FROM %s.sync_conflict_counts AS k "
				   "WHERE %s GROUP BY 1, 2, 3 HAVING sum(k.n) <> 0 ORDER BY 3, 2, 1",
				   b.qschema, count_scope_condition(1));
	rc = push_exec(push_plan(sql, 1, argtypes), values, nulls, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading the conflict counts failed: %s", SPI_result_code_string(rc));

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
			bool		is_open;
			char	   *sev;
			char	   *type;
			int64		n;

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

/* --- the kept counts ------------------------------------------------------- */

PG_FUNCTION_INFO_V1(smartsync_count_conflicts);

/* One group of conflicts a statement added (n > 0) or removed (n < 0). */
typedef struct CountGroup
{
	bool		every_practice;
	char	   *scope;
	char	   *entity_type;
	char	   *severity;
	char	   *status;
	int64		n;
} CountGroup;

/* The practice column of an entity type (NULL: none, or not registered), read once a call. */
typedef struct CountType
{
	char	   *entity_type;
	char	   *practice_column;
} CountType;

static char *
count_type_practice(List **types, const char *entity_type)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	ListCell   *lc;
	CountType  *t;
	int			rc;

	foreach(lc, *types)
	{
		t = (CountType *) lfirst(lc);
		if (strcmp(t->entity_type, entity_type) == 0)
			return t->practice_column;
	}
	values[0] = CStringGetTextDatum(entity_type);
	rc = push_exec(push_plan("SELECT practice_column::pg_catalog.text FROM smartsync.entity_types "
							 "WHERE entity_type = $1", 1, argtypes), values, NULL, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading smartsync.entity_types failed: %s", SPI_result_code_string(rc));
	t = palloc(sizeof(CountType));
	t->entity_type = pstrdup(entity_type);
	t->practice_column = SPI_processed > 0 ?
		SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1) : NULL;
	SPI_freetuptable(SPI_tuptable);
	*types = lappend(*types, t);
	return t->practice_column;
}

/* Adds the rows of one transition table to the groups, each counting sign. */
static void
count_rows(Tuplestorestate *ts, TupleDesc desc, int sign, List **groups, List **types)
{
	TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	int			a_type = SPI_fnumber(desc, "entity_type");
	int			a_practice = SPI_fnumber(desc, "practice_id");
	int			a_severity = SPI_fnumber(desc, "severity");
	int			a_status = SPI_fnumber(desc, "status");
	int			a_server = SPI_fnumber(desc, "server_data");
	int			a_local = SPI_fnumber(desc, "local_data");

	if (a_type <= 0 || a_practice <= 0 || a_severity <= 0 || a_status <= 0 || a_server <= 0 || a_local <= 0)
		elog(ERROR, "sync_conflicts lacks a column smartsync._count_conflicts() reads");
	tuplestore_rescan(ts);
	while (tuplestore_gettupleslot(ts, true, false, slot))
	{
		bool		isnull;
		char	   *type;
		char	   *severity;
		char	   *status;
		char	   *scope = NULL;
		bool		every = false;
		Datum		d;
		ListCell   *lc;
		CountGroup *g = NULL;

		slot_getallattrs(slot);
		type = TextDatumGetCString(slot_getattr(slot, a_type, &isnull));
		severity = TextDatumGetCString(slot_getattr(slot, a_severity, &isnull));
		status = TextDatumGetCString(slot_getattr(slot, a_status, &isnull));
		/* the practice that sees the conflict: the rule list_conflicts applies */
		d = slot_getattr(slot, a_practice, &isnull);
		if (!isnull)
			scope = TextDatumGetCString(d);
		else
		{
			char	   *col = count_type_practice(types, type);

			if (col == NULL)
				every = true;
			else
			{
				Jsonb	   *row = NULL;

				d = slot_getattr(slot, a_server, &isnull);
				if (isnull)
					d = slot_getattr(slot, a_local, &isnull);
				if (!isnull)
					row = DatumGetJsonbP(d);
				if (row != NULL && JB_ROOT_IS_OBJECT(row))
				{
					JsonbValue *v = sync_jsonb_get(row, col);

					if (v != NULL)
						scope = sync_jsonb_scalar_text(v);
				}
			}
		}
		if (scope == NULL)
			scope = "";

		foreach(lc, *groups)
		{
			CountGroup *c = (CountGroup *) lfirst(lc);

			if (c->every_practice == every && strcmp(c->scope, scope) == 0 &&
				strcmp(c->entity_type, type) == 0 && strcmp(c->severity, severity) == 0 &&
				strcmp(c->status, status) == 0)
			{
				g = c;
				break;
			}
		}
		if (g == NULL)
		{
			g = palloc0(sizeof(CountGroup));
			g->every_practice = every;
			g->scope = pstrdup(scope);
			g->entity_type = type;
			g->severity = severity;
			g->status = status;
			*groups = lappend(*groups, g);
		}
		g->n += sign;
	}
	ExecDropSingleTupleTableSlot(slot);
}

/*
 * smartsync._count_conflicts(): AFTER STATEMENT trigger of a tenant's
 * sync_conflicts keeping sync_conflict_counts: what a statement removed is
 * subtracted, what it added added, a row per group (with a shard per backend,
 * so concurrent writers seldom wait on one row), through one kept plan.
 */
Datum
smartsync_count_conflicts(PG_FUNCTION_ARGS)
{
	TriggerData *td;
	List	   *groups = NIL;
	List	   *types = NIL;
	ListCell   *lc;
	char	   *sql;
	Oid			argtypes[7] = {BOOLOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT4OID, INT8OID};
	MemoryContext cxt = CurrentMemoryContext;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_SS_TRIGGER_MISUSE),
				 errmsg("smartsync._count_conflicts() must be called as a trigger")));
	td = (TriggerData *) fcinfo->context;
	if (!TRIGGER_FIRED_AFTER(td->tg_event) || !TRIGGER_FIRED_FOR_STATEMENT(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_SS_TRIGGER_MISUSE),
				 errmsg("smartsync._count_conflicts() must be an AFTER statement trigger with transition tables")));
	if ((td->tg_oldtable == NULL || tuplestore_tuple_count(td->tg_oldtable) == 0) &&
		(td->tg_newtable == NULL || tuplestore_tuple_count(td->tg_newtable) == 0))
		return PointerGetDatum(NULL);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	MemoryContextSwitchTo(cxt);
	if (td->tg_oldtable != NULL)
		count_rows(td->tg_oldtable, RelationGetDescr(td->tg_relation), -1, &groups, &types);
	if (td->tg_newtable != NULL)
		count_rows(td->tg_newtable, RelationGetDescr(td->tg_relation), 1, &groups, &types);

	sql = psprintf("INSERT INTO %s.sync_conflict_counts AS k "
				   "(every_practice, scope, entity_type, severity, status, shard, n) "
				   "VALUES ($1, $2, $3, $4, $5, $6, $7) "
				   "ON CONFLICT (every_practice, scope, entity_type, severity, status, shard) "
				   "DO UPDATE SET n = k.n + excluded.n",
				   quote_identifier(get_namespace_name(RelationGetNamespace(td->tg_relation))));
	foreach(lc, groups)
	{
		CountGroup *g = (CountGroup *) lfirst(lc);
		Datum		values[7];
		int			rc;

		if (g->n == 0)
			continue;			/* an update that left the group as it was */
		values[0] = BoolGetDatum(g->every_practice);
		values[1] = CStringGetTextDatum(g->scope);
		values[2] = CStringGetTextDatum(g->entity_type);
		values[3] = CStringGetTextDatum(g->severity);
		values[4] = CStringGetTextDatum(g->status);
		values[5] = Int32GetDatum(MyProcPid % 16);
		values[6] = Int64GetDatum(g->n);
		rc = push_exec(push_plan(sql, 7, argtypes), values, NULL, 0);
		if (rc != SPI_OK_INSERT)
			elog(ERROR, "keeping the conflict counts failed: %s", SPI_result_code_string(rc));
	}
	SPI_finish();
	return PointerGetDatum(NULL);
}
