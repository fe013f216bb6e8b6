/*
 * irp_wire.c - the protocol's bodies built and parsed (irp_wire.h).
 *
 * The requests are read as dird always read them: every refusal has the
 * code and sentence dird answered with before this file existed, since
 * clients and tests depend on them.  The replies are read as the client
 * needs them: every string is checked against its buffer and copied
 * whole, every number against its range.
 */
#include <arpa/inet.h>
#include <netinet/in.h>

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "irp_internal.h"
#include "irp_wire.h"

void
irp_seterr(struct irp_err *err, int status, const char *code, const char *fmt,
    ...)
{
	va_list ap;

	if (err == NULL)
		return;
	err->status = status;
	snprintf(err->code, sizeof(err->code), "%s", code);
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
}

int
irp_copy(char *dst, size_t len, const char *src)
{
	size_t n = src ? strlen(src) : 0;

	if (len == 0)
		return -1;
	dst[0] = '\0';
	if (n >= len)
		return -1;
	memcpy(dst, src ? src : "", n + 1);
	return 0;
}

/*
 * Make room for one more element in a list that only grows: its
 * capacity is the next power of two of n, so it is reallocated when n
 * reaches one.  0, or -1 when out of memory.
 */
static int
grow(void *listp, size_t n, size_t size)
{
	void **list = listp, *p;
	size_t cap = n ? n * 2 : 1;

	if (n != 0 && (n & (n - 1)) != 0)
		return 0;
	if (cap > SIZE_MAX / size || (p = realloc(*list, cap * size)) == NULL)
		return -1;
	*list = p;
	return 0;
}

/* ---- reading requests ------------------------------------------------ */

static int
req_object(json_t *body, struct irp_err *err)
{
	if (json_is_object(body))
		return 0;
	irp_seterr(err, 400, "wrong_type", "the body must be a JSON object");
	return -1;
}

/* Every key of obj is one of allowed (NULL-terminated). */
static int
req_keys(json_t *obj, const char *const *allowed, struct irp_err *err)
{
	const char *key;
	json_t *val;
	size_t i;

	json_object_foreach(obj, key, val) {
		for (i = 0; allowed[i] != NULL; i++)
			if (strcmp(key, allowed[i]) == 0)
				break;
		if (allowed[i] == NULL) {
			irp_seterr(err, 400, "unknown_field",
			    "unknown field \"%.64s\"", key);
			return -1;
		}
	}
	return 0;
}

/*
 * A string member of at most max bytes, without NUL; null counts as
 * absent.  0 with *out (NULL when absent), or -1.
 */
static int
req_str(json_t *obj, const char *key, size_t max, int required,
    const char **out, struct irp_err *err)
{
	json_t *v = json_object_get(obj, key);
	const char *s;

	*out = NULL;
	if (v == NULL || json_is_null(v)) {
		if (!required)
			return 0;
		irp_seterr(err, 400, "missing_field",
		    "the field \"%s\" is required", key);
		return -1;
	}
	if (!json_is_string(v)) {
		irp_seterr(err, 400, "wrong_type",
		    "the field \"%s\" must be a string", key);
		return -1;
	}
	s = json_string_value(v);
	/* jansson keeps embedded NULs; we never accept them. */
	if (json_string_length(v) != strlen(s)) {
		irp_seterr(err, 400, "invalid_value",
		    "the field \"%s\" contains a NUL character", key);
		return -1;
	}
	if (json_string_length(v) > max) {
		irp_seterr(err, 400, "too_long",
		    "the field \"%s\" is longer than %zu bytes", key, max);
		return -1;
	}
	*out = s;
	return 0;
}

/* An optional integer "ttl" (null is no integer). */
static int
req_ttl(json_t *body, int *has, long long *ttl, struct irp_err *err)
{
	json_t *t;

	*has = 0;
	*ttl = 0;
	if ((t = json_object_get(body, "ttl")) == NULL)
		return 0;
	if (!json_is_integer(t)) {
		irp_seterr(err, 400, "wrong_type",
		    "\"ttl\" must be an integer number of seconds");
		return -1;
	}
	*has = 1;
	*ttl = json_integer_value(t);
	return 0;
}

/* ---- reading replies ------------------------------------------------- */

#define REQUIRED 1
#define NULLABLE 2 /* null reads as "" */

static int
rep_object(json_t *o, const char *what, struct irp_err *err)
{
	if (json_is_object(o))
		return 0;
	irp_seterr(err, 200, "bad_response",
	    "the registry's %s answer is not a JSON object", what);
	return -1;
}

/* A string member copied into dst (len bytes); absent gives "". */
static int
rep_str(json_t *o, const char *key, char *dst, size_t len, int flags,
    const char *what, struct irp_err *err)
{
	json_t *v = json_object_get(o, key);
	const char *s;

	dst[0] = '\0';
	if (v == NULL || ((flags & NULLABLE) && json_is_null(v))) {
		if (!(flags & REQUIRED))
			return 0;
		irp_seterr(err, 200, "bad_response",
		    "the registry's %s answer lacks \"%s\"", what, key);
		return -1;
	}
	if (!json_is_string(v)) {
		irp_seterr(err, 200, "bad_response",
		    "the registry's %s answer has a \"%s\" that is not a "
		    "string",
		    what, key);
		return -1;
	}
	s = json_string_value(v);
	if (json_string_length(v) != strlen(s)) {
		irp_seterr(err, 200, "bad_response",
		    "the registry's %s answer has a NUL in \"%s\"", what, key);
		return -1;
	}
	if (strlen(s) >= len) {
		irp_seterr(err, 200, "bad_response",
		    "the registry's %s answer has a \"%s\" longer than %zu "
		    "bytes",
		    what, key, len - 1);
		return -1;
	}
	memcpy(dst, s, strlen(s) + 1);
	return 0;
}

/* A required string member as a new copy (for PEMs). */
static int
rep_dup(json_t *o, const char *key, char **dst, const char *what,
    struct irp_err *err)
{
	json_t *v = json_object_get(o, key);

	*dst = NULL;
	if (!json_is_string(v) ||
	    json_string_length(v) != strlen(json_string_value(v))) {
		irp_seterr(err, 200, "bad_response",
		    "the registry's %s answer lacks \"%s\" as a string", what,
		    key);
		return -1;
	}
	if ((*dst = strdup(json_string_value(v))) == NULL) {
		irp_seterr(err, 0, "memory", "out of memory");
		return -1;
	}
	return 0;
}

