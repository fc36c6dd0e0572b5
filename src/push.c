/*
 * push.c: smartsync.sync_push(payload jsonb), the spec's POST /api/sync/push.
 *
 * A push runs in four steps:
 *   1. validate the whole payload (no writes): SS401..SS411;
 *   2. sort the operations: creates and updates parents first, then deletes
 *      children first; within that by priority, client timestamp and
 *      position (stable);
 *   3. lock the client (a concurrent push of the same device waits) and read
 *      the ledger: an operation seen before returns its stored result;
 *   4. apply the others (pushapply.c): all in one subtransaction, runs of
 *      creates or updates of one entity type as one statement each, and
 *      when anything raises, again one by one with a subtransaction per
 *      operation so that the failing one fails alone (or, for "atomic", in
 *      one subtransaction, one by one, not at all); then write every outcome
 *      to the ledger and the new temporary ids to the id map in one INSERT
 *      each (pushledger.c).
 * The response is the spec's {"success","processed","failed","conflicts",
 * "results"} with additions documented in the README.
 */
#include "postgres.h"

#include <math.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "smartsync.h"
#include "push.h"

PG_FUNCTION_INFO_V1(smartsync_sync_push);

/* settings */
int			smartsync_batch_size = 50;
int			smartsync_max_batch_size = 1000;
char	   *smartsync_temp_id_prefix = NULL;

/* Defines the push settings; called from _PG_init. */
void
sync_push_init(void)
{
	DefineCustomIntVariable("smartsync.batch_size",
							"Largest number of operations one sync_push accepts.",
							"Capped by smartsync.max_batch_size.",
							&smartsync_batch_size, 50, 1, 1000000,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("smartsync.max_batch_size",
							"Hard maximum of smartsync.batch_size.",
							NULL,
							&smartsync_max_batch_size, 1000, 1, 1000000,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("smartsync.temp_id_prefix",
							   "Prefix of temporary (client-made) entity ids in a push.",
							   "A string id or reference value starting with it is mapped through the id map.",
							   &smartsync_temp_id_prefix, "temp_",
							   PGC_SUSET, 0, NULL, NULL, NULL);
}

/* --- jsonb building helpers -------------------------------------------- */

/* Pushes an object key. */
void
push_key(JsonbParseState **ps, const char *key)
{
	push_str(ps, WJB_KEY, key);
}

/* Pushes a string as a key, value or element. */
void
push_str(JsonbParseState **ps, JsonbIteratorToken tok, const char *s)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = (char *) s;
	v.val.string.len = strlen(s);
	pushJsonbValue(ps, tok, &v);
}

/* Pushes a boolean value. */
void
push_bool(JsonbParseState **ps, bool b)
{
	JsonbValue	v;

	v.type = jbvBool;
	v.val.boolean = b;
	pushJsonbValue(ps, WJB_VALUE, &v);
}

/* Pushes an integer value. */
void
push_int64(JsonbParseState **ps, int64 i)
{
	JsonbValue	v;

	v.type = jbvNumeric;
	v.val.numeric = DatumGetNumeric(DirectFunctionCall1(int8_numeric, Int64GetDatum(i)));
	pushJsonbValue(ps, WJB_VALUE, &v);
}

/* Pushes a JSON null value. */
void
push_null(JsonbParseState **ps)
{
	JsonbValue	v;

	v.type = jbvNull;
	pushJsonbValue(ps, WJB_VALUE, &v);
}

/* Pushes a whole jsonb document as a value or element (NULL: JSON null). */
void
push_jsonb(JsonbParseState **ps, JsonbIteratorToken tok, Jsonb *jb)
{
	JsonbValue	v;

	if (jb == NULL)
	{
		v.type = jbvNull;
		pushJsonbValue(ps, tok, &v);
		return;
	}
	if (JB_ROOT_IS_SCALAR(jb))
	{
		JsonbValue	s;

		if (!JsonbExtractScalar(&jb->root, &s))
			elog(ERROR, "could not extract a jsonb scalar");
		pushJsonbValue(ps, tok, &s);
		return;
	}
	v.type = jbvBinary;
	v.val.binary.data = &jb->root;
	v.val.binary.len = VARSIZE(jb) - VARHDRSZ;
	pushJsonbValue(ps, tok, &v);
}

/* A copy of jb in cxt. */
Jsonb *
push_copy_jsonb(MemoryContext cxt, Jsonb *jb)
{
	Jsonb	   *copy = MemoryContextAlloc(cxt, VARSIZE(jb));

	memcpy(copy, jb, VARSIZE(jb));
	return copy;
}

/* --- validation --------------------------------------------------------- */

/* Describes a JSON value's type for error messages. */
static const char *
json_type_name(JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			return "null";
		case jbvString:
			return "a string";
		case jbvNumeric:
			return "a number";
		case jbvBool:
			return "a boolean";
		case jbvBinary:
			return JsonContainerIsArray(v->val.binary.data) ? "an array" : "an object";
		default:
			return "a JSON value";
	}
}

