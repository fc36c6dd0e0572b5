/*
 * resolve.c: the conflict store's resolution (smartsync.resolve_conflict).
 *
 * A conflict that push stored in the tenant's sync_conflicts is resolved here
 * with one of the spec's strategies:
 *   server-wins      the server row stays; the conflict is closed and the
 *                    result carries the server state for the client.
 *   client-wins      the client's data is written over the server row (a
 *                    client delete deletes it; a client update of a row the
 *                    server deleted re-creates it from its last image).
 *   merge            three-way against the base version when known, else
 *                    the spec's two-way attemptMerge; a field changed on both
 *                    sides fails with SS606 naming the fields.
 *   last-write-wins  the client's timestamp against the server's updated_at
 *                    (the deletion time for a deleted row); the later wins.
 *   manual           resolved_data, mapped to columns and checked, is written.
 *
 * Order of work: the conflict row is locked (FOR UPDATE), then the entity row
 * (FOR UPDATE), so two resolutions of one conflict serialize and the second
 * sees it resolved (SS602).  A server row that changed after the conflict was
 * recorded (its version differs from the stored server_version, or it was
 * deleted or re-created) is stale: only server-wins may close it (SS603).
 * Every write goes through the tracked table by SPI, so the stamp trigger
 * raises the version and capture logs the change under the resolver's
 * context (user, client); values travel as one jsonb parameter through
 * jsonb_populate_record, identifiers are quoted, plans are saved (push_plan).
 *
 * Listing and counts (smartsync.list_conflicts, conflict_stats) are in
 * conflictstore.c.
 */
#include "postgres.h"

#include "access/detoast.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "smartsync.h"
#include "citus.h"
#include "kernel.h"
#include "push.h"
#include "resolve.h"

PG_FUNCTION_INFO_V1(smartsync_resolve_conflict);

typedef enum ResolveStrategy
{
	RS_SERVER_WINS = 0,
	RS_CLIENT_WINS,
	RS_MERGE,
	RS_LAST_WRITE_WINS,
	RS_MANUAL
} ResolveStrategy;

static const char *const strategy_names[] = {
	"server-wins", "client-wins", "merge", "last-write-wins", "manual"
};

/* One stored conflict, as locked. */
typedef struct StoredConflict
{
	int64		id;
	char	   *entity_type;
	char	   *entity_id;
	char	   *operation;
	char	   *practice_id;
	char	   *conflict_type;
	char	   *severity;
	Jsonb	   *local;
	Jsonb	   *server;
	Jsonb	   *base;
	bool		has_base_version;
	int64		base_version;
	bool		has_server_version;
	int64		server_version;
	bool		has_local_ts;
	TimestampTz local_ts;
	char	   *status;
	char	   *strategy;
	char	   *resolved_by;
	char	   *resolved_at;
} StoredConflict;

/* What a resolution did. */
typedef struct Outcome
{
	const char *winner;			/* server, client, merged, manual */
	Jsonb	   *row;			/* the row on the server now; NULL when deleted */
	bool		has_version;
	int64		version;		/* the row's version, or its tombstone's */
	bool		written;		/* the resolution wrote to the row */
} Outcome;

/* --- small helpers ------------------------------------------------------- */

/* A text column of the current SPI row, copied; NULL when null. */
static char *
spi_text(HeapTuple tup, TupleDesc desc, int col)
{
	char	   *s = SPI_getvalue(tup, desc, col);

	return s ? pstrdup(s) : NULL;
}

/* A jsonb column of the current SPI row, copied; NULL when null. */
static Jsonb *
spi_jsonb(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? NULL : DatumGetJsonbPCopy(d);
}

/* An int8 column; false when null. */
static bool
spi_int64(HeapTuple tup, TupleDesc desc, int col, int64 *out)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	if (!isnull)
		*out = DatumGetInt64(d);
	return !isnull;
}

/* The first column of the first result row as jsonb, copied; NULL if none. */
static Jsonb *
first_jsonb(void)
{
	Jsonb	   *result = NULL;

	if (SPI_processed > 0)
		result = spi_jsonb(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	SPI_freetuptable(SPI_tuptable);
	return result;
}

/* A string or number field of a row as text; NULL when absent, null or a container. */
char *
conflict_field_text(Jsonb *row, const char *key)
{
	JsonbValue *v;

	if (row == NULL || !JB_ROOT_IS_OBJECT(row))
		return NULL;
	v = getKeyJsonValueFromContainer(&row->root, key, strlen(key), NULL);
	if (v == NULL || v->type == jbvBinary)
		return NULL;
	return sync_jsonb_scalar_text(v);
}

/* A row's version; false when absent. */
static bool
row_version(Jsonb *row, int64 *version)
{
	char	   *s = conflict_field_text(row, "version");

	if (s == NULL)
		return false;
	*version = strtoll(s, NULL, 10);
	return true;
}

/* A timestamptz field of a row; false when absent or not a timestamp. */
static bool
row_timestamp(Jsonb *row, const char *key, TimestampTz *ts)
{
	char	   *s = conflict_field_text(row, key);

	if (s == NULL)
		return false;
	*ts = DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in, CStringGetDatum(s),
												  ObjectIdGetDatum(InvalidOid),
												  Int32GetDatum(-1)));
	return true;
}

/* "a, b, c" of a List of char *. */
static char *
join_names(List *names)
{
	StringInfoData s;
	ListCell   *lc;

	initStringInfo(&s);
	foreach(lc, names)
		appendStringInfo(&s, "%s%s", s.len ? ", " : "", (char *) lfirst(lc));
	return s.data;
}

/* --- the request context and entity types -------------------------------- */

/* Reads the request context into a minimal push batch (tenant required). */
void
conflict_context(PushBatch *b, MemoryContext cxt)
{
	memset(b, 0, sizeof(*b));
	b->cxt = cxt;
	sync_context_read(&b->ctx);
	sync_context_require_tenant(&b->ctx);
	b->schema = sync_tenant_schema(b->ctx.tenant_id);
	b->qschema = pstrdup(quote_identifier(b->schema));
}

/*
 * The registered entity type of this name with its table resolved in the
 * tenant schema, or NULL when not registered (or its table is missing and
 * missing_ok).  Entities are kept in b->entities for the call.
 */
