/*
 * pull.c: smartsync.sync_pull(), the exact incremental pull, and its cursor.
 *
 * The change log (sync_changes) stamps every change with the writing
 * transaction's full xid.  A pull delivers the changes whose xid is visible in
 * the current snapshot and was not visible in the previous one (the PgQ
 * technique, NOTES.md section 2); the cursor carries that previous snapshot.
 * The snapshot is the caller's active snapshot, the same one every SPI query
 * of the call reads with (read_only SPI in a STABLE function takes no new
 * snapshot), so the data and the cursor always agree.
 *
 * A drain from snapshot P to snapshot C0 is delivered in pages ordered by
 * (xid, seq); a page's cursor keeps P, C0 and the last position, so rows that
 * commit while a client pages belong to the next drain.  The scan touches the
 * log's primary key twice: once for the few xids P saw in progress, once for
 * the range [P.xmax, C0.xmax).  A long transaction anywhere (this tenant or
 * another) holds nobody back: its xid simply stays in the cursor's list.
 *
 * Without a cursor the first pull lists the live rows of the entity tables
 * (parents first, keyset pages), then continues exactly from the listing's
 * snapshot.  With only p_since it reads changes by time (not exact) and hands
 * back an exact cursor.
 *
 * The cursor is opaque: base64url of a small binary payload (version, kind,
 * tenant tag, scope tag, origin tag, snapshots, position) and a truncated
 * HMAC-SHA256 under the database's secret (smartsync.pull_secret).
 *
 * Nothing here writes or assigns an xid, so the pull works in READ ONLY
 * transactions and on hot standbys.
 */
#include "postgres.h"

#include "access/detoast.h"
#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/subtrans.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "access/xlogrecovery.h"
#include "access/stratnum.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "common/hashfn.h"
#include "common/int.h"
#include "common/hmac.h"
#include "common/sha2.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "utils/backend_status.h"
#include "utils/fmgroids.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

#include "smartsync.h"
#include "citus.h"
#include "pull.h"
#include "jsonbwrite.h"
#include "rowjson.h"

PG_FUNCTION_INFO_V1(smartsync_sync_pull);

/* --- settings ----------------------------------------------------------- */

static int	pull_default_limit = 500;
static int	pull_max_limit = 10000;
static int	pull_max_bytes = 8 * 1024 * 1024;

/* Defines smartsync.pull_default_limit, pull_max_limit and pull_max_bytes. */
void
sync_pull_init(void)
{
	DefineCustomIntVariable("smartsync.pull_default_limit",
							"Page size of sync_pull() when p_limit is not given.",
							"Capped by smartsync.pull_max_limit.",
							&pull_default_limit, 500, 1, 1000000,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("smartsync.pull_max_limit",
							"Largest page size sync_pull() accepts.",
							NULL,
							&pull_max_limit, 10000, 1, 1000000,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("smartsync.pull_max_bytes",
							"Byte budget of one sync_pull() page.",
							"A page stops before its changes' data would pass it (hasMore: true); "
							"a single change larger than the budget comes alone.",
							&pull_max_bytes, 8 * 1024 * 1024, 64 * 1024, 128 * 1024 * 1024,
							PGC_SUSET, GUC_UNIT_BYTE, NULL, NULL, NULL);
}

/* --- snapshots ---------------------------------------------------------- */

/* Widens a 32-bit xid to a full xid, relative to the next full xid. */
static uint64
full_xid(FullTransactionId next, TransactionId xid)
{
	TransactionId next_xid = XidFromFullTransactionId(next);

	return (uint64) ((int64) U64FromFullTransactionId(next) + (int32) (xid - next_xid));
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64		x = *(const uint64 *) a;
	uint64		y = *(const uint64 *) b;

	return (x > y) - (x < y);
}

/*
 * Reads the active snapshot (the one every query of this call uses) in full
 * xids.  Our own transaction's xid, if any, counts as in progress: changes it
 * made are delivered after it commits, never before.
 */
void
current_snap(PullSnap *s)
{
	Snapshot	snap = GetActiveSnapshot();
	FullTransactionId next = ReadNextFullTransactionId();
	FullTransactionId own = GetTopFullTransactionIdIfAny();
	int			cap;
	int			n = 0;

	if (snap == NULL)
		elog(ERROR, "no active snapshot");
	s->recovery = snap->takenDuringRecovery;
	s->xmin = full_xid(next, snap->xmin);
	s->xmax = full_xid(next, snap->xmax);
	cap = snap->xcnt + (snap->takenDuringRecovery ? snap->subxcnt : 0) + 1;
	s->xip = palloc(sizeof(uint64) * cap);
	for (uint32 i = 0; i < snap->xcnt; i++)
		s->xip[n++] = full_xid(next, snap->xip[i]);
	if (snap->takenDuringRecovery)
	{
		for (int32 i = 0; i < snap->subxcnt; i++)
			s->xip[n++] = full_xid(next, snap->subxip[i]);
	}
	if (FullTransactionIdIsValid(own) && U64FromFullTransactionId(own) < s->xmax)
	{
		s->xip[n++] = U64FromFullTransactionId(own);
		if (U64FromFullTransactionId(own) < s->xmin)
			s->xmin = U64FromFullTransactionId(own);
	}
	qsort(s->xip, n, sizeof(uint64), cmp_u64);
	s->nxip = 0;
	for (int i = 0; i < n; i++)
	{
		if (s->xip[i] < s->xmin || s->xip[i] >= s->xmax)
			continue;
		if (s->nxip > 0 && s->xip[s->nxip - 1] == s->xip[i])
			continue;
		s->xip[s->nxip++] = s->xip[i];
	}
}

/* True when xid x is in s's in-progress list. */
static bool
snap_in_xip(const PullSnap *s, uint64 x)
{
	return bsearch(&x, s->xip, s->nxip, sizeof(uint64), cmp_u64) != NULL;
}

/* True when transaction x had committed (or aborted) as seen by s. */
bool
snap_visible(const PullSnap *s, uint64 x)
{
	if (x < s->xmin)
		return true;
	if (x >= s->xmax)
		return false;
	return !snap_in_xip(s, x);
}

/*
 * True when snapshot c sees everything p saw.  Always so on one server; not
 * so on a standby that lags behind the server that issued the cursor.  On a
 * standby the in-progress list mixes subtransaction xids in; those whose
 * parent is unknown count as "not yet" (a delay, never a gap).
 */
bool
snap_follows(const PullSnap *p, const PullSnap *c)
{
	if (c->xmax < p->xmax)
		return false;
	for (int i = 0; i < c->nxip; i++)
	{
		uint64		x = c->xip[i];

		if (x >= p->xmax)
			break;
		if (!snap_visible(p, x))
			continue;
		if (c->recovery)
		{
			TransactionId x32 = (TransactionId) x;

			if (TransactionIdFollowsOrEquals(x32, TransactionXmin))
			{
				TransactionId top = SubTransGetTopmostTransaction(x32);

				if (TransactionIdIsValid(top) && top != x32)
				{
					uint64		ftop = x - (uint64) (x32 - top);

					if (!snap_visible(p, ftop))
						continue;
				}
			}
		}
		return false;
	}
	return true;
}

/* --- cursor ------------------------------------------------------------- */

#define CURSOR_VERSION	1
#define CURSOR_MAC_LEN	16

typedef struct Reader
{
	const uint8 *p;
	const uint8 *end;
} Reader;

static void
put_varint(StringInfo b, uint64 v)
{
	while (v >= 0x80)
	{
		appendStringInfoChar(b, (char) ((v & 0x7F) | 0x80));
		v >>= 7;
	}
	appendStringInfoChar(b, (char) v);
}

static void
put_svarint(StringInfo b, int64 v)
{
	put_varint(b, ((uint64) v << 1) ^ (uint64) (v >> 63));
}

static void
put_fixed(StringInfo b, uint64 v, int nbytes)
{
	for (int i = 0; i < nbytes; i++)
		appendStringInfoChar(b, (char) ((v >> (8 * i)) & 0xFF));
}

static void
put_str(StringInfo b, const char *s)
{
	size_t		len = strlen(s);

	put_varint(b, len);
	appendBinaryStringInfo(b, s, len);
}

static void
put_snap(StringInfo b, const PullSnap *s)
{
	uint64		prev = s->xmin;

	put_varint(b, s->xmin);
	put_varint(b, s->xmax - s->xmin);
	put_varint(b, s->nxip);
	for (int i = 0; i < s->nxip; i++)
	{
		put_varint(b, s->xip[i] - prev);
		prev = s->xip[i];
	}
}

static bool
get_varint(Reader *r, uint64 *v)
{
	uint64		res = 0;

	for (int shift = 0; shift < 64; shift += 7)
	{
		uint8		c;

		if (r->p >= r->end)
			return false;
		c = *r->p++;
		res |= (uint64) (c & 0x7F) << shift;
		if ((c & 0x80) == 0)
		{
			*v = res;
			return true;
		}
	}
	return false;
}

static bool
get_svarint(Reader *r, int64 *v)
{
	uint64		u;

	if (!get_varint(r, &u))
		return false;
	*v = (int64) (u >> 1) ^ -(int64) (u & 1);
	return true;
}

static bool
get_fixed(Reader *r, uint64 *v, int nbytes)
{
	uint64		res = 0;

	if (r->end - r->p < nbytes)
		return false;
	for (int i = 0; i < nbytes; i++)
		res |= (uint64) r->p[i] << (8 * i);
	r->p += nbytes;
	*v = res;
	return true;
}

static bool
get_byte(Reader *r, uint8 *v)
{
	if (r->p >= r->end)
		return false;
	*v = *r->p++;
	return true;
}

static bool
get_str(Reader *r, char **s)
{
	uint64		len;

	if (!get_varint(r, &len) || len > (uint64) (r->end - r->p) || len > 65535)
		return false;
	*s = pnstrdup((const char *) r->p, len);
	if (strlen(*s) != len)
		return false;
	r->p += len;
	return true;
}

static bool
get_snap(Reader *r, PullSnap *s)
{
	uint64		span,
				n,
				prev;

	if (!get_varint(r, &s->xmin) || !get_varint(r, &span) || !get_varint(r, &n))
		return false;
	if (span > PG_UINT64_MAX - s->xmin || n > (uint64) (r->end - r->p) || n > span)
		return false;
	s->xmax = s->xmin + span;
	s->nxip = (int) n;
	s->recovery = false;
	s->xip = palloc(sizeof(uint64) * (n + 1));
	prev = s->xmin;
	for (int i = 0; i < s->nxip; i++)
	{
		uint64		d;

		if (!get_varint(r, &d) || (i > 0 && d == 0) || d >= s->xmax - prev)
			return false;
		prev += d;
		s->xip[i] = prev;
	}
	return true;
}

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* base64url without padding */
static char *
b64url_encode(const uint8 *data, int len)
{
	StringInfoData s;
	int			i;

	initStringInfo(&s);
	for (i = 0; i + 2 < len; i += 3)
	{
		uint32		v = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];

		appendStringInfoChar(&s, b64url[(v >> 18) & 63]);
		appendStringInfoChar(&s, b64url[(v >> 12) & 63]);
		appendStringInfoChar(&s, b64url[(v >> 6) & 63]);
		appendStringInfoChar(&s, b64url[v & 63]);
	}
	if (len - i == 1)
	{
		uint32		v = data[i] << 16;

		appendStringInfoChar(&s, b64url[(v >> 18) & 63]);
		appendStringInfoChar(&s, b64url[(v >> 12) & 63]);
	}
	else if (len - i == 2)
	{
		uint32		v = (data[i] << 16) | (data[i + 1] << 8);

		appendStringInfoChar(&s, b64url[(v >> 18) & 63]);
		appendStringInfoChar(&s, b64url[(v >> 12) & 63]);
		appendStringInfoChar(&s, b64url[(v >> 6) & 63]);
	}
	return s.data;
}

static int
b64url_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/* Decodes base64url without padding; returns the length or -1. */
static int
b64url_decode(const char *s, int slen, uint8 *out)
{
	int			n = 0;
	uint32		acc = 0;
	int			bits = 0;

	if (slen % 4 == 1)
		return -1;
	for (int i = 0; i < slen; i++)
	{
		int			v = b64url_value(s[i]);

		if (v < 0)
			return -1;
		acc = (acc << 6) | v;
		bits += 6;
		if (bits >= 8)
		{
			bits -= 8;
			out[n++] = (uint8) ((acc >> bits) & 0xFF);
		}
	}
	/* leftover bits must be zero, or the text is not canonical */
	if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
		return -1;
	return n;
}

/* Reads the database's cursor secret (smartsync.pull_secret), bypassing its ACL. */
int
read_secret(uint8 *key)
{
	Oid			nsp = get_namespace_oid("smartsync", false);
	Oid			relid = sync_citus_local_relation(get_relname_relid("pull_secret", nsp));
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	AttrNumber	att;
	bool		isnull;
	int			len = 0;

	if (!OidIsValid(relid))
		elog(ERROR, "table smartsync.pull_secret is missing");
	att = get_attnum(relid, "secret");
	rel = table_open(relid, AccessShareLock);
	scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
	tup = heap_getnext(scan, ForwardScanDirection);
	if (tup != NULL && att != InvalidAttrNumber)
	{
		Datum		d = heap_getattr(tup, att, RelationGetDescr(rel), &isnull);

		if (!isnull)
		{
			bytea	   *b = DatumGetByteaPP(d);

			len = Min(VARSIZE_ANY_EXHDR(b), SECRET_MAX_LEN);
			memcpy(key, VARDATA_ANY(b), len);
		}
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	if (len < 16)
		elog(ERROR, "smartsync.pull_secret holds no usable secret");
	return len;
}

/* HMAC-SHA256 of data under key, truncated to CURSOR_MAC_LEN bytes. */
static void
cursor_mac(const uint8 *key, int keylen, const uint8 *data, int len, uint8 *mac)
{
	pg_hmac_ctx *ctx = pg_hmac_create(PG_SHA256);
	uint8		full[PG_SHA256_DIGEST_LENGTH];

	if (ctx == NULL)
		elog(ERROR, "out of memory");
	if (pg_hmac_init(ctx, key, keylen) < 0 ||
		pg_hmac_update(ctx, data, len) < 0 ||
		pg_hmac_final(ctx, full, sizeof(full)) < 0)
	{
		const char *err = pg_hmac_error(ctx);

		pg_hmac_free(ctx);
		elog(ERROR, "could not compute the cursor signature: %s", err);
	}
	pg_hmac_free(ctx);
	memcpy(mac, full, CURSOR_MAC_LEN);
}

/* Serializes and signs a cursor. */
static char *
cursor_encode(const PullCursor *c, const uint8 *key, int keylen)
{
	StringInfoData b;
	uint8		mac[CURSOR_MAC_LEN];

	initStringInfo(&b);
	appendStringInfoChar(&b, CURSOR_VERSION);
	appendStringInfoChar(&b, (char) c->kind);
	put_fixed(&b, c->tenant_tag, 8);
	put_fixed(&b, c->scope_tag, 4);
	put_fixed(&b, c->origin_tag, 4);
	switch (c->kind)
	{
		case CK_IDLE:
			put_snap(&b, &c->base);
			break;
		case CK_DRAIN:
			put_snap(&b, &c->base);
			put_snap(&b, &c->upper);
			put_varint(&b, c->pos_xid);
			put_svarint(&b, c->pos_seq);
			break;
		case CK_TIME:
			put_svarint(&b, c->since);
			put_snap(&b, &c->upper);
			appendStringInfoChar(&b, c->has_pos ? 1 : 0);
			if (c->has_pos)
			{
				put_svarint(&b, c->pos_at);
				put_varint(&b, c->pos_xid);
				put_svarint(&b, c->pos_seq);
			}
			break;
		case CK_TIME_OLD:
			elog(ERROR, "cursor kind %d is no longer written", (int) c->kind);
			break;
		case CK_LIST:
			put_snap(&b, &c->base);
			put_str(&b, c->list_type);
			appendStringInfoChar(&b, c->list_pk ? 1 : 0);
			if (c->list_pk)
				put_str(&b, c->list_pk);
			break;
	}
	cursor_mac(key, keylen, (uint8 *) b.data, b.len, mac);
	appendBinaryStringInfo(&b, (char *) mac, CURSOR_MAC_LEN);
	return b64url_encode((uint8 *) b.data, b.len);
}

static void
cursor_malformed(const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_SS_BAD_CURSOR),
			 errmsg("malformed pull cursor"),
			 errdetail("%s", why),
			 errhint("Send back the cursor of the previous sync_pull() response unchanged, or pull without a cursor.")));
}

