/*
 * http.c - libmicrohttpd on GnuTLS: listeners, the route table, request
 * bodies with limits, client certificate checks, replies and metrics.
 *
 * One MHD daemon per listen address, each with a thread pool; every pool
 * thread owns one database connection (a pthread key), created on first
 * use and re-established by db.c after the server restarted.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <openssl/rand.h>

#include "api.h"
#include "fed.h"
#include "hs.h"
#include "http.h"
#include "log.h"
#include "push.h"

enum route_auth {
	RA_NONE,    /* anyone */
	RA_CERT,    /* a valid client certificate */
	RA_ADMIN,   /* a valid client certificate of an admin */
	RA_SECRET,  /* the handler authenticates (codes, passwords) */
	RA_METRICS, /* as the metrics setting says (see authenticate) */
	RA_FED,	    /* RA_CERT, or another domain's registry (fed_admit) */
};

enum route_body {
	RB_NONE,
	RB_JSON,
	RB_P12,	 /* a PKCS#12, as stored */
	RB_OCSP, /* a DER OCSP request */
	RB_SMIME, /* an S/MIME message, as stored */
	RB_PKCS10, /* an EST CSR: base64 PKCS#10 */
};

/* The body limit of a route (struct route's big). */
enum { BIG_NO, BIG_BACKUP, BIG_INBOX };

/*
 * Which listeners serve a route: the IRP port (HTTPS, client
 * certificates), the plain-HTTP listeners for what relying parties fetch
 * (the CA, the CRL, OCSP: signed objects that need no TLS, at the URLs
 * written into certificates) and the metrics listener.
 */
enum http_kind { HK_IRP = 1, HK_PUBLIC = 2, HK_METRICS = 4 };
#define HK_ALL (HK_IRP | HK_PUBLIC | HK_METRICS)

