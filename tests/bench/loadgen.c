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
 * --mint N --ca-key CA.key --template T.pem --mint-out FILE signs N
 * copies of a certificate under serials of their own; --soak FILE
 * --soak-key K --rate R holds one connection per such certificate and
 * refreshes at R requests/s in all, with --lookup PATH beside it (see
 * soak() below).
 *
 * --idle N opens N TLS connections, keeps them open without requests for
 * --seconds, then closes them (for memory measurements); see
 * idle_connections() for --idle-sources, --idle-threads, --idle-request.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

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
request_as(SSL *ssl, const char *method, const char *path, const char *body,
    size_t body_len)
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
	    method, path, extra, o.ctype, body_len);
	if (n < 0 || (size_t)n >= sizeof(hdr))
		return -1;
	if (SSL_write(ssl, hdr, n) != n)
		return -1;
	if (body_len > 0 &&
	    SSL_write(ssl, body, (int)body_len) != (int)body_len)
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

/* request_as() with --method and --body. */
static int
request(SSL *ssl, const char *path)
{
	return request_as(ssl, o.method, path, o.body, o.body_len);
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

/*
 * --idle N: N connections held open, each a full mTLS handshake and,
 * with --idle-request, one request (--method, --path) and its reply, as
 * a client that registered and now waits.  --idle-threads T open them T
 * at a time (the handshakes cost CPU on both sides).  --idle-sources K
 * binds them in turn to 127.0.0.2 ... 127.0.0.(K+1): from one address
 * one port of the server is reached from some 28,000 ephemeral ports.
 * They are held --seconds, or until standard input, when it is a pipe,
 * has a line or ends; then closed.
 */
enum { OPT_IDLE_SOURCES = 512, OPT_IDLE_THREADS, OPT_IDLE_REQUEST };

static struct {
	int sources; /* 0: no bind, the source address is the kernel's */
	int threads;
	int request;
	SSL **v;
	atomic_int next, up;
} idl = { .threads = 8 };

static SSL *
idle_connect(int i)
{
	struct sockaddr_in sin;
	SSL *ssl;
	int fd, one = 1;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return NULL;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	if (idl.sources > 0) {
		/* The port is chosen at connect(), per destination. */
		(void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
		    sizeof(one));
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK + 1 +
		    (uint32_t)(i % idl.sources));
		if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
			close(fd);
			return NULL;
		}
	}
	sin.sin_port = htons((uint16_t)o.port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		close(fd);
		return NULL;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if ((ssl = SSL_new(ctx[i % nctx])) == NULL) {
		close(fd);
		return NULL;
	}
	/* No buffers kept while idle: 100,000 of them are gigabytes. */
	SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
	SSL_set_fd(ssl, fd);
	SSL_set_tlsext_host_name(ssl, "localhost");
	if (SSL_connect(ssl) != 1 ||
	    (idl.request && request(ssl, o.path) != 0)) {
		SSL_free(ssl);
		close(fd);
		return NULL;
	}
	return ssl;
}

static void *
idle_open(void *arg)
{
	int i;

	(void)arg;
	while ((i = atomic_fetch_add(&idl.next, 1)) < o.idle)
		if ((idl.v[i] = idle_connect(i)) != NULL)
			atomic_fetch_add(&idl.up, 1);
	return NULL;
}

