/*
 * capture.c: the change-capture triggers of tracked tables.
 *
 *   smartsync.stamp_row(pk, practice)
 *                               BEFORE INSERT OR UPDATE, FOR EACH ROW:
 *                               version := 1 on insert, old version + 1 on
 *                               update; updated_at := statement time; refuses
 *                               a change of the primary key; notes a row that
 *                               moves to another practice.
 *   smartsync.capture(type, pk, practice)
 *                               AFTER INSERT / UPDATE / DELETE, FOR EACH
 *                               STATEMENT with a transition table: appends
 *                               every affected row to the tenant's change log.
 *   smartsync.refuse_truncate() BEFORE TRUNCATE: a truncate would drop rows
 *                               without tombstones, so it is refused.
 *
 * A statement's log rows are written directly, as COPY writes: formed into
 * heap tuples, inserted a batch at a time (heap_multi_insert) and entered into
 * the log's indexes with index_insert; no SPI, no planner, no executor run.
 * What a trigger needs (the tenant's log, its indexes and sequence, the source
 * columns, the row-to-jsonb plan) is resolved on its first statement, without
 * SPI, and kept until the table or the log changes (CaptureTarget).
 *
 * The log is keyed twice: (xid, seq), the transaction order the exact pull
 * cursor scans, and (entity_key, seq), one entity's changes in order, where
 * entity_key is a 64-bit key of the entity type and id (sync_entity_key), so
 * that index holds two by-value integers instead of two strings; integer ids
 * keep their order in it, so a statement over a range of ids writes to a few
 * leaf pages.
 *
 * A row whose practice column changes leaves two log rows: a delete (its last
 * image before the move, under the old practice) for the old practice's
 * devices, and a create under the new one.  stamp_row, which sees the old and
 * the new row, notes the move; capture reads the note (capture_moves).
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/nbtree.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/tupmacs.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_index.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "optimizer/optimizer.h"
#include "rewrite/rewriteHandler.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"
#include "utils/sortsupport.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

#include "smartsync.h"
#include "citus.h"
#include "rowjson.h"

PG_FUNCTION_INFO_V1(smartsync_stamp_row);
PG_FUNCTION_INFO_V1(smartsync_capture);
PG_FUNCTION_INFO_V1(smartsync_refuse_truncate);
PG_FUNCTION_INFO_V1(smartsync_entity_key);

/* --- entity keys ---------------------------------------------------------- */

/*
 * A 64-bit key of one entity.  Portable (bytes and integer arithmetic only,
 * no platform hash), so a key computed on one server matches the keys stored
 * by another.  Lookups always compare the type and id too: a collision costs
 * a row read, never a wrong answer.
 *
 * An id written as a plain decimal integer below 2^40 (no sign, no leading
 * zero), as integer primary keys print, keeps its order: the key is a 23-bit
 * hash of the type above the id itself, a non-negative number.  The rows of
 * one UPDATE over a range of ids, whose index entries capture enters in key
 * order, then go to a few neighbouring leaf pages of the (entity_key, seq)
 * index instead of one random leaf each.  Any other id (a UUID, text, a large
 * or negative number) gets a hash with the top bit set, a negative number, so
 * the two kinds never share a key.  The hash is FNV-1a over the type, a zero
 * byte and the id, then splitmix64's finalizer (every input bit reaches every
 * output bit).
 */
#define ENTITY_KEY_ID_BITS 40

static uint64
entity_key_mix(uint64 h)
{
	h ^= h >> 30;
	h *= UINT64CONST(0xbf58476d1ce4e5b9);
	h ^= h >> 27;
	h *= UINT64CONST(0x94d049bb133111eb);
	h ^= h >> 31;
	return h;
}

/* true, with its value, when id is a plain decimal integer below 2^ENTITY_KEY_ID_BITS */
static bool
entity_key_decimal(const char *id, int idlen, uint64 *value)
{
	uint64		v = 0;

	if (idlen < 1 || idlen > 13 || (idlen > 1 && id[0] == '0'))
		return false;
	for (int i = 0; i < idlen; i++)
	{
		if (id[i] < '0' || id[i] > '9')
			return false;
		v = v * 10 + (uint64) (id[i] - '0');
	}
	if (v >= (UINT64CONST(1) << ENTITY_KEY_ID_BITS))
		return false;
	*value = v;
	return true;
}

int64
sync_entity_key(const char *type, int typelen, const char *id, int idlen)
{
	uint64		h = UINT64CONST(0xcbf29ce484222325);
	const uint64 prime = UINT64CONST(0x100000001b3);
	uint64		value;

	for (int i = 0; i < typelen; i++)
		h = (h ^ (uint8) type[i]) * prime;
	h = (h ^ 0) * prime;
	if (entity_key_decimal(id, idlen, &value))
	{
		/* bit 63 clear, 23 bits of the type's hash, the id in the low 40 */
		uint64		type_bits = entity_key_mix(h) >> (64 - (63 - ENTITY_KEY_ID_BITS));

		return (int64) ((type_bits << ENTITY_KEY_ID_BITS) | value);
	}
	for (int i = 0; i < idlen; i++)
		h = (h ^ (uint8) id[i]) * prime;
	return (int64) (entity_key_mix(h) | (UINT64CONST(1) << 63));
}

/* smartsync.entity_key(entity_type text, entity_id text) RETURNS bigint */
Datum
smartsync_entity_key(PG_FUNCTION_ARGS)
{
	text	   *type = PG_GETARG_TEXT_PP(0);
	text	   *id = PG_GETARG_TEXT_PP(1);

	PG_RETURN_INT64(sync_entity_key(VARDATA_ANY(type), VARSIZE_ANY_EXHDR(type),
									VARDATA_ANY(id), VARSIZE_ANY_EXHDR(id)));
}

/* --- caches ---------------------------------------------------------------- */

/* per-relation attribute numbers for stamp_row */
typedef struct StampEntry
{
	Oid			relid;			/* hash key */
	AttrNumber	version_att;
	AttrNumber	updated_at_att;
	AttrNumber	pk_att;
	AttrNumber	practice_att;	/* InvalidAttrNumber: no practice column */
	FmgrInfo	pk_out;			/* for the move notes */
} StampEntry;

/* Log columns capture fills. */
enum
{
	LOG_SEQ,
	LOG_XID,
	LOG_ENTITY_TYPE,
	LOG_ENTITY_ID,
	LOG_ENTITY_KEY,
	LOG_OPERATION,
	LOG_DATA,
	LOG_VERSION,
	LOG_PRACTICE_ID,
	LOG_USER_ID,
	LOG_CLIENT_ID,
	LOG_CHANGED_AT,
	LOG_NCOLS
};
static const char *const log_colnames[LOG_NCOLS] = {
	"seq", "xid", "entity_type", "entity_id", "entity_key", "operation", "data", "version",
	"practice_id", "user_id", "client_id", "changed_at"
};
static const Oid log_coltypes[LOG_NCOLS] = {
	INT8OID, XID8OID, TEXTOID, TEXTOID, INT8OID, TEXTOID, JSONBOID, INT8OID,
	TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID
};
/* columns a log may lack (older logs, until the upgrade script ran) */
static const bool log_optional[LOG_NCOLS] = {
	false, false, false, false, true, false, false, false, false, false, false, true
};

/* One index of the log, as capture inserts into it. */
typedef struct CaptureIndex
{
	Oid			indexoid;
	IndexInfo  *info;
} CaptureIndex;

/*
 * The order of one btree index of the log, for entering a batch's entries in
 * key order: then each descent finds the pages the one before it read, where
 * entries in the batch's own order (random, for the entity key) would touch
 * a leaf page per row.
 */
typedef struct IndexOrder
{
	int			nkeys;			/* 0: not sorted (not a btree) */
	AttrNumber	atts[INDEX_MAX_KEYS];	/* the key columns' log attribute numbers */
	SortSupportData keys[INDEX_MAX_KEYS];
} IndexOrder;