/*
 * Decodes and verifies a cursor: malformed -> SS501, bad signature -> SS502.
 * Tenant, origin and scope are checked by the caller.
 */
void
cursor_decode(const char *text, const uint8 *key, int keylen, PullCursor *c)
{
	int			tlen = strlen(text);
	uint8	   *raw;
	int			len;
	uint8		mac[CURSOR_MAC_LEN];
	uint8		diff = 0;
	Reader		r;
	uint8		kind;
	uint64		v;

	if (tlen == 0 || tlen > 65536)
		cursor_malformed("The cursor is empty or too long.");
	raw = palloc(tlen);
	len = b64url_decode(text, tlen, raw);
	if (len < 0)
		cursor_malformed("The cursor is not base64url text.");
	if (len < 2 + 16 + CURSOR_MAC_LEN)
		cursor_malformed("The cursor is too short.");
	if (raw[0] != CURSOR_VERSION)
		cursor_malformed("The cursor has an unknown format version.");
	cursor_mac(key, keylen, raw, len - CURSOR_MAC_LEN, mac);
	for (int i = 0; i < CURSOR_MAC_LEN; i++)
		diff |= mac[i] ^ raw[len - CURSOR_MAC_LEN + i];
	if (diff != 0)
		ereport(ERROR,
				(errcode(ERRCODE_SS_CURSOR_SIGNATURE),
				 errmsg("pull cursor signature does not match"),
				 errdetail("The cursor was altered, or was issued by another database."),
				 errhint("Send back the cursor of the previous sync_pull() response unchanged, or pull without a cursor.")));

	memset(c, 0, sizeof(*c));
	r.p = raw + 1;
	r.end = raw + len - CURSOR_MAC_LEN;
	if (!get_byte(&r, &kind) || kind < CK_IDLE || kind > CK_TIME)
		cursor_malformed("The cursor has an unknown kind.");
	if (kind == CK_TIME_OLD)
		ereport(ERROR,
				(errcode(ERRCODE_SS_MUST_REFETCH),
				 errmsg("pull cursor must be refetched"),
				 errdetail("The cursor pages a pull by time of an earlier smartsync version."),
				 errhint("Pull again without a cursor and replace the local data with the result.")));
	c->kind = (CursorKind) kind;
	if (!get_fixed(&r, &c->tenant_tag, 8))
		cursor_malformed("The cursor is truncated.");
	if (!get_fixed(&r, &v, 4))
		cursor_malformed("The cursor is truncated.");
	c->scope_tag = (uint32) v;
	if (!get_fixed(&r, &v, 4))
		cursor_malformed("The cursor is truncated.");
	c->origin_tag = (uint32) v;
	switch (c->kind)
	{
		case CK_IDLE:
			if (!get_snap(&r, &c->base))
				cursor_malformed("The cursor's snapshot is invalid.");
			break;
		case CK_DRAIN:
			if (!get_snap(&r, &c->base) || !get_snap(&r, &c->upper) ||
				!get_varint(&r, &c->pos_xid) || !get_svarint(&r, &c->pos_seq))
				cursor_malformed("The cursor's snapshots are invalid.");
			c->has_pos = true;
			break;
		case CK_TIME:
			{
				int64		since;
				uint8		has_pos;

				if (!get_svarint(&r, &since) || !get_snap(&r, &c->upper) ||
					!get_byte(&r, &has_pos) || has_pos > 1)
					cursor_malformed("The cursor's snapshot is invalid.");
				c->since = since;
				c->has_pos = has_pos == 1;
				if (c->has_pos)
				{
					int64		at;

					if (!get_svarint(&r, &at) || !get_varint(&r, &c->pos_xid) ||
						!get_svarint(&r, &c->pos_seq))
						cursor_malformed("The cursor's position is invalid.");
					c->pos_at = at;
				}
				break;
			}
		case CK_TIME_OLD:
			break;				/* refused above */
		case CK_LIST:
			{
				uint8		has_pk;

				if (!get_snap(&r, &c->base) || !get_str(&r, &c->list_type) ||
					!get_byte(&r, &has_pk) || has_pk > 1)
					cursor_malformed("The cursor's listing position is invalid.");
				if (has_pk && !get_str(&r, &c->list_pk))
					cursor_malformed("The cursor's listing position is invalid.");
				break;
			}
	}
	if (r.p != r.end)
		cursor_malformed("The cursor has trailing bytes.");
}

/* --- plan cache ----------------------------------------------------------- */

typedef struct PlanEntry
{
	uint64		key;			/* hash of the query text */
	char	   *query;
	SPIPlanPtr	plan;
} PlanEntry;