static int
idle_connections(void)
{
	pthread_t tid[256];
	struct rlimit rl;
	struct stat st;
	struct pollfd pfd = { .fd = 0, .events = POLLIN };
	rlim_t want = (rlim_t)o.idle + 64;
	double t0 = now_s();
	int i, up;

	/* A connection is a descriptor: as many as needed, if allowed. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want) {
		struct rlimit more = { want, want };

		if (rl.rlim_max >= want || setrlimit(RLIMIT_NOFILE, &more) == -1) {
			rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
			(void)setrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	if ((idl.v = calloc((size_t)o.idle, sizeof(*idl.v))) == NULL)
		return 1;
	for (i = 0; i < idl.threads; i++)
		if (pthread_create(&tid[i], NULL, idle_open, NULL) != 0)
			return 1;
	for (i = 0; i < idl.threads; i++)
		pthread_join(tid[i], NULL);
	up = atomic_load(&idl.up);
	printf("{\"idle_connections\":%d,\"open_seconds\":%.1f}\n", up,
	    now_s() - t0);
	fflush(stdout);
	if (fstat(0, &st) == 0 && S_ISFIFO(st.st_mode))
		(void)poll(&pfd, 1, o.seconds * 1000);
	else
		sleep((unsigned)o.seconds);
	for (i = 0; i < o.idle; i++)
		close_tls(idl.v[i]);
	free(idl.v);
	return up == o.idle ? 0 : 1;
}

/*
 * --mint and --soak: thousands of client certificates, one per
 * connection, without a file each.
 *
 * --mint N signs N copies of --template (a certificate dird issued, so
 * that its extensions are right) with --ca-key, the key of --ca, each
 * under a serial of its own (MINT_SERIAL + i, the same in every run),
 * and writes a line per copy to --mint-out for PostgreSQL's COPY:
 *
 *	i  serial  DER  fingerprint  not_before  not_after
 *
 * separated by tabs; the serial in hex as dird writes it, the DER and its
 * SHA-256 in hex, the times (the template's) as timestamptz text.  Every
 * copy keeps the template's subject and public key, so the template's
 * private key goes with all of them.
 *
 * --soak FILE reads such a file back and opens a keep-alive connection
 * per certificate (each with --soak-key; SOAK_HANDSHAKES at a time),
 * spread over --threads threads (1,000).  Then, for --seconds, it sends
 * --method --path --body (an address refresh) at --rate requests/s over
 * all of them, each connection in its turn: each one every N/rate
 * seconds.  A thread waits for each answer before its next request, so
 * at most --threads refreshes are under way at once: enough for 150 ms
 * answers at 6,700/s.  Meanwhile --lookup-conns connections (4) with the
 * first --cert ask for --lookup PATH ("{}" a random number below
 * --random) at --lookup-rate requests/s in all (0: as fast as they
 * can), one thread each.  A request goes out when it is due or, behind
 * schedule, at once; none is due after --seconds, and none goes out a
 * second after them: a server that does not keep up shows as a refresh
 * rate (done / --seconds) below --rate.  Lookup latencies count from
 * when the lookup was due, so that a slow answer counts for those that
 * waited behind it too.  One JSON line when the connections are up and
 * the measurement starts, one at the end.
 */
#define MINT_SERIAL 0x50a4000000ULL
#define MINT_MAX (1 << 24)
#define SOAK_THREADS_MAX 4096
#define SOAK_HANDSHAKES 8
#define SOAK_STACK (256 * 1024)

/* Long options without a letter: getopt_long values above 255. */
enum {
	OPT_MINT = 256, OPT_CA_KEY, OPT_TEMPLATE, OPT_MINT_OUT, OPT_SOAK,
	OPT_SOAK_KEY, OPT_RATE, OPT_THREADS, OPT_LOOKUP, OPT_LOOKUP_CONNS,
	OPT_LOOKUP_RATE
};

static struct {
	const char *ca_key, *tmpl, *out, *file, *key, *lookup;
	long mint;
	double rate, lookup_rate;
	int threads, lookup_conns;
} so = { .threads = 1000, .lookup_conns = 4 };

static X509 **soak_x; /* the certificates of --soak */
static int soak_n;
/* What the next handshake of this thread presents (soak_cert_cb). */
static _Thread_local X509 *soak_cert;
static double soak_t0; /* when the measurement starts */
/* Threads with their connections up; set when all are: under soak_mu. */
static int soak_ready, soak_go;
static pthread_mutex_t soak_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t soak_ready_cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t soak_go_cv = PTHREAD_COND_INITIALIZER;
/* Handshakes of the set-up at once: a thousand would starve the server
 * (and everything else on its cores). */
static sem_t soak_hs;

/* One thread of --soak: refreshes on n connections, or lookups on one. */
struct soaker {
	pthread_t tid;
	SSL_CTX *ctx;
	X509 **x;	 /* its certificates; NULL for lookups (ctx[0]) */
	int n;		 /* its connections */
	int index, of;	 /* the index-th of "of" threads of its kind */
	double rate;	 /* requests/s of those threads together */
	SSL **ssl;
	long ok, err, setup_err;
	double late;	 /* the most a request went out after its time */
	struct worker w; /* latencies */
};

static X509 *
read_cert(const char *path)
{
	FILE *fp;
	X509 *x = NULL;

	if ((fp = fopen(path, "r")) != NULL) {
		x = PEM_read_X509(fp, NULL, NULL, NULL);
		fclose(fp);
	}
	if (x == NULL)
		fprintf(stderr, "loadgen: no certificate in %s\n", path);
	return x;
}

static EVP_PKEY *
read_key(const char *path)
{
	FILE *fp;
	EVP_PKEY *k = NULL;

	if ((fp = fopen(path, "r")) != NULL) {
		k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
		fclose(fp);
	}
	if (k == NULL)
		fprintf(stderr, "loadgen: no private key in %s\n", path);
	return k;
}

/* An ASN1_TIME as timestamptz text. */
static int
time_text(const ASN1_TIME *t, char *out, size_t len)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(t, &tm) != 1 ||
	    strftime(out, len, "%Y-%m-%d %H:%M:%S+00", &tm) == 0)
		return -1;
	return 0;
}