static const struct route {
	const char *method;
	const char *pattern; /* '*' is one path segment, a final '**' the rest */
	enum route_auth auth;
	enum route_body body;
	int big;	     /* body limit: BIG_NO body_max, else the named */
	api_fn *fn;
	const char *name;    /* metrics label */
	unsigned int where;  /* enum http_kind bits */
} routes[] = {
	{ "GET", "/v1/ca", RA_NONE, RB_NONE, 0, api_ca, "ca",
	    HK_IRP | HK_PUBLIC },
	{ "GET", "/v1/crl", RA_NONE, RB_NONE, 0, api_crl, "crl",
	    HK_IRP | HK_PUBLIC },
	{ "POST", "/ocsp", RA_NONE, RB_OCSP, 0, api_ocsp_post, "ocsp",
	    HK_IRP | HK_PUBLIC },
	{ "GET", "/ocsp/**", RA_NONE, RB_NONE, 0, api_ocsp_get, "ocsp_get",
	    HK_IRP | HK_PUBLIC },
	{ "GET", "/healthz", RA_NONE, RB_NONE, 0, api_healthz, "healthz",
	    HK_ALL },
	{ "GET", "/metrics", RA_METRICS, RB_NONE, 0, api_metrics, "metrics",
	    HK_IRP | HK_METRICS },
	{ "POST", "/v1/enroll", RA_SECRET, RB_JSON, 0, api_enroll, "enroll",
	    HK_IRP },
	{ "POST", "/v1/renew", RA_CERT, RB_JSON, 0, api_renew, "renew",
	    HK_IRP },
	{ "GET", "/v1/requests/*", RA_NONE, RB_NONE, 0, api_request_poll,
	    "request_poll", HK_IRP },
	{ "GET", "/v1/me", RA_CERT, RB_NONE, 0, api_me, "me", HK_IRP },
	{ "PUT", "/v1/me/addresses", RA_CERT, RB_JSON, 0, api_addr_put,
	    "addresses_put", HK_IRP },
	{ "DELETE", "/v1/me/addresses", RA_CERT, RB_NONE, 0, api_addr_del,
	    "addresses_delete", HK_IRP },
	{ "PUT", "/v1/me/backup", RA_CERT, RB_P12, BIG_BACKUP, api_backup_put,
	    "backup_put", HK_IRP },
	{ "POST", "/v1/users/*/inbox", RA_FED, RB_SMIME, BIG_INBOX,
	    api_inbox_post, "inbox_post", HK_IRP },
	{ "GET", "/v1/me/events", RA_CERT, RB_NONE, 0, api_events, "events",
	    HK_IRP },
	{ "GET", "/.well-known/est/cacerts", RA_NONE, RB_NONE, 0,
	    api_est_cacerts, "est_cacerts", HK_IRP },
	{ "GET", "/.well-known/est/csrattrs", RA_NONE, RB_NONE, 0,
	    api_est_csrattrs, "est_csrattrs", HK_IRP },
	{ "POST", "/.well-known/est/simpleenroll", RA_SECRET, RB_PKCS10, 0,
	    api_est_enroll, "est_simpleenroll", HK_IRP },
	{ "POST", "/.well-known/est/simplereenroll", RA_CERT, RB_PKCS10, 0,
	    api_est_reenroll, "est_simplereenroll", HK_IRP },
	{ "GET", "/v1/admin/certificates", RA_ADMIN, RB_NONE, 0,
	    api_admin_certs, "admin_certificates", HK_IRP },
	{ "GET", "/v1/admin/audit", RA_ADMIN, RB_NONE, 0, api_admin_audit,
	    "admin_audit", HK_IRP },
	{ "GET", "/admin/", RA_ADMIN, RB_NONE, 0, api_console, "console",
	    HK_IRP },
	{ "GET", "/admin/*", RA_ADMIN, RB_NONE, 0, api_console, "console_file",
	    HK_IRP },
	{ "GET", "/v1/escrow", RA_NONE, RB_NONE, 0, api_escrow_get,
	    "escrow_get", HK_IRP },
	{ "PUT", "/v1/me/escrow", RA_CERT, RB_SMIME, 0, api_escrow_put,
	    "escrow_put", HK_IRP },
	{ "GET", "/v1/me/escrow", RA_CERT, RB_NONE, 0, api_escrow_status,
	    "escrow_status", HK_IRP },
	{ "GET", "/v1/me/inbox", RA_CERT, RB_NONE, 0, api_inbox_list,
	    "inbox_list", HK_IRP },
	{ "GET", "/v1/me/inbox/*", RA_CERT, RB_NONE, 0, api_inbox_get,
	    "inbox_get", HK_IRP },
	{ "DELETE", "/v1/me/inbox/*", RA_CERT, RB_NONE, 0, api_inbox_delete,
	    "inbox_delete", HK_IRP },
	{ "GET", "/v1/me/backup", RA_SECRET, RB_NONE, 0, api_backup_get,
	    "backup_get", HK_IRP },
	{ "GET", "/v1/users/*", RA_FED, RB_NONE, 0, api_user_get, "lookup",
	    HK_IRP },
	{ "POST", "/v1/certificates/*/revoke", RA_CERT, RB_JSON, 0, api_revoke,
	    "revoke", HK_IRP },
	{ "GET", "/v1/admin/users", RA_ADMIN, RB_NONE, 0, api_admin_users,
	    "admin_users", HK_IRP },
	{ "POST", "/v1/admin/users", RA_ADMIN, RB_JSON, 0, api_admin_user_add,
	    "admin_user_add", HK_IRP },
	{ "POST", "/v1/admin/users/*/disable", RA_ADMIN, RB_NONE, 0,
	    api_admin_user_disable, "admin_user_disable", HK_IRP },
	{ "POST", "/v1/admin/users/*/enable", RA_ADMIN, RB_NONE, 0,
	    api_admin_user_enable, "admin_user_enable", HK_IRP },
	{ "POST", "/v1/admin/users/*/revoke", RA_ADMIN, RB_JSON, 0,
	    api_admin_user_revoke, "admin_user_revoke", HK_IRP },
	{ "POST", "/v1/admin/users/*/codes", RA_ADMIN, RB_JSON, 0,
	    api_admin_code, "admin_code", HK_IRP },
	{ "POST", "/v1/admin/users/*/p12", RA_ADMIN, RB_JSON, 0, api_admin_p12,
	    "admin_p12", HK_IRP },
	{ "POST", "/v1/admin/certificates/*/revoke", RA_ADMIN, RB_JSON, 0,
	    api_revoke, "admin_revoke", HK_IRP },
	{ "GET", "/v1/admin/requests", RA_ADMIN, RB_NONE, 0,
	    api_admin_requests, "admin_requests", HK_IRP },
	{ "POST", "/v1/admin/requests/*/approve", RA_ADMIN, RB_NONE, 0,
	    api_admin_request_approve, "admin_request_approve", HK_IRP },
	{ "POST", "/v1/admin/requests/*/reject", RA_ADMIN, RB_JSON, 0,
	    api_admin_request_reject, "admin_request_reject", HK_IRP },
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/*
 * The longest {...} of a route: a '*' segment (a user id, a serial) is
 * under HTTP_SEGMENT_MAX, a final '**' (a GET OCSP request in base64,
 * RFC 5019) under HTTP_PARAM_MAX.  A longer path matches no route.
 */
#define HTTP_SEGMENT_MAX 512
#define HTTP_PARAM_MAX 1024

/*
 * Per-connection memory pool of libmicrohttpd: it bounds the request
 * header (a larger one gets 431) and holds the read and write buffers.
 * Small, because all of it stays resident: libmicrohttpd 0.9.75 zeroes
 * the whole pool after every request of a keep-alive connection, so a
 * connection that made one request and then waits (a running dchat's)
 * holds the pool as long as it lives.  At 64 KiB such a connection cost
 * 78 KiB of dird's RSS, at 16 KiB 30, at 4 KiB 18 (tests/bench/run,
 * memory rows; GnuTLS's session is most of the rest).  4 KiB takes a
 * request line and headers of up to about 3.5 KiB, where dird's clients
 * send a few hundred bytes; bodies pass through it in pieces, which
 * costs some 0.8 ms of CPU per MiB uploaded.
 */
#define HTTP_CONN_MEMORY ((size_t)(4 * 1024))
/* Pseudo-routes for metrics: unknown paths and wrong methods. */
#define ROUTE_NOTFOUND NROUTES
#define ROUTE_METHOD (NROUTES + 1)

static const char *route_names[NROUTES + 2];

/* What access_cb is called with: a listener of the server. */
struct listener {
	struct http_server *srv;
	enum http_kind kind;
};

struct http_server {
	struct reg *reg;
	struct MHD_Daemon *daemons[CONF_LISTEN_MAX + 1];
	struct listener listeners[CONF_LISTEN_MAX + 1];
	int ndaemons;
	pthread_key_t db_key;
	char *key_pem;
	char *cert_pem;
	uint64_t reqid_key;	/* random, from start */
	atomic_uint_fast64_t nreq;
	atomic_int inflight;	/* requests from headers to reply sent */
	atomic_size_t held;	/* bytes of request bodies in memory, in all */
	int quiesced;		/* http_drain ran: listeners are ours */
	MHD_socket lsock[CONF_LISTEN_MAX + 1];
};

/*
 * Per connection: the client certificate, checked once at its start.  The
 * certificates are GnuTLS's, not copies (a kilobyte per connection that
 * waits): they live as long as the session, which never takes another
 * peer (libmicrohttpd closes a connection asked to renegotiate, and post-
 * handshake authentication is not enabled).
 */
struct conn_ctx {
	int checked;
	int verified;
	const unsigned char *der;
	size_t der_len;
	const unsigned char *ca_der; /* the certificate sent after it, if any */
	size_t ca_der_len;
	char source[INET6_ADDRSTRLEN];
	int hs_fd;	/* for hs_end: its descriptor, or -1 */
};

/* Per request: the body as it arrives, and what route it is for. */
struct req_ctx {
	size_t route; /* index, or ROUTE_NOTFOUND / ROUTE_METHOD */
	char param[HTTP_PARAM_MAX];
	char reqid[17];
	unsigned int kind;	  /* the listener's enum http_kind */
	unsigned char *body;
	size_t len, cap, limit;
	size_t announced; /* Content-Length, when given and within limit */
	int too_large;
	int early;	  /* answered when the headers arrived */
	int authed;	  /* who was authenticated with the headers */
	struct auth_ident who;
	struct timespec start;
	gnutls_session_t corked; /* see cork() */
	int fd;
	int busy;	  /* its body did not fit under bodies_mb: 503 */
	int waited;	  /* it waited once (see wait_here) */
	int wait_refused; /* too many wait: 429 */
	void *later;	  /* see http_later */
	void (*later_free)(void *);
};

/* ---- replies ------------------------------------------------------------ */

void
http_blob(struct http_resp *resp, int status, const char *ctype,
    const void *data, size_t len)
{
	free(resp->body);
	resp->body = NULL;
	resp->len = 0;
	resp->status = status;
	resp->ctype = ctype;
	if (len > 0 && (resp->body = malloc(len)) != NULL) {
		memcpy(resp->body, data, len);
		resp->len = len;
	} else if (len > 0) {
		resp->status = 500;
		resp->ctype = "text/plain";
	}
}

void
http_json(struct http_resp *resp, int status, json_t *obj)
{
	char *text;

	text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
	json_decref(obj);
	if (text == NULL) {
		static const char oom[] = "{\"error\":{\"code\":"
		    "\"internal_error\",\"message\":\"out of memory\"}}";

		http_blob(resp, 500, "application/json", oom, sizeof(oom) - 1);
		return;
	}
	http_json_text(resp, status, text, strlen(text));
}

void
http_json_text(struct http_resp *resp, int status, char *text, size_t len)
{
	free(resp->body);
	resp->status = status;
	resp->ctype = "application/json";
	resp->body = (unsigned char *)text;
	resp->len = len;
}

void
http_error(struct http_resp *resp, int status, const char *code,
    const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/*
	 * Messages quote the input ("near '...'" from jansson, "%.64s" of a
	 * field), which may be invalid UTF-8 or cut inside a character:
	 * irp_error_build masks what is not ASCII then.
	 */
	http_json(resp, status, irp_error_build(code, msg));
}

/*
 * The reply to a verdict of reg_* or auth_*, and to a store error.  What
 * the store said about an internal failure goes to the log, not to the
 * client.
 */
void
http_reg_error(struct http_resp *resp, const struct reg_err *e)
{
	if (e->status == 503 && strcmp(e->code, "signer_unavailable") == 0) {
		log_warnx("CA signer: %s", e->msg);
		http_error(resp, 503, "signer_unavailable",
		    "the registry can not sign now: its CA signer process is "
		    "not answering; its operator must restart dird");
	} else if (e->status == 503)
		http_error(resp, 503, "database_unavailable",
		    "the registry's database is unavailable; try again "
		    "shortly");
	else if (e->status == 500 && strcmp(e->code, "database_error") == 0) {
		log_warnx("database error: %s", e->msg);
		http_error(resp, 500, "database_error",
		    "the registry could not complete the request");
	} else
		http_error(resp, e->status, e->code, "%s", e->msg);
	resp->retry_after = e->retry_after;
}

void
http_db_error(struct http_resp *resp, const struct db_err *e)
{
	struct reg_err re;

	reg_err_from_db(&re, e);
	if (e->code == DB_ERR_INTERNAL)
		snprintf(re.msg, sizeof(re.msg), "%s (SQLSTATE %s)", e->msg,
		    e->sqlstate);
	http_reg_error(resp, &re);
}

/* ---- routing --------------------------------------------------------------- */

/*
 * Match path against pattern; the '*' segment goes to param.  A pattern
 * that ends in '**' takes the rest of the path, slashes and all (an OCSP
 * request in a GET is base64, whose alphabet has '/').
 */
static int
route_match(const char *pattern, const char *path, char *param, size_t plen)
{
	const char *star = strchr(pattern, '*');
	size_t pre, suf, seg, plen_path = strlen(path);

	if (star == NULL)
		return strcmp(pattern, path) == 0;
	pre = (size_t)(star - pattern);
	if (strcmp(star, "**") == 0) {
		seg = plen_path > pre ? plen_path - pre : 0;
		if (seg == 0 || seg >= plen || strncmp(pattern, path, pre) != 0)
			return 0;
		memcpy(param, path + pre, seg + 1);
		return 1;
	}
	suf = strlen(star + 1);
	if (plen_path <= pre + suf || strncmp(pattern, path, pre) != 0 ||
	    strcmp(path + plen_path - suf, star + 1) != 0)
		return 0;
	seg = plen_path - pre - suf;
	if (seg >= plen || seg >= HTTP_SEGMENT_MAX ||
	    memchr(path + pre, '/', seg) != NULL)
		return 0;
	memcpy(param, path + pre, seg);
	param[seg] = '\0';
	return 1;
}

static size_t
route_find(unsigned int kind, const char *method, const char *path,
    char *param, size_t plen)
{
	size_t i;
	int path_known = 0;

	for (i = 0; i < NROUTES; i++) {
		if (!(routes[i].where & kind) ||
		    !route_match(routes[i].pattern, path, param, plen))
			continue;
		if (strcmp(routes[i].method, method) == 0)
			return i;
		path_known = 1;
	}
	return path_known ? ROUTE_METHOD : ROUTE_NOTFOUND;
}

/* The methods path has, "GET, POST", for the Allow header of a 405. */
static void
route_allow(unsigned int kind, const char *path, char *buf, size_t len)
{
	char param[HTTP_PARAM_MAX];
	size_t i, n = 0;

	buf[0] = '\0';
	for (i = 0; i < NROUTES && n < len; i++)
		if ((routes[i].where & kind) && route_match(routes[i].pattern,
		    path, param, sizeof(param)))
			n += (size_t)snprintf(buf + n, len - n, "%s%s",
			    n ? ", " : "", routes[i].method);
}

/*
 * Percent-decoding of the path, as MHD's own but for "%00": a decoded NUL
 * would cut the path short ("/v1/me%00junk" would be "/v1/me", a user id
 * "a@b.org%00x" would be "a@b.org"), so it stays as the three characters
 * and the path then matches no route or fails the parameter's check.
 */
static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static size_t
unescape_cb(void *cls, struct MHD_Connection *conn, char *s)
{
	char *r = s, *w = s;
	int hi, lo;

	(void)cls;
	(void)conn;
	while (*r != '\0') {
		if (r[0] == '%' && (hi = hexval(r[1])) >= 0 &&
		    (lo = hexval(r[2])) >= 0 && (hi | lo) != 0) {
			*w++ = (char)(hi << 4 | lo);
			r += 3;
		} else
			*w++ = *r++;
	}
	*w = '\0';
	return (size_t)(w - s);
}

/* ---- connections ----------------------------------------------------------- */

static void
source_text(const struct sockaddr *sa, char *buf, size_t len)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

	buf[0] = '\0';
	if (sa == NULL)
		return;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
		    buf, (socklen_t)len);
	else if (sa->sa_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
		inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], buf,
		    (socklen_t)len);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &s6->sin6_addr, buf, (socklen_t)len);
}

