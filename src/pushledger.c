/*
 * pushledger.c: the SQL side of sync_push that is not the entity tables:
 * the saved-plan cache, the operation ledger (claim, replay, outcome), the
 * id map (temporary -> real ids) and the conflict store.
 *
 * The ledger is claimed for the whole batch in one INSERT ... ON CONFLICT DO
 * NOTHING, in operation-id order (so two pushes of overlapping batches lock
 * their keys in the same order and cannot deadlock); a concurrent push of the
 * same operation waits on the unique index until the first commits, then
 * sees its row and replays the stored result.  Outcomes are written back in
 * one UPDATE at the end; operations that failed transiently are removed from
 * the ledger again so that a retry applies them.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "smartsync.h"
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

/*
 * A saved plan for sql, prepared on first use.  The SQL text is the key, so
 * every plan names its tenant schema and columns.  Use the plan at once: a
 * later call may flush the cache.
 */
SPIPlanPtr
push_plan(const char *sql, int nargs, Oid *argtypes)
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

	plan = SPI_prepare(sql, nargs, argtypes);
	MemoryContextSwitchTo(old);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	if (e != NULL)
		return plan;			/* a hash collision: a one-off plan */
	if (hash_get_num_entries(push_plans) >= PUSH_PLAN_CACHE_MAX)
	{
		push_plan_flush();
		return push_plan(sql, nargs, argtypes);
	}
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	e = hash_search(push_plans, &key, HASH_ENTER, &found);
	e->sql = MemoryContextStrdup(TopMemoryContext, sql);
	e->plan = plan;
	return plan;
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
	for (int i = 0; i < b->nops; i++)
		if (strcmp(b->ops[i].opid, opid) == 0)
			return &b->ops[i];
	return NULL;
}

/* --- ledger ------------------------------------------------------------- */