static void
put_hex(FILE *fp, const unsigned char *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";

	for (; n > 0; n--, p++) {
		putc(digits[*p >> 4], fp);
		putc(digits[*p & 15], fp);
	}
}

static int
mint(void)
{
	X509 *ca = NULL, *tmpl = NULL, *x = NULL;
	EVP_PKEY *key = NULL;
	const EVP_MD *md;
	FILE *out = NULL;
	unsigned char *der = NULL, fp[EVP_MAX_MD_SIZE];
	unsigned int fplen;
	char nb[40], na[40];
	uint64_t serial;
	long i;
	int len, rv = 2;

	if (so.ca_key == NULL || so.tmpl == NULL || so.out == NULL ||
	    so.mint > MINT_MAX) {
		fprintf(stderr, "usage: loadgen --mint N --ca CA --ca-key KEY "
				"--template CERT --mint-out FILE\n");
		return 2;
	}
	if ((ca = read_cert(o.ca)) == NULL ||
	    (tmpl = read_cert(so.tmpl)) == NULL ||
	    (key = read_key(so.ca_key)) == NULL)
		goto done;
	if (X509_check_private_key(ca, key) != 1) {
		fprintf(stderr, "loadgen: %s is not the key of %s\n",
		    so.ca_key, o.ca);
		goto done;
	}
	if (time_text(X509_get0_notBefore(tmpl), nb, sizeof(nb)) == -1 ||
	    time_text(X509_get0_notAfter(tmpl), na, sizeof(na)) == -1 ||
	    (out = fopen(so.out, "w")) == NULL) {
		fprintf(stderr, "loadgen: cannot write %s\n", so.out);
		goto done;
	}
	/* EdDSA signs the message itself, without a digest of it. */
	md = EVP_PKEY_get_id(key) == EVP_PKEY_ED25519 ||
		EVP_PKEY_get_id(key) == EVP_PKEY_ED448 ?
	    NULL : EVP_sha256();
	rv = 1;
	for (i = 0; i < so.mint; i++) {
		serial = MINT_SERIAL + (uint64_t)i;
		if ((x = X509_dup(tmpl)) == NULL ||
		    ASN1_INTEGER_set_uint64(X509_get_serialNumber(x),
			serial) != 1 ||
		    X509_sign(x, key, md) <= 0 ||
		    (len = i2d_X509(x, &der)) <= 0 ||
		    EVP_Digest(der, (size_t)len, fp, &fplen, EVP_sha256(),
			NULL) != 1) {
			ERR_print_errors_fp(stderr);
			goto done;
		}
		fprintf(out, "%ld\t%llx\t", i, (unsigned long long)serial);
		put_hex(out, der, (size_t)len);
		putc('\t', out);
		put_hex(out, fp, fplen);
		fprintf(out, "\t%s\t%s\n", nb, na);
		OPENSSL_free(der);
		der = NULL;
		X509_free(x);
		x = NULL;
	}
	rv = 0;
done:
	if (out != NULL && fclose(out) != 0 && rv == 0) {
		fprintf(stderr, "loadgen: cannot write %s\n", so.out);
		rv = 1;
	}
	OPENSSL_free(der);
	X509_free(x);
	X509_free(ca);
	X509_free(tmpl);
	EVP_PKEY_free(key);
	return rv;
}

