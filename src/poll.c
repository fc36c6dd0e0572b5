/*
 * poll.c: smartsync.poll_changes(p_watermark, p_tenants), the change signal a
 * server polls: which tenants (and practices) have changes that committed
 * since the previous poll?
 *
 * It costs writers nothing: it reads the change logs capture writes anyway.
 * (The other signal, NOTIFY at commit (notify.c), serializes committing
 * writers; see the README's figures.)  The watermark is the snapshot of the
 * previous poll, as text in pg_snapshot's form "xmin:xmax:xip,xip"; a change
 * is reported by the first poll whose snapshot sees its transaction
 * committed, exactly once (the PgQ method, as the pull's cursor):
 *
 *   - rows of the transactions the watermark saw in progress and that have
 *     committed since: one primary-key probe each;
 *   - rows of transactions from the watermark's xmax on: one primary-key
 *     range scan, which the poll's own MVCC snapshot limits to the
 *     committed ones.
 *
 * So a poll costs one index descent per tenant when nothing changed, and
 * reads only the new rows otherwise.  The registry and the logs are read
 * directly, not through SQL: no privilege and no row-level security applies,
 * which is why the function is not executable by PUBLIC (setup_postgrest()
 * grants it to authenticator, the role a server logs in as).  It never
 * writes or assigns an xid: it runs READ ONLY and on a hot standby.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "access/heapam.h"
#include "access/tableam.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "libpq/libpq.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"
#include "utils/xid8.h"

#include "smartsync.h"
#include "citus.h"
#include "pull.h"

PG_FUNCTION_INFO_V1(smartsync_poll_changes);

/* more distinct practices than this in one poll are reported as "every practice" */
#define POLL_MAX_PRACTICES 64

/* smartsync.poll_wait and smartsync.poll_check_interval, in milliseconds */
static int	poll_wait_ms = 0;
static int	poll_check_ms = 1;

/* What one poll found in one tenant's log. */
typedef struct PollFound
{
	bool		any;
	bool		all_practices;
	List	   *practices;		/* of char *, distinct */
} PollFound;

/* Raises SS801 for a watermark that is not "xmin:xmax:xip,...". */
static void
bad_watermark(const char *text)
{
	ereport(ERROR,
			(errcode(ERRCODE_SS_BAD_WATERMARK),
			 errmsg("invalid poll watermark \"%.40s\"", text),
			 errdetail("A watermark is the \"watermark\" of the previous poll_changes() result: xmin:xmax:xip,... in full transaction ids."),
			 errhint("Poll once without a watermark to get a fresh one.")));
}

/* Parses one unsigned decimal; advances *p. */
static bool
parse_u64(const char **p, uint64 *v)
{
	const char *s = *p;
	uint64		r = 0;

	if (*s < '0' || *s > '9')
		return false;
	while (*s >= '0' && *s <= '9')
	{
		if (r > (PG_UINT64_MAX - (*s - '0')) / 10)
			return false;
		r = r * 10 + (*s - '0');
		s++;
	}
	*p = s;
	*v = r;
	return true;
}

/* Parses a watermark into s (SS801 when malformed). */
static void
watermark_parse(const char *text, PullSnap *s)
{
	const char *p = text;
	int			cap = 8;

	if (!parse_u64(&p, &s->xmin) || *p++ != ':' || !parse_u64(&p, &s->xmax) || *p++ != ':' ||
		s->xmin > s->xmax)
		bad_watermark(text);
	s->recovery = false;
	s->nxip = 0;
	s->xip = palloc(sizeof(uint64) * cap);
	while (*p != '\0')
	{
		uint64		x;

		if (s->nxip > 0 && *p++ != ',')
			bad_watermark(text);
		if (!parse_u64(&p, &x) || x < s->xmin || x >= s->xmax ||
			(s->nxip > 0 && x <= s->xip[s->nxip - 1]))
			bad_watermark(text);
		if (s->nxip == cap)
		{
			cap *= 2;
			s->xip = repalloc(s->xip, sizeof(uint64) * cap);
		}
		s->xip[s->nxip++] = x;
	}
}

/* A snapshot as watermark text. */
static char *
watermark_text(const PullSnap *s)
{
	StringInfoData b;

	initStringInfo(&b);
	appendStringInfo(&b, UINT64_FORMAT ":" UINT64_FORMAT ":", s->xmin, s->xmax);
	for (int i = 0; i < s->nxip; i++)
		appendStringInfo(&b, "%s" UINT64_FORMAT, i > 0 ? "," : "", s->xip[i]);
	return b.data;
}

