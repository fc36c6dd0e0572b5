/*
 * pushapply.c: one operation of a push, applied to its tracked table.
 *
 * Checks first (context, permissions, ids, data fields), then:
 *   create  INSERT ... SELECT FROM jsonb_populate_record(...) RETURNING the
 *           row; a temporary entity id goes to the id map.
 *   update  the fast path is one compare-and-swap UPDATE (the row still has
 *           the version the client saw, or was not changed after the
 *           client's timestamp: exactly the case where detect_conflict finds
 *           no conflict); otherwise the row is locked, detect_conflict runs
 *           against it (or its tombstone) and the conflict is resolved by
 *           severity and the entity type's strategy, or stored.
 *   delete  the same, with DELETE.
 * Writes go through the tracked table, so the capture trigger logs them.
 * Client data never enters SQL text: values travel as one jsonb parameter,
 * identifiers are quoted, plans are saved per SQL text (pushledger.c).
 */
#include "postgres.h"

#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "smartsync.h"
#include "kernel.h"
#include "jsonbwrite.h"
#include "push.h"

/* Longest string a push offers the input function of a fixed-size type (bytes). */
#define PUSH_FIXED_VALUE_MAX	1024

/* The client's data rewritten to column names. */
typedef struct PushData
{
	Jsonb	   *jb;				/* column -> value */
	int			ncols;
	int		   *cols;			/* column indexes in table order */
} PushData;

/* --- entity types ------------------------------------------------------- */

/* The registered entity type of this name, or NULL. */
PushEntity *
push_find_entity(PushBatch *b, const char *entity_type, int len)
{
	for (int i = 0; i < b->nentities; i++)
	{
		PushEntity *e = &b->entities[i];

		if ((int) strlen(e->entity_type) == len && memcmp(e->entity_type, entity_type, len) == 0)
			return e;
	}
	return NULL;
}

/* True when a string id is temporary: it starts with smartsync.temp_id_prefix. */
bool
push_is_temp(PushBatch *b, const char *s, int len)
{
	return b->temp_prefix_len > 0 && len > b->temp_prefix_len &&
		memcmp(s, b->temp_prefix, b->temp_prefix_len) == 0;
}

/*
 * The camelCase spelling of a snake_case column name (pet_id: petId,
 * amount_cents: amountCents); NULL when the name is not snake_case (lower-case
 * letters and digits, words joined by single underscores).
 */
static char *
camel_spelling(const char *name)
{
	int			len = strlen(name);
	char	   *out;
	int			n = 0;
	bool		upper = false;
	bool		any = false;

	if (len == 0 || !(name[0] >= 'a' && name[0] <= 'z') || name[len - 1] == '_')
		return NULL;
	for (int i = 0; i < len; i++)
	{
		char		c = name[i];

		if (c == '_' && name[i + 1] == '_')
			return NULL;
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return NULL;
	}
	out = palloc(len + 1);
	for (int i = 0; i < len; i++)
	{
		char		c = name[i];

		if (c == '_')
		{
			upper = true;
			any = true;
			continue;
		}
		out[n++] = (upper && c >= 'a' && c <= 'z') ? c - 'a' + 'A' : c;
		upper = false;
	}
	out[n] = '\0';
	if (!any)
	{
		pfree(out);
		return NULL;
	}
	return out;
}

/* Reads the entity type's table in the tenant schema: columns, key, practice column. */
void
push_resolve_entity(PushBatch *b, PushEntity *e)
{
	MemoryContext old;
	Oid			nsp;
	Relation	rel;
	TupleDesc	desc;
	int			n = 0;

	if (e->resolved)
		return;
	nsp = get_namespace_oid(b->schema, false);
	e->relid = get_relname_relid(e->table_name, nsp);
	if (!OidIsValid(e->relid))
		ereport(ERROR,
				(errcode(ERRCODE_SS_MISSING_TABLE),
				 errmsg("tenant schema \"%s\" has no table \"%s\"", b->schema, e->table_name),
				 errdetail("Entity type \"%s\" is stored in that table.", e->entity_type),
				 errhint("smartsync.provision_tenant() creates the tables of every registered type.")));

	old = MemoryContextSwitchTo(b->cxt);
	rel = table_open(e->relid, AccessShareLock);
	desc = RelationGetDescr(rel);
	e->cols = palloc0(sizeof(PushColumn) * Max(desc->natts, 1));
	e->pk_index = e->practice_index = e->version_index = e->updated_at_index = -1;
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		const char *name = NameStr(att->attname);

		if (att->attisdropped)
			continue;
		e->cols[n].name = pstrdup(name);
		e->cols[n].camel = camel_spelling(name);
		e->cols[n].typid = att->atttypid;
		e->cols[n].writable = (att->attgenerated == '\0');
		e->cols[n].fixed = (att->attlen > 0);
		if (strcmp(name, e->pk_column) == 0)
			e->pk_index = n;
		if (e->practice_column && strcmp(name, e->practice_column) == 0)
			e->practice_index = n;
		if (strcmp(name, "version") == 0)
			e->version_index = n;
		if (strcmp(name, "updated_at") == 0)
			e->updated_at_index = n;
		n++;
	}
	e->ncols = n;
	table_close(rel, NoLock);
	if (e->pk_index < 0)
		ereport(ERROR,
				(errcode(ERRCODE_SS_NO_SINGLE_PK),
				 errmsg("table \"%s.%s\" has no column \"%s\"", b->schema, e->table_name, e->pk_column),
				 errdetail("Entity type \"%s\" is registered with that key.", e->entity_type)));
	e->qualified = psprintf("%s.%s", b->qschema, quote_identifier(e->table_name));
	e->pk_type = format_type_be_qualified(e->cols[e->pk_index].typid);
	switch (e->cols[e->pk_index].typid)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case NUMERICOID:
		case OIDOID:
			e->pk_numeric = true;
			break;
		default:
			e->pk_numeric = false;
	}
	e->resolved = true;
	MemoryContextSwitchTo(old);
}

/*
 * The column a data key names: the column of exactly that name, else the
 * column whose camelCase spelling it is exactly (petId: pet_id); -1 if none.
 * Matching is exact: "NAME", "petID" or "Pet_Id" name no column.
 */
int
push_find_column(PushEntity *e, const char *key, int len)
{
	for (int i = 0; i < e->ncols; i++)
		if ((int) strlen(e->cols[i].name) == len && memcmp(e->cols[i].name, key, len) == 0)
			return i;
	for (int i = 0; i < e->ncols; i++)
		if (e->cols[i].camel != NULL && (int) strlen(e->cols[i].camel) == len &&
			memcmp(e->cols[i].camel, key, len) == 0)
			return i;
	return -1;
}

/* A real id as JSON: a number when the referenced key is numeric, else a string. */
static void
typed_id(PushEntity *e, const char *id, JsonbValue *out)
{
	if (e != NULL && e->pk_numeric)
	{
		out->type = jbvNumeric;
		out->val.numeric = DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(id),
															   ObjectIdGetDatum(InvalidOid),
															   Int32GetDatum(-1)));
	}
	else
	{
		out->type = jbvString;
		out->val.string.val = pstrdup(id);
		out->val.string.len = strlen(id);
	}
}

/*
 * A practice id (canonical text) as the JSON value of the entity's practice
 * column: a number for a numeric column, else a string, so that it compares
 * equal to the column's own value in to_jsonb() of a row.
 */
static void
practice_json(PushEntity *e, const char *practice, JsonbValue *out)
{
	Oid			typid = e->cols[e->practice_index].typid;
	bool		numeric = (typid == INT2OID || typid == INT4OID || typid == INT8OID ||
						   typid == NUMERICOID);

	if (numeric && sync_is_number_text(practice, strlen(practice)))
	{
		out->type = jbvNumeric;
		out->val.numeric = DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(practice),
															   ObjectIdGetDatum(InvalidOid),
															   Int32GetDatum(-1)));
		return;
	}
	out->type = jbvString;
	out->val.string.val = (char *) practice;
	out->val.string.len = strlen(practice);
}

