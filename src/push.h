/*
 * push.h: internal declarations of sync_push (push.c: validation, ordering,
 * driver, response; pushapply.c: one operation, conflicts; pushledger.c:
 * ledger, id map, plan cache).
 */
#ifndef SMARTSYNC_PUSH_H
#define SMARTSYNC_PUSH_H

#include "postgres.h"

#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "smartsync.h"

/* Longest operation id, entity id or temporary id a push accepts (characters). */
#define PUSH_ID_MAX		SYNC_ID_MAX
/* Bytes such an id may take: four per character at most. */
#define PUSH_ID_MAX_BYTES	(PUSH_ID_MAX * 4)
/*
 * Most operations one SQL statement of a push reads or writes: the ledger,
 * the id map and runs of creates and updates go in statements of at most
 * this many rows, each statement's memory freed after it, so that a push's
 * memory grows with its operations only by what each must keep.
 */
#define PUSH_SQL_CHUNK		1000

typedef enum PushKind
{
	PUSH_CREATE = 0,
	PUSH_UPDATE = 1,
	PUSH_DELETE = 2
} PushKind;

typedef enum PushOutcome
{
	PUSH_PENDING = 0,			/* not yet processed */
	PUSH_APPLIED,				/* applied, no conflict */
	PUSH_RESOLVED,				/* a conflict resolved automatically */
	PUSH_CONFLICT,				/* a conflict stored for manual resolution */
	PUSH_FAILED,				/* an error */
	PUSH_REPLAYED				/* seen before: the stored result */
} PushOutcome;

/* One column of an entity table. */
typedef struct PushColumn
{
	char	   *name;
	char	   *camel;			/* camelCase spelling of a snake_case name (pet_id: petId), or NULL */
	Oid			typid;
	bool		writable;		/* not generated */
	bool		fixed;			/* a fixed-size type (integer, boolean, date, uuid, ...) */
} PushColumn;

/* One registered entity type, resolved in the tenant schema on first use. */
typedef struct PushEntity
{
	char	   *entity_type;
	char	   *table_name;
	char	   *pk_column;
	char	   *practice_column;	/* NULL when none */
	char	   *strategy;		/* default conflict strategy */
	bool		timestamp_detection;	/* updates and deletes may come without a base version */
	int			level;			/* dependency level, parents first */
	Jsonb	   *reference_fields;	/* column -> entity type */
	Jsonb	   *field_classes;	/* column -> class */

	bool		resolved;
	Oid			relid;
	char	   *qualified;		/* quoted schema.table */
	char	   *pk_type;		/* qualified type name of the key */
	bool		pk_numeric;		/* the key is a JSON number */
	int			ncols;
	PushColumn *cols;
	int			pk_index;
	int			practice_index; /* -1 when none */
	int			version_index;
	int			updated_at_index;
} PushEntity;

/*
 * One operation of the payload.  A large push keeps one per operation until
 * its response is written, so it holds only what is not in the payload
 * (request): the id and entity id as sent are read from there again.
 */
typedef struct PushOp
{
	JsonbContainer *request;	/* the operation as sent (inside the payload) */
	char	   *opid;			/* id as text, an integer in canonical form: the ledger key */
	PushEntity *entity;
	char	   *entity_id;		/* as text */
	JsonbContainer *data;		/* NULL when absent (inside the payload) */
	TimestampTz ts;				/* the client's timestamp, no later than the server's receive time */
	TimestampTz sent_ts;		/* the client's timestamp as sent (the ledger keeps it) */
	int64		version;

	/* a refusal found by validation, applied after the ledger is read (0: none) */
	char	   *refusal_message;
	char	   *refusal_detail;
	int			refusal;

	int			index;			/* position in the payload */
	int			request_len;	/* the request's bytes */
	int			priority;		/* larger first */
	PushKind	kind;
	bool		has_entity_id;
	bool		temp_entity;	/* entity_id is a temporary id */
	bool		has_ts;
	bool		has_version;

	/* state and outcome */
	bool		claimed;		/* this push applies it (not a replay) */
	bool		refused;		/* refused before anything was applied (permission, limits, ...) */
	bool		retryable;
	bool		lazy_result;	/* applied, its result not kept: written from the fields
								 * below when needed (push_write_applied) */
	bool		has_new_version;
	PushOutcome outcome;
	Jsonb	   *result;			/* the per-operation result object (NULL when lazy_result) */
	char	   *error_code;
	char	   *real_id;		/* entity id after the operation, text */
	int64		new_version;
	int64		conflict_id;	/* 0 when none */
} PushOp;

/* A field of the operation as sent (its "id", its "entityId"), into buf; NULL when absent. */
static inline JsonbValue *
push_op_field(PushOp *op, const char *key, JsonbValue *buf)
{
	return getKeyJsonValueFromContainer(op->request, key, strlen(key), buf);
}

/* A temporary id: created earlier in the batch or found in the id map. */
typedef struct PushTemp
{
	const char *temp_id;		/* hash key (push_string_hash): lives as long as the table */
	bool		known;			/* false: looked up and absent */
	char	   *entity_type;
	char	   *real_id;
	PushOp	   *op;				/* the create of this batch that made it, or NULL */
} PushTemp;

