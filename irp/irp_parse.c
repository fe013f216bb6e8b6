/*
 * irp_parse.c - the registry's JSON answers turned into irp_client.h's
 * structs.  No I/O: irp_client.c hands over the bodies it received.
 *
 * Every string is copied only when it fits its buffer (a longer one makes
 * the answer malformed, never a silently cut value), and every list stops
 * at its IRP_*_MAX.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "irp_internal.h"

void
irp_seterr(struct irp_err *err, int status, const char *code,
    const char *fmt, ...)
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

/* Copy a string member; required ones must be present and fit. */
static int
get_str(json_t *o, const char *key, char *dst, size_t len, int required)
{
	const char *s = json_string_value(json_object_get(o, key));

	dst[0] = '\0';
	if (s == NULL)
		return required ? -1 : 0;
	if (strlen(s) >= len)
		return -1;
	memcpy(dst, s, strlen(s) + 1);
	return 0;
}

static char *
dup_str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? strdup(s) : NULL;
}

static json_t *
parse_body(const char *json, size_t len, const char *what,
    struct irp_err *err)
{
	json_t *root;

	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
	if (root == NULL || !json_is_object(root)) {
		/* An array or a scalar: freed here, so NULL to the caller. */
		json_decref(root);
		root = NULL;
		irp_seterr(err, 200, "bad_response", "the registry's answer to %s "
		    "is not a JSON object", what);
	}
	return root;
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
	for (i = n; i > 0 && n - i < 4 &&
	    ((unsigned char)s[i - 1] & 0xc0) == 0x80; i--)
		;
	if (i == 0 || (c = (unsigned char)s[i - 1]) < 0xc0)
		return;
	need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
	if (n - (i - 1) < need)
		s[i - 1] = '\0';
}

void
irp_parse_error(const char *json, size_t len, long status,
    struct irp_err *err)
{
	json_t *root = NULL, *e;
	const char *code = NULL, *msg = NULL;

	if (len > 0)
		root = json_loadb(json, len, 0, NULL);
	if (root && (e = json_object_get(root, "error")) != NULL) {
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
	json_decref(root);
}

int
irp_parse_cert(const char *json, size_t len, struct irp_cert *out,
    struct irp_err *err)
{
	json_t *root;
	int rv = -1;

	memset(out, 0, sizeof(*out));
	if ((root = parse_body(json, len, "enrolment", err)) == NULL)
		return -1;
	if (get_str(root, "userid", out->userid, sizeof(out->userid), 0) ||
	    get_str(root, "serial", out->serial, sizeof(out->serial), 1) ||
	    get_str(root, "fingerprint", out->fingerprint,
		sizeof(out->fingerprint), 0) ||
	    get_str(root, "not_after", out->not_after, sizeof(out->not_after),
		0) ||
	    (out->cert_pem = dup_str(root, "certificate")) == NULL ||
	    (out->chain_pem = dup_str(root, "chain")) == NULL) {
		irp_seterr(err, 200, "bad_response", "the registry's certificate "
		    "answer lacks certificate, chain or serial");
		irp_cert_clear(out);
		goto err;
	}
	rv = 0;
err:
	json_decref(root);
	return rv;
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

int
irp_parse_me(const char *json, size_t len, struct irp_me *out,
    struct irp_err *err)
{
	json_t *root, *certs, *v;
	size_t i;
	int rv = -1;

	memset(out, 0, sizeof(*out));
	if ((root = parse_body(json, len, "/v1/me", err)) == NULL)
		return -1;
	if (get_str(root, "userid", out->userid, sizeof(out->userid), 1) ||
	    get_str(root, "name", out->name, sizeof(out->name), 0) ||
	    get_str(root, "email", out->email, sizeof(out->email), 0) ||
	    get_str(root, "role", out->role, sizeof(out->role), 0) ||
	    get_str(root, "serial", out->serial, sizeof(out->serial), 0))
		goto bad;
	certs = json_object_get(root, "certificates");
	json_array_foreach(certs, i, v) {
		struct irp_cert_status *cs;

		if (out->ncert == IRP_CERTS_MAX)
			break; /* the newest come first; enough to show */
		cs = &out->cert[out->ncert++];
		if (get_str(v, "serial", cs->serial, sizeof(cs->serial), 1) ||
		    get_str(v, "fingerprint", cs->fingerprint,
			sizeof(cs->fingerprint), 0) ||
		    get_str(v, "not_before", cs->not_before,
			sizeof(cs->not_before), 0) ||
		    get_str(v, "not_after", cs->not_after,
			sizeof(cs->not_after), 0) ||
		    get_str(v, "status", cs->status, sizeof(cs->status), 0))
			goto bad;
	}
	rv = 0;
	goto err;
bad:
	irp_seterr(err, 200, "bad_response", "the registry's /v1/me answer is "
	    "malformed");
err:
	json_decref(root);
	return rv;
}

int
irp_parse_addresses_put(const char *json, size_t len, int *granted_ttl,
    char *expires_at, struct irp_err *err)
{
	json_t *root, *t;

	if ((root = parse_body(json, len, "the address update", err)) == NULL)
		return -1;
	if (expires_at)
		(void)get_str(root, "expires_at", expires_at, IRP_TIME_MAX, 0);
	if (granted_ttl) {
		t = json_object_get(root, "ttl");
		*granted_ttl = json_is_integer(t) && json_integer_value(t) > 0 &&
		    json_integer_value(t) <= INT_MAX ?
		    (int)json_integer_value(t) : 0;
	}
	json_decref(root);
	return 0;
}

int
irp_parse_addresses_delete(const char *json, size_t len, int *deleted,
    struct irp_err *err)
{
	json_t *root, *n;

