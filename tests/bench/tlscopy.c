/*
 * tlscopy.c - the baseline for dchat's file transfer: N bytes copied over
 * one loopback TCP connection with TLS 1.3 as dchat's peers speak it
 * (TLS_AES_256_GCM_SHA384, both sides presenting a certificate and
 * verifying the other's against one CA), with large buffers and nothing
 * else to do: no framing, no file, no event loop.
 *
 *   tlscopy --cert C --key K --peer-cert C2 --peer-key K2 --ca CA
 *           --bytes N [--buf BYTES]
 *
 * The server (the listener, like the receiving dchat) presents --cert,
 * the client (the dialer, like the sending dchat) --peer-cert.  The client
 * writes N bytes from memory, --buf (256 KiB) per SSL_write; the server,
 * in a thread, reads them with SSL_read into a buffer of the same size.
 * Prints one JSON line: {"bytes": N, "seconds": S, "mb_per_s": X}, timed
 * from the first byte read at the server to the last.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define SUITE "TLS_AES_256_GCM_SHA384"

struct opts {
	const char *cert, *key, *peer_cert, *peer_key, *ca;
	long long bytes;
	size_t buf;
};

/* What the server thread is given and hands back. */
struct server {
	SSL_CTX *ctx;
	int fd;
	long long bytes;
	size_t buf;
	long long got;
	double seconds;
	int ok;
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
append(char *buf, size_t size, const char *a, const char *b)
{
	size_t n = strlen(buf);

	snprintf(buf + n, size - n, "%s%s", a, b);
}

/*
 * One line on stderr, written at once (both sides may fail together):
 * what failed, then why: OpenSSL's reasons (its error queue is per
 * thread, so each side reports its own), the verify result if the other
 * side's certificate was refused, or what the socket said.  r is what
 * the failing SSL call returned (1 for none).
 */
static void
fail(const char *side, const char *what, SSL *ssl, int r)
{
	char msg[1024];
	unsigned long e;
	const char *why;
	long v;
	int saved = errno, said = 0;

	snprintf(msg, sizeof(msg), "tlscopy: %s: %s", side, what);
	while ((e = ERR_get_error()) != 0) {
		if ((why = ERR_reason_error_string(e)) == NULL)
			why = "unknown OpenSSL error";
		append(msg, sizeof(msg), ": ", why);
		said = 1;
	}
	if (ssl != NULL && (v = SSL_get_verify_result(ssl)) != X509_V_OK) {
		append(msg, sizeof(msg),
		    SSL_is_server(ssl) ? " (client certificate: " :
					 " (server certificate: ",
		    X509_verify_cert_error_string(v));
		append(msg, sizeof(msg), ")", "");
	} else if (!said && ssl != NULL && r != 1) {
		switch (SSL_get_error(ssl, r)) {
		case SSL_ERROR_ZERO_RETURN:
			append(msg, sizeof(msg), ": ",
			    "the other side closed the session");
			break;
		case SSL_ERROR_SYSCALL:
			append(msg, sizeof(msg), ": ",
			    saved ? strerror(saved) : "connection closed");
			break;
		}
	}
	fprintf(stderr, "%s\n", msg);
}

/* A context as dchat's peers set one up (client/peertls.c), minus policy. */
static SSL_CTX *
new_ctx(int server, const char *cert, const char *key, const char *ca)
{
	const SSL_METHOD *method = server ? TLS_server_method() :
					    TLS_client_method();
	const char *side = server ? "server" : "client";
	SSL_CTX *ctx;

	if ((ctx = SSL_CTX_new(method)) == NULL)
		goto err;
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_ciphersuites(ctx, SUITE) != 1)
		goto err;
	/*
	 * No session tickets: dchat sends none, and a ticket the client
	 * never reads would be unread data on its socket when it closes.
	 */
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_num_tickets(ctx, 0);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		fprintf(stderr, "tlscopy: %s: cannot load certificate %s\n",
		    side, cert);
		goto err;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		fprintf(stderr,
		    "tlscopy: %s: cannot load key %s (or it is "
		    "not the certificate's)\n",
		    side, key);
		goto err;
	}
	if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
		fprintf(stderr, "tlscopy: cannot load CA file %s\n", ca);
		goto err;
	}
	SSL_CTX_set_verify(ctx,
	    SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	/*
	 * Both ends check the other for the TLS client purpose, as dchat
	 * does: its user certificates carry clientAuth, never serverAuth.
	 */
	if (SSL_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT) != 1)
		goto err;
	return ctx;