/* The certificates of a --mint file, in soak_x. */
static int
soak_load(const char *path)
{
	FILE *fp;
	char *line = NULL, *f, *save;
	size_t cap = 0;
	unsigned char *der;
	const unsigned char *p;
	long len;
	X509 *x, **nv;
	int rv = -1;

	if ((fp = fopen(path, "r")) == NULL) {
		fprintf(stderr, "loadgen: cannot read %s\n", path);
		return -1;
	}
	while (getline(&line, &cap, fp) > 0) {
		/* i, the serial, then the DER. */
		if (strtok_r(line, "\t", &save) == NULL ||
		    strtok_r(NULL, "\t", &save) == NULL ||
		    (f = strtok_r(NULL, "\t\n", &save)) == NULL ||
		    (der = OPENSSL_hexstr2buf(f, &len)) == NULL)
			goto done;
		p = der;
		x = d2i_X509(NULL, &p, len);
		OPENSSL_free(der);
		if (x == NULL)
			goto done;
		if (soak_n % 1024 == 0) {
			if ((nv = realloc(soak_x, ((size_t)soak_n + 1024) *
				 sizeof(*nv))) == NULL) {
				X509_free(x);
				goto done;
			}
			soak_x = nv;
		}
		soak_x[soak_n++] = x;
	}
	rv = soak_n > 0 ? 0 : -1;
done:
	if (rv == -1)
		fprintf(stderr, "loadgen: %s: not a --mint file\n", path);
	free(line);
	fclose(fp);
	return rv;
}

/* The certificate of a soak connection, chosen in its handshake. */
static int
soak_cert_cb(SSL *ssl, void *arg)
{
	if (soak_cert == NULL)
		return 1;
	return SSL_use_certificate(ssl, soak_cert) == 1 &&
	    SSL_use_PrivateKey(ssl, arg) == 1;
}

static SSL *
soak_connect(struct soaker *s, int i)
{
	soak_cert = s->x != NULL ? s->x[i] : NULL;
	return connect_tls(s->ctx);
}

static void
sleep_until(double t)
{
	struct timespec ts;

	ts.tv_sec = (time_t)t;
	ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts,
	    NULL) == EINTR)
		;
}

