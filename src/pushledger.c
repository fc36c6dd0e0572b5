/*
 * pushledger.c: the SQL side of sync_push that is not the entity tables:
 * the saved-plan cache, the operation ledger (claim, replay, outcome), the
 * id map (temporary -> real ids) and the conflict store.
 *
 A push first takes a transaction advisory lock on (tenant, client), so a
 * concurrent push of the same device waits until the first commits; then it
 * reads the ledger rows of its operation ids (replays), applies the rest, and
 * writes their outcomes and id-map entries in one INSERT each.  The ledger's
 * primary key (client_id, operation_id) is the safety net: under REPEATABLE
 * READ a duplicate that the snapshot cannot see fails with 23505 instead of
 * applying twice.  Transient failures are not recorded, so a retry applies
 * them.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "smartsync.h"
#include "citus.h"
#include "push.h"

/* --- saved plans -------------------------------------------------------- */

#define PUSH_PLAN_CACHE_MAX 512

typedef struct PushPlanEntry
{
	uint64		key;			/* hash of the SQL text */
	char	   *sql;
	SPIPlanPtr	plan;
} PushPlanEntry;

static HTAB *push_plans = NULL;

/* Frees every cached plan. */
static void
push_plan_flush(void)
{
	HASH_SEQ_STATUS seq;
	PushPlanEntry *e;

	hash_seq_init(&seq, push_plans);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		SPI_freeplan(e->plan);
		pfree(e->sql);
	}
	hash_destroy(push_plans);
	push_plans = NULL;
}

/* The saved plan of sql with these cursor options, prepared on first use. */
static SPIPlanPtr
plan_cached(const char *sql, int nargs, Oid *argtypes, int options)
{
	uint64		key = hash_bytes_extended((const unsigned char *) sql, strlen(sql), 0);
	MemoryContext old = CurrentMemoryContext;
	PushPlanEntry *e;
	SPIPlanPtr	plan;
	bool		found;

	if (push_plans == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(uint64);
		ctl.entrysize = sizeof(PushPlanEntry);
		push_plans = hash_create("smartsync push plans", 128, &ctl, HASH_ELEM | HASH_BLOBS);
	}
	e = hash_search(push_plans, &key, HASH_FIND, NULL);
	if (e != NULL && strcmp(e->sql, sql) == 0)
		return e->plan;

	plan = SPI_prepare_cursor(sql, nargs, argtypes, options);
	MemoryContextSwitchTo(old);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	if (e != NULL)
		return plan;			/* a hash collision: a one-off plan */
	if (hash_get_num_entries(push_plans) >= PUSH_PLAN_CACHE_MAX)
	{
		push_plan_flush();
		return plan_cached(sql, nargs, argtypes, options);
	}
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	e = hash_search(push_plans, &key, HASH_ENTER, &found);
	e->sql = MemoryContextStrdup(TopMemoryContext, sql);
	e->plan = plan;
	return plan;
}

/*
 * A saved plan for sql, prepared on first use.  The SQL text is the key, so
 * every plan names its tenant schema and columns.  Use the plan at once: a
 * later call may flush the cache.
 */
SPIPlanPtr
push_plan(const char *sql, int nargs, Oid *argtypes)
{
	return plan_cached(sql, nargs, argtypes, 0);
}

/*
 * As push_plan; custom plans the statement for every execution with its
 * actual parameters.  For lookups whose best plan depends on the data (the
 * change log's rows of one entity).
 */
SPIPlanPtr
push_plan_ex(const char *sql, int nargs, Oid *argtypes, bool custom)
{
	return plan_cached(sql, nargs, argtypes, custom ? CURSOR_OPT_CUSTOM_PLAN : 0);
}

/*
 * As push_plan, for a statement that works on rows given as arrays (one per
 * column, unnest) and finds them by primary key: the ledger and id-map
 * lookups and writes, runs of creates and updates.  One generic plan per
 * backend, made by push_exec_keyed with sequential scans, hash and merge
 * joins disabled, so it probes the key for each given row whatever the
 * table's size when it was planned (the ledger and the id map start empty
 * and grow; a plan made for an empty table would scan it whole) and however
 * many rows a call gives (a generic plan cannot know; a custom plan for each
 * call would be planned on every push).
 */