/* A required integer member within min..max. */
static int
rep_int(json_t *o, const char *key, long long min, long long max,
    long long *out, const char *what, struct irp_err *err)
{
	json_t *v = json_object_get(o, key);

	*out = 0;
	if (!json_is_integer(v) || json_integer_value(v) < min ||
	    json_integer_value(v) > max) {
		irp_seterr(err, 200, "bad_response",
		    "the registry's %s answer lacks \"%s\" as an integer in "
		    "%lld-%lld",
		    what, key, min, max);
		return -1;
	}
	*out = json_integer_value(v);
	return 0;
}

/* A boolean member; absent is false. */
static int
rep_bool(json_t *o, const char *key, int *out, const char *what,
    struct irp_err *err)
{
	json_t *v = json_object_get(o, key);

	*out = 0;
	if (v == NULL)
		return 0;
	if (!json_is_boolean(v)) {
		irp_seterr(err, 200, "bad_response",
		    "the registry's %s answer has a \"%s\" that is not true or "
		    "false",
		    what, key);
		return -1;
	}
	*out = json_is_true(v);
	return 0;
}

/* An array member; absent gives NULL (no elements). */
static int
rep_array(json_t *o, const char *key, json_t **arr, const char *what,
    struct irp_err *err)
{
	*arr = json_object_get(o, key);
	if (*arr == NULL || json_is_array(*arr))
		return 0;
	irp_seterr(err, 200, "bad_response",
	    "the registry's %s answer has a \"%s\" that is not a list", what,
	    key);
	return -1;
}

/* ---- the error object ------------------------------------------------ */

json_t *
irp_error_build(const char *code, const char *msg)
{
	json_t *m, *e;
	char *copy, *p;

	/*
	 * Messages quote input, which may be invalid UTF-8 or cut inside a
	 * character; JSON strings must be UTF-8.  Keep the ASCII and mask
	 * the rest.
	 */
	if ((m = json_string(msg)) == NULL) {
		if ((copy = strdup(msg)) == NULL)
			return NULL;
		for (p = copy; *p != '\0'; p++)
			if ((unsigned char)*p >= 0x80)
				*p = '?';
		m = json_string(copy);
		free(copy);
	}
	e = json_pack("{s:{s:s,s:o}}", "error", "code", code, "message", m);
	return e;
}

/*
 * Make text from the registry fit to print: dchat writes errors to a
 * terminal and into JSON events.  Control characters (C0, DEL, and C1 as
 * UTF-8) become '?', so that no escape sequence reaches the terminal; a
 * multibyte character that vsnprintf cut at the end of the buffer goes,
 * so that the rest stays UTF-8 (jansson refuses anything else, and the
 * event would be lost).  s was UTF-8 before it was cut: the registry's
 * strings come from jansson, which checked them.
 */
static void
printable(char *s)
{
	size_t i, n = strlen(s), need;
	unsigned char c;

	for (i = 0; i < n; i++) {
		c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f)
			s[i] = '?';
		else if (c == 0xc2 && i + 1 < n &&
		    (unsigned char)s[i + 1] >= 0x80 &&
		    (unsigned char)s[i + 1] <= 0x9f) {
			s[i] = s[i + 1] = '?';
			i++;
		}
	}
	/* Back to the lead byte of the last character. */
	for (i = n;
	     i > 0 && n - i < 4 && ((unsigned char)s[i - 1] & 0xc0) == 0x80;
	     i--)
		;
	if (i == 0 || (c = (unsigned char)s[i - 1]) < 0xc0)
		return;
	need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
	if (n - (i - 1) < need)
		s[i - 1] = '\0';
}

void
irp_error_parse(json_t *root, long status, struct irp_err *err)
{
	const char *code = NULL, *msg = NULL;
	json_t *e;

	if ((e = json_object_get(root, "error")) != NULL) {
		code = json_string_value(json_object_get(e, "code"));
		msg = json_string_value(json_object_get(e, "message"));
	}
	/* An empty code names nothing: as if there were no error object. */
	if (code && *code && msg) {
		irp_seterr(err, (int)status, code, "the registry says: %s (%s)",
		    msg, code);
		if (err != NULL) {
			printable(err->code);
			printable(err->msg);
		}
	} else
		irp_seterr(err, (int)status, "http",
		    "the registry answered HTTP %ld without an error object",
		    status);
}

/* ---- enrolment and renewal ------------------------------------------- */

json_t *
irp_csr_req_build(const struct irp_csr_req *r)
{
	return json_pack("{s:s}", "csr", r->csr);
}

int
irp_csr_req_parse(json_t *body, struct irp_csr_req *out, struct irp_err *err)
{
	static const char *const keys[] = { "csr", NULL };

	out->csr = NULL;
	if (req_object(body, err) == -1 || req_keys(body, keys, err) == -1 ||
	    req_str(body, "csr", IRP_CSR_MAX, 1, &out->csr, err) == -1)
		return -1;
	return 0;
}

json_t *
irp_cert_build(const struct irp_cert *c)
{
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "userid", c->userid,
	    "certificate", c->cert_pem, "chain", c->chain_pem, "serial",
	    c->serial, "fingerprint", c->fingerprint, "not_after",
	    c->not_after);
}

int
irp_cert_parse(json_t *root, struct irp_cert *out, struct irp_err *err)
{
	static const char what[] = "certificate";

	memset(out, 0, sizeof(*out));
	if (rep_object(root, what, err) == -1 ||
	    rep_str(root, "userid", out->userid, sizeof(out->userid), 0, what,
		err) == -1 ||
	    rep_str(root, "serial", out->serial, sizeof(out->serial), REQUIRED,
		what, err) == -1 ||
	    rep_str(root, "fingerprint", out->fingerprint,
		sizeof(out->fingerprint), 0, what, err) == -1 ||
	    rep_str(root, "not_after", out->not_after, sizeof(out->not_after),
		0, what, err) == -1 ||
	    rep_dup(root, "certificate", &out->cert_pem, what, err) == -1 ||
	    rep_dup(root, "chain", &out->chain_pem, what, err) == -1) {
		irp_cert_clear(out);
		return -1;
	}
	return 0;
}

void
irp_cert_clear(struct irp_cert *cert)
{
	if (cert == NULL)
		return;
	free(cert->cert_pem);
	free(cert->chain_pem);
	cert->cert_pem = cert->chain_pem = NULL;
}

/* ---- addresses ------------------------------------------------------- */