/* An entry of the table of operation ids. */
typedef struct PushOpId
{
	const char *opid;			/* hash key (push_string_hash) */
	PushOp	   *op;
} PushOpId;

/* The whole push. */
typedef struct PushBatch
{
	MemoryContext cxt;			/* lives for the call */
	MemoryContext opcxt;		/* reset per operation */
	MemoryContext rescxt;		/* results, real ids, error codes: append-only (a generation context) */
	SyncContext ctx;
	char	   *schema;			/* tenant schema */
	char	   *qschema;		/* quoted */
	char	   *client_id;
	bool		atomic;
	TimestampTz received_at;	/* the server's receive time: client timestamps are clamped to it */
	int			nops;
	PushOp	  **op_chunks;		/* the operations, PUSH_OP_CHUNK a chunk: PUSH_OP(b, i) */
	char	   *arena;			/* push_strdup's current block */
	Size		arena_left;		/* its free bytes */
	PushOp	  **order;			/* processing order */
	HTAB	   *op_ids;			/* operation id -> PushOpId */
	int			nentities;
	PushEntity *entities;
	HTAB	   *temps;			/* temp id -> PushTemp */
	List	   *temp_ids;		/* temporary ids the batch names */
	const char *temp_prefix;
	int			temp_prefix_len;
} PushBatch;

/*
 * Operations are kept in chunks of PUSH_OP_CHUNK, so that writing the
 * response frees them as it goes (a large push does not hold its operations
 * and its whole response at once).
 */
#define PUSH_OP_CHUNK_BITS	10
#define PUSH_OP_CHUNK		(1 << PUSH_OP_CHUNK_BITS)
#define PUSH_OP(b, i)		(&(b)->op_chunks[(i) >> PUSH_OP_CHUNK_BITS][(i) & (PUSH_OP_CHUNK - 1)])

/* push.c: a string kept for the rest of the push, packed with the others (no chunk header each) */
extern char *push_strdup(PushBatch *b, const char *s);

/* push.c: a hash table keyed by a string pointer (the string outlives the table) */
extern HTAB *push_string_hash(const char *name, long nelem, Size entrysize, MemoryContext cxt);

/* pushapply.c */
extern void push_resolve_entity(PushBatch *b, PushEntity *e);
extern PushEntity *push_find_entity(PushBatch *b, const char *entity_type, int len);
extern void push_apply_op(PushBatch *b, PushOp *op);
extern void push_apply_run(PushBatch *b, PushOp **ops, int n);
extern bool push_is_temp(PushBatch *b, const char *s, int len);
extern int	push_find_column(PushEntity *e, const char *key, int len);
extern uint32 push_write_applied(StringInfo buf, PushOp *op);
extern Jsonb *push_op_result(PushOp *op);

/* pushledger.c */
extern SPIPlanPtr push_plan(const char *sql, int nargs, Oid *argtypes);
extern SPIPlanPtr push_plan_ex(const char *sql, int nargs, Oid *argtypes, bool custom);
extern SPIPlanPtr push_plan_keyed(const char *sql, int nargs, Oid *argtypes);
extern int	push_exec(SPIPlanPtr plan, Datum *values, const char *nulls, long tcount);
extern int	push_exec_keyed(SPIPlanPtr plan, Datum *values, const char *nulls, long tcount);
extern int	push_exec_planner_off(SPIPlanPtr plan, Datum *values, const char *nulls, long tcount,
								  const char *const *off, int noff);
extern int	sync_log_exec_entity(SPIPlanPtr plan, Datum *values);	/* changelog.c */
extern void push_ledger_lock(PushBatch *b);
extern void push_ledger_load(PushBatch *b);
extern void push_ledger_record(PushBatch *b);
extern void push_idmap_prefetch(PushBatch *b, List *temp_ids);
extern PushTemp *push_idmap_lookup(PushBatch *b, const char *temp_id);
extern void push_idmap_note(PushBatch *b, PushOp *op, const char *real_id);
extern void push_idmap_record(PushBatch *b);
extern Jsonb *push_request_copy(JsonbContainer *request, int len);
extern int64 push_store_conflict(PushBatch *b, PushOp *op, Jsonb *conflict,
								 Jsonb *local, Jsonb *server, Jsonb *base,
								 int64 server_version, bool has_server_version);

/* push.c */
extern void push_fail_op(PushBatch *b, PushOp *op, int sqlerrcode, const char *message,
						 const char *detail, int retryable);
extern int	smartsync_batch_size;
extern int	smartsync_max_batch_size;
extern char *smartsync_temp_id_prefix;

/* push.c: jsonb building helpers */
extern void push_key(JsonbParseState **ps, const char *key);
extern void push_str(JsonbParseState **ps, JsonbIteratorToken tok, const char *s);
extern void push_bool(JsonbParseState **ps, bool b);
extern void push_int64(JsonbParseState **ps, int64 v);
extern void push_null(JsonbParseState **ps);
extern void push_jsonb(JsonbParseState **ps, JsonbIteratorToken tok, Jsonb *jb);
extern Jsonb *push_copy_jsonb(MemoryContext cxt, Jsonb *jb);

#endif							/* SMARTSYNC_PUSH_H */