static void
notify_connection(void *cls, struct MHD_Connection *conn, void **socket_ctx,
    enum MHD_ConnectionNotificationCode toe)
{
	struct conn_ctx *cc = *socket_ctx;
	const union MHD_ConnectionInfo *ci;

	(void)cls;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		if ((cc = calloc(1, sizeof(*cc))) == NULL)
			return;
		ci = MHD_get_connection_info(conn,
		    MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		source_text(ci ? ci->client_addr : NULL, cc->source,
		    sizeof(cc->source));
		cc->hs_fd = hs_start(conn);
		*socket_ctx = cc;
	} else if (toe == MHD_CONNECTION_NOTIFY_CLOSED && cc != NULL) {
		hs_end(conn, cc->hs_fd);
		free(cc);
		*socket_ctx = NULL;
	}
}

/*
 * Verify the client certificate once per connection: libmicrohttpd asks
 * GnuTLS for it but checks nothing itself.  Accept only when GnuTLS returns 0 and
 * the status is 0, for the TLS WWW client purpose.  Revocation and expiry
 * against the store are checked per request in auth_cert().
 */
static void
check_peer(struct MHD_Connection *conn, struct conn_ctx *cc)
{
	const union MHD_ConnectionInfo *ci;
	gnutls_session_t s;
	const gnutls_datum_t *peers;
	unsigned int n = 0, status = 0;
	gnutls_typed_vdata_st purpose = {
		.type = GNUTLS_DT_KEY_PURPOSE_OID,
		.data = (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT,
	};

	cc->checked = 1;
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (ci == NULL || ci->tls_session == NULL)
		return;
	s = (gnutls_session_t)ci->tls_session;
	if ((peers = gnutls_certificate_get_peers(s, &n)) == NULL || n == 0)
		return;
	if (peers[0].size == 0 || peers[0].size > 16384)
		return;
	cc->der = peers[0].data;
	cc->der_len = peers[0].size;
	/* Another domain's registry sends its CA after its certificate. */
	if (n >= 2 && peers[1].size > 0 && peers[1].size <= 16384) {
		cc->ca_der = peers[1].data;
		cc->ca_der_len = peers[1].size;
	}
	if (gnutls_certificate_verify_peers(s, &purpose, 1, &status) == 0 &&
	    status == 0)
		cc->verified = 1;
}

/* ---- requests --------------------------------------------------------------- */

static struct db *
thread_db(struct http_server *srv, struct db_err *de)
{
	struct db *db = pthread_getspecific(srv->db_key);

	if (db == NULL) {
		if ((db = reg_db(srv->reg, de)) == NULL)
			return NULL;
		pthread_setspecific(srv->db_key, db);
	}
	/*
	 * Whether the connection survived a server restart is checked when
	 * it is next used (db.c), not here: a request answered from the
	 * cache costs no system call on the database socket.
	 */
	return db;
}

static void
db_key_free(void *p)
{
	db_free(p);
}

/* Content-Type without parameters, compared case-insensitively. */
static int
ctype_is(const char *have, const char *want)
{
	size_t n = strlen(want);

	return have != NULL && strncasecmp(have, want, n) == 0 &&
	    (have[n] == '\0' || have[n] == ';' || have[n] == ' ');
}

json_t *
http_parse_json(const unsigned char *body, size_t len, struct http_resp *resp)
{
	json_error_t jerr;
	json_t *obj;

	if (len == 0) {
		http_error(resp, 400, "malformed_json", "the body is empty");
		return NULL;
	}
	/* The whole body is one value: trailing data is an error too. */
	obj = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES,
	    &jerr);
	if (obj == NULL) {
		http_error(resp, 400, "malformed_json",
		    "the body is not valid JSON: %s (line %d, column %d)",
		    jerr.text, jerr.line, jerr.column);
		return NULL;
	}
	if (!json_is_object(obj)) {
		json_decref(obj);
		http_error(resp, 400, "wrong_type",
		    "the body must be a JSON object");
		return NULL;
	}
	return obj;
}

