/*
 * api_me.c - the caller's own record, its addresses, and lookups.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "auth.h"
#include "commit.h"
#include "fed.h"
#include "log.h"
#include "reg.h"
#include "irp.h"

static int
cert_json(const struct db_cert *c, void *arg)
{
	struct irp_cert_status cs;
	const char *status = c->revoked ? IRP_CERT_REVOKED :
	    (c->not_after <= time(NULL) ? IRP_CERT_EXPIRED : IRP_CERT_VALID);

	memset(&cs, 0, sizeof(cs));
	irp_time(c->not_before, cs.not_before);
	irp_time(c->not_after, cs.not_after);
	if (irp_copy(cs.serial, sizeof(cs.serial), c->serial) == -1 ||
	    irp_copy(cs.fingerprint, sizeof(cs.fingerprint), c->fingerprint) ==
	    -1 ||
	    irp_copy(cs.status, sizeof(cs.status), status) == -1)
		return -1;
	return irp_me_add_cert(arg, &cs);
}

static int
addr_json(const struct db_lookup_row *r, struct irp_address *a)
{
	memset(a, 0, sizeof(*a));
	a->port = r->port;
	irp_time(r->updated_at, a->updated_at);
	irp_time(r->expires_at, a->expires_at);
	if (irp_copy(a->ip, sizeof(a->ip), r->ip) == -1 ||
	    irp_copy(a->kind, sizeof(a->kind), r->observed ?
		IRP_ADDR_OBSERVED : IRP_ADDR_DECLARED) == -1)
		return -1;
	return 0;
}

/* Collects the caller's own certificate's addresses out of a lookup. */
struct own_addrs {
	const char *serial;
	struct irp_me *me;
};

static int
own_addr(const struct db_lookup_row *r, void *arg)
{
	struct own_addrs *o = arg;
	struct irp_address a;

	if (r->has_addr && strcmp(r->serial, o->serial) == 0 &&
	    (addr_json(r, &a) == -1 || irp_me_add_address(o->me, &a) == -1))
		return -1;
	return 0;
}

void
api_me(struct http_req *req, struct http_resp *resp)
{
	const struct db_user *u = &req->who.user;
	struct irp_me me;
	struct own_addrs o = { req->who.serial, &me };
	struct db_err de;

	memset(&me, 0, sizeof(me));
	if (irp_copy(me.userid, sizeof(me.userid), u->userid) == -1 ||
	    irp_copy(me.name, sizeof(me.name), u->name) == -1 ||
	    irp_copy(me.email, sizeof(me.email), u->email) == -1 ||
	    irp_copy(me.role, sizeof(me.role), u->is_admin ? IRP_ROLE_ADMIN :
		IRP_ROLE_USER) == -1 ||
	    irp_copy(me.serial, sizeof(me.serial), req->who.serial) == -1) {
		http_error(resp, 500, "internal_error",
		    "the user's record does not fit the answer");
		return;
	}
	if (db_cert_list(req->db, u->userid, cert_json, &me, &de) == -1 ||
	    db_lookup(req->db, u->id, own_addr, &o, &de) == -1) {
		irp_me_clear(&me);
		http_db_error(resp, &de);
		return;
	}
	http_json(resp, 200, irp_me_build(&me));
	irp_me_clear(&me);
}

int
api_parse_ip(const char *s, char *out, size_t len)
{
	return irp_ip_normalize(s, out, len);
}

int
api_parse_addresses(json_t *body, struct db_addr *addrs, size_t *n,
    long long *ttl, int *has_ttl, struct http_resp *resp)
{
	struct irp_addresses_req r;
	struct irp_err e;
	size_t i;

	if (irp_addresses_req_parse(body, &r, &e) == -1) {
		api_wire_error(resp, &e);
		return -1;
	}
	for (i = 0; i < r.naddr; i++) {
		memcpy(addrs[i].ip, r.addr[i].ip, sizeof(r.addr[i].ip));
		addrs[i].port = r.addr[i].port;
		addrs[i].observed = 0;
	}
	*n = r.naddr;
	*has_ttl = r.has_ttl;
	*ttl = r.has_ttl ? r.ttl : 0;
	return 0;
}

