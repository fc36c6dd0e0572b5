/*
 * live_reader.c: the lean client of bench/server-bench.mjs latency --reader c
 * (bench/bench_server.sh, READERS="node c"): N live streams read by one
 * process with epoll, so that the benchmark's own cost per event is a recv()
 * and a memmem() instead of a Node socket's 'data' event.
 *
 *   live_reader PORT STREAMS        (the token in LIVE_READER_TOKEN)
 *
 * Opens STREAMS connections to GET /api/sync/live on 127.0.0.1:PORT, 50 at a
 * time, each waiting for its `ready` event, then prints "ready".  From then on
 * it reads commit numbers on stdin, one a line, written by the benchmark just
 * before it starts each commit's UPDATE; every `"reason":"change"` event a
 * stream receives is timestamped (CLOCK_MONOTONIC, the clock of Node's
 * process.hrtime) for the commit read last, and when every stream has heard
 * it, "heard C" is printed.  At the end of stdin it prints every event as
 * "C NANOSECONDS STREAM", and exits.  Every event of every stream is kept.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#define MARK "\"reason\":\"change\""
#define MARK_LEN (sizeof(MARK) - 1)
#define READY "event: ready"
#define WAVE 50

typedef struct Stream
{
	int			fd;
	int			ready;
	/* the start of the response, until the ready event is seen */
	char		head[4096];
	size_t		head_len;
	/* the end of the last read, in case a marker is split between two reads */
	char		tail[MARK_LEN];
	size_t		tail_len;
} Stream;

typedef struct Sample
{
	int			commit;
	int			stream;
	int64_t		ns;
} Sample;

static Stream *streams;
static Sample *samples;
static size_t nsamples, maxsamples;
static int	current = -1;
static long heard;

