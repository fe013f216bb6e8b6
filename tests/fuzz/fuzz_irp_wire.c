/*
 * fuzz_irp_wire.c - the parsers of irp/irp_wire.h, requests (what dird
 * reads from anyone) and replies (what dchat reads from a registry that
 * may be hostile).  The first input byte chooses the shape, the rest is
 * the body.  Beyond ASan and UBSan: an accepted body, built again and
 * parsed again, gives the same struct (build and parse agree); a refused
 * one has a code and a message; a request refusal is a 400, a reply
 * refusal a 200 "bad_response" (or 0 "memory"); and what a parse
 * allocated goes with the matching clear (LeakSanitizer watches that).
 */
#include <jansson.h>

#include "fuzz.h"
#include "irp_wire.h"

#define TERMINATED(a) FUZZ_CHECK(memchr((a), '\0', sizeof(a)) != NULL)

static void
refused(const struct irp_err *e, int request)
{
	FUZZ_CHECK(e->code[0] != '\0' && e->msg[0] != '\0');
	if (request)
		FUZZ_CHECK(e->status == 400);
	else
		FUZZ_CHECK((e->status == 200 &&
			       strcmp(e->code, "bad_response") == 0) ||
		    (e->status == 0 && strcmp(e->code, "memory") == 0));
}

/* The text of a built value (consumed); NULL only when out of memory. */
static char *
text(json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	return s;
}

/* Build, dump, load: the JSON a peer would receive. */
static json_t *
again(json_t *built)
{
	char *s = text(built);
	json_t *j;

	FUZZ_CHECK(s != NULL);
	j = json_loads(s, 0, NULL);
	FUZZ_CHECK(j != NULL);
	free(s);
	return j;
}

static void
csr(json_t *j)
{
	struct irp_csr_req r, r2;
	struct irp_err e;
	json_t *b;

	if (irp_csr_req_parse(j, &r, &e) == -1) {
		refused(&e, 1);
		return;
	}
	FUZZ_CHECK(strlen(r.csr) <= IRP_CSR_MAX);
	b = again(irp_csr_req_build(&r));
	FUZZ_CHECK(irp_csr_req_parse(b, &r2, &e) == 0 &&
	    strcmp(r.csr, r2.csr) == 0);
	json_decref(b);
}

static void
addresses(json_t *j)
{
	static struct irp_addresses_req r, r2;
	struct irp_err e;
	size_t i;
	json_t *b;

	if (irp_addresses_req_parse(j, &r, &e) == -1) {
		refused(&e, 1);
		return;
	}
	FUZZ_CHECK(r.naddr >= 1 && r.naddr <= IRP_ADDR_MAX);
	for (i = 0; i < r.naddr; i++)
		FUZZ_CHECK(r.addr[i].port >= 1 && r.addr[i].port <= 65535);
	/* Canonical addresses: a second parse changes nothing. */
	b = again(irp_addresses_req_build(&r));
	FUZZ_CHECK(irp_addresses_req_parse(b, &r2, &e) == 0);
	FUZZ_CHECK(memcmp(&r, &r2, sizeof(r)) == 0);
	json_decref(b);
}

static void
user_add(json_t *j)
{
	struct irp_user_add_req r, r2;
	struct irp_err e;
	json_t *b;

	if (irp_user_add_req_parse(j, &r, &e) == -1) {
		refused(&e, 1);
		return;
	}
	FUZZ_CHECK(r.userid != NULL && r.name != NULL);
	FUZZ_CHECK(r.role == NULL || strcmp(r.role, IRP_ROLE_USER) == 0 ||
	    strcmp(r.role, IRP_ROLE_ADMIN) == 0);
	b = again(irp_user_add_req_build(&r));
	FUZZ_CHECK(irp_user_add_req_parse(b, &r2, &e) == 0);
	FUZZ_CHECK(strcmp(r.userid, r2.userid) == 0 &&
	    strcmp(r.name, r2.name) == 0);
	FUZZ_CHECK((r.email == NULL) == (r2.email == NULL));
	FUZZ_CHECK((r.password == NULL) == (r2.password == NULL));
	json_decref(b);
}

static void
small_requests(json_t *j)
{
	struct irp_revoke_req rv;
	struct irp_code_req c;
	struct irp_p12_req p;
	struct irp_err e;

	if (irp_revoke_req_parse(j, &rv, &e) == -1)
		refused(&e, 1);
	else
		FUZZ_CHECK(rv.reason == NULL ||
		    strlen(rv.reason) <= IRP_REASON_MAX);
	if (irp_code_req_parse(j, &c, &e) == -1)
		refused(&e, 1);
	if (irp_p12_req_parse(j, &p, &e) == -1)
		refused(&e, 1);
	else
		FUZZ_CHECK(strlen(p.passphrase) >= IRP_PASSPHRASE_MIN &&
		    strlen(p.passphrase) <= IRP_FIELD_MAX);
}

