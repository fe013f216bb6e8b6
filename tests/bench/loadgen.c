/*
 * loadgen.c - an HTTPS load generator for dird: N keep-alive mTLS
 * connections (one thread each), or a new connection per request, for a
 * fixed time; prints one JSON line with requests/s and latency
 * percentiles.
 *
 *   loadgen --port P --ca CA.pem [--cert C --key K]... [--conns N]
 *           [--seconds S] [--method M] [--path P] [--body FILE]
 *           [--new-conn] [--idle N] [--header "Name: value"]
 *
 * --cert/--key may be repeated: connection i presents pair i mod the
 * number of pairs, so 64 connections can be 64 different users (writes
 * by one user to one row would otherwise wait on each other's locks).
 *
 * --random N replaces "{}" in the path with a random number below N for
 * each request (to look up many different users); with --sequential the
 * numbers are 0 to N-1 in turn, over all connections, and the run ends
 * when each was asked once (to fill a cache with every user).
 *
 * --header adds one header line to every request (a lookup with
 * "Cache-Control: no-cache", say); "{}" in it becomes a number new for
 * each request (an inbox post's IRP-Message-Id).  --ctype sets the
 * Content-Type (application/json by default).
 *
 * --idle N opens N TLS connections, keeps them open without requests for
 * --seconds, then closes them (for memory measurements).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define MAX_CONNS 4096
#define MAX_SAMPLES (1 << 20)
#define MAX_CERTS 256

struct opts {
	int port;
	const char *ca, *method, *path, *bodyfile, *header, *ctype;
	const char *cert[MAX_CERTS], *key[MAX_CERTS];
	int ncert, nkey;
	int conns, seconds, new_conn, idle;
	long random_n;
	int sequential;
	char *body;
	size_t body_len;
};

static struct opts o = { .port = 4604, .method = "GET", .path = "/healthz",
	.ctype = "application/json",
	.conns = 1, .seconds = 5 };
/* One context per client certificate; ctx[0] when there is none. */
static SSL_CTX *ctx[MAX_CERTS];
static int nctx;
static atomic_int stop_flag;
static atomic_long total_ok, total_err;
static atomic_ulong header_seq; /* what "{}" in --header becomes */
static atomic_long path_seq;	/* the next "{}" of --sequential */

/* Latencies in microseconds, per thread, merged at the end. */
struct worker {
	pthread_t tid;
	SSL_CTX *ctx;
	long *lat;
	size_t n, cap;
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static SSL *
connect_tls(SSL_CTX *c)
{
	struct sockaddr_in sin;
	SSL *ssl;
	int fd, one = 1;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return NULL;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)o.port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		close(fd);
		return NULL;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if ((ssl = SSL_new(c)) == NULL) {
		close(fd);
		return NULL;
	}
	SSL_set_fd(ssl, fd);
	SSL_set_tlsext_host_name(ssl, "localhost");
	if (SSL_connect(ssl) != 1) {
		SSL_free(ssl);
		close(fd);
		return NULL;
	}
	return ssl;
}

static void
close_tls(SSL *ssl)
{
	int fd;

	if (ssl == NULL)
		return;
	fd = SSL_get_fd(ssl);
	SSL_shutdown(ssl);
	SSL_free(ssl);
	close(fd);
}

/* xorshift64: per thread, no locks, good enough to pick users. */
static uint64_t
next_rand(uint64_t *st)
{
	uint64_t x = *st;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *st = x;
}

/* The path of the next request: o.path, "{}" replaced with --random. */
static const char *
make_path(char *out, size_t len, uint64_t *rnd)
{
	const char *at;

	uint64_t n;

	if (o.random_n <= 0 || (at = strstr(o.path, "{}")) == NULL)
		return o.path;
	if (o.sequential) {
		/* Every number once, then the run is over. */
		if ((n = (uint64_t)atomic_fetch_add(&path_seq, 1)) >=
		    (uint64_t)o.random_n) {
			atomic_store(&stop_flag, 1);
			return NULL;
		}
	} else
		n = next_rand(rnd) % (uint64_t)o.random_n;
	snprintf(out, len, "%.*s%llu%s", (int)(at - o.path), o.path,
	    (unsigned long long)n, at + 2);
	return out;
}