/* Looks up key in an object container (NULL when absent). */
static inline JsonbValue *
get_key(JsonbContainer *c, const char *key)
{
	return getKeyJsonValueFromContainer(c, key, strlen(key), NULL);
}

/* True for a JSON object value. */
static inline bool
is_object(JsonbValue *v)
{
	return v->type == jbvBinary && JsonContainerIsObject(v->val.binary.data);
}

/* Raises SS406 for a field of the wrong type. */
static void
wrong_type(int i, const char *field, const char *expected, JsonbValue *v)
{
	ereport(ERROR,
			(errcode(ERRCODE_SS_PUSH_INVALID_FIELD),
			 errmsg("invalid push: operations[%d].%s must be %s, not %s",
					i, field, expected, json_type_name(v)),
			 errdetail("The whole push was refused and nothing was written.")));
}

/* Raises SS405 for a missing required field. */
static void
missing_field(int i, const char *field, const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_SS_PUSH_MISSING_FIELD),
			 errmsg("invalid push: operations[%d] has no \"%s\"", i, field),
			 errdetail("%s The whole push was refused and nothing was written.", why)));
}

/* Reads an id (string or number, 1 to PUSH_ID_MAX bytes) as text; SS406 otherwise. */
static char *
id_text(int i, const char *field, JsonbValue *v)
{
	char	   *s;

	if (v->type != jbvString && v->type != jbvNumeric)
		wrong_type(i, field, "a string or a number", v);
	s = sync_jsonb_scalar_text(v);
	if (s[0] == '\0' || strlen(s) > PUSH_ID_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_SS_PUSH_INVALID_FIELD),
				 errmsg("invalid push: operations[%d].%s must be 1 to %d characters long",
						i, field, PUSH_ID_MAX),
				 errdetail("The whole push was refused and nothing was written.")));
	return s;
}

/* Parses an ISO 8601 timestamp without raising; false when it is not one. */
static bool
parse_iso_timestamp(const char *str, TimestampTz *result)
{
	fsec_t		fsec;
	struct pg_tm tt,
			   *tm = &tt;
	int			tz;
	int			dtype;
	int			nf;
	char	   *field[MAXDATEFIELDS];
	int			ftype[MAXDATEFIELDS];
	char		workbuf[MAXDATELEN + MAXDATEFIELDS];

	if (strlen(str) >= MAXDATELEN)
		return false;
	if (ParseDateTime(str, workbuf, sizeof(workbuf), field, ftype, MAXDATEFIELDS, &nf) != 0 ||
		DecodeDateTime_compat(field, ftype, nf, &dtype, tm, &fsec, &tz) != 0)
		return false;
	if (dtype != DTK_DATE)
		return false;
	return tm2timestamp(tm, fsec, &tz, result) == 0;
}

/*
 * Reads a timestamp: epoch milliseconds (a number, as the spec shows) or an
 * ISO 8601 string.  where names the field for SS406.
 */
static TimestampTz
read_timestamp(const char *where, JsonbValue *v)
{
	if (v->type == jbvString)
	{
		char	   *s = pnstrdup(v->val.string.val, v->val.string.len);
		TimestampTz ts;

		if (parse_iso_timestamp(s, &ts))
			return ts;
	}
	else if (v->type == jbvNumeric)
	{
		TimestampTz ts;

		if (sync_epoch_ms_timestamp(v->val.numeric, &ts))
			return ts;
	}
	ereport(ERROR,
			(errcode(ERRCODE_SS_PUSH_INVALID_FIELD),
			 errmsg("invalid push: %s must be a timestamp", where),
			 errdetail("A timestamp is milliseconds since 1970-01-01 UTC or an ISO 8601 string; the whole push was refused and nothing was written.")));
	return 0;					/* keep compiler quiet */
}

/* Reads an integer number (int64); false when v is not one. */
static bool
read_int64(JsonbValue *v, int64 *result)
{
	char	   *s;
	char	   *end;

	if (v->type != jbvNumeric || numeric_is_nan(v->val.numeric) ||
		numeric_is_inf(v->val.numeric))
		return false;
	s = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
	errno = 0;
	*result = strtoll(s, &end, 10);
	return errno == 0 && *end == '\0' && end != s;
}

/* Reads an optional scalar identity field (tenantId, ...) as text; NULL when absent or null. */
static char *
identity_text(int i, JsonbContainer *c, const char *field)
{
	JsonbValue *v = get_key(c, field);

	if (v == NULL || v->type == jbvNull)
		return NULL;
	if (v->type != jbvString && v->type != jbvNumeric)
		wrong_type(i, field, "a string or a number", v);
	return sync_jsonb_scalar_text(v);
}

