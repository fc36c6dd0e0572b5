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
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "access/detoast.h"
#include "common/hashfn.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
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
#include "jsonbwrite.h"
#include "citus.h"
#include "push.h"

PG_FUNCTION_INFO_V1(smartsync_sync_push);

/* Longest error message or detail a result carries (characters): a value it quotes is cut. */
#define PUSH_MESSAGE_CHARS	200

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

/* Chunks of operations freed between two returns of their memory to the system (build_response). */
#define PUSH_TRIM_CHUNKS	8

/* Bytes of a block of push_strdup's arena. */
#define PUSH_ARENA_BLOCK	(64 * 1024)

/*
 * A copy of s kept until the end of the push (in b->cxt), packed into
 * blocks: the ids a large push keeps per operation cost their bytes, not a
 * chunk header and a power-of-two chunk each.
 */
char *
push_strdup(PushBatch *b, const char *s)
{
	Size		len = strlen(s) + 1;
	char	   *r;

	if (len > PUSH_ARENA_BLOCK / 8)
		return MemoryContextStrdup(b->cxt, s);
	if (len > b->arena_left)
	{
		b->arena = MemoryContextAlloc(b->cxt, PUSH_ARENA_BLOCK);
		b->arena_left = PUSH_ARENA_BLOCK;
	}
	r = b->arena;
	memcpy(r, s, len);
	b->arena += len;
	b->arena_left -= len;
	return r;
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

/* --- string-keyed hash tables ------------------------------------------- */

/* Hashes the string a key points to. */
static uint32
string_ptr_hash(const void *key, Size keysize)
{
	const char *s = *(const char *const *) key;

	return hash_bytes((const unsigned char *) s, strlen(s));
}

/* Compares the strings two keys point to (0: equal). */
static int
string_ptr_match(const void *a, const void *b, Size keysize)
{
	return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/*
 * A hash table in cxt whose key, the first field of an entry, is a pointer to
 * a string: an entry costs a pointer, not a buffer of the longest id, and the
 * string must live as long as the table.
 */
HTAB *
push_string_hash(const char *name, long nelem, Size entrysize, MemoryContext cxt)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(char *);
	ctl.entrysize = Max(entrysize, sizeof(char *));
	ctl.hash = string_ptr_hash;
	ctl.match = string_ptr_match;
	ctl.hcxt = cxt;
	return hash_create(name, Max(nelem, 16), &ctl,
					   HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
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

/* Looks up key in an object container into buf (NULL when absent): nothing is allocated. */
static inline JsonbValue *
get_key(JsonbContainer *c, const char *key, JsonbValue *buf)
{
	return getKeyJsonValueFromContainer(c, key, strlen(key), buf);
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

/*
 * Reads an id (a string, or a number) as text of 1 to PUSH_ID_MAX characters;
 * SS406 otherwise.  A number is written in canonical form, so 1, 1.0 and 1e0
 * are the same id; with integer_only (operation ids) it must be an integer.
 */
static char *
id_text(int i, const char *field, JsonbValue *v, bool integer_only)
{
	char	   *s;

	if (v->type != jbvString && v->type != jbvNumeric)
		wrong_type(i, field, "a string or a number", v);
	if (v->type == jbvNumeric)
	{
		if (numeric_is_nan(v->val.numeric) || numeric_is_inf(v->val.numeric))
			wrong_type(i, field, "a string or a finite number", v);
		s = sync_numeric_canonical(v->val.numeric);
		if (integer_only && strchr(s, '.') != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_SS_PUSH_INVALID_FIELD),
					 errmsg("invalid push: operations[%d].%s must be a string or an integer, not %s",
							i, field, sync_clip_str(s)),
					 errdetail("An operation id that is a number is an integer (1, 1.0 and 1e0 are the same id); the whole push was refused and nothing was written.")));
	}
	else
	{
		if (v->val.string.len > PUSH_ID_MAX_BYTES)
			s = NULL;			/* too long whatever its characters */
		else
			s = pnstrdup(v->val.string.val, v->val.string.len);
	}
	if (s == NULL || s[0] == '\0' || sync_char_length(s, strlen(s)) > PUSH_ID_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_SS_PUSH_INVALID_FIELD),
				 errmsg("invalid push: operations[%d].%s must be 1 to %d characters long",
						i, field, PUSH_ID_MAX),
				 errdetail("The whole push was refused and nothing was written.")));
	return s;
}

/*
 * Reads a client timestamp with the one strict parser (context.c): integer
 * epoch milliseconds or ISO 8601 with date, time and offset.  where names the
 * field for SS406.
 */