SPIPlanPtr
push_plan_keyed(const char *sql, int nargs, Oid *argtypes)
{
	/*
	 * On Citus a generic plan of these statements cannot be distributed (its
	 * parameters are not known to the planner: "could not create distributed
	 * plan"), so there each run is planned with its values.
	 */
	return plan_cached(sql, nargs, argtypes,
					   sync_citus_installed() ? CURSOR_OPT_CUSTOM_PLAN : CURSOR_OPT_GENERIC_PLAN);
}

/*
 * Runs a plan of push_plan_keyed.  The plan cache plans it on its first run
 * and again after anything it reads changed (DDL, ANALYZE), so the settings
 * hold for every execution, not only the first.
 */
int
push_exec_keyed(SPIPlanPtr plan, Datum *values, const char *nulls, long tcount)
{
	static const char *const off[] = {"enable_seqscan", "enable_hashjoin", "enable_mergejoin"};

	return push_exec_planner_off(plan, values, nulls, tcount, off, lengthof(off));
}

/*
 * Runs a plan (as push_exec) with the planner settings off[0..noff) set to
 * off for its run, so that a plan the cache makes (or makes again) then is
 * made without those methods; the settings are restored after it.
 */
int
push_exec_planner_off(SPIPlanPtr plan, Datum *values, const char *nulls, long tcount,
					  const char *const *off, int noff)
{
	int			nest = NewGUCNestLevel();
	int			rc;

	for (int i = 0; i < noff; i++)
		(void) set_config_option(off[i], "off", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	rc = push_exec(plan, values, nulls, tcount);
	AtEOXact_GUC(true, nest);
	return rc;
}

/* Runs a plan (not read-only) and returns to the caller's memory context. */
int
push_exec(SPIPlanPtr plan, Datum *values, const char *nulls, long tcount)
{
	MemoryContext old = CurrentMemoryContext;
	int			rc = SPI_execute_plan(plan, values, nulls, false, tcount);

	MemoryContextSwitchTo(old);
	return rc;
}

/* --- arrays ------------------------------------------------------------- */

/* A one-dimensional array of n datums (nulls may be NULL). */
static Datum
make_array(Datum *elems, bool *nulls, int n, Oid elemtype)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			dims[1] = {n};
	int			lbs[1] = {1};

	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	if (n == 0)
		return PointerGetDatum(construct_empty_array(elemtype));
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs,
											  elemtype, typlen, typbyval, typalign));
}

/*
 * Sets parameter k of a statement to the n values of a column: the value
 * itself (of elemtype) when n is 1, else an array of them.
 */
static void
column(Datum *values, char *nulls, Oid *argtypes, int k, Datum *elems, bool *elemnulls, int n,
	   Oid elemtype)
{
	if (n == 1)
	{
		values[k] = elems[0];
		nulls[k] = (elemnulls != NULL && elemnulls[0]) ? 'n' : ' ';
		argtypes[k] = elemtype;
		return;
	}
	values[k] = make_array(elems, elemnulls, n, elemtype);
	nulls[k] = ' ';
	argtypes[k] = get_array_type(elemtype);
}

/* Text datum or a null flag. */
static inline Datum
text_or_null(const char *s, bool *isnull)
{
	*isnull = (s == NULL);
	return s ? CStringGetTextDatum(s) : (Datum) 0;
}

/* The operation with this id, or NULL. */
static PushOp *
op_by_id(PushBatch *b, const char *opid)
{
	PushOpId   *e = hash_search(b->op_ids, &opid, HASH_FIND, NULL);

	return e ? e->op : NULL;
}

/* --- ledger ------------------------------------------------------------- */

/* A request larger than this is kept in the ledger as a summary (bytes). */
#define LEDGER_REQUEST_MAX	8192
/* Longest string a request summary keeps whole (characters), most data fields it names. */
#define LEDGER_STRING_CHARS	256
#define LEDGER_FIELDS_MAX	50

/*
 * The ledger's copy of an operation as sent: the operation itself when it is
 * at most LEDGER_REQUEST_MAX bytes, else a bounded summary: every top-level
 * field but data, a long string cut to its first LEDGER_STRING_CHARS
 * characters (with "..."), a container replaced by {"_truncated": true,
 * "bytes": n}; data by {"_truncated": true, "bytes": n, "fields": [its first
 * LEDGER_FIELDS_MAX field names, each cut the same way]}.  A refused request
 * costs the ledger a few kilobytes, whatever its size.
 */