PushEntity *
conflict_entity(PushBatch *b, const char *entity_type, bool missing_ok)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	PushEntity *e;
	HeapTuple	tup;
	TupleDesc	desc;
	int			rc;

	e = push_find_entity(b, entity_type, strlen(entity_type));
	if (e != NULL)
		return e->resolved ? e : NULL;

	values[0] = CStringGetTextDatum(entity_type);
	rc = push_exec(push_plan("SELECT table_name::pg_catalog.text, pk_column::pg_catalog.text, "
							 "practice_column::pg_catalog.text, default_strategy, "
							 "reference_fields, field_classes "
							 "FROM smartsync.entity_types WHERE entity_type = $1",
							 1, argtypes), values, NULL, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading smartsync.entity_types failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 0)
	{
		SPI_freetuptable(SPI_tuptable);
		if (missing_ok)
			return NULL;
		ereport(ERROR,
				(errcode(ERRCODE_SS_UNKNOWN_ENTITY_TYPE),
				 errmsg("unknown entity type \"%s\"", sync_clip_str(entity_type)),
				 errdetail("The conflict's entity type is no longer registered; nothing was changed."),
				 errhint("Register the entity type again to resolve its conflicts.")));
	}

	/* append to the call's entity array (a few types at most) */
	{
		MemoryContext old = MemoryContextSwitchTo(b->cxt);
		PushEntity *arr = palloc0(sizeof(PushEntity) * (b->nentities + 1));

		if (b->nentities > 0)
			memcpy(arr, b->entities, sizeof(PushEntity) * b->nentities);
		b->entities = arr;
		e = &b->entities[b->nentities++];
		tup = SPI_tuptable->vals[0];
		desc = SPI_tuptable->tupdesc;
		e->entity_type = pstrdup(entity_type);
		e->table_name = spi_text(tup, desc, 1);
		e->pk_column = spi_text(tup, desc, 2);
		e->practice_column = spi_text(tup, desc, 3);
		e->strategy = spi_text(tup, desc, 4);
		e->reference_fields = spi_jsonb(tup, desc, 5);
		e->field_classes = spi_jsonb(tup, desc, 6);
		e->practice_index = -1;
		MemoryContextSwitchTo(old);
	}
	SPI_freetuptable(SPI_tuptable);

	if (missing_ok)
	{
		bool		ok = true;
		MemoryContext old = CurrentMemoryContext;
		ResourceOwner owner = CurrentResourceOwner;

		/* a tenant without the table (unprovisioned type): treat as unknown */
		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(old);
		PG_TRY();
		{
			push_resolve_entity(b, e);
			ReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(old);
			CurrentResourceOwner = owner;
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(old);
			edata = CopyErrorData();
			FlushErrorState();
			RollbackAndReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(old);
			CurrentResourceOwner = owner;
			if (edata->sqlerrcode != ERRCODE_SS_MISSING_TABLE &&
				edata->sqlerrcode != ERRCODE_SS_NO_SINGLE_PK)
				ReThrowError(edata);
			ok = false;
		}
		PG_END_TRY();
		return ok ? e : NULL;
	}
	push_resolve_entity(b, e);
	return e;
}

/*
 * The entity id as JSON: the row's key value when the row is known, else
 * the id as a number when the key is numeric, else as a string.
 */
void
conflict_push_entity_id(JsonbParseState **ps, PushEntity *e, Jsonb *row, const char *id)
{
	JsonbValue *v = NULL;
	JsonbValue	tmp;

	if (row != NULL && e != NULL)
		v = getKeyJsonValueFromContainer(&row->root, e->pk_column, strlen(e->pk_column), NULL);
	if (v == NULL && e != NULL && e->pk_numeric)
	{
		bool		ok = true;

		for (const char *p = id; *p; p++)
			if (!((*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
				ok = false;
		if (ok && *id != '\0')
		{
			tmp.type = jbvNumeric;
			tmp.val.numeric = DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(id),
																  ObjectIdGetDatum(InvalidOid),
																  Int32GetDatum(-1)));
			v = &tmp;
		}
	}
	if (v == NULL)
	{
		tmp.type = jbvString;
		tmp.val.string.val = (char *) id;
		tmp.val.string.len = strlen(id);
		v = &tmp;
	}
	pushJsonbValue(ps, WJB_VALUE, v);
}

/* --- SQL on the conflict store and the entity table ---------------------- */

/* Reads and locks conflict id (FOR UPDATE); false when the tenant has none. */
static bool
lock_conflict(PushBatch *b, int64 id, StoredConflict *c)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1];
	char	   *sql;
	HeapTuple	tup;
	TupleDesc	desc;
	int			rc;
	bool		isnull;
	Datum		d;

	sql = psprintf("SELECT conflict_id, entity_type, entity_id, operation, practice_id, conflict_type, "
				   "severity, local_data, server_data, base_data, base_version, server_version, "
				   "local_ts, status, strategy, resolved_by, "
				   "pg_catalog.to_jsonb(resolved_at) #>> '{}' "
				   "FROM %s.sync_conflicts WHERE conflict_id = $1 FOR UPDATE", b->qschema);
	values[0] = Int64GetDatum(id);
	rc = push_exec(push_plan(sql, 1, argtypes), values, NULL, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading the conflict store failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 0)
	{
		SPI_freetuptable(SPI_tuptable);
		return false;
	}
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	memset(c, 0, sizeof(*c));
	c->id = id;
	c->entity_type = spi_text(tup, desc, 2);
	c->entity_id = spi_text(tup, desc, 3);
	c->operation = spi_text(tup, desc, 4);
	c->practice_id = spi_text(tup, desc, 5);
	c->conflict_type = spi_text(tup, desc, 6);
	c->severity = spi_text(tup, desc, 7);
	c->local = spi_jsonb(tup, desc, 8);
	c->server = spi_jsonb(tup, desc, 9);
	c->base = spi_jsonb(tup, desc, 10);
	c->has_base_version = spi_int64(tup, desc, 11, &c->base_version);
	c->has_server_version = spi_int64(tup, desc, 12, &c->server_version);
	d = SPI_getbinval(tup, desc, 13, &isnull);
	c->has_local_ts = !isnull;
	if (!isnull)
		c->local_ts = DatumGetTimestampTz(d);
	c->status = spi_text(tup, desc, 14);
	c->strategy = spi_text(tup, desc, 15);
	c->resolved_by = spi_text(tup, desc, 16);
	c->resolved_at = spi_text(tup, desc, 17);
	SPI_freetuptable(SPI_tuptable);
	return true;
}