/* The reply to a PUT of addresses: what was stored, for how long. */
static void
addr_reply(struct http_resp *resp, const struct db_addr_set *set)
{
	struct irp_addresses_reply out;
	size_t i;

	memset(&out, 0, sizeof(out));
	for (i = 0; i < set->n; i++) {
		struct irp_address *a = &out.addr[out.naddr++];

		if (irp_copy(a->ip, sizeof(a->ip), set->addrs[i].ip) == -1 ||
		    irp_copy(a->kind, sizeof(a->kind), set->addrs[i].observed ?
			IRP_ADDR_OBSERVED : IRP_ADDR_DECLARED) == -1) {
			http_error(resp, 500, "internal_error",
			    "an address does not fit the answer");
			return;
		}
		a->port = set->addrs[i].port;
	}
	out.ttl = set->ttl;
	irp_time(set->expires_at, out.expires_at);
	http_json(resp, 200, irp_addresses_reply_build(&out));
}

/* The answer to an address update whose write is done. */
static void
addr_written(struct http_req *req, struct http_resp *resp,
    const struct commit_job *job)
{
	struct reg_err e;

	if (reg_addr_end(req->reg, job, &e) == -1)
		http_reg_error(resp, &e);
	else
		addr_reply(resp, &job->set);
}

/*
 * With group commit (commit.h) the write joins others on the committer's
 * thread while the connection sleeps (api_write); the handler is called
 * again with it done.  Without, it commits alone, here.
 */
void
api_addr_put(struct http_req *req, struct http_resp *resp)
{
	struct db_addr addrs[IRP_ADDR_MAX + 1];
	struct commit_job *job = req->later;
	struct reg_actor who;
	struct reg_err e;
	long long asked;
	size_t n;
	int has_ttl;

	if (job != NULL) {
		addr_written(req, resp, job);
		return;
	}
	if (api_parse_addresses(req->json, addrs, &n, &asked, &has_ttl,
		resp) == -1)
		return;
	if ((job = malloc(sizeof(*job))) == NULL) {
		http_error(resp, 500, "internal_error", "out of memory");
		return;
	}
	if (reg_addr_begin(req->reg, api_actor(req, &who), addrs, n,
		has_ttl ? &asked : NULL, job, &e) == -1) {
		free(job);
		http_reg_error(resp, &e);
		return;
	}
	if (api_write(req, resp, job, job, free) == 1) {
		addr_written(req, resp, job);
		free(job);
	}
}

void
api_addr_del(struct http_req *req, struct http_resp *resp)
{
	struct reg_actor who;
	struct reg_err e;
	long n;

	if (reg_addr_del(req->reg, req->db, api_actor(req, &who), &n,
		&e) == -1) {
		http_reg_error(resp, &e);
		return;
	}
	http_json(resp, 200, irp_deleted_build(&(struct irp_deleted){ n }));
}

/* Group lookup rows (one per certificate x address) into devices. */
struct devices {
	struct irp_user *u;
	struct irp_device *cur;
	char serial[DB_SERIAL_MAX];
	int online;
	int failed;
	time_t valid_until; /* when the first certificate or address expires */
};

static void
until_min(time_t *until, time_t t)
{
	if (t < *until)
		*until = t;
}

static int
device_row(const struct db_lookup_row *r, void *arg)
{
	struct devices *d = arg;
	struct irp_device dev;
	struct ca_err ce;

	if (d->cur == NULL || strcmp(d->serial, r->serial) != 0) {
		memset(&dev, 0, sizeof(dev));
		irp_time(r->not_after, dev.not_after);
		if ((dev.cert_pem = ca_der_to_pem(r->der, r->der_len, &ce)) ==
		    NULL ||
		    irp_copy(dev.serial, sizeof(dev.serial), r->serial) == -1 ||
		    irp_copy(dev.fingerprint, sizeof(dev.fingerprint),
			r->fingerprint) == -1) {
			free(dev.cert_pem);
			d->failed = 1;
			return -1;
		}
		/* The device's certificate is the lookup's from now on. */
		if (irp_user_add_device(d->u, &dev) == -1) {
			d->failed = 1;
			return -1;
		}
		d->cur = &d->u->dev[d->u->ndev - 1];
		snprintf(d->serial, sizeof(d->serial), "%s", r->serial);
		until_min(&d->valid_until, r->not_after);
	}
	if (r->has_addr) {
		if (d->cur->naddr == IRP_DEV_ADDR_MAX ||
		    addr_json(r, &d->cur->addr[d->cur->naddr]) == -1) {
			d->failed = 1;
			return -1;
		}
		d->cur->naddr++;
		d->online = 1;
		until_min(&d->valid_until, r->expires_at);
	}
	return 0;
}

