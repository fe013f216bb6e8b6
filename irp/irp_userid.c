/*
 * irp_userid.c - user ids: "local@domain", compared in lower case.
 *
 * The same rule as the CHECK constraint on users.userid in
 * schema/001_init.sql: the database refuses what this lets through only
 * if the two drift apart, and the unit test keeps them together.
 */
#include <ctype.h>
#include <string.h>

#include "irp.h"

static int
local_char(int c)
{
	return isalnum(c) || strchr("._%+-", c) != NULL;
}

/* One DNS label: [a-z0-9]([a-z0-9-]*[a-z0-9])? of at most 63 bytes. */
static int
label_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-')
			return 0;
	return 1;
}

/* Whether s is dot-separated labels, each as label_ok wants it. */
static int
labels_ok(const char *s)
{
	const char *dot;

	for (;; s = dot + 1) {
		dot = strchr(s, '.');
		if (!label_ok(s, dot ? (size_t)(dot - s) : strlen(s)))
			return 0;
		if (dot == NULL)
			return 1;
	}
}

int
irp_userid_normalize(const char *in, char *out, size_t outlen,
    const char **why)
{
	const char *at, *p;
	size_t len, i;
	const char *dummy;

	if (why == NULL)
		why = &dummy;
	*why = NULL;
	if (in == NULL || (len = strlen(in)) == 0) {
		*why = "the user id is empty";
		return -1;
	}
	if (len < 3 || len > IRP_USERID_MAX || len >= outlen) {
		*why = "a user id has 3 to 254 characters";
		return -1;
	}
	if ((at = strchr(in, '@')) == NULL || strchr(at + 1, '@') != NULL ||
	    at == in || at[1] == '\0') {
		*why = "a user id looks like name@domain";
		return -1;
	}
	if (!isalnum((unsigned char)in[0])) {
		*why = "a user id starts with a letter or digit";
		return -1;
	}
	for (p = in; p < at; p++)
		if (!local_char((unsigned char)*p)) {
			*why = "the part before @ may hold only letters, "
			       "digits and . _ % + -";
			return -1;
		}
	if (!labels_ok(at + 1)) {
		*why = "the domain must be DNS labels of letters, digits and -";
		return -1;
	}
	for (i = 0; i <= len; i++)
		out[i] = (char)tolower((unsigned char)in[i]);
	return 0;
}

int
irp_domain_normalize(const char *in, char *out, size_t outlen,
    const char **why)
{
	const char *dummy;
	size_t len, i;

	if (why == NULL)
		why = &dummy;
	*why = NULL;
	if (in == NULL || (len = strlen(in)) == 0 || len > 253 ||
	    len >= outlen) {
		*why = "a domain has 1 to 253 characters";
		return -1;
	}
	if (!labels_ok(in)) {
		*why = "a domain is DNS labels of letters, digits and -";
		return -1;
	}
	for (i = 0; i <= len; i++)
		out[i] = (char)tolower((unsigned char)in[i]);
	return 0;
}