err:
	ERR_print_errors_fp(stderr);
	SSL_CTX_free(ctx);
	return NULL;
}

static void *
serve(void *arg)
{
	struct server *s = arg;
	SSL *ssl = NULL;
	unsigned char *buf = NULL;
	double t0 = 0;
	char what[80];
	int n;

	errno = 0;
	if ((buf = malloc(s->buf)) == NULL) {
		fail("server", "out of memory", NULL, 1);
		goto err;
	}
	if ((ssl = SSL_new(s->ctx)) == NULL || SSL_set_fd(ssl, s->fd) != 1) {
		fail("server", "SSL_new", NULL, 1);
		goto err;
	}
	if ((n = SSL_accept(ssl)) != 1) {
		fail("server", "handshake failed", ssl, n);
		goto err;
	}
	while (s->got < s->bytes) {
		/*
		 * One record (16 KiB at most) per call; the buffer is large
		 * so that it never is what limits a read.
		 */
		n = SSL_read(ssl, buf, (int)s->buf);
		if (n <= 0) {
			snprintf(what, sizeof(what),
			    "copy ended after %lld of %lld bytes", s->got,
			    s->bytes);
			fail("server", what, ssl, n);
			goto err;
		}
		/*
		 * The clock starts once the first record is in: the copy,
		 * not the handshake or the client's start.  That record
		 * (16 KiB of N) is counted but not timed.
		 */
		if (s->got == 0)
			t0 = now_s();
		s->got += n;
	}
	s->seconds = now_s() - t0;
	if (s->got != s->bytes) {
		fprintf(stderr, "tlscopy: server: got %lld bytes, not %lld\n",
		    s->got, s->bytes);
		goto err;
	}
	s->ok = 1;
	SSL_shutdown(ssl);
err:
	SSL_free(ssl);
	/*
	 * Closed here, not after the join: a client still writing (its
	 * handshake ends before ours, so it may be writing when we refuse
	 * its certificate) gets a reset instead of filling our buffer.
	 */
	close(s->fd);
	s->fd = -1;
	free(buf);
	return NULL;
}

/* The client's part: the handshake, then N bytes in large writes. */
static int
send_all(SSL_CTX *ctx, int fd, long long bytes, size_t bufsize)
{
	SSL *ssl = NULL;
	unsigned char *buf = NULL;
	long long left = bytes;
	int n, want, ok = 0;

	errno = 0;
	/* The content does not matter to AES-GCM's speed; not zeros only. */
	if ((buf = malloc(bufsize)) == NULL) {
		fail("client", "out of memory", NULL, 1);
		goto err;
	}
	for (size_t i = 0; i < bufsize; i++)
		buf[i] = (unsigned char)(i * 2654435761u >> 24);
	if ((ssl = SSL_new(ctx)) == NULL || SSL_set_fd(ssl, fd) != 1) {
		fail("client", "SSL_new", NULL, 1);
		goto err;
	}
	if ((n = SSL_connect(ssl)) != 1) {
		fail("client", "handshake failed", ssl, n);
		goto err;
	}
	if (strcmp(SSL_get_cipher_name(ssl), SUITE) != 0) {
		fprintf(stderr, "tlscopy: negotiated %s, not %s\n",
		    SSL_get_cipher_name(ssl), SUITE);
		goto err;
	}
	while (left > 0) {
		want = left < (long long)bufsize ? (int)left : (int)bufsize;
		/* Without partial writes, this returns once all of it went. */
		if ((n = SSL_write(ssl, buf, want)) <= 0) {
			fail("client", "write failed", ssl, n);
			goto err;
		}
		left -= n;
	}
	SSL_shutdown(ssl);
	ok = 1;
err:
	SSL_free(ssl);
	free(buf);
	return ok;
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: tlscopy --cert C --key K --peer-cert C2 --peer-key K2 "
	    "--ca CA\n"
	    "               --bytes N [--buf BYTES]\n");
	exit(2);
}

