/*
 * smartsync.h: declarations shared by the smartsync C sources.
 *
 * Every error a client can cause has its own SQLSTATE in class "SS"; the
 * README's error table lists them all.  Keep that table in step with this file.
 */
#ifndef SMARTSYNC_H
#define SMARTSYNC_H

#include "postgres.h"
#include "nodes/pg_list.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
#include "utils/inval.h"

#include "compat.h"

/* --- SQLSTATEs (class SS) --------------------------------------------- */

/* registry and provisioning: SS1xx */
#define ERRCODE_SS_INVALID_NAME			MAKE_SQLSTATE('S','S','1','0','1')
#define ERRCODE_SS_UNKNOWN_COLUMN		MAKE_SQLSTATE('S','S','1','0','3')
#define ERRCODE_SS_NO_SINGLE_PK			MAKE_SQLSTATE('S','S','1','0','4')
#define ERRCODE_SS_DEPENDENCY_CYCLE		MAKE_SQLSTATE('S','S','1','0','5')
#define ERRCODE_SS_UNKNOWN_ENTITY_TYPE	MAKE_SQLSTATE('S','S','1','0','6')
#define ERRCODE_SS_TENANT_CONFLICT		MAKE_SQLSTATE('S','S','1','0','7')
#define ERRCODE_SS_INVALID_SETTING		MAKE_SQLSTATE('S','S','1','0','8')
#define ERRCODE_SS_ENTITY_IN_USE		MAKE_SQLSTATE('S','S','1','0','9')
#define ERRCODE_SS_MISSING_TABLE		MAKE_SQLSTATE('S','S','1','1','0')
#define ERRCODE_SS_RESERVED_NAME		MAKE_SQLSTATE('S','S','1','1','1')
#define ERRCODE_SS_MISSING_ROW_COLUMNS	MAKE_SQLSTATE('S','S','1','1','2')
#define ERRCODE_SS_TEMPORARY_TEMPLATE	MAKE_SQLSTATE('S','S','1','1','3')

/* capture: SS12x */
#define ERRCODE_SS_TRIGGER_MISUSE		MAKE_SQLSTATE('S','S','1','2','0')
#define ERRCODE_SS_NOT_TRACKED			MAKE_SQLSTATE('S','S','1','2','1')
#define ERRCODE_SS_PK_CHANGED			MAKE_SQLSTATE('S','S','1','2','2')
#define ERRCODE_SS_TRUNCATE				MAKE_SQLSTATE('S','S','1','2','3')

/* request context: SS2xx */
#define ERRCODE_SS_NO_CONTEXT			MAKE_SQLSTATE('S','S','2','0','1')
#define ERRCODE_SS_BAD_CONTEXT			MAKE_SQLSTATE('S','S','2','0','2')
#define ERRCODE_SS_UNKNOWN_TENANT		MAKE_SQLSTATE('S','S','2','0','3')

/* push: SS4xx (src/push.c); SS401-SS412 refuse the whole payload, SS420+ one operation */
#define ERRCODE_SS_PUSH_NOT_AN_OBJECT		MAKE_SQLSTATE('S','S','4','0','1')
#define ERRCODE_SS_PUSH_NO_OPERATIONS		MAKE_SQLSTATE('S','S','4','0','2')
#define ERRCODE_SS_PUSH_BATCH_TOO_LARGE		MAKE_SQLSTATE('S','S','4','0','3')
#define ERRCODE_SS_PUSH_NOT_AN_OPERATION	MAKE_SQLSTATE('S','S','4','0','4')
#define ERRCODE_SS_PUSH_MISSING_FIELD		MAKE_SQLSTATE('S','S','4','0','5')
#define ERRCODE_SS_PUSH_INVALID_FIELD		MAKE_SQLSTATE('S','S','4','0','6')
#define ERRCODE_SS_PUSH_UNKNOWN_OPERATION	MAKE_SQLSTATE('S','S','4','0','7')
#define ERRCODE_SS_PUSH_UNKNOWN_ENTITY_TYPE	MAKE_SQLSTATE('S','S','4','0','8')
#define ERRCODE_SS_PUSH_DUPLICATE_ID		MAKE_SQLSTATE('S','S','4','0','9')
#define ERRCODE_SS_PUSH_CLIENT_ID			MAKE_SQLSTATE('S','S','4','1','0')
#define ERRCODE_SS_PUSH_DATA_NOT_OBJECT		MAKE_SQLSTATE('S','S','4','1','1')
#define ERRCODE_SS_PUSH_PAYLOAD_TOO_LARGE	MAKE_SQLSTATE('S','S','4','1','2')
#define ERRCODE_SS_PUSH_CONTEXT_MISMATCH	MAKE_SQLSTATE('S','S','4','2','0')
#define ERRCODE_SS_PUSH_PERMISSION			MAKE_SQLSTATE('S','S','4','2','1')
#define ERRCODE_SS_PUSH_UNKNOWN_FIELD		MAKE_SQLSTATE('S','S','4','2','2')
#define ERRCODE_SS_PUSH_UNKNOWN_TEMP_ID		MAKE_SQLSTATE('S','S','4','2','3')
#define ERRCODE_SS_PUSH_TEMP_ID_TYPE		MAKE_SQLSTATE('S','S','4','2','4')
#define ERRCODE_SS_PUSH_TEMP_ID_TAKEN		MAKE_SQLSTATE('S','S','4','2','5')
#define ERRCODE_SS_PUSH_PRACTICE			MAKE_SQLSTATE('S','S','4','2','6')
#define ERRCODE_SS_PUSH_ATOMIC_ABORTED		MAKE_SQLSTATE('S','S','4','2','7')
#define ERRCODE_SS_PUSH_NO_BASE_VERSION		MAKE_SQLSTATE('S','S','4','2','8')
#define ERRCODE_SS_PUSH_VALUE_TOO_LARGE		MAKE_SQLSTATE('S','S','4','2','9')
#define ERRCODE_SS_PUSH_FIELD_NAME_TOO_LONG	MAKE_SQLSTATE('S','S','4','3','0')

