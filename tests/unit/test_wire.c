/*
 * test_wire.c - the protocol's bodies (irp/irp_wire.h): every shape built
 * and parsed back to the same struct, the JSON dird has always sent
 * (field names, types, order), and the refusals of the parsers with
 * their codes and sentences.  Structs compared whole (memcmp) are
 * static, so that their padding is zero as the parsers' is.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "irp_wire.h"
#include "tap.h"

/* The compact JSON of a built value (consumed), or "(null)". */
static char *
dump(json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	return s ? s : strdup("(null)");
}

static void
check_json(json_t *j, const char *want, const char *what)
{
	char *got = dump(j);

	checkf(strcmp(got, want) == 0, "%s builds %s", what, want);
	if (strcmp(got, want) != 0)
		diag("got %s", got);
	free(got);
}

static json_t *
load(const char *text)
{
	json_t *j = json_loads(text, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
	    NULL);

	if (j == NULL)
		diag("test input is not JSON: %s", text);
	return j;
}

/* A parse of text refused with code and a message containing msg. */
typedef int parse_fn(json_t *, void *, struct irp_err *);

static void
refused(parse_fn *parse, void *out, const char *text, int status,
    const char *code, const char *msg)
{
	struct irp_err e;
	json_t *j = load(text);
	int rc;

	memset(&e, 0, sizeof(e));
	rc = parse(j, out, &e);
	checkf(rc == -1 && e.status == status && strcmp(e.code, code) == 0 &&
		strstr(e.msg, msg) != NULL,
	    "%.60s refused: %d %s \"%s\"", text, e.status, e.code, e.msg);
	json_decref(j);
}

/* Adapters with the one signature refused() takes. */
#define ADAPT(name, type)                                            \
	static int name##_p(json_t *j, void *out, struct irp_err *e) \
	{                                                            \
		return name##_parse(j, (type *)out, e);              \
	}
ADAPT(irp_csr_req, struct irp_csr_req)
ADAPT(irp_addresses_req, struct irp_addresses_req)
ADAPT(irp_revoke_req, struct irp_revoke_req)
ADAPT(irp_user_add_req, struct irp_user_add_req)
ADAPT(irp_code_req, struct irp_code_req)
ADAPT(irp_p12_req, struct irp_p12_req)
ADAPT(irp_cert, struct irp_cert)
ADAPT(irp_me, struct irp_me)
ADAPT(irp_addresses_reply, struct irp_addresses_reply)
ADAPT(irp_deleted, struct irp_deleted)
ADAPT(irp_backup_stored, struct irp_backup_stored)
ADAPT(irp_code, struct irp_code)
ADAPT(irp_user_enabled, struct irp_user_enabled)

static int
irp_user_p(json_t *j, void *out, struct irp_err *e)
{
	return irp_user_parse(j, (struct irp_user **)out, e);
}

static void
test_error(void)
{
	struct irp_err e;
	json_t *j;

	check_json(irp_error_build("unknown_user", "there is no user x here"),
	    "{\"error\":{\"code\":\"unknown_user\",\"message\":\"there is no "
	    "user x here\"}}",
	    "error object");
	/* A message cut inside a character is masked, not lost. */
	check_json(irp_error_build("too_long", "caf\xc3"),
	    "{\"error\":{\"code\":\"too_long\",\"message\":\"caf?\"}}",
	    "error object with a cut character");
	j = irp_error_build("conflict", "taken\x1b[2J");
	irp_error_parse(j, 409, &e);
	checkf(e.status == 409 && strcmp(e.code, "conflict") == 0 &&
		strcmp(e.msg, "the registry says: taken?[2J (conflict)") == 0,
	    "error object parsed, control characters masked: %s", e.msg);
	json_decref(j);
	j = load("{\"error\":{\"code\":\"\",\"message\":\"m\"}}");
	irp_error_parse(j, 500, &e);
	checkf(strcmp(e.code, "http") == 0 &&
		strstr(e.msg, "HTTP 500 without an error object") != NULL,
	    "an empty code names nothing: %s", e.msg);
	json_decref(j);
	irp_error_parse(NULL, 502, &e);
	check(e.status == 502 && strcmp(e.code, "http") == 0,
	    "no body: the status alone");
}

static void
test_csr(void)
{
	struct irp_csr_req r = { "-----BEGIN CERTIFICATE REQUEST-----\n" }, p;
	struct irp_err e;
	json_t *j;
	char *big;

	j = irp_csr_req_build(&r);
	check(irp_csr_req_parse(j, &p, &e) == 0 && strcmp(p.csr, r.csr) == 0,
	    "csr request round trip");
	json_decref(j);
	refused(irp_csr_req_p, &p, "{}", 400, "missing_field",
	    "the field \"csr\" is required");
	refused(irp_csr_req_p, &p, "{\"csr\":null}", 400, "missing_field",
	    "\"csr\" is required");
	refused(irp_csr_req_p, &p, "{\"csr\":1}", 400, "wrong_type",
	    "the field \"csr\" must be a string");
	refused(irp_csr_req_p, &p, "{\"csr\":\"a\\u0000b\"}", 400,
	    "invalid_value", "contains a NUL character");
	refused(irp_csr_req_p, &p, "{\"csr\":\"x\",\"key\":\"y\"}", 400,
	    "unknown_field", "unknown field \"key\"");
	refused(irp_csr_req_p, &p, "[]", 400, "wrong_type",
	    "the body must be a JSON object");
	big = calloc(1, IRP_CSR_MAX + 2);
	memset(big, 'A', IRP_CSR_MAX + 1);
	j = json_pack("{s:s}", "csr", big);
	check(irp_csr_req_parse(j, &p, &e) == -1 &&
		strcmp(e.code, "too_long") == 0 &&
		strstr(e.msg, "longer than 16384 bytes") != NULL,
	    "a CSR of IRP_CSR_MAX + 1 bytes is too long");
	json_decref(j);
	big[IRP_CSR_MAX] = '\0';
	j = json_pack("{s:s}", "csr", big);
	check(irp_csr_req_parse(j, &p, &e) == 0, "one of IRP_CSR_MAX is not");
	json_decref(j);
	free(big);
}