int
irp_ip_normalize(const char *s, char *out, size_t len)
{
	unsigned char buf[16];

	if (strlen(s) >= 64)
		return -1;
	if (inet_pton(AF_INET, s, buf) == 1)
		return inet_ntop(AF_INET, buf, out, (socklen_t)len) ? 0 : -1;
	if (inet_pton(AF_INET6, s, buf) == 1) {
		if (IN6_IS_ADDR_V4MAPPED((struct in6_addr *)buf))
			return inet_ntop(AF_INET, buf + 12, out,
				   (socklen_t)len) ?
			    0 :
			    -1;
		return inet_ntop(AF_INET6, buf, out, (socklen_t)len) ? 0 : -1;
	}
	return -1;
}

json_t *
irp_address_build(const struct irp_address *a)
{
	json_t *o;

	o = json_pack("{s:s,s:i,s:s}", "ip", a->ip, "port", a->port, "kind",
	    a->kind);
	if (o != NULL && a->updated_at[0] != '\0' &&
	    json_object_set_new(o, "updated_at", json_string(a->updated_at)) ==
		-1)
		goto err;
	if (o != NULL && a->expires_at[0] != '\0' &&
	    json_object_set_new(o, "expires_at", json_string(a->expires_at)) ==
		-1)
		goto err;
	return o;
err:
	json_decref(o);
	return NULL;
}

static int
address_parse(json_t *a, struct irp_address *ad, const char *what,
    struct irp_err *err)
{
	long long port;

	if (rep_object(a, what, err) == -1 ||
	    rep_str(a, "ip", ad->ip, sizeof(ad->ip), REQUIRED, what, err) ==
		-1 ||
	    rep_int(a, "port", 1, 65535, &port, what, err) == -1 ||
	    rep_str(a, "kind", ad->kind, sizeof(ad->kind), 0, what, err) ==
		-1 ||
	    rep_str(a, "updated_at", ad->updated_at, sizeof(ad->updated_at), 0,
		what, err) == -1 ||
	    rep_str(a, "expires_at", ad->expires_at, sizeof(ad->expires_at), 0,
		what, err) == -1)
		return -1;
	ad->port = (int)port;
	return 0;
}

/* Build a list of n elements of size bytes at list with one builder. */
static json_t *
list_build(const void *list, size_t n, size_t size,
    json_t *(*build)(const void *))
{
	const unsigned char *p = list;
	json_t *arr;
	size_t i;

	if ((arr = json_array()) == NULL)
		return NULL;
	for (i = 0; i < n; i++)
		if (json_array_append_new(arr, build(p + i * size)) == -1) {
			json_decref(arr);
			return NULL;
		}
	return arr;
}

static json_t *
address_build_any(const void *a)
{
	return irp_address_build(a);
}

json_t *
irp_addresses_req_build(const struct irp_addresses_req *r)
{
	json_t *body, *arr;
	size_t i;

	if ((body = json_object()) == NULL || (arr = json_array()) == NULL ||
	    json_object_set_new(body, "addresses", arr) == -1)
		goto err;
	for (i = 0; i < r->naddr; i++)
		if (json_array_append_new(arr,
			json_pack("{s:s,s:i}", "ip", r->addr[i].ip, "port",
			    r->addr[i].port)) == -1)
			goto err;
	if (r->has_ttl &&
	    json_object_set_new(body, "ttl", json_integer(r->ttl)) == -1)
		goto err;
	return body;
err:
	json_decref(body);
	return NULL;
}

/* One {"ip","port"} of a request, the i-th. */
static int
addr_req_parse(json_t *v, size_t i, struct irp_addr_req *a, struct irp_err *err)
{
	static const char *const item[] = { "ip", "port", NULL };
	json_t *ip, *port;

	if (!json_is_object(v)) {
		irp_seterr(err, 400, "wrong_type",
		    "address %zu must be an object", i);
		return -1;
	}
	if (req_keys(v, item, err) == -1)
		return -1;
	ip = json_object_get(v, "ip");
	port = json_object_get(v, "port");
	if (!json_is_string(ip) || !json_is_integer(port)) {
		irp_seterr(err, 400, "wrong_type",
		    "address %zu needs \"ip\" (string) and \"port\" "
		    "(integer)",
		    i);
		return -1;
	}
	if (json_string_length(ip) != strlen(json_string_value(ip)) ||
	    irp_ip_normalize(json_string_value(ip), a->ip, sizeof(a->ip)) ==
		-1) {
		irp_seterr(err, 400, "invalid_address",
		    "address %zu: \"%.64s\" is not an IPv4 or IPv6 address", i,
		    json_string_value(ip));
		return -1;
	}
	if (json_integer_value(port) < 1 || json_integer_value(port) > 65535) {
		irp_seterr(err, 400, "invalid_port",
		    "address %zu: port %" JSON_INTEGER_FORMAT
		    " is not in 1-65535",
		    i, json_integer_value(port));
		return -1;
	}
	a->port = (int)json_integer_value(port);
	return 0;
}

int
irp_addresses_req_parse(json_t *body, struct irp_addresses_req *out,
    struct irp_err *err)
{
	static const char *const top[] = { "addresses", "ttl", NULL };
	json_t *arr, *v;
	size_t i;

	memset(out, 0, sizeof(*out));
	if (req_object(body, err) == -1 || req_keys(body, top, err) == -1)
		return -1;
	arr = json_object_get(body, "addresses");
	if (!json_is_array(arr)) {
		irp_seterr(err, 400, arr ? "wrong_type" : "missing_field",
		    "\"addresses\" must be an array of {\"ip\",\"port\"}");
		return -1;
	}
	if (json_array_size(arr) < 1 || json_array_size(arr) > IRP_ADDR_MAX) {
		irp_seterr(err, 400, "too_many_addresses",
		    "give 1 to %d addresses, not %zu", IRP_ADDR_MAX,
		    json_array_size(arr));
		return -1;
	}
	json_array_foreach(arr, i, v) {
		if (addr_req_parse(v, i, &out->addr[i], err) == -1)
			return -1;
	}
	out->naddr = json_array_size(arr);
	return req_ttl(body, &out->has_ttl, &out->ttl, err);
}

json_t *
irp_addresses_reply_build(const struct irp_addresses_reply *r)
{
	return json_pack("{s:o,s:i,s:s}", "addresses",
	    list_build(r->addr, r->naddr, sizeof(r->addr[0]),
		address_build_any),
	    "ttl", r->ttl, "expires_at", r->expires_at);
}

int
irp_addresses_reply_parse(json_t *root, struct irp_addresses_reply *out,
    struct irp_err *err)
{
	static const char what[] = "address update";
	long long ttl;
	json_t *arr, *a;
	size_t i;