/* The real id of a temporary id of entity type want; SS423/SS424 when unknown or of another type. */
static PushTemp *
map_temp(PushBatch *b, PushOp *op, const char *temp_id, const char *want, const char *where)
{
	PushTemp   *t = push_idmap_lookup(b, temp_id);

	if (t == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_SS_PUSH_UNKNOWN_TEMP_ID),
				 errmsg("unknown temporary id \"%s\" in %s", sync_clip_str(temp_id), where),
				 errdetail("No create of client \"%s\" made an entity with that id, in this push or an earlier one.",
						   sync_clip_str(b->client_id)),
				 errhint("Push the create of the entity first, or in the same batch.")));
	if (strcmp(t->entity_type, want) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_SS_PUSH_TEMP_ID_TYPE),
				 errmsg("temporary id \"%s\" in %s is a %s, not a %s", sync_clip_str(temp_id), where,
						t->entity_type, want),
				 errdetail("It was created as entity type \"%s\" with real id \"%s\".",
						   t->entity_type, t->real_id)));
	return t;
}

/*
 * Rewrites op's data to column names: maps camelCase keys, drops the key and
 * the metadata columns (the server keeps them), maps temporary ids in
 * reference fields, checks and fills the practice column.  explicit_id, when
 * not NULL, is written to the key column (a create with a client-made id).
 */
static void
rewrite_data(PushBatch *b, PushOp *op, PushEntity *e, JsonbValue *explicit_id, PushData *d)
{
	JsonbValue **vals = palloc0(sizeof(JsonbValue *) * e->ncols);
	JsonbParseState *ps = NULL;
	JsonbValue *res;
	JsonbValue	practice_value;

	if (op->data != NULL)
	{
		JsonbIterator *it = JsonbIteratorInit(op->data);
		JsonbValue	k;
		JsonbValue	v;
		JsonbIteratorToken tok;

		while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
		{
			int			col;
			JsonbValue *val;
			char	   *key;

			if (tok != WJB_KEY)
				continue;
			tok = JsonbIteratorNext(&it, &v, true);
			Assert(tok == WJB_VALUE);
			key = sync_clip(k.val.string.val, k.val.string.len);
			col = push_find_column(e, k.val.string.val, k.val.string.len);
			if (col < 0)
			{
				/* metadata the client may echo back */
				if (sync_is_metadata_field(k.val.string.val, k.val.string.len))
					continue;
				ereport(ERROR,
						(errcode(ERRCODE_SS_PUSH_UNKNOWN_FIELD),
						 errmsg("unknown field \"%s\" in the data of entity type \"%s\"", key, e->entity_type),
						 errdetail("Table \"%s\" has no column of exactly that name or whose camelCase spelling it is.",
								   e->table_name)));
			}
			if (col == e->pk_index || col == e->version_index || col == e->updated_at_index)
				continue;
			if (!e->cols[col].writable)
				ereport(ERROR,
						(errcode(ERRCODE_SS_PUSH_UNKNOWN_FIELD),
						 errmsg("field \"%s\" of entity type \"%s\" cannot be written", key, e->entity_type),
						 errdetail("Column \"%s\" is generated.", e->cols[col].name)));
			if (vals[col] != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_SS_PUSH_UNKNOWN_FIELD),
						 errmsg("field \"%s\" of entity type \"%s\" is given twice", e->cols[col].name,
								e->entity_type),
						 errdetail("Both \"%s\" and another spelling of it are in the data.", key)));
			val = palloc(sizeof(JsonbValue));
			*val = v;

			/* a reference field holding a temporary id: the real id */
			if (v.type == jbvString &&
				push_is_temp(b, v.val.string.val, v.val.string.len))
			{
				JsonbValue *target = getKeyJsonValueFromContainer(&e->reference_fields->root,
																  e->cols[col].name,
																  strlen(e->cols[col].name), NULL);

				if (target != NULL && target->type == jbvString)
				{
					char	   *want = pnstrdup(target->val.string.val, target->val.string.len);
					char	   *where = psprintf("field \"%s\"", key);
					PushTemp   *t = map_temp(b, op, pnstrdup(v.val.string.val, v.val.string.len),
											 want, where);
					PushEntity *te = push_find_entity(b, want, strlen(want));

					if (te != NULL)
						push_resolve_entity(b, te);
					typed_id(te, t->real_id, val);
				}
			}

			/* the practice column: only the context's practice (1, "1", 1.0 alike) */
			if (col == e->practice_index && b->ctx.practice_id != NULL)
			{
				char	   *s = sync_canonical_id_value(val);

				if (s == NULL || strcmp(s, b->ctx.practice_id) != 0)
					ereport(ERROR,
							(errcode(ERRCODE_SS_PUSH_PRACTICE),
							 errmsg("field \"%s\" names practice %s, not the request context's practice \"%s\"",
									key, s ? sync_clip_str(s) : "null", b->ctx.practice_id),
							 errdetail("An operation writes only rows of its own practice; nothing was applied.")));
				/* written as the context's practice, however the client spelled it */
				practice_json(e, b->ctx.practice_id, val);
			}
			/*
			 * A long string can be no value of a fixed-size type: refuse it here,
			 * with a short message, rather than have the type's input function
			 * copy and quote it whole.
			 */
			if (val->type == jbvString && val->val.string.len > PUSH_FIXED_VALUE_MAX && e->cols[col].fixed)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
						 errmsg("invalid input syntax for type %s: \"%s\"",
								format_type_be(e->cols[col].typid), sync_clip(val->val.string.val, val->val.string.len)),
						 errdetail("Field \"%s\" holds %d bytes, more than a value of that type can take.",
								   key, val->val.string.len)));
			vals[col] = val;
		}
	}

	/* a create in a practice: the practice column defaults to the context's */
	if (op->kind == PUSH_CREATE && e->practice_index >= 0 && b->ctx.practice_id != NULL &&
		vals[e->practice_index] == NULL)
	{
		practice_json(e, b->ctx.practice_id, &practice_value);
		vals[e->practice_index] = &practice_value;
	}
	if (explicit_id != NULL)
		vals[e->pk_index] = explicit_id;

	d->cols = palloc(sizeof(int) * Max(e->ncols, 1));
	d->ncols = 0;
	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	for (int i = 0; i < e->ncols; i++)
	{
		if (vals[i] == NULL)
			continue;
		d->cols[d->ncols++] = i;
		push_key(&ps, e->cols[i].name);
		pushJsonbValue(&ps, WJB_VALUE, vals[i]);
	}
	res = pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
	d->jb = JsonbValueToJsonb(res);
}

/* --- checks ------------------------------------------------------------- */

/* Raises SS426 when a server row belongs to another practice than the context's. */
static void
check_row_practice(PushBatch *b, PushEntity *e, Jsonb *row, const char *id)
{
	JsonbValue *v;
	char	   *s;

	if (e->practice_index < 0 || b->ctx.practice_id == NULL || row == NULL)
		return;
	v = getKeyJsonValueFromContainer(&row->root, e->practice_column,
									 strlen(e->practice_column), NULL);
	s = v ? sync_canonical_id_value(v) : NULL;
	if (s == NULL || strcmp(s, b->ctx.practice_id) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_SS_PUSH_PRACTICE),
				 errmsg("%s \"%s\" belongs to another practice", e->entity_type, sync_clip_str(id)),
				 errdetail("The request context's practice is \"%s\"; nothing was applied.",
						   b->ctx.practice_id)));
}

/* --- SQL on the entity table -------------------------------------------- */

