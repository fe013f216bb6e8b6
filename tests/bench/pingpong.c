/*
 * pingpong.c - the baseline for the dchat message round trip: a plain TCP
 * ping-pong over loopback, with no TLS and no JSON.
 *
 *   pingpong serve            listen on 127.0.0.1 (any port), print the
 *                             port, echo one connection line by line
 *   pingpong relay PORT       copy each line of stdin to the server and
 *                             the echoed line to stdout
 *   pingpong bench PORT N     N round trips in this process; prints one
 *                             JSON line with p50/p99 in milliseconds
 *
 * "relay" exists so that tests/bench/run can time the baseline through
 * the same kind of Python pipe driver it uses for `dchat run --json`
 * (pipe -> process -> TCP -> process -> TCP -> process -> pipe); "bench"
 * gives the floor without the driver.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_LEN 4096
#define BENCH_MAX 1000000

static int
nodelay(int fd)
{
	int one = 1;

	return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Write all of buf; 0 or -1. */
static int
write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, buf, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Read up to and including a newline into buf; the length, 0 at EOF or
 * -1.  Reads one byte at a time on purpose: lines are short, and a
 * buffered reader would have to share its buffer between calls.
 */
static ssize_t
read_line(int fd, char *buf, size_t cap)
{
	size_t have = 0;
	ssize_t n;

	while (have < cap) {
		if ((n = read(fd, buf + have, 1)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			return have ? -1 : 0;
		if (buf[have++] == '\n')
			return (ssize_t)have;
	}
	return -1;
}

static int
serve(void)
{
	struct sockaddr_in sin;
	socklen_t slen = sizeof(sin);
	char buf[65536];
	ssize_t n;
	int lfd, fd, one = 1;

	if ((lfd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(lfd, 1) == -1 ||
	    getsockname(lfd, (struct sockaddr *)&sin, &slen) == -1)
		return 1;
	printf("%d\n", ntohs(sin.sin_port));
	fflush(stdout);
	if ((fd = accept(lfd, NULL, NULL)) == -1)
		return 1;
	close(lfd);
	nodelay(fd);
	/* An echo needs no line framing: whatever arrives goes back. */
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		if (write_all(fd, buf, (size_t)n) == -1)
			return 1;
	}
	close(fd);
	return 0;
}

static int
dial(const char *port)
{
	struct sockaddr_in sin;
	long p = strtol(port, NULL, 10);
	int fd;

	if (p < 1 || p > 65535 ||
	    (fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)p);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		close(fd);
		return -1;
	}
	nodelay(fd);
	return fd;
}

static int
relay(const char *port)
{
	char line[LINE_MAX_LEN];
	ssize_t n;
	int fd;

	if ((fd = dial(port)) == -1)
		return 1;
	while ((n = read_line(0, line, sizeof(line))) > 0) {
		if (write_all(fd, line, (size_t)n) == -1 ||
		    read_line(fd, line, sizeof(line)) != n ||
		    write_all(1, line, (size_t)n) == -1)
			return 1;
	}
	close(fd);
	return n == 0 ? 0 : 1;
}

static double
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int
bench(const char *port, const char *count)
{
	static const char ping[] = "ping\n";
	char line[LINE_MAX_LEN];
	long n = strtol(count, NULL, 10), i;
	double *lat, t0;
	int fd;

	if (n < 1 || n > BENCH_MAX || (fd = dial(port)) == -1 ||
	    (lat = calloc((size_t)n, sizeof(*lat))) == NULL)
		return 1;
	for (i = 0; i < n; i++) {
		t0 = now_us();
		if (write_all(fd, ping, sizeof(ping) - 1) == -1 ||
		    read_line(fd, line, sizeof(line)) !=
			(ssize_t)(sizeof(ping) - 1))
			return 1;
		lat[i] = now_us() - t0;
	}
	close(fd);
	qsort(lat, (size_t)n, sizeof(*lat), cmp_double);
	printf("{\"count\":%ld,\"p50_ms\":%.4f,\"p99_ms\":%.4f}\n", n,
	    lat[n / 2] / 1000.0, lat[(long)((double)n * 0.99)] / 1000.0);
	free(lat);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "serve") == 0)
		return serve();
	if (argc == 3 && strcmp(argv[1], "relay") == 0)
		return relay(argv[2]);
	if (argc == 4 && strcmp(argv[1], "bench") == 0)
		return bench(argv[2], argv[3]);
	fputs("usage: pingpong serve | relay PORT | bench PORT N\n", stderr);
	return 2;
}