	if ((root = parse_body(json, len, "the address removal", err)) ==
	    NULL)
		return -1;
	/* A count: what is no count (negative, beyond int) counts 0. */
	if (deleted) {
		n = json_object_get(root, "deleted");
		*deleted = json_is_integer(n) && json_integer_value(n) >= 0 &&
		    json_integer_value(n) <= INT_MAX ?
		    (int)json_integer_value(n) : 0;
	}
	json_decref(root);
	return 0;
}

static int
parse_device(json_t *d, struct irp_device *dev)
{
	json_t *addrs, *a;
	size_t i;

	if (get_str(d, "serial", dev->serial, sizeof(dev->serial), 1) ||
	    get_str(d, "fingerprint", dev->fingerprint,
		sizeof(dev->fingerprint), 0) ||
	    get_str(d, "not_after", dev->not_after, sizeof(dev->not_after), 0))
		return -1;
	if (json_string_value(json_object_get(d, "certificate")) &&
	    (dev->cert_pem = dup_str(d, "certificate")) == NULL)
		return -1;
	addrs = json_object_get(d, "addresses");
	json_array_foreach(addrs, i, a) {
		struct irp_address *ad;
		json_t *port;

		if (dev->naddr == IRP_DEV_ADDR_MAX)
			break;
		ad = &dev->addr[dev->naddr];
		port = json_object_get(a, "port");
		if (get_str(a, "ip", ad->ip, sizeof(ad->ip), 1) ||
		    !json_is_integer(port) ||
		    json_integer_value(port) < 1 ||
		    json_integer_value(port) > 65535 ||
		    get_str(a, "kind", ad->kind, sizeof(ad->kind), 0) ||
		    get_str(a, "updated_at", ad->updated_at,
			sizeof(ad->updated_at), 0) ||
		    get_str(a, "expires_at", ad->expires_at,
			sizeof(ad->expires_at), 0))
			return -1;
		ad->port = (int)json_integer_value(port);
		dev->naddr++;
	}
	return 0;
}

int
irp_parse_user(const char *json, size_t len, struct irp_user **out,
    struct irp_err *err)
{
	struct irp_user *u = NULL;
	json_t *root, *devs, *d;
	size_t i, n;
	int rv = -1;

	*out = NULL;
	if ((root = parse_body(json, len, "the lookup", err)) == NULL)
		return -1;
	if ((u = calloc(1, sizeof(*u))) == NULL)
		goto nomem;
	devs = json_object_get(root, "devices");
	n = json_array_size(devs);
	if (n > IRP_DEVICES_MAX)
		n = IRP_DEVICES_MAX;
	if (n && (u->dev = calloc(n, sizeof(*u->dev))) == NULL)
		goto nomem;
	if (get_str(root, "userid", u->userid, sizeof(u->userid), 1) ||
	    get_str(root, "name", u->name, sizeof(u->name), 0) ||
	    get_str(root, "email", u->email, sizeof(u->email), 0))
		goto bad;
	u->online = json_is_true(json_object_get(root, "online"));
	json_array_foreach(devs, i, d) {
		if (i == n)
			break;
		u->ndev++;
		if (parse_device(d, &u->dev[i]) == -1)
			goto bad;
	}
	*out = u;
	u = NULL;
	rv = 0;
	goto err;
nomem:
	irp_seterr(err, 0, "memory", "out of memory");
	goto err;
bad:
	irp_seterr(err, 200, "bad_response", "the registry's lookup answer is "
	    "malformed");
err:
	irp_user_free(u);
	json_decref(root);
	return rv;
}

void
irp_user_free(struct irp_user *u)
{
	size_t i;

	if (u == NULL)
		return;
	for (i = 0; i < u->ndev; i++)
		free(u->dev[i].cert_pem);
	free(u->dev);
	free(u);
}