/* Copies the first column of the first result row as jsonb into CurrentMemoryContext; NULL if none. */
static Jsonb *
first_jsonb(void)
{
	Jsonb	   *result = NULL;

	if (SPI_processed > 0)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			result = DatumGetJsonbPCopy(d);
	}
	SPI_freetuptable(SPI_tuptable);
	return result;
}

/*
 * The INSERT or UPDATE q (of table alias t) returning the whole row as jsonb
 * when the caller reports it (resolutions), else only the key and the version
 * (all a result needs).  The jsonb is built over the statement's RETURNING
 * rows, not in its RETURNING clause: Citus refuses functions that are not
 * immutable there (README "Scaling out").
 */
static char *
returning(PushEntity *e, StringInfo q, bool full)
{
	if (full)
		return psprintf("WITH w AS (%s RETURNING t.*) SELECT pg_catalog.to_jsonb(w.*) FROM w", q->data);
	return psprintf("WITH w AS (%s RETURNING t.%s AS k, t.version AS v) "
					"SELECT pg_catalog.jsonb_build_object(%s, w.k, 'version', w.v) FROM w",
					q->data, quote_identifier(e->pk_column), quote_literal_cstr(e->pk_column));
}

/* Appends "c1, c2" or "r.c1, r.c2" for the data's columns. */
static void
append_columns(StringInfo q, PushEntity *e, PushData *d, const char *prefix)
{
	for (int i = 0; i < d->ncols; i++)
		appendStringInfo(q, "%s%s%s", i ? ", " : "", prefix,
						 quote_identifier(e->cols[d->cols[i]].name));
}

/*
 * INSERT of the data; returns the new row (its key and version).  With
 * if_absent (a create that names its own key), ON CONFLICT on the key does
 * nothing and NULL is returned: the row exists.
 */
static Jsonb *
sql_insert(PushEntity *e, PushData *d, bool if_absent)
{
	StringInfoData q;
	Oid			argtypes[1] = {JSONBOID};
	Datum		values[1];
	int			rc;

	initStringInfo(&q);
	if (d->ncols == 0)
		appendStringInfo(&q, "INSERT INTO %s AS t DEFAULT VALUES", e->qualified);
	else
	{
		appendStringInfo(&q, "INSERT INTO %s AS t (", e->qualified);
		append_columns(&q, e, d, "");
		appendStringInfoString(&q, ") SELECT ");
		append_columns(&q, e, d, "r.");
		appendStringInfo(&q, " FROM pg_catalog.jsonb_populate_record(NULL::%s, $1) AS r", e->qualified);
	}
	if (if_absent)
		appendStringInfo(&q, " ON CONFLICT (%s) DO NOTHING", quote_identifier(e->pk_column));
	values[0] = JsonbPGetDatum(d->jb);
	rc = push_exec(push_plan(returning(e, &q, false), 1, argtypes), values, NULL, 0);
	if (rc != SPI_OK_SELECT || SPI_processed > 1 || (!if_absent && SPI_processed != 1))
		elog(ERROR, "insert into %s failed: %s", e->qualified, SPI_result_code_string(rc));
	return first_jsonb();
}

/*
 * UPDATE of the data's columns of row id when it still has version (when
 * has_version) or was last changed at or before ts (else); practice, when
 * not NULL, must be the row's.  Returns the new row, or NULL when no row
 * matched: the whole row when full, else its key and version.
 */
static Jsonb *
sql_update(PushEntity *e, PushData *d, const char *id, bool has_version, int64 version,
		   TimestampTz ts, const char *practice, bool full)
{
	StringInfoData q;
	Oid			argtypes[5] = {JSONBOID, TEXTOID, INT8OID, TIMESTAMPTZOID, TEXTOID};
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	int			rc;

	initStringInfo(&q);
	appendStringInfo(&q, "UPDATE %s AS t SET ", e->qualified);
	for (int i = 0; i < d->ncols; i++)
	{
		const char *c = quote_identifier(e->cols[d->cols[i]].name);

		appendStringInfo(&q, "%s%s = r.%s", i ? ", " : "", c, c);
	}
	appendStringInfo(&q, " FROM pg_catalog.jsonb_populate_record(NULL::%s, $1) AS r "
					 "WHERE t.%s = $2::%s "
					 "AND ($3 IS NULL OR t.version = $3) AND ($3 IS NOT NULL OR t.updated_at <= $4)",
					 e->qualified, quote_identifier(e->pk_column), e->pk_type);
	if (e->practice_index >= 0)
		appendStringInfo(&q, " AND ($5 IS NULL OR t.%s::pg_catalog.text = $5)",
						 quote_identifier(e->practice_column));
	values[0] = JsonbPGetDatum(d->jb);
	values[1] = CStringGetTextDatum(id);
	values[2] = Int64GetDatum(version);
	nulls[2] = has_version ? ' ' : 'n';
	values[3] = TimestampTzGetDatum(ts);
	values[4] = practice ? CStringGetTextDatum(practice) : (Datum) 0;
	nulls[4] = practice ? ' ' : 'n';
	rc = push_exec(push_plan(returning(e, &q, full), 5, argtypes), values, nulls, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "update of %s failed: %s", e->qualified, SPI_result_code_string(rc));
	return first_jsonb();
}

/* DELETE of row id under the same conditions as sql_update; the tombstone's version, or -1. */
static int64
sql_delete(PushEntity *e, const char *id, bool has_version, int64 version,
		   TimestampTz ts, const char *practice)
{
	StringInfoData q;
	Oid			argtypes[4] = {TEXTOID, INT8OID, TIMESTAMPTZOID, TEXTOID};
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	int64		result = -1;
	int			rc;

	initStringInfo(&q);
	appendStringInfo(&q, "DELETE FROM %s AS t WHERE t.%s = $1::%s "
					 "AND ($2 IS NULL OR t.version = $2) AND ($2 IS NOT NULL OR t.updated_at <= $3)",
					 e->qualified, quote_identifier(e->pk_column), e->pk_type);
	if (e->practice_index >= 0)
		appendStringInfo(&q, " AND ($4 IS NULL OR t.%s::pg_catalog.text = $4)",
						 quote_identifier(e->practice_column));
	appendStringInfoString(&q, " RETURNING t.version + 1");

	values[0] = CStringGetTextDatum(id);
	values[1] = Int64GetDatum(version);
	nulls[1] = has_version ? ' ' : 'n';
	values[2] = TimestampTzGetDatum(ts);
	values[3] = practice ? CStringGetTextDatum(practice) : (Datum) 0;
	nulls[3] = practice ? ' ' : 'n';
	rc = push_exec(push_plan(q.data, 4, argtypes), values, nulls, 0);
	if (rc != SPI_OK_DELETE_RETURNING)
		elog(ERROR, "delete from %s failed: %s", e->qualified, SPI_result_code_string(rc));
	if (SPI_processed > 0)
	{
		bool		isnull;

		result = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}
	SPI_freetuptable(SPI_tuptable);
	return result;
}

/* Locks row id (FOR UPDATE for a delete, else FOR NO KEY UPDATE) and returns it, or NULL. */
static Jsonb *
sql_lock(PushEntity *e, const char *id, bool for_delete)
{
	char	   *sql;
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	int			rc;

	sql = psprintf("SELECT pg_catalog.to_jsonb(t.*) FROM %s AS t WHERE t.%s = $1::%s FOR %s",
				   e->qualified, quote_identifier(e->pk_column), e->pk_type,
				   for_delete ? "UPDATE" : "NO KEY UPDATE");
	values[0] = CStringGetTextDatum(id);
	rc = push_exec(push_plan(sql, 1, argtypes), values, NULL, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "lock of %s failed: %s", e->qualified, SPI_result_code_string(rc));
	return first_jsonb();
}