/* One request and its whole response; 0 on a 2xx. */
static int
request(SSL *ssl, const char *path)
{
	char hdr[768], buf[65536], extra[256] = "";
	size_t have = 0, need;
	long clen = -1;
	int n, status;
	char *end, *cl;
	const char *at;

	if (o.header != NULL && (at = strstr(o.header, "{}")) != NULL)
		snprintf(extra, sizeof(extra), "%.*s%lu%s\r\n",
		    (int)(at - o.header), o.header,
		    atomic_fetch_add(&header_seq, 1), at + 2);
	else if (o.header != NULL)
		snprintf(extra, sizeof(extra), "%s\r\n", o.header);
	n = snprintf(hdr, sizeof(hdr),
	    "%s %s HTTP/1.1\r\nHost: localhost\r\n%s"
	    "Content-Type: %s\r\nContent-Length: %zu\r\n\r\n",
	    o.method, path, extra, o.ctype, o.body_len);
	if (n < 0 || (size_t)n >= sizeof(hdr))
		return -1;
	if (SSL_write(ssl, hdr, n) != n)
		return -1;
	if (o.body_len > 0 &&
	    SSL_write(ssl, o.body, (int)o.body_len) != (int)o.body_len)
		return -1;
	for (;;) {
		if (have == sizeof(buf) - 1)
			return -1;
		n = SSL_read(ssl, buf + have, (int)(sizeof(buf) - 1 - have));
		if (n <= 0)
			return -1;
		have += (size_t)n;
		buf[have] = '\0';
		if ((end = strstr(buf, "\r\n\r\n")) != NULL)
			break;
	}
	if (sscanf(buf, "HTTP/1.1 %d", &status) != 1)
		return -1;
	if ((cl = strcasestr(buf, "\r\nContent-Length:")) != NULL && cl < end)
		clen = strtol(cl + 17, NULL, 10);
	if (clen < 0)
		return -1;
	need = (size_t)(end + 4 - buf) + (size_t)clen;
	while (have < need) {
		char sink[16384];

		n = SSL_read(ssl, sink, (int)sizeof(sink));
		if (n <= 0)
			return -1;
		have += (size_t)n;
	}
	return status >= 200 && status < 300 ? 0 : -1;
}

static void
record(struct worker *w, long us)
{
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 4096;
		long *nl;

		if (cap > MAX_SAMPLES)
			return;
		if ((nl = realloc(w->lat, cap * sizeof(*nl))) == NULL)
			return;
		w->lat = nl;
		w->cap = cap;
	}
	w->lat[w->n++] = us;
}

static void *
run(void *arg)
{
	struct worker *w = arg;
	SSL *ssl = NULL;
	char pbuf[400];
	uint64_t rnd = 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uintptr_t)w;
	double t0;

	const char *path;

	while (!atomic_load(&stop_flag)) {
		t0 = now_s();
		if (ssl == NULL && (ssl = connect_tls(w->ctx)) == NULL) {
			atomic_fetch_add(&total_err, 1);
			usleep(10000);
			continue;
		}
		if ((path = make_path(pbuf, sizeof(pbuf), &rnd)) == NULL)
			break;
		if (request(ssl, path) == 0) {
			atomic_fetch_add(&total_ok, 1);
			record(w, (long)((now_s() - t0) * 1e6));
		} else {
			atomic_fetch_add(&total_err, 1);
			close_tls(ssl);
			ssl = NULL;
			continue;
		}
		if (o.new_conn) {
			close_tls(ssl);
			ssl = NULL;
		}
	}
	close_tls(ssl);
	return NULL;
}

static int
cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;

	return (x > y) - (x < y);
}

static char *
slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *buf;
	long n;

	if (fp == NULL || fseek(fp, 0, SEEK_END) == -1 || (n = ftell(fp)) < 0 ||
	    fseek(fp, 0, SEEK_SET) == -1 || (buf = malloc((size_t)n + 1)) == NULL ||
	    fread(buf, 1, (size_t)n, fp) != (size_t)n) {
		fprintf(stderr, "loadgen: cannot read %s\n", path);
		exit(2);
	}
	fclose(fp);
	*len = (size_t)n;
	return buf;
}