/*
 * Notes the practice of one new change-log row.  Rows of the poll's own
 * transaction are left for the poll that sees it committed (the watermark
 * lists it as in progress).
 */
static void
found_row(PollFound *f, HeapTuple tup, TupleDesc desc, AttrNumber xid_att, AttrNumber practice_att)
{
	FullTransactionId own = GetTopFullTransactionIdIfAny();
	bool		isnull;
	Datum		d;
	char	   *practice;
	ListCell   *lc;

	if (FullTransactionIdIsValid(own))
	{
		d = heap_getattr(tup, xid_att, desc, &isnull);
		if (!isnull && U64FromFullTransactionId(DatumGetFullTransactionId(d)) ==
			U64FromFullTransactionId(own))
			return;
	}
	f->any = true;
	if (f->all_practices)
		return;
	d = heap_getattr(tup, practice_att, desc, &isnull);
	if (isnull)
	{
		f->all_practices = true;	/* a change of no practice reaches every practice */
		return;
	}
	practice = TextDatumGetCString(d);
	foreach(lc, f->practices)
	{
		if (strcmp((char *) lfirst(lc), practice) == 0)
			return;
	}
	if (list_length(f->practices) >= POLL_MAX_PRACTICES)
		f->all_practices = true;
	else
		f->practices = lappend(f->practices, practice);
}

/*
 * Reads the rows of one tenant's log that the poll's snapshot sees and the
 * watermark did not: first those of the xids the watermark saw in progress
 * and now sees committed, then every visible row from its xmax on.
 */
static void
poll_tenant(const char *schema, const PullSnap *base, const PullSnap *now, PollFound *f)
{
	Oid			nsp = get_namespace_oid(schema, true);
	Oid			relid = OidIsValid(nsp) ? get_relname_relid("sync_changes", nsp) : InvalidOid;
	Relation	rel;
	Oid			pkey;
	AttrNumber	practice_att;
	AttrNumber	xid_att;
	Snapshot	snap = GetActiveSnapshot();
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;

	memset(f, 0, sizeof(*f));
	if (!OidIsValid(relid))
		return;					/* a tenant whose schema is gone has nothing to report */
	rel = table_open(relid, AccessShareLock);
	pkey = RelationGetPrimaryKeyIndex_compat(rel);
	practice_att = get_attnum(relid, "practice_id");
	xid_att = get_attnum(relid, "xid");
	if (!OidIsValid(pkey) || practice_att == InvalidAttrNumber || xid_att == InvalidAttrNumber)
		elog(ERROR, "change log of schema \"%s\" lacks its primary key or practice_id", schema);

	for (int i = 0; i < base->nxip && !(f->any && f->all_practices); i++)
	{
		if (!snap_visible(now, base->xip[i]))
			continue;
		ScanKeyInit(&key, xid_att, BTEqualStrategyNumber, F_XID8EQ,
					FullTransactionIdGetDatum(FullTransactionIdFromU64(base->xip[i])));
		scan = systable_beginscan(rel, pkey, true, snap, 1, &key);
		while (HeapTupleIsValid(tup = systable_getnext(scan)))
		{
			found_row(f, tup, RelationGetDescr(rel), xid_att, practice_att);
			if (f->all_practices)
				break;
		}
		systable_endscan(scan);
	}
	if (!(f->any && f->all_practices))
	{
		ScanKeyInit(&key, xid_att, BTGreaterEqualStrategyNumber, F_XID8GE,
					FullTransactionIdGetDatum(FullTransactionIdFromU64(base->xmax)));
		scan = systable_beginscan(rel, pkey, true, snap, 1, &key);
		while (HeapTupleIsValid(tup = systable_getnext(scan)))
		{
			found_row(f, tup, RelationGetDescr(rel), xid_att, practice_att);
			if (f->all_practices)
				break;
		}
		systable_endscan(scan);
	}
	table_close(rel, AccessShareLock);
}

static int
cmp_tenant(const void *a, const void *b)
{
	return strcmp(((char *const *) a)[0], ((char *const *) b)[0]);
}