static int
parse_body(struct http_req *req, const struct route *rt, const char *ctype,
    struct http_resp *resp)
{
	if (rt->body == RB_NONE) {
		if (req->body_len > 0) {
			http_error(resp, 400, "unexpected_body",
			    "this request takes no body");
			return -1;
		}
		return 0;
	}
	/* A binary body in any other type was sent by mistake. */
	if (rt->body == RB_P12) {
		if (!ctype_is(ctype, "application/x-pkcs12") &&
		    !ctype_is(ctype, "application/octet-stream")) {
			http_error(resp, 415, "unsupported_media_type",
			    "send the body as application/x-pkcs12");
			return -1;
		}
		return 0;
	}
	if (rt->body == RB_SMIME) {
		if (!ctype_is(ctype, "application/pkcs7-mime")) {
			http_error(resp, 415, "unsupported_media_type",
			    "send the message as application/pkcs7-mime");
			return -1;
		}
		return 0;
	}
	if (rt->body == RB_PKCS10) {
		if (!ctype_is(ctype, "application/pkcs10")) {
			http_error(resp, 415, "unsupported_media_type",
			    "send the CSR as application/pkcs10 (base64)");
			return -1;
		}
		return 0;
	}
	if (rt->body == RB_OCSP) {
		if (!ctype_is(ctype, "application/ocsp-request")) {
			http_error(resp, 415, "unsupported_media_type",
			    "send the body as application/ocsp-request");
			return -1;
		}
		return 0;
	}
	if (!ctype_is(ctype, "application/json")) {
		http_error(resp, 415, "unsupported_media_type",
		    "send the body as application/json");
		return -1;
	}
	req->json = http_parse_json(req->body, req->body_len, resp);
	return req->json != NULL ? 0 : -1;
}

/*
 * Who may ask.  /metrics tells how many people are online and what
 * fails: on the IRP port it needs an administrator's certificate unless
 * the configuration makes it public; the metrics listener, which an
 * administrator binds to a private address, serves anyone.
 */
static int
authenticate(struct http_req *req, const struct route *rt,
    unsigned int kind, struct http_resp *resp)
{
	struct reg_err e;

	switch (rt->auth) {
	case RA_NONE:
	case RA_SECRET:
		return 0;
	case RA_FED:
		if (req->from_domain != NULL) {
			if (fed_admit(req->reg->fed, req->db, req->from_domain,
				req->peer_der, req->peer_der_len, req->peer_ca_der,
				req->peer_ca_der_len, req->who.trust,
				req->who.registry, &e) == -1) {
				log_info("%s %s: refused a registry asking as "
				    "%.80s: %s", req->reqid, req->source,
				    req->from_domain, e.msg);
				http_reg_error(resp, &e);
				return -1;
			}
			req->who.kind = AUTH_REGISTRY;
			return 0;
		}
		/* FALLTHROUGH */
	case RA_CERT:
		if (auth_cert(req->reg->auth, req, &e) == -1) {
			http_reg_error(resp, &e);
			return -1;
		}
		return 0;
	case RA_METRICS:
		if (kind == HK_METRICS ||
		    strcmp(reg_conf(req->reg)->metrics, "public") == 0)
			return 0;
		/* FALLTHROUGH */
	case RA_ADMIN:
		if (auth_cert(req->reg->auth, req, &e) == -1) {
			http_reg_error(resp, &e);
			return -1;
		}
		if (!req->who.user.is_admin) {
			http_error(resp, 403, "forbidden",
			    "this needs an administrator's certificate");
			return -1;
		}
		return 0;
	}
	return -1;
}

/*
 * Request ids tie log lines together: unique in this process and not
 * guessable from outside, without a call into the random generator (and
 * its fork check) per request.  splitmix64's finaliser is a bijection, so
 * distinct counters give distinct ids.
 */
static uint64_t
reqid_mix(uint64_t x)
{
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}


/*
 * Whether a browser says this request comes from another site's page: a
 * page elsewhere could otherwise make an administrator's browser, which
 * presents their certificate by itself, change something here (a form
 * posts without any check of ours, e.g. to /v1/admin/.../approve).
 * Programs (curl, dchat, other registries) send neither header.
 */
static int
cross_origin(struct MHD_Connection *conn)
{
	const char *site, *origin, *host;
	char own[300];

	site = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    "Sec-Fetch-Site");
	if (site != NULL && strcmp(site, "same-origin") != 0 &&
	    strcmp(site, "none") != 0)
		return 1;
	origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
	if (origin == NULL)
		return 0;
	host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_HOST);
	if (host == NULL || (size_t)snprintf(own, sizeof(own), "https://%s",
	    host) >= sizeof(own))
		return 1;
	return strcasecmp(origin, own) != 0;
}

/*
 * What every request needs, at whichever step it is answered: its id,
 * source, client certificate (checked once per connection), the
 * Authorization header and this thread's database connection.  -1 with
 * resp filled when the database can not be reached, or a browser says a
 * change comes from another site (cross_origin).
 */
static int
req_setup(struct http_server *srv, struct MHD_Connection *conn,
    struct req_ctx *rc, const char *method, const char *url,
    struct http_req *req, struct http_resp *resp)
{
	const union MHD_ConnectionInfo *ci;
	struct conn_ctx *cc = NULL;
	struct db_err de;
	const char *cctl;