static HTAB *plan_cache = NULL;

#define PLAN_CACHE_MAX 1024

/*
 * Returns a kept plan for query, prepared on first use (call inside SPI);
 * cursor_options may ask for a generic plan (CURSOR_OPT_GENERIC_PLAN).
 */
static SPIPlanPtr
pull_plan_ex(const char *query, int nargs, Oid *argtypes, int cursor_options)
{
	uint64		key = hash_bytes_extended((const unsigned char *) query, strlen(query), 0);
	PlanEntry  *e;
	bool		found;
	SPIPlanPtr	plan;

	if (plan_cache == NULL || hash_get_num_entries(plan_cache) >= PLAN_CACHE_MAX)
	{
		HASHCTL		ctl;

		if (plan_cache != NULL)
		{
			HASH_SEQ_STATUS st;

			hash_seq_init(&st, plan_cache);
			while ((e = hash_seq_search(&st)) != NULL)
			{
				if (e->plan)
					SPI_freeplan(e->plan);
				if (e->query)
					pfree(e->query);
			}
			hash_destroy(plan_cache);
		}
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(uint64);
		ctl.entrysize = sizeof(PlanEntry);
		plan_cache = hash_create("smartsync pull plans", 64, &ctl, HASH_ELEM | HASH_BLOBS);
	}
	e = hash_search(plan_cache, &key, HASH_ENTER, &found);
	if (found && e->plan != NULL && strcmp(e->query, query) == 0)
		return e->plan;
	if (!found)
	{
		e->plan = NULL;
		e->query = NULL;
	}
	plan = SPI_prepare_cursor(query, nargs, argtypes, cursor_options);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	if (found && e->plan != NULL)
		return plan;			/* hash collision: use unsaved */
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	e->query = MemoryContextStrdup(TopMemoryContext, query);
	e->plan = plan;
	return plan;
}

/* Returns a kept plan for query, prepared on first use (call inside SPI). */
SPIPlanPtr
pull_plan(const char *query, int nargs, Oid *argtypes)
{
	return pull_plan_ex(query, nargs, argtypes, 0);
}

/* --- entity types ------------------------------------------------------- */

/* True when the context's permissions let it read entity type name. */
static bool
type_readable(const SyncContext *ctx, const char *name)
{
	char	   *p;

	if (!ctx->has_permissions)
		return true;
	if (sync_context_has_permission(ctx, "*") || sync_context_has_permission(ctx, "*:read"))
		return true;
	p = psprintf("%s:read", name);
	if (sync_context_has_permission(ctx, p))
		return true;
	p = psprintf("%s:*", name);
	return sync_context_has_permission(ctx, p);
}

/* Loads the registry, in dependency order, with the tenant's key types. */
void
load_types(const char *schema, const SyncContext *ctx, PullTypes *types)
{
	static const char *q =
		"SELECT e.entity_type, e.table_name::text, e.pk_column::text, e.practice_column::text,"
		" e.sort_order, a.atttypid, p.atttypid"
		" FROM smartsync.entity_types e"
		" LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = $1::name"
		" LEFT JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = e.table_name"
		" LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attname = e.pk_column"
		"  AND NOT a.attisdropped"
		" LEFT JOIN pg_catalog.pg_attribute p ON p.attrelid = c.oid AND p.attname = e.practice_column"
		"  AND NOT p.attisdropped"
		" ORDER BY e.sort_order, e.entity_type";
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	int			rc;

	values[0] = CStringGetTextDatum(schema);
	rc = SPI_execute_plan(pull_plan(q, 1, argtypes), values, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
	types->n = SPI_processed;
	types->t = palloc0(sizeof(PullType) * Max(types->n, 1));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		PullType   *t = &types->t[i];
		bool		isnull;
		Datum		d;

		t->name = SPI_getvalue(tup, desc, 1);
		t->table = SPI_getvalue(tup, desc, 2);
		t->pk = SPI_getvalue(tup, desc, 3);
		t->practice_col = SPI_getvalue(tup, desc, 4);
		t->sort_order = DatumGetInt32(SPI_getbinval(tup, desc, 5, &isnull));
		d = SPI_getbinval(tup, desc, 6, &isnull);
		t->pk_type = isnull ? InvalidOid : DatumGetObjectId(d);
		d = SPI_getbinval(tup, desc, 7, &isnull);
		t->practice_type = isnull ? InvalidOid : DatumGetObjectId(d);
		t->readable = type_readable(ctx, t->name);
		t->wanted = t->readable;
	}
	SPI_freetuptable(SPI_tuptable);
}

static int
find_type(const PullTypes *types, const char *name, int len)
{
	for (int i = 0; i < types->n; i++)
	{
		if ((int) strlen(types->t[i].name) == len && memcmp(types->t[i].name, name, len) == 0)
			return i;
	}
	return -1;
}

static int
cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/*
 * Applies p_entity_types (comma-separated): unknown -> SS106, not readable ->
 * SS508.  Returns the normalized filter for the scope tag ("*" for none).
 */
char *
apply_type_filter(PullTypes *types, const char *filter)
{
	char	   *s;
	char	   *tok;
	char	   *save = NULL;
	List	   *names = NIL;
	char	  **arr;
	int			n = 0;
	StringInfoData norm;
	ListCell   *lc;

	if (filter == NULL)
		return "*";
	/* every element names a type: "", ",", "pets," are refused, not read as no filter */
	s = pstrdup(filter);
	for (tok = s;; tok = save + 1)
	{
		char	   *end;

		save = strchr(tok, ',');
		if (save != NULL)
			*save = '\0';
		while (*tok == ' ' || *tok == '\t')
			tok++;
		end = tok + strlen(tok);
		while (end > tok && (end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		if (*tok == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_SS_PULL_BAD_TYPES),
					 errmsg("p_entity_types has an empty entity type name"),
					 errdetail("p_entity_types is a comma-separated list of entity types (appointments,pets); \"%s\" has an empty element.",
							   sync_clip_str(filter)),
					 errhint("Leave p_entity_types out to pull every entity type you may read.")));
		names = lappend(names, tok);
		if (save == NULL)
			break;
	}

	for (int i = 0; i < types->n; i++)
		types->t[i].wanted = false;
	arr = palloc(sizeof(char *) * list_length(names));
	foreach(lc, names)
	{
		char	   *name = (char *) lfirst(lc);
		int			i = find_type(types, name, strlen(name));

		if (i < 0)
			ereport(ERROR,
					(errcode(ERRCODE_SS_UNKNOWN_ENTITY_TYPE),
					 errmsg("unknown entity type \"%s\"", sync_clip_str(name)),
					 errdetail("p_entity_types names entity types registered with smartsync.register_entity_type()."),
					 errhint("Leave p_entity_types out to pull every entity type you may read.")));
		if (!types->t[i].readable)
			ereport(ERROR,
					(errcode(ERRCODE_SS_PULL_FORBIDDEN),
					 errmsg("permission denied to read entity type \"%s\"", name),
					 errdetail("The request's permissions hold neither \"%s:read\", \"%s:*\" nor \"*\".",
							   name, name)));
		if (!types->t[i].wanted)
			arr[n++] = types->t[i].name;
		types->t[i].wanted = true;
	}
	qsort(arr, n, sizeof(char *), cmp_cstr);
	initStringInfo(&norm);
	for (int i = 0; i < n; i++)
	{
		if (i > 0)
			appendStringInfoChar(&norm, ',');
		appendStringInfoString(&norm, arr[i]);
	}
	return norm.data;
}

/* --- rows ---------------------------------------------------------------- */

typedef struct PullRow
{
	int			type;			/* index into PullTypes */
	char	   *id;				/* entity id as text */
	const char *op;				/* "create", "update" or "delete" */
	Jsonb	   *data;
	int64		version;
	TimestampTz at;
	uint64		xid;
	int64		seq;
	int			ordinal;		/* arrival order in the page */
	bool		keep;
	HeapTuple	now;			/* a drain's create or update: its row as it is now */
} PullRow;

typedef struct PullPage
{
	PullRow   **rows;
	int			n;
	int			cap;
	bool		has_more;
	bool		full;			/* a listing page */
	bool		has_stop_at;	/* a read by time stopped before a change of this time */
	TimestampTz stop_at;
	PullCursor	next;			/* the cursor to hand back */
} PullPage;

static void
page_add(PullPage *page, PullRow *row)
{
	if (page->n == page->cap)
	{
		page->cap = page->cap ? page->cap * 2 : 64;
		page->rows = page->rows ? repalloc(page->rows, sizeof(PullRow *) * page->cap)
			: palloc(sizeof(PullRow *) * page->cap);
	}
	row->ordinal = page->n;
	row->keep = true;
	row->now = NULL;
	page->rows[page->n++] = row;
}

static const char *
op_name(text *t)
{
	const char *p = VARDATA_ANY(t);
	int			len = VARSIZE_ANY_EXHDR(t);

	if (len == 6 && memcmp(p, "create", 6) == 0)
		return "create";
	if (len == 6 && memcmp(p, "delete", 6) == 0)
		return "delete";
	return "update";
}

/* --- the drain ------------------------------------------------------------ */

static int	page_settle(PullRequest *req, PullPage *page);

