/*
 * json.c: the small JSON reader and writer of the simulated clients (see json.h).
 */
#include "json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *
xmalloc(size_t n)
{
	void	   *p = malloc(n);

	if (p == NULL)
	{
		fprintf(stderr, "sim: out of memory\n");
		exit(2);
	}
	return p;
}

/* --- writer ------------------------------------------------------------- */

void
buf_init(JsonBuf *b)
{
	b->cap = 256;
	b->len = 0;
	b->data = xmalloc(b->cap);
	b->data[0] = '\0';
}

void
buf_free(JsonBuf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

static void
buf_reserve(JsonBuf *b, size_t more)
{
	if (b->len + more + 1 <= b->cap)
		return;
	while (b->len + more + 1 > b->cap)
		b->cap *= 2;
	b->data = realloc(b->data, b->cap);
	if (b->data == NULL)
	{
		fprintf(stderr, "sim: out of memory\n");
		exit(2);
	}
}

void
buf_add(JsonBuf *b, const char *s)
{
	size_t		n = strlen(s);

	buf_reserve(b, n);
	memcpy(b->data + b->len, s, n + 1);
	b->len += n;
}

void
buf_printf(JsonBuf *b, const char *fmt,...)
{
	va_list		ap;
	int			n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	buf_reserve(b, n);
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, n + 1, fmt, ap);
	va_end(ap);
	b->len += n;
}

void
buf_str(JsonBuf *b, const char *s)
{
	char		tmp[8];

	buf_add(b, "\"");
	for (; *s; s++)
	{
		unsigned char c = (unsigned char) *s;

		if (c == '"' || c == '\\')
		{
			tmp[0] = '\\';
			tmp[1] = c;
			tmp[2] = '\0';
			buf_add(b, tmp);
		}
		else if (c < 0x20)
		{
			snprintf(tmp, sizeof(tmp), "\\u%04x", c);
			buf_add(b, tmp);
		}
		else
		{
			tmp[0] = c;
			tmp[1] = '\0';
			buf_add(b, tmp);
		}
	}
	buf_add(b, "\"");
}

/* --- reader ------------------------------------------------------------- */

typedef struct Parser
{
	const char *p;
	const char *error;
} Parser;

static JsonNode *parse_value(Parser *ps);

static void
skip_ws(Parser *ps)
{
	while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')
		ps->p++;
}

static JsonNode *
new_node(JsonType t)
{
	JsonNode   *n = xmalloc(sizeof(JsonNode));

	memset(n, 0, sizeof(*n));
	n->type = t;
	return n;
}

