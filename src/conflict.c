/*
 * conflict.c: field comparison and conflict detection.
 *
 * compare_fields lists the top-level fields whose values differ (deep
 * equality, numbers as numerics).  detect_conflict follows the spec's
 * detectConflict: it decides whether the server changed the row since the
 * client saw it (by version when both sides carry one, else by timestamp),
 * and if so, whether any field the client sends differs; the severity comes
 * from the field classes of the entity type.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "smartsync.h"
#include "kernel.h"

PG_FUNCTION_INFO_V1(smartsync_compare_fields);
PG_FUNCTION_INFO_V1(smartsync_detect_conflict);

/* Field classes, in increasing severity. */
typedef enum FieldClass
{
	FC_METADATA = 0,
	FC_NORMAL,
	FC_IMPORTANT,
	FC_CRITICAL
} FieldClass;

static const char *const severity_names[] = {"low", "medium", "high", "critical"};

/* Operations a client can push. */
typedef enum SyncOperation
{
	OP_CREATE,
	OP_UPDATE,
	OP_DELETE
} SyncOperation;

/* Whether the server row changed since the client saw it. */
typedef enum Newer
{
	NEWER_UNKNOWN,
	NEWER_NO,
	NEWER_BY_VERSION,
	NEWER_BY_TIMESTAMP
} Newer;

/* Per-call cache of detect_conflict: the field classes of the last entity type. */
typedef struct DetectCache
{
	char	   *entity_type;
	Jsonb	   *field_classes;
} DetectCache;

/* --- equality and fields ------------------------------------------------ */

/* Deep equality of two jsonb values (numbers compare as numerics: 1 = 1.0). */
bool
sync_jsonb_equal(const JsonbValue *a, const JsonbValue *b)
{
	if (a->type != b->type)
		return false;
	switch (a->type)
	{
		case jbvNull:
			return true;
		case jbvBool:
			return a->val.boolean == b->val.boolean;
		case jbvString:
			return a->val.string.len == b->val.string.len &&
				memcmp(a->val.string.val, b->val.string.val, a->val.string.len) == 0;
		case jbvNumeric:
			if (VARSIZE_ANY(a->val.numeric) == VARSIZE_ANY(b->val.numeric) &&
				memcmp(a->val.numeric, b->val.numeric, VARSIZE_ANY(a->val.numeric)) == 0)
				return true;
			return DatumGetInt32(DirectFunctionCall2(numeric_cmp,
													 NumericGetDatum(a->val.numeric),
													 NumericGetDatum(b->val.numeric))) == 0;
		case jbvBinary:
			if (a->val.binary.len == b->val.binary.len &&
				memcmp(a->val.binary.data, b->val.binary.data, a->val.binary.len) == 0)
				return true;
			return compareJsonbContainers(a->val.binary.data, b->val.binary.data) == 0;
		default:
			elog(ERROR, "unexpected jsonb value type %d", (int) a->type);
	}
	return false;
}

/* The top-level fields of an object (NULL: none) in jsonb key order; returns the count. */
int
sync_object_fields(Jsonb *jb, SyncField **fields)
{
	int			n;

	*fields = NULL;
	if (jb == NULL || !JB_ROOT_IS_OBJECT(jb) || JB_ROOT_COUNT(jb) == 0)
		return 0;
	n = JB_ROOT_COUNT(jb);
	*fields = palloc(sizeof(SyncField) * n);
	sync_container_fields(&jb->root, n, *fields);
	return n;
}

/* Orders C strings bytewise, for list_sort. */
static int
cstring_list_cmp(const ListCell *a, const ListCell *b)
{
	return strcmp((const char *) lfirst(a), (const char *) lfirst(b));
}