/* Parses a priority: critical, high, normal, low or an integer; larger first. */
static int
read_priority(int i, JsonbValue *v)
{
	int64		n;

	if (v->type == jbvString)
	{
		static const char *const names[] = {"low", "normal", "high", "critical"};

		for (int k = 0; k < 4; k++)
			if (v->val.string.len == (int) strlen(names[k]) &&
				memcmp(v->val.string.val, names[k], v->val.string.len) == 0)
				return k;
		ereport(ERROR,
				(errcode(ERRCODE_SS_PUSH_INVALID_FIELD),
				 errmsg("invalid push: operations[%d].priority \"%.*s\" is not a priority",
						i, v->val.string.len, v->val.string.val),
				 errdetail("A priority is critical, high, normal, low or an integer; the whole push was refused and nothing was written.")));
	}
	if (read_int64(v, &n) && n >= -1000000 && n <= 1000000)
		return (int) n;
	wrong_type(i, "priority", "critical, high, normal, low or an integer", v);
	return 1;					/* keep compiler quiet */
}

/* Validates operations[i] into op; raises SS404..SS411. */
static void
validate_op(PushBatch *b, int i, JsonbValue *elem, PushOp *op)
{
	JsonbContainer *c;
	JsonbValue *v;
	char	   *s;

	memset(op, 0, sizeof(*op));
	op->index = i;
	op->priority = 1;
	if (!is_object(elem))
		ereport(ERROR,
				(errcode(ERRCODE_SS_PUSH_NOT_AN_OPERATION),
				 errmsg("invalid push: operations[%d] must be an object, not %s",
						i, json_type_name(elem)),
				 errdetail("The whole push was refused and nothing was written.")));
	c = elem->val.binary.data;
	op->request = JsonbValueToJsonb(elem);

	/* id */
	v = get_key(c, "id");
	if (v == NULL || v->type == jbvNull)
		missing_field(i, "id", "Every operation carries its client-side id, the key of exactly-once delivery.");
	op->opid = id_text(i, "id", v);
	op->opid_value = *v;

	/* operation */
	v = get_key(c, "operation");
	if (v == NULL || v->type == jbvNull)
		missing_field(i, "operation", "An operation is create, update or delete.");
	if (v->type != jbvString)
		wrong_type(i, "operation", "a string", v);
	s = pnstrdup(v->val.string.val, v->val.string.len);
	if (strcmp(s, "create") == 0)
		op->kind = PUSH_CREATE;
	else if (strcmp(s, "update") == 0)
		op->kind = PUSH_UPDATE;
	else if (strcmp(s, "delete") == 0)
		op->kind = PUSH_DELETE;
	else
		ereport(ERROR,
				(errcode(ERRCODE_SS_PUSH_UNKNOWN_OPERATION),
				 errmsg("invalid push: operations[%d].operation \"%s\" is not create, update or delete", i, s),
				 errdetail("The whole push was refused and nothing was written.")));

	/* entityType */
	v = get_key(c, "entityType");
	if (v == NULL || v->type == jbvNull)
		missing_field(i, "entityType", "Every operation names the entity type it changes.");
	if (v->type != jbvString)
		wrong_type(i, "entityType", "a string", v);
	op->entity = push_find_entity(b, v->val.string.val, v->val.string.len);
	if (op->entity == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_SS_PUSH_UNKNOWN_ENTITY_TYPE),
				 errmsg("invalid push: operations[%d].entityType \"%.*s\" is not a registered entity type",
						i, v->val.string.len, v->val.string.val),
				 errdetail("The whole push was refused and nothing was written."),
				 errhint("smartsync.entity_types lists the registered types.")));

	/* entityId */
	v = get_key(c, "entityId");
	if (v != NULL && v->type != jbvNull)
	{
		op->entity_id = id_text(i, "entityId", v);
		op->entity_id_value = *v;
		op->has_entity_id = true;
		op->temp_entity = (v->type == jbvString &&
						   push_is_temp(b, v->val.string.val, v->val.string.len));
	}
	else if (op->kind != PUSH_CREATE)
		missing_field(i, "entityId", "An update or a delete names the entity it changes.");

	/* data */
	v = get_key(c, "data");
	if (v != NULL && v->type != jbvNull)
	{
		if (!is_object(v))
			ereport(ERROR,
					(errcode(ERRCODE_SS_PUSH_DATA_NOT_OBJECT),
					 errmsg("invalid push: operations[%d].data must be an object, not %s",
							i, json_type_name(v)),
					 errdetail("data holds the entity's fields; the whole push was refused and nothing was written.")));
		op->data = JsonbValueToJsonb(v);
	}
	else if (op->kind != PUSH_DELETE)
		missing_field(i, "data", "A create or an update carries the entity's fields in data.");

	/* timestamp */
	v = get_key(c, "timestamp");
	if (v != NULL && v->type != jbvNull)
	{
		char		where[64];

		snprintf(where, sizeof(where), "operations[%d].timestamp", i);
		op->ts = read_timestamp(where, v);
		op->has_ts = true;
	}

	/* version: the server version the client last saw (else data.version) */
	v = get_key(c, "version");
	if ((v == NULL || v->type == jbvNull) && op->data != NULL)
	{
		JsonbValue *dv = get_key(&op->data->root, "version");
		int64		n;

		if (dv != NULL && read_int64(dv, &n) && n >= 0)
			v = dv;
		else
			v = NULL;
	}
	if (v != NULL && v->type != jbvNull)
	{
		if (!read_int64(v, &op->version) || op->version < 0)
			wrong_type(i, "version", "a non-negative integer", v);
		op->has_version = true;
	}

	/* priority, maxRetries */
	v = get_key(c, "priority");
	if (v != NULL && v->type != jbvNull)
		op->priority = read_priority(i, v);
	v = get_key(c, "maxRetries");
	if (v != NULL && v->type != jbvNull)
	{
		int64		n;

		if (!read_int64(v, &n) || n < 0)
			wrong_type(i, "maxRetries", "a non-negative integer", v);
	}

	/* requiredPermissions */
	v = get_key(c, "requiredPermissions");
	if (v != NULL && v->type != jbvNull)
	{
		JsonbIterator *it;
		JsonbValue	e;
		JsonbIteratorToken tok;

		if (!(v->type == jbvBinary && JsonContainerIsArray(v->val.binary.data)))
			wrong_type(i, "requiredPermissions", "an array of strings", v);
		it = JsonbIteratorInit(v->val.binary.data);
		while ((tok = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
		{
			if (tok != WJB_ELEM)
				continue;
			if (e.type != jbvString)
				ereport(ERROR,
						(errcode(ERRCODE_SS_PUSH_INVALID_FIELD),
						 errmsg("invalid push: operations[%d].requiredPermissions must hold only strings", i),
						 errdetail("The whole push was refused and nothing was written.")));
			op->permissions = lappend(op->permissions,
									  pnstrdup(e.val.string.val, e.val.string.len));
		}
	}

	/* who the client says it is: checked against the context per operation */
	op->tenant_id = identity_text(i, c, "tenantId");
	op->practice_id = identity_text(i, c, "practiceId");
	op->user_id = identity_text(i, c, "userId");
}

/* Reads the client id from the context or the payload; SS410 when none or they disagree. */
static char *
resolve_client_id(PushBatch *b, Jsonb *payload)
{
	static const char *const names[] = {"clientId", "deviceId"};
	char	   *from_payload = NULL;
	const char *from_name = NULL;

	for (int k = 0; k < 2; k++)
	{
		JsonbValue *v = get_key(&payload->root, names[k]);
		char	   *s;

		if (v == NULL || v->type == jbvNull)
			continue;
		if (v->type != jbvString && v->type != jbvNumeric)
			ereport(ERROR,
					(errcode(ERRCODE_SS_PUSH_INVALID_FIELD),
					 errmsg("invalid push: %s must be a string or a number, not %s",
							names[k], json_type_name(v)),
					 errdetail("The whole push was refused and nothing was written.")));
		s = sync_jsonb_scalar_text(v);
		if (s[0] == '\0' || strlen(s) > PUSH_ID_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_SS_PUSH_INVALID_FIELD),
					 errmsg("invalid push: %s must be 1 to %d characters long", names[k], PUSH_ID_MAX),
					 errdetail("The whole push was refused and nothing was written.")));
		if (from_payload != NULL && strcmp(from_payload, s) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_SS_PUSH_CLIENT_ID),
					 errmsg("invalid push: clientId \"%s\" and deviceId \"%s\" disagree", from_payload, s),
					 errdetail("The client id keys the ledger and the id map, so a push names one client.")));
		from_payload = s;
		from_name = names[k];
	}

	if (b->ctx.client_id != NULL)
	{
		if (from_payload != NULL && strcmp(from_payload, b->ctx.client_id) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_SS_PUSH_CLIENT_ID),
					 errmsg("invalid push: %s \"%s\" disagrees with the request context's client \"%s\"",
							from_name, from_payload, b->ctx.client_id),
					 errdetail("The whole push was refused and nothing was written.")));
		return b->ctx.client_id;
	}
	if (from_payload == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_SS_PUSH_CLIENT_ID),
				 errmsg("invalid push: no client id"),
				 errdetail("Operation ids are per client, so the ledger needs the client (device) id."),
				 errhint("Send a \"client_id\" claim, SET smartsync.client_id, or put \"clientId\" in the payload.")));
	return from_payload;
}

