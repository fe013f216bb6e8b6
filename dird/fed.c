/*
 * fed.c - federation: lookups of other domains' users, and other
 * registries' lookups here (fed.h says what each side checks).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/rand.h>

#include "ca.h"
#include "cache.h"
#include "fed.h"
#include "irp.h"
#include "irp_client.h"
#include "irp_dns.h"
#include "limit.h"
#include "log.h"
#include "metrics.h"
#include "reg.h"

/* Kept answers and refusals: buckets, and the most kept at once. */
#define FED_BUCKETS 1024
#define FED_ENTRIES_MAX 8192
/* Other domains whose CA is kept, and for how long, seconds. */
#define FED_TRUST_MAX 256
#define FED_TRUST_TTL 300
/* SRV records tried per domain. */
#define FED_SRV_MAX 8
/* The limiter's window, seconds: the rates are per minute. */
#define FED_WINDOW 60
/* Seconds a relayed post may take beyond federation_timeout. */
#define FED_POST_SECS 60

/* A kept answer (status 200, body) or refusal (the error). */
struct entry {
	struct entry *next;
	char *key;
	time_t expires;
	time_t fresh_until; /* an answer: served as current until then */
	time_t checked;	    /* an answer: when the other registry gave it */
	struct reg_err err; /* status 200: an answer */
	char *body;
	size_t len;
};

/* A domain's registry as judged: where it is, its CA, and why trusted. */
struct trust {
	char domain[254];
	char rule[8];
	char pin[CA_FP_HEX_LEN];
	char server[IRP_HOST_MAX + 16]; /* https://host:port */
	char host[IRP_HOST_MAX];
	uint16_t port;
	char *ca_pem;
	unsigned char *ca_der;
	size_t ca_len;
	char sha256[CA_FP_HEX_LEN];
	char basis[IRP_WORD_MAX];
	time_t expires;
	struct trust *next;
};

struct fed {
	struct reg *r;
	struct irp_dns *dns;
	int dns_own; /* a resolver of our choosing: curl must use it too */
	struct limit *out_lim; /* queries caused, per user */
	struct limit *in_lim;  /* queries answered, per other domain */
	pthread_mutex_t mu;
	uint32_t seed;
	struct entry *tab[FED_BUCKETS];
	size_t nentries;
	struct trust *trusts;
	size_t ntrusts;
};

/* ---- set-up ---------------------------------------------------------- */

struct fed *
fed_new(struct reg *r, char *errbuf, size_t errlen)
{
	const struct conf *c = &r->conf;
	struct irp_err ie;
	struct fed *f;

	if ((f = calloc(1, sizeof(*f))) == NULL) {
		snprintf(errbuf, errlen, "out of memory");
		return NULL;
	}
	f->r = r;
	pthread_mutex_init(&f->mu, NULL);
	if (RAND_bytes((unsigned char *)&f->seed, sizeof(f->seed)) != 1)
		f->seed = (uint32_t)time(NULL);
	f->dns_own = c->fed_dns[0] != '\0';
	if ((f->dns = irp_dns_new(c->fed_dns,
		 c->fed_anchor[0] ? c->fed_anchor : NULL, c->fed_timeout * 1000,
		 &ie)) == NULL) {
		snprintf(errbuf, errlen, "federation_dns: %s", ie.msg);
		goto err;
	}
	if ((f->out_lim = limit_new(4096, c->fed_rate, FED_WINDOW, NULL, errbuf,
		 errlen)) == NULL ||
	    (f->in_lim = limit_new(4096, c->fed_inbound_rate, FED_WINDOW, NULL,
		 errbuf, errlen)) == NULL)
		goto err;
	return f;
err:
	fed_free(f);
	return NULL;
}

static void
trust_free(struct trust *t)
{
	if (t == NULL)
		return;
	free(t->ca_pem);
	free(t->ca_der);
	free(t);
}