/* The tombstone of a deleted row (its last image), or NULL when the last change was no delete. */
static Jsonb *
sql_tombstone(PushBatch *b, PushEntity *e, const char *id)
{
	char	   *sql;
	Oid			argtypes[3] = {TEXTOID, TEXTOID, INT8OID};
	Datum		values[3];
	int			rc;

	sql = psprintf("SELECT CASE WHEN c.operation = 'delete' THEN c.data END FROM %s.sync_changes AS c "
				   "WHERE c.entity_key = $3 AND c.entity_type = $1 AND c.entity_id = $2 "
				   "ORDER BY c.entity_key DESC, c.seq DESC LIMIT 1",
				   b->qschema);
	values[0] = CStringGetTextDatum(e->entity_type);
	values[1] = CStringGetTextDatum(id);
	values[2] = Int64GetDatum(sync_entity_key(e->entity_type, strlen(e->entity_type), id, strlen(id)));
	rc = sync_log_exec_entity(push_plan_ex(sql, 3, argtypes, true), values);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "change log read failed: %s", SPI_result_code_string(rc));
	return first_jsonb();
}

/* The row as it was at version (the client's base), from the change log; NULL when gone. */
static Jsonb *
sql_base(PushBatch *b, PushEntity *e, const char *id, int64 version)
{
	return sync_log_row_at(b->qschema, e->entity_type, id, version);
}

/* --- results ------------------------------------------------------------ */

static const char *
kind_name(PushKind k)
{
	return k == PUSH_CREATE ? "create" : k == PUSH_UPDATE ? "update" : "delete";
}

/* Pushes the fields every result starts with. */
static void
result_begin(JsonbParseState **ps, PushOp *op, bool success)
{
	JsonbValue	idbuf;

	pushJsonbValue(ps, WJB_BEGIN_OBJECT, NULL);
	push_key(ps, "operationId");
	pushJsonbValue(ps, WJB_VALUE, push_op_field(op, "id", &idbuf));
	push_key(ps, "success");
	push_bool(ps, success);
	push_key(ps, "operation");
	push_str(ps, WJB_VALUE, kind_name(op->kind));
	push_key(ps, "entityType");
	push_str(ps, WJB_VALUE, op->entity->entity_type);
}

/* Pushes "entityId": the row's key when known, else the (mapped) id. */
static void
result_entity_id(JsonbParseState **ps, PushOp *op, Jsonb *row, const char *id)
{
	PushEntity *e = op->entity;
	JsonbValue *v = NULL;
	JsonbValue	tmp;

	if (row != NULL)
		v = getKeyJsonValueFromContainer(&row->root, e->pk_column, strlen(e->pk_column), NULL);
	if (v == NULL && id != NULL)
	{
		typed_id(e, id, &tmp);
		v = &tmp;
	}
	if (v == NULL)
		return;
	push_key(ps, "entityId");
	pushJsonbValue(ps, WJB_VALUE, v);
}

/* Pushes the row's key as a value (realId). */
static void
result_entity_id_value(JsonbParseState **ps, PushOp *op, Jsonb *row, const char *id)
{
	PushEntity *e = op->entity;
	JsonbValue *v = NULL;
	JsonbValue	tmp;

	if (row != NULL)
		v = getKeyJsonValueFromContainer(&row->root, e->pk_column, strlen(e->pk_column), NULL);
	if (v == NULL)
	{
		typed_id(e, id, &tmp);
		v = &tmp;
	}
	pushJsonbValue(ps, WJB_VALUE, v);
}

/* Reads a row's version; false when absent. */
static bool
row_version(Jsonb *row, int64 *version)
{
	JsonbValue *v;
	char	   *s;

	if (row == NULL)
		return false;
	v = getKeyJsonValueFromContainer(&row->root, "version", 7, NULL);
	if (v == NULL || v->type != jbvNumeric)
		return false;
	s = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
	*version = strtoll(s, NULL, 10);
	return true;
}

/* Finishes a result: copies it to the batch's context and records the outcome. */
static void
result_end(PushBatch *b, PushOp *op, JsonbParseState **ps, PushOutcome outcome)
{
	JsonbValue *res = pushJsonbValue(ps, WJB_END_OBJECT, NULL);

	op->result = push_copy_jsonb(b->rescxt, JsonbValueToJsonb(res));
	op->lazy_result = false;
	op->outcome = outcome;
}

/* An entity id kept for the rest of the push: the operation's own when the same. */
static char *
keep_id(PushBatch *b, PushOp *op, const char *id)
{
	if (op->entity_id != NULL && strcmp(op->entity_id, id) == 0)
		return op->entity_id;
	return push_strdup(b, id);
}

/* Records the key and the version of the row an operation left. */
static void
note_row(PushBatch *b, PushOp *op, Jsonb *row, const char *id)
{
	PushEntity *e = op->entity;
	JsonbValue *v = NULL;

	if (row != NULL)
		v = getKeyJsonValueFromContainer(&row->root, e->pk_column, strlen(e->pk_column), NULL);
	if (v != NULL && v->type != jbvBinary && v->type != jbvNull)
		op->real_id = keep_id(b, op, sync_jsonb_scalar_text(v));
	else if (id != NULL)
		op->real_id = keep_id(b, op, id);
	op->has_new_version = row_version(row, &op->new_version);
}

/*
 * True when the result of an applied operation (without "data") can be
 * written later from the operation's fields alone (push_write_applied), so
 * that a large push keeps no result object per operation: its entityId (and
 * a create's realId) is the key noted in real_id, typed as the key column's
 * JSON, and equal to what the row says.
 */
static bool
lazy_eligible(PushOp *op, Jsonb *row)
{
	PushEntity *e = op->entity;

	if (op->real_id == NULL)
		return row == NULL && op->kind != PUSH_CREATE;
	if (e->pk_numeric && !sync_is_number_text(op->real_id, strlen(op->real_id)))
		return false;
	if (row != NULL)
	{
		JsonbValue *v = getKeyJsonValueFromContainer(&row->root, e->pk_column, strlen(e->pk_column), NULL);

		return v != NULL && (e->pk_numeric ? v->type == jbvNumeric : v->type == jbvString);
	}
	return op->kind != PUSH_CREATE;
}

/* Writes a typed real id (typed_id) with the jbw_ writers. */
static uint32
jbw_typed_id(StringInfo buf, PushEntity *e, const char *id)
{
	JsonbValue	v;

	typed_id(e, id, &v);
	return jbw_scalar(buf, &v);
}

/*
 * Writes the result of an applied operation whose result was not kept
 * (lazy_result) as a container into buf, the same object applied() would
 * have built; returns its meta for jbw_entry.  Allocates a few small values
 * in the current memory context.
 */
uint32
push_write_applied(StringInfo buf, PushOp *op)
{
	PushEntity *e = op->entity;
	bool		create = (op->kind == PUSH_CREATE);
	int			n = 4 + (create ? 1 + (op->temp_entity ? 1 : 0) : 0) +
		(op->has_new_version ? 1 : 0) + (op->real_id != NULL ? 1 : 0);
	const char *kind = kind_name(op->kind);
	JsonbValue	idbuf;
	JbwCont		c;

	Assert(op->lazy_result);
	/* keys in jsonb's order: shorter first, then bytewise */
	jbw_begin(buf, &c, true, n);
	if (create)
	{
		jbw_entry(buf, &c, JBW_KEY(buf, "realId"));
		if (op->temp_entity)
			jbw_entry(buf, &c, JBW_KEY(buf, "tempId"));
	}
	jbw_entry(buf, &c, JBW_KEY(buf, "success"));
	if (op->has_new_version)
		jbw_entry(buf, &c, JBW_KEY(buf, "version"));
	if (op->real_id != NULL)
		jbw_entry(buf, &c, JBW_KEY(buf, "entityId"));
	jbw_entry(buf, &c, JBW_KEY(buf, "operation"));
	jbw_entry(buf, &c, JBW_KEY(buf, "entityType"));
	jbw_entry(buf, &c, JBW_KEY(buf, "operationId"));
	if (create)
	{
		jbw_entry(buf, &c, jbw_typed_id(buf, e, op->real_id));
		if (op->temp_entity)
			jbw_entry(buf, &c, jbw_string(buf, op->entity_id, strlen(op->entity_id)));
	}
	jbw_entry(buf, &c, jbw_bool(true));
	if (op->has_new_version)
		jbw_entry(buf, &c, jbw_int8(buf, op->new_version));
	if (op->real_id != NULL)
		jbw_entry(buf, &c, jbw_typed_id(buf, e, op->real_id));
	jbw_entry(buf, &c, jbw_string(buf, kind, strlen(kind)));
	jbw_entry(buf, &c, jbw_string(buf, e->entity_type, strlen(e->entity_type)));
	jbw_entry(buf, &c, jbw_scalar(buf, push_op_field(op, "id", &idbuf)));
	return jbw_end(buf, &c);
}