static void *
soak_run(void *arg)
{
	struct soaker *s = arg;
	uint64_t rnd = 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uintptr_t)s;
	char pbuf[400];
	const char *at, *path;
	double due = 0, t, end;
	long m;
	int i, k, rv;

	for (i = 0; i < s->n; i++) {
		sem_wait(&soak_hs);
		for (k = 0; k < 3 &&
		    (s->ssl[i] = soak_connect(s, i)) == NULL; k++)
			s->setup_err++;
		sem_post(&soak_hs);
	}
	pthread_mutex_lock(&soak_mu);
	soak_ready++;
	pthread_cond_signal(&soak_ready_cv);
	while (!soak_go)
		pthread_cond_wait(&soak_go_cv, &soak_mu);
	pthread_mutex_unlock(&soak_mu);
	end = soak_t0 + o.seconds;
	for (m = 0;; m++) {
		/* The threads of a kind take turns: request j of all of them
		 * is due at j / rate. */
		if (s->rate > 0) {
			due = soak_t0 + ((double)s->index +
			    (double)m * s->of) / s->rate;
			if (due >= end)
				break;
			sleep_until(due);
		}
		/* What is due goes out, however late, but not a second
		 * after the end (then the server did not keep up). */
		t = now_s();
		if (s->rate <= 0 ? t >= end : t >= end + 1.0)
			break;
		if (s->rate <= 0)
			due = t;
		if (t - due > s->late)
			s->late = t - due;
		k = (int)(m % s->n);
		if (s->ssl[k] == NULL &&
		    (s->ssl[k] = soak_connect(s, k)) == NULL) {
			s->err++;
			if (s->rate <= 0)
				usleep(10000);
			continue;
		}
		if (s->x != NULL) {
			t = now_s();
			rv = request(s->ssl[k], o.path);
		} else {
			t = due;
			path = so.lookup;
			if ((at = strstr(path, "{}")) != NULL &&
			    o.random_n > 0) {
				snprintf(pbuf, sizeof(pbuf), "%.*s%llu%s",
				    (int)(at - path), path,
				    (unsigned long long)(next_rand(&rnd) %
					(uint64_t)o.random_n), at + 2);
				path = pbuf;
			}
			rv = request_as(s->ssl[k], "GET", path, NULL, 0);
		}
		if (rv == 0) {
			s->ok++;
			record(&s->w, (long)((now_s() - t) * 1e6));
		} else {
			s->err++;
			close_tls(s->ssl[k]);
			s->ssl[k] = NULL;
		}
	}
	for (i = 0; i < s->n; i++)
		close_tls(s->ssl[i]);
	return NULL;
}

/* Totals and latency percentiles (ms) of threads s[0..n-1]. */
static void
soak_sum(struct soaker *s, int n, long *ok, long *err, double *late,
    double *p50, double *p99)
{
	size_t total = 0, at = 0, i;
	long *all;
	int t;

	*ok = *err = 0;
	*late = *p50 = *p99 = 0;
	for (t = 0; t < n; t++) {
		*ok += s[t].ok;
		*err += s[t].err + s[t].setup_err;
		if (s[t].late > *late)
			*late = s[t].late;
		total += s[t].w.n;
	}
	if (total == 0 || (all = malloc(total * sizeof(*all))) == NULL)
		return;
	for (t = 0; t < n; t++)
		for (i = 0; i < s[t].w.n; i++)
			all[at++] = s[t].w.lat[i];
	qsort(all, total, sizeof(*all), cmp_long);
	*p50 = (double)all[total / 2] / 1000.0;
	*p99 = (double)all[(size_t)((double)total * 0.99)] / 1000.0;
	free(all);
}