	memset(out, 0, sizeof(*out));
	if (rep_object(root, what, err) == -1 ||
	    rep_array(root, "addresses", &arr, what, err) == -1 ||
	    rep_int(root, "ttl", 1, INT_MAX, &ttl, what, err) == -1 ||
	    rep_str(root, "expires_at", out->expires_at,
		sizeof(out->expires_at), 0, what, err) == -1)
		goto err;
	out->ttl = (int)ttl;
	json_array_foreach(arr, i, a) {
		if (out->naddr == IRP_DEV_ADDR_MAX)
			break;
		if (address_parse(a, &out->addr[out->naddr], what, err) == -1)
			goto err;
		out->naddr++;
	}
	return 0;
err:
	memset(out, 0, sizeof(*out));
	return -1;
}

json_t *
irp_deleted_build(const struct irp_deleted *d)
{
	return json_pack("{s:I}", "deleted", (json_int_t)d->deleted);
}

int
irp_deleted_parse(json_t *root, struct irp_deleted *out, struct irp_err *err)
{
	static const char what[] = "address removal";

	out->deleted = 0;
	if (rep_object(root, what, err) == -1 ||
	    rep_int(root, "deleted", 0, INT_MAX, &out->deleted, what, err) ==
		-1)
		return -1;
	return 0;
}

/* ---- lookups --------------------------------------------------------- */

static json_t *
device_build(const void *arg)
{
	const struct irp_device *d = arg;

	return json_pack("{s:s,s:s,s:s,s:s,s:o}", "serial", d->serial,
	    "fingerprint", d->fingerprint, "certificate", d->cert_pem,
	    "not_after", d->not_after, "addresses",
	    list_build(d->addr, d->naddr, sizeof(d->addr[0]),
		address_build_any));
}

json_t *
irp_user_build(const struct irp_user *u)
{
	const struct irp_vouch *v = u->via;
	json_t *via = NULL;

	if (v != NULL &&
	    (via = json_pack("{s:s,s:s,s:s,s:s,s:s?,s:o*}", "domain", v->domain,
		 "trust", v->trust, "ca_sha256", v->ca_sha256, "ca",
		 v->ca_pem ? v->ca_pem : "", "checked_at",
		 v->checked_at[0] ? v->checked_at : NULL, "stale",
		 v->stale ? json_true() : NULL)) == NULL)
		return NULL;
	return json_pack("{s:s,s:s,s:s?,s:b,s:o,s:o*}", "userid", u->userid,
	    "name", u->name, "email", u->email[0] ? u->email : NULL, "online",
	    u->online, "devices",
	    list_build(u->dev, u->ndev, sizeof(u->dev[0]), device_build),
	    "registry", via);
}

static int
vouch_parse(json_t *root, struct irp_user *u, struct irp_err *err)
{
	static const char what[] = "lookup";
	json_t *r = json_object_get(root, "registry");
	struct irp_vouch *v;

	if (r == NULL || json_is_null(r))
		return 0;
	if ((v = calloc(1, sizeof(*v))) == NULL) {
		irp_seterr(err, 0, "memory", "out of memory");
		return -1;
	}
	u->via = v;
	if (rep_object(r, what, err) == -1 ||
	    rep_str(r, "domain", v->domain, sizeof(v->domain), REQUIRED, what,
		err) == -1 ||
	    rep_str(r, "trust", v->trust, sizeof(v->trust), REQUIRED, what,
		err) == -1 ||
	    rep_str(r, "ca_sha256", v->ca_sha256, sizeof(v->ca_sha256),
		REQUIRED, what, err) == -1 ||
	    rep_dup(r, "ca", &v->ca_pem, what, err) == -1 ||
	    rep_str(r, "checked_at", v->checked_at, sizeof(v->checked_at), 0,
		what, err) == -1 ||
	    rep_bool(r, "stale", &v->stale, what, err) == -1)
		return -1;
	return 0;
}

int
irp_user_set_via(struct irp_user *u, const struct irp_vouch *v)
{
	struct irp_vouch *c;

	if ((c = malloc(sizeof(*c))) == NULL)
		return -1;
	*c = *v;
	if (v->ca_pem != NULL && (c->ca_pem = strdup(v->ca_pem)) == NULL) {
		free(c);
		return -1;
	}
	if (u->via != NULL)
		free(u->via->ca_pem);
	free(u->via);
	u->via = c;
	return 0;
}

static int
device_parse(json_t *d, struct irp_device *dev, struct irp_err *err)
{
	static const char what[] = "lookup";
	json_t *addrs, *a, *pem;
	size_t i;

	memset(dev, 0, sizeof(*dev));
	if (rep_object(d, what, err) == -1 ||
	    rep_str(d, "serial", dev->serial, sizeof(dev->serial), REQUIRED,
		what, err) == -1 ||
	    rep_str(d, "fingerprint", dev->fingerprint,
		sizeof(dev->fingerprint), 0, what, err) == -1 ||
	    rep_str(d, "not_after", dev->not_after, sizeof(dev->not_after), 0,
		what, err) == -1 ||
	    rep_array(d, "addresses", &addrs, what, err) == -1)
		return -1;
	json_array_foreach(addrs, i, a) {
		if (dev->naddr == IRP_DEV_ADDR_MAX)
			break;
		if (address_parse(a, &dev->addr[dev->naddr], what, err) == -1)
			return -1;
		dev->naddr++;
	}
	/* The certificate is optional: a device is reachable without it. */
	pem = json_object_get(d, "certificate");
	if (pem != NULL &&
	    rep_dup(d, "certificate", &dev->cert_pem, what, err) == -1)
		return -1;
	return 0;
}

int
irp_user_parse(json_t *root, struct irp_user **out, struct irp_err *err)
{
	static const char what[] = "lookup";
	struct irp_device dev;
	struct irp_user *u;
	json_t *devs, *d;
	size_t i;

	*out = NULL;
	if ((u = calloc(1, sizeof(*u))) == NULL) {
		irp_seterr(err, 0, "memory", "out of memory");
		return -1;
	}
	if (rep_object(root, what, err) == -1 ||
	    rep_str(root, "userid", u->userid, sizeof(u->userid), REQUIRED,
		what, err) == -1 ||
	    rep_str(root, "name", u->name, sizeof(u->name), 0, what, err) ==
		-1 ||
	    rep_str(root, "email", u->email, sizeof(u->email), NULLABLE, what,
		err) == -1 ||
	    rep_bool(root, "online", &u->online, what, err) == -1 ||
	    rep_array(root, "devices", &devs, what, err) == -1)
		goto err;
	if (vouch_parse(root, u, err) == -1)
		goto err;
	json_array_foreach(devs, i, d) {
		if (u->ndev == IRP_DEVICES_MAX)
			break;
		if (device_parse(d, &dev, err) == -1) {
			free(dev.cert_pem);
			goto err;
		}
		if (irp_user_add_device(u, &dev) == -1) {
			irp_seterr(err, 0, "memory", "out of memory");
			goto err;
		}
	}
	*out = u;
	return 0;
err:
	irp_user_free(u);
	return -1;
}

