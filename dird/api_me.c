/*
 * api_me.c - the caller's own record, its addresses, and lookups.
 */
#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "irp.h"

static json_t *
time_json(time_t t)
{
	char buf[IRP_TIME_LEN];

	irp_time(t, buf);
	return json_string(buf);
}

static int
cert_json(const struct db_cert *c, void *arg)
{
	json_t *arr = arg;
	const char *status = c->revoked ? "revoked" :
	    (c->not_after <= time(NULL) ? "expired" : "valid");

	json_array_append_new(arr, json_pack("{s:s,s:s,s:o,s:o,s:s}", "serial",
				       c->serial, "fingerprint", c->fingerprint,
				       "not_before", time_json(c->not_before),
				       "not_after", time_json(c->not_after),
				       "status", status));
	return 0;
}

static json_t *
addr_json(const struct db_lookup_row *r)
{
	return json_pack("{s:s,s:i,s:s,s:o,s:o}", "ip", r->ip, "port", r->port,
	    "kind", r->observed ? "observed" : "declared", "updated_at",
	    time_json(r->updated_at), "expires_at", time_json(r->expires_at));
}

/* Collects the caller's own certificate's addresses out of a lookup. */
struct own_addrs {
	const char *serial;
	json_t *arr;
};

static int
own_addr(const struct db_lookup_row *r, void *arg)
{
	struct own_addrs *o = arg;

	if (r->has_addr && strcmp(r->serial, o->serial) == 0)
		json_array_append_new(o->arr, addr_json(r));
	return 0;
}

void
api_me(struct http_req *req, struct http_resp *resp)
{
	const struct db_user *u = &req->who.user;
	struct own_addrs o = { req->who.serial, json_array() };
	json_t *certs = json_array();
	struct db_err de;

	if (db_cert_list(req->db, u->userid, cert_json, certs, &de) == -1 ||
	    db_lookup(req->db, u->id, own_addr, &o, &de) == -1) {
		json_decref(certs);
		json_decref(o.arr);
		http_db_error(resp, &de);
		return;
	}
	http_json(resp, 200, json_pack("{s:s,s:s,s:s?,s:s,s:s,s:o,s:o}",
				 "userid", u->userid, "name", u->name, "email",
				 u->email[0] ? u->email : NULL, "role",
				 u->is_admin ? "admin" : "user", "serial",
				 req->who.serial, "certificates", certs,
				 "addresses", o.arr));
}

int
api_parse_ip(const char *s, char *out, size_t len)
{
	unsigned char buf[16];

	if (strlen(s) >= 64)
		return -1;
	if (inet_pton(AF_INET, s, buf) == 1)
		return inet_ntop(AF_INET, buf, out, (socklen_t)len) ? 0 : -1;
	if (inet_pton(AF_INET6, s, buf) == 1) {
		if (IN6_IS_ADDR_V4MAPPED((struct in6_addr *)buf))
			return inet_ntop(AF_INET, buf + 12, out,
				   (socklen_t)len) ? 0 : -1;
		return inet_ntop(AF_INET6, buf, out, (socklen_t)len) ? 0 : -1;
	}
	return -1;
}

int
api_parse_addresses(json_t *body, const struct conf *c,
    struct db_addr *addrs, size_t *n, int *ttl, struct http_resp *resp)
{
	static const char *const top[] = { "addresses", "ttl", NULL };
	static const char *const item[] = { "ip", "port", NULL };
	json_t *arr, *v, *ip, *port, *t;
	size_t i;

	if (api_only_keys(body, top, resp) == -1)
		return -1;
	arr = json_object_get(body, "addresses");
	if (!json_is_array(arr)) {
		http_error(resp, 400, arr ? "wrong_type" : "missing_field",
		    "\"addresses\" must be an array of {\"ip\",\"port\"}");
		return -1;
	}
	if (json_array_size(arr) < 1 || json_array_size(arr) > IRP_ADDR_MAX) {
		http_error(resp, 400, "too_many_addresses",
		    "give 1 to %d addresses, not %zu", IRP_ADDR_MAX,
		    json_array_size(arr));
		return -1;
	}
	json_array_foreach(arr, i, v) {
		if (!json_is_object(v) || api_only_keys(v, item, resp) == -1) {
			if (json_is_object(v))
				return -1;
			http_error(resp, 400, "wrong_type",
			    "address %zu must be an object", i);
			return -1;
		}
		ip = json_object_get(v, "ip");
		port = json_object_get(v, "port");
		if (!json_is_string(ip) || !json_is_integer(port)) {
			http_error(resp, 400, "wrong_type",
			    "address %zu needs \"ip\" (string) and \"port\" "
			    "(integer)", i);
			return -1;
		}
		if (json_string_length(ip) != strlen(json_string_value(ip)) ||
		    api_parse_ip(json_string_value(ip), addrs[i].ip,
			sizeof(addrs[i].ip)) == -1) {
			http_error(resp, 400, "invalid_address",
			    "address %zu: \"%.64s\" is not an IPv4 or IPv6 "
			    "address", i, json_string_value(ip));
			return -1;
		}
		if (json_integer_value(port) < 1 ||
		    json_integer_value(port) > 65535) {
			http_error(resp, 400, "invalid_port",
			    "address %zu: port %" JSON_INTEGER_FORMAT
			    " is not in 1-65535", i, json_integer_value(port));
			return -1;
		}
		addrs[i].port = (int)json_integer_value(port);
		addrs[i].observed = 0;
	}
	*n = json_array_size(arr);
	*ttl = c->ttl_default;
	if ((t = json_object_get(body, "ttl")) != NULL) {
		if (!json_is_integer(t)) {
			http_error(resp, 400, "wrong_type",
			    "\"ttl\" must be an integer number of seconds");
			return -1;
		}
		/*
		 * No lifetime at all, or a negative one, is a client's
		 * mistake: refused.  A positive one is clamped, not refused:
		 * the server decides its range.
		 */
		if (json_integer_value(t) < 1) {
			http_error(resp, 400, "invalid_value",
			    "\"ttl\" must be 1 second or more (it is kept "
			    "within %d-%d), not %" JSON_INTEGER_FORMAT,
			    c->ttl_min, c->ttl_max, json_integer_value(t));
			return -1;
		}
		if (json_integer_value(t) < c->ttl_min)
			*ttl = c->ttl_min;
		else if (json_integer_value(t) > c->ttl_max)
			*ttl = c->ttl_max;
		else
			*ttl = (int)json_integer_value(t);
	}
	return 0;
}

