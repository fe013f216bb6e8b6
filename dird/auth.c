/*
 * auth.c - certificate, code and password authentication, and the
 * limiter of failed attempts.
 *
 * Failures are counted in a limit.h table, in this process (several dird
 * instances each keep their own): wrong codes per source, wrong
 * passwords per source and per user; a source is an IPv4 address or an
 * IPv6 /64.  A password check costs the same Argon2id work whether or not
 * the user id exists and has a password, so the time of an answer does
 * not tell which user ids do.
 *
 * The facts read from a client certificate (serial, validity) are kept in
 * a table keyed by the SHA-256 of its DER: they are a function of those
 * bytes alone, so an entry is never stale, and parsing a certificate
 * costs about 0.2 ms in OpenSSL 3.0, more than the rest of a lookup.  The
 * table has room for twice max_connections certificates, in sets of
 * four with the least recently used one replaced: with 64 slots, 10,000
 * devices on connections of their own made every request parse again
 * (half of dird's time in a soak).  Revocation, expiry in the store and the user's state come
 * from the database, or from the answer cache (cache.h), which drops a
 * user's entries when any of that changes.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "auth.h"
#include "http.h"
#include "irp.h"
#include "limit.h"
#include "reg.h"

/*
 * Slots per row of the limiter.  A key is over its limit by others'
 * failures alone only when each of its LIMIT_ROWS slots gathered
 * auth_fail_max of them in one window: that takes about auth_fail_max x
 * 16384 failures spread over the table (80000 by default), and one source
 * makes at most auth_fail_max, so thousands of sources.
 */
#define AUTH_LIMIT_WIDTH 16384
#define AUTH_CERT_SLOTS_MIN 64
#define AUTH_CERT_WAYS 4

/* What authentication reads of a certificate, and no more. */
struct cert_slot {
	uint64_t used_at; /* 0: free */
	unsigned char md[32]; /* SHA-256 of the DER */
	char serial[CA_SERIAL_HEX_MAX];
	char fingerprint[CA_FP_HEX_LEN];
	time_t not_before, not_after;
};

struct auth {
	struct limit *fails;
	int window;	/* seconds a failure counts: auth_fail_window */
	/* Argon2id of a random password, checked when there is no hash. */
	char dummy[REG_PWHASH_MAX];
	pthread_mutex_t cert_lock;
	EVP_MD *sha256; /* fetched once: an implicit fetch per call is slow */
	struct cert_slot *certs;
	size_t cert_sets;  /* a power of two, of AUTH_CERT_WAYS slots */
	uint64_t cert_clock;
};

/* A password nobody knows, hashed as reg_password_hash hashes them all. */
static int
dummy_hash(char *out, size_t outlen, char *errbuf, size_t errlen)
{
	unsigned char rnd[32];
	char pw[2 * sizeof(rnd) + 1];
	struct reg_err e;
	size_t i;
	int rv;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		snprintf(errbuf, errlen, "no randomness available");
		return -1;
	}
	for (i = 0; i < sizeof(rnd); i++) {
		pw[2 * i] = "0123456789abcdef"[rnd[i] >> 4];
		pw[2 * i + 1] = "0123456789abcdef"[rnd[i] & 15];
	}
	pw[2 * sizeof(rnd)] = '\0';
	rv = reg_password_hash(pw, out, outlen, &e);
	OPENSSL_cleanse(rnd, sizeof(rnd));
	OPENSSL_cleanse(pw, sizeof(pw));
	if (rv == -1)
		snprintf(errbuf, errlen, "%s", e.msg);
	return rv;
}