static void
user(json_t *j)
{
	struct irp_user *u = NULL, *u2 = NULL;
	struct irp_err e;
	size_t i;
	json_t *b;

	if (irp_user_parse(j, &u, &e) == -1) {
		FUZZ_CHECK(u == NULL);
		refused(&e, 0);
		return;
	}
	FUZZ_CHECK(u->ndev <= IRP_DEVICES_MAX);
	for (i = 0; i < u->ndev; i++)
		FUZZ_CHECK(u->dev[i].naddr <= IRP_DEV_ADDR_MAX);
	/* A device without its certificate can not be built again. */
	for (i = 0; i < u->ndev; i++)
		if (u->dev[i].cert_pem == NULL)
			goto out;
	b = again(irp_user_build(u));
	FUZZ_CHECK(irp_user_parse(b, &u2, &e) == 0);
	FUZZ_CHECK(strcmp(u->userid, u2->userid) == 0 &&
	    strcmp(u->email, u2->email) == 0 && u->ndev == u2->ndev &&
	    u->online == u2->online);
	for (i = 0; i < u->ndev; i++)
		FUZZ_CHECK(u->dev[i].naddr == u2->dev[i].naddr &&
		    strcmp(u->dev[i].cert_pem, u2->dev[i].cert_pem) == 0);
	json_decref(b);
out:
	irp_user_free(u2);
	irp_user_free(u);
}

static void
me(json_t *j)
{
	static struct irp_me m, m2;
	struct irp_err e;
	json_t *b;

	if (irp_me_parse(j, &m, &e) == -1) {
		FUZZ_CHECK(m.cert == NULL && m.addr == NULL);
		refused(&e, 0);
		return;
	}
	FUZZ_CHECK(m.ncert <= IRP_CERTS_MAX && m.naddr <= IRP_DEV_ADDR_MAX);
	b = again(irp_me_build(&m));
	FUZZ_CHECK(irp_me_parse(b, &m2, &e) == 0);
	FUZZ_CHECK(m.ncert == m2.ncert && m.naddr == m2.naddr);
	FUZZ_CHECK(m.ncert == 0 ||
	    memcmp(m.cert, m2.cert, m.ncert * sizeof(*m.cert)) == 0);
	json_decref(b);
	irp_me_clear(&m2);
	irp_me_clear(&m);
}

static void
small_replies(json_t *j)
{
	static struct irp_addresses_reply a;
	struct irp_user_revoked ur;
	struct irp_user_list ul;
	struct irp_cert c;
	struct irp_deleted d;
	struct irp_backup_stored bs;
	struct irp_revoked rv;
	struct irp_code code;
	struct irp_err e;

	if (irp_cert_parse(j, &c, &e) == -1) {
		FUZZ_CHECK(c.cert_pem == NULL && c.chain_pem == NULL);
		refused(&e, 0);
	} else {
		TERMINATED(c.serial);
		irp_cert_clear(&c);
	}
	if (irp_addresses_reply_parse(j, &a, &e) == -1)
		refused(&e, 0);
	else
		FUZZ_CHECK(a.ttl >= 1 && a.naddr <= IRP_DEV_ADDR_MAX);
	if (irp_deleted_parse(j, &d, &e) == -1)
		refused(&e, 0);
	else
		FUZZ_CHECK(d.deleted >= 0);
	if (irp_backup_stored_parse(j, &bs, &e) == -1)
		refused(&e, 0);
	if (irp_revoked_parse(j, &rv, &e) == -1)
		refused(&e, 0);
	if (irp_user_revoked_parse(j, &ur, &e) == -1) {
		FUZZ_CHECK(ur.serial == NULL);
		refused(&e, 0);
	} else
		irp_user_revoked_clear(&ur);
	if (irp_user_list_parse(j, &ul, &e) == -1) {
		FUZZ_CHECK(ul.user == NULL);
		refused(&e, 0);
	} else
		irp_user_list_clear(&ul);
	if (irp_code_parse(j, &code, &e) == -1)
		refused(&e, 0);
	irp_error_parse(j, 400, &e);
	FUZZ_CHECK(e.code[0] != '\0' && e.status == 400);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *j;

	if (size == 0)
		return 0;
	/* Any JSON value: the parsers must refuse what is no object. */
	j = json_loadb((const char *)data + 1, size - 1,
	    JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	if (j == NULL)
		return 0;
	switch (data[0] % 7) {
	case 0:
		csr(j);
		break;
	case 1:
		addresses(j);
		break;
	case 2:
		user_add(j);
		break;
	case 3:
		small_requests(j);
		break;
	case 4:
		user(j);
		break;
	case 5:
		me(j);
		break;
	default:
		small_replies(j);
		break;
	}
	json_decref(j);
	return 0;
}