/* Appends the UTF-8 encoding of code point cp. */
static void
put_utf8(JsonBuf *b, unsigned cp)
{
	char		s[5] = {0};

	if (cp < 0x80)
		s[0] = (char) cp;
	else if (cp < 0x800)
	{
		s[0] = (char) (0xC0 | (cp >> 6));
		s[1] = (char) (0x80 | (cp & 0x3F));
	}
	else if (cp < 0x10000)
	{
		s[0] = (char) (0xE0 | (cp >> 12));
		s[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
		s[2] = (char) (0x80 | (cp & 0x3F));
	}
	else
	{
		s[0] = (char) (0xF0 | (cp >> 18));
		s[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
		s[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
		s[3] = (char) (0x80 | (cp & 0x3F));
	}
	buf_add(b, s);
}

static char *
parse_string(Parser *ps)
{
	JsonBuf		b;

	if (*ps->p != '"')
	{
		ps->error = "expected a string";
		return NULL;
	}
	ps->p++;
	buf_init(&b);
	while (*ps->p && *ps->p != '"')
	{
		if (*ps->p == '\\')
		{
			char		e = ps->p[1];
			char		one[2] = {0, 0};

			ps->p += 2;
			switch (e)
			{
				case 'n':
					one[0] = '\n';
					break;
				case 't':
					one[0] = '\t';
					break;
				case 'r':
					one[0] = '\r';
					break;
				case 'b':
					one[0] = '\b';
					break;
				case 'f':
					one[0] = '\f';
					break;
				case 'u':
					{
						unsigned	cp = 0;

						for (int i = 0; i < 4; i++)
						{
							char		h = *ps->p++;

							cp <<= 4;
							if (h >= '0' && h <= '9')
								cp |= h - '0';
							else if (h >= 'a' && h <= 'f')
								cp |= h - 'a' + 10;
							else if (h >= 'A' && h <= 'F')
								cp |= h - 'A' + 10;
							else
							{
								ps->error = "bad \\u escape";
								buf_free(&b);
								return NULL;
							}
						}
						put_utf8(&b, cp);
						continue;
					}
				case '\0':
					ps->error = "unterminated string";
					buf_free(&b);
					return NULL;
				default:
					one[0] = e;
					break;
			}
			buf_add(&b, one);
		}
		else
		{
			const char *start = ps->p;
			char		save[256];
			size_t		n;

			while (*ps->p && *ps->p != '"' && *ps->p != '\\' && ps->p - start < 255)
				ps->p++;
			n = ps->p - start;
			memcpy(save, start, n);
			save[n] = '\0';
			buf_add(&b, save);
		}
	}
	if (*ps->p != '"')
	{
		ps->error = "unterminated string";
		buf_free(&b);
		return NULL;
	}
	ps->p++;
	return b.data;
}

static JsonNode *
parse_container(Parser *ps, bool object)
{
	JsonNode   *n = new_node(object ? JSON_OBJECT : JSON_ARRAY);
	JsonNode  **tail = &n->child;
	char		close = object ? '}' : ']';

	ps->p++;
	skip_ws(ps);
	if (*ps->p == close)
	{
		ps->p++;
		return n;
	}
	for (;;)
	{
		char	   *key = NULL;
		JsonNode   *v;

		skip_ws(ps);
		if (object)
		{
			key = parse_string(ps);
			if (key == NULL)
				goto fail;
			skip_ws(ps);
			if (*ps->p != ':')
			{
				free(key);
				ps->error = "expected ':'";
				goto fail;
			}
			ps->p++;
		}
		v = parse_value(ps);
		if (v == NULL)
		{
			free(key);
			goto fail;
		}
		v->key = key;
		*tail = v;
		tail = &v->next;
		skip_ws(ps);
		if (*ps->p == ',')
		{
			ps->p++;
			continue;
		}
		if (*ps->p == close)
		{
			ps->p++;
			return n;
		}
		ps->error = object ? "expected ',' or '}'" : "expected ',' or ']'";
		goto fail;
	}
fail:
	json_free(n);
	return NULL;
}

static JsonNode *
parse_value(Parser *ps)
{
	JsonNode   *n;

	skip_ws(ps);
	switch (*ps->p)
	{
		case '{':
			return parse_container(ps, true);
		case '[':
			return parse_container(ps, false);
		case '"':
			{
				char	   *s = parse_string(ps);

				if (s == NULL)
					return NULL;
				n = new_node(JSON_STRING);
				n->str = s;
				return n;
			}
		case 't':
			if (strncmp(ps->p, "true", 4) == 0)
			{
				ps->p += 4;
				n = new_node(JSON_BOOL);
				n->boolean = true;
				return n;
			}
			break;
		case 'f':
			if (strncmp(ps->p, "false", 5) == 0)
			{
				ps->p += 5;
				return new_node(JSON_BOOL);
			}
			break;
		case 'n':
			if (strncmp(ps->p, "null", 4) == 0)
			{
				ps->p += 4;
				return new_node(JSON_NULL);
			}
			break;
		default:
			if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9'))
			{
				const char *start = ps->p;
				size_t		len;

				ps->p++;
				while ((*ps->p >= '0' && *ps->p <= '9') || *ps->p == '.' || *ps->p == 'e' ||
					   *ps->p == 'E' || *ps->p == '+' || *ps->p == '-')
					ps->p++;
				len = ps->p - start;
				n = new_node(JSON_NUMBER);
				n->str = xmalloc(len + 1);
				memcpy(n->str, start, len);
				n->str[len] = '\0';
				return n;
			}
			break;
	}
	ps->error = "unexpected character";
	return NULL;
}

JsonNode *
json_parse(const char *text, const char **error)
{
	Parser		ps = {text, NULL};
	JsonNode   *n = parse_value(&ps);

	if (n != NULL)
	{
		skip_ws(&ps);
		if (*ps.p != '\0')
		{
			json_free(n);
			n = NULL;
			ps.error = "trailing characters";
		}
	}
	if (error)
		*error = ps.error;
	return n;
}

void
json_free(JsonNode *n)
{
	while (n != NULL)
	{
		JsonNode   *next = n->next;

		json_free(n->child);
		free(n->key);
		free(n->str);
		free(n);
		n = next;
	}
}

JsonNode *
json_get(const JsonNode *obj, const char *key)
{
	if (obj == NULL || obj->type != JSON_OBJECT)
		return NULL;
	for (JsonNode *c = obj->child; c; c = c->next)
		if (strcmp(c->key, key) == 0)
			return c;
	return NULL;
}

const char *
json_text(const JsonNode *obj, const char *key)
{
	JsonNode   *v = json_get(obj, key);

	if (v == NULL || (v->type != JSON_STRING && v->type != JSON_NUMBER))
		return NULL;
	return v->str;
}

long long
json_int(const JsonNode *obj, const char *key, long long dflt)
{
	const char *s = json_text(obj, key);

	return s ? strtoll(s, NULL, 10) : dflt;
}

bool
json_bool(const JsonNode *obj, const char *key)
{
	JsonNode   *v = json_get(obj, key);

	return v != NULL && v->type == JSON_BOOL && v->boolean;
}

static void
dump(JsonBuf *b, const JsonNode *n)
{
	switch (n->type)
	{
		case JSON_NULL:
			buf_add(b, "null");
			break;
		case JSON_BOOL:
			buf_add(b, n->boolean ? "true" : "false");
			break;
		case JSON_NUMBER:
			buf_add(b, n->str);
			break;
		case JSON_STRING:
			buf_str(b, n->str);
			break;
		case JSON_ARRAY:
		case JSON_OBJECT:
			buf_add(b, n->type == JSON_ARRAY ? "[" : "{");
			for (JsonNode *c = n->child; c; c = c->next)
			{
				if (c != n->child)
					buf_add(b, ",");
				if (n->type == JSON_OBJECT)
				{
					buf_str(b, c->key);
					buf_add(b, ":");
				}
				dump(b, c);
			}
			buf_add(b, n->type == JSON_ARRAY ? "]" : "}");
			break;
	}
}

char *
json_dump(const JsonNode *n)
{
	JsonBuf		b;

	buf_init(&b);
	if (n == NULL)
		buf_add(&b, "(none)");
	else
		dump(&b, n);
	return b.data;
}