/*
 * The cache key of a lookup: 'u' and the normalised user id.  The answer
 * does not depend on who asks, so one entry serves every caller.
 */
static size_t
lookup_key(const char *userid, char *key, size_t len)
{
	return (size_t)snprintf(key, len, "u%s", userid);
}

/*
 * A user of another domain: asked of its registry on the user's behalf
 * (fed.h).  Another registry asking gets no such answer from here: each
 * registry answers for its own domain, so no question goes round.
 */
static void
user_get_foreign(struct http_req *req, struct http_resp *resp,
    const char *userid)
{
	struct reg_err e;
	char *body;
	size_t len;
	int cached;

	if (req->who.kind == AUTH_REGISTRY) {
		http_error(resp, 403, "federation_refused", "this registry "
		    "answers for %s only", req->reg->conf.domain);
		return;
	}
	if (fed_lookup(req->reg->fed, req->db, userid, req->who.user.userid,
		req->no_cache, &body, &len, &cached, &e) == -1) {
		http_reg_error(resp, &e);
		return;
	}
	http_json_text(resp, 200, body, len);
}

void
api_user_get(struct http_req *req, struct http_resp *resp)
{
	char userid[IRP_USERID_MAX + 1], key[IRP_USERID_MAX + 2];
	struct devices d = { NULL, NULL, "", 0, 0, INT64_MAX };
	struct cache *c = req->reg->cache;
	struct irp_user out;
	struct db_user u;
	struct db_err de;
	const char *why;
	uint64_t ticket = 0;
	size_t keylen, len;
	void *text;

	if (irp_userid_normalize(req->param, userid, sizeof(userid),
		&why) == -1) {
		http_error(resp, 400, "invalid_userid", "%s", why);
		return;
	}
	if (strcmp(strrchr(userid, '@') + 1, req->reg->conf.domain) != 0) {
		user_get_foreign(req, resp, userid);
		return;
	}
	if (req->who.kind == AUTH_REGISTRY)
		log_info("%s %s: the registry of %s (%s) looks up %s",
		    req->reqid, req->source, req->who.registry, req->who.trust,
		    userid);
	keylen = lookup_key(userid, key, sizeof(key));
	if (c != NULL) {
		if (cache_get(c, key, keylen, time(NULL), &text, &len) == 1) {
			http_json_text(resp, 200, text, len);
			return;
		}
		ticket = cache_ticket(c);
	}
	memset(&out, 0, sizeof(out));
	d.u = &out;
	/* The user and its devices in one round trip. */
	if (db_user_lookup(req->db, userid, &u, device_row, &d, &de) == -1) {
		irp_user_clear(&out);
		if (d.failed)
			http_error(resp, 500, "internal_error",
			    "out of memory");
		else if (de.code == DB_ERR_UNAVAILABLE ||
		    de.code == DB_ERR_INTERNAL)
			http_db_error(resp, &de);
		else
			http_error(resp, 404, "unknown_user",
			    "there is no user %s here", userid);
		return;
	}
	if (!u.enabled) {
		irp_user_clear(&out);
		http_error(resp, 404, "unknown_user",
		    "there is no user %s here", userid);
		return;
	}
	out.online = d.online;
	if (irp_copy(out.userid, sizeof(out.userid), u.userid) == -1 ||
	    irp_copy(out.name, sizeof(out.name), u.name) == -1 ||
	    irp_copy(out.email, sizeof(out.email), u.email) == -1)
		http_error(resp, 500, "internal_error",
		    "the user's record does not fit the answer");
	else
		http_json(resp, 200, irp_user_build(&out));
	irp_user_clear(&out);
	/* Not a second longer than the database would say the same. */
	if (c != NULL && resp->status == 200)
		cache_put(c, CACHE_LOOKUP, key, keylen, u.id, d.valid_until - 1,
		    ticket, resp->body, resp->len);
}