/*
 * lock_conflict in a subtransaction: under REPEATABLE READ a concurrent
 * resolution that committed first makes FOR UPDATE fail with 40001; that is
 * the "resolved concurrently" case, reported as SS602.
 */
static bool
lock_conflict_checked(PushBatch *b, int64 id, StoredConflict *c)
{
	MemoryContext old = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	bool		found = false;

	/* under READ COMMITTED, FOR UPDATE re-reads the row: no serialization failure */
	if (!IsolationUsesXactSnapshot())
		return lock_conflict(b, id, c);

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(old);
	PG_TRY();
	{
		found = lock_conflict(b, id, c);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(old);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(old);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(old);
		CurrentResourceOwner = owner;
		if (edata->sqlerrcode != ERRCODE_T_R_SERIALIZATION_FAILURE)
			ReThrowError(edata);
		ereport(ERROR,
				(errcode(ERRCODE_SS_CONFLICT_RESOLVED),
				 errmsg("conflict " INT64_FORMAT " was resolved concurrently", id),
				 errdetail("Another transaction resolved it after this transaction's snapshot was taken; nothing was changed."),
				 errhint("Read the conflict again: list_conflicts() shows only open ones.")));
	}
	PG_END_TRY();
	return found;
}

/* Locks the entity row (FOR UPDATE) and returns it, or NULL when there is none. */
static Jsonb *
lock_row(PushEntity *e, const char *id)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	char	   *sql;
	int			rc;

	sql = psprintf("SELECT pg_catalog.to_jsonb(t.*) FROM %s AS t WHERE t.%s = $1::%s FOR UPDATE",
				   e->qualified, quote_identifier(e->pk_column), e->pk_type);
	values[0] = CStringGetTextDatum(id);
	rc = push_exec(push_plan(sql, 1, argtypes), values, NULL, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "lock of %s failed: %s", e->qualified, SPI_result_code_string(rc));
	return first_jsonb();
}

/* The entity's latest change-log entry: true when there is one. */
static bool
last_change(PushBatch *b, PushEntity *e, const char *id, char **operation, Jsonb **data,
			int64 *version, TimestampTz *changed_at)
{
	Oid			argtypes[3] = {TEXTOID, TEXTOID, INT8OID};
	Datum		values[3];
	char	   *sql;
	int			rc;
	bool		isnull;

	sql = psprintf("SELECT c.operation, c.data, c.version, c.changed_at FROM %s.sync_changes AS c "
				   "WHERE c.entity_key = $3 AND c.entity_type = $1 AND c.entity_id = $2 "
				   "ORDER BY c.entity_key DESC, c.seq DESC LIMIT 1",
				   b->qschema);
	values[0] = CStringGetTextDatum(e->entity_type);
	values[1] = CStringGetTextDatum(id);
	values[2] = Int64GetDatum(sync_entity_key(e->entity_type, strlen(e->entity_type), id, strlen(id)));
	rc = sync_log_exec_entity(push_plan(sql, 3, argtypes), values);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "change log read failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 0)
	{
		SPI_freetuptable(SPI_tuptable);
		return false;
	}
	*operation = spi_text(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	*data = spi_jsonb(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	(void) spi_int64(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, version);
	*changed_at = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
													4, &isnull));
	SPI_freetuptable(SPI_tuptable);
	return true;
}

/* The row as it was at version, from the change log; NULL when not there. */
static Jsonb *
base_from_log(PushBatch *b, PushEntity *e, const char *id, int64 version)
{
	return sync_log_row_at(b->qschema, e->entity_type, id, version);
}

/* Appends the quoted names of cols' keys, each after prefix, comma-separated. */
static void
append_keys(StringInfo q, Jsonb *cols, const char *prefix, const char *fmt_eq)
{
	JsonbIterator *it = JsonbIteratorInit(&cols->root);
	JsonbValue	v;
	JsonbIteratorToken tok;
	bool		first = true;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		const char *name;

		if (tok != WJB_KEY)
			continue;
		name = quote_identifier(pnstrdup(v.val.string.val, v.val.string.len));
		if (fmt_eq)
			appendStringInfo(q, "%s%s = r.%s", first ? "" : ", ", name, name);
		else
			appendStringInfo(q, "%s%s%s", first ? "" : ", ", prefix, name);
		first = false;
	}
}

/* UPDATE of cols' columns of row id; returns the new row. */
static Jsonb *
write_update(PushEntity *e, Jsonb *cols, const char *id)
{
	StringInfoData q;
	Oid			argtypes[2] = {JSONBOID, TEXTOID};
	Datum		values[2];
	int			rc;

	/* the jsonb built outside RETURNING, where Citus accepts it (README "Scaling out") */
	initStringInfo(&q);
	appendStringInfo(&q, "WITH w AS (UPDATE %s AS t SET ", e->qualified);
	append_keys(&q, cols, NULL, "=");
	appendStringInfo(&q, " FROM pg_catalog.jsonb_populate_record(NULL::%s, $1) AS r "
					 "WHERE t.%s = $2::%s RETURNING t.*) SELECT pg_catalog.to_jsonb(w.*) FROM w",
					 e->qualified, quote_identifier(e->pk_column), e->pk_type);
	values[0] = JsonbPGetDatum(cols);
	values[1] = CStringGetTextDatum(id);
	rc = push_exec(push_plan(q.data, 2, argtypes), values, NULL, 0);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "update of %s failed: %s", e->qualified, SPI_result_code_string(rc));
	return first_jsonb();
}

/* INSERT of a row with cols (key included); returns the new row. */
static Jsonb *
write_insert(PushEntity *e, Jsonb *cols)
{
	StringInfoData q;
	Oid			argtypes[1] = {JSONBOID};
	Datum		values[1];
	int			rc;

	initStringInfo(&q);
	appendStringInfo(&q, "WITH w AS (INSERT INTO %s AS t (", e->qualified);
	append_keys(&q, cols, "", NULL);
	appendStringInfoString(&q, ") SELECT ");
	append_keys(&q, cols, "r.", NULL);
	appendStringInfo(&q, " FROM pg_catalog.jsonb_populate_record(NULL::%s, $1) AS r "
					 "RETURNING t.*) SELECT pg_catalog.to_jsonb(w.*) FROM w", e->qualified);
	values[0] = JsonbPGetDatum(cols);
	rc = push_exec(push_plan(q.data, 1, argtypes), values, NULL, 0);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "insert into %s failed: %s", e->qualified, SPI_result_code_string(rc));
	return first_jsonb();
}