static int
cmp_cstring(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/*
 * The tenants of the registry (all, or those named in wanted) and their
 * schemas, ordered by tenant id; read directly, since the poller (authenticator)
 * has no privilege on the registry.
 */
static void
read_tenants(char **wanted, int nwanted, bool all, char ***tenants, char ***schemas, uint64 *n)
{
	Oid			nsp = get_namespace_oid("smartsync", false);
	Oid			relid = sync_citus_local_relation(get_relname_relid("tenants", nsp));
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	AttrNumber	id_att;
	AttrNumber	schema_att;
	char	  **pairs;
	uint64		cap = 16;
	uint64		count = 0;

	if (!OidIsValid(relid))
		elog(ERROR, "table smartsync.tenants is missing");
	id_att = get_attnum(relid, "tenant_id");
	schema_att = get_attnum(relid, "schema_name");
	pairs = palloc(sizeof(char *) * 2 * cap);
	rel = table_open(relid, AccessShareLock);
	scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, id_att, RelationGetDescr(rel), &isnull);
		char	   *tenant;

		if (isnull)
			continue;
		tenant = TextDatumGetCString(d);
		if (!all && bsearch(&tenant, wanted, nwanted, sizeof(char *), cmp_cstring) == NULL)
			continue;
		d = heap_getattr(tup, schema_att, RelationGetDescr(rel), &isnull);
		if (isnull)
			continue;
		if (count == cap)
		{
			cap *= 2;
			pairs = repalloc(pairs, sizeof(char *) * 2 * cap);
		}
		pairs[2 * count] = tenant;
		pairs[2 * count + 1] = pstrdup(NameStr(*DatumGetName(d)));
		count++;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	qsort(pairs, count, sizeof(char *) * 2, cmp_tenant);
	*tenants = palloc(sizeof(char *) * Max(count, 1));
	*schemas = palloc(sizeof(char *) * Max(count, 1));
	for (uint64 i = 0; i < count; i++)
	{
		(*tenants)[i] = pairs[2 * i];
		(*schemas)[i] = pairs[2 * i + 1];
	}
	*n = count;
}

/* True when a and b list the same transactions: none completed between them. */
static bool
snap_same(const PullSnap *a, const PullSnap *b)
{
	return a->xmax == b->xmax && a->nxip == b->nxip &&
		memcmp(a->xip, b->xip, sizeof(uint64) * a->nxip) == 0;
}

/* Copies snapshot src into dst, reusing dst's in-progress list (*cap entries). */
static void
snap_copy(PullSnap *dst, int *cap, const PullSnap *src)
{
	if (src->nxip > *cap)
	{
		*cap = src->nxip;
		dst->xip = repalloc(dst->xip, sizeof(uint64) * *cap);
	}
	dst->xmin = src->xmin;
	dst->xmax = src->xmax;
	dst->recovery = src->recovery;
	dst->nxip = src->nxip;
	memcpy(dst->xip, src->xip, sizeof(uint64) * src->nxip);
}

/*
 * Appends to changes the tenants with rows committed after base and visible
 * to now (the active snapshot); returns whether there was any.
 */
static bool
report_changes(StringInfo changes, char **tenants, char **schemas, uint64 ntenants,
			   const PullSnap *base, const PullSnap *now)
{
	bool		any = false;

	for (uint64 i = 0; i < ntenants; i++)
	{
		PollFound	f;
		ListCell   *lc;

		poll_tenant(schemas[i], base, now, &f);
		if (!f.any)
			continue;
		appendStringInfoString(changes, any ? ", {\"tenant\": " : "{\"tenant\": ");
		any = true;
		escape_json(changes, tenants[i]);
		appendStringInfoString(changes, ", \"practices\": ");
		if (f.all_practices)
			appendStringInfoString(changes, "null}");
		else
		{
			appendStringInfoChar(changes, '[');
			foreach(lc, f.practices)
			{
				if (lc != list_head(f.practices))
					appendStringInfoString(changes, ", ");
				escape_json(changes, (char *) lfirst(lc));
			}
			appendStringInfoString(changes, "]}");
		}
	}
	return any;
}