static TimestampTz
read_timestamp(const char *where, JsonbValue *v)
{
	TimestampTz ts;

	if (sync_timestamp_from_json(v, &ts))
		return ts;
	ereport(ERROR,
			(errcode(ERRCODE_SS_PUSH_INVALID_FIELD),
			 v->type == jbvString ?
			 errmsg("invalid push: %s \"%s\" is not a timestamp", where,
					sync_clip(v->val.string.val, v->val.string.len)) :
			 errmsg("invalid push: %s must be a timestamp, not %s", where, json_type_name(v)),
			 errdetail("A timestamp is an integer of milliseconds since 1970-01-01 UTC, or ISO 8601 with date, time and offset (2024-11-10T12:00:00Z), from 1970 to 9999; the whole push was refused and nothing was written.")));
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
	s = sync_numeric_canonical(v->val.numeric);
	if (strlen(s) > 20)
		return false;
	errno = 0;
	*result = strtoll(s, &end, 10);
	return errno == 0 && *end == '\0' && end != s;
}

/* Reads an optional scalar identity field (tenantId, ...) as text; NULL when absent or null. */
static char *
identity_text(int i, JsonbContainer *c, const char *field)
{
	JsonbValue	buf;
	JsonbValue *v = get_key(c, field, &buf);

	if (v == NULL || v->type == jbvNull)
		return NULL;
	if (v->type != jbvString && v->type != jbvNumeric)
		wrong_type(i, field, "a string or a number", v);
	if (strcmp(field, "practiceId") == 0)
		return sync_canonical_id_value(v);
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
				 errmsg("invalid push: operations[%d].priority \"%s\" is not a priority",
						i, sync_clip(v->val.string.val, v->val.string.len)),
				 errdetail("A priority is critical, high, normal, low or an integer; the whole push was refused and nothing was written.")));
	}
	if (read_int64(v, &n) && n >= -1000000 && n <= 1000000)
		return (int) n;
	wrong_type(i, "priority", "critical, high, normal, low or an integer", v);
	return 1;					/* keep compiler quiet */
}

/* Notes a refusal of op (the first one found wins); applied after the ledger is read. */
static void
refuse(PushOp *op, int code, char *message, char *detail)
{
	if (op->refusal != 0)
		return;
	op->refusal = code;
	op->refusal_message = message;
	op->refusal_detail = detail;
}

/* The bytes a JSON value takes (a string's, a number's, a container's). */
static Size
value_size(JsonbValue *v)
{
	switch (v->type)
	{
		case jbvString:
			return v->val.string.len;
		case jbvNumeric:
			return VARSIZE_ANY(v->val.numeric);
		case jbvBinary:
			return v->val.binary.len;
		default:
			return 1;
	}
}

/*
 * Checks the sizes in an operation's data against the superuser's limits
 * (smartsync.max_field_name_length, smartsync.max_value_size): a field name
 * too long refuses the operation with SS430, a value too large with SS429.
 * Reads the container in place: nothing is copied.
 */
static void
check_data_sizes(PushOp *op)
{
	JsonbIterator *it = JsonbIteratorInit(op->data);
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;
	int			keylen = 0;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			key = v.val.string.val;
			keylen = v.val.string.len;
			if (keylen > smartsync_max_field_name_length &&
				(keylen > smartsync_max_field_name_length * 4 ||
				 sync_char_length(key, keylen) > smartsync_max_field_name_length))
				refuse(op, ERRCODE_SS_PUSH_FIELD_NAME_TOO_LONG,
					   psprintf("field name \"%s\" is longer than %d characters",
								sync_clip(key, keylen), smartsync_max_field_name_length),
					   psprintf("smartsync.max_field_name_length is %d; nothing was applied.",
								smartsync_max_field_name_length));
		}
		else if (tok == WJB_VALUE && value_size(&v) > (Size) smartsync_max_value_size)
			refuse(op, ERRCODE_SS_PUSH_VALUE_TOO_LARGE,
				   psprintf("the value of field \"%s\" is %zu bytes, more than %d",
							sync_clip(key, keylen), value_size(&v), smartsync_max_value_size),
				   psprintf("smartsync.max_value_size is %d bytes; nothing was applied.",
							smartsync_max_value_size));
	}
}

static void server_refusal(PushBatch *b, PushOp *op, const char *tenant_id, const char *practice_id,
						   const char *user_id, List *permissions);