/*
 * Per tracked table: where and how its capture triggers log, resolved on the
 * first statement (the table is checked to be a registered entity table
 * then) and shared by its insert, update and delete triggers, which carry
 * the same arguments.  Marked stale when the table, its tenant's log or one
 * of the log's indexes is invalidated; refilled on the next statement.
 *
 * This is the one place that maps a relation to its logical entity table and
 * change log: a relation standing for a tenant table elsewhere (a shard)
 * would resolve its target here.
 */
typedef struct CaptureTarget
{
	Oid			relid;			/* hash key */
	bool		valid;
	MemoryContext cxt;			/* holds everything below */
	char	   *args[3];		/* the trigger's arguments: entity type, key, practice column */
	char	   *entity_type;
	int			entity_type_len;
	/* the change log */
	Oid			logrelid;
	Oid			seqoid;			/* the sequence of its seq column */
	Oid			citus_origin;	/* Citus: the log's origin shard (citus.c), else InvalidOid */
	int			lognatts;
	AttrNumber	logatt[LOG_NCOLS];
	bool		generic;		/* other columns with defaults, or indexes the direct path cannot fill */
	int			nindexes;
	CaptureIndex *indexes;
	IndexOrder *orders;			/* per index, made by the first batch of more than one row */
	/* the source columns */
	AttrNumber	pk_att;
	AttrNumber	practice_att;
	AttrNumber	version_att;
	AttrNumber	updated_at_att;
	bool		deltas;			/* updates may log only the columns they set */
	bool	   *include;		/* scratch: the columns of one delta, by attnum - 1 */
	int			natts;
	FmgrInfo	pk_out;
	FmgrInfo	practice_out;
	RowJsonPlan *json;
} CaptureTarget;

static HTAB *stamp_cache = NULL;
static HTAB *capture_cache = NULL;
static bool callback_registered = false;

/* Drops cached entries when a relation (or everything) is invalidated. */
static void
capture_relcache_callback(Datum arg, Oid relid)
{
	if (stamp_cache != NULL)
	{
		if (OidIsValid(relid))
			hash_search(stamp_cache, &relid, HASH_REMOVE, NULL);
		else
		{
			hash_destroy(stamp_cache);
			stamp_cache = NULL;
		}
	}
	if (capture_cache != NULL)
	{
		HASH_SEQ_STATUS status;
		CaptureTarget *e;

		/*
		 * Only mark entries stale: an invalidation can arrive while a capture
		 * is using its entry (any relation open or sequence access processes
		 * them), so the memory is freed when the entry is next filled.
		 */
		hash_seq_init(&status, capture_cache);
		while ((e = hash_seq_search(&status)) != NULL)
		{
			bool		hit = !OidIsValid(relid) || e->relid == relid || e->logrelid == relid;

			for (int i = 0; !hit && e->valid && i < e->nindexes; i++)
				hit = (e->indexes[i].indexoid == relid);
			if (hit)
				e->valid = false;
		}
	}
}

/* Creates the caches on first use. */
static void
capture_init_caches(void)
{
	HASHCTL		ctl;

	if (!callback_registered)
	{
		sync_register_relcache_callback(capture_relcache_callback, (Datum) 0);
		callback_registered = true;
	}
	if (stamp_cache == NULL)
	{
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(StampEntry);
		ctl.hcxt = CacheMemoryContext;
		stamp_cache = hash_create("smartsync stamp cache", 64, &ctl,
								  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	if (capture_cache == NULL)
	{
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(CaptureTarget);
		capture_cache = hash_create("smartsync capture cache", 64, &ctl,
									HASH_ELEM | HASH_BLOBS);
	}
}

/* Raises SS120 unless fcinfo is a trigger call of the expected kind. */
static TriggerData *
check_trigger_call(FunctionCallInfo fcinfo, const char *fname)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_SS_TRIGGER_MISUSE),
				 errmsg("%s() must be called as a trigger", fname),
				 errhint("smartsync.provision_tenant() installs the capture triggers.")));
	return (TriggerData *) fcinfo->context;
}

/* Finds a column by name; raises SS112 when it is missing or of the wrong type. */
static AttrNumber
required_column(Relation rel, const char *name, Oid typid)
{
	TupleDesc	desc = RelationGetDescr(rel);

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || strcmp(NameStr(att->attname), name) != 0)
			continue;
		if (typid != InvalidOid && att->atttypid != typid)
			ereport(ERROR,
					(errcode(ERRCODE_SS_MISSING_ROW_COLUMNS),
					 errmsg("column \"%s\" of tracked table \"%s\" has type %s, not %s",
							name, RelationGetRelationName(rel),
							format_type_be(att->atttypid), format_type_be(typid))));
		return att->attnum;
	}
	ereport(ERROR,
			(errcode(ERRCODE_SS_MISSING_ROW_COLUMNS),
			 errmsg("tracked table \"%s\" has no column \"%s\"",
					RelationGetRelationName(rel), name),
			 errhint("smartsync.provision_tenant() adds version and updated_at to tracked tables.")));
	return InvalidAttrNumber;	/* keep compiler quiet */
}

/* --- practice moves (stamp_row notes them, capture reads them) ------------- */

/*
 * A row of relation relid, known by its key, whose practice column changed in
 * this transaction: the old practice and the last image before the move.
 * Notes live until the transaction ends; a note is replaced by the row's next
 * update and consumed by the capture that logs the move.
 */
typedef struct MoveKey
{
	Oid			relid;
	int64		pk_hash;		/* of the key as text (compared in full too) */
} MoveKey;

typedef struct MoveNote
{
	MoveKey		key;			/* hash key */
	char	   *pk;				/* the whole key */
	HeapTuple	oldtup;			/* the row before the move */
} MoveNote;

static HTAB *move_notes = NULL;
static MemoryContext move_cxt = NULL;
static LocalTransactionId move_lxid = InvalidLocalTransactionId;
static int	move_count = 0;