static void
test_cert(void)
{
	struct irp_cert c = { .userid = "alice@example.org",
		.cert_pem = "CERT",
		.chain_pem = "CHAIN",
		.serial = "1a2b",
		.fingerprint = "ab",
		.not_after = "2026-12-05T08:00:00Z" };
	struct irp_cert p;
	struct irp_err e;
	json_t *j;

	check_json(irp_cert_build(&c),
	    "{\"userid\":\"alice@example.org\",\"certificate\":\"CERT\","
	    "\"chain\":\"CHAIN\",\"serial\":\"1a2b\",\"fingerprint\":\"ab\","
	    "\"not_after\":\"2026-12-05T08:00:00Z\"}",
	    "certificate answer");
	j = irp_cert_build(&c);
	check(irp_cert_parse(j, &p, &e) == 0 &&
		strcmp(p.userid, c.userid) == 0 &&
		strcmp(p.cert_pem, "CERT") == 0 &&
		strcmp(p.chain_pem, "CHAIN") == 0 &&
		strcmp(p.serial, c.serial) == 0 &&
		strcmp(p.fingerprint, c.fingerprint) == 0 &&
		strcmp(p.not_after, c.not_after) == 0,
	    "certificate answer round trip");
	irp_cert_clear(&p);
	json_decref(j);
	refused(irp_cert_p, &p, "{\"certificate\":\"C\",\"chain\":\"C\"}", 200,
	    "bad_response",
	    "the registry's certificate answer lacks \"serial\"");
	refused(irp_cert_p, &p, "{\"serial\":\"1\",\"chain\":\"C\"}", 200,
	    "bad_response", "lacks \"certificate\" as a string");
	refused(irp_cert_p, &p,
	    "{\"serial\":\"1\",\"certificate\":true,\"chain\":\"C\"}", 200,
	    "bad_response", "lacks \"certificate\" as a string");
	refused(irp_cert_p, &p,
	    "{\"serial\":\"11111111111111111111111111111111111111111\","
	    "\"certificate\":\"C\",\"chain\":\"C\"}",
	    200, "bad_response", "\"serial\" longer than 40 bytes");
	refused(irp_cert_p, &p,
	    "{\"serial\":1,\"certificate\":\"C\",\"chain\":\"C\"}", 200,
	    "bad_response", "\"serial\" that is not a string");
	check(p.cert_pem == NULL && p.chain_pem == NULL,
	    "a refused certificate answer holds nothing");
	refused(irp_cert_p, &p, "[1]", 200, "bad_response",
	    "certificate answer is not a JSON object");
}

