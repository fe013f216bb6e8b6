/*
 * irp_client.c - IRP over HTTPS with libcurl and jansson.
 *
 * One CURL easy handle per client: curl_easy_reset() between requests
 * keeps its connection cache, so consecutive calls reuse one kept-alive
 * TLS connection (dird does not resume sessions; a new handshake per call
 * costs fifty times the request).
 */
#include <arpa/inet.h>

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/buffer.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "irp_client.h"
#include "irp_dns.h"
#include "irp_internal.h"

struct irp_client {
	CURL *curl;
	char *server;
	char *ca_path;
	char *cert_path;
	char *key_path;
	/* "host:port:addr,..." when the server's name was resolved here. */
	struct curl_slist *resolve;
	/* The pinned CA as PEM text instead of a file (irp_client_new_pem). */
	char *ca_pem;
	/* A registry asking another on its users' behalf (federation). */
	char *from_domain;
	X509 *chain; /* sent after the client certificate */
	long timeout; /* seconds for a whole call; 0: the default */
	const atomic_int *stop; /* irp_client_set_stop */
	irp_pending_fn *pending; /* irp_client_on_pending */
	void *pending_arg;
};

/* A response body, refused beyond limit so a broken server can't fill us. */
struct buf {
	unsigned char *data;
	size_t len;
	size_t cap;
	size_t limit;
};

/* The body of a request as curl reads it (for PUT/POST of raw data). */
struct req {
	const char *method;
	const char *path;
	const char *ctype;	/* NULL: no body */
	const void *body;
	size_t body_len;
	const char *bearer;	/* Authorization: Bearer */
	const char *basic_user; /* with basic_pass: HTTP Basic */
	const char *basic_pass;
	int use_cert;
	int insecure; /* only irp_fetch_ca: no trust yet */
	int no_cache; /* Cache-Control: no-cache (an answer afresh) */
	const char *msg_id; /* IRP-Message-Id: a post to an inbox */
	const char *sender; /* IRP-Sender: whose post a registry relays */
	size_t limit;
	long timeout; /* seconds for the whole call; 0: the default */
	int long_poll; /* silent until its timeout: no low-speed limit */
};

static CURLcode registry_ctx(CURL *, void *, void *);
static struct irp_client *client_new(const char *server, const char *ca_path,
    const char *ca_pem, const char *cert_path, const char *key_path,
    struct irp_err *err);

static size_t
write_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct buf *b = arg;
	size_t n = size * nmemb, ncap;
	unsigned char *p;

	if (n > b->limit - b->len || b->len > b->limit)
		return 0; /* curl turns this into CURLE_WRITE_ERROR */
	if (b->len + n + 1 > b->cap) {
		ncap = b->cap ? b->cap : 4096;
		while (ncap < b->len + n + 1)
			ncap *= 2;
		if ((p = realloc(b->data, ncap)) == NULL)
			return 0;
		b->data = p;
		b->cap = ncap;
	}
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0'; /* JSON and PEM callers want a C string */
	return n;
}

static char *
xstrdup_opt(const char *s, int *fail)
{
	char *d;

	if (s == NULL)
		return NULL;
	if ((d = strdup(s)) == NULL)
		*fail = 1;
	return d;
}

struct irp_client *
irp_client_new(const char *server, const char *ca_path, const char *cert_path,
    const char *key_path, struct irp_err *err)
{
	return client_new(server, ca_path, NULL, cert_path, key_path, err);
}

struct irp_client *
irp_client_new_pem(const char *server, const char *ca_pem,
    const char *cert_path, const char *key_path, struct irp_err *err)
{
	if (ca_pem == NULL) {
		irp_seterr(err, 0, "usage", "a pinned CA is required");
		return NULL;
	}
	return client_new(server, NULL, ca_pem, cert_path, key_path, err);
}