struct auth *
auth_new(const struct conf *c, char *errbuf, size_t errlen)
{
	char why[200];
	struct auth *a;

	if ((a = calloc(1, sizeof(*a))) == NULL) {
		snprintf(errbuf, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&a->cert_lock, NULL);
	a->cert_sets = AUTH_CERT_SLOTS_MIN / AUTH_CERT_WAYS;
	while (a->cert_sets * AUTH_CERT_WAYS < 2 * (size_t)c->max_conns)
		a->cert_sets <<= 1;
	if ((a->certs = calloc(a->cert_sets * AUTH_CERT_WAYS,
		 sizeof(*a->certs))) == NULL) {
		snprintf(errbuf, errlen, "out of memory");
		goto err;
	}
	/* Without it every certificate is parsed each time: slower, same
	 * answers. */
	a->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	a->window = c->auth_fail_window;
	if ((a->fails = limit_new(AUTH_LIMIT_WIDTH, c->auth_fail_max,
		 c->auth_fail_window, NULL, why, sizeof(why))) == NULL) {
		snprintf(errbuf, errlen, "%s", why);
		goto err;
	}
	if (dummy_hash(a->dummy, sizeof(a->dummy), why, sizeof(why)) == -1) {
		snprintf(errbuf, errlen, "password check: %s", why);
		goto err;
	}
	return a;
err:
	auth_free(a);
	return NULL;
}

void
auth_free(struct auth *a)
{
	if (a == NULL)
		return;
	limit_free(a->fails);
	pthread_mutex_destroy(&a->cert_lock);
	EVP_MD_free(a->sha256);
	free(a->certs);
	free(a);
}

/* 1 when the request's source is over its limit now. */
static int
source_over(struct auth *a, const struct http_req *req)
{
	char key[LIMIT_SOURCE_MAX];

	if (limit_source_key(req->source, key, sizeof(key)) == -1)
		return 1;
	return limit_over(a->fails, "src", key, limit_now());
}

static void
source_failed(struct auth *a, const struct http_req *req)
{
	char key[LIMIT_SOURCE_MAX];

	if (limit_source_key(req->source, key, sizeof(key)) == 0)
		limit_hit(a->fails, "src", key, limit_now());
}

int
auth_has_secret(const struct http_req *req)
{
	return req->authorization != NULL && *req->authorization != '\0';
}

/*
 * The key of a certificate in both caches: 'a' and the SHA-256 of its
 * DER.  0 when it can not be computed (then nothing is cached).
 */
static size_t
cert_key(struct auth *a, const unsigned char *der, size_t len,
    unsigned char key[33])
{
	unsigned int mdlen = 0;

	key[0] = 'a';
	if (a->sha256 == NULL ||
	    EVP_Digest(der, len, key + 1, &mdlen, a->sha256, NULL) != 1 ||
	    mdlen != 32)
		return 0;
	return 33;
}

/* The set of slots of the certificate whose SHA-256 is md. */
static struct cert_slot *
cert_set(struct auth *a, const unsigned char *md)
{
	uint64_t h;

	memcpy(&h, md, sizeof(h));
	return &a->certs[(h & (a->cert_sets - 1)) * AUTH_CERT_WAYS];
}

/*
 * ca_cert_info through the table described at the top.  From the table
 * only serial, fingerprint, not_before and not_after are filled: all
 * that authentication reads.
 */
static int
cert_info(struct auth *a, const unsigned char *der, size_t len,
    const unsigned char key[33], size_t keylen, struct ca_cert_info *info,
    struct ca_err *ce)
{
	const unsigned char *md = key + 1;
	struct cert_slot *set, *s, *old;
	int i;

	if (keylen == 0)
		return ca_cert_info(der, len, info, ce);
	set = cert_set(a, md);
	pthread_mutex_lock(&a->cert_lock);
	for (i = 0; i < AUTH_CERT_WAYS; i++) {
		s = &set[i];
		if (s->used_at != 0 && memcmp(s->md, md, sizeof(s->md)) == 0) {
			s->used_at = ++a->cert_clock;
			memset(info, 0, sizeof(*info));
			memcpy(info->serial, s->serial, sizeof(info->serial));
			memcpy(info->fingerprint, s->fingerprint,
			    sizeof(info->fingerprint));
			info->not_before = s->not_before;
			info->not_after = s->not_after;
			pthread_mutex_unlock(&a->cert_lock);
			return 0;
		}
	}
	pthread_mutex_unlock(&a->cert_lock);
	if (ca_cert_info(der, len, info, ce) == -1)
		return -1;
	pthread_mutex_lock(&a->cert_lock);
	for (i = 0, old = set; i < AUTH_CERT_WAYS; i++)
		if (set[i].used_at < old->used_at)
			old = &set[i];
	old->used_at = ++a->cert_clock;
	memcpy(old->md, md, sizeof(old->md));
	memcpy(old->serial, info->serial, sizeof(old->serial));
	memcpy(old->fingerprint, info->fingerprint, sizeof(old->fingerprint));
	old->not_before = info->not_before;
	old->not_after = info->not_after;
	pthread_mutex_unlock(&a->cert_lock);
	return 0;
}

/*
 * The database's word on a certificate: from the cache when it holds a
 * fresh one (only accepted certificates are kept there), else read;
 * then *store is 1 and *ticket is for cache_put.
 */
static int
cert_record(struct http_req *req, const unsigned char *key, size_t keylen,
    const struct ca_cert_info *info, struct db_auth *da, int *store,
    uint64_t *ticket, struct db_err *de)
{
	struct cache *c = req->reg->cache;
	void *val;
	size_t len;
	int hit = 0;

	*store = 0;
	if (c != NULL && keylen > 0) {
		if (cache_get(c, key, keylen, time(NULL), &val, &len) == 1) {
			if ((hit = len == sizeof(*da)))
				memcpy(da, val, sizeof(*da));
			free(val);
			if (hit)
				return 0;
		}
		*store = 1;
		*ticket = cache_ticket(c);
	}
	return db_auth_cert(req->db, ca_fingerprint(req->reg->ca),
	    info->serial, da, de);
}

int
auth_cert(struct auth *a, struct http_req *req, struct reg_err *e)
{
	struct ca_cert_info info;
	struct ca_err ce;
	struct db_auth da;
	struct db_err de;
	unsigned char key[33];
	uint64_t ticket = 0;
	size_t keylen = 0;
	int store;

	if (req->peer_der == NULL) {
		reg_seterr(e, 401, "certificate_required",
		    "this request needs a client certificate issued by this "
		    "registry");
		goto fail;
	}
	if (!req->peer_verified) {
		/*
		 * The handshake check fails for our own certificates that are
		 * out of date too; tell their owners to renew rather than
		 * calling a certificate we issued "untrusted".
		 */
		if (ca_cert_is_ours(req->reg->ca, req->peer_der,
			req->peer_der_len, &ce) == 1 &&
		    ca_cert_info(req->peer_der, req->peer_der_len, &info,
			&ce) == 0 &&
		    (info.not_after <= time(NULL) ||
			info.not_before > time(NULL))) {
			reg_seterr(e, 401, "certificate_expired",
			    "the client certificate has expired or is not "
			    "yet valid; renew or enrol again");
			goto fail;
		}
		reg_seterr(e, 401, "certificate_untrusted",
		    "the client certificate was not issued by this registry's "
		    "CA, or is not valid for client authentication");
		goto fail;
	}
	keylen = cert_key(a, req->peer_der, req->peer_der_len, key);
	if (cert_info(a, req->peer_der, req->peer_der_len, key, keylen, &info,
		&ce) == -1) {
		reg_seterr(e, 401, "certificate_untrusted",
		    "the client certificate can not be read");
		goto fail;
	}
	if (cert_record(req, key, keylen, &info, &da, &store, &ticket,
		&de) == -1) {
		if (de.code != DB_ERR_NOTFOUND) {
			reg_err_from_db(e, &de);
			return -1;
		}
		reg_seterr(e, 401, "certificate_unknown",
		    "the client certificate is not registered here");
		goto fail;
	}
	if (da.revoked) {
		reg_seterr(e, 401, "certificate_revoked",
		    "the client certificate has been revoked");
		goto fail;
	}
	if (da.not_after <= time(NULL) || info.not_after <= time(NULL)) {
		reg_seterr(e, 401, "certificate_expired",
		    "the client certificate has expired; renew or enrol again");
		goto fail;
	}
	if (!da.user.enabled) {
		reg_seterr(e, 401, "user_disabled",
		    "the account %s is disabled", da.user.userid);
		goto fail;
	}
	if (store)
		cache_put(req->reg->cache, CACHE_CERT, key, keylen, da.user.id,
		    da.not_after < info.not_after ? da.not_after :
						    info.not_after,
		    ticket, &da, sizeof(da));
	req->who.kind = AUTH_CERT;
	req->who.user = da.user;
	req->who.cert_id = da.cert_id;
	memcpy(req->who.serial, info.serial, sizeof(req->who.serial));
	memcpy(req->who.fingerprint, info.fingerprint,
	    sizeof(req->who.fingerprint));
	return 0;
fail:
	metrics_auth_failure(req->reg->metrics);
	return -1;
}

/*
 * Refused for earlier failures.  They count for the window from the
 * first of them (limit.h), so after one window from now none counts:
 * a client that waits that long is not refused again for them.
 */
static int
too_many(const struct auth *a, struct reg_err *e)
{
	reg_seterr(e, 429, "rate_limited",
	    "too many failed attempts; try again in %d seconds", a->window);
	e->retry_after = a->window;
	return -1;
}

static int
auth_code(struct auth *a, struct http_req *req, const char *code, int later,
    struct reg_err *e)
{
	unsigned char hash[32];
	struct db_err de;
	int64_t uid;
	int rv;

	reg_code_hash(code, hash);
	if (later) {
		rv = db_code_check(req->db, hash, &uid, &de);
		memcpy(req->who.code_hash, hash, sizeof(hash));
	} else
		rv = db_code_consume(req->db, hash, &uid, &de);
	OPENSSL_cleanse(hash, sizeof(hash));
	if (rv == -1) {
		if (de.code != DB_ERR_NOTFOUND) {
			reg_err_from_db(e, &de);
			return -1;
		}
		source_failed(a, req);
		metrics_auth_failure(req->reg->metrics);
		reg_seterr(e, 401, "invalid_code",
		    "the enrolment code is unknown, already used or expired");
		return -1;
	}
	{
		struct db_user u;

		if (db_user_by_id(req->db, uid, &u, &de) == -1) {
			reg_err_from_db(e, &de);
			return -1;
		}
		if (!u.enabled) {
			reg_seterr(e, 401, "user_disabled",
			    "the account %s is disabled", u.userid);
			return -1;
		}
		req->who.kind = AUTH_CODE;
		req->who.user = u;
	}
	return 0;
}

/* Whether c is in the base64 alphabet (RFC 4648, section 4). */
static int
is_b64(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '+' || c == '/';
}

int
auth_basic_decode(const char *b64, char *userid, size_t ulen, char *password,
    size_t plen)
{
	unsigned char raw[AUTH_BASIC_FIELD_MAX];
	const unsigned char *colon;
	size_t n, pad = 0, i, un, pn;
	int len, rv = -1;

	if (ulen > 0)
		userid[0] = '\0';
	if (plen > 0)
		password[0] = '\0';
	/*
	 * Strict base64: EVP_DecodeBlock alone takes '=' anywhere as zero
	 * bits and skips blanks at both ends.
	 */
	n = strnlen(b64, AUTH_BASIC_B64_MAX + 1);
	if (n == 0 || n > AUTH_BASIC_B64_MAX || n % 4 != 0)
		return -1;
	while (pad < 2 && b64[n - 1 - pad] == '=')
		pad++;
	for (i = 0; i < n - pad; i++)
		if (!is_b64(b64[i]))
			return -1;
	if ((len = EVP_DecodeBlock(raw, (const unsigned char *)b64,
		 (int)n)) < 0 || (size_t)len < pad)
		goto err;
	/* EVP_DecodeBlock counts the padding as data. */
	len -= (int)pad;
	if (memchr(raw, '\0', (size_t)len) != NULL ||
	    (colon = memchr(raw, ':', (size_t)len)) == NULL)
		goto err;
	un = (size_t)(colon - raw);
	pn = (size_t)len - un - 1;
	if (un >= ulen || pn >= plen)
		goto err;
	memcpy(userid, raw, un);
	userid[un] = '\0';
	memcpy(password, colon + 1, pn);
	password[pn] = '\0';
	rv = 0;
err:
	OPENSSL_cleanse(raw, sizeof(raw));
	return rv;
}

static int
auth_password(struct auth *a, struct http_req *req, const char *b64,
    struct reg_err *e)
{
	char given[AUTH_BASIC_FIELD_MAX], pw[AUTH_BASIC_FIELD_MAX];
	char userid[IRP_USERID_MAX + 1], hash[REG_PWHASH_MAX];
	const char *why;
	struct db_user u;
	struct db_err de;
	int found, ok, rv = -1;

	hash[0] = '\0';
	if (auth_basic_decode(b64, given, sizeof(given), pw,
		sizeof(pw)) == -1) {
		reg_seterr(e, 401, "bad_credentials",
		    "malformed Basic authorization");
		return -1;
	}
	if (irp_userid_normalize(given, userid, sizeof(userid), &why) == -1) {
		source_failed(a, req);
		reg_seterr(e, 401, "bad_credentials", "wrong user or password");
		goto out;
	}
	if (limit_over(a->fails, "user", userid, limit_now())) {
		too_many(a, e);
		goto out;
	}
	found = db_user_password(req->db, userid, hash, sizeof(hash),
	    &de) == 0;
	if (!found && de.code != DB_ERR_NOTFOUND) {
		reg_err_from_db(e, &de);
		goto out;
	}
	/*
	 * No such user, or no password: the same Argon2id work as a wrong
	 * password, so that the time of the answer tells nothing.
	 */
	if (!found || hash[0] == '\0') {
		(void)reg_password_verify(a->dummy, pw);
		ok = 0;
	} else
		ok = reg_password_verify(hash, pw);
	if (!ok || db_user_get(req->db, userid, &u, &de) == -1 || !u.enabled) {
		source_failed(a, req);
		limit_hit(a->fails, "user", userid, limit_now());
		metrics_auth_failure(req->reg->metrics);
		reg_seterr(e, 401, "bad_credentials", "wrong user or password");
		goto out;
	}
	req->who.kind = AUTH_PASSWORD;
	req->who.user = u;
	rv = 0;
out:
	OPENSSL_cleanse(given, sizeof(given));
	OPENSSL_cleanse(pw, sizeof(pw));
	OPENSSL_cleanse(hash, sizeof(hash));
	return rv;
}

/*
 * Whether the password of Basic credentials b64 has the shape of an
 * enrolment code (REG_CODE_LEN symbols of its alphabet, '-' and ' '
 * aside), which a person's password hardly has.
 */
static int
basic_code(const char *b64)
{
	static const char alphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
	char userid[AUTH_BASIC_FIELD_MAX], pw[AUTH_BASIC_FIELD_MAX];
	size_t i, n = 0;
	int ok = 1;

	if (auth_basic_decode(b64, userid, sizeof(userid), pw,
		sizeof(pw)) == -1)
		return 0;
	for (i = 0; pw[i] != '\0' && ok; i++) {
		if (pw[i] == '-' || pw[i] == ' ')
			continue;
		ok = strchr(alphabet, toupper((unsigned char)pw[i])) != NULL;
		n++;
	}
	OPENSSL_cleanse(pw, sizeof(pw));
	return ok && n == REG_CODE_LEN;
}

int
auth_basic_code_hash(const struct http_req *req, unsigned char hash[32])
{
	char userid[AUTH_BASIC_FIELD_MAX], code[AUTH_BASIC_FIELD_MAX];
	const char *h = req->authorization;

	if (h == NULL || strncasecmp(h, "Basic ", 6) != 0)
		return 0;
	for (h += 6; *h == ' '; h++)
		;
	if (!basic_code(h) || auth_basic_decode(h, userid, sizeof(userid),
		code, sizeof(code)) == -1)
		return 0;
	reg_code_hash(code, hash);
	OPENSSL_cleanse(code, sizeof(code));
	return 1;
}

/* Basic userid:CODE (EST clients): the code, which must be userid's. */
static int
auth_basic_code(struct auth *a, struct http_req *req, const char *b64,
    int allow, struct reg_err *e)
{
	char given[AUTH_BASIC_FIELD_MAX], code[AUTH_BASIC_FIELD_MAX];
	char userid[IRP_USERID_MAX + 1];
	const char *why;
	int rv = -1;

	if (auth_basic_decode(b64, given, sizeof(given), code,
		sizeof(code)) == -1 ||
	    irp_userid_normalize(given, userid, sizeof(userid), &why) == -1) {
		source_failed(a, req);
		reg_seterr(e, 401, "invalid_code", "the enrolment code is "
		    "unknown, already used or expired");
		goto out;
	}
	/* Checked first, consumed (unless the caller's write will) only
	 * once it is known to be userid's. */
	if ((rv = auth_code(a, req, code, 1, e)) == 0 &&
	    strcmp(req->who.user.userid, userid) != 0) {
		/* Someone else's code: as if it did not exist. */
		memset(&req->who, 0, sizeof(req->who));
		source_failed(a, req);
		metrics_auth_failure(req->reg->metrics);
		reg_seterr(e, 401, "invalid_code", "the enrolment code is "
		    "unknown, already used or expired");
		rv = -1;
	}
	if (rv == 0 && !(allow & AUTH_CODE_LATER))
		rv = auth_code(a, req, code, 0, e);
out:
	OPENSSL_cleanse(code, sizeof(code));
	return rv;
}

int
auth_secret_precheck(struct auth *a, struct http_req *req,
    struct reg_err *e)
{
	const char *h = req->authorization;

	if (source_over(a, req))
		return too_many(a, e);
	if (h == NULL || *h == '\0') {
		reg_seterr(e, 401, "credentials_required",
		    "give an enrolment code (Authorization: Bearer CODE) or a "
		    "password (HTTP Basic)");
		return -1;
	}
	if (strncasecmp(h, "Bearer ", 7) != 0 &&
	    strncasecmp(h, "Basic ", 6) != 0) {
		reg_seterr(e, 401, "bad_credentials",
		    "unsupported Authorization scheme here");
		return -1;
	}
	return 0;
}

int
auth_secret(struct auth *a, struct http_req *req, int allow,
    struct reg_err *e)
{
	const char *h = req->authorization;

	if (auth_secret_precheck(a, req, e) == -1)
		return -1;
	if ((allow & AUTH_ALLOW_CODE) && strncasecmp(h, "Bearer ", 7) == 0) {
		h += 7;
		while (*h == ' ')
			h++;
		if (strlen(h) > 64) {
			reg_seterr(e, 401, "invalid_code",
			    "the enrolment code is unknown, already used or "
			    "expired");
			return -1;
		}
		return auth_code(a, req, h, allow & AUTH_CODE_LATER, e);
	}
	if ((allow & AUTH_ALLOW_PASSWORD) && strncasecmp(h, "Basic ", 6) == 0) {
		h += 6;
		while (*h == ' ')
			h++;
		if ((allow & AUTH_BASIC_CODE) && basic_code(h))
			return auth_basic_code(a, req, h, allow, e);
		return auth_password(a, req, h, e);
	}
	reg_seterr(e, 401, "bad_credentials",
	    "unsupported Authorization scheme here");
	return -1;
}