/* DELETE of row id; returns the tombstone's version. */
static int64
write_delete(PushEntity *e, const char *id)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	char	   *sql;
	int			rc;
	int64		version = 0;

	sql = psprintf("DELETE FROM %s AS t WHERE t.%s = $1::%s RETURNING t.version + 1",
				   e->qualified, quote_identifier(e->pk_column), e->pk_type);
	values[0] = CStringGetTextDatum(id);
	rc = push_exec(push_plan(sql, 1, argtypes), values, NULL, 0);
	if (rc != SPI_OK_DELETE_RETURNING || SPI_processed != 1)
		elog(ERROR, "delete from %s failed: %s", e->qualified, SPI_result_code_string(rc));
	(void) spi_int64(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &version);
	SPI_freetuptable(SPI_tuptable);
	return version;
}

/* --- data to columns ----------------------------------------------------- */

/* Raises SS607 about the resolved data. */
static void
bad_data(int64 conflict_id, const char *msg, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_SS_CONFLICT_DATA),
			 errmsg("invalid resolved_data for conflict " INT64_FORMAT ": %s", conflict_id, msg),
			 errdetail("%s Nothing was changed.", detail)));
}

/*
 * The writable columns of data, by column name: the key and the metadata
 * columns (version, updated_at) are left out; keep_key keeps the key.
 * strict (manual data from the caller): camelCase keys are mapped, an
 * unknown or generated field, a key other than the entity's id, or a
 * practice other than the context's raise SS607 / SS604.  Not strict (data
 * push stored): unknown keys are skipped.
 */
static Jsonb *
data_columns(PushBatch *b, PushEntity *e, Jsonb *data, const char *id, bool strict,
			 bool keep_key, int64 conflict_id)
{
	JsonbValue **vals = palloc0(sizeof(JsonbValue *) * Max(e->ncols, 1));
	JsonbParseState *ps = NULL;
	JsonbValue *res;

	if (data != NULL)
	{
		JsonbIterator *it = JsonbIteratorInit(&data->root);
		JsonbValue	k;
		JsonbValue	v;
		JsonbIteratorToken tok;

		while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
		{
			char	   *key;
			int			col;

			if (tok != WJB_KEY)
				continue;
			tok = JsonbIteratorNext(&it, &v, true);
			key = sync_clip(k.val.string.val, k.val.string.len);
			col = strict ? push_find_column(e, k.val.string.val, k.val.string.len) : -1;
			if (!strict)
			{
				for (int i = 0; i < e->ncols; i++)
					if ((int) strlen(e->cols[i].name) == k.val.string.len &&
						memcmp(e->cols[i].name, k.val.string.val, k.val.string.len) == 0)
						col = i;
			}
			if (col < 0)
			{
				if (!strict || sync_is_metadata_field(k.val.string.val, k.val.string.len))
					continue;
				bad_data(conflict_id, psprintf("unknown field \"%s\"", key),
						 psprintf("Table \"%s\" of entity type \"%s\" has no column of exactly that name or whose camelCase spelling it is.",
								  e->table_name, e->entity_type));
			}
			if (col == e->version_index || col == e->updated_at_index)
				continue;
			if (col == e->pk_index)
			{
				char	   *s = (v.type == jbvBinary) ? NULL : sync_jsonb_scalar_text(&v);

				if (s != NULL && v.type == jbvNumeric)
					s = sync_numeric_canonical(v.val.numeric);
				if (strict && (s == NULL || strcmp(s, id) != 0))
					bad_data(conflict_id, psprintf("field \"%s\" is not the entity's id", key),
							 psprintf("The conflict is about %s \"%s\"; its key cannot change.",
									  e->entity_type, id));
				continue;
			}
			if (!e->cols[col].writable)
			{
				if (!strict)
					continue;
				bad_data(conflict_id, psprintf("field \"%s\" cannot be written", key),
						 psprintf("Column \"%s\" is generated.", e->cols[col].name));
			}
			if (vals[col] != NULL)
				bad_data(conflict_id, psprintf("field \"%s\" is given twice", e->cols[col].name),
						 psprintf("Both \"%s\" and another spelling of it are in the data.", key));
			if (col == e->practice_index && b->ctx.practice_id != NULL)
			{
				char	   *s = sync_canonical_id_value(&v);

				if (s == NULL || strcmp(s, b->ctx.practice_id) != 0)
					ereport(ERROR,
							(errcode(ERRCODE_SS_CONFLICT_PRACTICE),
							 errmsg("conflict " INT64_FORMAT ": field \"%s\" names practice %s, not the request context's practice \"%s\"",
									conflict_id, key, s ? sync_clip_str(s) : "null", b->ctx.practice_id),
							 errdetail("A resolution writes only rows of its own practice; nothing was changed.")));
			}
			vals[col] = palloc(sizeof(JsonbValue));
			*vals[col] = v;
		}
	}

	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	if (keep_key)
	{
		JsonbValue	idv;

		push_key(&ps, e->pk_column);
		idv.type = jbvString;
		idv.val.string.val = (char *) id;
		idv.val.string.len = strlen(id);
		pushJsonbValue(&ps, WJB_VALUE, &idv);
	}
	for (int i = 0; i < e->ncols; i++)
	{
		if (vals[i] == NULL)
			continue;
		push_key(&ps, e->cols[i].name);
		pushJsonbValue(&ps, WJB_VALUE, vals[i]);
	}
	res = pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

/* cols without the fields whose value equals the row's (nothing left: NULL). */
static Jsonb *
changed_only(Jsonb *cols, Jsonb *row)
{
	List	   *fields = sync_compare_fields_ex(cols, row, NIL, false, true);
	JsonbParseState *ps = NULL;
	JsonbValue *res;
	ListCell   *lc;

	if (fields == NIL)
		return NULL;
	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	foreach(lc, fields)
	{
		const char *f = (const char *) lfirst(lc);
		JsonbValue *v = getKeyJsonValueFromContainer(&cols->root, f, strlen(f), NULL);

		if (v == NULL)
			continue;
		push_key(&ps, f);
		pushJsonbValue(&ps, WJB_VALUE, v);
	}
	res = pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

/* cols with each value taken from merged (columns absent there: null). */
static Jsonb *
values_from(Jsonb *cols, Jsonb *merged)
{
	JsonbIterator *it = JsonbIteratorInit(&cols->root);
	JsonbValue	k;
	JsonbValue	v;
	JsonbIteratorToken tok;
	JsonbParseState *ps = NULL;
	JsonbValue *res;

	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		JsonbValue *m;

		if (tok != WJB_KEY)
			continue;
		(void) JsonbIteratorNext(&it, &v, true);
		m = getKeyJsonValueFromContainer(&merged->root, k.val.string.val, k.val.string.len, NULL);
		pushJsonbValue(&ps, WJB_KEY, &k);
		if (m != NULL)
			pushJsonbValue(&ps, WJB_VALUE, m);
		else
			push_null(&ps);
	}
	res = pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

/* The columns of a tombstone image (its last row) to re-create the row from, without metadata. */
static Jsonb *
image_columns(PushBatch *b, PushEntity *e, Jsonb *image, const char *id, int64 conflict_id)
{
	if (image == NULL)
		return NULL;
	return data_columns(b, e, image, id, false, false, conflict_id);
}

/* --- applying ------------------------------------------------------------ */

/*
 * Raises SS610 unless the request context may make the write a resolution is
 * about to make ("<type>:create", "update" or "delete", with the wildcards
 * push and pull accept; a trusted direct SQL caller may).  A resolution that
 * writes nothing (server-wins, or data already equal) needs no permission.
 */
static void
require_write(PushBatch *b, PushEntity *e, StoredConflict *c, const char *action)
{
	if (sync_context_may_write(&b->ctx, e->entity_type, action))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_SS_CONFLICT_PERMISSION),
			 errmsg("permission \"%s:%s\" denied", e->entity_type, action),
			 errdetail("Resolving conflict " INT64_FORMAT " would %s %s \"%s\", and the request context %s; nothing was changed.",
					   c->id, action, e->entity_type, sync_clip_str(c->entity_id),
					   b->ctx.has_permissions ? "does not grant that permission" : "carries no permissions"),
			 errhint("Resolve with server-wins, which writes nothing, or with a token that holds the permission.")));
}