/* As sync_compare_fields; local_keys_only compares only keys present in local (partial updates). */
List *
sync_compare_fields_ex(Jsonb *local, Jsonb *server, List *exclude,
					   bool exclude_metadata, bool local_keys_only)
{
	SyncField  *lf;
	SyncField  *sf;
	int			nl = sync_object_fields(local, &lf);
	int			ns = sync_object_fields(server, &sf);
	int			i = 0;
	int			j = 0;
	List	   *result = NIL;

	while (i < nl || j < ns)
	{
		int			c;
		const char *key;
		int			keylen;
		bool		differs;

		if (i >= nl)
			c = 1;
		else if (j >= ns)
			c = -1;
		else
			c = sync_key_cmp(lf[i].key, lf[i].keylen, sf[j].key, sf[j].keylen);

		if (c < 0)
		{
			key = lf[i].key;
			keylen = lf[i].keylen;
			differs = true;
			i++;
		}
		else if (c > 0)
		{
			key = sf[j].key;
			keylen = sf[j].keylen;
			differs = !local_keys_only;
			j++;
		}
		else
		{
			key = lf[i].key;
			keylen = lf[i].keylen;
			differs = !sync_jsonb_equal(&lf[i].value, &sf[j].value);
			i++;
			j++;
		}
		if (differs && !sync_field_excluded(key, keylen, exclude, exclude_metadata))
			result = lappend(result, pnstrdup(key, keylen));
	}
	if (lf)
		pfree(lf);
	if (sf)
		pfree(sf);
	list_sort(result, cstring_list_cmp);
	return result;
}

/* Sorted names (char *) of top-level fields that differ; NIL exclude means the metadata fields. */
List *
sync_compare_fields(Jsonb *local, Jsonb *server, List *exclude)
{
	sync_require_object(local, "local data");
	sync_require_object(server, "server data");
	return sync_compare_fields_ex(local, server, exclude, exclude == NIL, false);
}

/* A List of C strings as a text[]. */
static ArrayType *
cstring_list_to_array(List *names)
{
	int			n = list_length(names);
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
	int			i = 0;
	ListCell   *lc;

	foreach(lc, names)
		elems[i++] = CStringGetTextDatum((char *) lfirst(lc));
	return construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT);
}

/* SQL: smartsync.compare_fields(local_data jsonb, server_data jsonb, exclude text[] DEFAULT NULL) RETURNS text[] */
Datum
smartsync_compare_fields(PG_FUNCTION_ARGS)
{
	Jsonb	   *local;
	Jsonb	   *server;
	List	   *exclude = NIL;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	local = PG_GETARG_JSONB_P(0);
	server = PG_GETARG_JSONB_P(1);
	sync_require_object(local, "local_data");
	sync_require_object(server, "server_data");
	if (!PG_ARGISNULL(2))
		exclude = sync_text_array_to_list(PG_GETARG_ARRAYTYPE_P(2));
	PG_RETURN_ARRAYTYPE_P(cstring_list_to_array(
		sync_compare_fields_ex(local, server, exclude, PG_ARGISNULL(2), false)));
}

/* --- field classes ------------------------------------------------------ */

/* Parses a field class name; false when it is none of the four. */
static inline bool
parse_field_class(const char *s, int len, FieldClass *fc)
{
	if (len == 8 && memcmp(s, "metadata", 8) == 0)
		*fc = FC_METADATA;
	else if (len == 6 && memcmp(s, "normal", 6) == 0)
		*fc = FC_NORMAL;
	else if (len == 9 && memcmp(s, "important", 9) == 0)
		*fc = FC_IMPORTANT;
	else if (len == 8 && memcmp(s, "critical", 8) == 0)
		*fc = FC_CRITICAL;
	else
		return false;
	return true;
}

/* Raises SS301/SS303 unless classes is an object of field -> class name. */
static inline void
check_field_classes(Jsonb *classes)
{
	SyncField  *f;
	int			n;

	if (!JB_ROOT_IS_OBJECT(classes))
		ereport(ERROR,
				(errcode(ERRCODE_SS_NOT_AN_OBJECT),
				 errmsg("field_classes must be a JSON object"),
				 errdetail("field_classes maps field names to metadata, normal, important or critical.")));
	n = sync_object_fields(classes, &f);
	for (int i = 0; i < n; i++)
	{
		FieldClass	fc;

		if (f[i].value.type != jbvString ||
			!parse_field_class(f[i].value.val.string.val, f[i].value.val.string.len, &fc))
			ereport(ERROR,
					(errcode(ERRCODE_SS_INVALID_FIELD_CLASS),
					 errmsg("invalid field class for field \"%s\"", sync_clip(f[i].key, f[i].keylen)),
					 errdetail("A field class is one of metadata, normal, important, critical."),
					 errhint("Unlisted fields are normal.")));
	}
	if (f)
		pfree(f);
}

