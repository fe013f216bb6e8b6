/*
 * auth.c - certificate, code and password authentication, and the
 * limiter of failed attempts.
 *
 * The limiter is a fixed table of slots keyed by a hash of "src:ADDR" or
 * "user:USERID", each counting failures in a window.  A collision shares
 * a slot, which can only make the limit stricter.  It lives in this
 * process: several dird instances each keep their own.
 *
 * The facts read from a client certificate (serial, validity) are kept in
 * a small table keyed by the SHA-256 of its DER: they are a function of
 * those bytes alone, so an entry is never stale, and parsing a
 * certificate costs about 0.2 ms in OpenSSL 3.0, more than the rest of a
 * lookup.  Revocation, expiry in the store and the user's state come
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

#include "auth.h"
#include "http.h"
#include "irp.h"
#include "reg.h"

#define AUTH_SLOTS 4096
#define AUTH_CERT_SLOTS 64

struct slot {
	uint64_t key;
	time_t window_start;
	int failures;
};

struct cert_slot {
	int used;
	unsigned char md[32]; /* SHA-256 of the DER */
	struct ca_cert_info info;
};

struct auth {
	pthread_mutex_t lock;
	int max;
	int window;
	struct slot slots[AUTH_SLOTS];
	pthread_mutex_t cert_lock;
	EVP_MD *sha256; /* fetched once: an implicit fetch per call is slow */
	struct cert_slot certs[AUTH_CERT_SLOTS];
};

struct auth *
auth_new(const struct conf *c)
{
	struct auth *a;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	pthread_mutex_init(&a->lock, NULL);
	pthread_mutex_init(&a->cert_lock, NULL);
	/* Without it every certificate is parsed each time: slower, same
	 * answers. */
	a->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	a->max = c->auth_fail_max;
	a->window = c->auth_fail_window;
	return a;
}

void
auth_free(struct auth *a)
{
	if (a == NULL)
		return;
	pthread_mutex_destroy(&a->lock);
	pthread_mutex_destroy(&a->cert_lock);
	EVP_MD_free(a->sha256);
	free(a);
}