/* The result of op: the kept one, or one written now (lazy_result) in the current memory context. */
Jsonb *
push_op_result(PushOp *op)
{
	StringInfoData buf;

	if (!op->lazy_result)
		return op->result;
	jbw_init(&buf, 256);
	(void) push_write_applied(&buf, op);
	return jbw_finish(&buf);
}

/* A result for an applied create, update or delete; version, when > 0, is the row's new version (a delete's: its tombstone's). */
static void
applied_ex(PushBatch *b, PushOp *op, Jsonb *row, const char *id, int64 version, bool with_data)
{
	JsonbParseState *ps = NULL;

	note_row(b, op, row, id);
	if (version > 0)
	{
		op->has_new_version = true;
		op->new_version = version;
	}
	if (!with_data && lazy_eligible(op, row))
	{
		/* the result is written from the operation's fields when needed */
		op->result = NULL;
		op->lazy_result = true;
		op->outcome = PUSH_APPLIED;
		return;
	}
	result_begin(&ps, op, true);
	result_entity_id(&ps, op, row, id);
	if (op->kind == PUSH_CREATE)
	{
		push_key(&ps, "realId");
		if (row != NULL)
		{
			JsonbValue *v = getKeyJsonValueFromContainer(&row->root, op->entity->pk_column,
														 strlen(op->entity->pk_column), NULL);

			pushJsonbValue(&ps, WJB_VALUE, v);
		}
		else
			push_null(&ps);
		if (op->temp_entity)
		{
			push_key(&ps, "tempId");
			push_str(&ps, WJB_VALUE, op->entity_id);
		}
	}
	if (op->has_new_version)
	{
		push_key(&ps, "version");
		push_int64(&ps, op->new_version);
	}
	if (with_data && row != NULL)
	{
		push_key(&ps, "data");
		push_jsonb(&ps, WJB_VALUE, row);
	}
	result_end(b, op, &ps, PUSH_APPLIED);
}

/* The result of an applied operation: ids and the new version. */
static void
applied(PushBatch *b, PushOp *op, Jsonb *row, const char *id, int64 version)
{
	applied_ex(b, op, row, id, version, false);
}

/* Reads a string field of a conflict object. */
static char *
conflict_text(Jsonb *conflict, const char *key)
{
	JsonbValue *v = getKeyJsonValueFromContainer(&conflict->root, key, strlen(key), NULL);

	return (v && v->type == jbvString) ? pnstrdup(v->val.string.val, v->val.string.len) : NULL;
}

/* Pushes conflictType, severity and affectedFields of a conflict under "resolution" or "conflictData". */
static void
push_conflict_fields(JsonbParseState **ps, Jsonb *conflict)
{
	JsonbValue *v;

	push_key(ps, "conflictType");
	push_str(ps, WJB_VALUE, conflict_text(conflict, "type"));
	push_key(ps, "affectedFields");
	v = getKeyJsonValueFromContainer(&conflict->root, "affectedFields", 14, NULL);
	if (v != NULL)
		pushJsonbValue(ps, WJB_VALUE, v);
	else
		push_null(ps);
}

/* A result for a conflict resolved at once: how, and the row as it is now. */
static void
resolved(PushBatch *b, PushOp *op, Jsonb *conflict, const char *strategy,
		 const char *winner, Jsonb *row, const char *id, int64 tombstone)
{
	JsonbParseState *ps = NULL;

	note_row(b, op, row, id);
	if (tombstone > 0)
	{
		op->has_new_version = true;
		op->new_version = tombstone;
	}
	result_begin(&ps, op, true);
	result_entity_id(&ps, op, row, id);
	if (op->has_new_version)
	{
		push_key(&ps, "version");
		push_int64(&ps, op->new_version);
	}
	push_key(&ps, "severity");
	push_str(&ps, WJB_VALUE, conflict_text(conflict, "severity"));
	push_key(&ps, "resolution");
	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	push_key(&ps, "strategy");
	push_str(&ps, WJB_VALUE, strategy);
	push_key(&ps, "winner");
	push_str(&ps, WJB_VALUE, winner);
	push_conflict_fields(&ps, conflict);
	pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
	push_key(&ps, "data");
	push_jsonb(&ps, WJB_VALUE, row);
	result_end(b, op, &ps, PUSH_RESOLVED);
}

/* Stores the conflict (unless the push is atomic: it is rolled back) and reports it as the spec shows. */
static void
unresolved(PushBatch *b, PushOp *op, Jsonb *conflict, Jsonb *local, Jsonb *server,
		   bool server_deleted, Jsonb *base, const char *id)
{
	JsonbParseState *ps = NULL;
	int64		server_version = 0;
	bool		has_server_version = row_version(server, &server_version);

	op->real_id = id ? keep_id(b, op, id) : NULL;
	if (base == NULL && op->has_version && id != NULL)
		base = sql_base(b, op->entity, id, op->version);
	if (!b->atomic)
		op->conflict_id = push_store_conflict(b, op, conflict, local, server, base,
											  server_version, has_server_version);
	result_begin(&ps, op, false);
	result_entity_id(&ps, op, NULL, id);
	push_key(&ps, "conflict");
	push_bool(&ps, true);
	if (op->conflict_id != 0)
	{
		push_key(&ps, "conflictId");
		push_int64(&ps, op->conflict_id);
	}
	push_key(&ps, "severity");
	push_str(&ps, WJB_VALUE, conflict_text(conflict, "severity"));
	if (has_server_version)
	{
		push_key(&ps, "serverVersion");
		push_int64(&ps, server_version);
	}
	push_key(&ps, "conflictData");
	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	push_key(&ps, "localData");
	push_jsonb(&ps, WJB_VALUE, local);
	push_key(&ps, "serverData");
	push_jsonb(&ps, WJB_VALUE, server);
	if (server_deleted)
	{
		push_key(&ps, "serverDeleted");
		push_bool(&ps, true);
	}
	push_conflict_fields(&ps, conflict);
	pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
	result_end(b, op, &ps, PUSH_CONFLICT);
}

/* --- conflicts ---------------------------------------------------------- */

/* The server row's updated_at; false when absent. */
static bool
row_updated_at(Jsonb *row, TimestampTz *ts)
{
	JsonbValue *v = getKeyJsonValueFromContainer(&row->root, "updated_at", 10, NULL);

	if (v == NULL || v->type != jbvString)
		return false;
	*ts = DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in,
												  CStringGetDatum(pnstrdup(v->val.string.val, v->val.string.len)),
												  ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
	return true;
}