	memset(req, 0, sizeof(*req));
	req->method = method;
	req->path = url;
	req->reg = srv->reg;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 &&
	    cross_origin(conn)) {
		http_error(resp, 403, "cross_origin", "a change is not made "
		    "from another site's page");
		return -1;
	}
	memcpy(req->reqid, rc->reqid, sizeof(req->reqid));
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	if (ci != NULL)
		cc = ci->socket_context;
	req->source = cc ? cc->source : "";
	if (cc != NULL && !cc->checked)
		check_peer(conn, cc);
	if (cc != NULL) {
		req->peer_der = cc->der;
		req->peer_der_len = cc->der_len;
		req->peer_verified = cc->verified;
		req->peer_ca_der = cc->ca_der;
		req->peer_ca_der_len = cc->ca_der_len;
	}
	req->from_domain = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    "IRP-Domain");
	cctl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CACHE_CONTROL);
	req->no_cache = cctl != NULL && strstr(cctl, "no-cache") != NULL;
	req->msg_id = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    "IRP-Message-Id");
	req->sender = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    "IRP-Sender");
	req->param = rc->param;
	req->waited = rc->waited;
	req->later = rc->later;
	req->conn = conn;
	req->ctx = rc;
	req->authorization = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_AUTHORIZATION);
	if ((req->db = thread_db(srv, &de)) == NULL) {
		metrics_db_error(srv->reg->metrics);
		http_db_error(resp, &de);
		return -1;
	}
	return 0;
}

/* Whether the request announces a body (a length, or chunks). */
static int
has_body(struct MHD_Connection *conn)
{
	const char *clen, *te;

	clen = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_LENGTH);
	te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_TRANSFER_ENCODING);
	return (clen != NULL && strtoull(clen, NULL, 10) > 0) || te != NULL;
}

static void
req_log(struct http_server *srv, const struct http_req *req,
    const struct req_ctx *rc, const struct http_resp *resp)
{
	const char *name = rc->route < NROUTES ? routes[rc->route].name :
	    route_names[rc->route];

	if (resp->status >= 500)
		metrics_db_error(srv->reg->metrics);
	if (resp->status >= 400)
		log_info("%s %s %s %s -> %d", rc->reqid, req->source,
		    req->method, name, resp->status);
	else
		log_debug("%s %s %s %s -> %d", rc->reqid, req->source,
		    req->method, name, resp->status);
}

/*
 * Called when the headers of a request with a body arrived: decide what
 * can be decided before the body is read, so that nobody makes dird hold
 * a body it would refuse.  A route that needs a certificate
 * authenticates now; one that takes a code or password (enrolment) needs
 * an Authorization header, and a source that is over its limit is
 * refused.  1 with resp filled when the request is answered now, 0 to
 * read the body.  (libmicrohttpd closes a connection whose request is
 * answered before its body: requests without one are answered at the
 * end as usual, and keep their connection.)
 */
static int
early(struct http_server *srv, struct MHD_Connection *conn,
    struct req_ctx *rc, const char *method, const char *url,
    struct http_resp *resp)
{
	const struct route *rt;
	struct http_req req;
	struct reg_err e;
	int rv = 0;

	if (rc->route >= NROUTES || !has_body(conn))
		return 0; /* 404 and 405 are answered after the body */
	rt = &routes[rc->route];
	if (rt->auth == RA_NONE ||
	    (rt->auth == RA_SECRET && rt->body == RB_NONE))
		return 0;
	if (req_setup(srv, conn, rc, method, url, &req, resp) == -1) {
		rv = 1;
	} else if (rt->auth == RA_SECRET) {
		/* A client certificate is the credential of an EST
		 * re-enrolment: the handler checks it. */
		if (req.peer_der == NULL &&
		    (rv = auth_secret_precheck(srv->reg->auth, &req,
			 &e) == -1))
			http_reg_error(resp, &e);
	} else if (authenticate(&req, rt, rc->kind, resp) == -1) {
		rv = 1;
	} else {
		rc->who = req.who;
		rc->authed = 1;
	}
	if (rv) {
		rc->early = 1;
		req_log(srv, &req, rc, resp);
	}
	return rv;
}

static void
handle(struct http_server *srv, struct MHD_Connection *conn,
    struct req_ctx *rc, const char *method, const char *url,
    struct http_resp *resp)
{
	struct http_req req;
	const struct route *rt;
	int db_ok;

	/* Without a database, 404, 405 and 413 still say what is wrong. */
	db_ok = req_setup(srv, conn, rc, method, url, &req, resp) == 0;
	if (rc->route == ROUTE_NOTFOUND) {
		http_error(resp, 404, "not_found", "no such endpoint: %s", url);
		goto out;
	}
	if (rc->route == ROUTE_METHOD) {
		http_error(resp, 405, "method_not_allowed",
		    "%s is not allowed on %s", method, url);
		goto out;
	}
	rt = &routes[rc->route];
	if (rc->too_large) {
		http_error(resp, 413, "body_too_large",
		    "the body is larger than %zu bytes", rc->limit);
		goto out;
	}
	if (rc->busy) {
		http_error(resp, 503, "busy", "this registry holds as many "
		    "request bodies as it may (bodies_mb); send it again in "
		    "a moment");
		resp->retry_after = 5;
		goto out;
	}
	if (!db_ok)
		goto out;
	if (rc->wait_refused) {
		http_error(resp, 429, "too_many_waiting", "too many requests "
		    "wait for events here now; ask again later");
		resp->retry_after = 30;
		goto out;
	}
	req.body = rc->body;
	req.body_len = rc->len;
	if (rc->later != NULL) {
		/* Checked and parsed on the call that left it. */
		req.who = rc->who;
		rt->fn(&req, resp);
		goto out;
	}
	/*
	 * Who asks before what they sent: a caller without the right
	 * certificate learns nothing from the checks of the body (and was
	 * refused before it was read, see early()).  Routes that take a
	 * code or password authenticate in the handler.
	 */
	if (rc->authed)
		req.who = rc->who;
	else if (authenticate(&req, rt, rc->kind, resp) == -1)
		goto out;
	rc->who = req.who;
	rc->authed = 1;
	if (parse_body(&req, rt, MHD_lookup_connection_value(conn,
				     MHD_HEADER_KIND,
				     MHD_HTTP_HEADER_CONTENT_TYPE),
		resp) == -1)
		goto out;
	rt->fn(&req, resp);
	/* A handler that left a transaction open lost it: roll back. */
	db_rollback(req.db);
out:
	if (resp->wait == 0 && !resp->later)
		req_log(srv, &req, rc, resp);
	json_decref(req.json);
}

const char *
http_query(const struct http_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND,
	    name);
}

void
http_wake(void *conn)
{
	MHD_resume_connection(conn);
}

/*
 * Suspended here, before the handler hands its work on, so that it can
 * never be woken before it sleeps.
 */
void
http_later(struct http_req *req, struct http_resp *resp, void *state,
    void (*state_free)(void *))
{
	struct req_ctx *rc = req->ctx;

	rc->later = state;
	rc->later_free = state_free;
	resp->later = 1;
	MHD_suspend_connection(req->conn);
}

/*
 * The handler asked to wait (a long poll, http.h): the connection sleeps,
 * holding no thread and no database connection, until push wakes it;
 * libmicrohttpd then calls access_cb again, and the handler, told that
 * it waited, answers.  Suspended first, so that push never resumes a
 * connection that is not (yet) suspended; one that can not wait is
 * resumed at once and answered at that next call.
 */
static void
wait_here(struct http_server *srv, struct MHD_Connection *conn,
    struct req_ctx *rc, const struct http_resp *resp)
{
	int rv;

