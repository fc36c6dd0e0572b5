/*
 * json.h: the small JSON reader and writer of the simulated clients.  A
 * response body is parsed into a tree of JsonNode (one allocation per node,
 * freed with json_free); requests are written into a growable JsonBuf.
 */
#ifndef SIM_JSON_H
#define SIM_JSON_H

#include <stdbool.h>
#include <stddef.h>

typedef enum JsonType
{
	JSON_NULL,
	JSON_BOOL,
	JSON_NUMBER,
	JSON_STRING,
	JSON_ARRAY,
	JSON_OBJECT
} JsonType;

typedef struct JsonNode
{
	JsonType	type;
	char	   *key;			/* member name inside an object, else NULL */
	char	   *str;			/* string value, or the number's text */
	bool		boolean;
	struct JsonNode *child;		/* first element or member */
	struct JsonNode *next;		/* next sibling */
} JsonNode;

/* Parses text; NULL (and *error set) on malformed input. */
extern JsonNode *json_parse(const char *text, const char **error);
extern void json_free(JsonNode *n);

/* Member of an object, or NULL. */
extern JsonNode *json_get(const JsonNode *obj, const char *key);
/* Member's string or number text, or NULL (also for JSON null). */
extern const char *json_text(const JsonNode *obj, const char *key);
/* Member as an integer (number or numeric string); dflt when absent or null. */
extern long long json_int(const JsonNode *obj, const char *key, long long dflt);
/* Member as a boolean; false when absent. */
extern bool json_bool(const JsonNode *obj, const char *key);
/* Canonical text of a node (keys in their order), for comparing results. */
extern char *json_dump(const JsonNode *n);

/* A growable output buffer. */
typedef struct JsonBuf
{
	char	   *data;
	size_t		len;
	size_t		cap;
} JsonBuf;

extern void buf_init(JsonBuf *b);
extern void buf_free(JsonBuf *b);
extern void buf_add(JsonBuf *b, const char *s);
extern void buf_printf(JsonBuf *b, const char *fmt,...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal. */
extern void buf_str(JsonBuf *b, const char *s);

#endif