/* Validates operations[i] into op; raises SS404..SS411. */
static void
validate_op(PushBatch *b, int i, JsonbValue *elem, PushOp *op)
{
	List	   *permissions = NIL;	/* required permissions (char *) */
	char	   *tenant_id;		/* as sent, NULL when absent */
	char	   *practice_id;	/* canonical (1, "1", 1.0 are "1") */
	char	   *user_id;
	JsonbContainer *c;
	JsonbValue	vbuf;
	JsonbValue	dvbuf;
	JsonbValue *v;

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
	op->request = c;
	op->request_len = elem->val.binary.len;

	/* id */
	v = get_key(c, "id", &vbuf);
	if (v == NULL || v->type == jbvNull)
		missing_field(i, "id", "Every operation carries its client-side id, the key of exactly-once delivery.");
	op->opid = id_text(i, "id", v, true);

	/* operation */
	v = get_key(c, "operation", &vbuf);
	if (v == NULL || v->type == jbvNull)
		missing_field(i, "operation", "An operation is create, update or delete.");
	if (v->type != jbvString)
		wrong_type(i, "operation", "a string", v);
	if (v->val.string.len == 6 && memcmp(v->val.string.val, "create", 6) == 0)
		op->kind = PUSH_CREATE;
	else if (v->val.string.len == 6 && memcmp(v->val.string.val, "update", 6) == 0)
		op->kind = PUSH_UPDATE;
	else if (v->val.string.len == 6 && memcmp(v->val.string.val, "delete", 6) == 0)
		op->kind = PUSH_DELETE;
	else
		ereport(ERROR,
				(errcode(ERRCODE_SS_PUSH_UNKNOWN_OPERATION),
				 errmsg("invalid push: operations[%d].operation \"%s\" is not create, update or delete",
						i, sync_clip(v->val.string.val, v->val.string.len)),
				 errdetail("The whole push was refused and nothing was written.")));

	/* entityType */
	v = get_key(c, "entityType", &vbuf);
	if (v == NULL || v->type == jbvNull)
		missing_field(i, "entityType", "Every operation names the entity type it changes.");
	if (v->type != jbvString)
		wrong_type(i, "entityType", "a string", v);
	op->entity = push_find_entity(b, v->val.string.val, v->val.string.len);
	if (op->entity == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_SS_PUSH_UNKNOWN_ENTITY_TYPE),
				 errmsg("invalid push: operations[%d].entityType \"%s\" is not a registered entity type",
						i, sync_clip(v->val.string.val, v->val.string.len)),
				 errdetail("The whole push was refused and nothing was written."),
				 errhint("smartsync.entity_types lists the registered types.")));

	/* entityId */
	v = get_key(c, "entityId", &vbuf);
	if (v != NULL && v->type != jbvNull)
	{
		op->entity_id = id_text(i, "entityId", v, false);
		op->has_entity_id = true;
		op->temp_entity = (v->type == jbvString &&
						   push_is_temp(b, v->val.string.val, v->val.string.len));
	}
	else if (op->kind != PUSH_CREATE)
		missing_field(i, "entityId", "An update or a delete names the entity it changes.");

	/* data */
	v = get_key(c, "data", &vbuf);
	if (v != NULL && v->type != jbvNull)
	{
		if (!is_object(v))
			ereport(ERROR,
					(errcode(ERRCODE_SS_PUSH_DATA_NOT_OBJECT),
					 errmsg("invalid push: operations[%d].data must be an object, not %s",
							i, json_type_name(v)),
					 errdetail("data holds the entity's fields; the whole push was refused and nothing was written.")));
		op->data = v->val.binary.data;
		check_data_sizes(op);
	}
	else if (op->kind != PUSH_DELETE)
		missing_field(i, "data", "A create or an update carries the entity's fields in data.");

	/* timestamp: kept as sent for the ledger, used no later than the receive time */
	v = get_key(c, "timestamp", &vbuf);
	if (v != NULL && v->type != jbvNull)
	{
		char		where[64];

		snprintf(where, sizeof(where), "operations[%d].timestamp", i);
		op->sent_ts = read_timestamp(where, v);
		op->ts = Min(op->sent_ts, b->received_at);
		op->has_ts = true;
	}

	/* version: the server version the client last saw (else data.version) */
	v = get_key(c, "version", &vbuf);
	if ((v == NULL || v->type == jbvNull) && op->data != NULL)
	{
		JsonbValue *dv = get_key(op->data, "version", &dvbuf);
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
	else if (op->kind != PUSH_CREATE && !op->entity->timestamp_detection)
		refuse(op, ERRCODE_SS_PUSH_NO_BASE_VERSION,
			   psprintf("%s of %s \"%s\" without a base version", op->kind == PUSH_UPDATE ? "update" : "delete",
						op->entity->entity_type, sync_clip_str(op->entity_id)),
			   pstrdup("An update or a delete carries the version of the row the device last saw (\"version\"), so that the server can tell whether the row changed since; nothing was applied."));

	/* priority, maxRetries */
	v = get_key(c, "priority", &vbuf);
	if (v != NULL && v->type != jbvNull)
		op->priority = read_priority(i, v);
	v = get_key(c, "maxRetries", &vbuf);
	if (v != NULL && v->type != jbvNull)
	{
		int64		n;

		if (!read_int64(v, &n) || n < 0)
			wrong_type(i, "maxRetries", "a non-negative integer", v);
	}

	/* requiredPermissions: requirements the client adds to the server's own */
	v = get_key(c, "requiredPermissions", &vbuf);
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
			permissions = lappend(permissions, pnstrdup(e.val.string.val, e.val.string.len));
		}
	}

	/* who the client says it is: checked against the context per operation */
	tenant_id = identity_text(i, c, "tenantId");
	practice_id = identity_text(i, c, "practiceId");
	user_id = identity_text(i, c, "userId");

	/* what the server refuses comes before what validation noted (sizes, base version) */
	server_refusal(b, op, tenant_id, practice_id, user_id, permissions);
}