	rc->waited = 1;
	MHD_suspend_connection(conn);
	rv = push_wait(srv->reg->push, resp->wait_user, resp->wait_ticket,
	    push_clock() + (int64_t)resp->wait * 1000, http_wake, conn);
	if (rv != 0) {
		rc->wait_refused = rv == -1;
		MHD_resume_connection(conn);
	}
}

/*
 * libmicrohttpd 0.9.75 hands GnuTLS the header and the body of a reply
 * separately: two TLS records, two sends and two wake-ups of the client,
 * where on loopback most of the cost of a small request is in the kernel.
 * A small reply is corked in GnuTLS instead and leaves as one record when
 * the request completes.
 */
#define HTTP_CORK_MAX 8192

static void
cork(struct MHD_Connection *conn, struct req_ctx *rc, size_t len)
{
	const union MHD_ConnectionInfo *ci;
	gnutls_session_t s;

	/*
	 * Not when a body is refused unread: libmicrohttpd then closes the
	 * connection right after the reply, and the unread body turns the
	 * close into a reset that can overtake a reply sent that late.
	 */
	if (len > HTTP_CORK_MAX || rc->too_large || rc->early)
		return;
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (ci == NULL || ci->tls_session == NULL)
		return;
	s = (gnutls_session_t)ci->tls_session;
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci == NULL)
		return;
	rc->fd = ci->connect_fd;
	rc->corked = s;
	gnutls_record_cork(s);
}

/*
 * The corked reply goes out now.  It is smaller than the socket's send
 * buffer, which a client that reads its replies has emptied before it
 * sent this request: a send that would block means a client that does
 * not read, and it is cut off rather than waited for.
 *
 * On Linux, libmicrohttpd corks a TLS socket (TCP_CORK) for the header of
 * a reply under 1400 bytes, never uncorks it, and pushes each later reply
 * by setting TCP_NODELAY after its last send, which here came before the
 * data reached the socket: without the same push the reply would sit in
 * the kernel for up to 200 ms (tcp(7): setting TCP_NODELAY flushes
 * pending output even under TCP_CORK).  Pushing always is simpler than
 * following libmicrohttpd's state and measured no slower.
 */
static void
uncork(struct req_ctx *rc)
{
	int ret, one = 1;

	do
		ret = gnutls_record_uncork(rc->corked, 0);
	while (ret == GNUTLS_E_INTERRUPTED);
	rc->corked = NULL;
	if (ret < 0) {
		shutdown(rc->fd, SHUT_RDWR);
		return;
	}
	(void)setsockopt(rc->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static enum MHD_Result
send_resp(struct MHD_Connection *conn, struct req_ctx *rc,
    struct http_resp *resp, const char *allow)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(resp->len, resp->body,
	    MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		free(resp->body);
		return MHD_NO;
	}
	resp->body = NULL;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
	    resp->ctype ? resp->ctype : "application/json");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	/* Every 429 says when to come back (docs/irp.md), and a 503 or a
	 * 202 (a request that waits for a decision) that knows. */
	if (resp->status == 429 ||
	    ((resp->status == 503 || resp->status == 202) &&
	    resp->retry_after > 0)) {
		char after[16];

		snprintf(after, sizeof(after), "%d",
		    resp->retry_after > 0 ? resp->retry_after : 60);
		MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, after);
	}
	/* Nothing here is to be read as another type than it says. */
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	if (resp->csp != NULL) {
		MHD_add_response_header(r, "Content-Security-Policy",
		    resp->csp);
		MHD_add_response_header(r, "X-Frame-Options", "DENY");
		MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	}
	/* EST's bodies are base64 (RFC 7030, 4.1.3), and say so. */
	if (resp->base64)
		MHD_add_response_header(r, "Content-Transfer-Encoding",
		    "base64");
	/* RFC 9110: a 405 names the methods the resource has. */
	if (resp->status == 405 && allow != NULL && allow[0] != '\0')
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	if (resp->location[0] != '\0')
		MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION,
		    resp->location);
	cork(conn, rc, resp->len);
	ret = MHD_queue_response(conn, (unsigned int)resp->status, r);
	MHD_destroy_response(r);
	return ret;
}

static double
elapsed(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) +
	    (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

/*
 * Count a body's buffer growing to cap against bodies_mb, the memory
 * all request bodies may hold at once: many large posts at a time
 * (inbox messages of up to 16 MiB) must not take the machine's memory.
 * -1: it does not fit; the body is dropped, drained and answered 503.
 */
static int
hold(struct http_server *srv, struct req_ctx *rc, size_t cap)
{
	size_t max = (size_t)reg_conf(srv->reg)->bodies_mb * 1024 * 1024;
	size_t more = cap - rc->cap;

	if (atomic_fetch_add(&srv->held, more) + more <= max)
		return 0;
	atomic_fetch_sub(&srv->held, more + rc->cap);
	free(rc->body);
	rc->body = NULL;
	rc->len = rc->cap = 0;
	rc->busy = 1;
	return -1;
}

static enum MHD_Result
access_cb(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_size, void **con_cls)
{
	struct listener *li = cls;
	struct http_server *srv = li->srv;
	struct req_ctx *rc = *con_cls;
	struct http_resp resp;
	const char *clen;
	char allow[64];
	enum MHD_Result ret;

	(void)version;
	if (rc == NULL) {
		/* Headers only: pick the route and the body limit. */
		if ((rc = calloc(1, sizeof(*rc))) == NULL)
			return MHD_NO;
		clock_gettime(CLOCK_MONOTONIC, &rc->start);
		snprintf(rc->reqid, sizeof(rc->reqid), "%016llx",
		    (unsigned long long)reqid_mix(srv->reqid_key ^
			atomic_fetch_add(&srv->nreq, 1)));
		atomic_fetch_add(&srv->inflight, 1);
		rc->kind = li->kind;
		rc->route = route_find(li->kind, method, url, rc->param,
		    sizeof(rc->param));
		rc->limit = (size_t)reg_conf(srv->reg)->body_max;
		if (rc->route < NROUTES && routes[rc->route].big == BIG_BACKUP)
			rc->limit = (size_t)reg_conf(srv->reg)->backup_max;
		if (rc->route < NROUTES && routes[rc->route].big == BIG_INBOX)
			rc->limit = (size_t)reg_conf(srv->reg)->inbox_msg_max;
		*con_cls = rc;
		clen = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
		    MHD_HTTP_HEADER_CONTENT_LENGTH);
		/* Refuse an announced oversized body before reading it. */
		if (clen != NULL && strtoull(clen, NULL, 10) > rc->limit) {
			rc->too_large = 1;
			goto reply;
		}
		if (clen != NULL)
			rc->announced = (size_t)strtoull(clen, NULL, 10);
		memset(&resp, 0, sizeof(resp));
		if (early(srv, conn, rc, method, url, &resp) == 1)
			goto send;
		return MHD_YES;
	}
	if (*upload_size > 0) {
		/* Chunked uploads over the limit are drained, then refused. */
		if (!rc->too_large && rc->len + *upload_size > rc->limit)
			rc->too_large = 1;
		if (!rc->too_large && !rc->busy) {
			if (rc->len + *upload_size + 1 > rc->cap) {
				size_t cap = rc->cap ? rc->cap : 4096;
				unsigned char *nb;

				/*
				 * The announced length at once; else double,
				 * but never past the limit (+1 for the NUL
				 * that JSON and PEM readers want).
				 */
				if (rc->announced > cap)
					cap = rc->announced + 1;
				while (cap < rc->len + *upload_size + 1)
					cap *= 2;
				if (cap > rc->limit + 1)
					cap = rc->limit + 1;
				if (hold(srv, rc, cap) == -1)
					goto drain;
				if ((nb = realloc(rc->body, cap)) == NULL)
					return MHD_NO;
				rc->body = nb;
				rc->cap = cap;
			}
			memcpy(rc->body + rc->len, upload_data, *upload_size);
			rc->len += *upload_size;
			rc->body[rc->len] = '\0';
		}
	drain:
		*upload_size = 0;
		return MHD_YES;
	}
reply:
	memset(&resp, 0, sizeof(resp));
	handle(srv, conn, rc, method, url, &resp);
	if (resp.later) {
		free(resp.body);
		return MHD_YES;
	}
	if (resp.wait > 0 && !rc->waited && srv->reg->push != NULL) {
		free(resp.body);
		wait_here(srv, conn, rc, &resp);
		return MHD_YES;
	}
	if (resp.status == 0) /* a handler that may not wait again */
		http_error(&resp, 500, "internal", "no answer was made");
send:
	/* A request that waited for events took as long as nothing happened:
	 * no latency of ours, kept out of the histogram. */
	metrics_request(srv->reg->metrics, rc->route, resp.status,
	    rc->waited ? -1.0 : elapsed(&rc->start));
	allow[0] = '\0';
	if (rc->route == ROUTE_METHOD)
		route_allow(li->kind, url, allow, sizeof(allow));
	ret = send_resp(conn, rc, &resp, allow);
	return ret;
}

