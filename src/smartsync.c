/*
 * smartsync.c: module entry point; defines the smartsync.* settings.
 *
 * The settings carry the request context for direct SQL callers (PostgREST
 * callers use request.jwt.claims instead, see context.c) and the limits that
 * push and pull enforce.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "smartsync.h"

PG_MODULE_MAGIC;

char	   *smartsync_tenant_id_setting = NULL;
char	   *smartsync_practice_id_setting = NULL;
char	   *smartsync_user_id_setting = NULL;
char	   *smartsync_client_id_setting = NULL;
char	   *smartsync_permissions_setting = NULL;
bool		smartsync_trust_direct_sql = false;
int			smartsync_max_payload_size = 16 * 1024 * 1024;
int			smartsync_max_value_size = 4 * 1024 * 1024;
int			smartsync_max_field_name_length = 63;

void		_PG_init(void);

/* Defines the smartsync.* settings and reserves the prefix. */
void
_PG_init(void)
{
	DefineCustomStringVariable("smartsync.tenant_id",
							   "Tenant of the current request, for direct SQL callers.",
							   "Ignored when request.jwt.claims is set (PostgREST).",
							   &smartsync_tenant_id_setting, "",
							   PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("smartsync.practice_id",
							   "Practice of the current request, for direct SQL callers.",
							   NULL,
							   &smartsync_practice_id_setting, "",
							   PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("smartsync.user_id",
							   "User of the current request, for direct SQL callers.",
							   NULL,
							   &smartsync_user_id_setting, "",
							   PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("smartsync.client_id",
							   "Client (device) of the current request, for direct SQL callers.",
							   NULL,
							   &smartsync_client_id_setting, "",
							   PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("smartsync.permissions",
							   "Comma-separated permissions of the current request, for direct SQL callers.",
							   "Empty means no permission list was given.",
							   &smartsync_permissions_setting, "",
							   PGC_USERSET, 0, NULL, NULL, NULL);

	DefineCustomBoolVariable("smartsync.trust_direct_sql",
							 "Trusts direct SQL callers without a permission list with every write.",
							 "Off (the default): a push or a resolution needs the permission of each write "
							 "it makes, and a context without a permission list grants none.  "
							 "JWT callers (PostgREST) are never trusted this way.",
							 &smartsync_trust_direct_sql, false,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("smartsync.max_payload_size",
							"Largest push payload (and resolved_data) accepted.",
							"A larger one is refused (SS412, SS611) before any work is done.",
							&smartsync_max_payload_size, 16 * 1024 * 1024, 1024, MaxAllocSize / 2,
							PGC_SUSET, GUC_UNIT_BYTE, NULL, NULL, NULL);
	DefineCustomIntVariable("smartsync.max_value_size",
							"Largest value of one field of pushed data.",
							"An operation with a larger value is refused (SS429) before it is applied.",
							&smartsync_max_value_size, 4 * 1024 * 1024, 64, MaxAllocSize / 2,
							PGC_SUSET, GUC_UNIT_BYTE, NULL, NULL, NULL);
	DefineCustomIntVariable("smartsync.max_field_name_length",
							"Longest field name of pushed data, in characters.",
							"An operation with a longer one is refused (SS430) before it is applied.",
							&smartsync_max_field_name_length, 63, 1, 10000,
							PGC_SUSET, 0, NULL, NULL, NULL);

	sync_push_init();

	sync_pull_init();
	sync_notify_init();
	sync_poll_init();
	MarkGUCPrefixReserved("smartsync");
}

/* --- relcache callbacks ---------------------------------------------------- */

#define SYNC_RELCACHE_CALLBACKS 8

static struct
{
	RelcacheCallbackFunction func;
	Datum		arg;
}			sync_relcache_callbacks[SYNC_RELCACHE_CALLBACKS];
static int	sync_relcache_ncallbacks = 0;

/* The one relcache callback smartsync registers: calls those of its modules. */
static void
sync_relcache_dispatch(Datum arg, Oid relid)
{
	for (int i = 0; i < sync_relcache_ncallbacks; i++)
		sync_relcache_callbacks[i].func(sync_relcache_callbacks[i].arg, relid);
}

void
sync_register_relcache_callback(RelcacheCallbackFunction func, Datum arg)
{
	if (sync_relcache_ncallbacks >= SYNC_RELCACHE_CALLBACKS)
		elog(FATAL, "out of smartsync relcache callback slots");
	if (sync_relcache_ncallbacks == 0)
		CacheRegisterRelcacheCallback(sync_relcache_dispatch, (Datum) 0);
	sync_relcache_callbacks[sync_relcache_ncallbacks].func = func;
	sync_relcache_callbacks[sync_relcache_ncallbacks].arg = arg;
	sync_relcache_ncallbacks++;
}