/* data restricted to the columns of d, with values from merged. */
static Jsonb *
restrict_to(PushEntity *e, PushData *d, Jsonb *merged)
{
	JsonbParseState *ps = NULL;
	JsonbValue *res;

	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	for (int i = 0; i < d->ncols; i++)
	{
		const char *c = e->cols[d->cols[i]].name;
		JsonbValue *v = getKeyJsonValueFromContainer(&merged->root, c, strlen(c), NULL);

		push_key(&ps, c);
		if (v != NULL)
			pushJsonbValue(&ps, WJB_VALUE, v);
		else
			push_null(&ps);
	}
	res = pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

/* Writes the client's change after a conflict was decided for it. */
static Jsonb *
force_apply(PushOp *op, PushData *d, const char *id, Jsonb *server, int64 *tombstone)
{
	PushEntity *e = op->entity;

	if (op->kind == PUSH_DELETE)
	{
		*tombstone = sql_delete(e, id, false, 0, DT_NOEND, NULL);
		return NULL;
	}
	if (d->ncols == 0)
		return server;
	return sql_update(e, d, id, false, 0, DT_NOEND, NULL, true);
}

/*
 * True when the entity type's conflict policy resolves this severity at once
 * (smartsync.entity_types.auto_resolve, default {low}; set_conflict_policy).
 * Read only when a conflict occurs.
 */
static bool
auto_resolves(PushEntity *e, const char *severity)
{
	Oid			argtypes[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	bool		result = false;
	bool		isnull;
	int			rc;

	values[0] = CStringGetTextDatum(e->entity_type);
	values[1] = CStringGetTextDatum(severity);
	rc = push_exec(push_plan("SELECT $2 = ANY (auto_resolve) FROM smartsync.entity_types WHERE entity_type = $1",
							 2, argtypes), values, NULL, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading smartsync.entity_types failed: %s", SPI_result_code_string(rc));
	if (SPI_processed > 0)
		result = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) && !isnull;
	SPI_freetuptable(SPI_tuptable);
	return result;
}

/*
 * Decides a conflict: a severity the policy auto-resolves (default: low)
 * applies the client's change; a deletion
 * or missing entity is stored; otherwise the entity type's strategy: merge
 * (three-way against the client's base version from the change log, else
 * the spec's two-way attemptMerge), client-wins, server-wins,
 * last-write-wins; critical changes only merge, never overwrite; manual and
 * whatever cannot be decided is stored.
 */
static void
resolve(PushBatch *b, PushOp *op, PushData *d, const char *id, Jsonb *conflict,
		Jsonb *local, Jsonb *server, bool server_deleted)
{
	PushEntity *e = op->entity;
	char	   *type = conflict_text(conflict, "type");
	char	   *severity = conflict_text(conflict, "severity");
	const char *strategy = e->strategy;
	Jsonb	   *base = NULL;
	Jsonb	   *row;
	int64		tombstone = -1;

	if (server_deleted || server == NULL ||
		strcmp(type, "deletion") == 0 || strcmp(type, "missing_entity") == 0)
	{
		unresolved(b, op, conflict, local, server, server_deleted, NULL, id);
		return;
	}
	if (auto_resolves(e, severity))
	{
		row = force_apply(op, d, id, server, &tombstone);
		resolved(b, op, conflict, psprintf("%s-severity", severity), "client", row, id, tombstone);
		return;
	}
	if (op->kind != PUSH_DELETE && strcmp(strategy, "merge") == 0)
	{
		Jsonb	   *merged;

		if (op->has_version && op->kind == PUSH_UPDATE)
			base = sql_base(b, e, id, op->version);
		if (base != NULL)
		{
			Jsonb	   *full = DatumGetJsonbP(DirectFunctionCall2(jsonb_concat,
																  JsonbPGetDatum(base),
																  JsonbPGetDatum(d->jb)));

			merged = sync_merge3(base, full, server, NULL);
		}
		else
			merged = sync_merge(d->jb, server);
		if (merged != NULL)
		{
			PushData	md = *d;

			md.jb = restrict_to(e, d, merged);
			row = force_apply(op, &md, id, server, &tombstone);
			resolved(b, op, conflict, "merge", "merged", row, id, -1);
			return;
		}
	}
	else if (strcmp(severity, "critical") != 0)
	{
		bool		client_wins = false;
		bool		decided = true;

		if (strcmp(strategy, "client-wins") == 0)
			client_wins = true;
		else if (strcmp(strategy, "server-wins") == 0)
			client_wins = false;
		else if (strcmp(strategy, "last-write-wins") == 0)
		{
			TimestampTz server_ts;

			client_wins = op->has_ts && row_updated_at(server, &server_ts) && op->ts > server_ts;
		}
		else
			decided = false;
		if (decided)
		{
			if (client_wins)
			{
				row = force_apply(op, d, id, server, &tombstone);
				resolved(b, op, conflict, strategy, "client", row, id, tombstone);
			}
			else
				resolved(b, op, conflict, strategy, "server", server, id, -1);
			return;
		}
	}
	unresolved(b, op, conflict, local, server, server_deleted, base, id);
}

/* local data for detect_conflict: the columns plus the version the client saw. */
static Jsonb *
local_with_version(PushOp *op, Jsonb *cols)
{
	JsonbParseState *ps = NULL;
	JsonbValue *res;

	if (!op->has_version)
		return cols;
	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	push_key(&ps, "version");
	push_int64(&ps, op->version);
	res = pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
	return DatumGetJsonbP(DirectFunctionCall2(jsonb_concat, JsonbPGetDatum(cols),
											  JsonbPGetDatum(JsonbValueToJsonb(res))));
}

/* --- the operation ------------------------------------------------------ */

/* True when an update can try the compare-and-swap: it writes fields and says what it saw. */
static inline bool
cas_eligible(PushOp *op, PushData *d)
{
	return d->ncols > 0 && (op->has_version || op->has_ts);
}

/* An update after its compare-and-swap did not match: lock, detect, resolve. */
static void
update_slow(PushBatch *b, PushOp *op, PushData *d, const char *id)
{
	PushEntity *e = op->entity;
	Jsonb	   *row;
	Jsonb	   *server;
	Jsonb	   *local;
	Jsonb	   *conflict;
	bool		deleted = false;

	server = sql_lock(e, id, false);
	check_row_practice(b, e, server, id);
	if (server == NULL)
	{
		server = sql_tombstone(b, e, id);
		deleted = (server != NULL);
	}
	local = local_with_version(op, d->jb);
	conflict = sync_detect_conflict(local, server, deleted, op->ts, op->has_ts,
									"update", e->field_classes);
	if (conflict == NULL)
	{
		row = (d->ncols == 0) ? server : sql_update(e, d, id, false, 0, DT_NOEND, NULL, true);
		/*
		 * Not a clean step from the client's version: others changed fields it
		 * did not touch, and echo suppression will not send them, so the answer
		 * carries the row as it now is.
		 */
		applied_ex(b, op, row, id, -1, true);
		return;
	}
	resolve(b, op, d, id, conflict, d->jb, server, deleted);
}

/* An update: compare-and-swap, else lock, detect, resolve. */
static void
apply_update(PushBatch *b, PushOp *op, PushData *d, const char *id)
{
	PushEntity *e = op->entity;
	const char *practice = (e->practice_index >= 0) ? b->ctx.practice_id : NULL;

	if (cas_eligible(op, d))
	{
		Jsonb	   *row = sql_update(e, d, id, op->has_version, op->version,
									 op->has_ts ? op->ts : DT_NOBEGIN, practice, false);

		if (row != NULL)
		{
			applied(b, op, row, id, -1);
			return;
		}
	}
	update_slow(b, op, d, id);
}

/* A delete: compare-and-swap, else lock, detect, resolve; a row already gone is fine. */
static void
apply_delete(PushBatch *b, PushOp *op, PushData *d, const char *id)
{
	PushEntity *e = op->entity;
	const char *practice = (e->practice_index >= 0) ? b->ctx.practice_id : NULL;
	Jsonb	   *server;
	Jsonb	   *local;
	Jsonb	   *conflict;
	int64		tombstone;

	if (op->has_version || op->has_ts)
	{
		tombstone = sql_delete(e, id, op->has_version, op->version,
							   op->has_ts ? op->ts : DT_NOBEGIN, practice);
		if (tombstone > 0)
		{
			applied(b, op, NULL, id, tombstone);
			return;
		}
	}

	server = sql_lock(e, id, true);
	if (server == NULL)
	{
		/* deleted already (or never there): the client's wish holds */
		JsonbParseState *ps = NULL;

		op->real_id = keep_id(b, op, id);
		result_begin(&ps, op, true);
		result_entity_id(&ps, op, NULL, id);
		push_key(&ps, "alreadyDeleted");
		push_bool(&ps, true);
		result_end(b, op, &ps, PUSH_APPLIED);
		return;
	}
	check_row_practice(b, e, server, id);
	local = local_with_version(op, d->jb);
	conflict = sync_detect_conflict(local, server, false, op->ts, op->has_ts,
									"delete", e->field_classes);
	if (conflict == NULL)
	{
		tombstone = sql_delete(e, id, false, 0, DT_NOEND, NULL);
		applied(b, op, NULL, id, tombstone);
		return;
	}
	resolve(b, op, d, id, conflict, d->jb, server, false);
}

/*
 * Checks an operation (context, permissions, ids) and rewrites its data to
 * columns; returns the entity id to write (NULL: the server assigns it).
 */
static const char *
prepare_op(PushBatch *b, PushOp *op, PushData *d)
{
	PushEntity *e = op->entity;
	const char *id = op->entity_id;
	JsonbValue *explicit_id = NULL;

	/* identity, permissions and limits were checked before anything applied (push.c) */
	push_resolve_entity(b, e);

	if (op->temp_entity)
	{
		if (op->kind == PUSH_CREATE)
		{
			PushTemp   *t = push_idmap_lookup(b, op->entity_id);

			if (t != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_SS_PUSH_TEMP_ID_TAKEN),
						 errmsg("temporary id \"%s\" is already mapped", sync_clip_str(op->entity_id)),
						 errdetail("An earlier create of client \"%s\" made %s \"%s\" from it.",
								   sync_clip_str(b->client_id), t->entity_type, t->real_id),
						 errhint("Use a new temporary id for a new entity; refer to this one by its real id.")));
			id = NULL;
		}
		else
			id = map_temp(b, op, op->entity_id, e->entity_type, "entityId")->real_id;
	}
	else if (op->kind == PUSH_CREATE && op->has_entity_id)
		explicit_id = push_op_field(op, "entityId", palloc(sizeof(JsonbValue)));

	rewrite_data(b, op, e, explicit_id, d);
	return id;
}