/*
 * Writes cols over the existing row (only the changed columns), or
 * re-creates a deleted row from its last image overlaid with cols.
 */
static void
apply_columns(PushBatch *b, PushEntity *e, StoredConflict *c, Jsonb *current,
			  Jsonb *image, Jsonb *cols, Outcome *out)
{
	if (current != NULL)
	{
		Jsonb	   *changed = changed_only(cols, current);

		if (changed != NULL)
			require_write(b, e, c, "update");
		out->written = (changed != NULL);
		out->row = changed ? write_update(e, changed, c->entity_id) : current;
	}
	else
	{
		Jsonb	   *full = data_columns(b, e, NULL, c->entity_id, false, true, c->id);
		Jsonb	   *img = image_columns(b, e, image, c->entity_id, c->id);
		const char *practice = b->ctx.practice_id ? b->ctx.practice_id : c->practice_id;

		require_write(b, e, c, "create");
		if (img != NULL)
			full = DatumGetJsonbP(DirectFunctionCall2(jsonb_concat, JsonbPGetDatum(img),
													  JsonbPGetDatum(full)));
		full = DatumGetJsonbP(DirectFunctionCall2(jsonb_concat, JsonbPGetDatum(full),
												  JsonbPGetDatum(cols)));
		/* a row that never was (or whose image lacks it) is made in the caller's practice */
		if (e->practice_index >= 0 && practice != NULL &&
			getKeyJsonValueFromContainer(&full->root, e->practice_column,
										 strlen(e->practice_column), NULL) == NULL)
		{
			JsonbParseState *ps = NULL;

			pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
			push_key(&ps, e->practice_column);
			push_str(&ps, WJB_VALUE, practice);
			full = DatumGetJsonbP(DirectFunctionCall2(jsonb_concat, JsonbPGetDatum(full),
													  JsonbPGetDatum(JsonbValueToJsonb(pushJsonbValue(&ps, WJB_END_OBJECT, NULL)))));
		}
		out->written = true;
		/* the row continues after its tombstone (last version + 1) */
		if (img != NULL)
		{
			JsonbValue *v = sync_jsonb_get(image, "version");

			if (v != NULL && v->type == jbvNumeric)
				sync_stamp_next_insert(e->relid,
									   DatumGetInt64(DirectFunctionCall1(numeric_int8,
																		 NumericGetDatum(v->val.numeric))) + 2);
		}
		out->row = write_insert(e, full);
	}
	out->has_version = row_version(out->row, &out->version);
}

/* The client's side wins: its delete deletes, its update or create is written. */
static void
apply_client(PushBatch *b, PushEntity *e, StoredConflict *c, Jsonb *current, Jsonb *image,
			 int64 tombstone_version, Outcome *out)
{
	out->winner = "client";
	if (strcmp(c->operation, "delete") == 0)
	{
		out->row = NULL;
		if (current != NULL)
		{
			require_write(b, e, c, "delete");
			out->version = write_delete(e, c->entity_id);
			out->written = true;
		}
		else
			out->version = tombstone_version;
		out->has_version = (out->version > 0);
		return;
	}
	apply_columns(b, e, c, current, image,
				  data_columns(b, e, c->local, c->entity_id, false, false, c->id), out);
}

/* The server's side wins: nothing is written. */
static void
apply_server(Jsonb *current, int64 tombstone_version, Outcome *out)
{
	out->winner = "server";
	out->row = current;
	if (current != NULL)
		out->has_version = row_version(current, &out->version);
	else
	{
		out->version = tombstone_version;
		out->has_version = (tombstone_version > 0);
	}
}

