/*
 * http.h - dird's HTTPS front: libmicrohttpd on GnuTLS, routing, bodies,
 * limits, replies.  Handlers (api_*.c) see only struct http_req and
 * struct http_resp; nothing of libmicrohttpd.
 */
#ifndef HTTP_H
#define HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "auth.h"
#include "cache.h"
#include "db.h"
#include "metrics.h"
#include "reg.h"

struct http_req {
	const char *method;
	const char *path;
	const char *source;   /* peer address, text; v4-mapped shown as v4 */
	char reqid[17];
	const unsigned char *body;
	size_t body_len;
	json_t *json;	      /* parsed body for JSON routes, else NULL */
	const char *param;    /* the {…} segment of the route, decoded */
	const char *authorization; /* header, or NULL */
	struct db *db;	      /* this worker thread's connection */
	struct reg *reg;      /* the environment (read-only for handlers) */
	struct auth_ident who; /* filled by the route's authentication */
	const unsigned char *peer_der; /* client certificate, or NULL */
	size_t peer_der_len;
	int peer_verified;    /* it chains to our CA (TLS-level check) */
	const unsigned char *peer_ca_der; /* the certificate sent after it */
	size_t peer_ca_der_len;
	const char *from_domain; /* IRP-Domain: another registry asks */
	int no_cache;	      /* Cache-Control: no-cache */
	const char *msg_id;   /* IRP-Message-Id: a post to an inbox */
	const char *sender;   /* IRP-Sender: whose post a registry relays */
	int waited;	      /* it waited already (http_resp's wait) */
	void *later;	      /* what http_later kept, when called again */
	void *conn;	      /* for http_query and http_later only */
	void *ctx;	      /* http.c's */
};

struct http_resp {
	int status;
	const char *ctype;
	unsigned char *body; /* malloc'd, freed by http.c */
	size_t len;
	char location[256];  /* optional Location header */
	int retry_after;     /* a 429's Retry-After, seconds */
	/*
	 * A handler that has nothing to say yet may leave status 0 and ask
	 * to wait up to `wait` seconds for wait_user to be announced
	 * (push.h), with the ticket it took before it looked.  It is called
	 * again when that happened or the time is up, with req->waited set,
	 * and must answer then.
	 */
	int wait;
	int64_t wait_user;
	uint64_t wait_ticket;
	int later; /* http_later was called: no reply now */
	int base64; /* Content-Transfer-Encoding: base64 (EST) */
	const char *csp; /* Content-Security-Policy of a page, or NULL */
};

/*
 * A handler whose work finishes on another thread (a group commit,
 * commit.h): the connection sleeps, holding no thread, and state is
 * kept (freed with state_free when the request ends).  The handler then
 * hands its work on with http_wake and req->conn to call when it is
 * done; it is called again with req->later = state, without a parsed
 * body, and answers then.
 */
void http_later(struct http_req *req, struct http_resp *resp, void *state,
    void (*state_free)(void *));
/* Call the handler left by http_later again; from any thread, once. */
void http_wake(void *conn);

/* The query argument name of the request, or NULL. */
const char *http_query(const struct http_req *req, const char *name);

/* JSON reply; steals obj. */
void http_json(struct http_resp *resp, int status, json_t *obj);
/* A JSON reply serialised already; takes text (malloc'd, len bytes). */
void http_json_text(struct http_resp *resp, int status, char *text,
    size_t len);
/* The IRP error object {"error":{"code","message"}}. */
void http_error(struct http_resp *resp, int status, const char *code,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void http_reg_error(struct http_resp *resp, const struct reg_err *e);
void http_db_error(struct http_resp *resp, const struct db_err *e);
/*
 * A request body as a JSON object: one value with no duplicate keys and
 * nothing after it.  A new reference, or NULL with resp filled (400).
 * Pure (no I/O), so it is fuzzed (tests/fuzz/fuzz_request.c).
 */
json_t *http_parse_json(const unsigned char *body, size_t len,
    struct http_resp *resp);
/* A binary or text reply; copies data. */
void http_blob(struct http_resp *resp, int status, const char *ctype,
    const void *data, size_t len);

struct http_server;

/*
 * Start listening on every conf listen address with the server key and
 * certificate of the data directory; requests see reg (borrowed, for as
 * long as the server runs).  NULL with a message on failure.
 */
struct http_server *http_start(struct reg *reg, char *errbuf,
    size_t errlen) __attribute__((warn_unused_result));
/*
 * Stop accepting connections and wait until no request is in flight (one
 * whose headers arrived and whose reply is not sent yet), for at most
 * secs seconds.  Returns how many are still in flight.
 */
int http_drain(struct http_server *srv, int secs);
/* Close every connection and listener, and the database connections. */
void http_stop(struct http_server *srv);

#endif
