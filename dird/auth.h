/*
 * auth.h - who is calling: client certificates, enrolment codes,
 * passwords, and the rate limiter for failed attempts.
 */
#ifndef AUTH_H
#define AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "db.h"

struct http_req;
struct reg_err;

enum auth_kind {
	AUTH_NONE = 0,
	AUTH_CERT,
	AUTH_CODE,
	AUTH_PASSWORD,
	AUTH_REGISTRY
};

struct auth_ident {
	enum auth_kind kind;
	struct db_user user;
	int64_t cert_id; /* AUTH_CERT: the certificate used */
	char serial[DB_SERIAL_MAX];
	char fingerprint[DB_FP_MAX];
	/* AUTH_REGISTRY: another domain's registry (fed_admit), and why. */
	char registry[254];
	char trust[32];
	/* AUTH_CODE checked with AUTH_CODE_LATER: the code's SHA-256. */
	unsigned char code_hash[32];
};

/* Secrets accepted by auth_secret(). */
#define AUTH_ALLOW_CODE 1
#define AUTH_ALLOW_PASSWORD 2
/*
 * A code is checked, not consumed: the write it authenticates consumes
 * it (db_cert_record with who.code_hash), which fails when another
 * request consumed it meanwhile.
 */
#define AUTH_CODE_LATER 4
/*
 * HTTP Basic userid:CODE (as EST clients send a secret) is taken as that
 * user's enrolment code when the password has a code's shape.
 */
#define AUTH_BASIC_CODE 8

struct auth;

/*
 * The limiter (auth_fail_max failures per auth_fail_window seconds) and
 * what password checks need.  NULL on error, with a sentence in errbuf.
 */
struct auth *auth_new(const struct conf *c, char *errbuf, size_t errlen);
void auth_free(struct auth *a);

/*
 * Authenticate by client certificate: it chained to our CA in the TLS
 * handshake (req->peer_verified), and its serial is in the store as valid,
 * unexpired, of an enabled user.  Checked on every request, so a
 * revocation takes effect at once, also on kept-alive connections.
 * 0 and req->who filled, or -1 with the verdict in e (401, 503).
 */
int auth_cert(struct auth *a, struct http_req *req, struct reg_err *e);

/*
 * What can be said of a code or password request before its body is
 * read: the source is not over its limit, and there is an Authorization
 * header of a scheme dird takes.  0, or -1 with the verdict in e (429,
 * with its Retry-After; 401).
 */
int auth_secret_precheck(struct auth *a, struct http_req *req,
    struct reg_err *e);

/*
 * Authenticate by "Authorization: Bearer CODE" or HTTP Basic
 * userid:password, as `allow` permits.  A code is consumed (marked used)
 * inside the caller's open transaction, so a failure later in the request
 * and a rollback leave it unused; with AUTH_CODE_LATER it is only
 * checked (see there).  Failed codes are counted per source,
 * failed passwords per source and per user (a source is an IPv4 address
 * or an IPv6 /64); over the limit the answer is 429.
 */
int auth_secret(struct auth *a, struct http_req *req, int allow,
    struct reg_err *e);

/* Whether the request carries any Authorization header. */
int auth_has_secret(const struct http_req *req);
/*
 * 1 when req carries HTTP Basic credentials whose password has the shape
 * of an enrolment code (AUTH_BASIC_CODE), with the code's SHA-256 in
 * hash; else 0.  Checks nothing in the store.
 */
int auth_basic_code_hash(const struct http_req *req, unsigned char hash[32]);

/* The longest base64 of HTTP Basic credentials taken, and a buffer that
 * holds either part of any of them with its NUL. */
#define AUTH_BASIC_B64_MAX 512
#define AUTH_BASIC_FIELD_MAX (AUTH_BASIC_B64_MAX / 4 * 3 + 1)

/*
 * The credentials of "Authorization: Basic B64" (RFC 7617): B64 is strict
 * base64 (1 to AUTH_BASIC_B64_MAX characters, a multiple of 4, '=' only
 * as padding at the end) of "userid:password", split at the first ':'.
 * Neither part may hold a NUL, and each must fit its buffer (ulen, plen
 * bytes) with its NUL; the user id is as given, not normalized.  0, or -1
 * when malformed (then both buffers hold "").
 */
int auth_basic_decode(const char *b64, char *userid, size_t ulen,
    char *password, size_t plen);

#endif