/* The class of a field: listed under its name or its snake_case spelling, else the default. */
static FieldClass
field_class(Jsonb *classes, const char *name, int len)
{
	JsonbValue	tmp;
	JsonbValue *v = NULL;
	FieldClass	fc;

	if (classes != NULL && JB_ROOT_COUNT(classes) > 0)
	{
		v = getKeyJsonValueFromContainer(&classes->root, name, len, &tmp);
		if (v == NULL)
		{
			/* the registry keys classes by column: petId -> pet_id */
			char	   *snake = palloc(len * 2 + 1);
			int			sl = 0;
			bool		changed = false;

			for (int i = 0; i < len; i++)
			{
				char		c = name[i];

				if (c >= 'A' && c <= 'Z')
				{
					if (i > 0 && ((name[i - 1] >= 'a' && name[i - 1] <= 'z') ||
								  (name[i - 1] >= '0' && name[i - 1] <= '9')))
						snake[sl++] = '_';
					c = c - 'A' + 'a';
					changed = true;
				}
				snake[sl++] = c;
			}
			if (changed)
				v = getKeyJsonValueFromContainer(&classes->root, snake, sl, &tmp);
			pfree(snake);
		}
	}
	if (v != NULL && v->type == jbvString &&
		parse_field_class(v->val.string.val, v->val.string.len, &fc))
		return fc;
	return sync_is_metadata_field(name, len) ? FC_METADATA : FC_NORMAL;
}

/* Severity of a change to these fields: the highest class touched; metadata only is low. */
static FieldClass
fields_severity(Jsonb *classes, List *fields)
{
	FieldClass	max = FC_METADATA;
	ListCell   *lc;

	foreach(lc, fields)
	{
		const char *name = (const char *) lfirst(lc);
		FieldClass	fc = field_class(classes, name, strlen(name));

		if (fc > max)
			max = fc;
	}
	return max;
}

/* --- conflict detection ------------------------------------------------- */

/* Parses an operation name; SS302 unless create, update or delete. */
static inline SyncOperation
parse_operation(const char *op)
{
	if (op != NULL)
	{
		if (strcmp(op, "create") == 0)
			return OP_CREATE;
		if (strcmp(op, "update") == 0)
			return OP_UPDATE;
		if (strcmp(op, "delete") == 0)
			return OP_DELETE;
	}
	ereport(ERROR,
			(errcode(ERRCODE_SS_INVALID_OPERATION),
			 op ? errmsg("invalid operation \"%s\"", sync_clip_str(op)) : errmsg("operation must not be null"),
			 errdetail("An operation is one of create, update, delete.")));
	return OP_UPDATE;			/* keep compiler quiet */
}

/*
 * Reads a timestamp field with the one strict parser of client timestamps
 * (context.c): integer epoch milliseconds or ISO 8601 with date, time and
 * offset; SS305 otherwise (also for "now", "infinity", "Jan 1 2024", ...).
 */
static TimestampTz
field_timestamp(const char *name, JsonbValue *v)
{
	TimestampTz ts;

	if (sync_timestamp_from_json(v, &ts))
		return ts;
	ereport(ERROR,
			(errcode(ERRCODE_SS_INVALID_TIMESTAMP),
			 v->type == jbvString ?
			 errmsg("invalid timestamp in field \"%s\": \"%s\"", name,
					sync_clip(v->val.string.val, v->val.string.len)) :
			 errmsg("invalid timestamp in field \"%s\"", name),
			 errdetail("A timestamp field holds integer milliseconds since 1970-01-01 UTC or ISO 8601 with date, time and offset (2024-11-10T12:00:00Z), from 1970 to 9999.")));
	return 0;					/* keep compiler quiet */
}

/* The server row's last-change time from updatedAt or updated_at (the later); false when absent. */
static bool
server_timestamp(Jsonb *server, TimestampTz *ts)
{
	static const char *const names[] = {"updatedAt", "updated_at"};
	bool		found = false;

	for (int i = 0; i < 2; i++)
	{
		JsonbValue	tmp;
		JsonbValue *v = getKeyJsonValueFromContainer(&server->root, names[i],
													 strlen(names[i]), &tmp);
		TimestampTz t;

		if (v == NULL || v->type == jbvNull)
			continue;
		t = field_timestamp(names[i], v);
		if (!found || t > *ts)
			*ts = t;
		found = true;
	}
	return found;
}

/* True when the server image is marked as a tombstone with "_deleted": true. */
static inline bool
marked_deleted(Jsonb *server)
{
	JsonbValue	tmp;
	JsonbValue *v = getKeyJsonValueFromContainer(&server->root, "_deleted", 8, &tmp);

	return v != NULL && v->type == jbvBool && v->val.boolean;
}