void
fed_free(struct fed *f)
{
	struct entry *e, *n;
	struct trust *t, *tn;
	size_t i;

	if (f == NULL)
		return;
	for (i = 0; i < FED_BUCKETS; i++)
		for (e = f->tab[i]; e != NULL; e = n) {
			n = e->next;
			free(e->key);
			free(e->body);
			free(e);
		}
	for (t = f->trusts; t != NULL; t = tn) {
		tn = t->next;
		trust_free(t);
	}
	limit_free(f->out_lim);
	limit_free(f->in_lim);
	irp_dns_free(f->dns);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

/* ---- kept answers and refusals --------------------------------------- */

static size_t
bucket(const struct fed *f, const char *key)
{
	uint32_t h = 2166136261u ^ f->seed;

	for (; *key; key++)
		h = (h ^ (unsigned char)*key) * 16777619u;
	return h % FED_BUCKETS;
}

/* Drop what expired in one chain; the lock is held. */
static void
sweep(struct fed *f, size_t b, time_t now)
{
	struct entry **pp = &f->tab[b], *e;

	while ((e = *pp) != NULL) {
		if (e->expires <= now) {
			*pp = e->next;
			free(e->key);
			free(e->body);
			free(e);
			f->nentries--;
		} else
			pp = &e->next;
	}
}

/* The current entry of key, or NULL; the lock is held. */
static struct entry *
find(struct fed *f, const char *key, time_t now)
{
	size_t b = bucket(f, key);
	struct entry *e;

	sweep(f, b, now);
	for (e = f->tab[b]; e != NULL; e = e->next)
		if (strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

/* A copy of e's answer in *body (new): 1, or 0 when out of memory. */
static int
copy_body(const struct entry *e, char **body, size_t *len)
{
	if ((*body = malloc(e->len)) == NULL)
		return 0;
	memcpy(*body, e->body, e->len);
	*len = e->len;
	return 1;
}

/*
 * What is kept under key: 1 and a copy (*body new, or the refusal in
 * err); 0 when nothing current is.  want_answer 0 skips answers (a
 * fresh lookup still takes a kept refusal).
 */
static int
kept(struct fed *f, const char *key, int want_answer, struct reg_err *err,
    char **body, size_t *len)
{
	time_t now = time(NULL);
	struct entry *e;
	int rv = 0;

	*body = NULL;
	pthread_mutex_lock(&f->mu);
	if ((e = find(f, key, now)) != NULL) {
		if (e->err.status != 200) {
			*err = e->err;
			rv = 1;
		} else if (want_answer && e->fresh_until > now)
			rv = copy_body(e, body, len);
	}
	pthread_mutex_unlock(&f->mu);
	return rv;
}

/*
 * Keep an answer (err NULL: body) or a refusal until expires; an answer
 * is current until fresh_until, and after that only stands in (stale()).
 */
static void
keep(struct fed *f, const char *key, time_t expires, time_t fresh_until,
    const struct reg_err *err, const char *body, size_t len)
{
	size_t b = bucket(f, key);
	struct entry *e, **pp;

	if (expires <= time(NULL))
		return;
	if ((e = calloc(1, sizeof(*e))) == NULL ||
	    (e->key = strdup(key)) == NULL ||
	    (body != NULL && (e->body = malloc(len)) == NULL)) {
		if (e != NULL)
			free(e->key);
		free(e);
		return;
	}
	e->expires = expires;
	e->fresh_until = fresh_until;
	e->checked = time(NULL);
	if (err != NULL)
		e->err = *err;
	else {
		e->err.status = 200;
		memcpy(e->body, body, len);
		e->len = len;
	}
	pthread_mutex_lock(&f->mu);
	sweep(f, b, time(NULL));
	/* One entry per key: the new one replaces the old. */
	for (pp = &f->tab[b]; *pp != NULL; pp = &(*pp)->next)
		if (strcmp((*pp)->key, key) == 0) {
			struct entry *old = *pp;

			*pp = old->next;
			free(old->key);
			free(old->body);
			free(old);
			f->nentries--;
			break;
		}
	if (f->nentries >= FED_ENTRIES_MAX) {
		/* Full of current entries: this one is not kept. */
		pthread_mutex_unlock(&f->mu);
		free(e->key);
		free(e->body);
		free(e);
		return;
	}
	e->next = f->tab[b];
	f->tab[b] = e;
	f->nentries++;
	pthread_mutex_unlock(&f->mu);
}

/*
 * The answer kept under key if the other registry gave it at most max
 * seconds ago: 1 and *body new, else 0.
 */
static int
stale(struct fed *f, const char *key, time_t max, char **body, size_t *len)
{
	time_t now = time(NULL);
	struct entry *e;
	int rv = 0;

	pthread_mutex_lock(&f->mu);
	if ((e = find(f, key, now)) != NULL && e->err.status == 200 &&
	    now - e->checked <= max)
		rv = copy_body(e, body, len);
	pthread_mutex_unlock(&f->mu);
	return rv;
}

/* ---- trust ----------------------------------------------------------- */

/* What the answer cache keeps of a domain's rule, or of its having none. */
struct kept_rule {
	int found;
	struct db_fed rule;
};

/* Seconds a kept rule is used at most, even if no change was heard. */
#define FED_RULE_TTL 60

/*
 * The rule for domain, through the answer cache when there is one: it
 * was read from the database on every request, which was most of the
 * cost of a cached federated lookup.  Every change of a rule, by this
 * dird (reg_fed_set) or anyone else (schema 008's trigger), drops all
 * cached answers, so a removal still takes effect at once.  0, or -1
 * with de (no rule is 0 with found 0).
 */
static int
rule_read(struct fed *f, struct db *db, const char *domain,
    struct kept_rule *kr, struct db_err *de)
{
	struct cache *c = f->r->cache;
	char key[260];
	size_t keylen, len;
	uint64_t ticket = 0;
	void *val;

	keylen = (size_t)snprintf(key, sizeof(key), "f%s", domain);
	if (c != NULL &&
	    cache_get(c, key, keylen, time(NULL), &val, &len) == 1) {
		if (len == sizeof(*kr))
			memcpy(kr, val, sizeof(*kr));
		free(val);
		if (len == sizeof(*kr))
			return 0;
	}
	if (c != NULL)
		ticket = cache_ticket(c);
	memset(kr, 0, sizeof(*kr));
	if (db_fed_get(db, domain, &kr->rule, de) == 0)
		kr->found = 1;
	else if (de->code != DB_ERR_NOTFOUND)
		return -1;
	/*
	 * Of no user (0): dropped by a change of everything, and now and
	 * then by one of a user that shares its slot (a needless miss).
	 */
	if (c != NULL)
		cache_put(c, CACHE_CERT, key, keylen, 0,
		    time(NULL) + FED_RULE_TTL, ticket, kr, sizeof(*kr));
	return 0;
}

/* The administrator's rule for domain; refusals as fed.h says. */
static int
rule_get(struct fed *f, struct db *db, const char *domain, struct db_fed *rule,
    struct reg_err *e)
{
	struct kept_rule kr;
	struct db_err de;

	if (rule_read(f, db, domain, &kr, &de) == -1) {
		reg_err_from_db(e, &de);
		return -1;
	}
	*rule = kr.rule;
	if (!kr.found) {
		reg_seterr(e, 403, "federation_refused",
		    "this registry has "
		    "no federation rule for %s, so it trusts no registry of "
		    "that domain; its administrator can add one (dirctl "
		    "federation add %s)",
		    domain, domain);
		return -1;
	}
	if (strcmp(rule->rule, "refused") == 0) {
		reg_seterr(e, 403, "federation_refused",
		    "this registry's "
		    "administrator refuses the domain %s",
		    domain);
		return -1;
	}
	return 0;
}

/*
 * Whether the DANE-TA TLSA records of host:port, validated by DNSSEC,
 * name the CA ca_der.  0, or -1 with e.
 */
static int
dane_check(struct fed *f, const char *domain, const char *host, uint16_t port,
    const unsigned char *ca_der, size_t ca_len, struct reg_err *e)
{
	struct irp_tlsa tlsa[IRP_DNS_RR_MAX];
	struct irp_dns_meta meta = { 0, 0 };
	struct irp_err ie;
	size_t n = 0, i;

	if (reg_conf(f->r)->fed_anchor[0] == '\0') {
		reg_seterr(e, 502, "dane_unusable",
		    "%s is trusted by DANE, "
		    "but this registry has no DNSSEC trust anchor "
		    "(federation_dns_anchor)",
		    domain);
		return -1;
	}
	if (irp_dns_tlsa(f->dns, host, port, tlsa, IRP_DNS_RR_MAX, &n, &meta,
		&ie) == -1) {
		reg_seterr(e, 502, ie.code, "%s", ie.msg);
		return -1;
	}
	if (n == 0 || !meta.secure) {
		reg_seterr(e, 502, "untrusted_registry",
		    "%s is trusted by "
		    "DANE, but _%u._tcp.%s has %s",
		    domain, port, host,
		    n == 0 ? "no TLSA record" :
			     "TLSA records that DNSSEC "
			     "did not validate");
		return -1;
	}
	for (i = 0; i < n; i++)
		if (tlsa[i].usage == 2 &&
		    ca_tlsa_match(ca_der, ca_len, tlsa[i].selector,
			tlsa[i].mtype, tlsa[i].data, tlsa[i].len))
			return 0;
	reg_seterr(e, 502, "untrusted_registry",
	    "the registry %s:%u of %s "
	    "presents a CA that no DANE-TA record of _%u._tcp.%s names: "
	    "refusing it",
	    host, port, domain, port, host);
	return -1;
}

/* Judge the CA a registry of domain presented, by rule.  0 or -1. */
static int
judge(struct fed *f, const struct db_fed *rule, const char *host, uint16_t port,
    const unsigned char *ca_der, size_t ca_len, char sha256[CA_FP_HEX_LEN],
    struct reg_err *e)
{
	if (!ca_is_ca_cert(ca_der, ca_len) ||
	    ca_der_sha256_hex(ca_der, ca_len, sha256) == -1) {
		reg_seterr(e, 502, "untrusted_registry",
		    "the registry %s:%u "
		    "of %s presents no CA certificate",
		    host, port, rule->domain);
		return -1;
	}
	if (strcmp(rule->rule, "pinned") == 0) {
		if (strcmp(sha256, rule->ca_sha256) == 0)
			return 0;
		reg_seterr(e, 502, "untrusted_registry",
		    "the registry %s:%u "
		    "that %s%s names presents a CA with SHA-256 %.16s..., but "
		    "%s is pinned to %.16s... here: refusing it",
		    host, port, IRP_SRV_PREFIX, rule->domain, sha256,
		    rule->domain, rule->ca_sha256);
		return -1;
	}
	return dane_check(f, rule->domain, host, port, ca_der, ca_len, e);
}

/* A copy of t (for use outside the lock); NULL when out of memory. */
static struct trust *
trust_dup(const struct trust *t)
{
	struct trust *c;

	if ((c = malloc(sizeof(*c))) == NULL)
		return NULL;
	*c = *t;
	c->next = NULL;
	c->ca_pem = strdup(t->ca_pem);
	if ((c->ca_der = malloc(t->ca_len)) != NULL)
		memcpy(c->ca_der, t->ca_der, t->ca_len);
	if (c->ca_pem == NULL || c->ca_der == NULL) {
		trust_free(c);
		return NULL;
	}
	return c;
}

/* The kept judgement of domain under rule, copied; NULL: none. */
static struct trust *
trust_kept(struct fed *f, const struct db_fed *rule)
{
	struct trust *t, *c = NULL;
	time_t now = time(NULL);

	pthread_mutex_lock(&f->mu);
	for (t = f->trusts; t != NULL; t = t->next)
		if (strcmp(t->domain, rule->domain) == 0 &&
		    strcmp(t->rule, rule->rule) == 0 &&
		    strcmp(t->pin, rule->ca_sha256) == 0 && t->expires > now) {
			c = trust_dup(t);
			break;
		}
	pthread_mutex_unlock(&f->mu);
	return c;
}

/* Keep a copy of t (replacing domain's), or forget domain (t NULL). */
static void
trust_keep(struct fed *f, const char *domain, const struct trust *t)
{
	struct trust **pp, *old, *c = NULL;

	if (t != NULL && (c = trust_dup(t)) == NULL)
		return;
	pthread_mutex_lock(&f->mu);
	for (pp = &f->trusts; *pp != NULL; pp = &(*pp)->next)
		if (strcmp((*pp)->domain, domain) == 0) {
			old = *pp;
			*pp = old->next;
			trust_free(old);
			f->ntrusts--;
			break;
		}
	if (c != NULL && f->ntrusts < FED_TRUST_MAX) {
		c->next = f->trusts;
		f->trusts = c;
		f->ntrusts++;
		c = NULL;
	}
	pthread_mutex_unlock(&f->mu);
	trust_free(c);
}

/*
 * Find domain's registry by its SRV records and judge the CA it
 * presents, trying the records in RFC 2782 order; the first trusted
 * one wins.  A new struct trust, or NULL with e (the last failure).
 */
static struct trust *
discover(struct fed *f, const struct db_fed *rule, struct reg_err *e)
{
	const struct conf *c = reg_conf(f->r);
	struct irp_srv srv[FED_SRV_MAX];
	struct irp_err ie;
	struct ca_err ce;
	struct trust *t;
	unsigned char *der = NULL;
	size_t n = 0, i, len = 0;

	if ((t = trust_kept(f, rule)) != NULL)
		return t;
	if (irp_dns_srv(f->dns, rule->domain, srv, FED_SRV_MAX, &n, NULL,
		&ie) == -1) {
		reg_seterr(e, 502, ie.code, "%s", ie.msg);
		return NULL;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		reg_seterr(e, 500, "internal_error", "out of memory");
		return NULL;
	}
	for (i = 0; i < n; i++) {
		snprintf(t->server, sizeof(t->server), "https://%s:%u",
		    srv[i].host, srv[i].port);
		if (irp_fetch_ca_der(t->server, f->dns_own ? f->dns : NULL,
			c->fed_timeout, &der, &len, &ie) == -1) {
			reg_seterr(e, 502, "registry_unreachable",
			    "the "
			    "registry of %s at %s:%u can not be reached: %s",
			    rule->domain, srv[i].host, srv[i].port, ie.msg);
			continue;
		}
		if (judge(f, rule, srv[i].host, srv[i].port, der, len,
			t->sha256, e) == 0) {
			if ((t->ca_pem = ca_der_to_pem(der, len, &ce)) != NULL)
				break;
			reg_seterr(e, 500, "internal_error", "%s", ce.msg);
		}
		free(der);
		der = NULL;
	}
	if (der == NULL) {
		trust_free(t);
		return NULL;
	}
	t->ca_der = der;
	t->ca_len = len;
	snprintf(t->domain, sizeof(t->domain), "%s", rule->domain);
	snprintf(t->rule, sizeof(t->rule), "%s", rule->rule);
	snprintf(t->pin, sizeof(t->pin), "%s", rule->ca_sha256);
	snprintf(t->host, sizeof(t->host), "%s", srv[i].host);
	t->port = srv[i].port;
	snprintf(t->basis, sizeof(t->basis), "%s",
	    strcmp(rule->rule, "pinned") == 0 ? IRP_TRUST_PINNED :
						IRP_TRUST_DANE);
	t->expires = time(NULL) + FED_TRUST_TTL;
	trust_keep(f, rule->domain, t);
	log_info("federation: %s's registry %s:%u trusted (%s, CA %.16s...)",
	    rule->domain, t->host, t->port, t->basis, t->sha256);
	return t;
}

/* ---- outgoing -------------------------------------------------------- */

/* The earliest end of what the answer says, capped at cap. */
static time_t
valid_until(const struct irp_user *u, time_t cap)
{
	long long t;
	size_t i, j;

	for (i = 0; i < u->ndev; i++) {
		if (irp_time_parse(u->dev[i].not_after, &t) == 0 && t < cap)
			cap = (time_t)t;
		for (j = 0; j < u->dev[i].naddr; j++)
			if (irp_time_parse(u->dev[i].addr[j].expires_at, &t) ==
				0 &&
			    t < cap)
				cap = (time_t)t;
	}
	return cap;
}

/*
 * A client for t's registry that speaks as this registry: its server
 * certificate and CA, IRP-Domain.  NULL with e.
 */
static struct irp_client *
registry_client(struct fed *f, const struct trust *t, int timeout,
    struct reg_err *e)
{
	char cert[PATH_MAX], key[PATH_MAX];
	struct irp_client *cl;
	struct irp_err ie;

	reg_path(f->r, REG_SERVER_CERT, cert, sizeof(cert));
	reg_path(f->r, REG_SERVER_KEY, key, sizeof(key));
	if ((cl = irp_client_new_pem(t->server, t->ca_pem, cert, key, &ie)) ==
		NULL ||
	    irp_client_as_registry(cl, f->r->conf.domain, ca_cert_pem(f->r->ca),
		&ie) == -1 ||
	    (f->dns_own && irp_client_use_dns(cl, f->dns, &ie) == -1)) {
		reg_seterr(e, 502, "registry_unreachable", "%s", ie.msg);
		irp_client_free(cl);
		return NULL;
	}
	irp_client_set_timeout(cl, timeout);
	return cl;
}

/* Ask t's registry about userid, as this registry.  0 or -1 with e. */
static int
ask(struct fed *f, const struct trust *t, const char *userid,
    struct irp_user **u, struct reg_err *e)
{
	struct irp_client *cl;
	struct irp_err ie;
	int rv = -1;

	*u = NULL;
	if ((cl = registry_client(f, t, reg_conf(f->r)->fed_timeout, e)) ==
	    NULL)
		return -1;
	if (irp_lookup(cl, userid, u, &ie) == 0) {
		rv = 0;
		goto err;
	}
	if (ie.status == 404)
		reg_seterr(e, 404, "unknown_user",
		    "the registry of %s knows "
		    "no user %s",
		    t->domain, userid);
	else if (ie.status == 429 || ie.status == 503) {
		reg_seterr(e, 503, "registry_busy",
		    "the registry of %s is "
		    "busy; try again in a minute",
		    t->domain);
		e->retry_after = 60;
	} else if (ie.status == 401 || ie.status == 403)
		reg_seterr(e, 502, "remote_refused",
		    "the registry of %s "
		    "refused to answer this registry: %s",
		    t->domain, ie.msg);
	else
		reg_seterr(e, 502, "registry_unreachable",
		    "the registry of "
		    "%s (%s:%u) did not answer: %s",
		    t->domain, t->host, t->port, ie.msg);
err:
	irp_client_free(cl);
	return rv;
}

/* The answer as sent on: ours to vouch for, as JSON text. */
static int
vouch(struct irp_user *u, const struct trust *t, char **body, size_t *len)
{
	struct irp_vouch v;
	json_t *j;

	memset(&v, 0, sizeof(v));
	snprintf(v.domain, sizeof(v.domain), "%s", t->domain);
	snprintf(v.trust, sizeof(v.trust), "%s", t->basis);
	snprintf(v.ca_sha256, sizeof(v.ca_sha256), "%s", t->sha256);
	v.ca_pem = t->ca_pem;
	irp_time(time(NULL), v.checked_at);
	/* Whatever "registry" the other side sent is replaced by ours. */
	if (irp_user_set_via(u, &v) == -1 || (j = irp_user_build(u)) == NULL)
		return -1;
	*body = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (*body == NULL)
		return -1;
	*len = strlen(*body);
	return 0;
}

/* Say in a kept answer (*body, replaced) that it is an earlier one. */
static int
mark_stale(char **body, size_t *len)
{
	json_t *root, *via;
	char *out = NULL;

	if ((root = json_loadb(*body, *len, 0, NULL)) != NULL &&
	    (via = json_object_get(root, "registry")) != NULL &&
	    json_object_set_new(via, "stale", json_true()) == 0)
		out = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (out == NULL)
		return -1;
	free(*body);
	*body = out;
	*len = strlen(out);
	return 0;
}

/*
 * When the other registry can not be reached now (not when it refused,
 * or knows no such user), its last answer about the user stands in, if
 * it is at most federation_stale_max seconds old: 1 and *body, else 0.
 * The answer says when it was given ("checked_at"), and a peer shows it.
 */
static int
stand_in(struct fed *f, const char *ukey, const struct reg_err *e, char **body,
    size_t *len)
{
	const struct conf *c = reg_conf(f->r);

	if (c->fed_stale_max == 0 ||
	    (strcmp(e->code, "registry_unreachable") != 0 &&
		strcmp(e->code, "registry_busy") != 0 &&
		strcmp(e->code, "dns_unavailable") != 0))
		return 0;
	if (!stale(f, ukey, c->fed_stale_max, body, len))
		return 0;
	if (mark_stale(body, len) == -1) {
		free(*body);
		*body = NULL;
		return 0;
	}
	log_info("federation: answering for %s from an earlier answer: %s",
	    ukey + 1, e->msg);
	return 1;
}

int
fed_lookup(struct fed *f, struct db *db, const char *userid, const char *asker,
    int fresh, char **body, size_t *len, int *cached, struct reg_err *e)
{
	const struct conf *c = reg_conf(f->r);
	char ukey[IRP_USERID_MAX + 2], dkey[260];
	const char *domain = strrchr(userid, '@') + 1;
	struct irp_user *u = NULL;
	struct trust *t = NULL;
	struct db_fed rule;
	time_t now = time(NULL), longest;
	int rv = -1;

	*body = NULL;
	*cached = 0;
	longest = c->fed_cache_max > c->fed_stale_max ? c->fed_cache_max :
							c->fed_stale_max;
	/* Removing the rule takes effect at once (rule_read). */
	if (rule_get(f, db, domain, &rule, e) == -1)
		return -1;
	snprintf(ukey, sizeof(ukey), "u%s", userid);
	snprintf(dkey, sizeof(dkey), "d%s", domain);
	if (kept(f, dkey, 0, e, body, len) ||
	    kept(f, ukey, !fresh, e, body, len)) {
		*cached = 1;
		if (*body == NULL && stand_in(f, ukey, e, body, len)) {
			metrics_fed(f->r->metrics, 0, "stale");
			return 0;
		}
		metrics_fed(f->r->metrics, 0, *body ? "cached" : "refused");
		return *body ? 0 : -1;
	}
	if (limit_over(f->out_lim, "fed-user", asker, limit_now())) {
		reg_seterr(e, 429, "rate_limited",
		    "too many lookups of other "
		    "domains' users; try again in a minute");
		e->retry_after = FED_WINDOW;
		metrics_fed(f->r->metrics, 0, "limited");
		return -1;
	}
	limit_hit(f->out_lim, "fed-user", asker, limit_now());
	if ((t = discover(f, &rule, e)) == NULL) {
		keep(f, dkey, now + c->fed_negative_ttl, 0, e, NULL, 0);
		goto err;
	}
	if (ask(f, t, userid, &u, e) == -1) {
		if (e->status == 404)
			keep(f, ukey, now + c->fed_negative_ttl, 0, e, NULL, 0);
		else {
			/* The CA may have changed: judge it afresh next time. */
			trust_keep(f, domain, NULL);
			keep(f, dkey, now + c->fed_negative_ttl, 0, e, NULL, 0);
		}
		goto err;
	}
	if (strcmp(u->userid, userid) != 0) {
		reg_seterr(e, 502, "bad_answer",
		    "the registry of %s answered "
		    "for %s when asked about %s",
		    domain, u->userid, userid);
		goto err;
	}
	if (vouch(u, t, body, len) == -1) {
		reg_seterr(e, 500, "internal_error", "out of memory");
		goto err;
	}
	/* Kept past its freshness only to stand in (stand_in()). */
	keep(f, ukey, valid_until(u, now + longest),
	    valid_until(u, now + c->fed_cache_max), NULL, *body, *len);
	rv = 0;
err:
	if (rv == -1 && stand_in(f, ukey, e, body, len)) {
		metrics_fed(f->r->metrics, 0, "stale");
		rv = 0;
	} else
		metrics_fed(f->r->metrics, 0,
		    rv == 0		 ? "ok" :
			e->status == 403 ? "refused" :
					   "error");
	irp_user_free(u);
	trust_free(t);
	return rv;
}

/*
 * What the other registry said to a relayed post, for our user: its own
 * refusals of the message (size, quota, recipient, duplicate) as they
 * are; a refusal of this registry, or no answer, as ours to tell (502).
 */
static void
post_err(const struct trust *t, const struct irp_err *ie, struct reg_err *e)
{
	switch (ie->status) {
	case 400:
	case 404:
	case 409:
	case 413:
	case 415:
	case 507:
		reg_seterr(e, (int)ie->status, ie->code,
		    "the registry of %s: %s", t->domain, ie->msg);
		break;
	case 429:
	case 503:
		reg_seterr(e, 503, "registry_busy",
		    "the registry of %s is busy; try again in a minute",
		    t->domain);
		e->retry_after = 60;
		break;
	case 401:
	case 403:
		reg_seterr(e, 502, "remote_refused",
		    "the registry of %s refused a post from this registry: %s",
		    t->domain, ie->msg);
		break;
	default:
		reg_seterr(e, 502, "registry_unreachable",
		    "the registry of %s (%s:%u) did not take the message: %s",
		    t->domain, t->host, t->port, ie->msg);
	}
}

int
fed_post(struct fed *f, struct db *db, const struct reg_actor *who,
    const char *userid, const char *msg_id, const unsigned char *data,
    size_t len, struct irp_inbox_item *out, struct reg_err *e)
{
	const struct conf *c = reg_conf(f->r);
	const char *domain = strrchr(userid, '@') + 1;
	char dkey[260], detail[300];
	struct irp_client *cl = NULL;
	struct trust *t = NULL;
	struct db_fed rule;
	struct irp_err ie;
	struct db_err de;
	char *body = NULL;
	size_t blen;
	int rv = -1;

	memset(out, 0, sizeof(*out));
	if (rule_get(f, db, domain, &rule, e) == -1)
		return -1;
	snprintf(dkey, sizeof(dkey), "d%s", domain);
	if (kept(f, dkey, 0, e, &body, &blen))
		return -1; /* a refusal of the domain, kept */
	if (limit_over(f->out_lim, "fed-post", who->userid, limit_now())) {
		reg_seterr(e, 429, "rate_limited",
		    "too many messages to other domains' users; try again in a "
		    "minute");
		e->retry_after = FED_WINDOW;
		return -1;
	}
	limit_hit(f->out_lim, "fed-post", who->userid, limit_now());
	if ((t = discover(f, &rule, e)) == NULL) {
		keep(f, dkey, time(NULL) + c->fed_negative_ttl, 0, e, NULL, 0);
		return -1;
	}
	/* A message of up to inbox_msg_max travels: more than a lookup's
	 * few seconds. */
	if ((cl = registry_client(f, t, c->fed_timeout + FED_POST_SECS, e)) ==
	    NULL)
		goto err;
	if (irp_inbox_relay(cl, userid, who->userid, msg_id, data, len, out,
		&ie) == -1) {
		post_err(t, &ie, e);
		goto err;
	}
	snprintf(detail, sizeof(detail), "size=%zu msg_id=%s to=%s id=%lld",
	    len, msg_id, domain, out->id);
	if (db_audit(db, who->name, "inbox.forward", userid, who->serial,
		who->source, detail, &de) == -1)
		log_warnx("federation: a post for %s was delivered, but its "
			  "audit row could not be written: %s",
		    userid, de.msg);
	rv = 0;
err:
	irp_client_free(cl);
	trust_free(t);
	return rv;
}

/* ---- incoming -------------------------------------------------------- */

/* Whether the DANE records of any of domain's registries name ca. */
static int
dane_any(struct fed *f, const char *domain, const unsigned char *ca,
    size_t ca_len, struct reg_err *e)
{
	struct irp_srv srv[FED_SRV_MAX];
	struct irp_err ie;
	size_t n = 0, i;

	if (irp_dns_srv(f->dns, domain, srv, FED_SRV_MAX, &n, NULL, &ie) ==
	    -1) {
		reg_seterr(e, 403, "federation_refused", "%s", ie.msg);
		return -1;
	}
	for (i = 0; i < n; i++)
		if (dane_check(f, domain, srv[i].host, srv[i].port, ca, ca_len,
			e) == 0)
			return 0;
	e->status = 403;
	return -1;
}

int
fed_admit(struct fed *f, struct db *db, const char *domain,
    const unsigned char *leaf, size_t leaf_len, const unsigned char *ca,
    size_t ca_len, char trust[IRP_WORD_MAX], char out_domain[254],
    struct reg_err *e)
{
	const struct conf *c = reg_conf(f->r);
	char sha[CA_FP_HEX_LEN];
	struct ca_err ce;
	struct db_fed rule;
	const char *why = NULL;
	struct trust *t;
	int rv = -1;

	if (strcmp(c->fed_serve, "off") == 0) {
		reg_seterr(e, 403, "federation_refused",
		    "this registry "
		    "answers no other registry (federation_serve = off)");
		goto out;
	}
	if (irp_domain_normalize(domain, out_domain, 254, &why) == -1 ||
	    strcmp(out_domain, f->r->conf.domain) == 0) {
		reg_seterr(e, 403, "federation_refused", "IRP-Domain: %s",
		    why ? why : "this registry's own domain");
		goto out;
	}
	if (limit_over(f->in_lim, "fed-in", out_domain, limit_now())) {
		reg_seterr(e, 429, "rate_limited",
		    "too many lookups from "
		    "%s's registry; try again in a minute",
		    out_domain);
		e->retry_after = FED_WINDOW;
		goto out;
	}
	limit_hit(f->in_lim, "fed-in", out_domain, limit_now());
	if (rule_get(f, db, out_domain, &rule, e) == -1)
		goto out;
	if (leaf == NULL || ca == NULL || !ca_is_ca_cert(ca, ca_len) ||
	    ca_der_sha256_hex(ca, ca_len, sha) == -1) {
		reg_seterr(e, 403, "federation_refused",
		    "a registry asking "
		    "as %s must present its certificate followed by its CA",
		    out_domain);
		goto out;
	}
	if (strcmp(rule.rule, "pinned") == 0) {
		if (strcmp(sha, rule.ca_sha256) != 0) {
			reg_seterr(e, 403, "federation_refused",
			    "the CA "
			    "presented (SHA-256 %.16s...) is not the one "
			    "pinned for %s",
			    sha, out_domain);
			goto out;
		}
	} else if ((t = trust_kept(f, &rule)) != NULL &&
	    strcmp(t->sha256, sha) == 0)
		trust_free(t); /* judged by DANE a moment ago */
	else {
		trust_free(t);
		if (dane_any(f, out_domain, ca, ca_len, e) == -1)
			goto out;
	}
	if (ca_verify_registry(ca, ca_len, leaf, leaf_len, time(NULL), &ce) ==
	    -1) {
		reg_seterr(e, 403, "federation_refused",
		    "the certificate of "
		    "%s's registry is refused: %s",
		    out_domain, ce.msg);
		goto out;
	}
	snprintf(trust, IRP_WORD_MAX, "%s",
	    strcmp(rule.rule, "pinned") == 0 ? IRP_TRUST_PINNED :
					       IRP_TRUST_DANE);
	rv = 0;
out:
	metrics_fed(f->r->metrics, 1,
	    rv == 0		 ? "ok" :
		e->status == 429 ? "limited" :
				   "refused");
	return rv;
}