/* merge: three-way against the base when known, else two-way; SS606 on a true conflict. */
static void
apply_merge(PushBatch *b, PushEntity *e, StoredConflict *c, Jsonb *current, Outcome *out)
{
	Jsonb	   *local = data_columns(b, e, c->local, c->entity_id, false, false, c->id);
	Jsonb	   *base = c->base;
	Jsonb	   *merged;
	List	   *conflicting = NIL;

	if (current == NULL || strcmp(c->operation, "delete") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_SS_CONFLICT_NOT_APPLICABLE),
				 errmsg("conflict " INT64_FORMAT " cannot be merged: %s", c->id,
						current == NULL ? "the server row is deleted" : "the client deleted the row"),
				 errdetail("One side deleted %s \"%s\" and the other changed it; there are no two versions of the row to merge. Nothing was changed.",
						   e->entity_type, c->entity_id),
				 errhint("Resolve with server-wins, client-wins, last-write-wins or manual.")));

	if (base == NULL && c->has_base_version)
		base = base_from_log(b, e, c->entity_id, c->base_version);
	if (base != NULL)
	{
		Jsonb	   *full = DatumGetJsonbP(DirectFunctionCall2(jsonb_concat, JsonbPGetDatum(base),
															  JsonbPGetDatum(local)));

		merged = sync_merge3(base, full, current, &conflicting);
	}
	else
	{
		merged = sync_merge(local, current);
		if (merged == NULL)
			conflicting = sync_compare_fields_ex(local, current, NIL, true, true);
	}
	if (merged == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_SS_CONFLICT_MERGE),
				 errmsg("cannot merge conflict " INT64_FORMAT ": %s %s changed on both sides",
						c->id, list_length(conflicting) == 1 ? "field" : "fields",
						join_names(conflicting)),
				 base != NULL ?
				 errdetail("The client and the server both changed %s to different values since version " INT64_FORMAT "; nothing was changed.",
						   list_length(conflicting) == 1 ? "it" : "them", c->base_version) :
				 errdetail("The client's and the server's values differ and the base version is not known, so the two-way merge cannot choose; nothing was changed."),
				 errhint("Resolve with manual and the values to keep, or with server-wins or client-wins.")));
	out->winner = "merged";
	apply_columns(b, e, c, current, NULL, values_from(local, merged), out);
}

/* manual: the caller's data, checked and written. */
static void
apply_manual(PushBatch *b, PushEntity *e, StoredConflict *c, Jsonb *current, Jsonb *image,
			 Jsonb *resolved, Outcome *out)
{
	out->winner = "manual";
	apply_columns(b, e, c, current, image,
				  data_columns(b, e, resolved, c->entity_id, true, false, c->id), out);
}

/*
 * Runs the strategy in a subtransaction so that a value the table refuses
 * (a data exception, class 22, or a constraint violation, class 23) becomes
 * SS607; other errors pass unchanged.
 */
static void
apply_strategy(PushBatch *b, PushEntity *e, StoredConflict *c, ResolveStrategy strategy,
			   Jsonb *current, Jsonb *image, int64 tombstone_version,
			   TimestampTz server_ts, bool has_server_ts, Jsonb *resolved, Outcome *out)
{
	MemoryContext old = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;

	/* server-wins writes nothing: no subtransaction needed */
	if (strategy == RS_SERVER_WINS)
	{
		apply_server(current, tombstone_version, out);
		return;
	}

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(old);
	PG_TRY();
	{
		switch (strategy)
		{
			case RS_SERVER_WINS:
				apply_server(current, tombstone_version, out);
				break;
			case RS_CLIENT_WINS:
				apply_client(b, e, c, current, image, tombstone_version, out);
				break;
			case RS_LAST_WRITE_WINS:
				if (c->has_local_ts && (!has_server_ts || c->local_ts > server_ts))
					apply_client(b, e, c, current, image, tombstone_version, out);
				else
					apply_server(current, tombstone_version, out);
				break;
			case RS_MERGE:
				apply_merge(b, e, c, current, out);
				break;
			case RS_MANUAL:
				apply_manual(b, e, c, current, image, resolved, out);
				break;
		}
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(old);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		int			cls;

		MemoryContextSwitchTo(old);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(old);
		CurrentResourceOwner = owner;
		cls = ERRCODE_TO_CATEGORY(edata->sqlerrcode);
		if (cls != ERRCODE_DATA_EXCEPTION && cls != ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION)
			ReThrowError(edata);
		ereport(ERROR,
				(errcode(ERRCODE_SS_CONFLICT_DATA),
				 errmsg("the %s data of conflict " INT64_FORMAT " cannot be applied: %s",
						strategy == RS_MANUAL ? "resolved" : "winning", c->id, edata->message),
				 edata->detail ?
				 errdetail("%s Nothing was changed (SQLSTATE %s).", edata->detail,
						   unpack_sql_state(edata->sqlerrcode)) :
				 errdetail("Table \"%s\" refused it; nothing was changed (SQLSTATE %s).",
						   e->table_name, unpack_sql_state(edata->sqlerrcode))));
	}
	PG_END_TRY();
}

/* Closes the conflict, recording who, how, when and the row it left; returns resolved_at as JSON. */
static Jsonb *
close_conflict(PushBatch *b, StoredConflict *c, const char *strategy, Outcome *out)
{
	Oid			argtypes[7] = {INT8OID, TEXTOID, JSONBOID, TEXTOID, TEXTOID, INT8OID, TEXTOID};
	Datum		values[7];
	char		nulls[7];
	char	   *sql;
	int			rc;

	memset(nulls, ' ', sizeof(nulls));
	values[0] = Int64GetDatum(c->id);
	values[1] = CStringGetTextDatum(strategy);
	values[2] = out->row ? JsonbPGetDatum(out->row) : (Datum) 0;
	nulls[2] = out->row ? ' ' : 'n';
	values[3] = b->ctx.user_id ? CStringGetTextDatum(b->ctx.user_id) : (Datum) 0;
	nulls[3] = b->ctx.user_id ? ' ' : 'n';
	values[4] = b->ctx.client_id ? CStringGetTextDatum(b->ctx.client_id) : (Datum) 0;
	nulls[4] = b->ctx.client_id ? ' ' : 'n';
	values[5] = Int64GetDatum(out->version);
	nulls[5] = out->has_version ? ' ' : 'n';
	values[6] = CStringGetTextDatum(out->winner);
	sql = psprintf("WITH w AS (UPDATE %s.sync_conflicts SET status = 'resolved', strategy = $2, "
				   "resolved_data = $3, resolved_by = $4, resolved_client_id = $5, resolved_version = $6, "
				   "winner = $7, resolved_at = pg_catalog.now() "
				   "WHERE conflict_id = $1 RETURNING resolved_at) SELECT pg_catalog.to_jsonb(w.resolved_at) FROM w",
				   b->qschema);
	rc = push_exec(push_plan(sql, 7, argtypes), values, nulls, 0);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "closing conflict " INT64_FORMAT " failed: %s", c->id, SPI_result_code_string(rc));
	return first_jsonb();
}

/* --- checks -------------------------------------------------------------- */

