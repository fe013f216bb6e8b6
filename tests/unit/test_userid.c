/*
 * test_userid.c - the user id rule, table-driven, and the other values of
 * the protocol: serials, e-mail addresses, times.
 */
#include <stdio.h>
#include <string.h>

#include "irp.h"
#include "tap.h"

static const struct {
	const char *in;
	const char *out; /* NULL: refused */
} cases[] = {
	{ "alice@example.org", "alice@example.org" },
	{ "Alice@Example.ORG", "alice@example.org" },
	{ "a.b_c%d+e-f@sub.example.org", "a.b_c%d+e-f@sub.example.org" },
	{ "x@y", "x@y" },
	{ "0@0.de", "0@0.de" },
	{ "", NULL },
	{ "alice", NULL },
	{ "@example.org", NULL },
	{ "alice@", NULL },
	{ "a@b@c.org", NULL },
	{ ".alice@example.org", NULL },
	{ "al ice@example.org", NULL },
	{ "alice@exa mple.org", NULL },
	{ "alice@-example.org", NULL },
	{ "alice@example-.org", NULL },
	{ "alice@example..org", NULL },
	{ "alice@example.org.", NULL },
	{ "alice'; DROP TABLE users;--@x.org", NULL },
	{ "alice@ex/../ample.org", NULL },
	{ "al\xc3\xa9" "ce@example.org", NULL },
	{ "alice@exa\nmple.org", NULL },
};

/* Are the n bytes at p all still 'Z'? */
static int
untouched(const char *p, size_t n)
{
	while (n-- > 0)
		if (*p++ != 'Z')
			return 0;
	return 1;
}

/* One case: refused with a reason, or accepted as exactly the expected id. */
static void
check_case(const char *in, const char *want)
{
	char out[IRP_USERID_MAX + 1];
	const char *why = NULL;
	int rc;

	rc = irp_userid_normalize(in, out, sizeof(out), &why);
	if (want == NULL)
		checkf(rc == -1 && why != NULL && why[0] != '\0',
		    "'%s' refused: %s", in, why != NULL ? why : "(no reason)");
	else
		checkf(rc == 0 && strcmp(out, want) == 0, "'%s' is '%s'", in,
		    rc == 0 ? out : why);
}

/* The other values of the protocol (irp_values.c). */
static void
check_values(void)
{
	static const struct {
		const char *in, *out; /* NULL: refused */
	} serials[] = {
		{ "1a", "1a" }, { "00AB", "ab" }, { "0", "0" }, { "000", "0" },
		{ "", NULL }, { "1g", NULL }, { "-1", NULL }, { " 1", NULL },
		{ "0x1a", NULL },
		{ "123456789012345678901234567890123456789a",
		    "123456789012345678901234567890123456789a" },
		{ "123456789012345678901234567890123456789ab", NULL },
	};
	static const struct {
		const char *in;
		int ok;
	} emails[] = {
		{ "a@b", 1 }, { "alice@example.org", 1 }, { "ab", 0 },
		{ "@b.c", 0 }, { "a@", 0 }, { "a@b@c", 0 }, { "a b@c.d", 0 },
		{ "a@b\t", 0 },
	};
	char out[IRP_SERIAL_MAX + 1], t[IRP_TIME_LEN], big[IRP_EMAIL_MAX + 2];
	size_t i;
	int rc;

	for (i = 0; i < sizeof(serials) / sizeof(serials[0]); i++) {
		rc = irp_serial_normalize(serials[i].in, out, sizeof(out));
		if (serials[i].out == NULL)
			checkf(rc == -1, "serial '%s' refused", serials[i].in);
		else
			checkf(rc == 0 && strcmp(out, serials[i].out) == 0,
			    "serial '%s' is '%s'", serials[i].in,
			    serials[i].out);
	}
	check(irp_serial_normalize("abcd", out, 4) == -1,
	    "serial refused when it would not fit");
	for (i = 0; i < sizeof(emails) / sizeof(emails[0]); i++)
		checkf(irp_email_ok(emails[i].in) == emails[i].ok,
		    "e-mail '%s' %s", emails[i].in,
		    emails[i].ok ? "taken" : "refused");
	memset(big, 'e', sizeof(big));
	memcpy(big + IRP_EMAIL_MAX - 6, "@x.org", 7);
	check(irp_email_ok(big), "an e-mail of 254 bytes is taken");
	memcpy(big + IRP_EMAIL_MAX - 5, "@x.org", 7);
	check(!irp_email_ok(big), "an e-mail of 255 bytes is refused");
	irp_time(0, t);
	checkf(strcmp(t, "1970-01-01T00:00:00Z") == 0, "time 0 is %s", t);
	irp_time(1796428800LL, t);
	checkf(strcmp(t, "2026-12-05T00:00:00Z") == 0, "a time of 2026 is %s",
	    t);
}

int
main(void)
{
	char out[IRP_USERID_MAX + 1], big[400];
	const char *why;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_case(cases[i].in, cases[i].out);
	/* Over 254 characters is refused; exactly at the limit passes. */
	memset(big, 'a', sizeof(big));
	memcpy(big + 250, "@x.de", 6);
	rc = irp_userid_normalize(big, out, sizeof(out), &why);
	check(rc == -1, "255 characters refused");
	memcpy(big + 249, "@x.de", 6);
	rc = irp_userid_normalize(big, out, sizeof(out), &why);
	check(rc == 0 && strlen(out) == 254 && strcmp(out, big) == 0,
	    "254 characters accepted as they are");
	/*
	 * A too small output buffer is refused, not overflowed: the bytes
	 * past the size given are still what they were.
	 */
	memset(out, 'Z', sizeof(out));
	rc = irp_userid_normalize("alice@example.org", out, 5, &why);
	check(rc == -1 && untouched(out + 5, sizeof(out) - 5),
	    "small buffer refused and not written past");
	check_values();
	return tap_done();
}