int
irp_user_add_device(struct irp_user *u, struct irp_device *d)
{
	if (grow(&u->dev, u->ndev, sizeof(*u->dev)) == -1) {
		free(d->cert_pem);
		d->cert_pem = NULL;
		return -1;
	}
	u->dev[u->ndev++] = *d;
	d->cert_pem = NULL;
	return 0;
}

void
irp_user_clear(struct irp_user *u)
{
	size_t i;

	if (u == NULL)
		return;
	for (i = 0; i < u->ndev; i++)
		free(u->dev[i].cert_pem);
	free(u->dev);
	u->dev = NULL;
	u->ndev = 0;
	if (u->via != NULL)
		free(u->via->ca_pem);
	free(u->via);
	u->via = NULL;
}

void
irp_user_free(struct irp_user *u)
{
	irp_user_clear(u);
	free(u);
}

/* ---- GET /v1/me ------------------------------------------------------ */

static json_t *
cert_status_build(const void *arg)
{
	const struct irp_cert_status *c = arg;

	return json_pack("{s:s,s:s,s:s,s:s,s:s}", "serial", c->serial,
	    "fingerprint", c->fingerprint, "not_before", c->not_before,
	    "not_after", c->not_after, "status", c->status);
}

json_t *
irp_me_build(const struct irp_me *me)
{
	return json_pack("{s:s,s:s,s:s?,s:s,s:s,s:o,s:o}", "userid", me->userid,
	    "name", me->name, "email", me->email[0] ? me->email : NULL, "role",
	    me->role, "serial", me->serial, "certificates",
	    list_build(me->cert, me->ncert, sizeof(me->cert[0]),
		cert_status_build),
	    "addresses",
	    list_build(me->addr, me->naddr, sizeof(me->addr[0]),
		address_build_any));
}

static int
cert_status_parse(json_t *v, struct irp_cert_status *cs, struct irp_err *err)
{
	static const char what[] = "/v1/me";

	memset(cs, 0, sizeof(*cs));
	if (rep_object(v, what, err) == -1 ||
	    rep_str(v, "serial", cs->serial, sizeof(cs->serial), REQUIRED, what,
		err) == -1 ||
	    rep_str(v, "fingerprint", cs->fingerprint, sizeof(cs->fingerprint),
		0, what, err) == -1 ||
	    rep_str(v, "not_before", cs->not_before, sizeof(cs->not_before), 0,
		what, err) == -1 ||
	    rep_str(v, "not_after", cs->not_after, sizeof(cs->not_after), 0,
		what, err) == -1 ||
	    rep_str(v, "status", cs->status, sizeof(cs->status), 0, what,
		err) == -1)
		return -1;
	return 0;
}

int
irp_me_parse(json_t *root, struct irp_me *out, struct irp_err *err)
{
	static const char what[] = "/v1/me";
	struct irp_cert_status cs;
	struct irp_address ad;
	json_t *certs, *addrs, *v;
	size_t i;

	memset(out, 0, sizeof(*out));
	if (rep_object(root, what, err) == -1 ||
	    rep_str(root, "userid", out->userid, sizeof(out->userid), REQUIRED,
		what, err) == -1 ||
	    rep_str(root, "name", out->name, sizeof(out->name), 0, what, err) ==
		-1 ||
	    rep_str(root, "email", out->email, sizeof(out->email), NULLABLE,
		what, err) == -1 ||
	    rep_str(root, "role", out->role, sizeof(out->role), 0, what, err) ==
		-1 ||
	    rep_str(root, "serial", out->serial, sizeof(out->serial), 0, what,
		err) == -1 ||
	    rep_array(root, "certificates", &certs, what, err) == -1 ||
	    rep_array(root, "addresses", &addrs, what, err) == -1)
		goto err;
	json_array_foreach(certs, i, v) {
		if (out->ncert == IRP_CERTS_MAX)
			break; /* the newest come first; enough to show */
		if (cert_status_parse(v, &cs, err) == -1)
			goto err;
		if (irp_me_add_cert(out, &cs) == -1)
			goto nomem;
	}
	json_array_foreach(addrs, i, v) {
		if (out->naddr == IRP_DEV_ADDR_MAX)
			break;
		memset(&ad, 0, sizeof(ad));
		if (address_parse(v, &ad, what, err) == -1)
			goto err;
		if (irp_me_add_address(out, &ad) == -1)
			goto nomem;
	}
	return 0;
nomem:
	irp_seterr(err, 0, "memory", "out of memory");
err:
	irp_me_clear(out);
	return -1;
}

int
irp_me_add_cert(struct irp_me *me, const struct irp_cert_status *c)
{
	if (grow(&me->cert, me->ncert, sizeof(*me->cert)) == -1)
		return -1;
	me->cert[me->ncert++] = *c;
	return 0;
}

int
irp_me_add_address(struct irp_me *me, const struct irp_address *a)
{
	if (grow(&me->addr, me->naddr, sizeof(*me->addr)) == -1)
		return -1;
	me->addr[me->naddr++] = *a;
	return 0;
}

void
irp_me_clear(struct irp_me *me)
{
	if (me == NULL)
		return;
	free(me->cert);
	free(me->addr);
	me->cert = NULL;
	me->addr = NULL;
	me->ncert = me->naddr = 0;
}

/* ---- backup ---------------------------------------------------------- */

json_t *
irp_backup_stored_build(const struct irp_backup_stored *b)
{
	return json_pack("{s:s,s:I,s:s}", "sha256", b->sha256, "size",
	    (json_int_t)b->size, "updated_at", b->updated_at);
}

int
irp_backup_stored_parse(json_t *root, struct irp_backup_stored *out,
    struct irp_err *err)
{
	static const char what[] = "backup";

	memset(out, 0, sizeof(*out));
	if (rep_object(root, what, err) == -1 ||
	    rep_str(root, "sha256", out->sha256, sizeof(out->sha256), REQUIRED,
		what, err) == -1 ||
	    rep_int(root, "size", 1, LLONG_MAX, &out->size, what, err) == -1 ||
	    rep_str(root, "updated_at", out->updated_at,
		sizeof(out->updated_at), 0, what, err) == -1) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	return 0;
}