void
api_addr_put(struct http_req *req, struct http_resp *resp)
{
	struct db_addr addrs[IRP_ADDR_MAX + 1];
	struct reg_actor who;
	struct reg_err e;
	json_t *out;
	time_t exp;
	size_t n, i;
	int ttl;

	if (api_parse_addresses(req->json, reg_conf(req->reg), addrs, &n,
		&ttl, resp) == -1)
		return;
	if (reg_addr_set(req->reg, req->db, api_actor(req, &who), addrs, &n,
		&ttl, &exp, &e) == -1) {
		http_reg_error(resp, &e);
		return;
	}
	out = json_array();
	for (i = 0; i < n; i++)
		json_array_append_new(out, json_pack("{s:s,s:i,s:s}", "ip",
					       addrs[i].ip, "port",
					       addrs[i].port, "kind",
					       addrs[i].observed ? "observed" :
								   "declared"));
	http_json(resp, 200, json_pack("{s:o,s:i,s:o}", "addresses", out,
				 "ttl", ttl, "expires_at", time_json(exp)));
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
	http_json(resp, 200, json_pack("{s:I}", "deleted", (json_int_t)n));
}

/* Group lookup rows (one per certificate x address) into devices. */
struct devices {
	json_t *arr;
	json_t *cur;
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
	struct ca_err ce;
	char *pem;

	if (d->cur == NULL || strcmp(d->serial, r->serial) != 0) {
		if ((pem = ca_der_to_pem(r->der, r->der_len, &ce)) == NULL) {
			d->failed = 1;
			return -1;
		}
		d->cur = json_pack("{s:s,s:s,s:s,s:o,s:[]}", "serial",
		    r->serial, "fingerprint", r->fingerprint, "certificate",
		    pem, "not_after", time_json(r->not_after), "addresses");
		free(pem);
		json_array_append_new(d->arr, d->cur);
		snprintf(d->serial, sizeof(d->serial), "%s", r->serial);
		until_min(&d->valid_until, r->not_after);
	}
	if (r->has_addr) {
		json_array_append_new(json_object_get(d->cur, "addresses"),
		    addr_json(r));
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

void
api_user_get(struct http_req *req, struct http_resp *resp)
{
	char userid[IRP_USERID_MAX + 1], key[IRP_USERID_MAX + 2];
	struct devices d = { NULL, NULL, "", 0, 0, INT64_MAX };
	struct cache *c = req->reg->cache;
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
	keylen = lookup_key(userid, key, sizeof(key));
	if (c != NULL) {
		if (cache_get(c, key, keylen, time(NULL), &text, &len) == 1) {
			http_json_text(resp, 200, text, len);
			return;
		}
		ticket = cache_ticket(c);
	}
	d.arr = json_array();
	/* The user and its devices in one round trip. */
	if (db_user_lookup(req->db, userid, &u, device_row, &d, &de) == -1) {
		json_decref(d.arr);
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
		json_decref(d.arr);
		http_error(resp, 404, "unknown_user",
		    "there is no user %s here", userid);
		return;
	}
	http_json(resp, 200, json_pack("{s:s,s:s,s:s?,s:b,s:o}", "userid",
				 u.userid, "name", u.name, "email",
				 u.email[0] ? u.email : NULL, "online",
				 d.online, "devices", d.arr));
	/* Not a second longer than the database would say the same. */
	if (c != NULL && resp->status == 200)
		cache_put(c, CACHE_LOOKUP, key, keylen, u.id, d.valid_until - 1,
		    ticket, resp->body, resp->len);
}
