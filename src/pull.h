/*
 * pull.h: what pull.c shares with the other readers of the change log
 * (changed.c, smartsync.sync_changed): snapshots in full xids, the cursor,
 * the entity types of a request, and the change-log scan.
 */
#ifndef SMARTSYNC_PULL_H
#define SMARTSYNC_PULL_H

#include "executor/spi.h"

#include "smartsync.h"

/* A snapshot in full (64-bit) xids: visible = below xmin, or below xmax and not in xip. */
typedef struct PullSnap
{
	uint64		xmin;
	uint64		xmax;
	int			nxip;
	uint64	   *xip;			/* ascending, each in [xmin, xmax) */
	bool		recovery;		/* taken on a standby (xip mixes subxids) */
} PullSnap;

#define SECRET_MAX_LEN	256

typedef enum CursorKind
{
	CK_IDLE = 1,				/* between drains: base = previous snapshot */
	CK_DRAIN = 2,				/* paging a drain from base to upper */
	CK_TIME_OLD = 3,			/* 0.2.0's time-based read in (xid, seq) order: refetch */
	CK_LIST = 4,				/* paging the full listing taken at base */
	CK_TIME = 5					/* paging a time-based read up to upper, in change-time order */
} CursorKind;

typedef struct PullCursor
{
	CursorKind	kind;
	uint64		tenant_tag;
	uint32		scope_tag;
	uint32		origin_tag;
	PullSnap	base;			/* IDLE, DRAIN: previous snapshot; LIST: listing snapshot */
	PullSnap	upper;			/* DRAIN, TIME: snapshot the drain runs up to */
	bool		has_pos;
	uint64		pos_xid;
	int64		pos_seq;
	TimestampTz pos_at;			/* TIME: changed_at of the position */
	TimestampTz since;			/* TIME */
	char	   *list_type;		/* LIST: entity type being listed */
	char	   *list_pk;		/* LIST: last primary key listed, or NULL */
} PullCursor;

typedef struct PullType
{
	char	   *name;
	char	   *table;
	char	   *pk;
	char	   *practice_col;	/* NULL when the type has no practice column */
	Oid			practice_type;	/* its type (InvalidOid when the tenant lacks it) */
	int			sort_order;
	Oid			pk_type;		/* InvalidOid when the tenant lacks the table */
	bool		readable;		/* permissions let the caller read it */
	bool		wanted;			/* readable and in the request's filter */
} PullType;

typedef struct PullTypes
{
	int			n;
	PullType   *t;
} PullTypes;

/* Everything one pull call works with. */
typedef struct PullRequest
{
	const char *schema;
	const char *quoted_schema;
	const char *practice;		/* effective practice filter or NULL */
	const char *client;			/* echo suppression or NULL */
	PullTypes	types;
	Datum		wanted_types;	/* text[] */
	Datum		global_types;	/* text[]: wanted types without a practice column */
	int			limit;
	Size		budget;			/* smartsync.pull_max_bytes */
	Size		used;			/* bytes the page's changes take so far */
	int			listed_rows;	/* rows a listing page took so far */
	MemoryContext cxt;
} PullRequest;

/* parameters of change_query() */
#define CHANGE_NPARAMS 12

/* snapshots */
extern void current_snap(PullSnap *s);
extern bool snap_visible(const PullSnap *s, uint64 x);
extern bool snap_follows(const PullSnap *p, const PullSnap *c);

/* the cursor and the tags it is bound to */
extern int	read_secret(uint8 *key);
extern void cursor_decode(const char *text, const uint8 *key, int keylen, PullCursor *c);
extern uint64 tenant_tag(const char *tenant);
extern uint32 scope_tag(const char *practice, const char *client, const char *types);
extern uint32 origin_tag(uint32 log_epoch);
extern void check_horizon(PullRequest *req, const PullCursor *cur);

/* entity types, the change-log scan (call inside SPI) */
extern SPIPlanPtr pull_plan(const char *query, int nargs, Oid *argtypes);
extern void load_types(const char *schema, const SyncContext *ctx, PullTypes *types);
extern char *apply_type_filter(PullTypes *types, const char *filter);
extern Datum xid_array(const uint64 *xids, int n);
extern Datum text_array(List *strs);
extern char *change_query(const PullRequest *req, bool in_xip, bool by_time);
extern char *change_probe_query(const PullRequest *req, bool in_xip);

#endif							/* SMARTSYNC_PULL_H */