/* ---- the inbox ------------------------------------------------------- */

int
irp_msgid_ok(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n < IRP_MSGID_MAX &&
	    strspn(s,
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		"0123456789._@<>+-") == n;
}

json_t *
irp_inbox_item_build(const struct irp_inbox_item *m)
{
	return json_pack("{s:I,s:s,s:s,s:I,s:s,s:s}", "id", (json_int_t)m->id,
	    "sender", m->sender, "msg_id", m->msg_id, "size",
	    (json_int_t)m->size, "stored_at", m->stored_at, "expires_at",
	    m->expires_at);
}

static int
inbox_item_parse(json_t *v, struct irp_inbox_item *m, const char *what,
    struct irp_err *err)
{
	memset(m, 0, sizeof(*m));
	if (rep_object(v, what, err) == -1 ||
	    rep_int(v, "id", 1, LLONG_MAX, &m->id, what, err) == -1 ||
	    rep_str(v, "sender", m->sender, sizeof(m->sender), REQUIRED, what,
		err) == -1 ||
	    rep_str(v, "msg_id", m->msg_id, sizeof(m->msg_id), REQUIRED, what,
		err) == -1 ||
	    rep_int(v, "size", 1, LLONG_MAX, &m->size, what, err) == -1 ||
	    rep_str(v, "stored_at", m->stored_at, sizeof(m->stored_at), 0, what,
		err) == -1 ||
	    rep_str(v, "expires_at", m->expires_at, sizeof(m->expires_at), 0,
		what, err) == -1)
		return -1;
	if (!irp_msgid_ok(m->msg_id)) {
		irp_seterr(err, 200, "bad_response",
		    "the registry's %s answer has a \"msg_id\" that is no "
		    "message id",
		    what);
		return -1;
	}
	return 0;
}

int
irp_inbox_item_parse(json_t *root, struct irp_inbox_item *out,
    struct irp_err *err)
{
	if (inbox_item_parse(root, out, "inbox", err) == -1) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	return 0;
}

static json_t *
inbox_item_build_any(const void *m)
{
	return irp_inbox_item_build(m);
}

json_t *
irp_inbox_build(const struct irp_inbox *l)
{
	return json_pack("{s:o}", "messages",
	    list_build(l->msg, l->n, sizeof(l->msg[0]), inbox_item_build_any));
}

int
irp_inbox_parse(json_t *root, struct irp_inbox *out, struct irp_err *err)
{
	static const char what[] = "inbox";
	struct irp_inbox_item m;
	json_t *arr, *v;
	size_t i;

	memset(out, 0, sizeof(*out));
	if (rep_object(root, what, err) == -1 ||
	    rep_array(root, "messages", &arr, what, err) == -1)
		goto err;
	json_array_foreach(arr, i, v) {
		if (out->n == IRP_INBOX_MAX)
			break;
		if (inbox_item_parse(v, &m, what, err) == -1)
			goto err;
		if (irp_inbox_add(out, &m) == -1) {
			irp_seterr(err, 0, "memory", "out of memory");
			goto err;
		}
	}
	return 0;
err:
	irp_inbox_clear(out);
	return -1;
}

int
irp_inbox_add(struct irp_inbox *l, const struct irp_inbox_item *m)
{
	if (grow(&l->msg, l->n, sizeof(*l->msg)) == -1)
		return -1;
	l->msg[l->n++] = *m;
	return 0;
}

void
irp_inbox_clear(struct irp_inbox *l)
{
	if (l == NULL)
		return;
	free(l->msg);
	l->msg = NULL;
	l->n = 0;
}

/* ---- events ---------------------------------------------------------- */

int
irp_cursor_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n < IRP_CURSOR_MAX &&
	    strspn(s,
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		"0123456789._-") == n;
}

json_t *
irp_events_build(const struct irp_events *ev)
{
	json_t *list = json_array();

	if (list != NULL && ev->mail_waiting > 0)
		(void)json_array_append_new(list,
		    json_pack("{s:s,s:I}", "type", "mail", "waiting",
			(json_int_t)ev->mail_waiting));
	return json_pack("{s:s,s:o}", "cursor", ev->cursor, "events", list);
}

int
irp_events_parse(json_t *root, struct irp_events *out, struct irp_err *err)
{
	static const char what[] = "events";
	char type[32];
	json_t *arr, *v;
	size_t i;

	memset(out, 0, sizeof(*out));
	if (rep_object(root, what, err) == -1 ||
	    rep_str(root, "cursor", out->cursor, sizeof(out->cursor), REQUIRED,
		what, err) == -1 ||
	    rep_array(root, "events", &arr, what, err) == -1)
		goto err;
	if (!irp_cursor_ok(out->cursor)) {
		irp_seterr(err, 200, "bad_response",
		    "the registry's %s answer has a \"cursor\" that is none",
		    what);
		goto err;
	}
	json_array_foreach(arr, i, v) {
		if (i == IRP_EVENTS_MAX)
			break;
		if (rep_object(v, what, err) == -1 ||
		    rep_str(v, "type", type, sizeof(type), REQUIRED, what,
			err) == -1)
			goto err;
		if (strcmp(type, "mail") == 0 &&
		    rep_int(v, "waiting", 1, LLONG_MAX, &out->mail_waiting,
			what, err) == -1)
			goto err;
	}
	return 0;
err:
	memset(out, 0, sizeof(*out));
	return -1;
}

/* ---- revocation ------------------------------------------------------ */

json_t *
irp_revoke_req_build(const struct irp_revoke_req *r)
{
	return json_pack("{s:s*}", "reason", r->reason);
}

int
irp_revoke_req_parse(json_t *body, struct irp_revoke_req *out,
    struct irp_err *err)
{
	static const char *const keys[] = { "reason", NULL };

	out->reason = NULL;
	if (req_object(body, err) == -1 || req_keys(body, keys, err) == -1 ||
	    req_str(body, "reason", IRP_REASON_MAX, 0, &out->reason, err) == -1)
		return -1;
	return 0;
}

json_t *
irp_revoked_build(const struct irp_revoked *r)
{
	return json_pack("{s:s,s:s,s:s}", "serial", r->serial, "status",
	    r->status, "reason", r->reason);
}