static void
completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct http_server *srv = cls;
	struct req_ctx *rc = *con_cls;

	(void)conn;
	if (rc != NULL) {
		atomic_fetch_sub(&srv->inflight, 1);
		/*
		 * After an error the connection is closed; what is corked
		 * goes with the session.
		 */
		if (rc->corked != NULL &&
		    toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
			uncork(rc);
		atomic_fetch_sub(&srv->held, rc->cap);
		if (rc->later_free != NULL)
			rc->later_free(rc->later);
		free(rc->body);
		free(rc);
		*con_cls = NULL;
	}
}

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	log_debug("http: %s", msg);
}

/* ---- listeners ----------------------------------------------------------------- */

/* "[::]:4604", "0.0.0.0:4604", "127.0.0.1:4604", "[::1]:4604". */
static int
parse_listen(const char *s, struct sockaddr_storage *ss, int *wild6)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	char host[128];
	const char *colon, *ps;
	char *end;
	long port;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (rb == NULL || rb[1] != ':' ||
		    (size_t)(rb - s - 1) >= sizeof(host))
			return -1;
		memcpy(host, s + 1, (size_t)(rb - s - 1));
		host[rb - s - 1] = '\0';
		ps = rb + 2;
	} else {
		if ((colon = strrchr(s, ':')) == NULL ||
		    (size_t)(colon - s) >= sizeof(host))
			return -1;
		memcpy(host, s, (size_t)(colon - s));
		host[colon - s] = '\0';
		ps = colon + 1;
	}
	port = strtol(ps, &end, 10);
	if (*ps == '\0' || *end != '\0' || port < 0 || port > 65535)
		return -1;
	*wild6 = 0;
	if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*wild6 = IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr);
		return 0;
	}
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		return 0;
	}
	return -1;
}

static char *
slurp_file(const char *path, char *errbuf, size_t errlen)
{
	FILE *fp;
	char *buf;
	long n;

	if ((fp = fopen(path, "r")) == NULL) {
		snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fseek(fp, 0, SEEK_END) == -1 || (n = ftell(fp)) < 0 ||
	    n > 1 << 20 || fseek(fp, 0, SEEK_SET) == -1 ||
	    (buf = malloc((size_t)n + 1)) == NULL) {
		fclose(fp);
		snprintf(errbuf, errlen, "%s: cannot read", path);
		return NULL;
	}
	if (fread(buf, 1, (size_t)n, fp) != (size_t)n) {
		fclose(fp);
		free(buf);
		snprintf(errbuf, errlen, "%s: cannot read", path);
		return NULL;
	}
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

/*
 * Load the server's key and certificate into GnuTLS once before
 * MHD_start_daemon, which fails on a bad pair without saying why (errno
 * is left as it was): a start-up error must name the file at fault, not
 * blame the port.
 */
static int
check_tls_pair(const char *key_pem, const char *cert_pem, const char *key_path,
    const char *cert_path, char *errbuf, size_t errlen)
{
	gnutls_certificate_credentials_t cred = NULL;
	gnutls_datum_t key, cert;
	int rc, rv = -1;

	key.data = (unsigned char *)key_pem;
	key.size = (unsigned int)strlen(key_pem);
	cert.data = (unsigned char *)cert_pem;
	cert.size = (unsigned int)strlen(cert_pem);
	if (gnutls_certificate_allocate_credentials(&cred) < 0) {
		snprintf(errbuf, errlen, "out of memory");
		goto err;
	}
	rc = gnutls_certificate_set_x509_key_mem(cred, &cert, &key,
	    GNUTLS_X509_FMT_PEM);
	if (rc < 0) {
		snprintf(errbuf, errlen, "cannot use the server key %s with "
		    "the certificate %s: %s", key_path, cert_path,
		    gnutls_strerror(rc));
		goto err;
	}
	rv = 0;
err:
	if (cred != NULL)
		gnutls_certificate_free_credentials(cred);
	return rv;
}

/* Plain-HTTP listeners serve little and seldom: a small pool. */
#define HTTP_PLAIN_WORKERS 2

/*
 * Start one listener of the given kind on spec ("[::]:4604").  The IRP
 * port speaks TLS with client certificates; the others plain HTTP.
 */
static int
listen_on(struct http_server *srv, const char *spec, enum http_kind kind,
    char *errbuf, size_t errlen)
{
	const struct conf *c = &srv->reg->conf;
	struct sockaddr_storage ss;
	struct listener *li;
	struct MHD_Daemon *d;
	unsigned int flags;
	int wild6;

	if (srv->ndaemons >= CONF_LISTEN_MAX + 1 ||
	    parse_listen(spec, &ss, &wild6) == -1) {
		snprintf(errbuf, errlen, "listen address '%s' is not "
		    "ADDRESS:PORT (e.g. [::]:4604 or 127.0.0.1:4604)", spec);
		return -1;
	}
	li = &srv->listeners[srv->ndaemons];
	li->srv = srv;
	li->kind = kind;
	/*
	 * epoll, with stalled handshakes parked (hs.c); poll()
	 * only where epoll could not be had.  MHD_USE_ITC: http_drain's
	 * MHD_quiesce_daemon and every resume need it.
	 */
	flags = MHD_USE_INTERNAL_POLLING_THREAD |
	    (hs_running() ? MHD_USE_EPOLL : MHD_USE_POLL) | MHD_USE_ERROR_LOG |
	    MHD_USE_ITC;
	/* Requests that wait for events sleep suspended (wait_here), and
	 * so do stalled handshakes. */
	if (kind == HK_IRP)
		flags |= MHD_ALLOW_SUSPEND_RESUME;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	if (wild6)
		flags |= MHD_USE_DUAL_STACK;
	{
		/* What every listener has; the IRP port adds TLS. */
		struct MHD_OptionItem common[] = {
			{ MHD_OPTION_THREAD_POOL_SIZE, kind == HK_IRP ?
			    c->workers : HTTP_PLAIN_WORKERS, NULL },
			{ MHD_OPTION_CONNECTION_LIMIT, c->max_conns, NULL },
			{ MHD_OPTION_PER_IP_CONNECTION_LIMIT, c->max_conns_ip,
			    NULL },
			{ MHD_OPTION_CONNECTION_TIMEOUT, c->conn_timeout, NULL },
			{ MHD_OPTION_CONNECTION_MEMORY_LIMIT,
			    (intptr_t)HTTP_CONN_MEMORY, NULL },
			{ MHD_OPTION_NOTIFY_CONNECTION,
			    (intptr_t)notify_connection, srv },
			{ MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)completed_cb,
			    srv },
			{ MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)unescape_cb,
			    srv },
			{ MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, srv },
			{ MHD_OPTION_END, 0, NULL },
		};
		struct MHD_OptionItem tls[] = {
			/* No client of the IRP asks for a protocol; the list
			 * would be 300 bytes in every session. */
			{ MHD_OPTION_TLS_NO_ALPN, 1, NULL },
			{ MHD_OPTION_HTTPS_MEM_KEY, 0, srv->key_pem },
			{ MHD_OPTION_HTTPS_MEM_CERT, 0, srv->cert_pem },
			{ MHD_OPTION_HTTPS_MEM_TRUST, 0,
			    (void *)ca_cert_pem(srv->reg->ca) },
			/* TLS 1.3, and TLS 1.2 with ECDHE only; either with
			 * AES-GCM or ChaCha20-Poly1305 alone: no CBC, no
			 * HMAC-SHA1, no RSA key transport, no CCM. */
			{ MHD_OPTION_HTTPS_PRIORITIES, 0,
			    "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:"
			    "-CIPHER-ALL:+AES-256-GCM:+CHACHA20-POLY1305:"
			    "+AES-128-GCM:-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:"
			    "+ECDHE-RSA" },
			{ MHD_OPTION_END, 0, NULL },
		};
		struct MHD_OptionItem plain[] = {
			{ MHD_OPTION_END, 0, NULL },
		};

		if (kind == HK_IRP)
			flags |= MHD_USE_TLS;
		d = MHD_start_daemon(flags, 0, NULL, NULL, access_cb, li,
		    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
		    MHD_OPTION_ARRAY, common,
		    MHD_OPTION_ARRAY, kind == HK_IRP ? tls : plain,
		    MHD_OPTION_END);
	}
	if (d == NULL) {
		snprintf(errbuf, errlen, "cannot listen on %s: %s (is another "
		    "dird running, or the port in use?)", spec,
		    strerror(errno));
		return -1;
	}
	srv->daemons[srv->ndaemons++] = d;
	log_info("listening on %s%s", kind == HK_IRP ? "" : "http://", spec);
	return 0;
}