/* Loads the entity registry. */
static void
load_entities(PushBatch *b)
{
	static SPIPlanPtr plan = NULL;
	int			rc;

	if (plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare("SELECT entity_type, table_name::text, pk_column::text, "
									"practice_column::text, default_strategy, sort_order, "
									"reference_fields, field_classes "
									"FROM smartsync.entity_types ORDER BY entity_type", 0, NULL);

		if (p == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		if (SPI_keepplan(p) != 0)
			elog(ERROR, "SPI_keepplan failed");
		plan = p;
	}
	rc = push_exec(plan, NULL, NULL, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading smartsync.entity_types failed: %s", SPI_result_code_string(rc));

	b->nentities = SPI_processed;
	b->entities = palloc0(sizeof(PushEntity) * Max(b->nentities, 1));
	for (int k = 0; k < b->nentities; k++)
	{
		HeapTuple	tup = SPI_tuptable->vals[k];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		PushEntity *e = &b->entities[k];
		bool		isnull;

		e->entity_type = SPI_getvalue(tup, desc, 1);
		e->table_name = SPI_getvalue(tup, desc, 2);
		e->pk_column = SPI_getvalue(tup, desc, 3);
		e->practice_column = SPI_getvalue(tup, desc, 4);
		e->strategy = SPI_getvalue(tup, desc, 5);
		e->level = DatumGetInt32(SPI_getbinval(tup, desc, 6, &isnull));
		e->reference_fields = DatumGetJsonbPCopy(SPI_getbinval(tup, desc, 7, &isnull));
		e->field_classes = DatumGetJsonbPCopy(SPI_getbinval(tup, desc, 8, &isnull));
		e->practice_index = -1;
	}
	SPI_freetuptable(SPI_tuptable);
}

/* Collects every temporary id the batch names (entity ids and top-level data strings). */
static List *
collect_temp_ids(PushBatch *b)
{
	List	   *ids = NIL;

	for (int i = 0; i < b->nops; i++)
	{
		PushOp	   *op = &b->ops[i];

		if (op->temp_entity)
			ids = lappend(ids, op->entity_id);
		if (op->data != NULL)
		{
			JsonbIterator *it = JsonbIteratorInit(&op->data->root);
			JsonbValue	v;
			JsonbIteratorToken tok;

			while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
			{
				if (tok == WJB_VALUE && v.type == jbvString &&
					v.val.string.len <= PUSH_ID_MAX &&
					push_is_temp(b, v.val.string.val, v.val.string.len))
					ids = lappend(ids, pnstrdup(v.val.string.val, v.val.string.len));
			}
		}
	}
	return ids;
}

/* --- ordering ----------------------------------------------------------- */

/*
 * Processing order: creates and updates parents first (creates before
 * updates on the same level), then deletes children first; then priority
 * (higher first), client timestamp (older first, none last), position.
 */
static int
op_order_cmp(const void *pa, const void *pb)
{
	const PushOp *a = *(const PushOp *const *) pa;
	const PushOp *b = *(const PushOp *const *) pb;
	int			da = (a->kind == PUSH_DELETE);
	int			db = (b->kind == PUSH_DELETE);

	if (da != db)
		return da - db;
	if (a->entity->level != b->entity->level)
		return da ? b->entity->level - a->entity->level : a->entity->level - b->entity->level;
	if (a->kind != b->kind)
		return (int) a->kind - (int) b->kind;
	if (a->priority != b->priority)
		return a->priority > b->priority ? -1 : 1;
	if (a->has_ts != b->has_ts)
		return a->has_ts ? -1 : 1;
	if (a->has_ts && a->ts != b->ts)
		return a->ts < b->ts ? -1 : 1;
	return a->index - b->index;
}

/* --- processing --------------------------------------------------------- */

/* True for the SQLSTATEs of transient failures: worth retrying, not recorded. */
static bool
retryable_error(int sqlerrcode)
{
	switch (sqlerrcode)
	{
		case ERRCODE_T_R_SERIALIZATION_FAILURE:
		case ERRCODE_T_R_DEADLOCK_DETECTED:
		case ERRCODE_LOCK_NOT_AVAILABLE:
		case ERRCODE_OBJECT_IN_USE:
			return true;
		default:
			break;
	}
	switch (ERRCODE_TO_CATEGORY(sqlerrcode))
	{
		case ERRCODE_INSUFFICIENT_RESOURCES:
		case ERRCODE_SYSTEM_ERROR:
		case ERRCODE_INTERNAL_ERROR:
			return true;
		default:
			return false;
	}
}

/* Records an error as op's result (in b->cxt); retryable -1 classifies the SQLSTATE. */
void
push_fail_op(PushBatch *b, PushOp *op, int sqlerrcode, const char *message, const char *detail,
		int retryable)
{
	MemoryContext old = MemoryContextSwitchTo(b->opcxt);
	JsonbParseState *ps = NULL;
	JsonbValue *res;

	op->outcome = PUSH_FAILED;
	op->retryable = retryable >= 0 ? (retryable != 0) : retryable_error(sqlerrcode);
	op->error_code = MemoryContextStrdup(b->cxt, unpack_sql_state(sqlerrcode));

	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	push_key(&ps, "operationId");
	pushJsonbValue(&ps, WJB_VALUE, &op->opid_value);
	push_key(&ps, "success");
	push_bool(&ps, false);
	push_key(&ps, "operation");
	push_str(&ps, WJB_VALUE, op->kind == PUSH_CREATE ? "create" :
			 op->kind == PUSH_UPDATE ? "update" : "delete");
	push_key(&ps, "entityType");
	push_str(&ps, WJB_VALUE, op->entity->entity_type);
	if (op->has_entity_id)
	{
		push_key(&ps, "entityId");
		pushJsonbValue(&ps, WJB_VALUE, &op->entity_id_value);
	}
	push_key(&ps, "error");
	push_str(&ps, WJB_VALUE, message ? message : "unknown error");
	if (detail != NULL)
	{
		push_key(&ps, "detail");
		push_str(&ps, WJB_VALUE, detail);
	}
	push_key(&ps, "code");
	push_str(&ps, WJB_VALUE, op->error_code);
	push_key(&ps, "retryable");
	push_bool(&ps, op->retryable);
	res = pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
	op->result = push_copy_jsonb(b->cxt, JsonbValueToJsonb(res));
	MemoryContextSwitchTo(old);
}

/* Applies op in a subtransaction of its own; an error becomes its result. */
static void
apply_in_subxact(PushBatch *b, PushOp *op)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(b->opcxt);
	PG_TRY();
	{
		push_apply_op(b, op);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(b->cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;

		/* a cancel or statement timeout stops the whole push */
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
			ReThrowError(edata);
		push_fail_op(b, op, edata->sqlerrcode, edata->message, edata->detail, -1);
		FreeErrorData(edata);
	}
	PG_END_TRY();
}

/* Marks op as not applied because the atomic batch was rolled back (SS427). */
static void
abort_op(PushBatch *b, PushOp *op, PushOp *culprit)
{
	char		detail[PUSH_ID_MAX + 128];

	snprintf(detail, sizeof(detail),
			 "Operation \"%s\" of the atomic push did not apply, so none of its operations was applied.",
			 culprit->opid);
	push_fail_op(b, op, ERRCODE_SS_PUSH_ATOMIC_ABORTED,
			"not applied: the atomic push was rolled back", detail, 1);
}

/* Creates the batch's table of temporary ids and loads the id map's entries for them. */
static void
load_temps(PushBatch *b)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = PUSH_ID_MAX + 1;
	ctl.entrysize = sizeof(PushTemp);
	ctl.hcxt = b->cxt;
	b->temps = hash_create("smartsync push temporary ids", 64, &ctl,
						   HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	push_idmap_prefetch(b, b->temp_ids);
}

/* Forgets the outcome of every operation of a rolled-back run. */
static void
reset_batch(PushBatch *b)
{
	for (int i = 0; i < b->nops; i++)
	{
		PushOp	   *op = &b->ops[i];

		if (!op->claimed)
			continue;
		op->outcome = PUSH_PENDING;
		op->result = NULL;
		op->retryable = false;
		op->error_code = NULL;
		op->real_id = NULL;
		op->has_new_version = false;
		op->conflict_id = 0;
	}
	hash_destroy(b->temps);
	load_temps(b);
}

/*
 * Applies every operation this push claimed, in order, inside one
 * subtransaction.  On an error the subtransaction is rolled back and the
 * error returned, *culprit the operation that raised it.  When stop_on_conflict
 * (atomic), an unresolved conflict rolls back too and is the culprit.
 */
static ErrorData *
apply_batch_once(PushBatch *b, bool stop_on_conflict, PushOp **culprit)
{
	bool		runs = !stop_on_conflict;
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	PushOp	   *volatile current = NULL;
	PushOp	   *volatile conflicted = NULL;
	ErrorData  *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(b->opcxt);
	PG_TRY();
	{
		for (int k = 0; k < b->nops; k++)
		{
			PushOp	   *op = b->order[k];
			int			m = k + 1;

			if (!op->claimed)
				continue;
			current = op;
			MemoryContextReset(b->opcxt);

			/* a run of creates or updates of one entity type: set-based */
			if (runs && op->kind != PUSH_DELETE)
				while (m < b->nops && b->order[m]->claimed &&
					   b->order[m]->entity == op->entity && b->order[m]->kind == op->kind)
					m++;
			if (m - k >= 2)
			{
				push_apply_run(b, &b->order[k], m - k);
				k = m - 1;
				continue;
			}
			push_apply_op(b, op);
			if (stop_on_conflict && op->outcome == PUSH_CONFLICT)
			{
				conflicted = op;
				break;
			}
			CHECK_FOR_INTERRUPTS();
		}
		current = NULL;
		MemoryContextReset(b->opcxt);
		if (conflicted == NULL)
			ReleaseCurrentSubTransaction();
		else
			RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *e;

		MemoryContextSwitchTo(b->cxt);
		e = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		if (current == NULL || e->sqlerrcode == ERRCODE_QUERY_CANCELED)
			ReThrowError(e);
		edata = e;
	}
	PG_END_TRY();
	*culprit = edata ? current : conflicted;
	return edata;
}

/*
 * Processes the batch, one failing operation not undoing the others: first
 * all operations in one subtransaction (the common case: nothing fails);
 * when one raises, everything is rolled back and applied again with a
 * subtransaction per operation, so the failing one is reported alone.
 */
static void
process_each(PushBatch *b)
{
	PushOp	   *culprit;
	ErrorData  *edata = apply_batch_once(b, false, &culprit);

	if (edata != NULL)
	{
		FreeErrorData(edata);
		reset_batch(b);
		for (int k = 0; k < b->nops; k++)
		{
			PushOp	   *op = b->order[k];

			if (!op->claimed)
				continue;
			MemoryContextReset(b->opcxt);
			apply_in_subxact(b, op);
			CHECK_FOR_INTERRUPTS();
		}
		MemoryContextReset(b->opcxt);
	}
	push_ledger_record(b);
	push_idmap_record(b);
}

/*
 * Processes the batch all-or-nothing: the first error or unresolved conflict
 * rolls everything back; nothing is applied or recorded, and the response
 * names the operation that did not apply.
 */
static void
process_atomic(PushBatch *b)
{
	PushOp	   *culprit = NULL;
	ErrorData  *edata = apply_batch_once(b, true, &culprit);

	if (culprit == NULL)
	{
		push_ledger_record(b);
		push_idmap_record(b);
		return;
	}
	if (edata != NULL)
	{
		push_fail_op(b, culprit, edata->sqlerrcode, edata->message, edata->detail, -1);
		FreeErrorData(edata);
	}
	for (int k = 0; k < b->nops; k++)
	{
		PushOp	   *op = &b->ops[k];

		if (op->outcome == PUSH_REPLAYED)
			continue;
		op->claimed = false;
		if (op != culprit)
			abort_op(b, op, culprit);
	}
	MemoryContextReset(b->opcxt);
}

/* --- response ----------------------------------------------------------- */

/* Reads a boolean field of a stored result. */
static bool
result_flag(Jsonb *result, const char *key)
{
	JsonbValue *v = get_key(&result->root, key);

	return v != NULL && v->type == jbvBool && v->val.boolean;
}

/* Builds the response object. */
static Jsonb *
build_response(PushBatch *b)
{
	JsonbParseState *ps = NULL;
	JsonbValue *res;
	int			processed = 0,
				failed = 0,
				conflicts = 0,
				resolved = 0,
				replayed = 0;

	for (int i = 0; i < b->nops; i++)
	{
		PushOp	   *op = &b->ops[i];

		if (op->outcome == PUSH_REPLAYED)
			replayed++;
		if (result_flag(op->result, "success"))
		{
			processed++;
			if (get_key(&op->result->root, "resolution") != NULL)
				resolved++;
		}
		else if (result_flag(op->result, "conflict"))
			conflicts++;
		else
			failed++;
	}

	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	push_key(&ps, "success");
	push_bool(&ps, failed == 0 && conflicts == 0);
	push_key(&ps, "processed");
	push_int64(&ps, processed);
	push_key(&ps, "failed");
	push_int64(&ps, failed);
	push_key(&ps, "conflicts");
	push_int64(&ps, conflicts);
	push_key(&ps, "resolved");
	push_int64(&ps, resolved);
	push_key(&ps, "replayed");
	push_int64(&ps, replayed);
	push_key(&ps, "clientId");
	push_str(&ps, WJB_VALUE, b->client_id);
	if (b->atomic)
	{
		push_key(&ps, "atomic");
		push_bool(&ps, true);
	}
	push_key(&ps, "results");
	pushJsonbValue(&ps, WJB_BEGIN_ARRAY, NULL);
	for (int i = 0; i < b->nops; i++)
		push_jsonb(&ps, WJB_ELEM, b->ops[i].result);
	pushJsonbValue(&ps, WJB_END_ARRAY, NULL);
	res = pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

/*
 * Makes the push's client id visible to capture (and anything reading the
 * context) for the rest of the call, when it came from the payload; returns
 * the GUC nest level to restore, or -1.
 */
static int
publish_client_id(PushBatch *b)
{
	int			nest;

	if (b->ctx.client_id != NULL)
		return -1;
	nest = NewGUCNestLevel();
	if (strcmp(b->ctx.source, "jwt") == 0)
	{
		const char *claims = GetConfigOption("request.jwt.claims", true, false);
		Jsonb	   *cj = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(claims)));
		JsonbParseState *ps = NULL;
		JsonbValue *res;
		Jsonb	   *merged;

		pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
		push_key(&ps, "client_id");
		push_str(&ps, WJB_VALUE, b->client_id);
		res = pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
		merged = DatumGetJsonbP(DirectFunctionCall2(jsonb_concat, JsonbPGetDatum(cj),
													JsonbPGetDatum(JsonbValueToJsonb(res))));
		(void) set_config_option("request.jwt.claims",
								 JsonbToCString(NULL, &merged->root, VARSIZE(merged)),
								 superuser() ? PGC_SUSET : PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	}
	else
		(void) set_config_option("smartsync.client_id", b->client_id,
								 superuser() ? PGC_SUSET : PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	return nest;
}

/* --- entry point -------------------------------------------------------- */

/*
 * smartsync.sync_push(payload jsonb) RETURNS jsonb: applies a batch of offline
 * operations exactly once; see the README for the contract.
 */
Datum
smartsync_sync_push(PG_FUNCTION_ARGS)
{
	MemoryContext callcxt = CurrentMemoryContext;
	Jsonb	   *payload;
	Jsonb	   *response;
	PushBatch  *b;
	JsonbValue *v;
	JsonbContainer *opsc;
	int			limit;
	int			nest;
	HASHCTL		ctl;
	HTAB	   *seen;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_SS_PUSH_NOT_AN_OBJECT),
				 errmsg("invalid push: the payload is null"),
				 errdetail("A push is a JSON object {\"operations\": [...]}.")));
	payload = PG_GETARG_JSONB_P(0);
	if (!JB_ROOT_IS_OBJECT(payload) || JB_ROOT_IS_SCALAR(payload))
		ereport(ERROR,
				(errcode(ERRCODE_SS_PUSH_NOT_AN_OBJECT),
				 errmsg("invalid push: the payload must be a JSON object"),
				 errdetail("A push is a JSON object {\"operations\": [...]}.")));

	b = palloc0(sizeof(PushBatch));
	b->cxt = AllocSetContextCreate(callcxt, "smartsync push", ALLOCSET_DEFAULT_SIZES);
	b->opcxt = AllocSetContextCreate(b->cxt, "smartsync push operation", ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(b->cxt);

	/* context: tenant (required), practice, user, client, permissions */
	sync_context_read(&b->ctx);
	sync_context_require_tenant(&b->ctx);
	b->schema = sync_tenant_schema(b->ctx.tenant_id);
	b->qschema = pstrdup(quote_identifier(b->schema));
	b->temp_prefix = smartsync_temp_id_prefix ? smartsync_temp_id_prefix : "";
	b->temp_prefix_len = strlen(b->temp_prefix);

	/* the payload's top level */
	v = get_key(&payload->root, "operations");
	if (v == NULL || !(v->type == jbvBinary && JsonContainerIsArray(v->val.binary.data)))
		ereport(ERROR,
				(errcode(ERRCODE_SS_PUSH_NO_OPERATIONS),
				 errmsg("invalid push: \"operations\" must be an array, not %s",
						v == NULL ? "absent" : json_type_name(v)),
				 errdetail("A push is a JSON object {\"operations\": [...]}.")));
	opsc = v->val.binary.data;
	b->nops = JsonContainerSize(opsc);
	limit = Min(smartsync_batch_size, smartsync_max_batch_size);
	if (b->nops > limit)
		ereport(ERROR,
				(errcode(ERRCODE_SS_PUSH_BATCH_TOO_LARGE),
				 errmsg("invalid push: %d operations, more than the batch size %d", b->nops, limit),
				 errdetail("smartsync.batch_size is %d and smartsync.max_batch_size is %d.",
						   smartsync_batch_size, smartsync_max_batch_size),
				 errhint("Split the operations into batches of at most %d.", limit)));
	v = get_key(&payload->root, "clientTimestamp");
	if (v != NULL && v->type != jbvNull)
		(void) read_timestamp("clientTimestamp", v);
	v = get_key(&payload->root, "atomic");
	if (v != NULL && v->type != jbvNull)
	{
		if (v->type != jbvBool)
			ereport(ERROR,
					(errcode(ERRCODE_SS_PUSH_INVALID_FIELD),
					 errmsg("invalid push: atomic must be a boolean, not %s", json_type_name(v)),
					 errdetail("The whole push was refused and nothing was written.")));
		b->atomic = v->val.boolean;
	}
	b->client_id = resolve_client_id(b, payload);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	MemoryContextSwitchTo(b->cxt);
	load_entities(b);

	/* every operation, and no operation id twice */
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = PUSH_ID_MAX + 1;
	ctl.entrysize = PUSH_ID_MAX + 1;
	ctl.hcxt = b->cxt;
	seen = hash_create("smartsync push operation ids", Max(b->nops, 16), &ctl,
					   HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	b->ops = palloc0(sizeof(PushOp) * Max(b->nops, 1));
	b->order = palloc(sizeof(PushOp *) * Max(b->nops, 1));
	for (int i = 0; i < b->nops; i++)
	{
		JsonbValue *elem = getIthJsonbValueFromContainer(opsc, i);
		bool		found;

		validate_op(b, i, elem, &b->ops[i]);
		hash_search(seen, b->ops[i].opid, HASH_ENTER, &found);
		if (found)
			ereport(ERROR,
					(errcode(ERRCODE_SS_PUSH_DUPLICATE_ID),
					 errmsg("invalid push: operation id \"%s\" appears twice", b->ops[i].opid),
					 errdetail("operations[%d] repeats an earlier operation's id; the whole push was refused and nothing was written.", i)));
		b->order[i] = &b->ops[i];
	}
	if (b->nops > 1)
		qsort(b->order, b->nops, sizeof(PushOp *), op_order_cmp);

	nest = publish_client_id(b);
	if (b->nops > 0)
	{
		/* one push of this client at a time; what the ledger has is a replay */
		push_ledger_lock(b);
		push_ledger_load(b);
		/* temporary ids: created in this batch or mapped by an earlier one */
		b->temp_ids = collect_temp_ids(b);
		load_temps(b);
		if (b->atomic)
			process_atomic(b);
		else
			process_each(b);
	}

	MemoryContextSwitchTo(callcxt);
	response = build_response(b);
	if (nest >= 0)
		AtEOXact_GUC(true, nest);
	SPI_finish();
	MemoryContextSwitchTo(callcxt);
	MemoryContextDelete(b->cxt);
	PG_RETURN_JSONB_P(response);
}
