/*
 * fuzz_irp_reply.c - the IRP client's parsers of the registry's answers
 * (irp/irp_internal.h).  A hostile or impersonated registry controls every
 * byte of them.  The first input byte chooses the parser, the rest is the
 * body.  Beyond ASan and UBSan: every string handed back ends within its
 * buffer, every count stays within its IRP_*_MAX, every error is a
 * printable sentence, and everything allocated goes with the matching
 * free function (LeakSanitizer watches that).
 */
#include <jansson.h>

#include "fuzz.h"
#include "irp_internal.h"

#define TERMINATED(a) FUZZ_CHECK(memchr((a), '\0', sizeof(a)) != NULL)

/*
 * What dchat does with an error: print it, and put it in a JSON event,
 * which jansson refuses unless it is UTF-8.  A terminal must not take any
 * of it for a control sequence.
 */
static void
check_text(const char *s, size_t size)
{
	json_t *j;
	size_t i, n;

	FUZZ_CHECK(memchr(s, '\0', size) != NULL);
	n = strlen(s);
	FUZZ_CHECK((j = json_stringn(s, n)) != NULL);
	json_decref(j);
	for (i = 0; i < n; i++) {
		FUZZ_CHECK((unsigned char)s[i] >= 0x20 &&
		    (unsigned char)s[i] != 0x7f);
		/* C1 controls (U+0080..U+009F) are C2 80..C2 9F in UTF-8. */
		FUZZ_CHECK(!((unsigned char)s[i] == 0xc2 &&
		    (unsigned char)s[i + 1] >= 0x80 &&
		    (unsigned char)s[i + 1] <= 0x9f));
	}
}

static void
check_err(const struct irp_err *err, long status)
{
	check_text(err->code, sizeof(err->code));
	check_text(err->msg, sizeof(err->msg));
	FUZZ_CHECK(err->code[0] != '\0' && err->msg[0] != '\0');
	FUZZ_CHECK(err->status == status || err->status == 0);
}

static void
check_device(const struct irp_device *d)
{
	size_t i;

	TERMINATED(d->serial);
	TERMINATED(d->fingerprint);
	TERMINATED(d->not_after);
	FUZZ_CHECK(d->naddr <= IRP_DEV_ADDR_MAX);
	for (i = 0; i < d->naddr; i++) {
		TERMINATED(d->addr[i].ip);
		TERMINATED(d->addr[i].kind);
		TERMINATED(d->addr[i].updated_at);
		TERMINATED(d->addr[i].expires_at);
		FUZZ_CHECK(d->addr[i].port >= 1 && d->addr[i].port <= 65535);
	}
	if (d->cert_pem != NULL)
		(void)strlen(d->cert_pem); /* ASan: within its allocation */
}

static void
fuzz_user(const char *b, size_t n, struct irp_err *err)
{
	struct irp_user *u = (struct irp_user *)(uintptr_t)1;
	size_t i;

	if (irp_parse_user(b, n, &u, err) == -1) {
		FUZZ_CHECK(u == NULL);
		check_err(err, 200);
		return;
	}
	FUZZ_CHECK(u != NULL);
	TERMINATED(u->userid);
	TERMINATED(u->name);
	TERMINATED(u->email);
	FUZZ_CHECK(u->ndev <= IRP_DEVICES_MAX);
	FUZZ_CHECK(u->ndev == 0 || u->dev != NULL);
	for (i = 0; i < u->ndev; i++)
		check_device(&u->dev[i]);
	irp_user_free(u);
}

static void
fuzz_me(const char *b, size_t n, struct irp_err *err)
{
	static struct irp_me me;
	size_t i;

	memset(&me, 0xa5, sizeof(me));
	if (irp_parse_me(b, n, &me, err) == -1) {
		/* Nothing left to free. */
		FUZZ_CHECK(me.cert == NULL && me.addr == NULL);
		check_err(err, 200);
		return;
	}
	TERMINATED(me.userid);
	TERMINATED(me.name);
	TERMINATED(me.email);
	TERMINATED(me.role);
	TERMINATED(me.serial);
	FUZZ_CHECK(me.ncert <= IRP_CERTS_MAX);
	for (i = 0; i < me.ncert; i++) {
		TERMINATED(me.cert[i].serial);
		TERMINATED(me.cert[i].fingerprint);
		TERMINATED(me.cert[i].not_before);
		TERMINATED(me.cert[i].not_after);
		TERMINATED(me.cert[i].status);
	}
	FUZZ_CHECK(me.naddr <= IRP_DEV_ADDR_MAX);
	for (i = 0; i < me.naddr; i++) {
		TERMINATED(me.addr[i].ip);
		FUZZ_CHECK(me.addr[i].port >= 1 && me.addr[i].port <= 65535);
	}
	irp_me_clear(&me);
}