/* Finishes a create from its new row: id map, result; SS425 for a temporary id made twice. */
static void
created(PushBatch *b, PushOp *op, Jsonb *row)
{
	note_row(b, op, row, NULL);
	if (op->temp_entity)
	{
		if (push_idmap_lookup(b, op->entity_id) != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_SS_PUSH_TEMP_ID_TAKEN),
					 errmsg("temporary id \"%s\" is already mapped", sync_clip_str(op->entity_id)),
					 errdetail("Another create of this push made an entity from it.")));
		push_idmap_note(b, op, op->real_id);
	}
	applied(b, op, row, NULL, -1);
}

/* True for a create that names its own key (not temporary): the row may exist already. */
static inline bool
explicit_create(PushOp *op)
{
	return op->kind == PUSH_CREATE && op->has_entity_id && !op->temp_entity;
}

/*
 * A create whose key is taken.  The same content (every field the client
 * sends equals the server row's, what the row hash of those fields tells) is
 * an idempotent success that answers the existing row; different content is
 * a data conflict (affectedFields, severity), resolved by the entity type's
 * policy or stored, like any other conflict.
 */
static void
create_existing(PushBatch *b, PushOp *op, PushData *d, const char *id)
{
	PushEntity *e = op->entity;
	Jsonb	   *server = sql_lock(e, id, false);
	Jsonb	   *conflict;
	JsonbParseState *ps = NULL;

	if (server == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_SS_PUSH_PRACTICE),
				 errmsg("%s \"%s\" exists and belongs to another practice", e->entity_type, sync_clip_str(id)),
				 errdetail("The key is taken by a row this request may not see; nothing was applied.")));
	check_row_practice(b, e, server, id);
	conflict = sync_detect_conflict(d->jb, server, false, op->ts, op->has_ts,
									"create", e->field_classes);
	if (conflict != NULL)
	{
		resolve(b, op, d, id, conflict, d->jb, server, false);
		return;
	}
	note_row(b, op, server, id);
	result_begin(&ps, op, true);
	result_entity_id(&ps, op, server, id);
	push_key(&ps, "realId");
	result_entity_id_value(&ps, op, server, id);
	if (op->has_new_version)
	{
		push_key(&ps, "version");
		push_int64(&ps, op->new_version);
	}
	push_key(&ps, "alreadyExists");
	push_bool(&ps, true);
	push_key(&ps, "data");
	push_jsonb(&ps, WJB_VALUE, server);
	result_end(b, op, &ps, PUSH_APPLIED);
}

/* A create: INSERT; a key the client chose that exists already: create_existing. */
static void
apply_create(PushBatch *b, PushOp *op, PushData *d)
{
	Jsonb	   *row;

	if (!explicit_create(op))
	{
		created(b, op, sql_insert(op->entity, d, false));
		return;
	}
	row = sql_insert(op->entity, d, true);
	if (row != NULL)
		created(b, op, row);
	else
		create_existing(b, op, d, op->entity_id);
}

/*
 * Applies one operation; raises on any error (the caller's subtransaction
 * rolls it back).  Sets op->result and op->outcome.
 */
void
push_apply_op(PushBatch *b, PushOp *op)
{
	PushData	d;
	const char *id = prepare_op(b, op, &d);

	switch (op->kind)
	{
		case PUSH_CREATE:
			apply_create(b, op, &d);
			break;
		case PUSH_UPDATE:
			apply_update(b, op, &d, id);
			break;
		case PUSH_DELETE:
			apply_delete(b, op, &d, id);
			break;
	}
}

/* --- runs: many operations in one statement ----------------------------- */

/* True when two rewritten data objects write the same columns. */
static bool
same_columns(PushData *a, PushData *b)
{
	if (a->ncols != b->ncols)
		return false;
	for (int i = 0; i < a->ncols; i++)
		if (a->cols[i] != b->cols[i])
			return false;
	return true;
}

/* A jsonb[] of the data of n operations. */
static Datum
data_array(PushData *ds, int n)
{
	Datum	   *elems = palloc(sizeof(Datum) * n);
	int16		typlen;
	bool		typbyval;
	char		typalign;

	for (int i = 0; i < n; i++)
		elems[i] = JsonbPGetDatum(ds[i].jb);
	get_typlenbyvalalign(JSONBOID, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_array(elems, n, JSONBOID, typlen, typbyval, typalign));
}