/*
 * Copies what validation found of op into the current memory context: the
 * rest of what validate_op allocated (in a context reset per operation) is
 * garbage, so validation's memory does not grow with the batch.
 */
static void
keep_op(PushBatch *b, PushOp *op)
{
#define KEEP(field) (op->field = op->field ? push_strdup(b, op->field) : NULL)
	KEEP(opid);
	KEEP(entity_id);
	KEEP(refusal_message);
	KEEP(refusal_detail);
#undef KEEP
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
		JsonbValue	vbuf;
		JsonbValue *v = get_key(&payload->root, names[k], &vbuf);
		char	   *s = NULL;
		const char *why;

		if (v == NULL || v->type == jbvNull)
			continue;
		if (v->type != jbvString && v->type != jbvNumeric)
			ereport(ERROR,
					(errcode(ERRCODE_SS_PUSH_INVALID_FIELD),
					 errmsg("invalid push: %s must be a string or a number, not %s",
							names[k], json_type_name(v)),
					 errdetail("The whole push was refused and nothing was written.")));
		if (v->type == jbvString && v->val.string.len > PUSH_ID_MAX_BYTES)
			why = psprintf("it is longer than %d characters", PUSH_ID_MAX);
		else
		{
			s = sync_jsonb_scalar_text(v);
			why = sync_client_id_problem(s, strlen(s));
		}
		if (why != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_SS_PUSH_INVALID_FIELD),
					 errmsg("invalid push: %s is not a client id: %s", names[k], why),
					 errdetail("A client id is 1 to %d characters without control characters, in a payload and in the claims alike; the whole push was refused and nothing was written.",
							   PUSH_ID_MAX)));
		if (from_payload != NULL && strcmp(from_payload, s) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_SS_PUSH_CLIENT_ID),
					 errmsg("invalid push: clientId \"%s\" and deviceId \"%s\" disagree",
							sync_clip_str(from_payload), sync_clip_str(s)),
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
							from_name, sync_clip_str(from_payload), sync_clip_str(b->ctx.client_id)),
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

/* Loads the entity registry (registry.c keeps a copy per backend). */
static void
load_entities(PushBatch *b)
{
	SyncEntityTypeRow *rows = sync_registry_entity_types(&b->nentities);

	b->entities = palloc0(sizeof(PushEntity) * Max(b->nentities, 1));
	for (int k = 0; k < b->nentities; k++)
	{
		PushEntity *e = &b->entities[k];

		e->entity_type = rows[k].entity_type;
		e->table_name = rows[k].table_name;
		e->pk_column = rows[k].pk_column;
		e->practice_column = rows[k].practice_column;
		e->strategy = rows[k].strategy;
		e->level = rows[k].sort_order;
		e->reference_fields = rows[k].reference_fields;
		e->field_classes = rows[k].field_classes;
		e->timestamp_detection = rows[k].timestamp_detection;
		e->practice_index = -1;
	}
}

/* Collects every temporary id the batch names (entity ids and top-level data strings). */
static List *
collect_temp_ids(PushBatch *b)
{
	List	   *ids = NIL;

	for (int i = 0; i < b->nops; i++)
	{
		PushOp	   *op = PUSH_OP(b, i);

		if (!op->claimed || op->refused)
			continue;
		if (op->temp_entity)
			ids = lappend(ids, op->entity_id);
		if (op->data != NULL)
		{
			JsonbIterator *it = JsonbIteratorInit(op->data);
			JsonbValue	v;
			JsonbIteratorToken tok;

			while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
			{
				if (tok == WJB_VALUE && v.type == jbvString &&
					v.val.string.len <= PUSH_ID_MAX_BYTES &&
					push_is_temp(b, v.val.string.val, v.val.string.len))
					ids = lappend(ids, pnstrdup(v.val.string.val, v.val.string.len));
			}
		}
	}
	return ids;
}

