/*
 * vouch.c - what one's own registry vouches for about users of other
 * domains (see vouch.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "ca.h"
#include "vouch.h"

struct vouch_domain {
	char name[IRP_DOMAIN_MAX + 1];
	char trust[IRP_WORD_MAX];
	X509 *ca;
	time_t ungated;	    /* vouch_gate let a handshake past it then */
	unsigned long used; /* when last kept; 0: a free slot */
};

struct vouch_user {
	char userid[IRP_USERID_MAX + 1];
	char (*fp)[VOUCH_FP_LEN];
	size_t nfp;
	time_t checked; /* when the other registry gave it; 0: not said */
	time_t fetched; /* when our registry gave it */
	int stale;	/* our registry stood in with an earlier answer */
	unsigned long used;
};

struct vouch {
	struct vouch_domain dom[VOUCH_DOMAINS];
	struct vouch_user user[VOUCH_USERS];
	unsigned long clock;
	time_t retry_at;    /* the registry did not answer: not before */
	char failed_at[16]; /* when, "12:00:00 UTC" */
};

/* The bases of trust a registry may state (irp_wire.h). */
static const char *const trusts[] = { IRP_TRUST_PINNED, IRP_TRUST_DANE };

struct vouch *
vouch_new(void)
{
	return calloc(1, sizeof(struct vouch));
}

void
vouch_free(struct vouch *v)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < VOUCH_DOMAINS; i++)
		X509_free(v->dom[i].ca);
	for (i = 0; i < VOUCH_USERS; i++)
		free(v->user[i].fp);
	free(v);
}

static int
trust_known(const char *trust)
{
	size_t i;

	for (i = 0; i < sizeof(trusts) / sizeof(trusts[0]); i++)
		if (strcmp(trust, trusts[i]) == 0)
			return 1;
	return 0;
}

/*
 * The answer is about userid (normalised into uid) and names a registry
 * of userid's own domain, trusted on a basis we know.  0, or -1 with err.
 */
static int
answer_check(const char *userid, const struct irp_user *u,
    char uid[IRP_USERID_MAX + 1], char *err, size_t errlen)
{
	const char *why;

	if (irp_userid_normalize(userid, uid, IRP_USERID_MAX + 1, &why) == -1) {
		snprintf(err, errlen, "'%s' is not a user id: %s", userid, why);
		return -1;
	}
	if (strcasecmp(u->userid, uid) != 0) {
		snprintf(err, errlen, "it answered about %s, not %s", u->userid,
		    uid);
		return -1;
	}
	if (u->via == NULL) {
		snprintf(err, errlen,
		    "it answers for %s as one of its own "
		    "users and names no registry of another domain",
		    uid);
		return -1;
	}
	if (strcasecmp(u->via->domain, strrchr(uid, '@') + 1) != 0) {
		snprintf(err, errlen,
		    "it vouches for %s by the registry of "
		    "%s, not of the user's domain",
		    uid, u->via->domain);
		return -1;
	}
	if (!trust_known(u->via->trust)) {
		snprintf(err, errlen,
		    "it trusts the CA of %s on a basis this "
		    "dchat does not know (%s)",
		    u->via->domain, u->via->trust);
		return -1;
	}
	return 0;
}

/*
 * The CA of via as a certificate: one self-signed CA certificate whose
 * SHA-256 is the one via names.  NULL with err otherwise.
 */
