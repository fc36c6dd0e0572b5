/*
 * kernel.h: the conflict kernel's C interface (hash.c, conflict.c, merge.c),
 * used by push and by conflict resolution.  The SQL functions row_hash,
 * compare_fields, detect_conflict, merge and merge3 are thin wrappers.
 *
 * All inputs are jsonb objects (callers check JB_ROOT_IS_OBJECT or let these
 * raise SS301).  Results are palloc'd in CurrentMemoryContext.
 */
#ifndef SMARTSYNC_KERNEL_H
#define SMARTSYNC_KERNEL_H

#include "postgres.h"
#include "nodes/pg_list.h"
#include "utils/array.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

/* SQLSTATEs of the kernel: SS3xx */
#define ERRCODE_SS_NOT_AN_OBJECT		MAKE_SQLSTATE('S','S','3','0','1')
#define ERRCODE_SS_INVALID_OPERATION	MAKE_SQLSTATE('S','S','3','0','2')
#define ERRCODE_SS_INVALID_FIELD_CLASS	MAKE_SQLSTATE('S','S','3','0','3')
#define ERRCODE_SS_NUMBER_OUT_OF_RANGE	MAKE_SQLSTATE('S','S','3','0','4')
#define ERRCODE_SS_INVALID_TIMESTAMP	MAKE_SQLSTATE('S','S','3','0','5')

/*
 * Exclusion lists: a NIL exclude means the metadata fields (version,
 * updatedAt, updated_at), as SQL NULL does; a non-NIL list replaces them.
 * The *_ex variants take exclude_metadata to say it explicitly, so
 * (NIL, false) compares or hashes every field.
 */

/* Hex SHA-256 of the canonical JSON of data without the excluded top-level keys. */
extern char *sync_row_hash(Jsonb *data, List *exclude);
extern char *sync_row_hash_ex(Jsonb *data, List *exclude, bool exclude_metadata);

/* RFC 8785 canonical JSON text of any jsonb (exclusions apply to a top-level object). */
extern char *sync_canonical_json(Jsonb *data, List *exclude, bool exclude_metadata);

/* Sorted names (char *) of top-level fields that differ; exclude is a List of char *. */
extern List *sync_compare_fields(Jsonb *local, Jsonb *server, List *exclude);

/* As sync_compare_fields; local_keys_only compares only keys present in local (partial updates). */
extern List *sync_compare_fields_ex(Jsonb *local, Jsonb *server, List *exclude,
									bool exclude_metadata, bool local_keys_only);

/*
 * Conflict between a client's change and the server row, or NULL when none.
 *   local:        the client's data (may carry "version": the base version it saw)
 *   server:       the server row, NULL when the row does not exist
 *   server_deleted: the row exists only as a tombstone (server holds its last image)
 *   local_ts:     when the client made the change; has_local_ts false when unknown
 *   operation:    "create", "update" or "delete"
 *   field_classes: field -> class object, or NULL for "all normal"
 * Result: {"type","affectedFields","severity","autoResolvable"} as detect_conflict returns.
 */
extern Jsonb *sync_detect_conflict(Jsonb *local, Jsonb *server, bool server_deleted,
								   TimestampTz local_ts, bool has_local_ts,
								   const char *operation, Jsonb *field_classes);

/* The spec's attemptMerge: NULL when a field differs on both sides. */
extern Jsonb *sync_merge(Jsonb *local, Jsonb *server);

/*
 * Three-way merge against base.  NULL on a true conflict, and then, when
 * conflicting is not NULL, *conflicting lists the truly conflicting fields.
 */
extern Jsonb *sync_merge3(Jsonb *base, Jsonb *local, Jsonb *server, List **conflicting);

/* --- helpers shared by hash.c, conflict.c and merge.c ----------------- */

/* One top-level field of an object: key (not NUL-terminated) and value. */
typedef struct SyncField
{
	const char *key;
	int			keylen;
	JsonbValue	value;
} SyncField;

/* The top-level fields of an object (NULL: none) in jsonb key order; returns the count. */
extern int	sync_object_fields(Jsonb *jb, SyncField **fields);

/*
 * Fills v from entry i of container c, whose data lies len bytes at base + off
 * (the on-disk layout of jsonb; what JsonbIteratorNext does, without its state).
 */
static inline void
sync_fill_value(JsonbContainer *c, int i, char *base, uint32 off, uint32 len, JsonbValue *v)
{
	JEntry		e = c->children[i];

	if (JBE_ISNULL(e))
		v->type = jbvNull;
	else if (JBE_ISSTRING(e))
	{
		v->type = jbvString;
		v->val.string.val = base + off;
		v->val.string.len = len;
	}
	else if (JBE_ISNUMERIC(e))
	{
		v->type = jbvNumeric;
		v->val.numeric = (Numeric) (base + INTALIGN(off));
	}
	else if (JBE_ISBOOL_TRUE(e) || JBE_ISBOOL_FALSE(e))
	{
		v->type = jbvBool;
		v->val.boolean = JBE_ISBOOL_TRUE(e) != 0;
	}
	else
	{
		v->type = jbvBinary;
		v->val.binary.data = (JsonbContainer *) (base + INTALIGN(off));
		v->val.binary.len = len - (INTALIGN(off) - off);
	}
}

/* Reads the n pairs of object container c into fields (jsonb key order). */
static inline void
sync_container_fields(JsonbContainer *c, int n, SyncField *fields)
{
	char	   *base = (char *) &c->children[n * 2];
	uint32		off = 0;

	for (int i = 0; i < n * 2; i++)
	{
		JEntry		e = c->children[i];
		uint32		end = JBE_HAS_OFF(e) ? JBE_OFFLENFLD(e) : off + JBE_OFFLENFLD(e);

		if (i < n)
		{
			fields[i].key = base + off;
			fields[i].keylen = end - off;
		}
		else
			sync_fill_value(c, i, base, off, end - off, &fields[i - n].value);
		off = end;
	}
}

/* Orders two keys as jsonb stores them: shorter first, then bytewise. */
static inline int
sync_key_cmp(const char *a, int alen, const char *b, int blen)
{
	if (alen != blen)
		return alen < blen ? -1 : 1;
	return memcmp(a, b, alen);
}

/* True when name is one of the metadata fields version, updatedAt, updated_at. */
extern bool sync_is_metadata_field(const char *name, int len);

/* Deep equality of two jsonb values (numbers compare as numerics: 1 = 1.0). */
extern bool sync_jsonb_equal(const JsonbValue *a, const JsonbValue *b);

/* True when the top-level field name is excluded by exclude / exclude_metadata. */
extern bool sync_field_excluded(const char *name, int len, List *exclude, bool exclude_metadata);

/* The non-null elements of a text[] as a List of char *. */
extern List *sync_text_array_to_list(ArrayType *arr);

/* Raises SS301 unless jb is a JSON object; what names the argument. */
extern void sync_require_object(Jsonb *jb, const char *what);

#endif							/* SMARTSYNC_KERNEL_H */