/* --- the server's checks of each operation ------------------------------ */

/* A refusal when the operation names a tenant, practice or user the context does not; NULL else. */
static char *
identity_problem(const char *field, const char *sent, const char *ctxval, const char *what,
				 char **detail)
{
	if (sent == NULL || (ctxval != NULL && strcmp(sent, ctxval) == 0))
		return NULL;
	*detail = ctxval == NULL ?
		psprintf("The request context names no %s; nothing was applied.", what) :
		psprintf("The request context's %s is \"%s\"; nothing was applied.", what, sync_clip_str(ctxval));
	return psprintf("the operation's %s \"%s\" is not the request context's", field, sync_clip_str(sent));
}

/*
 * What the server refuses of an operation, whatever the payload says: one
 * that names another tenant, practice or user (SS420); one whose write the
 * request context's permissions do not grant (SS421): every operation needs
 * "<entityType>:<create|update|delete>", and the payload's
 * requiredPermissions can only add to that.  Noted in op ahead of the
 * refusals validation noted (sizes, base version); refuse_operations applies
 * it after the ledger is read (a replay is not refused).
 */
static void
server_refusal(PushBatch *b, PushOp *op, const char *tenant_id, const char *practice_id,
			   const char *user_id, List *permissions)
{
	const char *action = op->kind == PUSH_CREATE ? "create" :
		op->kind == PUSH_UPDATE ? "update" : "delete";
	char	   *detail = NULL;
	char	   *msg = NULL;
	int			code = 0;
	ListCell   *lc;

	/* who the operation says it is, then what the context lets it write */
	if ((msg = identity_problem("tenantId", tenant_id, b->ctx.tenant_id, "tenant", &detail)) ||
		(msg = identity_problem("practiceId", practice_id, b->ctx.practice_id, "practice", &detail)) ||
		(msg = identity_problem("userId", user_id, b->ctx.user_id, "user", &detail)))
		code = ERRCODE_SS_PUSH_CONTEXT_MISMATCH;
	else if (!sync_context_may_write(&b->ctx, op->entity->entity_type, action))
	{
		code = ERRCODE_SS_PUSH_PERMISSION;
		msg = psprintf("permission \"%s:%s\" denied", op->entity->entity_type, action);
		detail = b->ctx.has_permissions ?
			pstrdup("Every operation needs the permission of its write, and the request context does not grant it; nothing was applied.") :
			pstrdup("Every operation needs the permission of its write, and the request context carries no permissions; nothing was applied.");
	}
	else if (!sync_context_trusted(&b->ctx))
	{
		foreach(lc, permissions)
		{
			const char *perm = (const char *) lfirst(lc);

			if (sync_context_has_permission(&b->ctx, perm))
				continue;
			code = ERRCODE_SS_PUSH_PERMISSION;
			msg = psprintf("permission \"%s\" denied", sync_clip_str(perm));
			detail = pstrdup("The operation requires it (requiredPermissions) and the request context does not grant it; nothing was applied.");
			break;
		}
	}
	if (code != 0)
	{
		op->refusal = code;
		op->refusal_message = msg;
		op->refusal_detail = detail;
	}
}

/*
 * Refuses, before anything is applied, every operation this push claimed
 * that validation or server_refusal found a refusal for (identity,
 * permissions, sizes, base version).  A refused operation is permanent
 * (retryable false): only its acknowledgement goes to the ledger.
 */