/* pull: SS5xx */
#define ERRCODE_SS_BAD_CURSOR			MAKE_SQLSTATE('S','S','5','0','1')
#define ERRCODE_SS_CURSOR_SIGNATURE		MAKE_SQLSTATE('S','S','5','0','2')
#define ERRCODE_SS_CURSOR_TENANT		MAKE_SQLSTATE('S','S','5','0','3')
#define ERRCODE_SS_CURSOR_SCOPE			MAKE_SQLSTATE('S','S','5','0','4')
#define ERRCODE_SS_MUST_REFETCH			MAKE_SQLSTATE('S','S','5','0','5')
#define ERRCODE_SS_PULL_LIMIT			MAKE_SQLSTATE('S','S','5','0','6')
#define ERRCODE_SS_PRACTICE_MISMATCH	MAKE_SQLSTATE('S','S','5','0','7')
#define ERRCODE_SS_PULL_FORBIDDEN		MAKE_SQLSTATE('S','S','5','0','8')
#define ERRCODE_SS_BAD_RETENTION		MAKE_SQLSTATE('S','S','5','0','9')
#define ERRCODE_SS_PULL_BAD_SINCE		MAKE_SQLSTATE('S','S','5','1','0')
#define ERRCODE_SS_PULL_BAD_TYPES		MAKE_SQLSTATE('S','S','5','1','1')

/* conflict store and resolution: SS6xx (src/resolve.c) */
#define ERRCODE_SS_CONFLICT_NOT_FOUND		MAKE_SQLSTATE('S','S','6','0','1')
#define ERRCODE_SS_CONFLICT_RESOLVED		MAKE_SQLSTATE('S','S','6','0','2')
#define ERRCODE_SS_CONFLICT_STALE			MAKE_SQLSTATE('S','S','6','0','3')
#define ERRCODE_SS_CONFLICT_PRACTICE		MAKE_SQLSTATE('S','S','6','0','4')
#define ERRCODE_SS_CONFLICT_STRATEGY		MAKE_SQLSTATE('S','S','6','0','5')
#define ERRCODE_SS_CONFLICT_MERGE			MAKE_SQLSTATE('S','S','6','0','6')
#define ERRCODE_SS_CONFLICT_DATA			MAKE_SQLSTATE('S','S','6','0','7')
#define ERRCODE_SS_CONFLICT_NOT_APPLICABLE	MAKE_SQLSTATE('S','S','6','0','8')
#define ERRCODE_SS_CONFLICT_FILTER			MAKE_SQLSTATE('S','S','6','0','9')
#define ERRCODE_SS_CONFLICT_PERMISSION		MAKE_SQLSTATE('S','S','6','1','0')
#define ERRCODE_SS_CONFLICT_TOO_LARGE		MAKE_SQLSTATE('S','S','6','1','1')

/* --- limits ------------------------------------------------------------ */

/* Longest operation id, entity id, temporary id or client id (characters). */
#define SYNC_ID_MAX			255
/* Most characters of a client value an error message quotes. */
#define SYNC_QUOTE_CHARS	64

/* change signal: SS8xx (src/poll.c) */
#define ERRCODE_SS_BAD_WATERMARK		MAKE_SQLSTATE('S','S','8','0','1')

