/*
 * irp_parse.c - the registry's answers as received, turned into the
 * structs of irp_wire.h.  No I/O: irp_client.c hands over the bodies it
 * received; the shapes themselves are read by irp_wire.c, the same code
 * that dird builds them with.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "irp_internal.h"
#include "irp_wire.h"

/* The body as one JSON value, or NULL with err filled. */
static json_t *
parse_body(const char *json, size_t len, const char *what, struct irp_err *err)
{
	json_t *root;

	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
	if (root == NULL || !json_is_object(root)) {
		/* An array or a scalar: freed here, so NULL to the caller. */
		json_decref(root);
		root = NULL;
		irp_seterr(err, 200, "bad_response",
		    "the registry's answer to %s is not a JSON object", what);
	}
	return root;
}

void
irp_parse_error(const char *json, size_t len, long status, struct irp_err *err)
{
	json_t *root = NULL;

	if (len > 0)
		root = json_loadb(json, len, 0, NULL);
	irp_error_parse(root, status, err);
	json_decref(root);
}

int
irp_parse_cert(const char *json, size_t len, struct irp_cert *out,
    struct irp_err *err)
{
	json_t *root;
	int rv;

	memset(out, 0, sizeof(*out));
	if ((root = parse_body(json, len, "enrolment", err)) == NULL)
		return -1;
	rv = irp_cert_parse(root, out, err);
	json_decref(root);
	return rv;
}

int
irp_parse_me(const char *json, size_t len, struct irp_me *out,
    struct irp_err *err)
{
	json_t *root;
	int rv;

	memset(out, 0, sizeof(*out));
	if ((root = parse_body(json, len, "/v1/me", err)) == NULL)
		return -1;
	rv = irp_me_parse(root, out, err);
	json_decref(root);
	return rv;
}

int
irp_parse_addresses_put(const char *json, size_t len, int *granted_ttl,
    char *expires_at, struct irp_err *err)
{
	struct irp_addresses_reply r;
	json_t *root;
	int rv;

	if ((root = parse_body(json, len, "the address update", err)) == NULL)
		return -1;
	rv = irp_addresses_reply_parse(root, &r, err);
	json_decref(root);
	if (rv == -1)
		return -1;
	if (granted_ttl)
		*granted_ttl = r.ttl;
	if (expires_at)
		memcpy(expires_at, r.expires_at, sizeof(r.expires_at));
	return 0;
}

int
irp_parse_addresses_delete(const char *json, size_t len, int *deleted,
    struct irp_err *err)
{
	struct irp_deleted d;
	json_t *root;
	int rv;

	if ((root = parse_body(json, len, "the address removal", err)) == NULL)
		return -1;
	rv = irp_deleted_parse(root, &d, err);
	json_decref(root);
	if (rv == 0 && deleted)
		*deleted = (int)d.deleted;
	return rv;
}

int
irp_parse_user(const char *json, size_t len, struct irp_user **out,
    struct irp_err *err)
{
	json_t *root;
	int rv;

	*out = NULL;
	if ((root = parse_body(json, len, "the lookup", err)) == NULL)
		return -1;
	rv = irp_user_parse(root, out, err);
	json_decref(root);
	return rv;
}

int
irp_parse_backup_put(const char *json, size_t len,
    struct irp_backup_stored *out, struct irp_err *err)
{
	json_t *root;
	int rv;

	memset(out, 0, sizeof(*out));
	if ((root = parse_body(json, len, "the backup", err)) == NULL)
		return -1;
	rv = irp_backup_stored_parse(root, out, err);
	json_decref(root);
	return rv;
}

int
irp_parse_inbox_item(const char *json, size_t len, struct irp_inbox_item *out,
    struct irp_err *err)
{
	json_t *root;
	int rv;

	memset(out, 0, sizeof(*out));
	if ((root = parse_body(json, len, "the inbox", err)) == NULL)
		return -1;
	rv = irp_inbox_item_parse(root, out, err);
	json_decref(root);
	return rv;
}

int
irp_parse_inbox(const char *json, size_t len, struct irp_inbox *out,
    struct irp_err *err)
{
	json_t *root;
	int rv;

	memset(out, 0, sizeof(*out));
	if ((root = parse_body(json, len, "the inbox", err)) == NULL)
		return -1;
	rv = irp_inbox_parse(root, out, err);
	json_decref(root);
	return rv;
}

int
irp_parse_events(const char *json, size_t len, struct irp_events *out,
    struct irp_err *err)
{
	json_t *root;
	int rv;

	memset(out, 0, sizeof(*out));
	if ((root = parse_body(json, len, "the events", err)) == NULL)
		return -1;
	rv = irp_events_parse(root, out, err);
	json_decref(root);
	return rv;
}