Jsonb *
push_request_copy(JsonbContainer *request, int len)
{
	JsonbIterator *it;
	JsonbValue	k;
	JsonbValue	v;
	JsonbIteratorToken tok;
	JsonbParseState *ps = NULL;
	JsonbValue *res;

	if (len <= LEDGER_REQUEST_MAX)
	{
		JsonbValue	whole;

		whole.type = jbvBinary;
		whole.val.binary.data = request;
		whole.val.binary.len = len;
		return JsonbValueToJsonb(&whole);
	}

	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	it = JsonbIteratorInit(request);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		bool		is_data;

		if (tok != WJB_KEY)
			continue;
		(void) JsonbIteratorNext(&it, &v, true);
		is_data = (k.val.string.len == 4 && memcmp(k.val.string.val, "data", 4) == 0);
		if (k.val.string.len > LEDGER_STRING_CHARS)
			continue;			/* an unknown key of that length says nothing */
		pushJsonbValue(&ps, WJB_KEY, &k);
		if (v.type == jbvString)
		{
			if (v.val.string.len > LEDGER_STRING_CHARS)
				push_str(&ps, WJB_VALUE, sync_clip_n(v.val.string.val, v.val.string.len,
														LEDGER_STRING_CHARS));
			else
				pushJsonbValue(&ps, WJB_VALUE, &v);
		}
		else if (v.type != jbvBinary || (!is_data && v.val.binary.len <= LEDGER_STRING_CHARS))
			pushJsonbValue(&ps, WJB_VALUE, &v);
		else
		{
			pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
			push_key(&ps, "_truncated");
			push_bool(&ps, true);
			push_key(&ps, "bytes");
			push_int64(&ps, v.val.binary.len);
			if (is_data && JsonContainerIsObject(v.val.binary.data))
			{
				JsonbIterator *dit = JsonbIteratorInit(v.val.binary.data);
				JsonbValue	dk;
				int			n = 0;

				push_key(&ps, "fields");
				pushJsonbValue(&ps, WJB_BEGIN_ARRAY, NULL);
				while ((tok = JsonbIteratorNext(&dit, &dk, true)) != WJB_DONE && n < LEDGER_FIELDS_MAX)
				{
					if (tok != WJB_KEY)
						continue;
					push_str(&ps, WJB_ELEM, sync_clip_n(dk.val.string.val, dk.val.string.len,
														   LEDGER_STRING_CHARS));
					n++;
				}
				pushJsonbValue(&ps, WJB_END_ARRAY, NULL);
			}
			pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
		}
	}
	res = pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

/*
 * Serializes the pushes of one client of one tenant: a transaction advisory
 * lock on (tenant schema, client id).  A concurrent push of the same device
 * (a retry while the first request still runs) waits here until the first
 * commits or rolls back, then reads its ledger rows.  Different clients never
 * wait for each other (short of a hash collision).
 */
void
push_ledger_lock(PushBatch *b)
{
	char	   *key = psprintf("smartsync.push:%s", b->schema);
	int32		k1 = (int32) hash_bytes((const unsigned char *) key, strlen(key));
	int32		k2 = (int32) hash_bytes((const unsigned char *) b->client_id, strlen(b->client_id));

	DirectFunctionCall2(pg_advisory_xact_lock_int4, Int32GetDatum(k1), Int32GetDatum(k2));
}

/*
 * Reads the stored result of every operation of the batch that is in the
 * ledger already (a replay: returned as stored, with "replayed": true); the
 * others are this push's to apply.  One primary-key probe per operation
 * (push_plan_keyed; OFFSET 0 keeps the planner from turning the lateral
 * probes into a scan of all the client's rows), PUSH_SQL_CHUNK per statement.
 */