/* Claims every operation of the batch in the ledger; marks the ones this push inserted. */
void
push_ledger_claim(PushBatch *b)
{
	int			n = b->nops;
	Datum	   *opids = palloc(sizeof(Datum) * n);
	Datum	   *etypes = palloc(sizeof(Datum) * n);
	Datum	   *eids = palloc(sizeof(Datum) * n);
	bool	   *eidnulls = palloc(sizeof(bool) * n);
	Datum	   *opers = palloc(sizeof(Datum) * n);
	Datum	   *tss = palloc(sizeof(Datum) * n);
	bool	   *tsnulls = palloc(sizeof(bool) * n);
	Datum	   *reqs = palloc(sizeof(Datum) * n);
	Oid			argtypes[9] = {TEXTOID, TEXTOID, TEXTOID, TEXTARRAYOID, TEXTARRAYOID,
	TEXTARRAYOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID, JSONBARRAYOID};
	Datum		values[9];
	char		nulls[9] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	bool		isnull;
	char	   *sql;
	int			rc;
	HTAB	   *byid;
	HASHCTL		ctl;

	for (int i = 0; i < n; i++)
	{
		PushOp	   *op = &b->ops[i];

		opids[i] = CStringGetTextDatum(op->opid);
		etypes[i] = CStringGetTextDatum(op->entity->entity_type);
		eids[i] = text_or_null(op->entity_id, &eidnulls[i]);
		opers[i] = CStringGetTextDatum(op->kind == PUSH_CREATE ? "create" :
									   op->kind == PUSH_UPDATE ? "update" : "delete");
		tsnulls[i] = !op->has_ts;
		tss[i] = op->has_ts ? TimestampTzGetDatum(op->ts) : (Datum) 0;
		reqs[i] = JsonbPGetDatum(op->request);
	}
	values[0] = CStringGetTextDatum(b->client_id);
	values[1] = text_or_null(b->ctx.user_id, &isnull);
	nulls[1] = isnull ? 'n' : ' ';
	values[2] = text_or_null(b->ctx.practice_id, &isnull);
	nulls[2] = isnull ? 'n' : ' ';
	values[3] = make_array(opids, NULL, n, TEXTOID);
	values[4] = make_array(etypes, NULL, n, TEXTOID);
	values[5] = make_array(eids, eidnulls, n, TEXTOID);
	values[6] = make_array(opers, NULL, n, TEXTOID);
	values[7] = make_array(tss, tsnulls, n, TIMESTAMPTZOID);
	values[8] = make_array(reqs, NULL, n, JSONBOID);

	sql = psprintf("INSERT INTO %s.sync_ledger AS l "
				   "(client_id, operation_id, entity_type, entity_id, operation, user_id, "
				   "practice_id, client_ts, request, outcome, result) "
				   "SELECT $1, u.op, u.et, u.eid, u.o, $2, $3, u.ts, u.req, 'pending', '{}'::pg_catalog.jsonb "
				   "FROM ROWS FROM (pg_catalog.unnest($4), pg_catalog.unnest($5), pg_catalog.unnest($6), "
				   "pg_catalog.unnest($7), pg_catalog.unnest($8), pg_catalog.unnest($9)) "
				   "AS u(op, et, eid, o, ts, req) "
				   "ORDER BY u.op "
				   "ON CONFLICT (client_id, operation_id) DO NOTHING "
				   "RETURNING l.operation_id", b->qschema);
	rc = push_exec(push_plan(sql, 9, argtypes), values, nulls, 0);
	if (rc != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "ledger claim failed: %s", SPI_result_code_string(rc));

	/* which operations this push claimed */
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = PUSH_ID_MAX + 1;
	ctl.entrysize = PUSH_ID_MAX + 1;
	ctl.hcxt = CurrentMemoryContext;
	byid = hash_create("smartsync push claimed ids", Max(SPI_processed, 16), &ctl,
					   HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	for (uint64 k = 0; k < SPI_processed; k++)
	{
		char	   *id = SPI_getvalue(SPI_tuptable->vals[k], SPI_tuptable->tupdesc, 1);

		hash_search(byid, id, HASH_ENTER, NULL);
	}
	SPI_freetuptable(SPI_tuptable);
	for (int i = 0; i < n; i++)
	{
		bool		found;

		hash_search(byid, b->ops[i].opid, HASH_FIND, &found);
		b->ops[i].claimed = found;
	}
	hash_destroy(byid);
}

/* Loads the stored result of every operation this push did not claim (a replay). */
void
push_ledger_load(PushBatch *b)
{
	Datum	   *opids = palloc(sizeof(Datum) * b->nops);
	int			n = 0;
	Oid			argtypes[2] = {TEXTOID, TEXTARRAYOID};
	Datum		values[2];
	char	   *sql;
	int			rc;

	for (int i = 0; i < b->nops; i++)
		if (!b->ops[i].claimed)
			opids[n++] = CStringGetTextDatum(b->ops[i].opid);
	if (n == 0)
		return;

	values[0] = CStringGetTextDatum(b->client_id);
	values[1] = make_array(opids, NULL, n, TEXTOID);
	sql = psprintf("SELECT operation_id, result || '{\"replayed\": true}'::pg_catalog.jsonb "
				   "FROM %s.sync_ledger WHERE client_id = $1 AND operation_id = ANY ($2)",
				   b->qschema);
	rc = push_exec(push_plan(sql, 2, argtypes), values, NULL, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "ledger read failed: %s", SPI_result_code_string(rc));
	for (uint64 k = 0; k < SPI_processed; k++)
	{
		HeapTuple	tup = SPI_tuptable->vals[k];
		char	   *id = SPI_getvalue(tup, SPI_tuptable->tupdesc, 1);
		bool		isnull;
		Datum		d = SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull);
		PushOp	   *op = op_by_id(b, id);

		if (op == NULL || op->claimed)
			continue;
		op->result = push_copy_jsonb(b->cxt, DatumGetJsonbP(d));
		op->outcome = PUSH_REPLAYED;
	}
	SPI_freetuptable(SPI_tuptable);

	/* not claimed and not there: only a concurrent push in flight can do that */
	for (int i = 0; i < b->nops; i++)
		if (!b->ops[i].claimed && b->ops[i].outcome != PUSH_REPLAYED)
			push_fail_op(b, &b->ops[i], ERRCODE_T_R_SERIALIZATION_FAILURE,
						 "the operation is being pushed concurrently",
						 "Another push of the same client holds this operation id; retry.", 1);
}

