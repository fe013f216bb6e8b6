/*
 * tap.h - what the small unit test programs print: one TAP line per
 * check, "# " lines of diagnostics, the plan and a count at the end.
 * Included by one .c file each.
 */
#ifndef TAP_H
#define TAP_H

#include <stdarg.h>
#include <stdio.h>

static int tap_n, tap_failed;

/* A test may use either of check and checkf, and diag or not. */
static void check(int, const char *) __attribute__((unused));
static void checkf(int, const char *, ...)
    __attribute__((format(printf, 2, 3), unused));
static void diag(const char *, ...)
    __attribute__((format(printf, 1, 2), unused));

/*
 * Write s as printable ASCII.  A description is one line: a newline in
 * it (case strings hold them) would end the TAP line early and could
 * start a line that reads as a result or a plan.  A '#' is escaped too,
 * as meson takes the first one for the start of a SKIP or TODO directive
 * and does not honour TAP's "\#".  Bytes from 0x80 are written as \xNN
 * as well: a reader splitting lines as Unicode does would break a line
 * at U+0085 or U+2028.  With nl, a newline starts a new "# " line
 * instead, for diagnostics of several lines.
 */
static void
tap_puts(const char *s, int nl)
{
	unsigned char c;

	for (; (c = (unsigned char)*s) != '\0'; s++) {
		if (c == '\n' && nl)
			fputs("\n# ", stdout);
		else if (c == '\n')
			fputs("\\n", stdout);
		else if (c == '\\')
			fputs("\\\\", stdout);
		else if (c < 0x20 || c == '#' || c >= 0x7f)
			printf("\\x%02x", c);
		else
			putchar(c);
	}
}

static void
tap_vcheck(int ok, const char *fmt, va_list ap)
{
	char what[1024];

	/* A longer description is cut; the check itself is not. */
	vsnprintf(what, sizeof(what), fmt, ap);
	printf("%s %d - ", ok ? "ok" : "not ok", ++tap_n);
	tap_puts(what, 0);
	putchar('\n');
	/* Every result is out before a crash of a later check. */
	fflush(stdout);
	tap_failed += !ok;
}

static void
check(int ok, const char *what)
{
	checkf(ok, "%s", what);
}

static void
checkf(int ok, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tap_vcheck(ok, fmt, ap);
	va_end(ap);
}

/* A comment for the reader of the log; it never counts as a result. */
static void
diag(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fputs("# ", stdout);
	tap_puts(msg, 1);
	putchar('\n');
	fflush(stdout);
}

/*
 * Print the plan and the count; main's exit status.  A run that checked
 * nothing fails: a test that stopped before its first check, or whose
 * checks were all left out, must not pass for one that passed them.
 */
static int
tap_done(void)
{
	printf("1..%d\n", tap_n);
	if (tap_n == 0)
		diag("no check was run; that is a failure");
	diag("%d passed, %d failed", tap_n - tap_failed, tap_failed);
	return tap_n == 0 || tap_failed != 0;
}

#endif