void
push_ledger_load(PushBatch *b)
{
	Oid			argtypes[2] = {TEXTOID, TEXTOID};
	MemoryContext cxt;
	MemoryContext old;
	char	   *many = psprintf("SELECT u.op, l.result || '{\"replayed\": true}'::pg_catalog.jsonb "
								"FROM pg_catalog.unnest($2) AS u(op) CROSS JOIN LATERAL "
								"(SELECT l.result FROM %s.sync_ledger AS l "
								"WHERE l.client_id = $1 AND l.operation_id = u.op OFFSET 0) AS l",
								b->qschema);
	char	   *one = psprintf("SELECT l.operation_id, l.result || '{\"replayed\": true}'::pg_catalog.jsonb "
							   "FROM %s.sync_ledger AS l WHERE l.client_id = $1 AND l.operation_id = $2",
							   b->qschema);

	cxt = AllocSetContextCreate(CurrentMemoryContext, "smartsync push ledger", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	for (int start = 0; start < b->nops; start += PUSH_SQL_CHUNK)
	{
		int			n = Min(PUSH_SQL_CHUNK, b->nops - start);
		Datum	   *opids = palloc(sizeof(Datum) * n);
		Datum		values[2];
		char		nulls[2] = {' ', ' '};
		int			rc;

		for (int i = 0; i < n; i++)
		{
			opids[i] = CStringGetTextDatum(PUSH_OP(b, start + i)->opid);
			PUSH_OP(b, start + i)->claimed = true;
		}
		values[0] = CStringGetTextDatum(b->client_id);
		column(values, nulls, argtypes, 1, opids, NULL, n, TEXTOID);
		rc = push_exec_keyed(push_plan_keyed(n == 1 ? one : many, 2, argtypes), values, nulls, 0);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "ledger read failed: %s", SPI_result_code_string(rc));
		for (uint64 k = 0; k < SPI_processed; k++)
		{
			HeapTuple	tup = SPI_tuptable->vals[k];
			char	   *id = SPI_getvalue(tup, SPI_tuptable->tupdesc, 1);
			bool		isnull;
			Datum		d = SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull);
			PushOp	   *op = op_by_id(b, id);

			if (op == NULL)
				continue;
			op->claimed = false;
			op->result = push_copy_jsonb(b->rescxt, DatumGetJsonbP(d));
			op->outcome = PUSH_REPLAYED;
		}
		SPI_freetuptable(SPI_tuptable);
		MemoryContextSwitchTo(cxt);
		MemoryContextReset(cxt);
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
}

/* True for an operation whose outcome the ledger keeps (transient failures are not kept). */
static inline bool
recorded(PushOp *op)
{
	return op->claimed && op->outcome != PUSH_PENDING &&
		!(op->outcome == PUSH_FAILED && op->retryable);
}