int
irp_client_as_registry(struct irp_client *c, const char *domain,
    const char *chain_pem, struct irp_err *err)
{
	BIO *bio = NULL;
	X509 *x = NULL;

	if (chain_pem != NULL &&
	    ((bio = BIO_new_mem_buf(chain_pem, -1)) == NULL ||
		(x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL)) {
		BIO_free(bio);
		irp_seterr(err, 0, "usage", "the chain to present is no PEM "
		    "certificate");
		return -1;
	}
	BIO_free(bio);
	free(c->from_domain);
	X509_free(c->chain);
	c->chain = x;
	if ((c->from_domain = strdup(domain)) == NULL) {
		irp_seterr(err, 0, "memory", "out of memory");
		return -1;
	}
	return 0;
}

void
irp_client_set_timeout(struct irp_client *c, int seconds)
{
	c->timeout = seconds > 0 ? seconds : 0;
}

static struct irp_client *
client_new(const char *server, const char *ca_path, const char *ca_pem,
    const char *cert_path, const char *key_path, struct irp_err *err)
{
	struct irp_client *c = NULL;
	int fail = 0;

	if (server == NULL || strncmp(server, "https://", 8) != 0) {
		irp_seterr(err, 0, "usage", "the registry address must start with "
		    "https:// (for example https://dir.example.org:4604)");
		return NULL;
	}
	if ((ca_path == NULL && ca_pem == NULL) ||
	    (cert_path == NULL) != (key_path == NULL)) {
		irp_seterr(err, 0, "usage", "a pinned CA is required, and a client "
		    "certificate needs its key");
		return NULL;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		irp_seterr(err, 0, "transport", "libcurl failed to initialise");
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto err;
	c->server = xstrdup_opt(server, &fail);
	c->ca_path = xstrdup_opt(ca_path, &fail);
	c->ca_pem = xstrdup_opt(ca_pem, &fail);
	c->cert_path = xstrdup_opt(cert_path, &fail);
	c->key_path = xstrdup_opt(key_path, &fail);
	if (fail || (c->curl = curl_easy_init()) == NULL)
		goto err;
	/* A trailing slash would make "//v1/..." paths. */
	while (strlen(c->server) > 8 && c->server[strlen(c->server) - 1] == '/')
		c->server[strlen(c->server) - 1] = '\0';
	return c;
err:
	irp_seterr(err, 0, "memory", "out of memory");
	if (c == NULL)
		curl_global_cleanup();
	irp_client_free(c);
	return NULL;
}

int
irp_client_reconnect(struct irp_client *c)
{
	CURL *n;

	if ((n = curl_easy_init()) == NULL)
		return -1;
	curl_easy_cleanup(c->curl);
	c->curl = n;
	return 0;
}

void
irp_client_free(struct irp_client *c)
{
	if (c == NULL)
		return;
	if (c->curl)
		curl_easy_cleanup(c->curl);
	free(c->server);
	free(c->ca_path);
	free(c->cert_path);
	free(c->key_path);
	free(c->ca_pem);
	free(c->from_domain);
	X509_free(c->chain);
	curl_slist_free_all(c->resolve);
	free(c);
	curl_global_cleanup();
}

/*
 * The host and port of server ("https://HOST[:PORT]", HOST possibly a
 * bracketed IPv6 literal); -1 when it has not that shape.
 */
static int
server_host(const char *server, char *host, size_t hostlen, unsigned *port)
{
	const char *h = server + strlen("https://"), *end, *colon;
	size_t len;

	if (strncmp(server, "https://", 8) != 0)
		return -1;
	if (*h == '[') {
		if ((end = strchr(h, ']')) == NULL)
			return -1;
		colon = end[1] == ':' ? end + 1 : NULL;
		end++;
	} else {
		end = h + strcspn(h, ":/");
		colon = *end == ':' ? end : NULL;
	}
	len = (size_t)(end - h);
	if (len == 0 || len >= hostlen)
		return -1;
	memcpy(host, h, len);
	host[len] = '\0';
	*port = IRP_PORT;
	if (colon != NULL) {
		char *e;
		unsigned long p = strtoul(colon + 1, &e, 10);

		if (e == colon + 1 || p == 0 || p > 65535 || (*e != '\0' && *e != '/'))
			return -1;
		*port = (unsigned)p;
	}
	return 0;
}

int
irp_client_use_dns(struct irp_client *c, struct irp_dns *dns,
    struct irp_err *err)
{
	char host[IRP_HOST_MAX], addrs[IRP_DNS_RR_MAX][46];
	char entry[IRP_HOST_MAX + 16 + IRP_DNS_RR_MAX * 48];
	struct curl_slist *l;
	unsigned char tmp[16];
	unsigned port;
	size_t n, i, off;

	if (server_host(c->server, host, sizeof(host), &port) == -1) {
		irp_seterr(err, 0, "usage", "cannot read a host name in %s",
		    c->server);
		return -1;
	}
	/* An address literal needs no resolving. */
	if (host[0] == '[' || inet_pton(AF_INET, host, tmp) == 1)
		return 0;
	if (irp_dns_addrs(dns, host, addrs, IRP_DNS_RR_MAX, &n, NULL, err) == -1)
		return -1;
	off = (size_t)snprintf(entry, sizeof(entry), "%s:%u:", host, port);
	for (i = 0; i < n && off < sizeof(entry); i++)
		off += (size_t)snprintf(entry + off, sizeof(entry) - off,
		    strchr(addrs[i], ':') ? "%s[%s]" : "%s%s", i ? "," : "",
		    addrs[i]);
	if ((l = curl_slist_append(NULL, entry)) == NULL) {
		irp_seterr(err, 0, "memory", "out of memory");
		return -1;
	}
	curl_slist_free_all(c->resolve);
	c->resolve = l;
	return 0;
}

/* Advice for the transport errors people actually meet. */
static void
curl_err(struct irp_err *err, CURLcode rc, const char *server,
    const char *detail)
{
	const char *advice;

	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
		advice = "the registry's host name does not resolve; check the "
		    "server address";
		break;
	case CURLE_COULDNT_CONNECT:
		advice = "nothing answers there; is dird running, and are host "
		    "and port (default 4604) right?";
		break;
	case CURLE_OPERATION_TIMEDOUT:
		advice = "the registry did not answer in time; check the "
		    "network or try again later";
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
		advice = "the server's certificate is not signed by the pinned "
		    "DIR CA (or does not name this host): wrong server, or "
		    "the registry changed its CA";
		break;
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
		advice = "the local certificate, key or CA file can not be "
		    "used; run 'dchat init' again or check the files";
		break;
	case CURLE_SSL_CONNECT_ERROR:
		advice = "the TLS handshake failed; the registry may have "
		    "refused the client certificate";
		break;
	case CURLE_WRITE_ERROR:
		advice = "the answer was larger than allowed";
		break;
	default:
		advice = curl_easy_strerror(rc);
		break;
	}
	irp_seterr(err, 0, "transport", "%s: %s%s%s%s", server, advice,
	    detail && *detail ? " (" : "", detail && *detail ? detail : "",
	    detail && *detail ? ")" : "");
}

/* curl asks about once a second, also while nothing arrives. */
static int
stop_cb(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
    curl_off_t ulnow)
{
	struct irp_client *c = arg;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return atomic_load(c->stop) != 0;
}

void
irp_client_set_stop(struct irp_client *c, const atomic_int *stop)
{
	c->stop = stop;
}

/*
 * Perform one request.  *out receives the body whatever the status; the
 * return is the HTTP status, or -1 with err filled on a transport error.
 */
static long
perform(struct irp_client *c, const struct req *r, struct buf *out,
    struct irp_err *err)
{
	CURL *curl = c->curl;
	const char *server = c->server, *ca_path = c->ca_path;
	const char *cert_path = c->cert_path, *key_path = c->key_path;
	struct curl_slist *hdr = NULL, *h;
	char url[2048], auth[600], errbuf[CURL_ERROR_SIZE] = "";
	CURLcode rc = CURLE_OK;
	long status = -1, timeout;

	out->limit = r->limit;
	timeout = r->timeout > 0 ? r->timeout : c->timeout;
	if ((size_t)snprintf(url, sizeof(url), "%s%s", server, r->path) >=
	    sizeof(url)) {
		irp_seterr(err, 0, "usage", "request URL too long");
		return -1;
	}
	curl_easy_reset(curl);
#define SET(opt, val) \
	if (rc == CURLE_OK) \
	rc = curl_easy_setopt(curl, opt, val)
	SET(CURLOPT_URL, url);
	if (c->resolve != NULL)
		SET(CURLOPT_RESOLVE, c->resolve);
	SET(CURLOPT_PROTOCOLS_STR, "https");
	SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	SET(CURLOPT_CONNECTTIMEOUT, timeout > 0 && timeout < 10 ? timeout :
	    10L);
	SET(CURLOPT_TIMEOUT, timeout > 0 ? timeout : 120L);
	/* A connection that went dead (our address vanished, the server's
	 * machine is gone) stalls; give up on it after 15 s of silence
	 * rather than at the overall timeout: dchat waits on us. */
	SET(CURLOPT_LOW_SPEED_LIMIT, 1L);
	SET(CURLOPT_LOW_SPEED_TIME, r->long_poll ? timeout : 15L);
	SET(CURLOPT_NOSIGNAL, 1L);
	if (c->stop != NULL) {
		SET(CURLOPT_NOPROGRESS, 0L);
		SET(CURLOPT_XFERINFOFUNCTION, stop_cb);
		SET(CURLOPT_XFERINFODATA, c);
	}
	SET(CURLOPT_ERRORBUFFER, errbuf);
	SET(CURLOPT_WRITEFUNCTION, write_cb);
	SET(CURLOPT_WRITEDATA, out);
	SET(CURLOPT_CUSTOMREQUEST, r->method);
	SET(CURLOPT_USERAGENT, "dchat-irp/1");
	if (r->insecure) {
		/* Only for fetching the CA, which is then pinned by hash. */
		SET(CURLOPT_SSL_VERIFYPEER, 0L);
		SET(CURLOPT_SSL_VERIFYHOST, 0L);
	} else {
		if (c->ca_pem != NULL) {
			struct curl_blob blob = { c->ca_pem, strlen(c->ca_pem),
				CURL_BLOB_COPY };

			SET(CURLOPT_CAINFO_BLOB, &blob);
			SET(CURLOPT_CAINFO, (char *)NULL);
		} else
			SET(CURLOPT_CAINFO, ca_path);
		/* The pinned CA only: ignore the system's trust directory. */
		SET(CURLOPT_CAPATH, (char *)NULL);
		SET(CURLOPT_SSL_CTX_FUNCTION, registry_ctx);
		SET(CURLOPT_SSL_CTX_DATA, c);
	}
	if (r->use_cert && cert_path) {
		SET(CURLOPT_SSLCERT, cert_path);
		SET(CURLOPT_SSLKEY, key_path);
	}
	if (strcmp(r->method, "GET") == 0)
		SET(CURLOPT_HTTPGET, 1L);
	if (r->ctype) {
		SET(CURLOPT_POSTFIELDS, (const char *)r->body);
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
	}
	if (r->basic_user) {
		SET(CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		SET(CURLOPT_USERNAME, r->basic_user);
		SET(CURLOPT_PASSWORD, r->basic_pass);
	}
#undef SET
	if (rc != CURLE_OK) {
		curl_err(err, rc, server, "setting up the request");
		goto err;
	}
	if (r->ctype) {
		snprintf(auth, sizeof(auth), "Content-Type: %s", r->ctype);
		if ((h = curl_slist_append(hdr, auth)) == NULL)
			goto nomem;
		hdr = h;
	}
	/* No "Expect: 100-continue" round trip for uploads. */
	if ((h = curl_slist_append(hdr, "Expect:")) == NULL)
		goto nomem;
	hdr = h;
	if (r->no_cache) {
		if ((h = curl_slist_append(hdr, "Cache-Control: no-cache")) ==
		    NULL)
			goto nomem;
		hdr = h;
	}
	if (r->msg_id != NULL) {
		snprintf(auth, sizeof(auth), "IRP-Message-Id: %s", r->msg_id);
		if ((h = curl_slist_append(hdr, auth)) == NULL)
			goto nomem;
		hdr = h;
	}
	if (r->sender != NULL) {
		snprintf(auth, sizeof(auth), "IRP-Sender: %s", r->sender);
		if ((h = curl_slist_append(hdr, auth)) == NULL)
			goto nomem;
		hdr = h;
	}
	if (c->from_domain != NULL) {
		snprintf(auth, sizeof(auth), "IRP-Domain: %s", c->from_domain);
		if ((h = curl_slist_append(hdr, auth)) == NULL)
			goto nomem;
		hdr = h;
	}
	if (r->bearer) {
		if ((size_t)snprintf(auth, sizeof(auth),
		    "Authorization: Bearer %s", r->bearer) >= sizeof(auth)) {
			irp_seterr(err, 0, "usage", "code too long");
			goto err;
		}
		h = curl_slist_append(hdr, auth);
		OPENSSL_cleanse(auth, sizeof(auth));
		if (h == NULL)
			goto nomem;
		hdr = h;
	}
	if ((rc = curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdr)) != CURLE_OK) {
		curl_err(err, rc, server, "");
		goto err;
	}
	if ((rc = curl_easy_perform(curl)) != CURLE_OK) {
		curl_err(err, rc, server, errbuf);
		goto err;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	goto err; /* shared cleanup; status says how it went */
nomem:
	irp_seterr(err, 0, "memory", "out of memory");
err:
	/* The headers may hold a code: wipe before they go back to malloc. */
	for (h = hdr; h; h = h->next)
		OPENSSL_cleanse(h->data, strlen(h->data));
	curl_slist_free_all(hdr);
	/* curl keeps pointers to our strings; forget them before we return. */
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, (char *)NULL);
	return status;
}

/* A request that expects `want`; anything else becomes err. */
static int
call(struct irp_client *c, const struct req *r, long want, struct buf *out,
    struct irp_err *err)
{
	long st;

	st = perform(c, r, out, err);
	if (st < 0)
		return -1;
	if (st != want) {
		irp_parse_error((const char *)out->data, out->len, st, err);
		return -1;
	}
	return 0;
}

static void
buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

/* Normalise a hex fingerprint: drop ':' and spaces, lower case. */
static int
fp_normalize(const char *in, char out[IRP_FP_MAX])
{
	size_t n = 0;

	for (; *in; in++) {
		if (*in == ':' || *in == ' ')
			continue;
		if (!isxdigit((unsigned char)*in) || n >= IRP_FP_MAX - 1)
			return -1;
		out[n++] = (char)tolower((unsigned char)*in);
	}
	out[n] = '\0';
	return n == IRP_FP_MAX - 1 ? 0 : -1;
}

/*
 * The body of GET /v1/ca must be exactly one PEM certificate, with
 * nothing but white space around it: curl and OpenSSL would trust every
 * certificate in the file we store, so a second one appended by someone
 * in the path would become a trust anchor without being checked.  On
 * success *der (OPENSSL_free) holds the certificate's DER.
 */
/*
 * The registry's certificate is signed by the same CA as every user's.
 * A user certificate is never the registry: it names a user (UID) and,
 * since user certificates lost serverAuth, curl's purpose check refuses
 * new ones anyway; this also refuses those issued before that, whose
 * holder could otherwise answer in the registry's place when the host
 * name matches the certificate's CN.
 */
static int
registry_verify_cb(int ok, X509_STORE_CTX *sctx)
{
	X509 *x;
	int i;

	if (!ok || X509_STORE_CTX_get_error_depth(sctx) != 0)
		return ok;
	if ((x = X509_STORE_CTX_get_current_cert(sctx)) == NULL)
		return 0;
	i = X509_NAME_get_index_by_NID(X509_get_subject_name(x), NID_userId,
	    -1);
	if (i >= 0 || !(X509_get_extended_key_usage(x) & XKU_SSL_SERVER)) {
		X509_STORE_CTX_set_error(sctx, X509_V_ERR_INVALID_PURPOSE);
		return 0;
	}
	return 1;
}

static CURLcode
registry_ctx(CURL *curl, void *sslctx, void *arg)
{
	struct irp_client *c = arg;

	(void)curl;
	SSL_CTX_set_verify(sslctx, SSL_VERIFY_PEER, registry_verify_cb);
	/*
	 * A registry asking another sends its CA after its certificate:
	 * the other side holds a rule about that CA (a pin or DANE), not
	 * the CA itself.
	 */
	if (c != NULL && c->chain != NULL &&
	    SSL_CTX_add1_chain_cert(sslctx, c->chain) != 1)
		return CURLE_SSL_CERTPROBLEM;
	return CURLE_OK;
}

static int
one_pem_cert(const unsigned char *body, size_t len, unsigned char **der,
    long *der_len)
{
	const unsigned char *p;
	char *name = NULL, *header = NULL;
	unsigned char *data = NULL;
	BIO *bio = NULL;
	X509 *x = NULL;
	long n = 0;
	char rest;
	int rv = -1;

	*der = NULL;
	if (len > INT_MAX || (bio = BIO_new_mem_buf(body, (int)len)) == NULL ||
	    PEM_read_bio(bio, &name, &header, &data, &n) != 1 ||
	    strcmp(name, PEM_STRING_X509) != 0 || header[0] != '\0')
		goto err;
	/* One DER certificate that spans the whole block. */
	p = data;
	if ((x = d2i_X509(NULL, &p, n)) == NULL || p != data + n)
		goto err;
	/* After the END line: white space only. */
	while (BIO_read(bio, &rest, 1) == 1)
		if (!isspace((unsigned char)rest))
			goto err;
	*der = data;
	*der_len = n;
	data = NULL;
	rv = 0;
err:
	ERR_clear_error();
	X509_free(x);
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(data);
	BIO_free(bio);
	return rv;
}

int
irp_fetch_ca_der(const char *server, struct irp_dns *dns, int timeout,
    unsigned char **der, size_t *der_len, struct irp_err *err)
{
	struct irp_client *c = NULL;
	struct buf b = { 0 };
	struct req r = { .method = "GET", .path = "/v1/ca", .insecure = 1,
		.limit = 64 * 1024, .timeout = timeout };
	unsigned char *d = NULL;
	long n = 0;
	int rv = -1;

	*der = NULL;
	*der_len = 0;
	/* ca_path is a placeholder: this one request does not verify. */
	if ((c = irp_client_new(server, "-", NULL, NULL, err)) == NULL)
		return -1;
	if ((dns != NULL && irp_client_use_dns(c, dns, err) == -1) ||
	    call(c, &r, 200, &b, err) == -1)
		goto err;
	if (one_pem_cert(b.data, b.len, &d, &n) == -1) {
		irp_seterr(err, 200, "bad_ca", "%s/v1/ca did not return exactly "
		    "one PEM certificate: refusing it (wrong server, or "
		    "someone in between)", server);
		goto err;
	}
	if ((*der = malloc((size_t)n)) == NULL) {
		irp_seterr(err, 0, "memory", "out of memory");
		goto err;
	}
	memcpy(*der, d, (size_t)n);
	*der_len = (size_t)n;
	rv = 0;
err:
	OPENSSL_free(d);
	buf_free(&b);
	irp_client_free(c);
	return rv;
}

int
irp_fetch_ca(const char *server, struct irp_dns *dns,
    const char *expected_sha256_hex, char **pem, struct irp_err *err)
{
	char want[IRP_FP_MAX], got[IRP_FP_MAX];
	unsigned char md[EVP_MAX_MD_SIZE], *der = NULL;
	unsigned int mdlen = 0, i;
	BIO *out = NULL;
	BUF_MEM *mem;
	size_t der_len = 0;
	int rv = -1;

	*pem = NULL;
	if (fp_normalize(expected_sha256_hex, want) == -1) {
		irp_seterr(err, 0, "usage", "the CA fingerprint must be 64 hex "
		    "digits (SHA-256), as 'dirctl ca' prints it");
		return -1;
	}
	if (irp_fetch_ca_der(server, dns, 0, &der, &der_len, err) == -1)
		return -1;
	if (EVP_Digest(der, der_len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != 32) {
		irp_seterr(err, 0, "memory", "cannot compute a digest");
		goto err;
	}
	for (i = 0; i < mdlen; i++)
		snprintf(got + 2 * i, 3, "%02x", md[i]);
	if (strcmp(got, want) != 0) {
		irp_seterr(err, 200, "fingerprint_mismatch", "the registry's CA "
		    "has fingerprint %s, not the one you were given: refusing "
		    "it (wrong server, or someone in between)", got);
		goto err;
	}
	/* What is stored is the certificate that was checked, nothing else. */
	if ((out = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio(out, PEM_STRING_X509, "", der, (long)der_len) <= 0 ||
	    BIO_get_mem_ptr(out, &mem) != 1 ||
	    (*pem = malloc(mem->length + 1)) == NULL) {
		irp_seterr(err, 0, "memory", "out of memory");
		goto err;
	}
	memcpy(*pem, mem->data, mem->length);
	(*pem)[mem->length] = '\0';
	rv = 0;
err:
	BIO_free(out);
	free(der);
	return rv;
}

void
irp_client_on_pending(struct irp_client *c, irp_pending_fn *fn, void *arg)
{
	c->pending = fn;
	c->pending_arg = arg;
}

/* The Retry-After of the last answer, within 1 s and an hour; or 30. */
static int
retry_after(struct irp_client *c)
{
	struct curl_header *h;
	long secs;
	char *end;

	if (curl_easy_header(c->curl, "Retry-After", 0, CURLH_HEADER, -1,
		&h) != CURLHE_OK)
		return 30;
	secs = strtol(h->value, &end, 10);
	if (end == h->value || *end != '\0')
		return 30;
	return secs < 1 ? 1 : secs > 3600 ? 3600 : (int)secs;
}

/* Sleep secs seconds, or until irp_client_set_stop's flag is set. */
static int
nap(struct irp_client *c, int secs)
{
	struct timespec ts = { 0, 100 * 1000 * 1000 };
	int i;

	for (i = 0; i < secs * 10; i++) {
		if (c->stop != NULL && atomic_load(c->stop) != 0)
			return -1;
		nanosleep(&ts, NULL);
	}
	return 0;
}

/*
 * An enrolment answered 202 (b: the pending request): ask at GET
 * /v1/requests/TOKEN, as often as the registry says, until an
 * administrator decided; the certificate into out.
 */
static int
wait_decision(struct irp_client *c, struct buf *b, struct irp_cert *out,
    struct irp_err *err)
{
	char path[sizeof("/v1/requests/") + IRP_TOKEN_LEN];
	struct irp_pending p;
	json_t *root;
	long st;
	int secs;

	if ((root = json_loadb((const char *)b->data, b->len, 0, NULL)) ==
	    NULL) {
		irp_seterr(err, 202, "bad_reply", "the registry's answer to "
		    "the enrolment is not JSON");
		return -1;
	}
	if (irp_pending_parse(root, &p, err) == -1) {
		json_decref(root);
		return -1;
	}
	json_decref(root);
	snprintf(path, sizeof(path), "/v1/requests/%s", p.request);
	for (;;) {
		struct req q = { .method = "GET", .path = path,
			.limit = IRP_BODY_MAX };

		secs = retry_after(c);
		if (c->pending != NULL &&
		    c->pending(c->pending_arg, p.request, secs,
			p.expires_at) == -1) {
			irp_seterr(err, 0, "stopped", "stopped waiting for an "
			    "administrator's decision");
			return -1;
		}
		if (nap(c, secs) == -1) {
			irp_seterr(err, 0, "stopped", "stopped waiting for an "
			    "administrator's decision");
			return -1;
		}
		buf_free(b);
		if ((st = perform(c, &q, b, err)) < 0)
			return -1;
		if (st == 200)
			return irp_parse_cert((const char *)b->data, b->len,
			    out, err);
		if (st != 202) {
			irp_parse_error((const char *)b->data, b->len, st, err);
			return -1;
		}
	}
}

/*
 * POST a {"csr": PEM} body to r->path, authorised as r says (a code, a
 * password or the certificate); shared by enroll and renew.  An
 * enrolment kept for approval (202) is waited for.
 */
static int
post_csr(struct irp_client *c, struct req *r, const char *csr_pem,
    struct irp_cert *out, struct irp_err *err)
{
	struct buf b = { 0 };
	struct irp_csr_req cr = { csr_pem };
	json_t *body = NULL;
	char *txt = NULL;
	int rv = -1;
	long st;

	r->method = "POST";
	r->ctype = "application/json";
	r->limit = IRP_BODY_MAX;
	if ((body = irp_csr_req_build(&cr)) == NULL ||
	    (txt = json_dumps(body, JSON_COMPACT)) == NULL) {
		irp_seterr(err, 0, "memory", "cannot build the request");
		goto err;
	}
	r->body = txt;
	r->body_len = strlen(txt);
	if ((st = perform(c, r, &b, err)) < 0)
		goto err;
	if (st == 202 && !r->use_cert)
		rv = wait_decision(c, &b, out, err);
	else if (st != 201)
		irp_parse_error((const char *)b.data, b.len, st, err);
	else
		rv = irp_parse_cert((const char *)b.data, b.len, out, err);
err:
	free(txt);
	json_decref(body);
	buf_free(&b);
	return rv;
}

int
irp_enroll(struct irp_client *c, const char *code, const char *csr_pem,
    struct irp_cert *out, struct irp_err *err)
{
	struct req r = { .path = "/v1/enroll", .bearer = code };

	if (code == NULL || *code == '\0') {
		irp_seterr(err, 0, "usage", "an enrolment code is required");
		return -1;
	}
	return post_csr(c, &r, csr_pem, out, err);
}

int
irp_enroll_password(struct irp_client *c, const char *userid,
    const char *password, const char *csr_pem, struct irp_cert *out,
    struct irp_err *err)
{
	struct req r = { .path = "/v1/enroll", .basic_user = userid,
		.basic_pass = password };

	if (userid == NULL || password == NULL || *password == '\0') {
		irp_seterr(err, 0, "usage", "a user id and a password are "
		    "required");
		return -1;
	}
	return post_csr(c, &r, csr_pem, out, err);
}

int
irp_renew(struct irp_client *c, const char *csr_pem, struct irp_cert *out,
    struct irp_err *err)
{
	struct req r = { .path = "/v1/renew", .use_cert = 1 };

	return post_csr(c, &r, csr_pem, out, err);
}

int
irp_me(struct irp_client *c, struct irp_me *out, struct irp_err *err)
{
	struct buf b = { 0 };
	struct req r = { .method = "GET", .path = "/v1/me", .use_cert = 1,
		.limit = IRP_BODY_MAX };
	int rv = -1;

	memset(out, 0, sizeof(*out));
	if (call(c, &r, 200, &b, err) == 0)
		rv = irp_parse_me((const char *)b.data, b.len, out, err);
	buf_free(&b);
	return rv;
}

int
irp_addresses_put(struct irp_client *c, const struct irp_addr_req *addr,
    size_t n, int ttl, int *granted_ttl, char *expires_at,
    struct irp_err *err)
{
	struct buf b = { 0 };
	struct req r = { .method = "PUT", .path = "/v1/me/addresses",
		.ctype = "application/json", .use_cert = 1,
		.limit = IRP_BODY_MAX };
	struct irp_addresses_req ar;
	json_t *body = NULL;
	char *txt = NULL;
	int rv = -1;

	if (n == 0 || n > IRP_ADDR_MAX) {
		irp_seterr(err, 0, "usage", "between 1 and %d addresses can be "
		    "registered", IRP_ADDR_MAX);
		return -1;
	}
	memset(&ar, 0, sizeof(ar));
	memcpy(ar.addr, addr, n * sizeof(*addr));
	ar.naddr = n;
	ar.has_ttl = 1;
	ar.ttl = ttl;
	if ((body = irp_addresses_req_build(&ar)) == NULL ||
	    (txt = json_dumps(body, JSON_COMPACT)) == NULL) {
		irp_seterr(err, 0, "memory", "cannot build the request");
		goto err;
	}
	r.body = txt;
	r.body_len = strlen(txt);
	if (call(c, &r, 200, &b, err) == -1)
		goto err;
	rv = irp_parse_addresses_put((const char *)b.data, b.len, granted_ttl,
	    expires_at, err);
err:
	free(txt);
	json_decref(body);
	buf_free(&b);
	return rv;
}

int
irp_addresses_delete(struct irp_client *c, int *deleted, struct irp_err *err)
{
	struct buf b = { 0 };
	struct req r = { .method = "DELETE", .path = "/v1/me/addresses",
		.use_cert = 1, .limit = IRP_BODY_MAX };
	int rv = -1;

	if (call(c, &r, 200, &b, err) == 0)
		rv = irp_parse_addresses_delete((const char *)b.data, b.len,
		    deleted, err);
	buf_free(&b);
	return rv;
}

/* GET /v1/users/{userid}; fresh: asked afresh, within IRP_LOOKUP_TIMEOUT. */
static int
lookup(struct irp_client *c, const char *userid, int fresh,
    struct irp_user **out, struct irp_err *err)
{
	struct buf b = { 0 };
	struct req r = { .method = "GET", .use_cert = 1,
		.limit = IRP_BODY_MAX, .no_cache = fresh,
		.timeout = fresh ? IRP_LOOKUP_TIMEOUT : 0 };
	char norm[IRP_USERID_MAX + 1], path[IRP_USERID_MAX * 3 + 16];
	const char *why;
	char *esc = NULL;
	int rv = -1;

	*out = NULL;
	if (irp_userid_normalize(userid, norm, sizeof(norm), &why) == -1) {
		irp_seterr(err, 0, "invalid_userid", "'%s' is not a user id: %s",
		    userid, why);
		return -1;
	}
	if ((esc = curl_easy_escape(c->curl, norm, 0)) == NULL)
		goto nomem;
	snprintf(path, sizeof(path), "/v1/users/%s", esc);
	r.path = path;
	if (call(c, &r, 200, &b, err) == -1)
		goto err;
	rv = irp_parse_user((const char *)b.data, b.len, out, err);
	goto err;
nomem:
	irp_seterr(err, 0, "memory", "out of memory");
err:
	curl_free(esc);
	buf_free(&b);
	return rv;
}

int
irp_lookup(struct irp_client *c, const char *userid, struct irp_user **out,
    struct irp_err *err)
{
	return lookup(c, userid, 0, out, err);
}

int
irp_lookup_fresh(struct irp_client *c, const char *userid,
    struct irp_user **out, struct irp_err *err)
{
	return lookup(c, userid, 1, out, err);
}

int
irp_backup_put(struct irp_client *c, const unsigned char *p12, size_t len,
    struct irp_err *err)
{
	struct buf b = { 0 };
	struct req r = { .method = "PUT", .path = "/v1/me/backup",
		.ctype = "application/x-pkcs12", .body = p12, .body_len = len,
		.use_cert = 1, .limit = IRP_BODY_MAX };
	struct irp_backup_stored st;
	int rv;

	if (len == 0 || len > IRP_BACKUP_MAX) {
		irp_seterr(err, 0, "usage", "a backup must be 1 to %d bytes",
		    IRP_BACKUP_MAX);
		return -1;
	}
	if ((rv = call(c, &r, 200, &b, err)) == 0)
		rv = irp_parse_backup_put((const char *)b.data, b.len, &st,
		    err);
	buf_free(&b);
	return rv;
}

int
irp_escrow_officer(struct irp_client *c, char **pem, char fp[65],
    struct irp_err *err)
{
	struct buf b = { 0 };
	struct req r = { .method = "GET", .path = "/v1/escrow",
		.limit = IRP_BODY_MAX };
	json_t *root = NULL, *jc, *jf;
	long st;
	int rv = -1;

	*pem = NULL;
	fp[0] = '\0';
	if ((st = perform(c, &r, &b, err)) < 0)
		goto err;
	if (st == 404) {
		rv = 0; /* escrow is off */
		goto err;
	}
	if (st != 200) {
		irp_parse_error((const char *)b.data, b.len, st, err);
		goto err;
	}
	if ((root = json_loadb((const char *)b.data, b.len, 0, NULL)) == NULL ||
	    !json_is_string(jc = json_object_get(root, "certificate")) ||
	    !json_is_string(jf = json_object_get(root, "fingerprint")) ||
	    strlen(json_string_value(jf)) != 64 ||
	    (*pem = strdup(json_string_value(jc))) == NULL) {
		irp_seterr(err, 200, "bad_reply", "the registry's escrow "
		    "officer is not a certificate and a fingerprint");
		goto err;
	}
	snprintf(fp, 65, "%s", json_string_value(jf));
	rv = 1;
err:
	json_decref(root);
	buf_free(&b);
	return rv;
}

int
irp_escrow_put(struct irp_client *c, const char *fp, const unsigned char *cms,
    size_t len, struct irp_err *err)
{
	char path[sizeof("/v1/me/escrow?officer=") + 64];
	struct buf b = { 0 };
	struct req r = { .method = "PUT", .path = path,
		.ctype = "application/pkcs7-mime", .body = cms, .body_len = len,
		.use_cert = 1, .limit = IRP_BODY_MAX };
	int rv;

	if (strlen(fp) != 64 || strspn(fp, "0123456789abcdef") != 64) {
		irp_seterr(err, 0, "usage", "an officer's fingerprint is 64 "
		    "hex digits");
		return -1;
	}
	snprintf(path, sizeof(path), "/v1/me/escrow?officer=%s", fp);
	rv = call(c, &r, 201, &b, err);
	buf_free(&b);
	return rv;
}

int
irp_backup_get(struct irp_client *c, const char *userid, const char *secret,
    unsigned char **p12, size_t *len, struct irp_err *err)
{
	struct buf b = { 0 };
	struct req r = { .method = "GET", .path = "/v1/me/backup",
		.limit = IRP_BACKUP_MAX };

	*p12 = NULL;
	*len = 0;
	if (secret == NULL)
		r.use_cert = 1;
	else if (userid == NULL)
		r.bearer = secret;
	else {
		r.basic_user = userid;
		r.basic_pass = secret;
	}
	if (call(c, &r, 200, &b, err) == -1) {
		buf_free(&b);
		return -1;
	}
	if (b.len == 0) {
		irp_seterr(err, 200, "bad_response", "the registry sent an empty "
		    "backup");
		buf_free(&b);
		return -1;
	}
	*p12 = b.data;
	*len = b.len;
	return 0;
}

int
irp_inbox_post(struct irp_client *c, const char *userid, const char *msg_id,
    const unsigned char *msg, size_t len, struct irp_inbox_item *out,
    struct irp_err *err)
{
	return irp_inbox_relay(c, userid, NULL, msg_id, msg, len, out, err);
}

int
irp_inbox_relay(struct irp_client *c, const char *userid, const char *sender,
    const char *msg_id, const unsigned char *msg, size_t len,
    struct irp_inbox_item *out, struct irp_err *err)
{
	struct buf b = { 0 };
	struct req r = { .method = "POST", .ctype = "application/pkcs7-mime",
		.body = msg, .body_len = len, .use_cert = 1, .msg_id = msg_id,
		.sender = sender, .limit = IRP_BODY_MAX };
	char norm[IRP_USERID_MAX + 1], path[IRP_USERID_MAX * 3 + 32];
	const char *why;
	char *esc = NULL;
	int rv = -1;

	memset(out, 0, sizeof(*out));
	if (irp_userid_normalize(userid, norm, sizeof(norm), &why) == -1) {
		irp_seterr(err, 0, "invalid_userid", "'%s' is not a user id: %s",
		    userid, why);
		return -1;
	}
	if (!irp_msgid_ok(msg_id)) {
		irp_seterr(err, 0, "usage", "'%s' is no message id", msg_id);
		return -1;
	}
	if ((esc = curl_easy_escape(c->curl, norm, 0)) == NULL) {
		irp_seterr(err, 0, "memory", "out of memory");
		return -1;
	}
	snprintf(path, sizeof(path), "/v1/users/%s/inbox", esc);
	r.path = path;
	if (call(c, &r, 201, &b, err) == 0)
		rv = irp_parse_inbox_item((const char *)b.data, b.len, out, err);
	curl_free(esc);
	buf_free(&b);
	return rv;
}

int
irp_inbox_list(struct irp_client *c, struct irp_inbox *out,
    struct irp_err *err)
{
	struct buf b = { 0 };
	struct req r = { .method = "GET", .path = "/v1/me/inbox",
		.use_cert = 1, .limit = IRP_BODY_MAX };
	int rv = -1;

	memset(out, 0, sizeof(*out));
	if (call(c, &r, 200, &b, err) == 0)
		rv = irp_parse_inbox((const char *)b.data, b.len, out, err);
	buf_free(&b);
	return rv;
}

int
irp_events(struct irp_client *c, const char *cursor, int wait,
    struct irp_events *out, struct irp_err *err)
{
	struct buf b = { 0 };
	struct req r = { .method = "GET", .use_cert = 1, .limit = IRP_BODY_MAX,
		.long_poll = 1 };
	char path[64 + IRP_CURSOR_MAX];
	int rv = -1;

	memset(out, 0, sizeof(*out));
	/* The cursor goes into the URL as it is: only one that needs no
	 * escaping (as irp_events_parse takes them). */
	if (cursor != NULL && !irp_cursor_ok(cursor)) {
		irp_seterr(err, 0, "usage", "not a cursor of events");
		return -1;
	}
	if (wait < 0 || wait > IRP_WAIT_MAX)
		wait = 0;
	if (cursor != NULL)
		snprintf(path, sizeof(path), "/v1/me/events?after=%s&wait=%d",
		    cursor, wait);
	else
		snprintf(path, sizeof(path), "/v1/me/events");
	r.path = path;
	r.timeout = (c->timeout > 0 ? c->timeout : 30) + wait;
	if (call(c, &r, 200, &b, err) == 0)
		rv = irp_parse_events((const char *)b.data, b.len, out, err);
	buf_free(&b);
	return rv;
}

int
irp_inbox_get(struct irp_client *c, long long id, size_t max,
    unsigned char **msg, size_t *len, struct irp_err *err)
{
	struct buf b = { 0 };
	struct req r = { .method = "GET", .use_cert = 1, .limit = max };
	char path[64];

	*msg = NULL;
	*len = 0;
	snprintf(path, sizeof(path), "/v1/me/inbox/%lld", id);
	r.path = path;
	if (call(c, &r, 200, &b, err) == -1) {
		buf_free(&b);
		return -1;
	}
	*msg = b.data;
	*len = b.len;
	return 0;
}

int
irp_inbox_delete(struct irp_client *c, long long id, struct irp_err *err)
{
	struct buf b = { 0 };
	struct req r = { .method = "DELETE", .use_cert = 1,
		.limit = IRP_BODY_MAX };
	char path[64];
	int rv;

	snprintf(path, sizeof(path), "/v1/me/inbox/%lld", id);
	r.path = path;
	rv = call(c, &r, 200, &b, err);
	buf_free(&b);
	return rv;
}

int
irp_ocsp(struct irp_client *c, const unsigned char *req, size_t req_len,
    unsigned char **resp, size_t *resp_len, struct irp_err *err)
{
	struct buf b = { 0 };
	struct req r = { .method = "POST", .path = "/ocsp",
		.ctype = "application/ocsp-request", .body = req,
		.body_len = req_len, .limit = IRP_OCSP_MAX,
		.timeout = IRP_OCSP_TIMEOUT };

	*resp = NULL;
	*resp_len = 0;
	if (call(c, &r, 200, &b, err) == -1) {
		buf_free(&b);
		return -1;
	}
	*resp = b.data;
	*resp_len = b.len;
	return 0;
}

int
irp_crl_get(struct irp_client *c, unsigned char **der, size_t *len,
    struct irp_err *err)
{
	struct buf b = { 0 };
	struct req r = { .method = "GET", .path = "/v1/crl",
		.limit = 16 * 1024 * 1024 };

	*der = NULL;
	*len = 0;
	if (call(c, &r, 200, &b, err) == -1) {
		buf_free(&b);
		return -1;
	}
	*der = b.data;
	*len = b.len;
	return 0;
}