/* Whether the server changed the row since the client saw it, and how we know. */
static Newer
server_newer(Jsonb *local, Jsonb *server, TimestampTz local_ts, bool has_local_ts)
{
	JsonbValue	ltmp,
				stmp;
	JsonbValue *lv = local ? getKeyJsonValueFromContainer(&local->root, "version", 7, &ltmp) : NULL;
	JsonbValue *sv = getKeyJsonValueFromContainer(&server->root, "version", 7, &stmp);
	TimestampTz server_ts = 0;

	/* the version decides when both sides carry one */
	if (lv != NULL && sv != NULL && lv->type != jbvNull && sv->type != jbvNull)
		return sync_jsonb_equal(lv, sv) ? NEWER_NO : NEWER_BY_VERSION;

	/* else the time of the client's change against the server's updatedAt */
	if (has_local_ts && server_timestamp(server, &server_ts))
		return server_ts > local_ts ? NEWER_BY_TIMESTAMP : NEWER_NO;
	return NEWER_UNKNOWN;
}

/* Pushes a string value (key or element) onto a jsonb under construction. */
static inline void
push_string(JsonbParseState **ps, JsonbIteratorToken tok, const char *s)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = (char *) s;
	v.val.string.len = strlen(s);
	pushJsonbValue(ps, tok, &v);
}

