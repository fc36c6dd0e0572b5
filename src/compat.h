/*
 * compat.h: shims for the PostgreSQL versions smartsync builds against,
 * so call sites stay free of #if PG_VERSION_NUM.
 */
#ifndef SMARTSYNC_COMPAT_H
#define SMARTSYNC_COMPAT_H

#if PG_VERSION_NUM < 150000
#error "smartsync requires PostgreSQL 15 or later"
#endif

#if PG_VERSION_NUM < 160000
/* MarkGUCPrefixReserved is called EmitWarningsOnPlaceholders before 15 */
#include "utils/guc.h"
#endif

#endif							/* SMARTSYNC_COMPAT_H */
