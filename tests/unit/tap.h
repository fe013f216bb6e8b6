/*
 * tap.h - what the small unit test programs print: one TAP line per
 * check, the plan at the end.  Included by one .c file each.
 */
#ifndef TAP_H
#define TAP_H

#include <stdio.h>

static int tap_n, tap_failed;

static void
check(int ok, const char *what)
{
	printf("%s %d - %s\n", ok ? "ok" : "not ok", ++tap_n, what);
	tap_failed += !ok;
}

/* Print the plan; main's exit status. */
static int
tap_done(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed != 0;
}

#endif