static void
parse(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "cert", required_argument, NULL, 'c' },
		{ "key", required_argument, NULL, 'k' },
		{ "peer-cert", required_argument, NULL, 'C' },
		{ "peer-key", required_argument, NULL, 'K' },
		{ "ca", required_argument, NULL, 'a' },
		{ "bytes", required_argument, NULL, 'n' },
		{ "buf", required_argument, NULL, 'b' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	long long v;
	int ch;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->cert = optarg;
			break;
		case 'k':
			o->key = optarg;
			break;
		case 'C':
			o->peer_cert = optarg;
			break;
		case 'K':
			o->peer_key = optarg;
			break;
		case 'a':
			o->ca = optarg;
			break;
		case 'n':
		case 'b':
			errno = 0;
			v = strtoll(optarg, &end, 10);
			if (errno != 0 || end == optarg || *end != '\0' ||
			    v <= 0) {
				fprintf(stderr, "tlscopy: bad number: %s\n",
				    optarg);
				exit(2);
			}
			if (ch == 'n') {
				o->bytes = v;
			} else if (v > 1 << 30) {
				/* SSL_read and SSL_write take an int. */
				fprintf(stderr, "tlscopy: --buf too large\n");
				exit(2);
			} else {
				o->buf = (size_t)v;
			}
			break;
		default:
			usage();
		}
	}
	if (optind != argc || !o->cert || !o->key || !o->peer_cert ||
	    !o->peer_key || !o->ca || o->bytes == 0)
		usage();
}

int
main(int argc, char **argv)
{
	struct opts o = { .buf = 256 * 1024 };
	struct server s = { .fd = -1 };
	SSL_CTX *cctx = NULL;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t salen = sizeof(sa);
	pthread_t tid;
	int lfd = -1, cfd = -1, sent, rc = 1;

	parse(argc, argv, &o);
	/* A peer gone mid-write is an error to report, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	if ((s.ctx = new_ctx(1, o.cert, o.key, o.ca)) == NULL ||
	    (cctx = new_ctx(0, o.peer_cert, o.peer_key, o.ca)) == NULL)
		goto err;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((lfd = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    listen(lfd, 1) == -1 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &salen) == -1 ||
	    (cfd = socket(AF_INET, SOCK_STREAM, 0)) == -1) {
		perror("tlscopy: listener on 127.0.0.1");
		goto err;
	}
	/*
	 * The kernel completes a loopback connect from the backlog, so the
	 * connection is accepted here before the server thread starts and
	 * neither side can wait for one that never comes.
	 */
	if (connect(cfd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    (s.fd = accept(lfd, NULL, NULL)) == -1) {
		perror("tlscopy: connecting on 127.0.0.1");
		goto err;
	}
	s.bytes = o.bytes;
	s.buf = o.buf;
	if ((errno = pthread_create(&tid, NULL, serve, &s)) != 0) {
		perror("tlscopy: pthread_create");
		goto err;
	}
	sent = send_all(cctx, cfd, o.bytes, o.buf);
	/* A client that gave up must not leave the server reading. */
	if (!sent)
		shutdown(cfd, SHUT_RDWR);
	pthread_join(tid, NULL);
	if (!sent || !s.ok)
		goto err;
	printf("{\"bytes\": %lld, \"seconds\": %.6f, \"mb_per_s\": %.1f}\n",
	    o.bytes, s.seconds,
	    s.seconds > 0 ? (double)o.bytes / 1e6 / s.seconds : 0.0);
	rc = 0;
err:
	if (cfd != -1)
		close(cfd);
	if (s.fd != -1)
		close(s.fd);
	if (lfd != -1)
		close(lfd);
	SSL_CTX_free(cctx);
	SSL_CTX_free(s.ctx);
	return rc;
}