int
irp_revoked_parse(json_t *root, struct irp_revoked *out, struct irp_err *err)
{
	static const char what[] = "revocation";

	memset(out, 0, sizeof(*out));
	if (rep_object(root, what, err) == -1 ||
	    rep_str(root, "serial", out->serial, sizeof(out->serial), REQUIRED,
		what, err) == -1 ||
	    rep_str(root, "status", out->status, sizeof(out->status), REQUIRED,
		what, err) == -1 ||
	    rep_str(root, "reason", out->reason, sizeof(out->reason), 0, what,
		err) == -1) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	return 0;
}

json_t *
irp_pending_build(const struct irp_pending *p)
{
	return json_pack("{s:s,s:s,s:s}", "status", p->status, "request",
	    p->request, "expires_at", p->expires_at);
}

json_t *
irp_request_build(const struct irp_request *q)
{
	const struct {
		const char *key, *val;
	} opt[] = {
		{ "source", q->source },
		{ "decided_at", q->decided_at },
		{ "decided_by", q->decided_by },
		{ "reason", q->reason },
		{ "serial", q->serial },
	};
	json_t *o;
	size_t i;

	if ((o = json_pack("{s:I,s:s,s:s,s:s,s:s,s:s}", "id", (json_int_t)q->id,
		 "userid", q->userid, "proof", q->proof, "status", q->status,
		 "created_at", q->created_at, "expires_at", q->expires_at)) ==
	    NULL)
		return NULL;
	for (i = 0; i < sizeof(opt) / sizeof(opt[0]); i++)
		if (opt[i].val[0] != '\0' &&
		    json_object_set_new(o, opt[i].key,
			json_string(opt[i].val)) == -1) {
			json_decref(o);
			return NULL;
		}
	return o;
}

int
irp_pending_parse(json_t *root, struct irp_pending *out, struct irp_err *err)
{
	static const char what[] = "pending request";

	memset(out, 0, sizeof(*out));
	if (rep_object(root, what, err) == -1 ||
	    rep_str(root, "status", out->status, sizeof(out->status), REQUIRED,
		what, err) == -1 ||
	    rep_str(root, "request", out->request, sizeof(out->request),
		REQUIRED, what, err) == -1 ||
	    rep_str(root, "expires_at", out->expires_at,
		sizeof(out->expires_at), 0, what, err) == -1)
		goto err;
	if (strcmp(out->status, "pending") != 0 ||
	    !irp_token_ok(out->request)) {
		irp_seterr(err, 0, "bad_reply",
		    "the registry's pending "
		    "request is not one: status %s",
		    out->status);
		goto err;
	}
	return 0;
err:
	memset(out, 0, sizeof(*out));
	return -1;
}

static json_t *
serial_build(const void *s)
{
	return json_string(s);
}

json_t *
irp_user_revoked_build(const struct irp_user_revoked *r)
{
	return json_pack("{s:s,s:o,s:s}", "userid", r->userid, "revoked",
	    list_build(r->serial, r->nserial, sizeof(r->serial[0]),
		serial_build),
	    "reason", r->reason);
}

int
irp_user_revoked_parse(json_t *root, struct irp_user_revoked *out,
    struct irp_err *err)
{
	static const char what[] = "revocation";
	json_t *arr, *v;
	size_t i;

	memset(out, 0, sizeof(*out));
	if (rep_object(root, what, err) == -1 ||
	    rep_str(root, "userid", out->userid, sizeof(out->userid), REQUIRED,
		what, err) == -1 ||
	    rep_array(root, "revoked", &arr, what, err) == -1 ||
	    rep_str(root, "reason", out->reason, sizeof(out->reason), 0, what,
		err) == -1)
		goto err;
	json_array_foreach(arr, i, v) {
		if (out->nserial == IRP_REVOKED_MAX)
			break;
		if (!json_is_string(v) ||
		    json_string_length(v) > IRP_SERIAL_MAX ||
		    json_string_length(v) != strlen(json_string_value(v))) {
			irp_seterr(err, 200, "bad_response",
			    "the registry's %s answer lists a serial that is "
			    "not 1 to %d characters",
			    what, IRP_SERIAL_MAX);
			goto err;
		}
		if (irp_user_revoked_add(out, json_string_value(v)) == -1) {
			irp_seterr(err, 0, "memory", "out of memory");
			goto err;
		}
	}
	return 0;
err:
	irp_user_revoked_clear(out);
	return -1;
}

int
irp_user_revoked_add(struct irp_user_revoked *r, const char *serial)
{
	if (strlen(serial) > IRP_SERIAL_MAX ||
	    grow(&r->serial, r->nserial, sizeof(*r->serial)) == -1)
		return -1;
	memcpy(r->serial[r->nserial++], serial, strlen(serial) + 1);
	return 0;
}

void
irp_user_revoked_clear(struct irp_user_revoked *r)
{
	if (r == NULL)
		return;
	free(r->serial);
	r->serial = NULL;
	r->nserial = 0;
}

/* ---- the admin calls ------------------------------------------------- */

json_t *
irp_user_add_req_build(const struct irp_user_add_req *r)
{
	return json_pack("{s:s,s:s,s:s*,s:s*,s:s*}", "userid", r->userid,
	    "name", r->name, "email", r->email, "role", r->role, "password",
	    r->password);
}

int
irp_user_add_req_parse(json_t *body, struct irp_user_add_req *out,
    struct irp_err *err)
{
	static const char *const keys[] = { "userid", "name", "email", "role",
		"password", NULL };

	memset(out, 0, sizeof(*out));
	if (req_object(body, err) == -1 || req_keys(body, keys, err) == -1 ||
	    req_str(body, "userid", IRP_FIELD_MAX, 1, &out->userid, err) ==
		-1 ||
	    req_str(body, "name", IRP_FIELD_MAX, 1, &out->name, err) == -1 ||
	    req_str(body, "email", IRP_FIELD_MAX, 0, &out->email, err) == -1 ||
	    req_str(body, "role", IRP_ROLE_MAX, 0, &out->role, err) == -1 ||
	    req_str(body, "password", IRP_FIELD_MAX, 0, &out->password, err) ==
		-1)
		goto err;
	if (out->role != NULL && strcmp(out->role, IRP_ROLE_USER) != 0 &&
	    strcmp(out->role, IRP_ROLE_ADMIN) != 0) {
		irp_seterr(err, 400, "invalid_value",
		    "role is \"user\" or \"admin\"");
		goto err;
	}
	return 0;
err:
	memset(out, 0, sizeof(*out));
	return -1;
}

static json_t *
user_info_build(const void *arg)
{
	const struct irp_user_info *u = arg;

	return json_pack("{s:s,s:s,s:s?,s:s,s:b,s:s}", "userid", u->userid,
	    "name", u->name, "email", u->email[0] ? u->email : NULL, "role",
	    u->role, "enabled", u->enabled, "created_at", u->created_at);
}