static void
test_addresses(void)
{
	struct irp_addresses_req r = { 2,
		{ { "192.0.2.1", 4605 }, { "2001:db8::1", 1 } }, 1, 600 };
	static struct irp_addresses_reply rep = { 0 }, rp;
	struct irp_addresses_req p;
	struct irp_deleted d = { 3 }, dp;
	struct irp_err e;
	char big[2048];
	size_t n;
	json_t *j;
	int i;

	check_json(irp_addresses_req_build(&r),
	    "{\"addresses\":[{\"ip\":\"192.0.2.1\",\"port\":4605},"
	    "{\"ip\":\"2001:db8::1\",\"port\":1}],\"ttl\":600}",
	    "address request");
	j = irp_addresses_req_build(&r);
	check(irp_addresses_req_parse(j, &p, &e) == 0 && p.naddr == 2 &&
		strcmp(p.addr[1].ip, "2001:db8::1") == 0 &&
		p.addr[0].port == 4605 && p.has_ttl && p.ttl == 600,
	    "address request round trip");
	json_decref(j);
	j = load("{\"addresses\":[{\"ip\":\"::ffff:192.0.2.7\",\"port\":9},"
		 "{\"ip\":\"2001:DB8:0::1\",\"port\":9}]}");
	check(irp_addresses_req_parse(j, &p, &e) == 0 &&
		strcmp(p.addr[0].ip, "192.0.2.7") == 0 &&
		strcmp(p.addr[1].ip, "2001:db8::1") == 0 && !p.has_ttl,
	    "addresses written in canonical form; no ttl is no ttl");
	json_decref(j);
	refused(irp_addresses_req_p, &p, "{}", 400, "missing_field",
	    "\"addresses\" must be an array of {\"ip\",\"port\"}");
	refused(irp_addresses_req_p, &p, "{\"addresses\":{}}", 400,
	    "wrong_type", "\"addresses\" must be an array");
	refused(irp_addresses_req_p, &p, "{\"addresses\":[]}", 400,
	    "too_many_addresses", "give 1 to 16 addresses, not 0");
	/* An extra-large list is refused as a whole. */
	n = snprintf(big, sizeof(big), "{\"addresses\":[");
	for (i = 0; i < IRP_ADDR_MAX + 1; i++)
		n += snprintf(big + n, sizeof(big) - n,
		    "%s{\"ip\":\"192.0.2.%d\",\"port\":1}", i ? "," : "",
		    i + 1);
	snprintf(big + n, sizeof(big) - n, "]}");
	refused(irp_addresses_req_p, &p, big, 400, "too_many_addresses",
	    "give 1 to 16 addresses, not 17");
	refused(irp_addresses_req_p, &p, "{\"addresses\":[1]}", 400,
	    "wrong_type", "address 0 must be an object");
	refused(irp_addresses_req_p, &p,
	    "{\"addresses\":[{\"ip\":\"192.0.2.1\",\"port\":1,\"x\":1}]}", 400,
	    "unknown_field", "unknown field \"x\"");
	refused(irp_addresses_req_p, &p,
	    "{\"addresses\":[{\"ip\":\"192.0.2.1\",\"port\":\"1\"}]}", 400,
	    "wrong_type",
	    "address 0 needs \"ip\" (string) and \"port\" (integer)");
	refused(irp_addresses_req_p, &p,
	    "{\"addresses\":[{\"ip\":\"192.0.2.1/24\",\"port\":1}]}", 400,
	    "invalid_address",
	    "address 0: \"192.0.2.1/24\" is not an IPv4 or IPv6 address");
	refused(irp_addresses_req_p, &p,
	    "{\"addresses\":[{\"ip\":\"192.0.2.1\",\"port\":65536}]}", 400,
	    "invalid_port", "address 0: port 65536 is not in 1-65535");
	refused(irp_addresses_req_p, &p,
	    "{\"addresses\":[{\"ip\":\"192.0.2.1\",\"port\":1}],\"ttl\":null}",
	    400, "wrong_type", "\"ttl\" must be an integer number of seconds");

	rep.naddr = 2;
	snprintf(rep.addr[0].ip, sizeof(rep.addr[0].ip), "192.0.2.1");
	rep.addr[0].port = 4605;
	snprintf(rep.addr[0].kind, sizeof(rep.addr[0].kind), "declared");
	snprintf(rep.addr[1].ip, sizeof(rep.addr[1].ip), "198.51.100.2");
	rep.addr[1].port = 4605;
	snprintf(rep.addr[1].kind, sizeof(rep.addr[1].kind), "observed");
	rep.ttl = 300;
	snprintf(rep.expires_at, sizeof(rep.expires_at),
	    "2026-01-01T00:05:00Z");
	check_json(irp_addresses_reply_build(&rep),
	    "{\"addresses\":[{\"ip\":\"192.0.2.1\",\"port\":4605,\"kind\":"
	    "\"declared\"},{\"ip\":\"198.51.100.2\",\"port\":4605,\"kind\":"
	    "\"observed\"}],\"ttl\":300,\"expires_at\":"
	    "\"2026-01-01T00:05:00Z\"}",
	    "address answer");
	j = irp_addresses_reply_build(&rep);
	check(irp_addresses_reply_parse(j, &rp, &e) == 0 &&
		memcmp(&rp, &rep, sizeof(rp)) == 0,
	    "address answer round trip");
	json_decref(j);
	refused(irp_addresses_reply_p, &rp, "{\"ttl\":0}", 200, "bad_response",
	    "lacks \"ttl\" as an integer in 1-2147483647");
	refused(irp_addresses_reply_p, &rp,
	    "{\"ttl\":5,\"addresses\":[{\"ip\":\"x\",\"port\":0}]}", 200,
	    "bad_response", "lacks \"port\" as an integer in 1-65535");

	check_json(irp_deleted_build(&d), "{\"deleted\":3}", "removal answer");
	j = irp_deleted_build(&d);
	check(irp_deleted_parse(j, &dp, &e) == 0 && dp.deleted == 3,
	    "removal answer round trip");
	json_decref(j);
	refused(irp_deleted_p, &dp, "{\"deleted\":-1}", 200, "bad_response",
	    "lacks \"deleted\" as an integer");
	refused(irp_deleted_p, &dp, "{\"deleted\":\"1\"}", 200, "bad_response",
	    "lacks \"deleted\" as an integer");
}

static struct irp_device
device(const char *serial, int naddr)
{
	struct irp_device d;
	int i;

	memset(&d, 0, sizeof(d));
	snprintf(d.serial, sizeof(d.serial), "%s", serial);
	snprintf(d.fingerprint, sizeof(d.fingerprint), "%064d", 7);
	snprintf(d.not_after, sizeof(d.not_after), "2027-01-01T00:00:00Z");
	d.cert_pem = strdup("PEM");
	for (i = 0; i < naddr; i++) {
		struct irp_address *a = &d.addr[d.naddr++];

		snprintf(a->ip, sizeof(a->ip), "192.0.2.%d", i + 1);
		a->port = 4605;
		snprintf(a->kind, sizeof(a->kind), "declared");
		snprintf(a->updated_at, sizeof(a->updated_at),
		    "2026-01-01T00:00:00Z");
		snprintf(a->expires_at, sizeof(a->expires_at),
		    "2026-01-01T00:10:00Z");
	}
	return d;
}

