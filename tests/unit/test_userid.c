/*
 * test_userid.c - the user id rule, table-driven.
 */
#include <stdio.h>
#include <string.h>

#include "irp.h"

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

int
main(void)
{
	char out[IRP_USERID_MAX + 1], big[400];
	const char *why;
	size_t i;
	int n = 0, failed = 0, rc;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rc = irp_userid_normalize(cases[i].in, out, sizeof(out), &why);
		if (cases[i].out == NULL ? (rc == 0 || why == NULL) :
					   (rc != 0 || strcmp(out, cases[i].out))) {
			printf("not ok %d - '%s'\n", ++n, cases[i].in);
			failed++;
		} else
			printf("ok %d - '%s' %s\n", ++n, cases[i].in,
			    rc ? why : out);
	}
	/* Over 254 characters is refused; exactly at the limit passes. */
	memset(big, 'a', sizeof(big));
	memcpy(big + 250, "@x.de", 6);
	rc = irp_userid_normalize(big, out, sizeof(out), &why);
	printf("%s %d - 255 characters refused\n", rc ? "ok" : "not ok", ++n);
	failed += rc == 0;
	memcpy(big + 249, "@x.de", 6);
	rc = irp_userid_normalize(big, out, sizeof(out), &why);
	printf("%s %d - 254 characters accepted\n", rc ? "not ok" : "ok", ++n);
	failed += rc != 0;
	/* A too small output buffer is refused, not overflowed. */
	rc = irp_userid_normalize("alice@example.org", out, 5, &why);
	printf("%s %d - small buffer refused\n", rc ? "ok" : "not ok", ++n);
	failed += rc == 0;
	printf("%d checks, %d failed\n", n, failed);
	return failed != 0;
}