static X509 *
vouched_ca(const struct irp_vouch *via, char *err, size_t errlen)
{
	unsigned char *der = NULL;
	char fp[CA_FP_HEX_LEN];
	BIO *bio = NULL;
	X509 *x = NULL;
	int len = 0;

	if (via->ca_pem == NULL ||
	    (bio = BIO_new_mem_buf(via->ca_pem, -1)) == NULL ||
	    (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL ||
	    (len = i2d_X509(x, &der)) <= 0 ||
	    !ca_is_ca_cert(der, (size_t)len) ||
	    ca_der_sha256_hex(der, (size_t)len, fp) == -1 ||
	    strcasecmp(fp, via->ca_sha256) != 0) {
		snprintf(err, errlen,
		    "the CA it gives for %s is not a CA "
		    "certificate with the SHA-256 it names",
		    via->domain);
		X509_free(x);
		x = NULL;
	}
	ERR_clear_error();
	OPENSSL_free(der);
	BIO_free(bio);
	return x;
}

/*
 * The SHA-256 of every device certificate of u that can be read:
 * *fp (free()), *n of them.  0, or -1 when out of memory.
 */
static int
fingerprints(const struct irp_user *u, char (**fp)[VOUCH_FP_LEN], size_t *n)
{
	struct ca_cert_info info;
	struct ca_err cerr;
	size_t i;

	*n = 0;
	if ((*fp = calloc(u->ndev + 1, VOUCH_FP_LEN)) == NULL)
		return -1;
	for (i = 0; i < u->ndev; i++) {
		const char *pem = u->dev[i].cert_pem;

		if (pem != NULL &&
		    ca_cert_info((const unsigned char *)pem, strlen(pem), &info,
			&cerr) == 0)
			snprintf((*fp)[(*n)++], VOUCH_FP_LEN, "%s",
			    info.fingerprint);
	}
	return 0;
}

static struct vouch_domain *
domain_find(const struct vouch *v, const char *name)
{
	size_t i;

	for (i = 0; i < VOUCH_DOMAINS; i++)
		if (v->dom[i].used != 0 &&
		    strcasecmp(v->dom[i].name, name) == 0)
			return (struct vouch_domain *)&v->dom[i];
	return NULL;
}

static struct vouch_user *
user_find(const struct vouch *v, const char *userid)
{
	size_t i;

	for (i = 0; i < VOUCH_USERS; i++)
		if (v->user[i].used != 0 &&
		    strcasecmp(v->user[i].userid, userid) == 0)
			return (struct vouch_user *)&v->user[i];
	return NULL;
}

/* Keep the CA of via (ca is taken), in its slot or the oldest one. */
static void
domain_keep(struct vouch *v, const struct irp_vouch *via, X509 *ca)
{
	struct vouch_domain *d = domain_find(v, via->domain);
	size_t i;

	if (d == NULL) {
		d = &v->dom[0];
		for (i = 1; i < VOUCH_DOMAINS; i++)
			if (v->dom[i].used < d->used)
				d = &v->dom[i];
		d->ungated = 0;
	}
	X509_free(d->ca);
	d->ca = ca;
	snprintf(d->name, sizeof(d->name), "%s", via->domain);
	snprintf(d->trust, sizeof(d->trust), "%s", via->trust);
	d->used = ++v->clock;
}

/* Keep the certificates of userid (fp is taken), as of checked. */
static void
user_keep(struct vouch *v, const char *userid, char (*fp)[VOUCH_FP_LEN],
    size_t n, time_t checked, int stale)
{
	struct vouch_user *u = user_find(v, userid);
	size_t i;

	if (u == NULL) {
		u = &v->user[0];
		for (i = 1; i < VOUCH_USERS; i++)
			if (v->user[i].used < u->used)
				u = &v->user[i];
	}
	free(u->fp);
	u->fp = fp;
	u->nfp = n;
	u->checked = checked;
	u->stale = stale;
	u->fetched = time(NULL);
	snprintf(u->userid, sizeof(u->userid), "%s", userid);
	u->used = ++v->clock;
}

int
vouch_put(struct vouch *v, const char *userid, const struct irp_user *u,
    char *err, size_t errlen)
{
	char uid[IRP_USERID_MAX + 1], (*fp)[VOUCH_FP_LEN] = NULL;
	X509 *ca = NULL;
	size_t nfp = 0;
	long long checked = 0;

	if (answer_check(userid, u, uid, err, errlen) == -1 ||
	    (ca = vouched_ca(u->via, err, errlen)) == NULL)
		goto err;
	if (fingerprints(u, &fp, &nfp) == -1) {
		snprintf(err, errlen, "out of memory");
		goto err;
	}
	if (u->via->checked_at[0] != '\0' &&
	    irp_time_parse(u->via->checked_at, &checked) == -1) {
		snprintf(err, errlen,
		    "the registry's answer says it was "
		    "checked at \"%.40s\", which is no time",
		    u->via->checked_at);
		goto err;
	}
	domain_keep(v, u->via, ca);
	user_keep(v, uid, fp, nfp, (time_t)checked, u->via->stale);
	return 0;
err:
	X509_free(ca);
	free(fp);
	return -1;
}

/* The registry did not answer: say when, and do not ask it for a while. */
static void
unreachable(struct vouch *v, time_t now)
{
	struct tm tm;

	v->retry_at = now + VOUCH_RETRY_SECS;
	if (gmtime_r(&now, &tm) == NULL ||
	    strftime(v->failed_at, sizeof(v->failed_at), "%H:%M:%S UTC", &tm) ==
		0)
		snprintf(v->failed_at, sizeof(v->failed_at), "?");
}

/* 1 when an answer about userid had at most VOUCH_STALE_SECS ago is kept. */
static int
earlier(const struct vouch *v, const char *userid, time_t now)
{
	const struct vouch_user *u = user_find(v, userid);

	return u != NULL && now - u->fetched <= VOUCH_STALE_SECS ? 1 : -1;
}

int
vouch_fetch(struct vouch *v, struct irp_client *c, const char *userid,
    char *err, size_t errlen)
{
	struct irp_user *u = NULL;
	struct irp_err ierr;
	time_t now = time(NULL);
	int rv;

	if (now < v->retry_at) {
		snprintf(err, errlen, "it did not answer at %s", v->failed_at);
		return earlier(v, userid, now);
	}
	if (irp_lookup_fresh(c, userid, &u, &ierr) == -1) {
		snprintf(err, errlen, "%s", ierr.msg);
		if (strcmp(ierr.code, "transport") != 0)
			return -1; /* it answered: its refusal stands */
		unreachable(v, now);
		return earlier(v, userid, now);
	}
	v->retry_at = 0;
	rv = vouch_put(v, userid, u, err, errlen);
	irp_user_free(u);
	return rv;
}

X509 *
vouch_ca(const struct vouch *v, const char *domain, const char **trust)
{
	const struct vouch_domain *d = domain_find(v, domain);

	if (d == NULL)
		return NULL;
	*trust = d->trust;
	return d->ca;
}

X509 *
vouch_gate(struct vouch *v, const char *domain)
{
	struct vouch_domain *d = domain_find(v, domain);
	time_t now = time(NULL);

	if (d == NULL || d->ca == NULL)
		return NULL;
	if (now - d->ungated >= VOUCH_RETRY_SECS) {
		d->ungated = now;
		return NULL;
	}
	return X509_up_ref(d->ca) == 1 ? d->ca : NULL;
}

int
vouch_listed(const struct vouch *v, const char *userid, const char *fingerprint)
{
	const struct vouch_user *u = user_find(v, userid);
	size_t i;

	for (i = 0; u != NULL && i < u->nfp; i++)
		if (strcasecmp(u->fp[i], fingerprint) == 0)
			return 1;
	return 0;
}

time_t
vouch_checked(const struct vouch *v, const char *userid)
{
	const struct vouch_user *u = user_find(v, userid);

	if (u == NULL)
		return 0;
	return u->checked != 0 ? u->checked : u->fetched;
}

int
vouch_stale(const struct vouch *v, const char *userid, char *why, size_t whylen)
{
	const struct vouch_user *u = user_find(v, userid);
	const char *at = strrchr(userid, '@');

	if (u == NULL || !u->stale)
		return 0;
	snprintf(why, whylen, "the registry of %s did not answer yours",
	    at != NULL ? at + 1 : userid);
	return 1;
}

void
vouch_cert_status(const struct vouch *v, const char *domain, const char *pem,
    char *buf, size_t len)
{
	const struct vouch_domain *d = domain_find(v, domain);
	X509_STORE_CTX *ctx = NULL;
	X509_STORE *st = NULL;
	BIO *bio = NULL;
	X509 *x = NULL;
	int e;

	snprintf(buf, len, "unknown");
	if (d == NULL || pem == NULL ||
	    (bio = BIO_new_mem_buf(pem, -1)) == NULL ||
	    (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL ||
	    (st = X509_STORE_new()) == NULL ||
	    X509_STORE_add_cert(st, d->ca) != 1 ||
	    (ctx = X509_STORE_CTX_new()) == NULL ||
	    X509_STORE_CTX_init(ctx, st, x, NULL) != 1)
		goto out;
	if (X509_verify_cert(ctx) == 1)
		snprintf(buf, len, "valid");
	else if ((e = X509_STORE_CTX_get_error(ctx)) ==
	    X509_V_ERR_CERT_HAS_EXPIRED)
		snprintf(buf, len, "expired");
	else
		snprintf(buf, len, "invalid: %s",
		    X509_verify_cert_error_string(e));
out:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	X509_free(x);
	BIO_free(bio);
}
