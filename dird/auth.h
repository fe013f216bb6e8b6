/*
 * auth.h - who is calling: client certificates, enrolment codes,
 * passwords, and the rate limiter for failed attempts.
 */
#ifndef AUTH_H
#define AUTH_H

#include <stdint.h>

#include "conf.h"
#include "db.h"

struct http_req;
struct http_resp;

enum auth_kind { AUTH_NONE = 0, AUTH_CERT, AUTH_CODE, AUTH_PASSWORD };

struct auth_ident {
	enum auth_kind kind;
	struct db_user user;
	int64_t cert_id; /* AUTH_CERT: the certificate used */
	char serial[DB_SERIAL_MAX];
	char fingerprint[DB_FP_MAX];
};

/* Secrets accepted by auth_secret(). */
#define AUTH_ALLOW_CODE 1
#define AUTH_ALLOW_PASSWORD 2

struct auth;

struct auth *auth_new(const struct conf *c);
void auth_free(struct auth *a);

/*
 * Authenticate by client certificate: it chained to our CA in the TLS
 * handshake (req->peer_verified), and its serial is in the store as valid,
 * unexpired, of an enabled user.  Checked on every request, so a
 * revocation takes effect at once, also on kept-alive connections.
 * 0 and req->who filled, or -1 with resp filled (401, 503).
 */
int auth_cert(struct auth *a, struct http_req *req, struct http_resp *resp);

/*
 * Authenticate by "Authorization: Bearer CODE" or HTTP Basic
 * userid:password, as `allow` permits.  A code is consumed (marked used)
 * inside the caller's open transaction, so a failure later in the request
 * and a rollback leave it unused.  Failures are counted per source
 * address and per user; over the limit the answer is 429.
 */
int auth_secret(struct auth *a, struct http_req *req, int allow,
    struct http_resp *resp);

/* Whether the request carries any Authorization header. */
int auth_has_secret(const struct http_req *req);

#endif
