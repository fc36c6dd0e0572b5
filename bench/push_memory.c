/*
 * push_memory.c: peak backend memory of one sync_push of 1, 10 and 50 MB, refused
 * and accepted (README "Push", "Memory of large requests").
 *
 * Each request runs on a fresh connection, as PostgREST sends it: the body as a
 * text parameter cast to jsonb ($1::jsonb), in a READ WRITE transaction with the
 * request context set.  While it runs, the backend's anonymous memory (the
 * "Anonymous:" line of /proc/<pid>/smaps_rollup: its heap, not shared buffers) is
 * sampled every millisecond; the figure is the peak minus the level after a
 * small warm-up push on the same connection.  The client must run on the
 * server's machine (it reads /proc of the backend).
 *
 *   push_memory [sizes in MB...]     (default 1 10 50; PG* variables choose the server)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "libpq-fe.h"

static void
die(const char *what, PGconn *conn)
{
	fprintf(stderr, "push_memory: %s: %s\n", what, conn ? PQerrorMessage(conn) : "");
	exit(1);
}

static void
exec_ok(PGconn *conn, const char *sql)
{
	PGresult   *r = PQexec(conn, sql);

	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		die(sql, conn);
	PQclear(r);
}

/* The backend's anonymous memory in kB, from /proc/<pid>/smaps_rollup. */
static long
anon_kb(int pid)
{
	char		path[64];
	char		line[256];
	long		kb = -1;
	FILE	   *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Anonymous: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* A body: one operation with the fields of prefix and a field holding a string of n bytes (letters, little repetition). */
static char *
make_body(const char *type, const char *prefix, const char *field, size_t n)
{
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	size_t		head = 512;
	char	   *b = malloc(n + head + 256);
	size_t		len;
	unsigned int seed = 12345;

	if (b == NULL)
		die("out of memory", NULL);
	len = snprintf(b, head, "{\"operations\": [{\"id\": \"m1\", \"operation\": \"create\", \"entityType\": \"%s\", "
				   "\"data\": {%s\"%s\": \"", type, prefix, field);
	for (size_t i = 0; i < n; i++)
	{
		seed = seed * 1103515245u + 12345u;
		b[len + i] = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
	}
	len += n;
	strcpy(b + len, "\"}}]}");
	return b;
}

/* Runs one request on a fresh connection; returns the peak anonymous memory above the warm level (kB). */
static long
measure(const char *context, const char *call, const char *body, char *code, size_t codelen)
{
	PGconn	   *conn = PQconnectdb("");
	PGresult   *r;
	const char *vals[1] = {body};
	int			pid;
	long		base,
				peak;
	struct timespec ms = {0, 1000000};

	if (PQstatus(conn) != CONNECTION_OK)
		die("connect", conn);
	r = PQexec(conn, "SELECT pg_backend_pid()");
	pid = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	exec_ok(conn, context);
	/* warm up: the library, the registry, the plans of a small push */
	exec_ok(conn, "BEGIN");
	exec_ok(conn, "SELECT smartsync.sync_push('{\"operations\": [{\"id\": \"w\", \"operation\": \"create\", "
			"\"entityType\": \"clients\", \"data\": {\"name\": \"warm\"}}]}'::jsonb)");
	exec_ok(conn, "ROLLBACK");
	base = anon_kb(pid);
	peak = base;

	exec_ok(conn, "BEGIN");
	if (!PQsendQueryParams(conn, call, 1, NULL, vals, NULL, NULL, 0))
		die("send", conn);
	while (PQisBusy(conn))
	{
		long		kb = anon_kb(pid);

		if (kb > peak)
			peak = kb;
		nanosleep(&ms, NULL);
		if (!PQconsumeInput(conn))
			die("consume", conn);
	}
	{
		long		kb = anon_kb(pid);

		if (kb > peak)
			peak = kb;
	}
	snprintf(code, codelen, "?");
	while ((r = PQgetResult(conn)) != NULL)
	{
		if (PQresultStatus(r) == PGRES_TUPLES_OK)
			snprintf(code, codelen, "%s", PQgetisnull(r, 0, 0) ? "applied" : PQgetvalue(r, 0, 0));
		else
			snprintf(code, codelen, "%s", PQresultErrorField(r, PG_DIAG_SQLSTATE));
		PQclear(r);
	}
	exec_ok(conn, "ROLLBACK");
	PQfinish(conn);
	return peak - base;
}

int
main(int argc, char **argv)
{
	static const struct
	{
		const char *name;
		const char *extra;		/* settings of the context */
		const char *type;
		const char *prefix;		/* the other fields of the data */
		const char *field;		/* the field that holds the large string */
		const char *call;
	}			cases[] = {
		{"PostgreSQL alone: the body received and cast to jsonb, no push", "", "clients", "\"name\": \"big\", ", "notes",
		"SELECT CASE WHEN pg_column_size($1::jsonb) > 0 THEN 'parsed' END"},
		{"accepted: a create applied", "", "clients", "\"name\": \"big\", ", "notes", NULL},
		{"refused: a value over smartsync.max_value_size", "SET smartsync.max_value_size = '512kB';", "clients", "\"name\": \"big\", ", "notes", NULL},
		{"refused: no permission for the write", "SET smartsync.permissions = 'clients:read';", "clients", "\"name\": \"big\", ", "notes", NULL},
		{"refused: the table refuses the value (integer)", "", "invoices", "\"clientId\": 1, ", "amountCents", NULL},
	};
	int			sizes[8] = {1, 10, 50};
	int			nsizes = 3;
	PGconn	   *admin = PQconnectdb("");
	/* PUSH_MEMORY_LIMITS=0: no limit settings (a build without them), and no refusal by one */
	int			limits = getenv("PUSH_MEMORY_LIMITS") == NULL || strcmp(getenv("PUSH_MEMORY_LIMITS"), "0") != 0;

	if (argc > 1)
	{
		nsizes = 0;
		for (int i = 1; i < argc && nsizes < 8; i++)
			sizes[nsizes++] = atoi(argv[i]);
	}
	if (PQstatus(admin) != CONNECTION_OK)
		die("connect", admin);
	PQfinish(admin);

	printf("| request | body | peak backend memory | peak / body | answer |\n|---|---|---|---|---|\n");
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++)
		for (int s = 0; s < nsizes; s++)
		{
			size_t		n = (size_t) sizes[s] * 1024 * 1024;
			char	   *body = make_body(cases[c].type, cases[c].prefix, cases[c].field, n);
			char		context[1024];
			char		code[32];
			long		kb;

			if (!limits && strstr(cases[c].extra, "max_value_size") != NULL)
				continue;
			snprintf(context, sizeof(context),
					 "SET smartsync.tenant_id = 'push-memory'; SET smartsync.practice_id = '1'; "
					 "SET smartsync.client_id = 'device-%d-%zu'; SET smartsync.permissions = '*'; %s %s",
					 s, c, limits ? "SET smartsync.max_payload_size = '64MB'; SET smartsync.max_value_size = '64MB';" : "",
					 cases[c].extra);
			kb = measure(context, cases[c].call ? cases[c].call :
						 "SELECT smartsync.sync_push($1::jsonb) -> 'results' -> 0 ->> 'code'",
						 body, code, sizeof(code));
			printf("| %s | %d MB | %.1f MB | %.2f | %s |\n", cases[c].name, sizes[s], kb / 1024.0,
				   kb / 1024.0 / sizes[s], code);
			fflush(stdout);
			free(body);
		}
	return 0;
}