/* Writes the ledger rows of n operations in one INSERT. */
static void
ledger_insert(PushBatch *b, PushOp **ops, int n)
{
	Datum	   *opids = palloc(sizeof(Datum) * n);
	Datum	   *etypes = palloc(sizeof(Datum) * n);
	Datum	   *eids = palloc(sizeof(Datum) * n);
	bool	   *eidnulls = palloc(sizeof(bool) * n);
	Datum	   *opers = palloc(sizeof(Datum) * n);
	Datum	   *tss = palloc(sizeof(Datum) * n);
	bool	   *tsnulls = palloc(sizeof(bool) * n);
	Datum	   *reqs = palloc(sizeof(Datum) * n);
	bool	   *reqnulls = palloc(sizeof(bool) * n);
	Datum	   *outcomes = palloc(sizeof(Datum) * n);
	Datum	   *results = palloc(sizeof(Datum) * n);
	Datum	   *rids = palloc(sizeof(Datum) * n);
	bool	   *ridnulls = palloc(sizeof(bool) * n);
	Datum	   *vers = palloc(sizeof(Datum) * n);
	bool	   *vernulls = palloc(sizeof(bool) * n);
	Datum	   *codes = palloc(sizeof(Datum) * n);
	bool	   *codenulls = palloc(sizeof(bool) * n);
	Datum	   *cids = palloc(sizeof(Datum) * n);
	bool	   *cidnulls = palloc(sizeof(bool) * n);
	Oid			argtypes[15] = {TEXTOID, TEXTOID, TEXTOID};
	Datum		values[15];
	char		nulls[15];
	bool		isnull;
	char	   *sql;
	int			rc;

	for (int i = 0; i < n; i++)
	{
		PushOp	   *op = ops[i];
		const char *outcome;

		switch (op->outcome)
		{
			case PUSH_APPLIED:
				outcome = "applied";
				break;
			case PUSH_RESOLVED:
				outcome = "resolved";
				break;
			case PUSH_CONFLICT:
				outcome = "conflict";
				break;
			default:
				outcome = "failed";
				break;
		}
		opids[i] = CStringGetTextDatum(op->opid);
		etypes[i] = CStringGetTextDatum(op->entity->entity_type);
		eids[i] = text_or_null(op->entity_id, &eidnulls[i]);
		opers[i] = CStringGetTextDatum(op->kind == PUSH_CREATE ? "create" :
									   op->kind == PUSH_UPDATE ? "update" : "delete");
		/* the client's timestamp as it sent it, before clamping */
		tsnulls[i] = !op->has_ts;
		tss[i] = op->has_ts ? TimestampTzGetDatum(op->sent_ts) : (Datum) 0;
		/* the request as sent (bounded), where the change log does not tell what was asked */
		reqnulls[i] = (op->outcome == PUSH_APPLIED || op->outcome == PUSH_RESOLVED);
		reqs[i] = reqnulls[i] ? (Datum) 0 : JsonbPGetDatum(push_request_copy(op->request, op->request_len));
		outcomes[i] = CStringGetTextDatum(outcome);
		results[i] = JsonbPGetDatum(push_op_result(op));
		rids[i] = text_or_null(op->real_id, &ridnulls[i]);
		vernulls[i] = !op->has_new_version;
		vers[i] = op->has_new_version ? Int64GetDatum(op->new_version) : (Datum) 0;
		codes[i] = text_or_null(op->error_code, &codenulls[i]);
		cidnulls[i] = (op->conflict_id == 0);
		cids[i] = Int64GetDatum(op->conflict_id);
	}

	memset(nulls, ' ', sizeof(nulls));
	values[0] = CStringGetTextDatum(b->client_id);
	values[1] = text_or_null(b->ctx.user_id, &isnull);
	nulls[1] = isnull ? 'n' : ' ';
	values[2] = text_or_null(b->ctx.practice_id, &isnull);
	nulls[2] = isnull ? 'n' : ' ';
	column(values, nulls, argtypes, 3, opids, NULL, n, TEXTOID);
	column(values, nulls, argtypes, 4, etypes, NULL, n, TEXTOID);
	column(values, nulls, argtypes, 5, eids, eidnulls, n, TEXTOID);
	column(values, nulls, argtypes, 6, opers, NULL, n, TEXTOID);
	column(values, nulls, argtypes, 7, tss, tsnulls, n, TIMESTAMPTZOID);
	column(values, nulls, argtypes, 8, reqs, reqnulls, n, JSONBOID);
	column(values, nulls, argtypes, 9, outcomes, NULL, n, TEXTOID);
	column(values, nulls, argtypes, 10, results, NULL, n, JSONBOID);
	column(values, nulls, argtypes, 11, rids, ridnulls, n, TEXTOID);
	column(values, nulls, argtypes, 12, vers, vernulls, n, INT8OID);
	column(values, nulls, argtypes, 13, codes, codenulls, n, TEXTOID);
	column(values, nulls, argtypes, 14, cids, cidnulls, n, INT8OID);

	/* one row: a plain VALUES (no function scans to set up) */
	if (n == 1)
		sql = psprintf("INSERT INTO %s.sync_ledger "
					   "(client_id, operation_id, entity_type, entity_id, operation, user_id, practice_id, "
					   "client_ts, request, outcome, result, real_id, version, error_code, conflict_id, "
					   "completed_at) "
					   "VALUES ($1, $4, $5, $6, $7, $2, $3, $8, $9, $10, $11, $12, $13, $14, $15, "
					   "pg_catalog.clock_timestamp())",
					   b->qschema);
	else
		sql = psprintf("INSERT INTO %s.sync_ledger "
					   "(client_id, operation_id, entity_type, entity_id, operation, user_id, practice_id, "
					   "client_ts, request, outcome, result, real_id, version, error_code, conflict_id, "
					   "completed_at) "
					   "SELECT $1, u.op, u.et, u.eid, u.o, $2, $3, u.ts, u.req, u.outcome, u.result, "
					   "u.rid, u.ver, u.code, u.cid, pg_catalog.clock_timestamp() "
					   "FROM ROWS FROM (pg_catalog.unnest($4), pg_catalog.unnest($5), pg_catalog.unnest($6), "
					   "pg_catalog.unnest($7), pg_catalog.unnest($8), pg_catalog.unnest($9), "
					   "pg_catalog.unnest($10), pg_catalog.unnest($11), pg_catalog.unnest($12), "
					   "pg_catalog.unnest($13), pg_catalog.unnest($14), pg_catalog.unnest($15)) "
					   "AS u(op, et, eid, o, ts, req, outcome, result, rid, ver, code, cid)",
					   b->qschema);
	rc = push_exec_keyed(push_plan_keyed(sql, 15, argtypes), values, nulls, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "ledger insert failed: %s", SPI_result_code_string(rc));
}

