/*
 * irp_values.c - the shapes of the protocol's values that are not user
 * ids: e-mail addresses, certificate serials and times.  dird, dirctl
 * and dchat read and write them through these, so that the three agree.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "irp.h"

/*
 * The shape the database's users_email_check accepts: checked before the
 * database so that a person reads a plain sentence, not a constraint.
 */
int
irp_email_ok(const char *email)
{
	const char *at = strchr(email, '@');
	size_t len = strlen(email), i;

	if (len < 3 || len > IRP_EMAIL_MAX || at == NULL || at == email ||
	    at[1] == '\0' || strchr(at + 1, '@') != NULL)
		return 0;
	for (i = 0; i < len; i++)
		if (isspace((unsigned char)email[i]))
			return 0;
	return 1;
}

int
irp_serial_normalize(const char *in, char *out, size_t outlen)
{
	size_t i, n = strlen(in);

	if (n == 0 || n > IRP_SERIAL_MAX)
		return -1;
	for (i = 0; i < n; i++)
		if (!isxdigit((unsigned char)in[i]))
			return -1;
	/* "00ab" and "AB" name the same certificate. */
	while (n > 1 && *in == '0') {
		in++;
		n--;
	}
	if (n + 1 > outlen)
		return -1;
	for (i = 0; i <= n; i++)
		out[i] = (char)tolower((unsigned char)in[i]);
	return 0;
}

void
irp_time(long long t, char buf[IRP_TIME_LEN])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, IRP_TIME_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		/* Years past 9999: say the last second a reader can parse. */
		memcpy(buf, "9999-12-31T23:59:59Z", IRP_TIME_LEN);
}

int
irp_time_parse(const char *s, long long *t)
{
	struct tm tm;
	char z = 0;
	int n = 0;

	memset(&tm, 0, sizeof(tm));
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%c%n", &tm.tm_year, &tm.tm_mon,
		&tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &z,
		&n) != 7 ||
	    z != 'Z' || s[n] != '\0' || tm.tm_mon < 1 || tm.tm_mon > 12 ||
	    tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
	    tm.tm_min > 59 || tm.tm_sec > 60)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	*t = (long long)timegm(&tm);
	return 0;
}

int
irp_token_ok(const char *s)
{
	size_t i;

	for (i = 0; i < IRP_TOKEN_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
			(s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[i] == '\0';
}