/* The notes of this transaction (created or emptied when the transaction changed). */
static HTAB *
moves_for_xact(bool create)
{
	if (move_lxid != MyProcLocalTransactionId_compat())
	{
		if (move_cxt != NULL)
			MemoryContextReset(move_cxt);
		move_notes = NULL;
		move_count = 0;
		move_lxid = MyProcLocalTransactionId_compat();
	}
	if (move_notes == NULL && create)
	{
		HASHCTL		ctl;

		if (move_cxt == NULL)
			move_cxt = AllocSetContextCreate(TopMemoryContext, "smartsync practice moves",
											 ALLOCSET_SMALL_SIZES);
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(MoveKey);
		ctl.entrysize = sizeof(MoveNote);
		ctl.hcxt = move_cxt;
		move_notes = hash_create("smartsync practice moves", 16, &ctl,
								 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	return move_notes;
}

static void
move_key(MoveKey *k, Oid relid, const char *pk)
{
	memset(k, 0, sizeof(*k));
	k->relid = relid;
	k->pk_hash = sync_entity_key("", 0, pk, strlen(pk));
}

/* Notes (oldtup != NULL) or forgets the move of a row. */
static void
move_note(Oid relid, const char *pk, HeapTuple oldtup)
{
	HTAB	   *h = moves_for_xact(oldtup != NULL);
	MoveKey		k;
	MoveNote   *n;
	bool		found;

	if (h == NULL)
		return;
	move_key(&k, relid, pk);
	if (oldtup == NULL)
	{
		n = hash_search(h, &k, HASH_FIND, NULL);
		if (n != NULL && strcmp(n->pk, pk) == 0)
		{
			hash_search(h, &k, HASH_REMOVE, NULL);
			move_count--;
		}
		return;
	}
	n = hash_search(h, &k, HASH_ENTER, &found);
	if (!found)
		move_count++;
	{
		MemoryContext old = MemoryContextSwitchTo(move_cxt);

		n->pk = pstrdup(pk);
		n->oldtup = heap_copytuple(oldtup);
		MemoryContextSwitchTo(old);
	}
}

/* True when this transaction has notes of moves not yet logged. */
static bool
moves_pending(void)
{
	return moves_for_xact(false) != NULL && move_count > 0;
}

/* Forgets a note once its move is logged. */
static void
move_done(MoveNote *n)
{
	hash_search(move_notes, &n->key, HASH_REMOVE, NULL);
	move_count--;
}

/* Takes the note of a row's move, or NULL. */
static MoveNote *
move_take(Oid relid, const char *pk)
{
	HTAB	   *h = moves_for_xact(false);
	MoveKey		k;
	MoveNote   *n;

	if (h == NULL || move_count == 0)
		return NULL;
	move_key(&k, relid, pk);
	n = hash_search(h, &k, HASH_FIND, NULL);
	if (n == NULL || strcmp(n->pk, pk) != 0)
		return NULL;
	return n;
}

/* --- stamp_row -------------------------------------------------------------- */

/*
 * The version the next insert into one relation starts at, for re-creating a
 * deleted row (conflict resolution): the row must continue after its
 * tombstone, or a device holding the old row's version 1 would pass version
 * checks against the new row.  Honoured only within the transaction that set
 * it, and only once.
 */
static Oid	next_insert_relid = InvalidOid;
static int64 next_insert_version = 0;
static LocalTransactionId next_insert_lxid = InvalidLocalTransactionId;

/* Makes the next insert into relid (in this transaction) get version. */
void
sync_stamp_next_insert(Oid relid, int64 version)
{
	next_insert_relid = relid;
	next_insert_version = version;
	next_insert_lxid = MyProcLocalTransactionId_compat();
}

/*
 * The byte offsets of the first n attributes' data in a tuple (-1: null or
 * not stored), walking it as heap_deform_tuple does.
 */
static void
tuple_offsets(HeapTuple tup, TupleDesc desc, int n, int32 *offs)
{
	HeapTupleHeader th = tup->t_data;
	bool		hasnulls = HeapTupleHasNulls(tup);
	bits8	   *bp = th->t_bits;
	char	   *tp = (char *) th + th->t_hoff;
	int			stored = Min(HeapTupleHeaderGetNatts(th), n);
	uint32		off = 0;
	int			i;

	for (i = 0; i < stored; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (hasnulls && att_isnull(i, bp))
		{
			offs[i] = -1;
			continue;
		}
		if (att->attlen == -1)
			off = att_align_pointer(off, att->attalign, -1, tp + off);
		else
			off = att_align_nominal(off, att->attalign);
		offs[i] = off;
		off = att_addlength_pointer(off, att->attlen, tp + off);
	}
	for (; i < n; i++)
		offs[i] = -1;
}

/*
 * The new row with version and updated_at set.  When the trigger's slot holds
 * the row as a tuple of its own and has not deformed it, the two fields are
 * overwritten in that tuple (the executor keeps it: the same tuple is
 * returned); otherwise in a copy.
 */
static HeapTuple
stamp_tuple(HeapTuple newtup, const int32 *offs, TupleTableSlot *slot, TupleDesc desc,
			const StampEntry *e, int64 version, TimestampTz now)
{
	int32		voff;
	int32		uoff;
	HeapTuple	res;

	voff = offs[e->version_att - 1];
	uoff = offs[e->updated_at_att - 1];
	if (voff < 0 || uoff < 0)
	{
		/* a null version or updated_at (a table without NOT NULL there): form the row anew */
		int			cols[2] = {e->version_att, e->updated_at_att};
		Datum		vals[2] = {Int64GetDatum(version), TimestampTzGetDatum(now)};
		bool		nulls[2] = {false, false};

		return heap_modify_tuple_by_cols(newtup, desc, 2, cols, vals, nulls);
	}
	if (slot != NULL && slot->tts_nvalid == 0 && TTS_SHOULDFREE(slot) &&
		(TTS_IS_HEAPTUPLE(slot) || TTS_IS_BUFFERTUPLE(slot)) &&
		((HeapTupleTableSlot *) slot)->tuple == newtup)
		res = newtup;
	else
		res = heap_copytuple(newtup);
	memcpy((char *) res->t_data + res->t_data->t_hoff + voff, &version, sizeof(int64));
	memcpy((char *) res->t_data + res->t_data->t_hoff + uoff, &now, sizeof(TimestampTz));
	return res;
}

/*
 * Attribute a of a tuple whose offsets tuple_offsets found: read in place,
 * or through heap_getattr when null or not stored (a column added since the
 * tuple was written has its default).
 */
static inline Datum
stamp_attr(HeapTuple tup, TupleDesc desc, const int32 *offs, AttrNumber a, bool *isnull)
{
	if (offs[a - 1] >= 0)
	{
		*isnull = false;
		return fetchatt(TupleDescAttr(desc, a - 1), (char *) tup->t_data + tup->t_data->t_hoff + offs[a - 1]);
	}
	return heap_getattr(tup, a, desc, isnull);
}

/* The stamp_row cache entry of the trigger's relation, filled on first use. */
static StampEntry *
stamp_entry(TriggerData *td)
{
	Relation	rel = td->tg_relation;
	Oid			relid = RelationGetRelid(rel);
	StampEntry *e;
	bool		found;

	capture_init_caches();
	e = hash_search(stamp_cache, &relid, HASH_ENTER, &found);
	if (found)
		return e;
	PG_TRY();
	{
		Oid			outfunc;
		bool		varlena;

		e->version_att = required_column(rel, "version", INT8OID);
		e->updated_at_att = required_column(rel, "updated_at", TIMESTAMPTZOID);
		e->pk_att = required_column(rel, td->tg_trigger->tgargs[0], InvalidOid);
		e->practice_att = InvalidAttrNumber;
		if (td->tg_trigger->tgnargs == 2 && td->tg_trigger->tgargs[1][0] != '\0')
			e->practice_att = required_column(rel, td->tg_trigger->tgargs[1], InvalidOid);
		getTypeOutputInfo(TupleDescAttr(RelationGetDescr(rel), e->pk_att - 1)->atttypid,
						  &outfunc, &varlena);
		fmgr_info_cxt(outfunc, &e->pk_out, CacheMemoryContext);
	}
	PG_CATCH();
	{
		hash_search(stamp_cache, &relid, HASH_REMOVE, NULL);
		PG_RE_THROW();
	}
	PG_END_TRY();
	return e;
}

/*
 * smartsync.stamp_row(): BEFORE ROW trigger keeping version and updated_at.
 * Argument 0 is the primary-key column, whose change is refused; argument 1
 * (optional) the practice column, whose change is noted for capture.
 */
Datum
smartsync_stamp_row(PG_FUNCTION_ARGS)
{
	TriggerData *td = check_trigger_call(fcinfo, "smartsync.stamp_row");
	Relation	rel = td->tg_relation;
	TupleDesc	desc = RelationGetDescr(rel);
	Oid			relid = RelationGetRelid(rel);
	StampEntry *e;
	HeapTuple	newtup;
	int64		version = 1;
	int			n;
	int32		newoffs_buf[64];
	int32		oldoffs_buf[64];
	int32	   *newoffs = newoffs_buf;
	int32	   *oldoffs = oldoffs_buf;

	if (!TRIGGER_FIRED_BEFORE(td->tg_event) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		!(TRIGGER_FIRED_BY_INSERT(td->tg_event) || TRIGGER_FIRED_BY_UPDATE(td->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_SS_TRIGGER_MISUSE),
				 errmsg("smartsync.stamp_row() must be a BEFORE INSERT OR UPDATE row trigger")));
	if (td->tg_trigger->tgnargs != 1 && td->tg_trigger->tgnargs != 2)
		ereport(ERROR,
				(errcode(ERRCODE_SS_TRIGGER_MISUSE),
				 errmsg("smartsync.stamp_row() takes the primary-key column and the practice column as its arguments")));

	e = stamp_entry(td);
	n = Max(Max(e->version_att, e->updated_at_att), Max(e->pk_att, e->practice_att));
	if (n > (int) lengthof(newoffs_buf))
	{
		newoffs = palloc(sizeof(int32) * n);
		oldoffs = palloc(sizeof(int32) * n);
	}
	newtup = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple;
	tuple_offsets(newtup, desc, n, newoffs);	/* one walk of each row: no attribute read twice */

	if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
	{
		HeapTuple	oldtup = td->tg_trigtuple;
		bool		oldnull,
					newnull;
		Datum		oldpk;
		Datum		newpk;
		Form_pg_attribute pkatt = TupleDescAttr(desc, e->pk_att - 1);
		Datum		oldver;
		bool		vernull;

		tuple_offsets(oldtup, desc, n, oldoffs);
		oldpk = stamp_attr(oldtup, desc, oldoffs, e->pk_att, &oldnull);
		newpk = stamp_attr(newtup, desc, newoffs, e->pk_att, &newnull);
		if (oldnull != newnull ||
			(!oldnull && !datumIsEqual(oldpk, newpk, pkatt->attbyval, pkatt->attlen)))
			ereport(ERROR,
					(errcode(ERRCODE_SS_PK_CHANGED),
					 errmsg("the primary key of a tracked row cannot change"),
					 errdetail("Table \"%s\" is tracked by smartsync; clients know rows by their id.",
							   RelationGetRelationName(rel)),
					 errhint("Delete the row and insert a new one instead.")));
		oldver = stamp_attr(oldtup, desc, oldoffs, e->version_att, &vernull);
		version = vernull ? 1 : DatumGetInt64(oldver) + 1;

		/* a move to another practice: capture logs it as a delete there and a create here */
		if (e->practice_att != InvalidAttrNumber && !oldnull)
		{
			Form_pg_attribute patt = TupleDescAttr(desc, e->practice_att - 1);
			bool		opnull,
						npnull;
			Datum		op = stamp_attr(oldtup, desc, oldoffs, e->practice_att, &opnull);
			Datum		np = stamp_attr(newtup, desc, newoffs, e->practice_att, &npnull);
			bool		moved = opnull != npnull ||
				(!opnull && !datumIsEqual(op, np, patt->attbyval, patt->attlen));

			if (moved || moves_pending())
				move_note(relid, OutputFunctionCall(&e->pk_out, oldpk), moved ? oldtup : NULL);
		}
	}
	else
	{
		if (next_insert_relid == relid && next_insert_lxid == MyProcLocalTransactionId_compat())
			version = next_insert_version;
		next_insert_relid = InvalidOid;
	}

	PG_RETURN_POINTER(stamp_tuple(newtup, newoffs,
								  TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newslot : td->tg_trigslot,
								  desc, e, version, GetCurrentStatementStartTimestamp()));
}

/* --- the registry check ----------------------------------------------------- */

/*
 * Finds one row of a smartsync registry table through its unique index on a
 * text or name column.  On Citus the registry tables are reference tables: the
 * rows are in the table's local shard, whose index carries another name, so
 * the index is the one whose first key is that column.
 */
static bool
registry_has(const char *table, const char *column, const char *value,
			 const char *column2, const char *value2)
{
	Oid			nsp = get_namespace_oid("smartsync", false);
	Oid			relid = get_relname_relid(table, nsp);
	Oid			indexid = InvalidOid;
	List	   *indexes;
	ListCell   *lc;
	Relation	rel;
	Relation	idx;
	AttrNumber	att;
	AttrNumber	att2 = InvalidAttrNumber;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	bool		found = false;
	Oid			typid;
	NameData	name;

	if (!OidIsValid(relid))
		elog(ERROR, "smartsync.%s is missing", table);
	relid = sync_citus_local_relation(relid);
	rel = table_open(relid, AccessShareLock);
	att = get_attnum(relid, column);
	if (column2 != NULL)
		att2 = get_attnum(relid, column2);
	if (att == InvalidAttrNumber || (column2 != NULL && att2 == InvalidAttrNumber))
		elog(ERROR, "smartsync.%s lacks column %s", table, column);
	indexes = RelationGetIndexList(rel);
	foreach(lc, indexes)
	{
		Relation	cand = index_open(lfirst_oid(lc), AccessShareLock);
		Form_pg_index ind = cand->rd_index;

		if (ind->indisunique && ind->indisvalid && ind->indnkeyatts >= 1 &&
			ind->indkey.values[0] == att && cand->rd_rel->relam == BTREE_AM_OID &&
			RelationGetIndexPredicate(cand) == NIL)
			indexid = lfirst_oid(lc);
		index_close(cand, AccessShareLock);
		if (OidIsValid(indexid))
			break;
	}
	list_free(indexes);
	if (!OidIsValid(indexid))
		elog(ERROR, "smartsync.%s has no unique index on %s", table, column);
	typid = TupleDescAttr(RelationGetDescr(rel), att - 1)->atttypid;
	idx = index_open(indexid, AccessShareLock);
	if (typid == NAMEOID)
	{
		namestrcpy(&name, value);
		ScanKeyEntryInitialize(&key, 0, 1, BTEqualStrategyNumber, InvalidOid,
							   idx->rd_indcollation[0], F_NAMEEQ, NameGetDatum(&name));
	}
	else
		ScanKeyEntryInitialize(&key, 0, 1, BTEqualStrategyNumber, InvalidOid,
							   idx->rd_indcollation[0], F_TEXTEQ, CStringGetTextDatum(value));
	index_close(idx, AccessShareLock);
	key.sk_attno = att;
	scan = systable_beginscan(rel, indexid, true, GetActiveSnapshot(), 1, &key);
	while (!found && HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		d;

		if (column2 == NULL)
		{
			found = true;
			break;
		}
		d = heap_getattr(tup, att2, RelationGetDescr(rel), &isnull);
		found = !isnull && strcmp(NameStr(*DatumGetName(d)), value2) == 0;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * Raises SS121 unless relname (a tenant table, or the table a Citus shard
 * stands for) is the table of a registered entity type in a provisioned
 * tenant's schema.  Read without SPI or planning: a connection's
 * first write to each tenant table pays two index probes here.
 */
static void
check_tracked(const char *relname, const char *entity_type, const char *nspname)
{
	if (!registry_has("entity_types", "entity_type", entity_type, "table_name", relname) ||
		!registry_has("tenants", "schema_name", nspname, NULL, NULL))
		ereport(ERROR,
				(errcode(ERRCODE_SS_NOT_TRACKED),
				 errmsg("table \"%s.%s\" is not a registered entity table of a tenant",
						nspname, relname),
				 errdetail("The capture trigger names entity type \"%s\".", entity_type),
				 errhint("Register the entity type and provision the tenant instead of creating capture triggers by hand.")));
}

/* --- the capture target ------------------------------------------------------ */

/* True when capture can fill this index itself: plain columns, no predicate, immediate. */
static bool
index_direct(Relation idx, IndexInfo *ii)
{
	return ii->ii_Expressions == NIL && ii->ii_Predicate == NIL &&
		ii->ii_ExclusionOps == NULL && ii->ii_ReadyForInserts &&
		(!idx->rd_index->indisunique || idx->rd_index->indimmediate);
}

/*
 * Resolves what a capture trigger needs, once: the tenant's change log, its
 * columns, indexes and sequence, the source columns and their output
 * functions, and the row-to-jsonb plan.  Raises SS121 for a table that is
 * not tracked.
 */
static void
capture_target_fill(CaptureTarget *e, TriggerData *td)
{
	Relation	rel = td->tg_relation;
	Trigger    *tg = td->tg_trigger;
	TupleDesc	desc = RelationGetDescr(rel);
	char	   *nspname = get_namespace_name(RelationGetNamespace(rel));
	Relation	logrel;
	TupleDesc	logdesc;
	List	   *indexes;
	ListCell   *lc;
	Oid			outfunc;
	bool		varlena;
	MemoryContext oldcxt;
	const char *relname = RelationGetRelationName(rel);
	Oid			seqrelid;		/* the log whose identity sequence numbers the rows */

	/* Citus: a shard stands for its table and logs to the co-located log shard */
	e->citus_origin = InvalidOid;
	if (!sync_citus_capture_target(rel, &relname, &e->logrelid, &seqrelid, &e->citus_origin))
		e->logrelid = seqrelid = get_relname_relid("sync_changes", RelationGetNamespace(rel));
	check_tracked(relname, tg->tgargs[0], nspname);
	if (!OidIsValid(e->logrelid))
		ereport(ERROR,
				(errcode(ERRCODE_SS_NOT_TRACKED),
				 errmsg("schema \"%s\" has no change log", nspname),
				 errhint("Provision the tenant with smartsync.provision_tenant().")));

	e->cxt = AllocSetContextCreate(CacheMemoryContext, "smartsync capture target",
								   ALLOCSET_SMALL_SIZES);
	e->orders = NULL;
	oldcxt = MemoryContextSwitchTo(e->cxt);

	for (int i = 0; i < 3; i++)
		e->args[i] = pstrdup(tg->tgargs[i]);
	e->entity_type = e->args[0];
	e->entity_type_len = strlen(e->entity_type);

	/* the source columns */
	e->pk_att = required_column(rel, tg->tgargs[1], InvalidOid);
	e->version_att = required_column(rel, "version", INT8OID);
	e->updated_at_att = required_column(rel, "updated_at", TIMESTAMPTZOID);
	e->natts = desc->natts;
	e->include = palloc0(sizeof(bool) * Max(desc->natts, 1));
	/*
	 * An update changes the columns it sets and those stamp_row sets; another
	 * BEFORE UPDATE row trigger could change any column, so then every update
	 * logs the whole row.
	 */
	e->deltas = true;
	for (int i = 0; rel->trigdesc != NULL && i < rel->trigdesc->numtriggers; i++)
	{
		Trigger    *t = &rel->trigdesc->triggers[i];

		if (TRIGGER_FOR_ROW(t->tgtype) && TRIGGER_FOR_BEFORE(t->tgtype) &&
			TRIGGER_FOR_UPDATE(t->tgtype) && t->tgenabled != TRIGGER_DISABLED &&
			strcmp(t->tgname, "smartsync_stamp") != 0)
			e->deltas = false;
	}
	getTypeOutputInfo(TupleDescAttr(desc, e->pk_att - 1)->atttypid, &outfunc, &varlena);
	fmgr_info_cxt(outfunc, &e->pk_out, e->cxt);
	e->practice_att = InvalidAttrNumber;
	if (tg->tgargs[2][0] != '\0')
	{
		e->practice_att = required_column(rel, tg->tgargs[2], InvalidOid);
		getTypeOutputInfo(TupleDescAttr(desc, e->practice_att - 1)->atttypid, &outfunc, &varlena);
		fmgr_info_cxt(outfunc, &e->practice_out, e->cxt);
	}
	e->json = rowjson_plan_create(desc);

	/* the change log's columns, sequence and indexes */
	logrel = table_open(e->logrelid, AccessShareLock);
	logdesc = RelationGetDescr(logrel);
	e->lognatts = logdesc->natts;
	e->generic = false;
	for (int c = 0; c < LOG_NCOLS; c++)
		e->logatt[c] = InvalidAttrNumber;
	for (int i = 0; i < logdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(logdesc, i);
		bool		ours = false;

		if (att->attisdropped)
			continue;
		for (int c = 0; c < LOG_NCOLS; c++)
		{
			if (strcmp(NameStr(att->attname), log_colnames[c]) != 0)
				continue;
			if (att->atttypid != log_coltypes[c])
				elog(ERROR, "change log column \"%s\" has an unexpected type", log_colnames[c]);
			e->logatt[c] = att->attnum;
			ours = true;
		}
		if (!ours && (att->atthasdef || att->attidentity || att->attgenerated))
			e->generic = true;	/* columns added by others get their defaults */
	}
	for (int c = 0; c < LOG_NCOLS; c++)
		if (e->logatt[c] == InvalidAttrNumber && !log_optional[c])
			elog(ERROR, "change log of schema \"%s\" has no column \"%s\"", nspname, log_colnames[c]);
	if (seqrelid == e->logrelid)
		e->seqoid = getIdentitySequence_compat(logrel, e->logatt[LOG_SEQ], true);
	else
	{
		/* Citus: the logical log's sequence numbers the shard's rows */
		Relation	seqrel = table_open(seqrelid, AccessShareLock);

		e->seqoid = getIdentitySequence_compat(seqrel, get_attnum(seqrelid, "seq"), true);
		table_close(seqrel, AccessShareLock);
	}
	if (!OidIsValid(e->seqoid))
		elog(ERROR, "change log of schema \"%s\" has no identity sequence on seq", nspname);

	indexes = RelationGetIndexList(logrel);
	e->nindexes = list_length(indexes);
	e->indexes = palloc0(sizeof(CaptureIndex) * Max(e->nindexes, 1));
	e->nindexes = 0;
	foreach(lc, indexes)
	{
		Relation	idx = index_open(lfirst_oid(lc), AccessShareLock);
		CaptureIndex *ci = &e->indexes[e->nindexes++];

		ci->indexoid = RelationGetRelid(idx);
		ci->info = BuildIndexInfo(idx);
		if (!index_direct(idx, ci->info))
			e->generic = true;
		index_close(idx, AccessShareLock);
	}
	table_close(logrel, AccessShareLock);
	MemoryContextSwitchTo(oldcxt);
	e->valid = true;
}

/* Finds (filling it when stale, or made for other arguments) the target of a capture trigger. */
static CaptureTarget *
capture_target(TriggerData *td)
{
	Oid			relid = RelationGetRelid(td->tg_relation);
	Trigger    *tg = td->tg_trigger;
	CaptureTarget *e;
	bool		found;

	capture_init_caches();
	e = hash_search(capture_cache, &relid, HASH_ENTER, &found);
	if (!found)
	{
		e->valid = false;
		e->cxt = NULL;
		e->logrelid = InvalidOid;
		e->nindexes = 0;
		e->orders = NULL;
	}
	if (e->valid && (strcmp(e->args[0], tg->tgargs[0]) != 0 || strcmp(e->args[1], tg->tgargs[1]) != 0 ||
					 strcmp(e->args[2], tg->tgargs[2]) != 0))
		e->valid = false;
	if (!e->valid)
	{
		if (e->cxt != NULL)
			MemoryContextDelete(e->cxt);
		e->cxt = NULL;
		e->nindexes = 0;
		PG_TRY();
		{
			capture_target_fill(e, td);
		}
		PG_CATCH();
		{
			if (e->cxt != NULL)
				MemoryContextDelete(e->cxt);
			hash_search(capture_cache, &relid, HASH_REMOVE, NULL);
			PG_RE_THROW();
		}
		PG_END_TRY();
	}
	return e;
}

/* --- who is writing ------------------------------------------------------------ */

/*
 * The user and client a change is logged under, from the request context.
 * Claims are parsed once per distinct request.jwt.claims value, not per
 * statement.
 */
typedef struct CaptureWho
{
	char	   *user_id;		/* NULL when absent */
	char	   *client_id;
} CaptureWho;

static char *who_claims = NULL; /* the claims text the cache below was read from */
static CaptureWho who_cached;

static void
capture_who(CaptureWho *who)
{
	const char *claims = GetConfigOption("request.jwt.claims", true, false);
	SyncContext ctx;

	if (claims == NULL || claims[0] == '\0')
	{
		/* no claims: the settings a direct SQL caller makes (as sync_context_read reads them) */
		who->user_id = smartsync_user_id_setting && smartsync_user_id_setting[0] ?
			smartsync_user_id_setting : NULL;
		who->client_id = smartsync_client_id_setting && smartsync_client_id_setting[0] ?
			smartsync_client_id_setting : NULL;
		return;
	}
	if (who_claims != NULL && strcmp(claims, who_claims) == 0)
	{
		*who = who_cached;
		return;
	}
	sync_context_read(&ctx);
	who->user_id = ctx.user_id;
	who->client_id = ctx.client_id;
	/* remember the claims' reading, in memory of our own */
	if (who_claims != NULL)
		pfree(who_claims);
	if (who_cached.user_id != NULL)
		pfree(who_cached.user_id);
	if (who_cached.client_id != NULL)
		pfree(who_cached.client_id);
	who_claims = MemoryContextStrdup(TopMemoryContext, claims);
	who_cached.user_id = ctx.user_id ? MemoryContextStrdup(TopMemoryContext, ctx.user_id) : NULL;
	who_cached.client_id = ctx.client_id ? MemoryContextStrdup(TopMemoryContext, ctx.client_id) : NULL;
}

/* --- writing the log ------------------------------------------------------------- */

#define CAPTURE_BATCH_ROWS	1000
#define CAPTURE_BATCH_BYTES	(1024 * 1024)

/*
 * One statement's writing to the log: rows are collected in a batch, then
 * inserted together (writer_flush).  Everything a batch allocates lives in
 * batchcxt, reset after every batch.
 */
typedef struct LogWriter
{
	CaptureTarget *e;
	Relation	logrel;
	TupleDesc	logdesc;
	TupleDesc	slotdesc;		/* a copy of logdesc, not reference-counted, for the batch's slots */
	Relation   *indexrels;
	int		   *perm;			/* scratch: the batch's rows in one index's order */
	CommandId	cid;
	BulkInsertState bistate;	/* for large statements */
	MemoryContext stmtcxt;		/* lives as long as the writer */
	MemoryContext batchcxt;		/* reset after every batch */
	/* the batch */
	int			n;
	int			cap;
	Size		bytes;
	TupleTableSlot **slots;
	Datum	   *values;			/* cap rows of lognatts values */
	bool	   *nulls;
	/* the generic path: defaults of other columns, any kind of index */
	EState	   *estate;
	ResultRelInfo *rri;
	ExprState **defaults;
	TupleTableSlot *vslot;
	/* values every row of the statement shares */
	Datum		op_d[3];		/* create, update, delete */
	Datum		etype_d;
	Datum		xid_d;
	Datum		now_d;
	Datum		user_d;
	Datum		client_d;
} LogWriter;

/*
 * Prepares the sort of a batch's entries for each btree index of the log
 * (indexrels: the indexes, open), kept with the target: a statement of one
 * row never needs it.
 */
static void
target_prepare_orders(CaptureTarget *e, Relation *indexrels)
{
	IndexOrder *orders = MemoryContextAllocZero(e->cxt, sizeof(IndexOrder) * Max(e->nindexes, 1));

	for (int i = 0; i < e->nindexes; i++)
	{
		Relation	idx = indexrels[i];
		IndexInfo  *ii = e->indexes[i].info;
		IndexOrder *o = &orders[i];

		if (idx->rd_rel->relam != BTREE_AM_OID)
			continue;
		for (int k = 0; k < ii->ii_NumIndexKeyAttrs; k++)
		{
			SortSupport ssup = &o->keys[k];
			int16		opt = idx->rd_indoption[k];

			o->atts[k] = ii->ii_IndexAttrNumbers[k];
			ssup->ssup_cxt = e->cxt;
			ssup->ssup_collation = idx->rd_indcollation[k];
			ssup->ssup_nulls_first = (opt & INDOPTION_NULLS_FIRST) != 0;
			ssup->ssup_attno = k + 1;
			PrepareSortSupportFromIndexRel_compat(idx, (opt & INDOPTION_DESC) ?
												  BTGreaterStrategyNumber : BTLessStrategyNumber,
												  ssup);
		}
		o->nkeys = ii->ii_NumIndexKeyAttrs;
	}
	e->orders = orders;
}

/* Starts writing nrows source rows to the (opened and locked) log. */
static void
writer_open(LogWriter *w, CaptureTarget *e, Relation logrel, const CaptureWho *who, int64 nrows)
{
	memset(w, 0, sizeof(*w));
	w->e = e;
	w->logrel = logrel;
	w->logdesc = RelationGetDescr(logrel);
	w->cid = GetCurrentCommandId(true);
	w->stmtcxt = CurrentMemoryContext;
	w->batchcxt = AllocSetContextCreate(CurrentMemoryContext, "smartsync capture batch",
										ALLOCSET_DEFAULT_SIZES);
	/* a source row makes at most two log rows (a practice move) */
	w->cap = e->generic ? 2 : (int) Min(Max(nrows, 1) * 2, CAPTURE_BATCH_ROWS);
	w->slots = palloc0(sizeof(TupleTableSlot *) * w->cap);
	/*
	 * The slots share a copy of the log's descriptor: the descriptor itself is
	 * reference-counted, and a thousand slots pinning it would make a thousand
	 * entries of one key in the resource owner (costly to add and remove)
	 */
	w->slotdesc = CreateTupleDescCopy(w->logdesc);
	w->values = palloc(sizeof(Datum) * e->lognatts * w->cap);
	w->nulls = palloc(sizeof(bool) * e->lognatts * w->cap);
	if (nrows > CAPTURE_BATCH_ROWS)
		w->bistate = GetBulkInsertState();

	w->op_d[0] = CStringGetTextDatum("create");
	w->op_d[1] = CStringGetTextDatum("update");
	w->op_d[2] = CStringGetTextDatum("delete");
	w->etype_d = CStringGetTextDatum(e->entity_type);
	w->xid_d = FullTransactionIdGetDatum(GetTopFullTransactionId());
	/*
	 * changed_at: the clock now, after the transaction has its xid, not the
	 * statement's start: pull's time watermark (src/pull.c) relies on every
	 * change being stamped no earlier than its transaction took its xid.
	 */
	w->now_d = TimestampTzGetDatum(GetCurrentTimestamp());
	w->user_d = who->user_id ? CStringGetTextDatum(who->user_id) : (Datum) 0;
	w->client_d = who->client_id ? CStringGetTextDatum(who->client_id) : (Datum) 0;

	if (!e->generic)
	{
		w->indexrels = palloc(sizeof(Relation) * Max(e->nindexes, 1));
		for (int i = 0; i < e->nindexes; i++)
			w->indexrels[i] = index_open(e->indexes[i].indexoid, RowExclusiveLock);
		return;
	}

	/* the generic path: the executor's index insertion and column defaults */
	w->estate = CreateExecutorState();
	w->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(w->rri, w->logrel, 1, NULL, 0);
	ExecOpenIndices(w->rri, false);
	w->vslot = MakeSingleTupleTableSlot(w->logdesc, &TTSOpsVirtual);
	w->defaults = palloc0(sizeof(ExprState *) * w->logdesc->natts);
	for (int i = 0; i < w->logdesc->natts; i++)
	{
		AttrNumber	attnum = i + 1;
		bool		ours = false;
		Node	   *def;

		for (int c = 0; c < LOG_NCOLS; c++)
			ours |= (attnum == e->logatt[c]);
		if (ours || TupleDescAttr(w->logdesc, i)->attisdropped)
			continue;
		def = build_column_default(w->logrel, attnum);
		if (def != NULL)
			w->defaults[i] = ExecInitExpr(expression_planner((Expr *) def), NULL);
	}
}

/* Compares two rows of the batch by one index's key (then by their order in the batch). */
static int
writer_row_cmp(const void *a, const void *b, void *arg)
{
	LogWriter  *w = ((void **) arg)[0];
	IndexOrder *o = ((void **) arg)[1];
	int			ra = *(const int *) a;
	int			rb = *(const int *) b;
	int			natts = w->e->lognatts;

	for (int k = 0; k < o->nkeys; k++)
	{
		int			c = o->atts[k] - 1;
		int			cmp = ApplySortComparator(w->values[ra * natts + c], w->nulls[ra * natts + c],
											  w->values[rb * natts + c], w->nulls[rb * natts + c],
											  &o->keys[k]);

		if (cmp != 0)
			return cmp;
	}
	return (ra > rb) - (ra < rb);
}

/* Puts the batch's rows into w->perm in the order of one index. */
static void
writer_sort(LogWriter *w, IndexOrder *o)
{
	void	   *arg[2] = {w, o};

	for (int r = 0; r < w->n; r++)
		w->perm[r] = r;
	qsort_arg(w->perm, w->n, sizeof(int), writer_row_cmp, arg);
}

/* Inserts the batch: heap tuples first (several per page and WAL record), then index entries. */
static void
writer_flush(LogWriter *w)
{
	CaptureTarget *e = w->e;
	int			natts = e->lognatts;

	if (w->n == 0)
		return;
	if (e->generic)
	{
		for (int r = 0; r < w->n; r++)
		{
			ExecClearTuple(w->vslot);
			memcpy(w->vslot->tts_values, &w->values[r * natts], sizeof(Datum) * natts);
			memcpy(w->vslot->tts_isnull, &w->nulls[r * natts], sizeof(bool) * natts);
			ExecStoreVirtualTuple(w->vslot);
			table_tuple_insert(w->logrel, w->vslot, w->cid, 0, w->bistate);
			if (w->rri->ri_NumIndices > 0)
				ExecInsertIndexTuples_compat(w->rri, w->vslot, w->estate, false, false, NULL, NIL);
		}
		ExecClearTuple(w->vslot);
		ResetPerTupleExprContext(w->estate);
	}
	else
	{
		if (w->n == 1)
		{
			HeapTuple	tup = ExecFetchSlotHeapTuple(w->slots[0], false, NULL);

			heap_insert(w->logrel, tup, w->cid, 0, w->bistate);
			w->slots[0]->tts_tid = tup->t_self;
		}
		else
			heap_multi_insert(w->logrel, w->slots, w->n, w->cid, 0, w->bistate);
		/* then each index's entries, in the index's order */
		if (w->n > 1 && e->orders == NULL)
			target_prepare_orders(e, w->indexrels);
		if (w->n > 1 && w->perm == NULL)
			w->perm = MemoryContextAlloc(w->stmtcxt, sizeof(int) * w->cap);
		for (int i = 0; i < e->nindexes; i++)
		{
			IndexInfo  *ii = e->indexes[i].info;
			Relation	idx = w->indexrels[i];
			bool		sorted = w->n > 1 && e->orders[i].nkeys > 0;

			if (sorted)
				writer_sort(w, &e->orders[i]);
			for (int p = 0; p < w->n; p++)
			{
				int			r = sorted ? w->perm[p] : p;
				Datum	   *v = &w->values[r * natts];
				bool	   *nl = &w->nulls[r * natts];
				Datum		iv[INDEX_MAX_KEYS];
				bool		in[INDEX_MAX_KEYS];

				for (int k = 0; k < ii->ii_NumIndexAttrs; k++)
				{
					AttrNumber	a = ii->ii_IndexAttrNumbers[k];

					iv[k] = v[a - 1];
					in[k] = nl[a - 1];
				}
				index_insert(idx, iv, in, &w->slots[r]->tts_tid, w->logrel,
							 idx->rd_index->indisunique ? UNIQUE_CHECK_YES : UNIQUE_CHECK_NO,
							 false, ii);
			}
		}
		for (int r = 0; r < w->n; r++)
			ExecClearTuple(w->slots[r]);
	}
	w->n = 0;
	w->bytes = 0;
	MemoryContextReset(w->batchcxt);
}

/* Flushes the batch unless it has room for two more rows; call before a row's allocations. */
static void
writer_make_room(LogWriter *w)
{
	if (w->n + 2 > w->cap || w->bytes > CAPTURE_BATCH_BYTES)
		writer_flush(w);
}

/* Adds one log row to the batch (its values allocated in the batch's context). */
static void
writer_add(LogWriter *w, const char *op, Datum entity_id, int64 entity_key, Jsonb *data,
		   int64 version, Datum practice, bool practice_null)
{
	CaptureTarget *e = w->e;
	int			natts = e->lognatts;
	Datum	   *v = &w->values[w->n * natts];
	bool	   *n = &w->nulls[w->n * natts];
	const AttrNumber *la = e->logatt;

	Assert(w->n < w->cap);
	for (int i = 0; i < natts; i++)
	{
		v[i] = (Datum) 0;
		n[i] = true;
	}
#define SET(col, val) do { v[la[col] - 1] = (val); n[la[col] - 1] = false; } while (0)
	SET(LOG_SEQ, Int64GetDatum(nextval_internal(e->seqoid, false)));
	SET(LOG_XID, w->xid_d);
	SET(LOG_ENTITY_TYPE, w->etype_d);
	SET(LOG_ENTITY_ID, entity_id);
	if (la[LOG_ENTITY_KEY] != InvalidAttrNumber)
		SET(LOG_ENTITY_KEY, Int64GetDatum(entity_key));
	SET(LOG_OPERATION, w->op_d[op[0] == 'c' ? 0 : op[0] == 'u' ? 1 : 2]);
	SET(LOG_DATA, JsonbPGetDatum(data));
	SET(LOG_VERSION, Int64GetDatum(version));
	if (!practice_null)
		SET(LOG_PRACTICE_ID, practice);
	if (w->user_d != (Datum) 0)
		SET(LOG_USER_ID, w->user_d);
	if (w->client_d != (Datum) 0)
		SET(LOG_CLIENT_ID, w->client_d);
	if (la[LOG_CHANGED_AT] != InvalidAttrNumber)
		SET(LOG_CHANGED_AT, w->now_d);
#undef SET
	w->bytes += VARSIZE(data);

	if (e->generic)
	{
		ExprContext *econtext = GetPerTupleExprContext(w->estate);

		for (int i = 0; i < natts; i++)
			if (w->defaults[i] != NULL)
				v[i] = ExecEvalExpr(w->defaults[i], econtext, &n[i]);
	}
	else
	{
		if (w->slots[w->n] == NULL)
		{
			MemoryContext old = MemoryContextSwitchTo(w->stmtcxt);

			w->slots[w->n] = MakeSingleTupleTableSlot(w->slotdesc, &TTSOpsHeapTuple);
			MemoryContextSwitchTo(old);
		}
		ExecStoreHeapTuple(heap_form_tuple(w->logdesc, v, n), w->slots[w->n], false);
	}
	w->n++;
}

/* Inserts what is left and closes the log (its lock is kept to the end of the transaction). */
static void
writer_close(LogWriter *w)
{
	writer_flush(w);
	for (int r = 0; r < w->cap; r++)
		if (w->slots[r] != NULL)
			ExecDropSingleTupleTableSlot(w->slots[r]);
	if (w->bistate != NULL)
		FreeBulkInsertState(w->bistate);
	if (w->e->generic)
	{
		ExecDropSingleTupleTableSlot(w->vslot);
		ExecCloseIndices(w->rri);
		FreeExecutorState(w->estate);
	}
	else
	{
		for (int i = 0; i < w->e->nindexes; i++)
			index_close(w->indexrels[i], NoLock);
	}
	table_close(w->logrel, NoLock);
	MemoryContextDelete(w->batchcxt);
}

/*
 * Appends every row of the statement's transition table to the tenant's
 * change log (opened and locked by the caller).  A row that moved to another
 * practice (noted by stamp_row) becomes a delete under the old practice and
 * a create under the new one.
 */
static void
capture_rows(TriggerData *td, CaptureTarget *e, Relation logrel, const char *op,
			 const CaptureWho *who)
{
	Relation	rel = td->tg_relation;
	TupleDesc	desc = RelationGetDescr(rel);
	bool		is_delete = TRIGGER_FIRED_BY_DELETE(td->tg_event);
	bool		moves = TRIGGER_FIRED_BY_UPDATE(td->tg_event) &&
		e->practice_att != InvalidAttrNumber && moves_pending();
	Tuplestorestate *ts = is_delete ? td->tg_oldtable : td->tg_newtable;
	TupleTableSlot *src = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	TupleTableSlot *oldslot = NULL;
	LogWriter	w;
	bool		deltas = TRIGGER_FIRED_BY_UPDATE(td->tg_event) && e->deltas &&
		td->tg_updatedcols != NULL;

	if (deltas)
	{
		int			k = -1;

		memset(e->include, 0, sizeof(bool) * e->natts);
		while ((k = bms_next_member(td->tg_updatedcols, k)) >= 0)
		{
			AttrNumber	a = k + FirstLowInvalidHeapAttributeNumber;

			if (a > 0 && a <= e->natts)
				e->include[a - 1] = true;
		}
		/*
		 * the log row's version is the row's; updated_at, which stamp_row set,
		 * is logged (changed_at is the clock at capture, for pull's watermark)
		 */
		e->include[e->version_att - 1] = false;
		e->include[e->updated_at_att - 1] = true;
	}

	writer_open(&w, e, logrel, who, tuplestore_tuple_count(ts));
	tuplestore_rescan(ts);		/* from the first row, whatever read it before */
	if (moves)
		oldslot = MakeSingleTupleTableSlot(desc, &TTSOpsHeapTuple);

	while (tuplestore_gettupleslot(ts, true, false, src))
	{
		MemoryContext old;
		bool		isnull;
		Datum		d;
		char	   *id;
		int			idlen;
		Datum		id_d;
		int64		key;
		int64		version;
		Datum		practice = (Datum) 0;
		bool		practice_null = true;
		MoveNote   *move = NULL;

		writer_make_room(&w);
		old = MemoryContextSwitchTo(w.batchcxt);
		slot_getallattrs(src);
		d = slot_getattr(src, e->pk_att, &isnull);
		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_SS_MISSING_ROW_COLUMNS),
					 errmsg("a tracked row of \"%s\" has no id", RelationGetRelationName(rel))));
		id = OutputFunctionCall(&e->pk_out, d);
		idlen = strlen(id);
		id_d = PointerGetDatum(cstring_to_text_with_len(id, idlen));
		key = sync_entity_key(e->entity_type, e->entity_type_len, id, idlen);
		d = slot_getattr(src, e->version_att, &isnull);
		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_SS_MISSING_ROW_COLUMNS),
					 errmsg("a tracked row of \"%s\" has no version", RelationGetRelationName(rel))));
		version = DatumGetInt64(d);
		if (is_delete)			/* a tombstone is the next version */
			version++;
		if (e->practice_att != InvalidAttrNumber)
		{
			d = slot_getattr(src, e->practice_att, &practice_null);
			if (!practice_null)
				practice = CStringGetTextDatum(OutputFunctionCall(&e->practice_out, d));
		}
		if (moves)
			move = move_take(e->relid, id);
		if (move != NULL)
		{
			Form_pg_attribute patt = TupleDescAttr(desc, e->practice_att - 1);
			bool		opnull;
			Datum		op_d = heap_getattr(move->oldtup, e->practice_att, desc, &opnull);

			if (opnull != practice_null ||
				(!opnull && !datumIsEqual(op_d, d, patt->attbyval, patt->attlen)))
			{
				/* the old practice's devices lose the row: a tombstone, its last image as they knew it */
				if (!opnull)
				{
					ExecStoreHeapTuple(move->oldtup, oldslot, false);
					writer_add(&w, "delete", id_d, key, rowjson_convert(e->json, oldslot), version,
							   CStringGetTextDatum(OutputFunctionCall(&e->practice_out, op_d)), false);
					ExecClearTuple(oldslot);
				}
				/* and the new practice's devices get it as a new row */
				writer_add(&w, "create", id_d, key, rowjson_convert(e->json, src), version,
						   practice, practice_null);
				move_done(move);
				MemoryContextSwitchTo(old);
				continue;
			}
			move_done(move);
		}
		/*
		 * an update logs the columns it set and updated_at (its version is the
		 * log row's version), and every SYNC_LOG_FULL_EVERY'th
		 * version the whole row
		 */
		writer_add(&w, op, id_d, key,
				   deltas && !sync_log_row_is_whole(version) ?
				   rowjson_convert_columns(e->json, src->tts_values, src->tts_isnull, e->include) :
				   rowjson_convert(e->json, src),
				   version, practice, practice_null);
		MemoryContextSwitchTo(old);
	}
	writer_close(&w);
	if (oldslot != NULL)
		ExecDropSingleTupleTableSlot(oldslot);
	ExecDropSingleTupleTableSlot(src);
}