static void
die(const char *what)
{
	fprintf(stderr, "live_reader: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
record(int stream, int64_t ns, int nstreams)
{
	if (current < 0)
		return;
	if (nsamples == maxsamples)
	{
		maxsamples = maxsamples ? maxsamples * 2 : 65536;
		samples = realloc(samples, maxsamples * sizeof(Sample));
		if (!samples)
			die("realloc");
	}
	samples[nsamples].commit = current;
	samples[nsamples].stream = stream;
	samples[nsamples].ns = ns;
	nsamples++;
	if (++heard == nstreams)
	{
		printf("heard %d\n", current);
		fflush(stdout);
	}
}

/* Reads what a stream has; returns -1 when it ended. */
static int
read_stream(int i, int nstreams, int *opened)
{
	Stream	   *s = &streams[i];
	char		buf[65536 + MARK_LEN];

	for (;;)
	{
		ssize_t		n = recv(s->fd, buf + MARK_LEN, 65536, 0);
		int64_t		ns = now_ns();
		char	   *start;
		size_t		len;

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0)
			return -1;
		if (!s->ready)
		{
			size_t		take = (size_t) n < sizeof(s->head) - s->head_len ? (size_t) n : sizeof(s->head) - s->head_len;

			memcpy(s->head + s->head_len, buf + MARK_LEN, take);
			s->head_len += take;
			if (s->head_len >= 12 && memcmp(s->head, "HTTP/1.1 200", 12) != 0)
			{
				fprintf(stderr, "live_reader: live: %.40s\n", s->head);
				exit(1);
			}
			if (memmem(s->head, s->head_len, READY, strlen(READY)) == NULL)
				continue;
			s->ready = 1;
			(*opened)++;
		}
		/* the tail of the last read, then this one */
		memcpy(buf + MARK_LEN - s->tail_len, s->tail, s->tail_len);
		start = buf + MARK_LEN - s->tail_len;
		len = s->tail_len + (size_t) n;
		for (char *p = start; (p = memmem(p, len - (size_t) (p - start), MARK, MARK_LEN)) != NULL; p += MARK_LEN)
			record(i, ns, nstreams);
		s->tail_len = len < MARK_LEN - 1 ? len : MARK_LEN - 1;
		memcpy(s->tail, start + len - s->tail_len, s->tail_len);
	}
}

int
main(int argc, char **argv)
{
	int			port,
				nstreams,
				ep,
				opened = 0;
	const char *token = getenv("LIVE_READER_TOKEN");
	char		request[8192];
	int			reqlen;
	struct sockaddr_in addr;
	struct epoll_event ev,
				events[256];
	char		line[64];
	size_t		line_len = 0;
	int			input_open = 1;

	if (argc != 3 || token == NULL)
	{
		fprintf(stderr, "usage: LIVE_READER_TOKEN=JWT live_reader PORT STREAMS\n");
		return 2;
	}
	port = atoi(argv[1]);
	nstreams = atoi(argv[2]);
	reqlen = snprintf(request, sizeof(request),
					  "GET /api/sync/live HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer %s\r\n\r\n",
					  port, token);
	streams = calloc(nstreams, sizeof(Stream));
	if ((ep = epoll_create1(0)) < 0)
		die("epoll_create1");
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons(port);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

	/* open the streams, WAVE at a time, each until its ready event */
	for (int i = 0; i < nstreams; i++)
	{
		int			one = 1;
		Stream	   *s = &streams[i];

		if ((s->fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
			die("socket");
		setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (connect(s->fd, (struct sockaddr *) &addr, sizeof(addr)) < 0)
			die("connect");
		if (write(s->fd, request, reqlen) != reqlen)
			die("write");
		fcntl(s->fd, F_SETFL, O_NONBLOCK);
		ev.events = EPOLLIN;
		ev.data.u32 = (uint32_t) i;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev) < 0)
			die("epoll_ctl");
		if ((i + 1) % WAVE == 0 || i + 1 == nstreams)
			while (opened < i + 1)
			{
				int			n = epoll_wait(ep, events, 256, 10000);

				if (n <= 0)
				{
					fprintf(stderr, "live_reader: %d of %d streams opened\n", opened, i + 1);
					return 1;
				}
				for (int k = 0; k < n; k++)
					if (read_stream((int) events[k].data.u32, nstreams, &opened) < 0)
					{
						fprintf(stderr, "live_reader: a stream ended while opening\n");
						return 1;
					}
			}
	}
	printf("ready\n");
	fflush(stdout);

	fcntl(0, F_SETFL, O_NONBLOCK);
	ev.events = EPOLLIN;
	ev.data.u32 = UINT32_MAX;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev) < 0)
		die("epoll_ctl stdin");
	while (input_open)
	{
		int			n = epoll_wait(ep, events, 256, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("epoll_wait");
		/* the commit number first: it was written before its UPDATE started */
		for (int k = 0; k < n; k++)
		{
			if (events[k].data.u32 != UINT32_MAX)
				continue;
			for (;;)
			{
				ssize_t		r = read(0, line + line_len, sizeof(line) - 1 - line_len);
				char	   *nl;

				if (r < 0 && errno == EAGAIN)
					break;
				if (r <= 0)
				{
					input_open = 0;
					break;
				}
				line_len += (size_t) r;
				while ((nl = memchr(line, '\n', line_len)) != NULL)
				{
					*nl = '\0';
					current = atoi(line);
					heard = 0;
					line_len -= (size_t) (nl + 1 - line);
					memmove(line, nl + 1, line_len);
				}
			}
		}
		for (int k = 0; k < n; k++)
		{
			if (events[k].data.u32 == UINT32_MAX)
				continue;
			if (read_stream((int) events[k].data.u32, nstreams, &opened) < 0)
			{
				fprintf(stderr, "live_reader: stream %u ended\n", events[k].data.u32);
				return 1;
			}
		}
	}
	for (size_t i = 0; i < nsamples; i++)
		printf("%d %lld %d\n", samples[i].commit, (long long) samples[i].ns, samples[i].stream);
	fflush(stdout);
	return 0;
}