static int
idle_connections(void)
{
	SSL **v = calloc((size_t)o.idle, sizeof(*v));
	int i, up = 0;

	if (v == NULL)
		return 1;
	for (i = 0; i < o.idle; i++)
		if ((v[i] = connect_tls(ctx[0])) != NULL)
			up++;
	printf("{\"idle_connections\":%d}\n", up);
	fflush(stdout);
	sleep((unsigned)o.seconds);
	for (i = 0; i < o.idle; i++)
		close_tls(v[i]);
	free(v);
	return up == o.idle ? 0 : 1;
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "ca", required_argument, NULL, 'a' },
		{ "cert", required_argument, NULL, 'c' },
		{ "key", required_argument, NULL, 'k' },
		{ "conns", required_argument, NULL, 'n' },
		{ "seconds", required_argument, NULL, 's' },
		{ "method", required_argument, NULL, 'm' },
		{ "path", required_argument, NULL, 'P' },
		{ "body", required_argument, NULL, 'b' },
		{ "new-conn", no_argument, NULL, 'N' },
		{ "idle", required_argument, NULL, 'i' },
		{ "random", required_argument, NULL, 'r' },
		{ "sequential", no_argument, NULL, 'q' },
		{ "header", required_argument, NULL, 'H' },
		{ "ctype", required_argument, NULL, 'C' },
		{ NULL, 0, NULL, 0 },
	};
	struct worker *w;
	long *all;
	size_t total = 0, i, at;
	double t0, dt;
	int ch, t;

	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'p': o.port = (int)strtol(optarg, NULL, 10); break;
		case 'a': o.ca = optarg; break;
		case 'c':
			if (o.ncert == MAX_CERTS)
				return 2;
			o.cert[o.ncert++] = optarg;
			break;
		case 'k':
			if (o.nkey == MAX_CERTS)
				return 2;
			o.key[o.nkey++] = optarg;
			break;
		case 'n': o.conns = (int)strtol(optarg, NULL, 10); break;
		case 's': o.seconds = (int)strtol(optarg, NULL, 10); break;
		case 'm': o.method = optarg; break;
		case 'P': o.path = optarg; break;
		case 'b': o.bodyfile = optarg; break;
		case 'N': o.new_conn = 1; break;
		case 'i': o.idle = (int)strtol(optarg, NULL, 10); break;
		case 'r': o.random_n = strtol(optarg, NULL, 10); break;
		case 'q': o.sequential = 1; break;
		case 'H': o.header = optarg; break;
		case 'C': o.ctype = optarg; break;
		default: return 2;
		}
	}
	if (o.ca == NULL || o.ncert != o.nkey || o.conns < 1 || o.conns > MAX_CONNS ||
	    o.seconds < 1 || o.random_n < 0 || strlen(o.path) > 200 ||
	    strlen(o.ctype) > 100 || strpbrk(o.ctype, "\r\n") != NULL ||
	    (o.header != NULL && (strlen(o.header) > 200 ||
	    strpbrk(o.header, "\r\n") != NULL)) ||
	    o.idle < 0 || o.idle > 100000) {
		fprintf(stderr, "usage: loadgen --port P --ca CA [--cert C "
				"--key K] [--conns N] [--seconds S] ...\n");
		return 2;
	}
	if (o.bodyfile != NULL)
		o.body = slurp(o.bodyfile, &o.body_len);
	nctx = o.ncert > 0 ? o.ncert : 1;
	for (t = 0; t < nctx; t++) {
		SSL_CTX *c = SSL_CTX_new(TLS_client_method());

		if ((ctx[t] = c) == NULL)
			return 1;
		SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
		SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
		/* Each new connection is a full handshake, as dird does no
		 * resumption. */
		SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
		/*
		 * One read(2) for whatever has arrived, as libpq does for
		 * pgbench; without it OpenSSL reads each record's 5-byte
		 * header and its body separately: four reads for a reply in
		 * two records, which cost the load generator (and so the
		 * server, on the same cores) more than the request.
		 */
		SSL_CTX_set_read_ahead(c, 1);
		if (SSL_CTX_load_verify_locations(c, o.ca, NULL) != 1 ||
		    (o.ncert > 0 &&
			(SSL_CTX_use_certificate_chain_file(c,
			     o.cert[t]) != 1 ||
			    SSL_CTX_use_PrivateKey_file(c, o.key[t],
				SSL_FILETYPE_PEM) != 1))) {
			ERR_print_errors_fp(stderr);
			return 2;
		}
	}
	if (o.idle > 0)
		return idle_connections();
	if ((w = calloc((size_t)o.conns, sizeof(*w))) == NULL)
		return 1;
	t0 = now_s();
	for (t = 0; t < o.conns; t++) {
		w[t].ctx = ctx[t % nctx];
		pthread_create(&w[t].tid, NULL, run, &w[t]);
	}
	/* --seconds, or less when --sequential asked every number. */
	for (i = 0; i < (size_t)o.seconds * 10 && !atomic_load(&stop_flag);
	    i++)
		usleep(100000);
	atomic_store(&stop_flag, 1);
	for (t = 0; t < o.conns; t++) {
		pthread_join(w[t].tid, NULL);
		total += w[t].n;
	}
	dt = now_s() - t0;
	if ((all = malloc((total ? total : 1) * sizeof(*all))) == NULL)
		return 1;
	for (t = 0, at = 0; t < o.conns; t++) {
		for (i = 0; i < w[t].n; i++)
			all[at++] = w[t].lat[i];
		free(w[t].lat);
	}
	qsort(all, total, sizeof(*all), cmp_long);
	printf("{\"requests\":%ld,\"errors\":%ld,\"seconds\":%.3f,"
	       "\"rps\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f}\n",
	    atomic_load(&total_ok), atomic_load(&total_err), dt,
	    (double)atomic_load(&total_ok) / dt,
	    total ? (double)all[total / 2] / 1000.0 : 0.0,
	    total ? (double)all[(size_t)((double)total * 0.99)] / 1000.0 : 0.0);
	free(all);
	free(w);
	free(o.body);
	for (t = 0; t < nctx; t++)
		SSL_CTX_free(ctx[t]);
	return atomic_load(&total_ok) > 0 ? 0 : 1;
}