/* Defines smartsync.poll_wait and smartsync.poll_check_interval. */
void
sync_poll_init(void)
{
	DefineCustomIntVariable("smartsync.poll_wait",
							"How long poll_changes() may wait for a change before it answers that there is none.",
							"0 (the default): it answers at once.  A server that sets it calls poll_changes() "
							"again as soon as it answers, and the database does the polling.",
							&poll_wait_ms, 0, 0, 60 * 1000,
							PGC_USERSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("smartsync.poll_check_interval",
							"How often a waiting poll_changes() looks for committed changes.",
							"A look that finds no transaction completed since the previous one reads no index.",
							&poll_check_ms, 1, 1, 1000,
							PGC_USERSET, GUC_UNIT_MS, NULL, NULL, NULL);
}

/*
 * smartsync.poll_changes(p_watermark text, p_tenants text[]) returns jsonb
 * {"watermark": "...", "changes": [{"tenant": "...", "practices": [...] | null}]}:
 * the tenants (all, or those of p_tenants) with changes committed since the
 * watermark, and the watermark to send next time.  Without a watermark it
 * only returns one.
 *
 * With smartsync.poll_wait above 0 and nothing new, it waits: every
 * smartsync.poll_check_interval it takes a new snapshot and, when some
 * transaction completed since the previous look, probes the logs again
 * between the two snapshots; it answers at the first look that finds a
 * change, or with no change when the wait is over (or the client has gone).
 * The answer's watermark is the snapshot of its last look, so each change is
 * still reported once.  The statement's own snapshot stays registered while
 * it waits (the wait holds back vacuum's horizon that long).
 */
Datum
smartsync_poll_changes(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "smartsync poll",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	PullSnap	now;
	PullSnap	base;
	StringInfoData out;
	StringInfoData changes;
	Jsonb	   *result;
	const char *mark;

	current_snap(&now);
	mark = watermark_text(&now);
	initStringInfo(&changes);

	if (!PG_ARGISNULL(0))
	{
		char	  **wanted = NULL;
		int			nwanted = 0;
		uint64		ntenants = 0;
		char	  **tenants;
		char	  **schemas;
		int			wait_ms = poll_wait_ms;
		TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), wait_ms);
		MemoryContext look = AllocSetContextCreate(cxt, "smartsync poll look", ALLOCSET_DEFAULT_SIZES);
		bool		pushed = false;
		bool		found = false;
		int			base_cap;

		watermark_parse(text_to_cstring(PG_GETARG_TEXT_PP(0)), &base);
		if (!PG_ARGISNULL(1))
		{
			Datum	   *elems;
			bool	   *enulls;
			int			n;

			deconstruct_array(PG_GETARG_ARRAYTYPE_P(1), TEXTOID, -1, false, TYPALIGN_INT,
							  &elems, &enulls, &n);
			wanted = palloc(sizeof(char *) * Max(n, 1));
			for (int i = 0; i < n; i++)
				if (!enulls[i])
					wanted[nwanted++] = TextDatumGetCString(elems[i]);
			qsort(wanted, nwanted, sizeof(char *), cmp_cstring);
		}
		read_tenants(wanted, nwanted, PG_ARGISNULL(1), &tenants, &schemas, &ntenants);

		/*
		 * Citus: a tenant whose log is a worker's shard cannot be watched
		 * (citus.c); refused up front, whether or not this call probes.
		 */
		for (uint64 i = 0; i < ntenants; i++)
			sync_citus_refuse_poll(schemas[i]);
		base_cap = base.nxip;

		for (;;)
		{
			long		left;
			long		pause = poll_check_ms;

			/*
			 * Nothing is new when a standby is behind the watermark (same
			 * watermark) or when no transaction completed since the last look.
			 */
			if (snap_follows(&base, &now) && !snap_same(&base, &now))
			{
				TimestampTz started = GetCurrentTimestamp();

				MemoryContextSwitchTo(look);
				found = report_changes(&changes, tenants, schemas, ntenants, &base, &now);
				MemoryContextSwitchTo(cxt);
				if (found)
					break;
				snap_copy(&base, &base_cap, &now);

				/*
				 * Probing many tenants' logs (other transactions keep
				 * completing) rests ten times as long as it took, so a waiting
				 * poll never takes more than about a tenth of a core.
				 */
				pause = Max(pause, (long) ((GetCurrentTimestamp() - started) * 10 / 1000));
			}
			left = wait_ms <= 0 ? 0 :
				TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
			if (left <= 0)
				break;
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 Min(left, pause), PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
			if (MyProcPort != NULL && !pq_check_connection())
				break;			/* the client has gone: nobody waits for the answer */
			if (pushed)
				PopActiveSnapshot();
			PushActiveSnapshot(GetLatestSnapshot());
			pushed = true;
			MemoryContextReset(look);
			MemoryContextSwitchTo(look);
			current_snap(&now);
			MemoryContextSwitchTo(cxt);
		}
		mark = watermark_text(found ? &now : &base);
		if (pushed)
			PopActiveSnapshot();
	}

	initStringInfo(&out);
	appendStringInfoString(&out, "{\"watermark\": ");
	escape_json(&out, mark);
	appendStringInfoString(&out, ", \"changes\": [");
	appendBinaryStringInfo(&out, changes.data, changes.len);
	appendStringInfoString(&out, "]}");

	MemoryContextSwitchTo(old);
	result = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(out.data)));
	MemoryContextDelete(cxt);
	PG_RETURN_JSONB_P(result);
}