/*
 * Records every operation this push applied, resolved, stored as a conflict
 * or failed permanently, with who, when, what and the result: one INSERT per
 * PUSH_SQL_CHUNK operations, each chunk's arrays freed after it.  Transient
 * failures are not recorded, so that a retry applies them.
 */
void
push_ledger_record(PushBatch *b)
{
	PushOp	  **chunk = palloc(sizeof(PushOp *) * PUSH_SQL_CHUNK);
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "smartsync push ledger",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	int			n = 0;

	for (int i = 0; i < b->nops; i++)
	{
		if (!recorded(PUSH_OP(b, i)))
			continue;
		chunk[n++] = PUSH_OP(b, i);
		if (n == PUSH_SQL_CHUNK)
		{
			ledger_insert(b, chunk, n);
			MemoryContextReset(cxt);
			n = 0;
		}
	}
	if (n > 0)
		ledger_insert(b, chunk, n);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	pfree(chunk);
}

/* --- id map ------------------------------------------------------------- */

/*
 * Loads the id-map entries of these temporary ids (absent ones are remembered
 * as absent): one lookup per PUSH_SQL_CHUNK ids.
 */
void
push_idmap_prefetch(PushBatch *b, List *temp_ids)
{
	const char **ids;
	int			n = 0;
	Oid			argtypes[2] = {TEXTOID, TEXTOID};
	char	   *many;
	char	   *one;
	ListCell   *lc;
	MemoryContext cxt;
	MemoryContext old;

	if (temp_ids == NIL)
		return;
	ids = palloc(sizeof(char *) * list_length(temp_ids));
	foreach(lc, temp_ids)
	{
		char	   *id = (char *) lfirst(lc);
		bool		found;
		PushTemp   *t = hash_search(b->temps, &id, HASH_ENTER, &found);

		if (found)
			continue;
		t->known = false;
		t->entity_type = NULL;
		t->real_id = NULL;
		t->op = NULL;
		ids[n++] = id;
	}
	many = psprintf("SELECT u.t, m.entity_type, m.real_id "
					"FROM pg_catalog.unnest($2) AS u(t) CROSS JOIN LATERAL "
					"(SELECT m.entity_type, m.real_id FROM %s.sync_id_map AS m "
					"WHERE m.client_id = $1 AND m.temp_id = u.t OFFSET 0) AS m", b->qschema);
	one = psprintf("SELECT m.temp_id, m.entity_type, m.real_id FROM %s.sync_id_map AS m "
				   "WHERE m.client_id = $1 AND m.temp_id = $2", b->qschema);
	cxt = AllocSetContextCreate(CurrentMemoryContext, "smartsync push id map", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	for (int start = 0; start < n; start += PUSH_SQL_CHUNK)
	{
		int			m = Min(PUSH_SQL_CHUNK, n - start);
		Datum	   *idd = palloc(sizeof(Datum) * m);
		Datum		values[2];
		char		nulls[2] = {' ', ' '};
		int			rc;

		for (int i = 0; i < m; i++)
			idd[i] = CStringGetTextDatum(ids[start + i]);
		values[0] = CStringGetTextDatum(b->client_id);
		column(values, nulls, argtypes, 1, idd, NULL, m, TEXTOID);
		rc = push_exec_keyed(push_plan_keyed(m == 1 ? one : many, 2, argtypes), values, nulls, 0);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "id map read failed: %s", SPI_result_code_string(rc));
		for (uint64 k = 0; k < SPI_processed; k++)
		{
			HeapTuple	tup = SPI_tuptable->vals[k];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			char	   *id = SPI_getvalue(tup, desc, 1);
			PushTemp   *t = hash_search(b->temps, &id, HASH_FIND, NULL);

			if (t == NULL)
				continue;
			t->known = true;
			t->entity_type = MemoryContextStrdup(b->cxt, SPI_getvalue(tup, desc, 2));
			t->real_id = MemoryContextStrdup(b->cxt, SPI_getvalue(tup, desc, 3));
		}
		SPI_freetuptable(SPI_tuptable);
		MemoryContextSwitchTo(cxt);
		MemoryContextReset(cxt);
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	pfree(ids);
}

/* The mapping of a temporary id (created in this batch or earlier), or NULL. */
PushTemp *
push_idmap_lookup(PushBatch *b, const char *temp_id)
{
	PushTemp   *t = hash_search(b->temps, &temp_id, HASH_FIND, NULL);

	return (t != NULL && t->known) ? t : NULL;
}

/* Notes temp -> real for op's create, for the rest of the batch and for push_idmap_record. */
void
push_idmap_note(PushBatch *b, PushOp *op, const char *real_id)
{
	bool		found;
	PushTemp   *t = hash_search(b->temps, &op->entity_id, HASH_ENTER, &found);

	t->known = true;
	t->entity_type = op->entity->entity_type;
	t->real_id = (real_id == op->real_id) ? op->real_id : push_strdup(b, real_id);
	t->op = op;
}

/* Writes the id-map entries of n applied creates in one INSERT. */
static void
idmap_insert(PushBatch *b, PushOp **ops, int n)
{
	Datum	   *temps = palloc(sizeof(Datum) * n);
	Datum	   *types = palloc(sizeof(Datum) * n);
	Datum	   *reals = palloc(sizeof(Datum) * n);
	Datum	   *opids = palloc(sizeof(Datum) * n);
	Datum	   *tss = palloc(sizeof(Datum) * n);
	bool	   *tsnulls = palloc(sizeof(bool) * n);
	Oid			argtypes[6] = {TEXTOID};
	Datum		values[6];
	char		nulls[6];
	char	   *sql;
	int			rc;

	for (int i = 0; i < n; i++)
	{
		PushOp	   *op = ops[i];

		temps[i] = CStringGetTextDatum(op->entity_id);
		types[i] = CStringGetTextDatum(op->entity->entity_type);
		reals[i] = CStringGetTextDatum(op->real_id);
		opids[i] = CStringGetTextDatum(op->opid);
		tsnulls[i] = !op->has_ts;
		tss[i] = op->has_ts ? TimestampTzGetDatum(op->ts) : (Datum) 0;
	}
	memset(nulls, ' ', sizeof(nulls));
	values[0] = CStringGetTextDatum(b->client_id);
	column(values, nulls, argtypes, 1, temps, NULL, n, TEXTOID);
	column(values, nulls, argtypes, 2, types, NULL, n, TEXTOID);
	column(values, nulls, argtypes, 3, reals, NULL, n, TEXTOID);
	column(values, nulls, argtypes, 4, opids, NULL, n, TEXTOID);
	column(values, nulls, argtypes, 5, tss, tsnulls, n, TIMESTAMPTZOID);
	if (n == 1)
		sql = psprintf("INSERT INTO %s.sync_id_map "
					   "(client_id, temp_id, entity_type, real_id, operation_id, created_at) "
					   "VALUES ($1, $2, $3, $4, $5, $6)", b->qschema);
	else
		sql = psprintf("INSERT INTO %s.sync_id_map "
					   "(client_id, temp_id, entity_type, real_id, operation_id, created_at) "
					   "SELECT $1, u.t, u.et, u.r, u.op, u.ts "
					   "FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3), pg_catalog.unnest($4), "
					   "pg_catalog.unnest($5), pg_catalog.unnest($6)) AS u(t, et, r, op, ts)",
					   b->qschema);
	rc = push_exec_keyed(push_plan_keyed(sql, 6, argtypes), values, nulls, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "id map insert failed: %s", SPI_result_code_string(rc));
}

/*
 * Writes the id map entries of the batch's applied creates, one INSERT per
 * PUSH_SQL_CHUNK.  The client lock makes the prefetch's "not mapped yet"
 * reliable, and the primary key stays the safety net.
 */
void
push_idmap_record(PushBatch *b)
{
	PushOp	  **chunk = palloc(sizeof(PushOp *) * PUSH_SQL_CHUNK);
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "smartsync push id map",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	int			n = 0;

	for (int i = 0; i < b->nops; i++)
	{
		PushOp	   *op = PUSH_OP(b, i);
		PushTemp   *t;

		if (!op->claimed || op->kind != PUSH_CREATE || !op->temp_entity ||
			op->outcome != PUSH_APPLIED || op->real_id == NULL)
			continue;
		t = hash_search(b->temps, &op->entity_id, HASH_FIND, NULL);
		if (t == NULL || t->op != op)
			continue;
		chunk[n++] = op;
		if (n == PUSH_SQL_CHUNK)
		{
			idmap_insert(b, chunk, n);
			MemoryContextReset(cxt);
			n = 0;
		}
	}
	if (n > 0)
		idmap_insert(b, chunk, n);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	pfree(chunk);
}

/* --- conflict store ----------------------------------------------------- */

/* Stores an unresolved conflict; returns its id. */
int64
push_store_conflict(PushBatch *b, PushOp *op, Jsonb *conflict,
					Jsonb *local, Jsonb *server, Jsonb *base,
					int64 server_version, bool has_server_version)
{
	Oid			argtypes[14] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
		TEXTOID, JSONBOID, JSONBOID, JSONBOID, JSONBOID, INT8OID, INT8OID,
	TIMESTAMPTZOID};
	Datum		values[14];
	char		nulls[14];
	bool		isnull;
	char	   *sql;
	int			rc;
	int64		id;

	memset(nulls, ' ', sizeof(nulls));
	values[0] = CStringGetTextDatum(op->entity->entity_type);
	values[1] = CStringGetTextDatum(op->real_id ? op->real_id : op->entity_id);
	values[2] = CStringGetTextDatum(op->kind == PUSH_CREATE ? "create" :
									op->kind == PUSH_UPDATE ? "update" : "delete");
	values[3] = CStringGetTextDatum(op->opid);
	values[4] = CStringGetTextDatum(b->client_id);
	values[5] = text_or_null(b->ctx.user_id, &isnull);
	nulls[5] = isnull ? 'n' : ' ';
	values[6] = text_or_null(b->ctx.practice_id, &isnull);
	nulls[6] = isnull ? 'n' : ' ';
	values[7] = JsonbPGetDatum(conflict);
	values[8] = local ? JsonbPGetDatum(local) : (Datum) 0;
	nulls[8] = local ? ' ' : 'n';
	values[9] = server ? JsonbPGetDatum(server) : (Datum) 0;
	nulls[9] = server ? ' ' : 'n';
	values[10] = base ? JsonbPGetDatum(base) : (Datum) 0;
	nulls[10] = base ? ' ' : 'n';
	values[11] = Int64GetDatum(op->version);
	nulls[11] = op->has_version ? ' ' : 'n';
	values[12] = Int64GetDatum(server_version);
	nulls[12] = has_server_version ? ' ' : 'n';
	values[13] = TimestampTzGetDatum(op->ts);
	nulls[13] = op->has_ts ? ' ' : 'n';
	sql = psprintf("INSERT INTO %s.sync_conflicts "
				   "(entity_type, entity_id, operation, operation_id, client_id, user_id, practice_id, "
				   "conflict_type, severity, affected_fields, local_data, server_data, base_data, "
				   "base_version, server_version, local_ts) "
				   "SELECT $1, $2, $3, $4, $5, $6, $7, $8 ->> 'type', $8 ->> 'severity', "
				   "ARRAY(SELECT pg_catalog.jsonb_array_elements_text($8 -> 'affectedFields')), "
				   "$9, $10, $11, $12, $13, $14 "
				   "RETURNING conflict_id", b->qschema);
	rc = push_exec(push_plan(sql, 14, argtypes), values, nulls, 0);
	if (rc != SPI_OK_INSERT_RETURNING || SPI_processed != 1)
		elog(ERROR, "conflict store insert failed: %s", SPI_result_code_string(rc));
	id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_freetuptable(SPI_tuptable);
	return id;
}