Datum
xid_array(const uint64 *xids, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		d[i] = FullTransactionIdGetDatum(FullTransactionIdFromU64(xids[i]));
	return PointerGetDatum(construct_array(d, n, XID8OID, sizeof(uint64),
										   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

Datum
text_array(List *strs)
{
	int			n = list_length(strs);
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));
	int			i = 0;
	ListCell   *lc;

	foreach(lc, strs)
		d[i++] = CStringGetTextDatum((char *) lfirst(lc));
	return PointerGetDatum(construct_array(d, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/* The WHERE clause of a change-log scan (see change_query). */
static char *
change_where(const PullRequest *req, bool in_xip, bool by_time)
{
	StringInfoData where;

	initStringInfo(&where);
	appendStringInfo(&where, "%s AND c.xid < $3 AND NOT (c.xid = ANY ($4)) AND c.entity_type = ANY ($6)",
					 by_time ? "(c.changed_at, c.xid, c.seq) > ($12, $1, $2)" : "(c.xid, c.seq) > ($1, $2)");
	if (in_xip)
		appendStringInfoString(&where, " AND c.xid = ANY ($5)");
	if (req->practice)
		appendStringInfoString(&where, " AND (c.practice_id = $7 OR c.entity_type = ANY ($8))");
	if (req->client)
		appendStringInfoString(&where, " AND c.client_id IS DISTINCT FROM $9");
	if (by_time)
		appendStringInfoString(&where, " AND c.changed_at >= $10");
	return where.data;
}

/*
 * Builds one change-log scan.  in_xip: restrict to the xids of $5 (the
 * previous snapshot's in-progress list).  Parameters:
 *   $1 xid8, $2 int8: scan after (xid, seq), or with by_time after
 *   ($12, xid, seq);  $3 xid8: below the upper xmax;  $4 xid8[]: not in the
 *   upper in-progress list;  $5 xid8[]: xids (in_xip);  $6 text[]: entity
 *   types;  $7 text: practice;  $8 text[]: types without practice;  $9 text:
 *   client;  $10 timestamptz: changed at or after (the boundary included);
 *   $11 int8: limit;  $12 timestamptz: changed_at of the position.
 * A read by time goes in change-time order, so that a page's end is a time a
 * client can send back.  A create's or an update's data is not read here:
 * the page carries the row as it is now (page_current_rows), and a change a
 * later one replaced is not delivered; a delete's data is its tombstone.
 */
char *
change_query(const PullRequest *req, bool in_xip, bool by_time)
{
	StringInfoData q;

	initStringInfo(&q);
	appendStringInfo(&q,
					 "SELECT c.xid, c.seq, c.entity_type, c.entity_id, c.operation,"
					 " CASE WHEN c.operation = 'delete' THEN c.data END, c.version, c.changed_at"
					 " FROM %s.sync_changes c WHERE %s ORDER BY %s LIMIT $11",
					 req->quoted_schema, change_where(req, in_xip, by_time),
					 by_time ? "c.changed_at, c.xid, c.seq" : "c.xid, c.seq");
	return q.data;
}

/*
 * sync_changed's probe (changed.c): whether the scan of change_query (no
 * order, no limit) has a change the pull delivers.  A pull delivers a change
 * when it is its entity's latest one the snapshot sees in the request's
 * practice (the row then has the change's version, or for a delete is gone),
 * so: a change with no later one of its entity there (the client's own
 * included: the client holds that state).  Parameters as change_query's.
 */
char *
change_probe_query(const PullRequest *req, bool in_xip)
{
	StringInfoData q;

	initStringInfo(&q);
	appendStringInfo(&q,
					 "SELECT 1 FROM %1$s.sync_changes c WHERE %2$s"
					 " AND NOT EXISTS (SELECT 1 FROM %1$s.sync_changes o"
					 " WHERE o.entity_key = c.entity_key AND o.entity_type = c.entity_type"
					 " AND o.entity_id = c.entity_id AND o.seq > c.seq%3$s) LIMIT 1",
					 req->quoted_schema, change_where(req, in_xip, false),
					 req->practice ? " AND (o.practice_id = $7 OR o.entity_type = ANY ($8))" : "");
	return q.data;
}

/* What a change costs a page: its data, its id and the fields around them (bytes). */
static inline Size
row_cost(Size data_bytes, const char *id)
{
	return data_bytes + strlen(id) + 160;
}

/*
 * True when a row of cost bytes does not fit the page's byte budget any more
 * (smartsync.pull_max_bytes).  The first row of a page always fits: a change
 * larger than the budget comes alone.
 */
static inline bool
over_budget(PullRequest *req, PullPage *page, Size cost)
{
	return page->n > 0 && req->used + cost > req->budget;
}

/*
 * Runs one change-log scan, appending up to *remaining rows to the page (and
 * no more than its byte budget) and moving the position.  Returns true when
 * the scan had a row beyond them; *stop_at is then that row's changed_at.
 */
static bool
scan_changes(PullRequest *req, PullPage *page, bool in_xip, bool by_time,
			 Datum *values, int *remaining, uint64 *pos_xid, int64 *pos_seq,
			 TimestampTz *pos_at, TimestampTz *stop_at)
{
	static Oid	argtypes[CHANGE_NPARAMS] = {XID8OID, INT8OID, XID8OID, XID8ARRAYOID,
		XID8ARRAYOID, TEXTARRAYOID, TEXTOID, TEXTARRAYOID, TEXTOID, TIMESTAMPTZOID, INT8OID,
	TIMESTAMPTZOID};
	char		nulls[CHANGE_NPARAMS];
	SPIPlanPtr	plan;
	Portal		portal;
	bool		more = false;

	memset(nulls, ' ', sizeof(nulls));
	if (!req->practice)
	{
		nulls[6] = 'n';
		nulls[7] = 'n';
	}
	if (!req->client)
		nulls[8] = 'n';
	if (!by_time)
	{
		nulls[9] = 'n';
		nulls[11] = 'n';
	}
	values[0] = FullTransactionIdGetDatum(FullTransactionIdFromU64(*pos_xid));
	values[1] = Int64GetDatum(*pos_seq);
	values[10] = Int64GetDatum((int64) *remaining + 1);
	values[11] = TimestampTzGetDatum(*pos_at);

	plan = pull_plan(change_query(req, in_xip, by_time), CHANGE_NPARAMS, argtypes);
	portal = SPI_cursor_open(NULL, plan, values, nulls, true);
	for (;;)
	{
		/* rows hold their data toasted until taken: a fetch costs little */
		SPI_cursor_fetch(portal, true, 512);
		if (SPI_processed == 0)
			break;
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			Datum		col[8];
			bool		isnull[8];
			text	   *etype;
			PullRow    *row;
			int			ti;
			char	   *id;

			heap_deform_tuple(tup, desc, col, isnull);	/* once: the row has text columns */
			id = TextDatumGetCString(col[3]);
			/*
			 * Only a delete's data (its tombstone) is read here; the budget
			 * of creates and updates is counted once their rows are read
			 * (page_settle).  This check keeps the tombstones read in bounds.
			 */
			if (*remaining == 0 ||
				(!isnull[5] && over_budget(req, page, row_cost(toast_raw_datum_size(col[5]), id))))
			{
				more = true;
				*stop_at = DatumGetTimestampTz(col[7]);
				break;
			}
			(*remaining)--;
			*pos_xid = DatumGetUInt64(col[0]);
			*pos_seq = DatumGetInt64(col[1]);
			*pos_at = DatumGetTimestampTz(col[7]);
			etype = DatumGetTextPP(col[2]);
			ti = find_type(&req->types, VARDATA_ANY(etype), VARSIZE_ANY_EXHDR(etype));
			if (ti < 0)
				continue;
			row = palloc(sizeof(PullRow));
			row->type = ti;
			row->xid = *pos_xid;
			row->seq = *pos_seq;
			row->id = id;
			row->op = op_name(DatumGetTextPP(col[4]));
			row->data = isnull[5] ? NULL : DatumGetJsonbPCopy(col[5]);
			row->version = DatumGetInt64(col[6]);
			row->at = *pos_at;
			if (row->data != NULL)
				req->used += row_cost(VARSIZE(row->data), row->id);
			page_add(page, row);
		}
		SPI_freetuptable(SPI_tuptable);
		if (more)
			break;
	}
	SPI_cursor_close(portal);
	return more;
}

/*
 * Delivers one page of the drain from base (NULL in a time-based read) to
 * upper, after the cursor's position, and sets the next cursor.
 */
static void
run_drain(PullRequest *req, const PullCursor *cur, PullPage *page)
{
	Datum		values[CHANGE_NPARAMS];
	const PullSnap *base = cur->kind == CK_TIME ? NULL : &cur->base;
	const PullSnap *upper = &cur->upper;
	bool		by_time = cur->kind == CK_TIME;
	uint64		pos_xid = cur->has_pos ? cur->pos_xid : 0;
	int64		pos_seq = cur->has_pos ? cur->pos_seq : PG_INT64_MIN;
	TimestampTz pos_at = cur->has_pos ? cur->pos_at : cur->since;
	TimestampTz stop_at = 0;
	int			remaining = req->limit;
	bool		more = false;
	int			cut;

	memset(values, 0, sizeof(values));
	values[4] = xid_array(NULL, 0);
	values[2] = FullTransactionIdGetDatum(FullTransactionIdFromU64(upper->xmax));
	values[3] = xid_array(upper->xip, upper->nxip);
	values[5] = req->wanted_types;
	if (req->practice)
	{
		values[6] = CStringGetTextDatum(req->practice);
		values[7] = req->global_types;
	}
	if (req->client)
		values[8] = CStringGetTextDatum(req->client);
	if (by_time)
		values[9] = TimestampTzGetDatum(cur->since);

	/* 1. the xids the previous snapshot saw in progress, now committed */
	if (base != NULL && pos_xid < base->xmax)
	{
		uint64	   *xids = palloc(sizeof(uint64) * Max(base->nxip, 1));
		int			n = 0;

		for (int i = 0; i < base->nxip; i++)
		{
			if (base->xip[i] >= pos_xid && snap_visible(upper, base->xip[i]))
				xids[n++] = base->xip[i];
		}
		if (n > 0)
		{
			values[4] = xid_array(xids, n);
			more = scan_changes(req, page, true, false, values, &remaining, &pos_xid, &pos_seq,
								&pos_at, &stop_at);
		}
	}

	/* 2. the xids from the previous snapshot's xmax up to the upper one (by time: all) */
	if (!more)
	{
		if (base != NULL && pos_xid < base->xmax)
		{
			pos_xid = base->xmax;
			pos_seq = PG_INT64_MIN;
		}
		more = scan_changes(req, page, false, by_time, values, &remaining, &pos_xid, &pos_seq,
							&pos_at, &stop_at);
	}

	/*
	 * The page's rows as they are now, filled in log order within the byte
	 * budget: the page ends before the first change it has no room for.
	 */
	cut = page_settle(req, page);
	if (cut > 0)
	{
		PullRow    *last = page->rows[cut - 1];

		more = true;
		pos_xid = last->xid;
		pos_seq = last->seq;
		pos_at = last->at;
		stop_at = page->rows[cut]->at;
		page->n = cut;
	}

	page->has_more = more;
	page->next = *cur;
	if (more)
	{
		page->next.kind = by_time ? CK_TIME : CK_DRAIN;
		page->next.has_pos = true;
		page->next.pos_xid = pos_xid;
		page->next.pos_seq = pos_seq;
		page->next.pos_at = pos_at;
		/* a client that sends back the timestamp continues at the first change not sent */
		if (by_time)
		{
			page->has_stop_at = true;
			page->stop_at = stop_at;
		}
	}
	else
	{
		page->next.kind = CK_IDLE;
		page->next.base = *upper;
		page->next.has_pos = false;
	}
}

/* --- the listing ---------------------------------------------------------- */

#define LIST_NPARAMS 3

/* How many listing rows to fetch at once: what the byte budget still has room for, 1 to 512. */
static int
list_fetch_count(PullRequest *req)
{
	Size		avg;
	Size		room;

	if (req->listed_rows == 0)
		return 8;
	avg = Max(req->used / req->listed_rows, 1);
	room = req->budget > req->used ? req->budget - req->used : 0;
	return (int) Max(Min(room / avg + 1, 512), 1);
}

/*
 * The listing's practice filter in the practice column's own type, so that
 * the planner estimates it from the column's statistics.  Only for types whose
 * text form is canonical (integers, uuid): there a value equals the practice
 * id exactly when its text does, so the rows are those of the text
 * comparison.  Returns false when no value of the type has that text (the
 * listing then has no row for it, and no input function raised an error);
 * leaves *typid InvalidOid when the column is compared as text.
 */
static bool
list_practice_value(Oid coltype, const char *practice, Oid *typid, Datum *value)
{
	const char *p = practice;
	size_t		len = strlen(practice);

	*typid = InvalidOid;
	switch (coltype)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
			{
				int64		v = 0;
				bool		neg = (*p == '-');

				/* the text form of an integer: no sign but '-', no leading zero, no "-0" */
				if (neg)
					p++;
				if (*p < '0' || *p > '9' || (*p == '0' && (p[1] != '\0' || neg)) || strlen(p) > 19)
					return false;
				for (; *p; p++)
				{
					if (*p < '0' || *p > '9')
						return false;
					if (pg_mul_s64_overflow(v, 10, &v) || pg_sub_s64_overflow(v, *p - '0', &v))
						return false;	/* accumulated negative: PG_INT64_MIN fits */
				}
				if (!neg && pg_sub_s64_overflow(0, v, &v))
					return false;
				if ((coltype == INT2OID && (v < PG_INT16_MIN || v > PG_INT16_MAX)) ||
					(coltype == INT4OID && (v < PG_INT32_MIN || v > PG_INT32_MAX)))
					return false;
				*typid = coltype;
				*value = coltype == INT2OID ? Int16GetDatum((int16) v) :
					coltype == INT4OID ? Int32GetDatum((int32) v) : Int64GetDatum(v);
				return true;
			}
		case UUIDOID:
			/* the text form of a uuid: 8-4-4-4-12 lower-case hex digits */
			if (len != 36)
				return false;
			for (int i = 0; i < 36; i++)
			{
				bool		dash = (i == 8 || i == 13 || i == 18 || i == 23);

				if (dash ? p[i] != '-' : !((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
					return false;
			}
			*typid = UUIDOID;
			*value = DirectFunctionCall1(uuid_in, CStringGetDatum(practice));
			return true;
		default:
			*value = CStringGetTextDatum(practice);
			return true;
	}
}

/*
 * Opens a listing query's cursor, planned (when the plan cache plans it)
 * without sorts: the rows come in primary-key order from the key's index.
 * Row-level security's quals have no statistics, so the planner takes them
 * to leave a few rows of the table and would read and sort all of it for
 * every page (a first page: the whole table); through the index a page
 * reads its rows and those its filters skip, and the pages of a listing
 * together read the table once.
 */
static Portal
list_open(SPIPlanPtr plan, Datum *values, const char *nulls)
{
	int			nest = NewGUCNestLevel();
	Portal		portal;

	(void) set_config_option("enable_sort", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	portal = SPI_cursor_open(NULL, plan, values, nulls, true);
	AtEOXact_GUC(true, nest);
	return portal;
}

/* Lists one page of live rows (parents first, keyset by primary key). */
static void
run_list(PullRequest *req, const PullCursor *cur, PullPage *page)
{
	int			remaining = req->limit;
	int			start = 0;
	char	   *last_pk = cur->list_pk;

	page->full = true;
	page->next = *cur;
	if (cur->list_type != NULL)
	{
		start = find_type(&req->types, cur->list_type, strlen(cur->list_type));
		if (start < 0)
			ereport(ERROR,
					(errcode(ERRCODE_SS_MUST_REFETCH),
					 errmsg("pull cursor must be refetched"),
					 errdetail("Entity type \"%s\" was unregistered while the full listing was paged.",
							   cur->list_type),
					 errhint("Pull again without a cursor and replace the local data with the result.")));
	}
	for (int ti = start; ti < req->types.n; ti++)
	{
		PullType   *t = &req->types.t[ti];
		Oid			argtypes[LIST_NPARAMS] = {t->pk_type, TEXTOID, INT8OID};
		Datum		values[LIST_NPARAMS];
		char		nulls[LIST_NPARAMS] = {' ', ' ', ' '};
		StringInfoData q;
		const char *pk;
		Portal		portal;
		int			got = 0;
		bool		more = false;
		RowJsonPlan *jp;
		TupleTableSlot *slot = NULL;
		FmgrInfo	pk_out;
		int			pkcol = 0;
		int			vcol = 0;
		int			acol = 0;
		int			lastcol = 0;

		if (ti != start)
			last_pk = NULL;
		if (!t->wanted || t->pk_type == InvalidOid)
			continue;
		pk = quote_identifier(t->pk);
		/*
		 * The rows as they are (t.*: the JSON has the table's column names),
		 * each turned into jsonb here by rowjson.c (the value to_jsonb() of
		 * the row gives, without its per-row type lookups): only the rows of
		 * the page are converted, whatever plan the planner picks.
		 */
		initStringInfo(&q);
		appendStringInfo(&q, "SELECT t.* FROM %s.%s t WHERE true",
						 req->quoted_schema, quote_identifier(t->table));
		if (last_pk != NULL)
		{
			Oid			infunc;
			Oid			ioparam;

			appendStringInfo(&q, " AND t.%s > $1", pk);
			getTypeInputInfo(t->pk_type, &infunc, &ioparam);
			values[0] = OidInputFunctionCall(infunc, last_pk, ioparam, -1);
		}
		else
		{
			values[0] = (Datum) 0;
			nulls[0] = 'n';
		}
		if (req->practice && t->practice_col)
		{
			Oid			typid;

			if (!list_practice_value(t->practice_type, req->practice, &typid, &values[1]))
				continue;		/* no row of the table can have this practice */
			if (OidIsValid(typid))
			{
				/* (the type in the text too: plans are kept by their text) */
				argtypes[1] = typid;
				appendStringInfo(&q, " AND t.%s = $2::%s", quote_identifier(t->practice_col),
								 format_type_be_qualified(typid));
			}
			else
				appendStringInfo(&q, " AND t.%s::pg_catalog.text = $2", quote_identifier(t->practice_col));
		}
		else
		{
			values[1] = (Datum) 0;
			nulls[1] = 'n';
		}
		appendStringInfo(&q, " ORDER BY t.%s LIMIT $3", pk);
		values[2] = Int64GetDatum((int64) remaining + 1);

		portal = list_open(pull_plan(q.data, LIST_NPARAMS, argtypes), values, nulls);
		jp = NULL;
		for (;;)
		{
			/*
			 * Each fetched row is a to_jsonb() of the row, so fetch about as
			 * many as the byte budget has room for: a page of large rows
			 * never holds much more than its budget.
			 */
			SPI_cursor_fetch(portal, true, list_fetch_count(req));
			if (SPI_processed == 0)
				break;
			if (jp == NULL)
			{
				/* once per table and request: the row's converters and columns */
				TupleDesc	desc = SPI_tuptable->tupdesc;
				Oid			outfunc;
				bool		varlena;

				jp = rowjson_plan_create(desc);
				slot = MakeSingleTupleTableSlot(desc, &TTSOpsHeapTuple);
				pkcol = SPI_fnumber(desc, t->pk);
				vcol = SPI_fnumber(desc, "version");
				acol = SPI_fnumber(desc, "updated_at");
				if (pkcol <= 0 || vcol <= 0 || acol <= 0)
					elog(ERROR, "table \"%s\" lacks its key, version or updated_at column", t->table);
				getTypeOutputInfo(TupleDescAttr(desc, pkcol - 1)->atttypid, &outfunc, &varlena);
				fmgr_info(outfunc, &pk_out);
				lastcol = Max(pkcol, Max(vcol, acol));
			}
			for (uint64 i = 0; i < SPI_processed; i++)
			{
				PullRow    *row;
				Jsonb	   *data;
				char	   *id;

				if (got == remaining)
				{
					more = true;
					break;
				}
				ExecStoreHeapTuple(SPI_tuptable->vals[i], slot, false);
				slot_getsomeattrs(slot, lastcol);
				/* the key as the log has it: the key type's output function */
				id = OutputFunctionCall(&pk_out, slot->tts_values[pkcol - 1]);
				data = rowjson_convert(jp, slot);
				if (over_budget(req, page, row_cost(VARSIZE(data), id)))
				{
					ExecClearTuple(slot);
					more = true;
					break;
				}
				got++;
				row = palloc(sizeof(PullRow));
				row->type = ti;
				row->seq = 0;
				row->data = data;
				row->id = id;
				req->used += row_cost(VARSIZE(row->data), row->id);
				req->listed_rows++;
				row->op = "create";
				row->version = slot->tts_isnull[vcol - 1] ? 0 : DatumGetInt64(slot->tts_values[vcol - 1]);
				row->at = slot->tts_isnull[acol - 1] ? 0 : DatumGetTimestampTz(slot->tts_values[acol - 1]);
				ExecClearTuple(slot);
				page_add(page, row);
				last_pk = row->id;
			}
			SPI_freetuptable(SPI_tuptable);
			if (more)
				break;
		}
		SPI_cursor_close(portal);
		if (slot != NULL)
			ExecDropSingleTupleTableSlot(slot);
		if (more)
		{
			page->has_more = true;
			page->next.kind = CK_LIST;
			page->next.list_type = t->name;
			page->next.list_pk = last_pk;
			return;
		}
		remaining -= got;
	}
	/* listing done: continue exactly from the listing's snapshot */
	page->has_more = false;
	page->next.kind = CK_IDLE;
	page->next.list_type = NULL;
	page->next.list_pk = NULL;
}

/* --- the rows as they are now -------------------------------------------- */

/* One row of an entity table as a page reads it. */
typedef struct CurrentRow
{
	char	   *id;
	int64		version;
	HeapTuple	tuple;
} CurrentRow;

static int
cmp_current(const void *a, const void *b)
{
	return strcmp(((const CurrentRow *) a)->id, ((const CurrentRow *) b)->id);
}

/* How a page turns the rows of one entity type into JSON. */
typedef struct CurrentType
{
	RowJsonPlan *plan;
	TupleTableSlot *slot;
} CurrentType;

/*
 * Checks each change the page keeps against its row as it is now (in this
 * call's snapshot, in the request's practice):
 *   - a create or update is delivered only when the row still has the
 *     change's version, with the row as its data: the log keeps only the
 *     columns an update set.  Otherwise a later change replaced it (this
 *     drain, a later one or the client's own write delivers that state) or
 *     the row left (its delete, or a move's delete, is delivered);
 *   - a delete is delivered unless the row exists again (its re-creation is
 *     delivered).
 * So a page never sends an entity back to an older state than one already
 * delivered, whatever order the transactions committed in.  One keyed read
 * per entity type; the rows stay as read (large values toasted) until
 * page_settle converts those the budget takes.  The result sets are added
 * to *tables, to be freed after.
 */
static void
page_current_rows(PullRequest *req, PullPage *page, CurrentType *ct, List **tables)
{
	for (int ti = 0; ti < req->types.n; ti++)
	{
		PullType   *t = &req->types.t[ti];
		List	   *ids = NIL;
		StringInfoData q;
		Oid			argtypes[2] = {TEXTARRAYOID, TEXTOID};
		Datum		values[2];
		char		nulls[2] = {' ', ' '};
		CurrentRow *cur;
		int			ncur = 0;
		int			rc;

		for (int i = 0; i < page->n; i++)
			if (page->rows[i]->keep && page->rows[i]->type == ti)
				ids = lappend(ids, page->rows[i]->id);
		if (ids == NIL)
			continue;
		if (t->pk_type == InvalidOid)
		{
			/* the tenant has no table for the type: nothing to deliver but tombstones */
			for (int i = 0; i < page->n; i++)
				if (page->rows[i]->type == ti && page->rows[i]->op[0] != 'd')
					page->rows[i]->keep = false;
			continue;
		}

		initStringInfo(&q);
		appendStringInfo(&q, "SELECT t.* FROM %2$s.%3$s t WHERE t.%1$s = ANY ($1::%4$s[])",
						 quote_identifier(t->pk), req->quoted_schema, quote_identifier(t->table),
						 format_type_be_qualified(t->pk_type));
		values[0] = text_array(ids);
		if (req->practice && t->practice_col)
		{
			appendStringInfo(&q, " AND t.%s::pg_catalog.text = $2", quote_identifier(t->practice_col));
			values[1] = CStringGetTextDatum(req->practice);
		}
		else
		{
			values[1] = (Datum) 0;
			nulls[1] = 'n';
		}
		/* a keyed read whatever the keys: one plan, made once */
		rc = SPI_execute_plan(pull_plan_ex(q.data, 2, argtypes, CURSOR_OPT_GENERIC_PLAN),
							  values, nulls, true, 0);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
		cur = palloc(sizeof(CurrentRow) * Max(SPI_processed, 1));
		if (SPI_processed > 0)
		{
			TupleDesc	desc = SPI_tuptable->tupdesc;
			int			pkcol = SPI_fnumber(desc, t->pk);
			int			vcol = SPI_fnumber(desc, "version");
			TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, &TTSOpsHeapTuple);
			FmgrInfo	pk_out;
			Oid			outfunc;
			bool		varlena;

			ct[ti].plan = rowjson_plan_create(desc);
			ct[ti].slot = slot;
			if (pkcol > 0)
			{
				getTypeOutputInfo(TupleDescAttr(desc, pkcol - 1)->atttypid, &outfunc, &varlena);
				fmgr_info(outfunc, &pk_out);
			}
			for (uint64 i = 0; pkcol > 0 && vcol > 0 && i < SPI_processed; i++)
			{
				ExecStoreHeapTuple(SPI_tuptable->vals[i], slot, false);
				slot_getsomeattrs(slot, Max(pkcol, vcol));
				if (slot->tts_isnull[vcol - 1] || slot->tts_isnull[pkcol - 1])
				{
					ExecClearTuple(slot);
					continue;
				}
				/* the key as the log has it: the key type's output function */
				cur[ncur].id = OutputFunctionCall(&pk_out, slot->tts_values[pkcol - 1]);
				cur[ncur].version = DatumGetInt64(slot->tts_values[vcol - 1]);
				cur[ncur].tuple = SPI_tuptable->vals[i];
				ExecClearTuple(slot);
				ncur++;
			}
			*tables = lappend(*tables, SPI_tuptable);
		}
		else
			SPI_freetuptable(SPI_tuptable);
		qsort(cur, ncur, sizeof(CurrentRow), cmp_current);

		for (int i = 0; i < page->n; i++)
		{
			PullRow    *row = page->rows[i];
			CurrentRow	key;
			CurrentRow *now;

			if (!row->keep || row->type != ti)
				continue;
			key.id = row->id;
			now = ncur > 0 ? bsearch(&key, cur, ncur, sizeof(CurrentRow), cmp_current) : NULL;
			if (row->op[0] == 'd')
				row->keep = (now == NULL);
			else if (now == NULL || now->version != row->version)
				row->keep = false;
			else
				row->now = now->tuple;
		}
	}
}

/* entity, then log order */
static int
cmp_entity(const void *a, const void *b)
{
	const PullRow *x = *(PullRow *const *) a;
	const PullRow *y = *(PullRow *const *) b;
	int			c;

	if (x->type != y->type)
		return x->type - y->type;
	c = strcmp(x->id, y->id);
	if (c != 0)
		return c;
	return (x->seq > y->seq) - (x->seq < y->seq);
}

/*
 * Settles a drain's page (its rows in log order): keeps the latest change of
 * each entity in the page (a create followed by updates stays a create),
 * checks what is left against the rows as they are now (page_current_rows),
 * and fills the data of the rows it delivers, in log order, within the byte
 * budget.  Returns the position in page->rows of the first change the budget
 * has no room for, or -1 when the page holds them all.
 */
static int
page_settle(PullRequest *req, PullPage *page)
{
	PullRow   **v;
	CurrentType *ct;
	List	   *tables = NIL;
	ListCell   *lc;
	int			delivered = 0;
	int			cut = -1;

	if (page->n == 0)
		return -1;
	v = palloc(sizeof(PullRow *) * page->n);
	memcpy(v, page->rows, sizeof(PullRow *) * page->n);
	qsort(v, page->n, sizeof(PullRow *), cmp_entity);
	for (int i = 0; i < page->n; i++)
	{
		bool		last = (i + 1 == page->n) || v[i + 1]->type != v[i]->type ||
			strcmp(v[i + 1]->id, v[i]->id) != 0;

		if (!last)
		{
			v[i]->keep = false;
			if (v[i]->op[0] == 'c' && v[i + 1]->op[0] == 'u')
				v[i + 1]->op = "create";
		}
	}
	pfree(v);

	ct = palloc0(sizeof(CurrentType) * Max(req->types.n, 1));
	page_current_rows(req, page, ct, &tables);

	req->used = 0;
	for (int i = 0; i < page->n; i++)
	{
		PullRow    *row = page->rows[i];
		Jsonb	   *data = row->data;

		if (!row->keep)
			continue;
		if (row->now != NULL)
		{
			TupleTableSlot *slot = ct[row->type].slot;

			ExecStoreHeapTuple(row->now, slot, false);
			data = rowjson_convert(ct[row->type].plan, slot);
			ExecClearTuple(slot);
		}
		if (delivered > 0 && req->used + row_cost(VARSIZE(data), row->id) > req->budget)
		{
			cut = i;
			if (data != row->data)
				pfree(data);
			break;
		}
		row->data = data;
		req->used += row_cost(VARSIZE(data), row->id);
		delivered++;
	}

	for (int ti = 0; ti < req->types.n; ti++)
		if (ct[ti].slot != NULL)
			ExecDropSingleTupleTableSlot(ct[ti].slot);
	foreach(lc, tables)
		SPI_freetuptable((SPITupleTable *) lfirst(lc));
	for (int i = 0; i < page->n; i++)
		page->rows[i]->now = NULL;
	return cut;
}

/* --- page order ------------------------------------------------------------ */

static const PullTypes *sort_types;

/* creates and updates parents first, then deletes children first; else arrival */
static int
cmp_output(const void *a, const void *b)
{
	const PullRow *x = *(PullRow *const *) a;
	const PullRow *y = *(PullRow *const *) b;
	bool		xd = x->op[0] == 'd';
	bool		yd = y->op[0] == 'd';
	int			xs = sort_types->t[x->type].sort_order;
	int			ys = sort_types->t[y->type].sort_order;

	if (xd != yd)
		return xd ? 1 : -1;
	if (xs != ys)
		return xd ? ys - xs : xs - ys;
	return x->ordinal - y->ordinal;
}

/*
 * Leaves out what the page does not deliver (page_settle) and orders the
 * page by entity dependencies.
 */
static void
order_page(PullRequest *req, PullPage *page)
{
	int			n = 0;

	if (page->n == 0)
		return;
	for (int i = 0; i < page->n; i++)
	{
		if (page->rows[i]->keep)
			page->rows[n++] = page->rows[i];
	}
	page->n = n;
	sort_types = &req->types;
	qsort(page->rows, page->n, sizeof(PullRow *), cmp_output);
}

/* --- response ------------------------------------------------------------- */

/*
 * The response is written straight into jsonb's binary format, one pass, into
 * one buffer allocated in the caller's context.  Each change's data is the
 * change log's own jsonb container, copied as is: a container's offsets are
 * relative to itself and its padding to 4-byte boundaries, so it may move to
 * any int-aligned place.  Keys are written in jsonb's order (shorter first,
 * then bytewise).
 */
/* The writers are jsonbwrite.c's (jbw_*), shared with push. */

/* Writes one change object. */
static uint32
jb_change(StringInfo buf, PullRequest *req, PullRow *row)
{
	PullType   *t = &req->types.t[row->type];
	JbwCont		c;
	JsonbValue	idv;
	JsonbValue *found = NULL;
	char		ts[MAXDATELEN + 1];
	static const int utc = 0;

	if (JB_ROOT_IS_OBJECT(row->data))
		found = getKeyJsonValueFromContainer(&row->data->root, t->pk, strlen(t->pk), &idv);
	if (found == NULL || found->type == jbvBinary)
	{
		idv.type = jbvString;
		idv.val.string.val = row->id;
		idv.val.string.len = strlen(row->id);
	}
	JsonEncodeDateTime(ts, TimestampTzGetDatum(row->at), TIMESTAMPTZOID, &utc);

	/* id, data, version, operation, updatedAt, entityType */
	jbw_begin(buf, &c, true, 6);
	jbw_entry(buf, &c, JBW_KEY(buf, "id"));
	jbw_entry(buf, &c, JBW_KEY(buf, "data"));
	jbw_entry(buf, &c, JBW_KEY(buf, "version"));
	jbw_entry(buf, &c, JBW_KEY(buf, "operation"));
	jbw_entry(buf, &c, JBW_KEY(buf, "updatedAt"));
	jbw_entry(buf, &c, JBW_KEY(buf, "entityType"));
	jbw_entry(buf, &c, jbw_scalar(buf, &idv));
	jbw_entry(buf, &c, jbw_document(buf, row->data));
	jbw_entry(buf, &c, jbw_int8(buf, row->version));
	jbw_entry(buf, &c, jbw_string(buf, row->op, strlen(row->op)));
	jbw_entry(buf, &c, jbw_string(buf, ts, strlen(ts)));
	jbw_entry(buf, &c, jbw_string(buf, t->name, strlen(t->name)));
	return jbw_end(buf, &c);
}

/* Builds the response object in outcxt. */
static Jsonb *
build_response(PullRequest *req, PullPage *page, const char *cursor, TimestampTz timestamp,
			   MemoryContext outcxt)
{
	StringInfoData b;
	StringInfo	buf = &b;
	JbwCont		top;
	JbwCont		arr;
	Size		estimate = 256 + strlen(cursor);
	int64		epoch_ms = sync_timestamp_epoch_ms(timestamp);
	MemoryContext old;
	uint32		meta;

	for (int i = 0; i < page->n; i++)
		estimate += VARSIZE(page->rows[i]->data) + strlen(page->rows[i]->id) + 160;

	old = MemoryContextSwitchTo(outcxt);
	b.maxlen = Min(estimate, MaxAllocSize - 1);
	b.data = palloc(b.maxlen);
	b.len = 0;
	b.cursor = 0;
	b.data[0] = '\0';
	MemoryContextSwitchTo(old);

	buf->len = VARHDRSZ;		/* the varlena header, set at the end */

	/* full, cursor, changes, hasMore, success, timestamp */
	jbw_begin(buf, &top, true, 6);
	jbw_entry(buf, &top, JBW_KEY(buf, "full"));
	jbw_entry(buf, &top, JBW_KEY(buf, "cursor"));
	jbw_entry(buf, &top, JBW_KEY(buf, "changes"));
	jbw_entry(buf, &top, JBW_KEY(buf, "hasMore"));
	jbw_entry(buf, &top, JBW_KEY(buf, "success"));
	jbw_entry(buf, &top, JBW_KEY(buf, "timestamp"));
	jbw_entry(buf, &top, page->full ? JENTRY_ISBOOL_TRUE : JENTRY_ISBOOL_FALSE);
	jbw_entry(buf, &top, jbw_string(buf, cursor, strlen(cursor)));
	jbw_begin(buf, &arr, false, page->n);
	for (int i = 0; i < page->n; i++)
		jbw_entry(buf, &arr, jb_change(buf, req, page->rows[i]));
	meta = jbw_end(buf, &arr);
	jbw_entry(buf, &top, meta);
	jbw_entry(buf, &top, page->has_more ? JENTRY_ISBOOL_TRUE : JENTRY_ISBOOL_FALSE);
	jbw_entry(buf, &top, JENTRY_ISBOOL_TRUE);
	jbw_entry(buf, &top, jbw_int8(buf, epoch_ms));

	SET_VARSIZE(buf->data, buf->len);
	return (Jsonb *) buf->data;
}

/* --- the time watermark ------------------------------------------------------ */

/* The tenant's change log, open for reads of changed_at through its primary key (xid, seq). */
typedef struct LogScan
{
	Relation	heap;
	Relation	index;
	TupleTableSlot *slot;
	AttrNumber	att;			/* changed_at */
} LogScan;

/* Opens the tenant's log; false (nothing open) when it has no log or no changed_at. */
static bool
log_scan_open(PullRequest *req, LogScan *ls)
{
	Oid			nsp = get_namespace_oid(req->schema, false);
	Oid			relid = get_relname_relid("sync_changes", nsp);

	if (!OidIsValid(relid) || (ls->att = get_attnum(relid, "changed_at")) == InvalidAttrNumber)
		return false;
	ls->heap = table_open(relid, AccessShareLock);
	ls->index = index_open(RelationGetPrimaryKeyIndex_compat(ls->heap), AccessShareLock);
	ls->slot = table_slot_create(ls->heap, NULL);
	return true;
}

/*
 * Lowers *min to the earliest changed_at of the log rows whose xid compares
 * to fxid by strategy (BTEqualStrategyNumber or BTGreaterEqualStrategyNumber,
 * proc its xid8 operator's function), as snap sees them.
 */
static void
log_scan_min(LogScan *ls, Snapshot snap, StrategyNumber strategy, RegProcedure proc,
			 uint64 fxid, TimestampTz *min)
{
	ScanKeyData key;
	IndexScanDesc scan;

	ScanKeyInit(&key, 1, strategy, proc, FullTransactionIdGetDatum(FullTransactionIdFromU64(fxid)));
	scan = index_beginscan_compat(ls->heap, ls->index, snap, 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	while (index_getnext_slot(scan, ForwardScanDirection, ls->slot))
	{
		bool		isnull;
		Datum		d = slot_getattr(ls->slot, ls->att, &isnull);

		if (!isnull && DatumGetTimestampTz(d) < *min)
			*min = DatumGetTimestampTz(d);
	}
	index_endscan(scan);
}

static void
log_scan_close(LogScan *ls)
{
	ExecDropSingleTupleTableSlot(ls->slot);
	index_close(ls->index, AccessShareLock);
	table_close(ls->heap, AccessShareLock);
}

/*
 * The earliest changed_at of the tenant's log rows of these (32-bit) xids,
 * read with SnapshotAny through the log's primary key (xid, seq): rows of
 * transactions still running included.  For transactions that write no more
 * (a prepared transaction) the bound is exact.
 */
static void
log_min_any(PullRequest *req, const TransactionId *xids, int n, TimestampTz *min)
{
	FullTransactionId next = ReadNextFullTransactionId();
	LogScan		ls;

	if (n == 0 || !log_scan_open(req, &ls))
		return;
	for (int i = 0; i < n; i++)
		log_scan_min(&ls, SnapshotAny, BTEqualStrategyNumber, F_XID8EQ, full_xid(next, xids[i]), min);
	log_scan_close(&ls);
}

/*
 * The earliest changed_at of the log rows this pull's snapshot s did not see
 * and a fresh snapshot sees: transactions that committed since s was taken
 * (xids from s's xmax on, and s's in-progress ones).  Read through the log's
 * primary key (xid, seq) in C: no plan (a generic plan of the SQL form took
 * xid >= $1 for a third of the log and read all of it, row-level security's
 * quals on every row) and every practice's rows, which only make the bound
 * earlier.
 */
static void
log_min_committed_since(PullRequest *req, const PullSnap *s, TimestampTz *min)
{
	LogScan		ls;
	Snapshot	snap;

	if (!log_scan_open(req, &ls))
		return;
	snap = RegisterSnapshot(GetLatestSnapshot());
	/* first the xids from xmax on, then each in-progress one */
	log_scan_min(&ls, snap, BTGreaterEqualStrategyNumber, F_XID8GE, s->xmax, min);
	for (int i = 0; i < s->nxip; i++)
		log_scan_min(&ls, snap, BTEqualStrategyNumber, F_XID8EQ, s->xip[i], min);
	UnregisterSnapshot(snap);
	log_scan_close(&ls);
}

/*
 * The response's "timestamp": a watermark W such that every change this pull
 * did not deliver, by a transaction running now or later, is stamped at or
 * after W, so a pull by time from W (the boundary included) gets it.
 *
 * Capture stamps changed_at with the clock after its transaction has its xid
 * (src/capture.c).  So, with r the clock before the backends are looked at:
 *   - a transaction that gets its xid after that stamps after r;
 *   - a transaction that holds an xid stamps after its start: the earliest
 *     start of a transaction holding an xid in this database bounds them
 *     (backend status: st_xact_start_timestamp, readable without the
 *     privileges pg_stat_activity needs).  A backend whose status showed no
 *     transaction when it was read took its xid after that: after r;
 *   - a prepared transaction (no backend) or a backend with track_activities
 *     off has no known start: its rows already in the log bound it (a
 *     prepared transaction writes no more);
 *   - a transaction this pull's snapshot did not see that has committed
 *     since: its rows, read with a fresh snapshot.
 * W = the minimum.  One long writer anywhere in the database holds W back
 * (more changes come twice to clients that pull by time; none is lost).
 * On a hot standby the primary's transactions have no status: their rows
 * already replayed and the primary's time of the last replayed commit bound
 * W (README: a change stamped on the primary in the microseconds before its
 * WAL record, while another commit's record passes it, escapes that bound;
 * the cursor is exact on a standby).
 */
static TimestampTz
pull_watermark(PullRequest *req, const PullSnap *s)
{
	TimestampTz w;
	TransactionId *unknown;
	int			nunknown = 0;

	if (RecoveryInProgress())
	{
		TimestampTz replayed = GetLatestXTime();

		w = replayed != 0 ? Min(replayed, GetCurrentTimestamp()) : GetCurrentTimestamp();
		unknown = palloc(sizeof(TransactionId) * Max(s->nxip, 1));
		for (int i = 0; i < s->nxip; i++)
			unknown[nunknown++] = (TransactionId) s->xip[i];
	}
	else
	{
		int			nback;

		w = GetCurrentTimestamp();
		pgstat_clear_backend_activity_snapshot();
		nback = pgstat_fetch_stat_numbackends();
		unknown = palloc(sizeof(TransactionId) * (nback + ProcGlobal->allProcCount + 1));
		for (int i = 1; i <= nback; i++)
		{
			LocalPgBackendStatus *l = pgstat_fetch_stat_local_beentry_compat(i);

			if (l == NULL || !TransactionIdIsValid(l->backend_xid) ||
				l->backendStatus.st_databaseid != MyDatabaseId)
				continue;
			if (l->backendStatus.st_state == STATE_DISABLED)
				unknown[nunknown++] = l->backend_xid;
			else if (l->backendStatus.st_xact_start_timestamp != 0)
				w = Min(w, l->backendStatus.st_xact_start_timestamp);
		}
		/* prepared transactions: a PGPROC with an xid and no process */
		LWLockAcquire(ProcArrayLock, LW_SHARED);
		for (uint32 i = 0; i < ProcGlobal->allProcCount; i++)
		{
			PGPROC	   *proc = &ProcGlobal->allProcs[i];
			TransactionId xid = proc->xid;

			if (proc->pid == 0 && TransactionIdIsValid(xid) && proc->databaseId == MyDatabaseId)
				unknown[nunknown++] = xid;
		}
		LWLockRelease(ProcArrayLock);
	}
	log_min_any(req, unknown, nunknown, &w);
	log_min_committed_since(req, s, &w);
	return w;
}

/* --- tags ------------------------------------------------------------------ */

uint64
tenant_tag(const char *tenant)
{
	return hash_bytes_extended((const unsigned char *) tenant, strlen(tenant), 0x534d53594e43ULL);
}

uint32
scope_tag(const char *practice, const char *client, const char *types)
{
	StringInfoData s;

	initStringInfo(&s);
	appendStringInfo(&s, "%s%c%s%c%s", practice ? practice : "", '\x1f',
					 client ? client : "", '\x1f', types);
	return (uint32) hash_bytes_extended((const unsigned char *) s.data, s.len, 1);
}

/* The server, database and (Citus: citus.c) change-log epoch a cursor was issued by. */
uint32
origin_tag(uint32 log_epoch)
{
	uint64		v[3];

	v[0] = GetSystemIdentifier();
	v[1] = MyDatabaseId;
	v[2] = log_epoch;
	return (uint32) hash_bytes_extended((const unsigned char *) v,
										log_epoch ? sizeof(v) : 2 * sizeof(uint64), 2);
}

/* --- retention -------------------------------------------------------------- */

/* Raises SS505 when pruning removed changes the cursor had not yet delivered. */
void
check_horizon(PullRequest *req, const PullCursor *cur)
{
	StringInfoData q;
	int			rc;
	bool		isnull;
	uint64		max_pruned;
	TimestampTz pruned_before;

	initStringInfo(&q);
	appendStringInfo(&q, "SELECT max_pruned_xid, pruned_before FROM %s.sync_pull_horizon",
					 req->quoted_schema);
	rc = SPI_execute_plan(pull_plan(q.data, 0, NULL), NULL, NULL, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 0)
	{
		SPI_freetuptable(SPI_tuptable);
		return;
	}
	max_pruned = DatumGetUInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	pruned_before = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	SPI_freetuptable(SPI_tuptable);

	if ((cur->kind == CK_TIME && cur->since < pruned_before) ||
		((cur->kind == CK_IDLE || cur->kind == CK_DRAIN) && cur->base.xmin <= max_pruned))
		ereport(ERROR,
				(errcode(ERRCODE_SS_MUST_REFETCH),
				 errmsg("pull cursor must be refetched"),
				 errdetail("Changes the client has not received were pruned from the change log (smartsync.prune_changes)."),
				 errhint("Pull again without a cursor and replace the local data with the result.")));
}

/* --- entry point ------------------------------------------------------------ */

/*
 * smartsync.sync_pull(p_since, p_cursor, p_entity_types, p_practice_id, p_limit)
 * returns jsonb: one page of changes for the request context's tenant.
 */
Datum
smartsync_sync_pull(PG_FUNCTION_ARGS)
{
	MemoryContext outcxt = CurrentMemoryContext;
	MemoryContext cxt;
	MemoryContext old;
	Datum		routed;
	SyncContext ctx;
	PullRequest req;
	PullCursor	cur;
	PullSnap	now_snap;
	PullPage	page;
	uint8		key[SECRET_MAX_LEN];
	int			keylen;
	char	   *arg_since = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *arg_cursor = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	char	   *arg_types = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	char	   *arg_practice = PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3));
	bool		has_since = false;
	TimestampTz since = 0;
	TimestampTz watermark;
	char	   *filter;
	char	   *cursor_text;
	uint32		scope;
	bool		behind = false;
	List	   *wanted = NIL;
	List	   *global = NIL;
	Jsonb	   *result;
	uint32		log_epoch;
	bool		log_native;

	if (sync_citus_route(fcinfo, &routed))	/* Citus: pull on the tenant's node */
		return routed;
	memset(&req, 0, sizeof(req));
	memset(&page, 0, sizeof(page));

	sync_context_read(&ctx);
	sync_context_require_tenant(&ctx);

	/* p_since: a client timestamp, read by the one strict parser (context.c) */
	if (arg_since != NULL && arg_since[0] != '\0')
	{
		if (!sync_parse_timestamp(arg_since, strlen(arg_since), &since))
			ereport(ERROR,
					(errcode(ERRCODE_SS_PULL_BAD_SINCE),
					 errmsg("invalid p_since (lastSyncTimestamp) \"%s\"", sync_clip_str(arg_since)),
					 errdetail("A time is an integer of milliseconds since 1970-01-01 UTC, or ISO 8601 with date, time and offset (2024-11-10T12:00:00Z), from 1970 to 9999."),
					 errhint("Encode \"+\" in a query string as %%2B; better, send back the previous response's \"cursor\" as p_cursor.")));
		has_since = true;
	}

	/* practice: the context's, never widened; p_practice_id may only repeat it (1, "1", 1.0 alike) */
	if (arg_practice != NULL && arg_practice[0] == '\0')
		arg_practice = NULL;
	if (arg_practice != NULL)
		arg_practice = sync_canonical_id(arg_practice, strlen(arg_practice));
	if (arg_practice != NULL && ctx.practice_id != NULL &&
		strcmp(arg_practice, ctx.practice_id) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_SS_PRACTICE_MISMATCH),
				 errmsg("practice \"%s\" is not the practice of the request", sync_clip_str(arg_practice)),
				 errdetail("The request context names practice \"%s\".", ctx.practice_id),
				 errhint("Leave p_practice_id out, or send the context's practice.")));
	req.practice = ctx.practice_id ? ctx.practice_id : arg_practice;
	req.client = ctx.client_id;

	/* page size */
	if (PG_ARGISNULL(4))
		req.limit = Min(pull_default_limit, pull_max_limit);
	else
	{
		int32		limit = PG_GETARG_INT32(4);

		if (limit < 1 || limit > pull_max_limit)
			ereport(ERROR,
					(errcode(ERRCODE_SS_PULL_LIMIT),
					 errmsg("page limit %d is out of range", limit),
					 errdetail("p_limit must lie between 1 and smartsync.pull_max_limit (%d).",
							   pull_max_limit)));
		req.limit = limit;
	}

	req.budget = (Size) pull_max_bytes;
	req.schema = sync_tenant_schema(ctx.tenant_id);
	req.quoted_schema = quote_identifier(req.schema);

	cxt = AllocSetContextCreate(CurrentMemoryContext, "smartsync pull", ALLOCSET_DEFAULT_SIZES);
	req.cxt = cxt;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	old = MemoryContextSwitchTo(cxt);

	load_types(req.schema, &ctx, &req.types);
	filter = apply_type_filter(&req.types, arg_types);
	for (int i = 0; i < req.types.n; i++)
	{
		if (!req.types.t[i].wanted)
			continue;
		wanted = lappend(wanted, req.types.t[i].name);
		if (req.types.t[i].practice_col == NULL)
			global = lappend(global, req.types.t[i].name);
	}
	req.wanted_types = text_array(wanted);
	req.global_types = text_array(global);
	scope = scope_tag(req.practice, req.client, filter);

	current_snap(&now_snap);
	keylen = read_secret(key);
	/* Citus: a log moved here is not this node's until adopted (citus.c) */
	log_native = sync_citus_log_state(req.schema, &log_epoch);

	if (arg_cursor != NULL && arg_cursor[0] != '\0')
	{
		const PullSnap *top;

		cursor_decode(arg_cursor, key, keylen, &cur);
		if (cur.tenant_tag != tenant_tag(ctx.tenant_id))
			ereport(ERROR,
					(errcode(ERRCODE_SS_CURSOR_TENANT),
					 errmsg("pull cursor belongs to another tenant"),
					 errdetail("The cursor was issued for another tenant than tenant \"%s\".", ctx.tenant_id),
					 errhint("Each tenant's client keeps its own cursor.")));
		if (cur.origin_tag != origin_tag(log_epoch))
			ereport(ERROR,
					(errcode(ERRCODE_SS_MUST_REFETCH),
					 errmsg("pull cursor must be refetched"),
					 errdetail("The cursor was issued by another cluster or database (restored from a dump or upgraded), or before the tenant moved to another node."),
					 errhint("Pull again without a cursor and replace the local data with the result.")));
		if (cur.scope_tag != scope)
			ereport(ERROR,
					(errcode(ERRCODE_SS_CURSOR_SCOPE),
					 errmsg("pull cursor was issued for another scope"),
					 errdetail("The cursor was issued for another practice, client or set of entity types."),
					 errhint("Send the same p_entity_types and context as the pull that issued the cursor, or pull without a cursor.")));
		if (log_native)
			check_horizon(&req, &cur);
		top = (cur.kind == CK_DRAIN || cur.kind == CK_TIME) ? &cur.upper : &cur.base;
		behind = (!log_native && cur.kind != CK_LIST) || !snap_follows(top, &now_snap);
	}
	else
	{
		memset(&cur, 0, sizeof(cur));
		cur.tenant_tag = tenant_tag(ctx.tenant_id);
		cur.scope_tag = scope;
		cur.origin_tag = origin_tag(log_epoch);
		if (has_since && since > SetEpochTimestamp())
		{
			cur.kind = CK_TIME;
			cur.since = since;
			cur.upper = now_snap;
			if (!log_native)
				ereport(ERROR,
						(errcode(ERRCODE_SS_MUST_REFETCH),
						 errmsg("pull cursor must be refetched"),
						 errdetail("The tenant moved to another node and its change log has not recorded a change there yet."),
						 errhint("Pull again without a cursor and replace the local data with the result.")));
			check_horizon(&req, &cur);
		}
		else
		{
			cur.kind = CK_LIST;
			cur.base = now_snap;
		}
	}

	if (behind)
	{
		/* this server has not yet seen all the cursor saw: nothing yet */
		page.next = cur;
		cursor_text = arg_cursor;
	}
	else
	{
		switch (cur.kind)
		{
			case CK_IDLE:
				cur.kind = CK_DRAIN;
				cur.upper = now_snap;
				cur.has_pos = false;
				run_drain(&req, &cur, &page);
				break;
			case CK_DRAIN:
			case CK_TIME:
				run_drain(&req, &cur, &page);
				break;
			case CK_LIST:
				run_list(&req, &cur, &page);
				break;
			case CK_TIME_OLD:
				break;			/* refused by cursor_decode */
		}
		order_page(&req, &page);
		cursor_text = cursor_encode(&page.next, key, keylen);
	}

	/* the timestamp: a safe watermark; a read by time cut short continues from its cut */
	watermark = pull_watermark(&req, &now_snap);
	if (page.has_stop_at)
		watermark = Min(watermark, page.stop_at);
	result = build_response(&req, &page, cursor_text, watermark, outcxt);
	MemoryContextSwitchTo(old);
	SPI_finish();
	MemoryContextDelete(cxt);
	PG_RETURN_JSONB_P(result);
}