static void
fuzz_cert(const char *b, size_t n, struct irp_err *err)
{
	struct irp_cert c;

	memset(&c, 0xa5, sizeof(c));
	if (irp_parse_cert(b, n, &c, err) == -1) {
		/* Nothing left to free: the caller may not clear. */
		FUZZ_CHECK(c.cert_pem == NULL && c.chain_pem == NULL);
		check_err(err, 200);
		return;
	}
	TERMINATED(c.userid);
	TERMINATED(c.serial);
	TERMINATED(c.fingerprint);
	TERMINATED(c.not_after);
	FUZZ_CHECK(c.cert_pem != NULL && c.chain_pem != NULL);
	irp_cert_clear(&c);
	FUZZ_CHECK(c.cert_pem == NULL && c.chain_pem == NULL);
}

static void
fuzz_addresses(const char *b, size_t n, struct irp_err *err)
{
	char exp[IRP_TIME_MAX];
	int ttl = -1, deleted = -1;
	json_t *j;

	memset(exp, 0xa5, sizeof(exp));
	if (irp_parse_addresses_put(b, n, &ttl, exp, err) == 0) {
		TERMINATED(exp);
		FUZZ_CHECK(ttl >= 0);
	} else
		check_err(err, 200);
	/* The optional outputs may be left out. */
	if (irp_parse_addresses_put(b, n, NULL, NULL, err) == -1)
		check_err(err, 200);
	if (irp_parse_addresses_delete(b, n, &deleted, err) == 0) {
		FUZZ_CHECK(deleted >= 0);
		/* Never a count the registry did not send. */
		if (deleted > 0) {
			FUZZ_CHECK((j = json_loadb(b, n, JSON_REJECT_DUPLICATES,
			    NULL)) != NULL);
			FUZZ_CHECK(json_integer_value(json_object_get(j,
			    "deleted")) == deleted);
			json_decref(j);
		}
	} else
		check_err(err, 200);
}

static void
fuzz_events(const char *b, size_t n, struct irp_err *err)
{
	struct irp_events ev;

	memset(&ev, 0xa5, sizeof(ev));
	if (irp_parse_events(b, n, &ev, err) == 0) {
		TERMINATED(ev.cursor);
		/* Only a cursor that goes into a URL unescaped. */
		FUZZ_CHECK(irp_cursor_ok(ev.cursor));
		FUZZ_CHECK(ev.mail_waiting >= 0);
	} else {
		check_err(err, 200);
		FUZZ_CHECK(ev.cursor[0] == '\0' && ev.mail_waiting == 0);
	}
}

static void
fuzz_error(const char *b, size_t n, struct irp_err *err)
{
	static const long status[] = { 400, 401, 403, 404, 409, 413, 429, 500,
		503, 302, 0, 999 };
	long st = status[n % (sizeof(status) / sizeof(status[0]))];

	irp_parse_error(b, n, st, err);
	check_err(err, st);
	FUZZ_CHECK(err->status == (int)st);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct irp_err err;
	const char *b;
	char *copy;
	size_t n;

	if (size == 0)
		return 0;
	/* An exact-size copy, so ASan sees any read past the body. */
	n = size - 1;
	if ((copy = malloc(n ? n : 1)) == NULL)
		return 0;
	memcpy(copy, data + 1, n);
	b = copy;
	memset(&err, 0xa5, sizeof(err));
	switch (data[0] % 6) {
	case 0:
		fuzz_user(b, n, &err);
		break;
	case 1:
		fuzz_me(b, n, &err);
		break;
	case 2:
		fuzz_cert(b, n, &err);
		break;
	case 3:
		fuzz_addresses(b, n, &err);
		break;
	case 4:
		fuzz_events(b, n, &err);
		break;
	default:
		fuzz_error(b, n, &err);
		break;
	}
	free(copy);
	return 0;
}