static int
same_user(const struct irp_user *a, const struct irp_user *b)
{
	size_t i;

	if (strcmp(a->userid, b->userid) || strcmp(a->name, b->name) ||
	    strcmp(a->email, b->email) || a->online != b->online ||
	    a->ndev != b->ndev)
		return 0;
	for (i = 0; i < a->ndev; i++)
		if (strcmp(a->dev[i].serial, b->dev[i].serial) ||
		    strcmp(a->dev[i].fingerprint, b->dev[i].fingerprint) ||
		    strcmp(a->dev[i].not_after, b->dev[i].not_after) ||
		    strcmp(a->dev[i].cert_pem, b->dev[i].cert_pem) ||
		    a->dev[i].naddr != b->dev[i].naddr ||
		    memcmp(a->dev[i].addr, b->dev[i].addr,
			a->dev[i].naddr * sizeof(a->dev[i].addr[0])) != 0)
			return 0;
	return 1;
}

static void
test_user(void)
{
	struct irp_user u, *p = NULL;
	struct irp_device d;
	struct irp_err e;
	json_t *j, *devs;
	char name[IRP_NAME_MAX + 2];
	int i, ok;

	memset(&u, 0, sizeof(u));
	snprintf(u.userid, sizeof(u.userid), "bob@example.org");
	snprintf(u.name, sizeof(u.name), "Bob");
	u.online = 1;
	d = device("1f", 1);
	check(irp_user_add_device(&u, &d) == 0 && d.cert_pem == NULL,
	    "a device added, its certificate taken");
	check_json(irp_user_build(&u),
	    "{\"userid\":\"bob@example.org\",\"name\":\"Bob\",\"email\":null,"
	    "\"online\":true,\"devices\":[{\"serial\":\"1f\",\"fingerprint\":"
	    "\"0000000000000000000000000000000000000000000000000000000000000007"
	    "\",\"certificate\":\"PEM\",\"not_after\":\"2027-01-01T00:00:00Z\""
	    ",\"addresses\":[{\"ip\":\"192.0.2.1\",\"port\":4605,\"kind\":"
	    "\"declared\",\"updated_at\":\"2026-01-01T00:00:00Z\","
	    "\"expires_at\":\"2026-01-01T00:10:00Z\"}]}]}",
	    "lookup answer (no e-mail is null)");
	snprintf(u.email, sizeof(u.email), "bob@example.net");
	for (i = 0; i < 3; i++) {
		d = device(i ? "2e" : "3d", IRP_DEV_ADDR_MAX - 1);
		ok = irp_user_add_device(&u, &d) == 0;
	}
	check(ok && u.ndev == 4, "four devices");
	j = irp_user_build(&u);
	check(irp_user_parse(j, &p, &e) == 0 && p != NULL && same_user(&u, p),
	    "lookup answer round trip");
	irp_user_free(p);
	/* Another domain's user: the registry that vouches, and how. */
	{
		struct irp_vouch v = { "example.net", IRP_TRUST_PINNED, "ab",
			(char *)"CA PEM", "2026-12-06T10:00:00Z", 1 };
		json_t *j2;

		check(irp_user_set_via(&u, &v) == 0 && u.via != NULL &&
			u.via->ca_pem != v.ca_pem,
		    "irp_user_set_via copies the CA");
		j2 = irp_user_build(&u);
		check(j2 != NULL && json_object_get(j, "registry") == NULL,
		    "a local answer has no \"registry\"");
		check(irp_user_parse(j2, &p, &e) == 0 && p->via != NULL &&
			strcmp(p->via->domain, "example.net") == 0 &&
			strcmp(p->via->trust, "pinned") == 0 &&
			strcmp(p->via->ca_sha256, "ab") == 0 &&
			strcmp(p->via->ca_pem, "CA PEM") == 0 &&
			strcmp(p->via->checked_at, "2026-12-06T10:00:00Z") ==
			    0 &&
			p->via->stale == 1 && same_user(&u, p),
		    "a federated answer round trip keeps domain, trust, CA, "
		    "when checked and that it is an earlier one");
		irp_user_free(p);
		json_object_set_new(json_object_get(j2, "registry"), "ca",
		    json_integer(1));
		p = (struct irp_user *)&u;
		check(irp_user_parse(j2, &p, &e) == -1 && p == NULL,
		    "a \"registry\" whose CA is no string is refused");
		json_decref(j2);
		j2 = json_pack("{s:s,s:[],s:{s:s}}", "userid", "x@y", "devices",
		    "registry", "domain", "example.net");
		check(irp_user_parse(j2, &p, &e) == -1 &&
			strstr(e.msg, "\"trust\"") != NULL,
		    "a \"registry\" without its trust basis is refused");
		json_decref(j2);
	}
	/* More devices than a client keeps: cut at IRP_DEVICES_MAX. */
	devs = json_object_get(j, "devices");
	while (json_array_size(devs) <= IRP_DEVICES_MAX)
		json_array_append(devs, json_array_get(devs, 0));
	check(irp_user_parse(j, &p, &e) == 0 && p->ndev == IRP_DEVICES_MAX,
	    "a list of devices beyond IRP_DEVICES_MAX is cut there");
	irp_user_free(p);
	json_decref(j);
	irp_user_clear(&u);
	check(u.ndev == 0 && u.dev == NULL, "irp_user_clear empties");

	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	j = json_pack("{s:s,s:s}", "userid", "x@y", "name", name);
	p = (struct irp_user *)&u;
	check(irp_user_parse(j, &p, &e) == -1 && p == NULL &&
		strstr(e.msg, "\"name\" longer than 128 bytes") != NULL,
	    "a name longer than IRP_NAME_MAX is refused");
	json_decref(j);
	refused(irp_user_p, &p, "{\"name\":\"x\"}", 200, "bad_response",
	    "the registry's lookup answer lacks \"userid\"");
	refused(irp_user_p, &p, "{\"userid\":\"x@y\",\"online\":1}", 200,
	    "bad_response", "\"online\" that is not true or false");
	refused(irp_user_p, &p, "{\"userid\":\"x@y\",\"devices\":{}}", 200,
	    "bad_response", "\"devices\" that is not a list");
	refused(irp_user_p, &p, "{\"userid\":\"x@y\",\"devices\":[{}]}", 200,
	    "bad_response", "lacks \"serial\"");
	refused(irp_user_p, &p,
	    "{\"userid\":\"x@y\",\"devices\":[{\"serial\":\"1\","
	    "\"certificate\":5}]}",
	    200, "bad_response", "lacks \"certificate\" as a string");
	refused(irp_user_p, &p,
	    "{\"userid\":\"x@y\",\"devices\":[{\"serial\":\"1\","
	    "\"addresses\":[{\"ip\":\"192.0.2.1\",\"port\":99999}]}]}",
	    200, "bad_response", "\"port\" as an integer in 1-65535");
}