/* SS604 unless the conflict and its row belong to the context's practice (when it names one). */
static void
check_practice(PushBatch *b, PushEntity *e, StoredConflict *c, Jsonb *row)
{
	const char *ctxp = b->ctx.practice_id;
	char	   *rowp;

	if (ctxp == NULL)
		return;
	if (c->practice_id != NULL &&
		strcmp(sync_canonical_id(c->practice_id, strlen(c->practice_id)), ctxp) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_SS_CONFLICT_PRACTICE),
				 errmsg("conflict " INT64_FORMAT " belongs to another practice", c->id),
				 errdetail("It was recorded for a practice other than the request context's practice \"%s\"; nothing was changed.",
						   ctxp)));
	if (e == NULL || e->practice_column == NULL || row == NULL)
		return;
	rowp = conflict_field_text(row, e->practice_column);
	if (rowp != NULL)
		rowp = sync_canonical_id(rowp, strlen(rowp));
	if (rowp == NULL || strcmp(rowp, ctxp) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_SS_CONFLICT_PRACTICE),
				 errmsg("conflict " INT64_FORMAT ": %s \"%s\" belongs to another practice",
						c->id, e->entity_type, c->entity_id),
				 errdetail("The request context's practice is \"%s\"; nothing was changed.", ctxp)));
}

/* The strategy of its name; SS605 when none. */
static ResolveStrategy
parse_strategy(const char *s)
{
	for (int i = 0; i < (int) lengthof(strategy_names); i++)
		if (strcmp(s, strategy_names[i]) == 0)
			return (ResolveStrategy) i;
	ereport(ERROR,
			(errcode(ERRCODE_SS_CONFLICT_STRATEGY),
			 errmsg("invalid strategy \"%s\"", sync_clip_str(s)),
			 errdetail("A strategy is one of server-wins, client-wins, merge, last-write-wins, manual.")));
	return RS_MANUAL;			/* not reached */
}

/*
 * SS611 when a field name of resolved_data is longer than
 * smartsync.max_field_name_length or a value larger than
 * smartsync.max_value_size: the limits push applies.
 */
static void
check_resolved_sizes(Jsonb *resolved)
{
	JsonbIterator *it = JsonbIteratorInit(&resolved->root);
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = "";
	int			keylen = 0;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			key = v.val.string.val;
			keylen = v.val.string.len;
			if (keylen > smartsync_max_field_name_length &&
				sync_char_length(key, keylen) > smartsync_max_field_name_length)
				ereport(ERROR,
						(errcode(ERRCODE_SS_CONFLICT_TOO_LARGE),
						 errmsg("resolved_data: field name \"%s\" is longer than %d characters",
								sync_clip(key, keylen), smartsync_max_field_name_length),
						 errdetail("smartsync.max_field_name_length is %d; nothing was changed.",
								   smartsync_max_field_name_length)));
		}
		else if (tok == WJB_VALUE)
		{
			Size		size = v.type == jbvString ? (Size) v.val.string.len :
				v.type == jbvBinary ? (Size) v.val.binary.len :
				v.type == jbvNumeric ? (Size) VARSIZE_ANY(v.val.numeric) : 1;

			if (size > (Size) smartsync_max_value_size)
				ereport(ERROR,
						(errcode(ERRCODE_SS_CONFLICT_TOO_LARGE),
						 errmsg("resolved_data: the value of field \"%s\" is %zu bytes, more than %d",
								sync_clip(key, keylen), size, smartsync_max_value_size),
						 errdetail("smartsync.max_value_size is %d bytes; nothing was changed.",
								   smartsync_max_value_size)));
		}
	}
}

/* --- entry point --------------------------------------------------------- */

/*
 * smartsync.resolve_conflict(conflict_id bigint, strategy text,
 * resolved_data jsonb DEFAULT NULL) RETURNS jsonb
 */