static void
refuse_operations(PushBatch *b)
{
	for (int i = 0; i < b->nops; i++)
	{
		PushOp	   *op = PUSH_OP(b, i);

		if (!op->claimed || op->refusal == 0)
			continue;
		op->refused = true;
		push_fail_op(b, op, op->refusal, op->refusal_message, op->refusal_detail, 0);
		op->refusal_message = op->refusal_detail = NULL;	/* in the result now */
	}
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

/* A message or detail of at most PUSH_MESSAGE_CHARS characters ("..." when cut). */
static const char *
clip_message(const char *m)
{
	int			len = strlen(m);
	int			keep;

	if (len <= PUSH_MESSAGE_CHARS)
		return m;
	keep = pg_mbcharcliplen(m, len, PUSH_MESSAGE_CHARS);
	if (keep >= len)
		return m;
	return psprintf("%.*s...", keep, m);
}

/* Records an error as op's result (in b->rescxt); retryable -1 classifies the SQLSTATE. */
void
push_fail_op(PushBatch *b, PushOp *op, int sqlerrcode, const char *message, const char *detail,
		int retryable)
{
	MemoryContext old = MemoryContextSwitchTo(b->opcxt);
	JsonbParseState *ps = NULL;
	JsonbValue *res;
	JsonbValue	idbuf;

	op->outcome = PUSH_FAILED;
	op->retryable = retryable >= 0 ? (retryable != 0) : retryable_error(sqlerrcode);
	op->error_code = MemoryContextStrdup(b->rescxt, unpack_sql_state(sqlerrcode));

	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	push_key(&ps, "operationId");
	pushJsonbValue(&ps, WJB_VALUE, push_op_field(op, "id", &idbuf));
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
		pushJsonbValue(&ps, WJB_VALUE, push_op_field(op, "entityId", &idbuf));
	}
	/* PostgreSQL's messages may quote a client value whole: keep a short prefix */
	push_key(&ps, "error");
	push_str(&ps, WJB_VALUE, message ? clip_message(message) : "unknown error");
	if (detail != NULL)
	{
		push_key(&ps, "detail");
		push_str(&ps, WJB_VALUE, clip_message(detail));
	}
	push_key(&ps, "code");
	push_str(&ps, WJB_VALUE, op->error_code);
	push_key(&ps, "retryable");
	push_bool(&ps, op->retryable);
	res = pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
	op->result = push_copy_jsonb(b->rescxt, JsonbValueToJsonb(res));
	op->lazy_result = false;
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
	char	   *detail = psprintf("Operation \"%s\" of the atomic push did not apply, so none of its operations was applied.",
								  sync_clip_str(culprit->opid));

	push_fail_op(b, op, ERRCODE_SS_PUSH_ATOMIC_ABORTED,
			"not applied: the atomic push was rolled back", detail, 1);
}

/* Creates the batch's table of temporary ids and loads the id map's entries for them. */
static void
load_temps(PushBatch *b)
{
	b->temps = push_string_hash("smartsync push temporary ids", list_length(b->temp_ids),
								sizeof(PushTemp), b->cxt);
	push_idmap_prefetch(b, b->temp_ids);
}