static void
test_me(void)
{
	static struct irp_cert_status cs = { "1a", "ff", "2026-01-01T00:00:00Z",
		"2026-02-01T00:00:00Z", "valid" };
	static struct irp_address a = { "192.0.2.1", 4605, "declared",
		"2026-01-01T00:00:00Z", "2026-01-01T00:10:00Z" };
	struct irp_me me, p;
	struct irp_err e;
	json_t *j, *certs;

	memset(&me, 0, sizeof(me));
	snprintf(me.userid, sizeof(me.userid), "alice@example.org");
	snprintf(me.name, sizeof(me.name), "Alice");
	snprintf(me.email, sizeof(me.email), "alice@example.net");
	snprintf(me.role, sizeof(me.role), "admin");
	snprintf(me.serial, sizeof(me.serial), "1a");
	check(irp_me_add_cert(&me, &cs) == 0 &&
		irp_me_add_address(&me, &a) == 0,
	    "a certificate and an address added");
	check_json(irp_me_build(&me),
	    "{\"userid\":\"alice@example.org\",\"name\":\"Alice\",\"email\":"
	    "\"alice@example.net\",\"role\":\"admin\",\"serial\":\"1a\","
	    "\"certificates\":[{\"serial\":\"1a\",\"fingerprint\":\"ff\","
	    "\"not_before\":\"2026-01-01T00:00:00Z\",\"not_after\":"
	    "\"2026-02-01T00:00:00Z\",\"status\":\"valid\"}],\"addresses\":[{"
	    "\"ip\":\"192.0.2.1\",\"port\":4605,\"kind\":\"declared\","
	    "\"updated_at\":\"2026-01-01T00:00:00Z\",\"expires_at\":"
	    "\"2026-01-01T00:10:00Z\"}]}",
	    "/v1/me answer");
	j = irp_me_build(&me);
	check(irp_me_parse(j, &p, &e) == 0 &&
		strcmp(p.userid, me.userid) == 0 &&
		strcmp(p.email, me.email) == 0 &&
		strcmp(p.role, "admin") == 0 && p.ncert == 1 &&
		memcmp(&p.cert[0], &cs, sizeof(cs)) == 0 && p.naddr == 1 &&
		memcmp(&p.addr[0], &a, sizeof(a)) == 0,
	    "/v1/me answer round trip");
	irp_me_clear(&p);
	certs = json_object_get(j, "certificates");
	while (json_array_size(certs) < IRP_CERTS_MAX + 10)
		json_array_append(certs, json_array_get(certs, 0));
	check(irp_me_parse(j, &p, &e) == 0 && p.ncert == IRP_CERTS_MAX,
	    "certificates beyond IRP_CERTS_MAX are cut there");
	irp_me_clear(&p);
	json_array_append_new(json_object_get(j, "addresses"), json_integer(1));
	check(irp_me_parse(j, &p, &e) == -1 && p.cert == NULL &&
		strstr(e.msg, "/v1/me answer is not a JSON object") != NULL,
	    "an address that is no object is refused, nothing kept");
	json_decref(j);
	irp_me_clear(&me);
	refused(irp_me_p, &p, "{\"userid\":5}", 200, "bad_response",
	    "\"userid\" that is not a string");
}