Datum
smartsync_resolve_conflict(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = CurrentMemoryContext;
	PushBatch	b;
	StoredConflict c;
	PushEntity *e;
	ResolveStrategy strategy;
	const char *strategy_name;
	Jsonb	   *resolved = NULL;
	Jsonb	   *current;
	Jsonb	   *image = NULL;	/* the last image of a deleted row */
	int64		tombstone_version = -1;
	bool		server_gone;
	bool		stale = false;
	char	   *stale_detail = NULL;
	TimestampTz server_ts = 0;
	bool		has_server_ts = false;
	int64		conflict_id;
	Outcome		out;
	Jsonb	   *resolved_at;
	JsonbParseState *ps = NULL;
	JsonbValue *res;
	Jsonb	   *result;
	Datum		routed;

	if (sync_citus_route(fcinfo, &routed))	/* Citus: resolve on the tenant's node */
		return routed;
	/* arguments */
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_SS_CONFLICT_STRATEGY),
				 errmsg("invalid strategy: null"),
				 errdetail("A strategy is one of server-wins, client-wins, merge, last-write-wins, manual.")));
	strategy_name = text_to_cstring(PG_GETARG_TEXT_PP(1));
	strategy = parse_strategy(strategy_name);
	strategy_name = strategy_names[strategy];
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_SS_CONFLICT_NOT_FOUND),
				 errmsg("conflict id must not be null")));
	conflict_id = PG_GETARG_INT64(0);
	if (!PG_ARGISNULL(2))
	{
		if (toast_raw_datum_size(PG_GETARG_DATUM(2)) > (Size) smartsync_max_payload_size)
			ereport(ERROR,
					(errcode(ERRCODE_SS_CONFLICT_TOO_LARGE),
					 errmsg("resolved_data is %zu bytes, more than %d",
							toast_raw_datum_size(PG_GETARG_DATUM(2)), smartsync_max_payload_size),
					 errdetail("smartsync.max_payload_size is %d bytes; nothing was changed.",
							   smartsync_max_payload_size)));
		resolved = PG_GETARG_JSONB_P(2);
		if (JB_ROOT_IS_OBJECT(resolved) && !JB_ROOT_IS_SCALAR(resolved))
			check_resolved_sizes(resolved);
	}
	if (strategy == RS_MANUAL)
	{
		if (resolved == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_SS_CONFLICT_DATA),
					 errmsg("strategy manual needs resolved_data"),
					 errdetail("Manual resolution writes the data the user chose; none was given, so nothing was changed."),
					 errhint("Pass the row's fields as a JSON object, e.g. resolved_data => '{\"notes\": \"...\"}'.")));
		if (!JB_ROOT_IS_OBJECT(resolved) || JB_ROOT_IS_SCALAR(resolved))
			ereport(ERROR,
					(errcode(ERRCODE_SS_CONFLICT_DATA),
					 errmsg("resolved_data must be a JSON object"),
					 errdetail("It holds the row's fields by name; nothing was changed.")));
	}
	else if (resolved != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_SS_CONFLICT_DATA),
				 errmsg("resolved_data is only for strategy manual"),
				 errdetail("Strategy %s decides the data itself; nothing was changed.", strategy_name),
				 errhint("Pass resolved_data => NULL, or resolve with manual.")));

	/* context, then the conflict row (locked), then the entity row (locked) */
	conflict_context(&b, cxt);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	MemoryContextSwitchTo(cxt);

	if (!lock_conflict_checked(&b, conflict_id, &c))
		ereport(ERROR,
				(errcode(ERRCODE_SS_CONFLICT_NOT_FOUND),
				 errmsg("conflict " INT64_FORMAT " not found", conflict_id),
				 errdetail("Tenant \"%s\" has no conflict with that id.", b.ctx.tenant_id),
				 errhint("smartsync.list_conflicts() lists the open conflicts.")));
	check_practice(&b, NULL, &c, NULL);
	if (strcmp(c.status, "open") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_SS_CONFLICT_RESOLVED),
				 errmsg("conflict " INT64_FORMAT " is already resolved", conflict_id),
				 errdetail("It was resolved with %s by %s at %s; nothing was changed.",
						   c.strategy ? c.strategy : "an unknown strategy",
						   c.resolved_by ? psprintf("user \"%s\"", c.resolved_by) : "an unknown user",
						   c.resolved_at ? c.resolved_at : "an unknown time")));

	e = conflict_entity(&b, c.entity_type, false);
	current = lock_row(e, c.entity_id);
	check_practice(&b, e, &c, current ? current : c.server);

	/*
	 * Staleness.  The server row was gone when the conflict was recorded when
	 * push found no row (server_data null) or an update met a tombstone.
	 */
	server_gone = (c.server == NULL) ||
		(strcmp(c.operation, "update") == 0 && strcmp(c.conflict_type, "deletion") == 0);
	if (!server_gone)
	{
		int64		now_version = 0;
		bool		has_now = row_version(current, &now_version);

		if (current == NULL)
		{
			stale = true;
			stale_detail = psprintf("The conflict was recorded against version %s; the server row has been deleted since.",
									c.has_server_version ? psprintf(INT64_FORMAT, c.server_version) : "(unknown)");
		}
		else if (c.has_server_version ? (!has_now || now_version != c.server_version)
				 : !DatumGetBool(DirectFunctionCall2(jsonb_eq, JsonbPGetDatum(current),
													 JsonbPGetDatum(c.server))))
		{
			stale = true;
			stale_detail = c.has_server_version ?
				psprintf("The conflict was recorded against version " INT64_FORMAT "; the server row is at version " INT64_FORMAT " now.",
						 c.server_version, now_version) :
				pstrdup("The server row differs from the one the conflict was recorded against.");
		}
		if (current != NULL)
			has_server_ts = row_timestamp(current, "updated_at", &server_ts);
	}
	else
	{
		char	   *op = NULL;
		Jsonb	   *data = NULL;
		int64		version = -1;
		TimestampTz changed_at = 0;
		bool		logged = last_change(&b, e, c.entity_id, &op, &data, &version, &changed_at);

		if (current != NULL)
		{
			stale = true;
			stale_detail = pstrdup("The server row was deleted when the conflict was recorded and has been created again since.");
		}
		else if (logged && strcmp(op, "delete") == 0)
		{
			int64		image_version;

			if (c.server != NULL && c.has_server_version &&
				row_version(data, &image_version) && image_version != c.server_version)
			{
				stale = true;
				stale_detail = pstrdup("The server row was re-created and deleted again after the conflict was recorded.");
			}
			image = data;
			tombstone_version = version;
			server_ts = changed_at;
			has_server_ts = true;
		}
		else if (logged)
		{
			/* the log says the row exists, yet it is not there: another practice's or hidden */
			stale = true;
			stale_detail = pstrdup("The server row is not where the conflict was recorded.");
		}
		if (image == NULL)
			image = c.server;
		if (!has_server_ts && c.server != NULL)
			has_server_ts = row_timestamp(c.server, "updated_at", &server_ts);
	}
	if (stale && strategy != RS_SERVER_WINS)
		ereport(ERROR,
				(errcode(ERRCODE_SS_CONFLICT_STALE),
				 errmsg("%s \"%s\" changed after conflict " INT64_FORMAT " was recorded",
						e->entity_type, c.entity_id, conflict_id),
				 errdetail("%s Strategy %s was not applied over the newer data; nothing was changed.",
						   stale_detail, strategy_name),
				 errhint("Resolve with server-wins to close it, or pull the row and push the change again to have it checked against the current row.")));

	/* resolve, write, close */
	memset(&out, 0, sizeof(out));
	apply_strategy(&b, e, &c, strategy, current, image, tombstone_version,
				   server_ts, has_server_ts, resolved, &out);
	resolved_at = close_conflict(&b, &c, strategy_name, &out);

	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	push_key(&ps, "conflictId");
	push_int64(&ps, conflict_id);
	push_key(&ps, "status");
	push_str(&ps, WJB_VALUE, "resolved");
	push_key(&ps, "strategy");
	push_str(&ps, WJB_VALUE, strategy_name);
	push_key(&ps, "winner");
	push_str(&ps, WJB_VALUE, out.winner);
	push_key(&ps, "entityType");
	push_str(&ps, WJB_VALUE, e->entity_type);
	push_key(&ps, "entityId");
	conflict_push_entity_id(&ps, e, out.row, c.entity_id);
	push_key(&ps, "data");
	push_jsonb(&ps, WJB_VALUE, out.row);
	push_key(&ps, "version");
	if (out.has_version)
		push_int64(&ps, out.version);
	else
		push_null(&ps);
	if (out.row == NULL)
	{
		push_key(&ps, "deleted");
		push_bool(&ps, true);
	}
	push_key(&ps, "written");
	push_bool(&ps, out.written);
	push_key(&ps, "stale");
	push_bool(&ps, stale);
	push_key(&ps, "resolvedBy");
	if (b.ctx.user_id)
		push_str(&ps, WJB_VALUE, b.ctx.user_id);
	else
		push_null(&ps);
	push_key(&ps, "resolvedAt");
	push_jsonb(&ps, WJB_VALUE, resolved_at);
	res = pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
	result = JsonbValueToJsonb(res);

	SPI_finish();
	MemoryContextSwitchTo(cxt);
	PG_RETURN_JSONB_P(result);
}