struct http_server *
http_start(struct reg *reg, char *errbuf, size_t errlen)
{
	const struct conf *c = &reg->conf;
	struct http_server *srv;
	char path[PATH_MAX + 32], cpath[PATH_MAX + 32];
	size_t i;
	int j;

	for (i = 0; i < NROUTES; i++)
		route_names[i] = routes[i].name;
	route_names[ROUTE_NOTFOUND] = "not_found";
	route_names[ROUTE_METHOD] = "method_not_allowed";

	if ((srv = calloc(1, sizeof(*srv))) == NULL) {
		snprintf(errbuf, errlen, "out of memory");
		return NULL;
	}
	srv->reg = reg;
	if (RAND_bytes((unsigned char *)&srv->reqid_key,
		sizeof(srv->reqid_key)) != 1) {
		snprintf(errbuf, errlen, "no random numbers for request ids");
		free(srv);
		return NULL;
	}
	pthread_key_create(&srv->db_key, db_key_free);
	reg_path(reg, REG_SERVER_KEY, path, sizeof(path));
	if ((srv->key_pem = slurp_file(path, errbuf, errlen)) == NULL)
		goto err;
	reg_path(reg, REG_SERVER_CERT, cpath, sizeof(cpath));
	if ((srv->cert_pem = slurp_file(cpath, errbuf, errlen)) == NULL ||
	    check_tls_pair(srv->key_pem, srv->cert_pem, path, cpath, errbuf,
		errlen) == -1)
		goto err;

	if (hs_init(c->conn_timeout, c->max_conns) == -1)
		log_info("listeners poll(): every wake-up visits every "
		    "connection");
	for (j = 0; j < c->nlisten; j++) {
		if (strncmp(c->listen[j], "http://", 7) == 0) {
			if (listen_on(srv, c->listen[j] + 7, HK_PUBLIC, errbuf,
			    errlen) == -1)
				goto err;
		} else if (listen_on(srv, c->listen[j], HK_IRP, errbuf,
		    errlen) == -1)
			goto err;
	}
	if (c->metrics_listen[0] != '\0' && listen_on(srv, c->metrics_listen,
	    HK_METRICS, errbuf, errlen) == -1)
		goto err;
	return srv;
err:
	http_stop(srv);
	return NULL;
}

/*
 * libmicrohttpd's MHD_stop_daemon closes every connection, also those
 * whose request is half received; so first stop accepting, then let the
 * requests already taken finish.  Keep-alive connections between
 * requests hold nothing up.
 */
int
http_drain(struct http_server *srv, int secs)
{
	struct timespec tick = { 0, 50 * 1000 * 1000 };
	long turns;
	int j;

	for (j = 0; j < srv->ndaemons; j++)
		srv->lsock[j] = MHD_quiesce_daemon(srv->daemons[j]);
	srv->quiesced = 1;
	/* Requests that wait for events are answered now, with what is. */
	push_stop(srv->reg->push);
	for (turns = (long)secs * 20; turns > 0 &&
	    atomic_load(&srv->inflight) > 0; turns--)
		nanosleep(&tick, NULL);
	return atomic_load(&srv->inflight);
}

void
http_stop(struct http_server *srv)
{
	int j;

	if (srv == NULL)
		return;
	/* Parked handshakes are suspended connections: back first. */
	hs_stop();
	for (j = 0; j < srv->ndaemons; j++) {
		MHD_stop_daemon(srv->daemons[j]);
		/* Quiesced, the listening socket is ours to close, after
		 * the daemon's threads are gone. */
		if (srv->quiesced && srv->lsock[j] != MHD_INVALID_SOCKET)
			close(srv->lsock[j]);
	}
	hs_free();
	/* Pool threads ran the key destructor; the main thread has none. */
	pthread_key_delete(srv->db_key);
	free(srv->key_pem);
	free(srv->cert_pem);
	free(srv);
}

/* The metrics handler needs the names; it lives in api_misc.c. */
const char *const *http_route_names(size_t *n);

const char *const *
http_route_names(size_t *n)
{
	*n = NROUTES + 2;
	return route_names;
}