static void
test_backup(void)
{
	static struct irp_backup_stored b = { .size = 1234 }, p;
	struct irp_err e;
	json_t *j;

	snprintf(b.sha256, sizeof(b.sha256), "%064x", 0xab);
	snprintf(b.updated_at, sizeof(b.updated_at), "2026-01-01T00:00:00Z");
	check_json(irp_backup_stored_build(&b),
	    "{\"sha256\":\"00000000000000000000000000000000000000000000000000"
	    "000000000000ab\",\"size\":1234,\"updated_at\":"
	    "\"2026-01-01T00:00:00Z\"}",
	    "backup answer");
	j = irp_backup_stored_build(&b);
	check(irp_backup_stored_parse(j, &p, &e) == 0 &&
		memcmp(&p, &b, sizeof(p)) == 0,
	    "backup answer round trip");
	json_decref(j);
	refused(irp_backup_stored_p, &p, "{\"sha256\":\"ab\",\"size\":0}", 200,
	    "bad_response", "lacks \"size\"");
}

static void
test_inbox(void)
{
	struct irp_inbox_item m = { 7, "alice@example.org", "<a.1@x>", 900,
		"2026-01-01T00:00:00Z", "2026-01-08T00:00:00Z" },
			      p;
	struct irp_inbox l = { 0, NULL }, lp;
	struct irp_err e;
	json_t *j;

	check(irp_msgid_ok("<a.1@x>") && irp_msgid_ok("m1") &&
		!irp_msgid_ok("") && !irp_msgid_ok("a b") &&
		!irp_msgid_ok("a\nb"),
	    "message ids: 1 to 128 of a small set, nothing else");
	j = irp_inbox_item_build(&m);
	check(irp_inbox_item_parse(j, &p, &e) == 0 &&
		memcmp(&p, &m, sizeof(p)) == 0,
	    "inbox item round trip");
	json_decref(j);
	check(irp_inbox_add(&l, &m) == 0 && irp_inbox_add(&l, &m) == 0,
	    "a list of two");
	j = irp_inbox_build(&l);
	check(irp_inbox_parse(j, &lp, &e) == 0 && lp.n == 2 &&
		memcmp(&lp.msg[1], &m, sizeof(m)) == 0,
	    "inbox list round trip");
	json_decref(j);
	irp_inbox_clear(&lp);
	irp_inbox_clear(&l);
	j = json_pack("{s:[{s:i,s:s,s:s,s:i}]}", "messages", "id", 1, "sender",
	    "a@b.c", "msg_id", "a b", "size", 3);
	check(irp_inbox_parse(j, &lp, &e) == -1 && lp.n == 0 &&
		strstr(e.msg, "no message id") != NULL,
	    "an answer with a message id that is none is refused");
	json_decref(j);
}

static void
test_events(void)
{
	struct irp_events ev = { "42", 3 }, p;
	struct irp_err e;
	json_t *j;

	check_json(irp_events_build(&ev),
	    "{\"cursor\":\"42\",\"events\":[{\"type\":\"mail\","
	    "\"waiting\":3}]}",
	    "events with mail");
	ev.mail_waiting = 0;
	check_json(irp_events_build(&ev), "{\"cursor\":\"42\",\"events\":[]}",
	    "events without any");
	j = json_pack("{s:s,s:[{s:s,s:i},{s:s,s:i}]}", "cursor", "7.x-1",
	    "events", "type", "call", "from", 1, "type", "mail", "waiting", 2);
	check(irp_events_parse(j, &p, &e) == 0 && p.mail_waiting == 2 &&
		strcmp(p.cursor, "7.x-1") == 0,
	    "an event of a type not known is skipped, mail is read");
	json_decref(j);
	j = json_pack("{s:s,s:[{s:s,s:i}]}", "cursor", "1", "events", "type",
	    "mail", "waiting", 0);
	check(irp_events_parse(j, &p, &e) == -1 && p.mail_waiting == 0,
	    "mail with nothing waiting is no answer");
	json_decref(j);
	j = json_pack("{s:s,s:[]}", "cursor", "1&wait=0", "events");
	check(irp_events_parse(j, &p, &e) == -1 &&
		strstr(e.msg, "cursor") != NULL,
	    "a cursor that would need escaping in a URL is refused");
	json_decref(j);
	check(irp_cursor_ok("0") && irp_cursor_ok("a.b_c-9") &&
		!irp_cursor_ok("") && !irp_cursor_ok("a b") &&
		!irp_cursor_ok("a/b") && !irp_cursor_ok("a%20"),
	    "cursors: 1 to 63 of a small set");
}