static int
soak(void)
{
	struct soaker *s;
	struct rlimit rl;
	pthread_attr_t attr;
	SSL_CTX *c;
	EVP_PKEY *key;
	long rok, rerr, lok, lerr;
	double t_setup, dt, rlate, llate, r50, r99, l50, l99;
	int nt, nl, t, i, up = 0, lup = 0;

	if (so.key == NULL || so.rate < 0 || so.lookup_rate < 0 ||
	    so.threads < 1 || so.threads > SOAK_THREADS_MAX ||
	    (so.lookup != NULL && (strlen(so.lookup) > 200 ||
	    so.lookup_conns < 1 || so.lookup_conns > SOAK_THREADS_MAX))) {
		fprintf(stderr, "usage: loadgen --soak FILE --soak-key KEY "
				"--ca CA [--rate R] [--threads T] [--lookup P "
				"--lookup-conns N --lookup-rate R] ...\n");
		return 2;
	}
	/* A connection is a descriptor: as many as we may. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (soak_load(so.file) == -1 || (key = read_key(so.key)) == NULL ||
	    (c = SSL_CTX_new(TLS_client_method())) == NULL)
		return 2;
	/* As for the other connections (main), and no buffers kept by the
	 * idle ones. */
	SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
	SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_read_ahead(c, 1);
	SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_cert_cb(c, soak_cert_cb, key);
	if (SSL_CTX_load_verify_locations(c, o.ca, NULL) != 1) {
		ERR_print_errors_fp(stderr);
		return 2;
	}
	nt = so.threads < soak_n ? so.threads : soak_n;
	nl = so.lookup != NULL ? so.lookup_conns : 0;
	if ((s = calloc((size_t)(nt + nl), sizeof(*s))) == NULL ||
	    sem_init(&soak_hs, 0, SOAK_HANDSHAKES) == -1 ||
	    pthread_attr_init(&attr) != 0 ||
	    pthread_attr_setstacksize(&attr, SOAK_STACK) != 0)
		return 1;
	t_setup = now_s();
	for (t = 0; t < nt + nl; t++) {
		struct soaker *p = &s[t];

		if (t < nt) {
			i = (int)((long)soak_n * t / nt);
			p->ctx = c;
			p->x = soak_x + i;
			p->n = (int)((long)soak_n * (t + 1) / nt) - i;
			p->index = t;
			p->of = nt;
			p->rate = so.rate;
		} else {
			p->ctx = ctx[0];
			p->n = 1;
			p->index = t - nt;
			p->of = nl;
			p->rate = so.lookup_rate;
		}
		if ((p->ssl = calloc((size_t)p->n, sizeof(*p->ssl))) == NULL ||
		    pthread_create(&p->tid, &attr, soak_run, p) != 0)
			return 1;
	}
	pthread_attr_destroy(&attr);
	pthread_mutex_lock(&soak_mu);
	while (soak_ready < nt + nl)
		pthread_cond_wait(&soak_ready_cv, &soak_mu);
	for (t = 0; t < nt + nl; t++)
		for (i = 0; i < s[t].n; i++)
			if (s[t].ssl[i] != NULL && t < nt)
				up++;
			else if (s[t].ssl[i] != NULL)
				lup++;
	printf("{\"soak\":\"start\",\"connections\":%d,"
	       "\"lookup_connections\":%d,\"setup_seconds\":%.1f}\n",
	    up, lup, now_s() - t_setup);
	fflush(stdout);
	soak_t0 = now_s() + 0.01;
	soak_go = 1;
	pthread_cond_broadcast(&soak_go_cv);
	pthread_mutex_unlock(&soak_mu);
	for (t = 0; t < nt + nl; t++)
		pthread_join(s[t].tid, NULL);
	dt = now_s() - soak_t0;
	soak_sum(s, nt, &rok, &rerr, &rlate, &r50, &r99);
	soak_sum(s + nt, nl, &lok, &lerr, &llate, &l50, &l99);
	/* The rates per --seconds: none is sent later, a few end later. */
	printf("{\"connections\":%d,\"seconds\":%.3f,\"rate\":%.1f,"
	       "\"refreshes\":%ld,\"refresh_errors\":%ld,"
	       "\"refresh_rps\":%.1f,\"refresh_p50_ms\":%.3f,"
	       "\"refresh_p99_ms\":%.3f,\"refresh_late_max_ms\":%.1f,"
	       "\"lookups\":%ld,\"lookup_errors\":%ld,\"lookup_rps\":%.1f,"
	       "\"lookup_p50_ms\":%.3f,\"lookup_p99_ms\":%.3f}\n",
	    up, dt, so.rate, rok, rerr, (double)rok / o.seconds, r50, r99,
	    rlate * 1000, lok, lerr, (double)lok / o.seconds, l50, l99);
	for (t = 0; t < nt + nl; t++) {
		free(s[t].ssl);
		free(s[t].w.lat);
	}
	free(s);
	sem_destroy(&soak_hs);
	for (i = 0; i < soak_n; i++)
		X509_free(soak_x[i]);
	free(soak_x);
	SSL_CTX_free(c);
	EVP_PKEY_free(key);
	return rok > 0 ? 0 : 1;
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
		{ "idle-sources", required_argument, NULL, OPT_IDLE_SOURCES },
		{ "idle-threads", required_argument, NULL, OPT_IDLE_THREADS },
		{ "idle-request", no_argument, NULL, OPT_IDLE_REQUEST },
		{ "random", required_argument, NULL, 'r' },
		{ "sequential", no_argument, NULL, 'q' },
		{ "header", required_argument, NULL, 'H' },
		{ "ctype", required_argument, NULL, 'C' },
		{ "mint", required_argument, NULL, OPT_MINT },
		{ "ca-key", required_argument, NULL, OPT_CA_KEY },
		{ "template", required_argument, NULL, OPT_TEMPLATE },
		{ "mint-out", required_argument, NULL, OPT_MINT_OUT },
		{ "soak", required_argument, NULL, OPT_SOAK },
		{ "soak-key", required_argument, NULL, OPT_SOAK_KEY },
		{ "rate", required_argument, NULL, OPT_RATE },
		{ "threads", required_argument, NULL, OPT_THREADS },
		{ "lookup", required_argument, NULL, OPT_LOOKUP },
		{ "lookup-conns", required_argument, NULL, OPT_LOOKUP_CONNS },
		{ "lookup-rate", required_argument, NULL, OPT_LOOKUP_RATE },
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
		case OPT_IDLE_SOURCES:
			idl.sources = (int)strtol(optarg, NULL, 10);
			break;
		case OPT_IDLE_THREADS:
			idl.threads = (int)strtol(optarg, NULL, 10);
			break;
		case OPT_IDLE_REQUEST: idl.request = 1; break;
		case 'r': o.random_n = strtol(optarg, NULL, 10); break;
		case 'q': o.sequential = 1; break;
		case 'H': o.header = optarg; break;
		case 'C': o.ctype = optarg; break;
		case OPT_MINT: so.mint = strtol(optarg, NULL, 10); break;
		case OPT_CA_KEY: so.ca_key = optarg; break;
		case OPT_TEMPLATE: so.tmpl = optarg; break;
		case OPT_MINT_OUT: so.out = optarg; break;
		case OPT_SOAK: so.file = optarg; break;
		case OPT_SOAK_KEY: so.key = optarg; break;
		case OPT_RATE: so.rate = strtod(optarg, NULL); break;
		case OPT_THREADS:
			so.threads = (int)strtol(optarg, NULL, 10);
			break;
		case OPT_LOOKUP: so.lookup = optarg; break;
		case OPT_LOOKUP_CONNS:
			so.lookup_conns = (int)strtol(optarg, NULL, 10);
			break;
		case OPT_LOOKUP_RATE:
			so.lookup_rate = strtod(optarg, NULL);
			break;
		default: return 2;
		}
	}
	if (o.ca == NULL || o.ncert != o.nkey || o.conns < 1 || o.conns > MAX_CONNS ||
	    o.seconds < 1 || o.random_n < 0 || strlen(o.path) > 200 ||
	    strlen(o.ctype) > 100 || strpbrk(o.ctype, "\r\n") != NULL ||
	    (o.header != NULL && (strlen(o.header) > 200 ||
	    strpbrk(o.header, "\r\n") != NULL)) ||
	    o.idle < 0 || o.idle > 1000000 || idl.sources < 0 ||
	    idl.sources > 250 || idl.threads < 1 || idl.threads > 256) {
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
	if (so.mint > 0)
		return mint();
	if (so.file != NULL)
		return soak();
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