/* Forgets the outcome of every operation of a rolled-back run. */
static void
reset_batch(PushBatch *b)
{
	for (int i = 0; i < b->nops; i++)
	{
		PushOp	   *op = PUSH_OP(b, i);

		if (!op->claimed || op->refused)
			continue;
		op->outcome = PUSH_PENDING;
		op->result = NULL;
		op->lazy_result = false;
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

			if (!op->claimed || op->refused)
				continue;
			current = op;
			MemoryContextReset(b->opcxt);

			/* a run of creates or updates of one entity type: set-based */
			if (runs && op->kind != PUSH_DELETE)
				while (m < b->nops && b->order[m]->claimed && !b->order[m]->refused &&
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

			if (!op->claimed || op->refused)
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
	ErrorData  *edata = NULL;

	/* an operation refused before anything applied refuses the whole batch */
	for (int k = 0; k < b->nops && culprit == NULL; k++)
		if (PUSH_OP(b, k)->claimed && PUSH_OP(b, k)->refused)
			culprit = PUSH_OP(b, k);
	if (culprit == NULL)
		edata = apply_batch_once(b, true, &culprit);

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
		PushOp	   *op = PUSH_OP(b, k);

		if (op->outcome == PUSH_REPLAYED)
			continue;
		op->claimed = false;
		if (op != culprit && !op->refused)
			abort_op(b, op, culprit);
	}
	MemoryContextReset(b->opcxt);
}


/* --- response ----------------------------------------------------------- */

/* Reads a boolean field of a stored result. */
static bool
result_flag(Jsonb *result, const char *key)
{
	JsonbValue	buf;
	JsonbValue *v = get_key(&result->root, key, &buf);

	return v != NULL && v->type == jbvBool && v->val.boolean;
}

/*
 * Builds the response object, in jsonb's binary format directly: each
 * operation's result is copied in as it is stored, or written from the
 * operation (lazy_result), so the response costs its own size and no tree of
 * JsonbValues (jsonbwrite.c).  Frees the operations as it goes (the last use
 * of them): a large push does not hold them and its whole response at once.
 */
static Jsonb *
build_response(PushBatch *b)
{
	StringInfoData bufdata;
	StringInfo	buf = &bufdata;
	JbwCont		top;
	JbwCont		arr;
	MemoryContext scratch;
	Size		estimate = 256 + strlen(b->client_id);
	uint32		results;
	int			processed = 0,
				failed = 0,
				conflicts = 0,
				resolved = 0,
				replayed = 0;

	for (int i = 0; i < b->nops; i++)
	{
		PushOp	   *op = PUSH_OP(b, i);
		JsonbValue	vbuf;

		if (op->outcome == PUSH_REPLAYED)
			replayed++;
		if (op->lazy_result)
		{
			/* an upper bound: header, JEntries, keys, padding, three numbers, strings */
			processed++;
			estimate += 200 + strlen(op->opid) + strlen(op->entity->entity_type) +
				(op->temp_entity ? strlen(op->entity_id) : 0) +
				(op->real_id ? 2 * strlen(op->real_id) : 0);
			continue;
		}
		if (result_flag(op->result, "success"))
		{
			processed++;
			if (get_key(&op->result->root, "resolution", &vbuf) != NULL)
				resolved++;
		}
		else if (result_flag(op->result, "conflict"))
			conflicts++;
		else
			failed++;
		estimate += (op->result ? VARSIZE(op->result) : 0) + sizeof(JEntry) + 3;
	}

	jbw_init(buf, estimate);
	/* the keys in jsonb's order: shorter first, then bytewise */
	jbw_begin(buf, &top, true, b->atomic ? 9 : 8);
	if (b->atomic)
		jbw_entry(buf, &top, JBW_KEY(buf, "atomic"));
	jbw_entry(buf, &top, JBW_KEY(buf, "failed"));
	jbw_entry(buf, &top, JBW_KEY(buf, "results"));
	jbw_entry(buf, &top, JBW_KEY(buf, "success"));
	jbw_entry(buf, &top, JBW_KEY(buf, "clientId"));
	jbw_entry(buf, &top, JBW_KEY(buf, "replayed"));
	jbw_entry(buf, &top, JBW_KEY(buf, "resolved"));
	jbw_entry(buf, &top, JBW_KEY(buf, "conflicts"));
	jbw_entry(buf, &top, JBW_KEY(buf, "processed"));
	if (b->atomic)
		jbw_entry(buf, &top, jbw_bool(true));
	jbw_entry(buf, &top, jbw_int8(buf, failed));
	jbw_begin(buf, &arr, false, b->nops);
	scratch = AllocSetContextCreate(CurrentMemoryContext, "smartsync push response", ALLOCSET_SMALL_SIZES);
	for (int i = 0; i < b->nops; i++)
	{
		PushOp	   *op = PUSH_OP(b, i);

		if (op->lazy_result)
		{
			MemoryContext old = MemoryContextSwitchTo(scratch);

			jbw_entry(buf, &arr, push_write_applied(buf, op));
			MemoryContextSwitchTo(old);
			MemoryContextReset(scratch);
		}
		else
			jbw_entry(buf, &arr, jbw_document(buf, op->result));
		/* a chunk of operations written: it is not needed any more */
		if ((i & (PUSH_OP_CHUNK - 1)) == PUSH_OP_CHUNK - 1 || i == b->nops - 1)
		{
			int			c = i >> PUSH_OP_CHUNK_BITS;

			pfree(b->op_chunks[c]);
			b->op_chunks[c] = NULL;
#ifdef __GLIBC__
			/*
			 * The chunks are in the middle of malloc's heap, so free() keeps
			 * their pages: give them back every few chunks, so that the
			 * response grows into the memory the operations leave.
			 */
			if (c % PUSH_TRIM_CHUNKS == PUSH_TRIM_CHUNKS - 1)
				malloc_trim(0);
#endif
		}
	}
	MemoryContextDelete(scratch);
	results = jbw_end(buf, &arr);
	jbw_entry(buf, &top, results);
	jbw_entry(buf, &top, jbw_bool(failed == 0 && conflicts == 0));
	jbw_entry(buf, &top, jbw_string(buf, b->client_id, strlen(b->client_id)));
	jbw_entry(buf, &top, jbw_int8(buf, replayed));
	jbw_entry(buf, &top, jbw_int8(buf, resolved));
	jbw_entry(buf, &top, jbw_int8(buf, conflicts));
	jbw_entry(buf, &top, jbw_int8(buf, processed));
	return jbw_finish(buf);
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
	JsonbValue	vbuf;
	JsonbValue *v;
	JsonbIterator *it;
	MemoryContext scratch;
	JsonbContainer *opsc;
	int			limit;
	int			nest;
	Datum		routed;

	if (sync_citus_route(fcinfo, &routed))	/* Citus: push on the tenant's node */
		return routed;
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_SS_PUSH_NOT_AN_OBJECT),
				 errmsg("invalid push: the payload is null"),
				 errdetail("A push is a JSON object {\"operations\": [...]}.")));
	/* the size first, before the payload is even detoasted */
	if (toast_raw_datum_size(PG_GETARG_DATUM(0)) > (Size) smartsync_max_payload_size)
		ereport(ERROR,
				(errcode(ERRCODE_SS_PUSH_PAYLOAD_TOO_LARGE),
				 errmsg("invalid push: the payload is %zu bytes, more than %d",
						toast_raw_datum_size(PG_GETARG_DATUM(0)), smartsync_max_payload_size),
				 errdetail("smartsync.max_payload_size is %d bytes; the whole push was refused and nothing was written.",
						   smartsync_max_payload_size),
				 errhint("Split the operations into smaller batches.")));
	payload = PG_GETARG_JSONB_P(0);
	if (!JB_ROOT_IS_OBJECT(payload) || JB_ROOT_IS_SCALAR(payload))
		ereport(ERROR,
				(errcode(ERRCODE_SS_PUSH_NOT_AN_OBJECT),
				 errmsg("invalid push: the payload must be a JSON object"),
				 errdetail("A push is a JSON object {\"operations\": [...]}.")));

	b = palloc0(sizeof(PushBatch));
	b->cxt = AllocSetContextCreate(callcxt, "smartsync push", ALLOCSET_DEFAULT_SIZES);
	b->opcxt = AllocSetContextCreate(b->cxt, "smartsync push operation", ALLOCSET_DEFAULT_SIZES);
	/* results and what they name: written once, never freed before the end */
	b->rescxt = GenerationContextCreate(b->cxt, "smartsync push results", ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(b->cxt);

	/* context: tenant (required), practice, user, client, permissions */
	sync_context_read(&b->ctx);
	sync_context_require_tenant(&b->ctx);
	b->schema = sync_tenant_schema(b->ctx.tenant_id);
	b->qschema = pstrdup(quote_identifier(b->schema));
	b->received_at = GetCurrentStatementStartTimestamp();
	b->temp_prefix = smartsync_temp_id_prefix ? smartsync_temp_id_prefix : "";
	b->temp_prefix_len = strlen(b->temp_prefix);

	/* the payload's top level */
	v = get_key(&payload->root, "operations", &vbuf);
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
	v = get_key(&payload->root, "clientTimestamp", &vbuf);
	if (v != NULL && v->type != jbvNull)
		(void) read_timestamp("clientTimestamp", v);
	v = get_key(&payload->root, "atomic", &vbuf);
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
	b->op_ids = push_string_hash("smartsync push operation ids", b->nops, sizeof(PushOpId), b->cxt);
	scratch = AllocSetContextCreate(b->cxt, "smartsync push validation", ALLOCSET_DEFAULT_SIZES);
	b->op_chunks = palloc(sizeof(PushOp *) * ((b->nops + PUSH_OP_CHUNK - 1) / PUSH_OP_CHUNK + 1));
	for (int c = 0; c * PUSH_OP_CHUNK < b->nops; c++)
		b->op_chunks[c] = palloc0(sizeof(PushOp) * Min(PUSH_OP_CHUNK, b->nops - c * PUSH_OP_CHUNK));
	b->order = palloc(sizeof(PushOp *) * Max(b->nops, 1));
	it = JsonbIteratorInit(opsc);
	for (int i = 0; i < b->nops;)
	{
		JsonbValue	elem;
		bool		found;
		PushOpId   *e;

		if (JsonbIteratorNext(&it, &elem, true) != WJB_ELEM)
			continue;
		MemoryContextSwitchTo(scratch);
		validate_op(b, i, &elem, PUSH_OP(b, i));
		MemoryContextSwitchTo(b->cxt);
		keep_op(b, PUSH_OP(b, i));
		MemoryContextReset(scratch);
		e = hash_search(b->op_ids, &PUSH_OP(b, i)->opid, HASH_ENTER, &found);
		if (found)
			ereport(ERROR,
					(errcode(ERRCODE_SS_PUSH_DUPLICATE_ID),
					 errmsg("invalid push: operation id \"%s\" appears twice", sync_clip_str(PUSH_OP(b, i)->opid)),
					 errdetail("operations[%d] repeats an earlier operation's id; the whole push was refused and nothing was written.", i)));
		e->op = PUSH_OP(b, i);
		b->order[i] = PUSH_OP(b, i);
		i++;
	}
	if (b->nops > 1)
		qsort(b->order, b->nops, sizeof(PushOp *), op_order_cmp);

	nest = publish_client_id(b);
	if (b->nops > 0)
	{
		/* one push of this client at a time; what the ledger has is a replay */
		push_ledger_lock(b);
		push_ledger_load(b);
		/* operation ids are checked and matched to the ledger: the table is done */
		hash_destroy(b->op_ids);
		b->op_ids = NULL;
		/* what the server refuses (permissions, limits, base versions): nothing applied */
		refuse_operations(b);
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
