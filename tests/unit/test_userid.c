/*
 * test_userid.c - the user id rule, table-driven.
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
	return tap_done();
}