/* Citus schema-based sharding: SS85x (src/citus.c) */
#define ERRCODE_SS_CITUS_ELSEWHERE			MAKE_SQLSTATE('S','S','8','5','1')
#define ERRCODE_SS_CITUS_SETUP				MAKE_SQLSTATE('S','S','8','5','2')
#define ERRCODE_SS_CITUS_POLL				MAKE_SQLSTATE('S','S','8','5','3')

/* --- settings (smartsync.c) ------------------------------------------- */

/*
 * Registers a relcache invalidation callback of smartsync (smartsync.c).
 * PostgreSQL has room for ten in a backend, shared with every other library
 * (Citus takes about half); smartsync takes one, which calls its modules'.
 */
extern void sync_register_relcache_callback(RelcacheCallbackFunction func, Datum arg);

extern char *smartsync_tenant_id_setting;
extern char *smartsync_practice_id_setting;
extern char *smartsync_user_id_setting;
extern char *smartsync_client_id_setting;
extern char *smartsync_permissions_setting;
extern bool smartsync_trust_direct_sql;
extern int	smartsync_max_payload_size;
extern int	smartsync_max_value_size;
extern int	smartsync_max_field_name_length;

/* --- push (push.c) ----------------------------------------------------- */

extern void sync_push_init(void);

/* --- request context (context.c) -------------------------------------- */

typedef struct SyncContext
{
	char	   *tenant_id;		/* NULL when absent */
	char	   *practice_id;
	char	   *user_id;
	char	   *client_id;
	List	   *permissions;	/* of char *; NIL when none */
	bool		has_permissions;	/* a permissions list was given at all */
	const char *source;			/* "jwt" or "settings" */
} SyncContext;

extern void sync_context_read(SyncContext *ctx);
extern void sync_context_require_tenant(const SyncContext *ctx);
extern char *sync_tenant_schema(const char *tenant_id);
extern bool sync_context_has_permission(const SyncContext *ctx, const char *perm);
extern bool sync_context_may_write(const SyncContext *ctx, const char *entity_type,
								   const char *action);
extern bool sync_context_trusted(const SyncContext *ctx);

/* --- registry (registry.c): per-backend copies of the registry tables ---- */

/* A row of smartsync.entity_types, as push and resolution use it. */
typedef struct SyncEntityTypeRow
{
	char	   *entity_type;
	char	   *table_name;
	char	   *pk_column;
	char	   *practice_column;	/* NULL when none */
	char	   *strategy;		/* default conflict strategy */
	int			sort_order;		/* dependency level, parents first */
	Jsonb	   *reference_fields;
	Jsonb	   *field_classes;
	bool		timestamp_detection;
} SyncEntityTypeRow;

extern char *sync_registry_tenant_schema(const char *tenant_id);
extern SyncEntityTypeRow *sync_registry_entity_types(int *n);

/* --- pull (pull.c) ---------------------------------------------------- */

extern void sync_pull_init(void);

/* --- capture (capture.c) ---------------------------------------------- */

extern void sync_stamp_next_insert(Oid relid, int64 version);
extern int64 sync_entity_key(const char *type, int typelen, const char *id, int idlen);

/*
 * The change log holds the whole row for a create, a delete and every
 * SYNC_LOG_FULL_EVERY'th version; other updates hold the columns they set.
 */
#define SYNC_LOG_FULL_EVERY 32
static inline bool
sync_log_row_is_whole(int64 version)
{
	return version % SYNC_LOG_FULL_EVERY == 0;
}

/* --- the change log's history (changelog.c) ---------------------------- */

extern Jsonb *sync_log_row_at(const char *qschema, const char *type, const char *id, int64 version);

/* --- change signal (notify.c) ------------------------------------------- */

struct TriggerData;
extern void sync_notify_init(void);
extern void sync_poll_init(void);
extern void sync_notify_capture(struct TriggerData *td);

/* --- jsonb helpers (context.c) ---------------------------------------- */

extern JsonbValue *sync_jsonb_get(Jsonb *jb, const char *key);
extern char *sync_jsonb_scalar_text(JsonbValue *v);

/* --- client values (context.c) ------------------------------------------ */

extern char *sync_clip(const char *s, int len);
extern char *sync_clip_n(const char *s, int len, int chars);
extern char *sync_clip_str(const char *s);
extern int	sync_char_length(const char *s, int len);
extern const char *sync_client_id_problem(const char *s, int len);
extern bool sync_is_number_text(const char *s, int len);
extern char *sync_numeric_canonical(Numeric n);
extern char *sync_canonical_id(const char *s, int len);
extern char *sync_canonical_id_value(JsonbValue *v);
extern bool sync_parse_timestamp(const char *s, int len, TimestampTz *result);
extern bool sync_timestamp_from_json(JsonbValue *v, TimestampTz *result);
extern int64 sync_timestamp_epoch_ms(TimestampTz ts);

#endif							/* SMARTSYNC_H */