static void
test_revoke(void)
{
	struct irp_revoke_req r = { "keyCompromise" }, rp;
	struct irp_revoked v = { "1a", "revoked", "keyCompromise" }, vp;
	struct irp_user_revoked u, up;
	struct irp_err e;
	char longserial[IRP_SERIAL_MAX + 2];
	json_t *j;

	check_json(irp_revoke_req_build(&r), "{\"reason\":\"keyCompromise\"}",
	    "revocation request");
	r.reason = NULL;
	check_json(irp_revoke_req_build(&r), "{}",
	    "revocation request without a reason");
	j = load("{\"reason\":\"superseded\"}");
	check(irp_revoke_req_parse(j, &rp, &e) == 0 &&
		strcmp(rp.reason, "superseded") == 0,
	    "revocation request parsed");
	json_decref(j);
	j = load("{}");
	check(irp_revoke_req_parse(j, &rp, &e) == 0 && rp.reason == NULL,
	    "no reason is NULL");
	json_decref(j);
	refused(irp_revoke_req_p, &rp, "{\"reason\":7}", 400, "wrong_type",
	    "the field \"reason\" must be a string");
	refused(irp_revoke_req_p, &rp, "{\"why\":\"x\"}", 400, "unknown_field",
	    "unknown field \"why\"");

	{
		struct irp_pending pd = { "pending", "",
			"2026-12-06T00:00:00Z" },
				   pp;

		memset(pd.request, 'a', IRP_TOKEN_LEN);
		j = irp_pending_build(&pd);
		check(irp_pending_parse(j, &pp, &e) == 0 &&
			memcmp(&pp, &pd, sizeof(pd)) == 0,
		    "pending request round trip");
		json_decref(j);
		pd.request[3] = 'A';
		j = irp_pending_build(&pd);
		check(irp_pending_parse(j, &pp, &e) == -1 &&
			pp.request[0] == '\0',
		    "a token that is not lower-case hex is refused");
		json_decref(j);
		check(!irp_token_ok("") && !irp_token_ok("abc"),
		    "a short token is not one");
	}
	check_json(irp_revoked_build(&v),
	    "{\"serial\":\"1a\",\"status\":\"revoked\",\"reason\":"
	    "\"keyCompromise\"}",
	    "revocation answer");
	j = irp_revoked_build(&v);
	check(irp_revoked_parse(j, &vp, &e) == 0 &&
		memcmp(&vp, &v, sizeof(v)) == 0,
	    "revocation answer round trip");
	json_decref(j);

	memset(&u, 0, sizeof(u));
	snprintf(u.userid, sizeof(u.userid), "eve@example.org");
	snprintf(u.reason, sizeof(u.reason), "unspecified");
	check(irp_user_revoked_add(&u, "1a") == 0 &&
		irp_user_revoked_add(&u, "2b") == 0,
	    "two serials added");
	memset(longserial, '1', sizeof(longserial) - 1);
	longserial[sizeof(longserial) - 1] = '\0';
	check(irp_user_revoked_add(&u, longserial) == -1 && u.nserial == 2,
	    "a serial longer than IRP_SERIAL_MAX is not added");
	check_json(irp_user_revoked_build(&u),
	    "{\"userid\":\"eve@example.org\",\"revoked\":[\"1a\",\"2b\"],"
	    "\"reason\":\"unspecified\"}",
	    "user revocation answer");
	j = irp_user_revoked_build(&u);
	check(irp_user_revoked_parse(j, &up, &e) == 0 && up.nserial == 2 &&
		strcmp(up.serial[1], "2b") == 0 &&
		strcmp(up.userid, u.userid) == 0,
	    "user revocation answer round trip");
	irp_user_revoked_clear(&up);
	json_array_append_new(json_object_get(j, "revoked"),
	    json_string(longserial));
	check(irp_user_revoked_parse(j, &up, &e) == -1 && up.serial == NULL &&
		strstr(e.msg, "not 1 to 40 characters") != NULL,
	    "a listed serial too long is refused");
	json_decref(j);
	irp_user_revoked_clear(&u);
}