/* Creates with the same columns, in one INSERT; rows come back in order. */
static void
insert_run(PushBatch *b, PushOp **ops, PushData *ds, int n)
{
	PushEntity *e = ops[0]->entity;
	PushData   *d = &ds[0];
	StringInfoData q;
	Oid			argtypes[1] = {JSONBARRAYOID};
	Datum		values[1];
	Jsonb	  **rows;
	int			rc;

	initStringInfo(&q);
	appendStringInfo(&q, "INSERT INTO %s AS t (", e->qualified);
	append_columns(&q, e, d, "");
	appendStringInfoString(&q, ") SELECT ");
	append_columns(&q, e, d, "r.");
	appendStringInfo(&q, " FROM pg_catalog.unnest($1) WITH ORDINALITY AS u(data, n) "
					 "CROSS JOIN LATERAL pg_catalog.jsonb_populate_record(NULL::%s, u.data) AS r "
					 "ORDER BY u.n", e->qualified);
	values[0] = data_array(ds, n);
	/* rows come back in insertion order: the CTE's tuplestore keeps it */
	rc = push_exec_keyed(push_plan_keyed(returning(e, &q, false), 1, argtypes), values, NULL, 0);
	if (rc != SPI_OK_SELECT || SPI_processed != (uint64) n)
		elog(ERROR, "insert into %s failed: %s", e->qualified, SPI_result_code_string(rc));
	rows = palloc(sizeof(Jsonb *) * n);
	for (int i = 0; i < n; i++)
	{
		bool		isnull;

		rows[i] = DatumGetJsonbPCopy(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
	}
	SPI_freetuptable(SPI_tuptable);
	for (int i = 0; i < n; i++)
		created(b, ops[i], rows[i]);
}

/*
 * Updates with the same columns, their compare-and-swaps in one UPDATE; the
 * ones it did not match take the slow path one by one, in order.
 */
static void
update_run(PushBatch *b, PushOp **ops, PushData *ds, const char **ids, int n)
{
	PushEntity *e = ops[0]->entity;
	PushData   *d = &ds[0];
	const char *practice = (e->practice_index >= 0) ? b->ctx.practice_id : NULL;
	StringInfoData q;
	Oid			argtypes[5] = {TEXTARRAYOID, INT8ARRAYOID, TIMESTAMPTZARRAYOID, JSONBARRAYOID, TEXTOID};
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	Datum	   *idd = palloc(sizeof(Datum) * n);
	Datum	   *verd = palloc(sizeof(Datum) * n);
	bool	   *vernull = palloc(sizeof(bool) * n);
	Datum	   *tsd = palloc(sizeof(Datum) * n);
	bool	   *done = palloc0(sizeof(bool) * n);
	int64	   *versions = palloc0(sizeof(int64) * n);
	int			dims[1] = {n};
	int			lbs[1] = {1};
	int			rc;

	for (int i = 0; i < n; i++)
	{
		idd[i] = CStringGetTextDatum(ids[i]);
		verd[i] = Int64GetDatum(ops[i]->version);
		vernull[i] = !ops[i]->has_version;
		tsd[i] = TimestampTzGetDatum(ops[i]->has_ts ? ops[i]->ts : DT_NOBEGIN);
	}
	initStringInfo(&q);
	appendStringInfo(&q, "UPDATE %s AS t SET ", e->qualified);
	for (int i = 0; i < d->ncols; i++)
	{
		const char *c = quote_identifier(e->cols[d->cols[i]].name);

		appendStringInfo(&q, "%s%s = r.%s", i ? ", " : "", c, c);
	}
	appendStringInfo(&q, " FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), "
					 "pg_catalog.unnest($3), pg_catalog.unnest($4)) WITH ORDINALITY AS u(id, ver, ts, data, n) "
					 "CROSS JOIN LATERAL pg_catalog.jsonb_populate_record(NULL::%s, u.data) AS r "
					 "WHERE t.%s = u.id::%s "
					 "AND (u.ver IS NULL OR t.version = u.ver) AND (u.ver IS NOT NULL OR t.updated_at <= u.ts)",
					 e->qualified, quote_identifier(e->pk_column), e->pk_type);
	if (e->practice_index >= 0)
		appendStringInfo(&q, " AND ($5 IS NULL OR t.%s::pg_catalog.text = $5)",
						 quote_identifier(e->practice_column));
	appendStringInfoString(&q, " RETURNING u.n, t.version");
	values[0] = PointerGetDatum(construct_array(idd, n, TEXTOID, -1, false, TYPALIGN_INT));
	values[1] = PointerGetDatum(construct_md_array(verd, vernull, 1, dims, lbs, INT8OID, 8,
												   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[2] = PointerGetDatum(construct_array(tsd, n, TIMESTAMPTZOID, 8, FLOAT8PASSBYVAL,
												TYPALIGN_DOUBLE));
	values[3] = data_array(ds, n);
	values[4] = practice ? CStringGetTextDatum(practice) : (Datum) 0;
	nulls[4] = practice ? ' ' : 'n';
	/* a generic plan probing the key per row (pushledger.c) */
	rc = push_exec_keyed(push_plan_keyed(q.data, 5, argtypes), values, nulls, 0);
	if (rc != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "update of %s failed: %s", e->qualified, SPI_result_code_string(rc));
	for (uint64 k = 0; k < SPI_processed; k++)
	{
		bool		isnull;
		int64		i = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[k], SPI_tuptable->tupdesc, 1, &isnull)) - 1;

		if (i >= 0 && i < n)
		{
			done[i] = true;
			versions[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[k], SPI_tuptable->tupdesc, 2, &isnull));
		}
	}
	SPI_freetuptable(SPI_tuptable);
	for (int i = 0; i < n; i++)
	{
		if (done[i])
			applied(b, ops[i], NULL, ids[i], versions[i]);
		else
			update_slow(b, ops[i], &ds[i], ids[i]);
	}
}

/*
 * Applies up to PUSH_SQL_CHUNK operations of a run (see push_apply_run).
 * Updates of a row named earlier in a statement, and updates that cannot
 * compare-and-swap, go one by one.
 */
static void
apply_run_chunk(PushBatch *b, PushOp **ops, int n)
{
	PushData   *ds = palloc(sizeof(PushData) * n);
	const char **ids = palloc(sizeof(char *) * n);
	PushOp	  **sel = palloc(sizeof(PushOp *) * n);
	PushData   *seld = palloc(sizeof(PushData) * n);
	const char **selids = palloc(sizeof(char *) * n);
	int			i = 0;

	for (int k = 0; k < n; k++)
		ids[k] = prepare_op(b, ops[k], &ds[k]);

	while (i < n)
	{
		int			m = 0;
		int			j;
		HTAB	   *rows = NULL;	/* the rows the selected updates write */

		/* the longest stretch from i writing the same columns */
		for (j = i; j < n && same_columns(&ds[i], &ds[j]); j++)
		{
			bool		alone = false;

			if (explicit_create(ops[j]))
				alone = true;
			else if (ops[j]->kind == PUSH_UPDATE)
			{
				alone = !cas_eligible(ops[j], &ds[j]);
				if (!alone)
				{
					if (rows == NULL)
						rows = push_string_hash("smartsync push run rows", n - i, sizeof(char *),
												CurrentMemoryContext);
					(void) hash_search(rows, &ids[j], HASH_ENTER, &alone);
				}
			}
			if (alone)
				break;
			sel[m] = ops[j];
			seld[m] = ds[j];
			selids[m] = ids[j];
			m++;
		}
		if (rows != NULL)
			hash_destroy(rows);
		if (m >= 2)
		{
			if (ops[i]->kind == PUSH_CREATE)
				insert_run(b, sel, seld, m);
			else
				update_run(b, sel, seld, selids, m);
			i += m;
			continue;
		}
		/* one operation alone */
		if (ops[i]->kind == PUSH_CREATE)
			apply_create(b, ops[i], &ds[i]);
		else
			apply_update(b, ops[i], &ds[i], ids[i]);
		i++;
	}
}

/*
 * Applies a run of operations of one entity type and kind (create or
 * update), in the order given: creates and compare-and-swap updates that
 * write the same columns go in one statement each (of at most
 * PUSH_SQL_CHUNK rows), so capture fires once per statement instead of once
 * per operation.  What a chunk needs (rewritten data, statement results) is
 * freed after it, so a run's memory does not grow with its length.  Any
 * error raises (the caller rolls back and applies one by one).
 */
void
push_apply_run(PushBatch *b, PushOp **ops, int n)
{
	MemoryContext runcxt = AllocSetContextCreate(CurrentMemoryContext, "smartsync push run",
												 ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(runcxt);

	for (int start = 0; start < n; start += PUSH_SQL_CHUNK)
	{
		apply_run_chunk(b, ops + start, Min(PUSH_SQL_CHUNK, n - start));
		MemoryContextReset(runcxt);
		CHECK_FOR_INTERRUPTS();
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(runcxt);
}
