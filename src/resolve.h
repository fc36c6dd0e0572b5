/*
 * resolve.h: helpers shared by the conflict resolution (resolve.c) and the
 * conflict listing (conflictstore.c).
 */
#ifndef SMARTSYNC_RESOLVE_H
#define SMARTSYNC_RESOLVE_H

#include "postgres.h"
#include "utils/jsonb.h"

#include "push.h"

/* Reads the request context (tenant required) into a minimal push batch. */
extern void conflict_context(PushBatch *b, MemoryContext cxt);

/* A registered entity type with its table resolved, kept for the call; NULL when unknown and missing_ok. */
extern PushEntity *conflict_entity(PushBatch *b, const char *entity_type, bool missing_ok);

/* Pushes an entity id as JSON: the row's key, else typed by the key column (e may be NULL). */
extern void conflict_push_entity_id(JsonbParseState **ps, PushEntity *e, Jsonb *row, const char *id);

/* A string or number field of a row as text; NULL when absent. */
extern char *conflict_field_text(Jsonb *row, const char *key);

#endif							/* SMARTSYNC_RESOLVE_H */