/* FNV-1a over "kind:value"; never 0 (0 marks an empty slot). */
static uint64_t
limit_key(const char *kind, const char *value)
{
	uint64_t h = 1469598103934665603ULL;
	const char *p;

	for (p = kind; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	h = (h ^ ':') * 1099511628211ULL;
	for (p = value; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return h ? h : 1;
}

static struct slot *
slot_for(struct auth *a, uint64_t key, time_t now)
{
	struct slot *s = &a->slots[key % AUTH_SLOTS];

	if (s->key != key || now - s->window_start >= a->window) {
		s->key = key;
		s->window_start = now;
		s->failures = 0;
	}
	return s;
}

/* 1 when key is over its limit now. */
static int
limited(struct auth *a, const char *kind, const char *value)
{
	uint64_t key = limit_key(kind, value);
	struct slot *s;
	int over;

	pthread_mutex_lock(&a->lock);
	s = &a->slots[key % AUTH_SLOTS];
	over = s->key == key && time(NULL) - s->window_start < a->window &&
	    s->failures >= a->max;
	pthread_mutex_unlock(&a->lock);
	return over;
}

static void
record_failure(struct auth *a, const char *kind, const char *value)
{
	pthread_mutex_lock(&a->lock);
	slot_for(a, limit_key(kind, value), time(NULL))->failures++;
	pthread_mutex_unlock(&a->lock);
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

/* ca_cert_info through the table described at the top. */
static int
cert_info(struct auth *a, const unsigned char *der, size_t len,
    const unsigned char key[33], size_t keylen, struct ca_cert_info *info,
    struct ca_err *ce)
{
	const unsigned char *md = key + 1;
	struct cert_slot *s;

	if (keylen == 0)
		return ca_cert_info(der, len, info, ce);
	s = &a->certs[md[0] % AUTH_CERT_SLOTS];
	pthread_mutex_lock(&a->cert_lock);
	if (s->used && memcmp(s->md, md, sizeof(s->md)) == 0) {
		*info = s->info;
		pthread_mutex_unlock(&a->cert_lock);
		return 0;
	}
	pthread_mutex_unlock(&a->cert_lock);
	if (ca_cert_info(der, len, info, ce) == -1)
		return -1;
	pthread_mutex_lock(&a->cert_lock);
	s->used = 1;
	memcpy(s->md, md, sizeof(s->md));
	s->info = *info;
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
	struct cache *c = req->env->cache;
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
	return db_auth_cert(req->db, ca_fingerprint(req->env->reg->ca),
	    info->serial, da, de);
}

int
auth_cert(struct auth *a, struct http_req *req, struct http_resp *resp)
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
		http_error(resp, 401, "certificate_required",
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
		if (ca_cert_is_ours(req->env->reg->ca, req->peer_der,
			req->peer_der_len, &ce) == 1 &&
		    ca_cert_info(req->peer_der, req->peer_der_len, &info,
			&ce) == 0 &&
		    (info.not_after <= time(NULL) ||
			info.not_before > time(NULL))) {
			http_error(resp, 401, "certificate_expired",
			    "the client certificate has expired or is not "
			    "yet valid; renew or enrol again");
			goto fail;
		}
		http_error(resp, 401, "certificate_untrusted",
		    "the client certificate was not issued by this registry's "
		    "CA, or is not valid for client authentication");
		goto fail;
	}
	keylen = cert_key(a, req->peer_der, req->peer_der_len, key);
	if (cert_info(a, req->peer_der, req->peer_der_len, key, keylen, &info,
		&ce) == -1) {
		http_error(resp, 401, "certificate_untrusted",
		    "the client certificate can not be read");
		goto fail;
	}
	if (cert_record(req, key, keylen, &info, &da, &store, &ticket,
		&de) == -1) {
		if (de.code != DB_ERR_NOTFOUND) {
			http_db_error(resp, &de);
			return -1;
		}
		http_error(resp, 401, "certificate_unknown",
		    "the client certificate is not registered here");
		goto fail;
	}
	if (da.revoked) {
		http_error(resp, 401, "certificate_revoked",
		    "the client certificate has been revoked");
		goto fail;
	}
	if (da.not_after <= time(NULL) || info.not_after <= time(NULL)) {
		http_error(resp, 401, "certificate_expired",
		    "the client certificate has expired; renew or enrol again");
		goto fail;
	}
	if (!da.user.enabled) {
		http_error(resp, 401, "user_disabled",
		    "the account %s is disabled", da.user.userid);
		goto fail;
	}
	if (store)
		cache_put(req->env->cache, CACHE_CERT, key, keylen, da.user.id,
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
	metrics_auth_failure(req->env->metrics);
	return -1;
}

static int
too_many(struct http_resp *resp)
{
	http_error(resp, 429, "rate_limited",
	    "too many failed attempts; wait a few minutes and try again");
	return -1;
}

static int
auth_code(struct auth *a, struct http_req *req, const char *code,
    struct http_resp *resp)
{
	unsigned char hash[32];
	struct db_err de;
	int64_t uid;
	int rv;

	reg_code_hash(code, hash);
	rv = db_code_consume(req->db, hash, &uid, &de);
	OPENSSL_cleanse(hash, sizeof(hash));
	if (rv == -1) {
		if (de.code != DB_ERR_NOTFOUND) {
			http_db_error(resp, &de);
			return -1;
		}
		record_failure(a, "src", req->source);
		metrics_auth_failure(req->env->metrics);
		http_error(resp, 401, "invalid_code",
		    "the enrolment code is unknown, already used or expired");
		return -1;
	}
	{
		struct db_user u;

		if (db_user_by_id(req->db, uid, &u, &de) == -1) {
			http_db_error(resp, &de);
			return -1;
		}
		if (!u.enabled) {
			http_error(resp, 401, "user_disabled",
			    "the account %s is disabled", u.userid);
			return -1;
		}
		req->who.kind = AUTH_CODE;
		req->who.user = u;
	}
	return 0;
}

static int
auth_password(struct auth *a, struct http_req *req, const char *b64,
    struct http_resp *resp)
{
	unsigned char raw[512 + 4];
	char userid[IRP_USERID_MAX + 1], hash[REG_PWHASH_MAX];
	const char *why, *pw;
	struct db_user u;
	struct db_err de;
	size_t n = strlen(b64);
	int len, ok;
	char *colon;

	if (n == 0 || n > 512 || n % 4 != 0 ||
	    (len = EVP_DecodeBlock(raw, (const unsigned char *)b64,
		 (int)n)) < 0) {
		http_error(resp, 401, "bad_credentials",
		    "malformed Basic authorization");
		return -1;
	}
	/* EVP_DecodeBlock counts the padding as data. */
	while (n > 0 && b64[--n] == '=')
		len--;
	raw[len] = '\0';
	if (memchr(raw, '\0', (size_t)len) != NULL ||
	    (colon = strchr((char *)raw, ':')) == NULL) {
		OPENSSL_cleanse(raw, sizeof(raw));
		http_error(resp, 401, "bad_credentials",
		    "malformed Basic authorization");
		return -1;
	}
	*colon = '\0';
	pw = colon + 1;
	if (irp_userid_normalize((char *)raw, userid, sizeof(userid),
		&why) == -1) {
		OPENSSL_cleanse(raw, sizeof(raw));
		record_failure(a, "src", req->source);
		http_error(resp, 401, "bad_credentials", "wrong user or password");
		return -1;
	}
	if (limited(a, "user", userid)) {
		OPENSSL_cleanse(raw, sizeof(raw));
		return too_many(resp);
	}
	if (db_user_password(req->db, userid, hash, sizeof(hash), &de) == -1 &&
	    de.code != DB_ERR_NOTFOUND) {
		OPENSSL_cleanse(raw, sizeof(raw));
		http_db_error(resp, &de);
		return -1;
	}
	if (de.code == DB_ERR_NOTFOUND)
		hash[0] = '\0';
	ok = reg_password_verify(hash, pw);
	OPENSSL_cleanse(raw, sizeof(raw));
	OPENSSL_cleanse(hash, sizeof(hash));
	if (!ok || db_user_get(req->db, userid, &u, &de) == -1 || !u.enabled) {
		record_failure(a, "src", req->source);
		record_failure(a, "user", userid);
		metrics_auth_failure(req->env->metrics);
		http_error(resp, 401, "bad_credentials", "wrong user or password");
		return -1;
	}
	req->who.kind = AUTH_PASSWORD;
	req->who.user = u;
	return 0;
}

int
auth_secret(struct auth *a, struct http_req *req, int allow,
    struct http_resp *resp)
{
	const char *h = req->authorization;

	if (limited(a, "src", req->source))
		return too_many(resp);
	if (h == NULL || *h == '\0') {
		http_error(resp, 401, "credentials_required",
		    "give an enrolment code (Authorization: Bearer CODE) or a "
		    "password (HTTP Basic)");
		return -1;
	}
	if ((allow & AUTH_ALLOW_CODE) && strncasecmp(h, "Bearer ", 7) == 0) {
		h += 7;
		while (*h == ' ')
			h++;
		if (strlen(h) > 64) {
			http_error(resp, 401, "invalid_code",
			    "the enrolment code is unknown, already used or "
			    "expired");
			return -1;
		}
		return auth_code(a, req, h, resp);
	}
	if ((allow & AUTH_ALLOW_PASSWORD) && strncasecmp(h, "Basic ", 6) == 0) {
		h += 6;
		while (*h == ' ')
			h++;
		return auth_password(a, req, h, resp);
	}
	http_error(resp, 401, "bad_credentials",
	    "unsupported Authorization scheme here");
	return -1;
}