/* The four members both user answers have. */
static int
user_info_parse(json_t *v, struct irp_user_info *u, const char *what,
    struct irp_err *err)
{
	memset(u, 0, sizeof(*u));
	if (rep_object(v, what, err) == -1 ||
	    rep_str(v, "userid", u->userid, sizeof(u->userid), REQUIRED, what,
		err) == -1 ||
	    rep_str(v, "name", u->name, sizeof(u->name), 0, what, err) == -1 ||
	    rep_str(v, "email", u->email, sizeof(u->email), NULLABLE, what,
		err) == -1 ||
	    rep_str(v, "role", u->role, sizeof(u->role), 0, what, err) == -1)
		return -1;
	return 0;
}

json_t *
irp_user_added_build(const struct irp_user_info *u)
{
	return json_pack("{s:s,s:s,s:s?,s:s}", "userid", u->userid, "name",
	    u->name, "email", u->email[0] ? u->email : NULL, "role", u->role);
}

int
irp_user_added_parse(json_t *root, struct irp_user_info *out,
    struct irp_err *err)
{
	if (user_info_parse(root, out, "new user", err) == -1) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	return 0;
}

json_t *
irp_user_list_build(const struct irp_user_list *l)
{
	return json_pack("{s:o}", "users",
	    list_build(l->user, l->n, sizeof(l->user[0]), user_info_build));
}

int
irp_user_list_parse(json_t *root, struct irp_user_list *out,
    struct irp_err *err)
{
	static const char what[] = "user list";
	struct irp_user_info u;
	json_t *arr, *v;
	size_t i;

	memset(out, 0, sizeof(*out));
	if (rep_object(root, what, err) == -1 ||
	    rep_array(root, "users", &arr, what, err) == -1)
		goto err;
	json_array_foreach(arr, i, v) {
		if (out->n == IRP_USERS_MAX)
			break;
		if (user_info_parse(v, &u, what, err) == -1 ||
		    rep_bool(v, "enabled", &u.enabled, what, err) == -1 ||
		    rep_str(v, "created_at", u.created_at, sizeof(u.created_at),
			0, what, err) == -1)
			goto err;
		if (irp_user_list_add(out, &u) == -1) {
			irp_seterr(err, 0, "memory", "out of memory");
			goto err;
		}
	}
	return 0;
err:
	irp_user_list_clear(out);
	return -1;
}

int
irp_user_list_add(struct irp_user_list *l, const struct irp_user_info *u)
{
	if (grow(&l->user, l->n, sizeof(*l->user)) == -1)
		return -1;
	l->user[l->n++] = *u;
	return 0;
}

void
irp_user_list_clear(struct irp_user_list *l)
{
	if (l == NULL)
		return;
	free(l->user);
	l->user = NULL;
	l->n = 0;
}

json_t *
irp_user_enabled_build(const struct irp_user_enabled *e)
{
	return json_pack("{s:s,s:b}", "userid", e->userid, "enabled",
	    e->enabled);
}

int
irp_user_enabled_parse(json_t *root, struct irp_user_enabled *out,
    struct irp_err *err)
{
	static const char what[] = "user";
	json_t *v = json_object_get(root, "enabled");

	memset(out, 0, sizeof(*out));
	if (rep_object(root, what, err) == -1 ||
	    rep_str(root, "userid", out->userid, sizeof(out->userid), REQUIRED,
		what, err) == -1)
		return -1;
	if (!json_is_boolean(v)) {
		memset(out, 0, sizeof(*out));
		irp_seterr(err, 200, "bad_response",
		    "the registry's %s answer lacks \"enabled\" as true or "
		    "false",
		    what);
		return -1;
	}
	out->enabled = json_is_true(v);
	return 0;
}

json_t *
irp_code_req_build(const struct irp_code_req *r)
{
	if (!r->has_ttl)
		return json_object();
	return json_pack("{s:I}", "ttl", (json_int_t)r->ttl);
}

int
irp_code_req_parse(json_t *body, struct irp_code_req *out, struct irp_err *err)
{
	static const char *const keys[] = { "ttl", NULL };

	out->has_ttl = 0;
	out->ttl = 0;
	if (req_object(body, err) == -1 || req_keys(body, keys, err) == -1)
		return -1;
	return req_ttl(body, &out->has_ttl, &out->ttl, err);
}

json_t *
irp_code_build(const struct irp_code *c)
{
	return json_pack("{s:s,s:s,s:s}", "userid", c->userid, "code", c->code,
	    "expires_at", c->expires_at);
}

int
irp_code_parse(json_t *root, struct irp_code *out, struct irp_err *err)
{
	static const char what[] = "enrolment code";

	memset(out, 0, sizeof(*out));
	if (rep_object(root, what, err) == -1 ||
	    rep_str(root, "userid", out->userid, sizeof(out->userid), 0, what,
		err) == -1 ||
	    rep_str(root, "code", out->code, sizeof(out->code), REQUIRED, what,
		err) == -1 ||
	    rep_str(root, "expires_at", out->expires_at,
		sizeof(out->expires_at), 0, what, err) == -1) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	return 0;
}

json_t *
irp_p12_req_build(const struct irp_p12_req *r)
{
	return json_pack("{s:s}", "passphrase", r->passphrase);
}

int
irp_p12_req_parse(json_t *body, struct irp_p12_req *out, struct irp_err *err)
{
	static const char *const keys[] = { "passphrase", NULL };

	out->passphrase = NULL;
	if (req_object(body, err) == -1 || req_keys(body, keys, err) == -1 ||
	    req_str(body, "passphrase", IRP_FIELD_MAX, 1, &out->passphrase,
		err) == -1)
		return -1;
	if (strlen(out->passphrase) < IRP_PASSPHRASE_MIN) {
		out->passphrase = NULL;
		irp_seterr(err, 400, "weak_passphrase",
		    "the passphrase needs at least %d characters",
		    IRP_PASSPHRASE_MIN);
		return -1;
	}
	return 0;
}

/* ---- GET /healthz ---------------------------------------------------- */

json_t *
irp_health_build(const struct irp_health *h)
{
	return json_pack("{s:s}", "status", h->status);
}

int
irp_health_parse(json_t *root, struct irp_health *out, struct irp_err *err)
{
	static const char what[] = "health";

	if (rep_object(root, what, err) == -1 ||
	    rep_str(root, "status", out->status, sizeof(out->status), REQUIRED,
		what, err) == -1)
		return -1;
	return 0;
}