/* Builds {"type","affectedFields","severity","autoResolvable"}. */
static Jsonb *
conflict_result(const char *type, List *fields, FieldClass severity)
{
	JsonbParseState *ps = NULL;
	JsonbValue	v;
	JsonbValue *res;
	ListCell   *lc;

	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	push_string(&ps, WJB_KEY, "type");
	push_string(&ps, WJB_VALUE, type);
	push_string(&ps, WJB_KEY, "affectedFields");
	pushJsonbValue(&ps, WJB_BEGIN_ARRAY, NULL);
	foreach(lc, fields)
		push_string(&ps, WJB_ELEM, (const char *) lfirst(lc));
	pushJsonbValue(&ps, WJB_END_ARRAY, NULL);
	push_string(&ps, WJB_KEY, "severity");
	push_string(&ps, WJB_VALUE, severity_names[severity]);
	push_string(&ps, WJB_KEY, "autoResolvable");
	v.type = jbvBool;
	v.val.boolean = (severity == FC_METADATA);
	pushJsonbValue(&ps, WJB_VALUE, &v);
	res = pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

/* The fields the client sends that differ from the server's (metadata and _deleted aside). */
static inline List *
changed_fields(Jsonb *local, Jsonb *server)
{
	static List *deleted_marker = NIL;

	if (deleted_marker == NIL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		deleted_marker = list_make1(pstrdup("_deleted"));
		MemoryContextSwitchTo(old);
	}
	return sync_compare_fields_ex(local, server, deleted_marker, true, true);
}

/*
 * Conflict between a client's change and the server row, or NULL when none.
 * See kernel.h for the arguments and the README for the rules.
 */
Jsonb *
sync_detect_conflict(Jsonb *local, Jsonb *server, bool server_deleted,
					 TimestampTz local_ts, bool has_local_ts,
					 const char *operation, Jsonb *field_classes)
{
	SyncOperation op = parse_operation(operation);
	List	   *fields;
	Newer		newer;

	if (local != NULL)
		sync_require_object(local, "local data");
	if (server != NULL)
		sync_require_object(server, "server data");
	if (field_classes != NULL)
		check_field_classes(field_classes);

	/* no server row: a create is fine, an update or delete has nothing to apply to */
	if (server == NULL)
	{
		if (op == OP_CREATE)
			return NULL;
		return conflict_result("missing_entity", NIL,
							   op == OP_UPDATE ? FC_CRITICAL : FC_METADATA);
	}

	/* the server row is a tombstone */
	if (server_deleted || marked_deleted(server))
	{
		if (op != OP_UPDATE)
			return NULL;
		return conflict_result("deletion", changed_fields(local, server), FC_CRITICAL);
	}

	/* a create of a row the server already has: a conflict only if the data differs */
	if (op == OP_CREATE)
	{
		fields = changed_fields(local, server);
		if (fields == NIL)
			return NULL;
		return conflict_result("data", fields, fields_severity(field_classes, fields));
	}

	newer = server_newer(local, server, local_ts, has_local_ts);
	if (newer == NEWER_NO)
		return NULL;
	fields = changed_fields(local, server);

	if (op == OP_DELETE)
	{
		/* deleting a row the server changed since; with no ordering, a stale image */
		if (newer == NEWER_UNKNOWN && fields == NIL)
			return NULL;
		return conflict_result("deletion", fields, FC_CRITICAL);
	}

	/* an update: the server is newer (or may be) and a field the client sends differs */
	if (fields == NIL)
		return NULL;
	return conflict_result(newer == NEWER_BY_VERSION ? "version" :
						   newer == NEWER_BY_TIMESTAMP ? "timestamp" : "data",
						   fields, fields_severity(field_classes, fields));
}

/* Reads smartsync.entity_types.field_classes of an entity type; SS106 when unknown. */
static Jsonb *
registry_field_classes(const char *entity_type, MemoryContext mcxt)
{
	static SPIPlanPtr plan = NULL;
	Datum		arg = CStringGetTextDatum(entity_type);
	Jsonb	   *result;
	bool		isnull;
	Datum		d;
	int			rc;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (plan == NULL)
	{
		Oid			argtypes[1] = {TEXTOID};
		SPIPlanPtr	p = SPI_prepare("SELECT field_classes FROM smartsync.entity_types WHERE entity_type = $1",
									1, argtypes);

		if (p == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		if (SPI_keepplan(p) != 0)
			elog(ERROR, "SPI_keepplan failed");
		plan = p;
	}
	rc = SPI_execute_plan(plan, &arg, NULL, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_SS_UNKNOWN_ENTITY_TYPE),
				 errmsg("unknown entity type \"%s\"", sync_clip_str(entity_type)),
				 errdetail("detect_conflict reads the field classes of the entity type from smartsync.entity_types."),
				 errhint("Register the entity type, or pass field_classes.")));
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		result = NULL;
	else
	{
		MemoryContext old = MemoryContextSwitchTo(mcxt);

		result = DatumGetJsonbPCopy(d);
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	return result;
}

/*
 * SQL: smartsync.detect_conflict(local_data jsonb, server_data jsonb, local_ts timestamptz,
 *   operation text DEFAULT 'update', field_classes jsonb DEFAULT NULL,
 *   entity_type text DEFAULT NULL) RETURNS jsonb
 */
Datum
smartsync_detect_conflict(PG_FUNCTION_ARGS)
{
	Jsonb	   *local = PG_ARGISNULL(0) ? NULL : PG_GETARG_JSONB_P(0);
	Jsonb	   *server = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);
	bool		has_ts = !PG_ARGISNULL(2);
	TimestampTz local_ts = has_ts ? PG_GETARG_TIMESTAMPTZ(2) : 0;
	char	   *operation = PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3));
	Jsonb	   *classes = PG_ARGISNULL(4) ? NULL : PG_GETARG_JSONB_P(4);
	Jsonb	   *result;

	if (local != NULL)
		sync_require_object(local, "local_data");
	if (server != NULL)
		sync_require_object(server, "server_data");

	/* the entity type's field classes, cached for the rest of the query */
	if (classes == NULL && !PG_ARGISNULL(5))
	{
		char	   *entity_type = text_to_cstring(PG_GETARG_TEXT_PP(5));
		DetectCache *cache = (DetectCache *) fcinfo->flinfo->fn_extra;

		if (cache == NULL || strcmp(cache->entity_type, entity_type) != 0)
		{
			MemoryContext mcxt = fcinfo->flinfo->fn_mcxt;
			Jsonb	   *fc = registry_field_classes(entity_type, mcxt);

			if (cache == NULL)
				cache = MemoryContextAllocZero(mcxt, sizeof(DetectCache));
			else
			{
				pfree(cache->entity_type);
				if (cache->field_classes)
					pfree(cache->field_classes);
			}
			cache->entity_type = MemoryContextStrdup(mcxt, entity_type);
			cache->field_classes = fc;
			fcinfo->flinfo->fn_extra = cache;
		}
		classes = cache->field_classes;
	}

	result = sync_detect_conflict(local, server, false, local_ts, has_ts, operation, classes);
	if (result == NULL)
		PG_RETURN_NULL();
	PG_RETURN_JSONB_P(result);
}