/* Writes every claimed operation's outcome; forgets transient failures so a retry applies them. */
void
push_ledger_finish(PushBatch *b)
{
	int			n = b->nops;
	Datum	   *opids = palloc(sizeof(Datum) * n);
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
	Datum	   *forget = palloc(sizeof(Datum) * n);
	int			nu = 0;
	int			nf = 0;
	char	   *sql;
	int			rc;

	for (int i = 0; i < n; i++)
	{
		PushOp	   *op = &b->ops[i];
		const char *outcome;

		if (!op->claimed)
			continue;
		if (op->outcome == PUSH_FAILED && op->retryable)
		{
			forget[nf++] = CStringGetTextDatum(op->opid);
			continue;
		}
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
		opids[nu] = CStringGetTextDatum(op->opid);
		outcomes[nu] = CStringGetTextDatum(outcome);
		results[nu] = JsonbPGetDatum(op->result);
		rids[nu] = text_or_null(op->real_id, &ridnulls[nu]);
		vernulls[nu] = !op->has_new_version;
		vers[nu] = op->has_new_version ? Int64GetDatum(op->new_version) : (Datum) 0;
		codes[nu] = text_or_null(op->error_code, &codenulls[nu]);
		cidnulls[nu] = (op->conflict_id == 0);
		cids[nu] = Int64GetDatum(op->conflict_id);
		nu++;
	}

	if (nu > 0)
	{
		Oid			argtypes[8] = {TEXTOID, TEXTARRAYOID, TEXTARRAYOID, JSONBARRAYOID,
		TEXTARRAYOID, INT8ARRAYOID, TEXTARRAYOID, INT8ARRAYOID};
		Datum		values[8];

		values[0] = CStringGetTextDatum(b->client_id);
		values[1] = make_array(opids, NULL, nu, TEXTOID);
		values[2] = make_array(outcomes, NULL, nu, TEXTOID);
		values[3] = make_array(results, NULL, nu, JSONBOID);
		values[4] = make_array(rids, ridnulls, nu, TEXTOID);
		values[5] = make_array(vers, vernulls, nu, INT8OID);
		values[6] = make_array(codes, codenulls, nu, TEXTOID);
		values[7] = make_array(cids, cidnulls, nu, INT8OID);
		sql = psprintf("UPDATE %s.sync_ledger AS l SET outcome = u.outcome, result = u.result, "
					   "real_id = u.rid, version = u.ver, error_code = u.code, conflict_id = u.cid, "
					   "completed_at = pg_catalog.clock_timestamp() "
					   "FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3), pg_catalog.unnest($4), "
					   "pg_catalog.unnest($5), pg_catalog.unnest($6), pg_catalog.unnest($7), "
					   "pg_catalog.unnest($8)) "
					   "AS u(op, outcome, result, rid, ver, code, cid) "
					   "WHERE l.client_id = $1 AND l.operation_id = u.op", b->qschema);
		rc = push_exec(push_plan(sql, 8, argtypes), values, NULL, 0);
		if (rc != SPI_OK_UPDATE)
			elog(ERROR, "ledger update failed: %s", SPI_result_code_string(rc));
	}
	if (nf > 0)
	{
		Oid			argtypes[2] = {TEXTOID, TEXTARRAYOID};
		Datum		values[2];

		values[0] = CStringGetTextDatum(b->client_id);
		values[1] = make_array(forget, NULL, nf, TEXTOID);
		sql = psprintf("DELETE FROM %s.sync_ledger WHERE client_id = $1 AND operation_id = ANY ($2)",
					   b->qschema);
		rc = push_exec(push_plan(sql, 2, argtypes), values, NULL, 0);
		if (rc != SPI_OK_DELETE)
			elog(ERROR, "ledger delete failed: %s", SPI_result_code_string(rc));
	}
}

