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

#include "smartsync.h"

PG_MODULE_MAGIC;

char	   *smartsync_tenant_id_setting = NULL;
char	   *smartsync_practice_id_setting = NULL;
char	   *smartsync_user_id_setting = NULL;
char	   *smartsync_client_id_setting = NULL;
char	   *smartsync_permissions_setting = NULL;

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

	sync_push_init();

	sync_pull_init();
	sync_notify_init();
	MarkGUCPrefixReserved("smartsync");
}