/*
 * smartsync.capture(entity_type, pk_column, practice_column): AFTER STATEMENT
 * trigger appending the statement's rows to the tenant's change log.
 */
Datum
smartsync_capture(PG_FUNCTION_ARGS)
{
	TriggerData *td = check_trigger_call(fcinfo, "smartsync.capture");
	Trigger    *tg = td->tg_trigger;
	CaptureTarget *e;
	Relation	logrel;
	const char *op;
	CaptureWho	who;

	if (!TRIGGER_FIRED_AFTER(td->tg_event) || !TRIGGER_FIRED_FOR_STATEMENT(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_SS_TRIGGER_MISUSE),
				 errmsg("smartsync.capture() must be an AFTER statement trigger with a transition table")));
	if (tg->tgnargs != 3)
		ereport(ERROR,
				(errcode(ERRCODE_SS_TRIGGER_MISUSE),
				 errmsg("smartsync.capture() takes three arguments: entity type, primary-key column, practice column")));

	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		op = "create";
	else if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
		op = "update";
	else if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
		op = "delete";
	else
		ereport(ERROR,
				(errcode(ERRCODE_SS_TRIGGER_MISUSE),
				 errmsg("smartsync.capture() handles INSERT, UPDATE and DELETE only")));

	if ((TRIGGER_FIRED_BY_DELETE(td->tg_event) && td->tg_oldtable == NULL) ||
		(!TRIGGER_FIRED_BY_DELETE(td->tg_event) && td->tg_newtable == NULL))
		ereport(ERROR,
				(errcode(ERRCODE_SS_TRIGGER_MISUSE),
				 errmsg("smartsync.capture() needs a transition table"),
				 errhint("Use REFERENCING NEW TABLE AS smartsync_new (OLD TABLE AS smartsync_old for DELETE).")));

	/* nothing to log for a statement that touched no row */
	if (TRIGGER_FIRED_BY_DELETE(td->tg_event) ?
		tuplestore_tuple_count(td->tg_oldtable) == 0 :
		tuplestore_tuple_count(td->tg_newtable) == 0)
		return PointerGetDatum(NULL);

	/*
	 * Opening the log processes invalidations (an index created on it since,
	 * say): when they make the target stale, refill it under the lock.
	 */
	for (;;)
	{
		e = capture_target(td);
		logrel = table_open(e->logrelid, RowExclusiveLock);
		/* Citus: a log that moved here is adopted first (idempotent) */
		if (e->valid && OidIsValid(e->citus_origin))
			sync_citus_adopt_log(e->citus_origin);
		if (e->valid)
			break;
		table_close(logrel, RowExclusiveLock);
	}
	capture_who(&who);
	capture_rows(td, e, logrel, op, &who);
	sync_notify_capture(td);	/* the change signal at commit (notify.c) */
	return PointerGetDatum(NULL);
}

/* smartsync.refuse_truncate(): BEFORE TRUNCATE trigger of tracked tables. */
Datum
smartsync_refuse_truncate(PG_FUNCTION_ARGS)
{
	TriggerData *td = check_trigger_call(fcinfo, "smartsync.refuse_truncate");

	ereport(ERROR,
			(errcode(ERRCODE_SS_TRUNCATE),
			 errmsg("cannot truncate tracked table \"%s\"", RelationGetRelationName(td->tg_relation)),
			 errdetail("A truncate removes rows without tombstones, so devices would never learn of the deletes."),
			 errhint("Use DELETE so every removed row leaves a tombstone.")));
	return PointerGetDatum(NULL);
}