static void
test_admin(void)
{
	struct irp_user_add_req r = { "carol@example.org", "Carol", NULL,
		"admin", "secret-password" };
	struct irp_user_add_req rp;
	static struct irp_user_info ui = { "carol@example.org", "Carol", "",
		"user", 1, "2026-01-01T00:00:00Z" };
	struct irp_user_info up;
	struct irp_user_list l = { 0, NULL }, lp;
	struct irp_user_enabled en = { "carol@example.org", 0 }, enp;
	struct irp_code_req cr = { 1, 3600 }, crp;
	struct irp_code c = { "carol@example.org", "ABCD-EFGH",
		"2026-01-02T00:00:00Z" };
	struct irp_code cp;
	struct irp_p12_req pr = { "long enough" }, prp;
	struct irp_health h = { "ok" }, hp;
	struct irp_err e;
	json_t *j;

	check_json(irp_user_add_req_build(&r),
	    "{\"userid\":\"carol@example.org\",\"name\":\"Carol\",\"role\":"
	    "\"admin\",\"password\":\"secret-password\"}",
	    "user request (no e-mail left out)");
	j = irp_user_add_req_build(&r);
	check(irp_user_add_req_parse(j, &rp, &e) == 0 &&
		strcmp(rp.userid, r.userid) == 0 &&
		strcmp(rp.name, r.name) == 0 && rp.email == NULL &&
		strcmp(rp.role, "admin") == 0 &&
		strcmp(rp.password, r.password) == 0,
	    "user request round trip");
	json_decref(j);
	refused(irp_user_add_req_p, &rp, "{\"userid\":\"a@b\"}", 400,
	    "missing_field", "the field \"name\" is required");
	refused(irp_user_add_req_p, &rp,
	    "{\"userid\":\"a@b\",\"name\":\"A\",\"role\":\"root\"}", 400,
	    "invalid_value", "role is \"user\" or \"admin\"");
	refused(irp_user_add_req_p, &rp,
	    "{\"userid\":\"a@b\",\"name\":\"A\",\"role\":"
	    "\"aaaaaaaaaaaaaaaaa\"}",
	    400, "too_long", "the field \"role\" is longer than 16 bytes");
	refused(irp_user_add_req_p, &rp,
	    "{\"userid\":\"a@b\",\"name\":[\"A\"]}", 400, "wrong_type",
	    "the field \"name\" must be a string");

	check_json(irp_user_added_build(&ui),
	    "{\"userid\":\"carol@example.org\",\"name\":\"Carol\",\"email\":"
	    "null,\"role\":\"user\"}",
	    "new user answer");
	j = irp_user_added_build(&ui);
	check(irp_user_added_parse(j, &up, &e) == 0 &&
		strcmp(up.userid, ui.userid) == 0 && up.email[0] == '\0' &&
		strcmp(up.role, "user") == 0,
	    "new user answer round trip");
	json_decref(j);

	check(irp_user_list_add(&l, &ui) == 0, "a user listed");
	snprintf(ui.email, sizeof(ui.email), "c@example.net");
	ui.enabled = 0;
	check(irp_user_list_add(&l, &ui) == 0, "another user listed");
	check_json(irp_user_list_build(&l),
	    "{\"users\":[{\"userid\":\"carol@example.org\",\"name\":\"Carol\","
	    "\"email\":null,\"role\":\"user\",\"enabled\":true,\"created_at\":"
	    "\"2026-01-01T00:00:00Z\"},{\"userid\":\"carol@example.org\","
	    "\"name\":\"Carol\",\"email\":\"c@example.net\",\"role\":\"user\","
	    "\"enabled\":false,\"created_at\":\"2026-01-01T00:00:00Z\"}]}",
	    "user list");
	j = irp_user_list_build(&l);
	check(irp_user_list_parse(j, &lp, &e) == 0 && lp.n == 2 &&
		memcmp(lp.user, l.user, 2 * sizeof(*l.user)) == 0,
	    "user list round trip");
	irp_user_list_clear(&lp);
	json_decref(j);
	irp_user_list_clear(&l);

	check_json(irp_user_enabled_build(&en),
	    "{\"userid\":\"carol@example.org\",\"enabled\":false}",
	    "enable/disable answer");
	j = irp_user_enabled_build(&en);
	check(irp_user_enabled_parse(j, &enp, &e) == 0 && !enp.enabled &&
		strcmp(enp.userid, en.userid) == 0,
	    "enable/disable answer round trip");
	json_decref(j);
	refused(irp_user_enabled_p, &enp, "{\"userid\":\"a@b\"}", 200,
	    "bad_response", "lacks \"enabled\" as true or false");

	check_json(irp_code_req_build(&cr), "{\"ttl\":3600}", "code request");
	j = irp_code_req_build(&cr);
	check(irp_code_req_parse(j, &crp, &e) == 0 && crp.has_ttl &&
		crp.ttl == 3600,
	    "code request round trip");
	json_decref(j);
	cr.has_ttl = 0;
	check_json(irp_code_req_build(&cr), "{}", "code request, no ttl");
	refused(irp_code_req_p, &crp, "{\"ttl\":\"1h\"}", 400, "wrong_type",
	    "\"ttl\" must be an integer number of seconds");

	check_json(irp_code_build(&c),
	    "{\"userid\":\"carol@example.org\",\"code\":\"ABCD-EFGH\","
	    "\"expires_at\":\"2026-01-02T00:00:00Z\"}",
	    "code answer");
	j = irp_code_build(&c);
	check(irp_code_parse(j, &cp, &e) == 0 &&
		memcmp(&cp, &c, sizeof(c)) == 0,
	    "code answer round trip");
	json_decref(j);
	refused(irp_code_p, &cp, "{\"userid\":\"a@b\"}", 200, "bad_response",
	    "the registry's enrolment code answer lacks \"code\"");

	check_json(irp_p12_req_build(&pr), "{\"passphrase\":\"long enough\"}",
	    "key request");
	j = irp_p12_req_build(&pr);
	check(irp_p12_req_parse(j, &prp, &e) == 0 &&
		strcmp(prp.passphrase, pr.passphrase) == 0,
	    "key request round trip");
	json_decref(j);
	refused(irp_p12_req_p, &prp, "{\"passphrase\":\"short\"}", 400,
	    "weak_passphrase", "the passphrase needs at least 8 characters");

	check_json(irp_health_build(&h), "{\"status\":\"ok\"}", "health");
	j = irp_health_build(&h);
	check(irp_health_parse(j, &hp, &e) == 0 && strcmp(hp.status, "ok") == 0,
	    "health round trip");
	json_decref(j);
}

static void
test_copy(void)
{
	char buf[4];

	check(irp_copy(buf, sizeof(buf), "abc") == 0 && strcmp(buf, "abc") == 0,
	    "irp_copy: what fits is copied");
	check(irp_copy(buf, sizeof(buf), "abcd") == -1 && buf[0] == '\0',
	    "irp_copy: what does not fit leaves \"\"");
	check(irp_copy(buf, sizeof(buf), NULL) == 0 && buf[0] == '\0',
	    "irp_copy: NULL is \"\"");
}

int
main(void)
{
	test_error();
	test_csr();
	test_cert();
	test_addresses();
	test_user();
	test_me();
	test_backup();
	test_inbox();
	test_events();
	test_revoke();
	test_admin();
	test_copy();
	return tap_done();
}