/* --- id map ------------------------------------------------------------- */

/* Loads the id-map entries of these temporary ids (absent ones are remembered as absent). */
void
push_idmap_prefetch(PushBatch *b, List *temp_ids)
{
	Datum	   *ids;
	int			n = 0;
	Oid			argtypes[2] = {TEXTOID, TEXTARRAYOID};
	Datum		values[2];
	char	   *sql;
	int			rc;
	ListCell   *lc;

	if (temp_ids == NIL)
		return;
	ids = palloc(sizeof(Datum) * list_length(temp_ids));
	foreach(lc, temp_ids)
	{
		char	   *id = (char *) lfirst(lc);
		bool		found;
		PushTemp   *t = hash_search(b->temps, id, HASH_ENTER, &found);

		if (found)
			continue;
		t->known = false;
		t->entity_type = NULL;
		t->real_id = NULL;
		ids[n++] = CStringGetTextDatum(id);
	}
	values[0] = CStringGetTextDatum(b->client_id);
	values[1] = make_array(ids, NULL, n, TEXTOID);
	sql = psprintf("SELECT temp_id, entity_type, real_id FROM %s.sync_id_map "
				   "WHERE client_id = $1 AND temp_id = ANY ($2)", b->qschema);
	rc = push_exec(push_plan(sql, 2, argtypes), values, NULL, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "id map read failed: %s", SPI_result_code_string(rc));
	for (uint64 k = 0; k < SPI_processed; k++)
	{
		HeapTuple	tup = SPI_tuptable->vals[k];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *id = SPI_getvalue(tup, desc, 1);
		PushTemp   *t = hash_search(b->temps, id, HASH_FIND, NULL);

		if (t == NULL)
			continue;
		t->known = true;
		t->entity_type = MemoryContextStrdup(b->cxt, SPI_getvalue(tup, desc, 2));
		t->real_id = MemoryContextStrdup(b->cxt, SPI_getvalue(tup, desc, 3));
	}
	SPI_freetuptable(SPI_tuptable);
}

/* The mapping of a temporary id (created in this batch or earlier), or NULL. */
PushTemp *
push_idmap_lookup(PushBatch *b, const char *temp_id)
{
	PushTemp   *t;

	if (strlen(temp_id) > PUSH_ID_MAX)
		return NULL;
	t = hash_search(b->temps, temp_id, HASH_FIND, NULL);
	return (t != NULL && t->known) ? t : NULL;
}

/* Records temp -> real for op's create, in the id map and for the rest of the batch. */
void
push_idmap_insert(PushBatch *b, PushOp *op, const char *real_id)
{
	Oid			argtypes[6] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID};
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	char	   *sql;
	int			rc;
	PushTemp   *t;
	bool		found;

	values[0] = CStringGetTextDatum(b->client_id);
	values[1] = CStringGetTextDatum(op->entity_id);
	values[2] = CStringGetTextDatum(op->entity->entity_type);
	values[3] = CStringGetTextDatum(real_id);
	values[4] = CStringGetTextDatum(op->opid);
	if (op->has_ts)
		values[5] = TimestampTzGetDatum(op->ts);
	else
		nulls[5] = 'n';
	sql = psprintf("INSERT INTO %s.sync_id_map "
				   "(client_id, temp_id, entity_type, real_id, operation_id, created_at) "
				   "VALUES ($1, $2, $3, $4, $5, $6)", b->qschema);
	rc = push_exec(push_plan(sql, 6, argtypes), values, nulls, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "id map insert failed: %s", SPI_result_code_string(rc));

	t = hash_search(b->temps, op->entity_id, HASH_ENTER, &found);
	t->known = true;
	t->entity_type = op->entity->entity_type;
	t->real_id = MemoryContextStrdup(b->cxt, real_id);
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
