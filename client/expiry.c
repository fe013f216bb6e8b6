/*
 * expiry.c - when dchat tells its user that the certificate ends.
 */
#include "expiry.h"

int
expiry_due(time_t now, time_t not_after, time_t *next)
{
	if (not_after == 0) {
		*next = EXPIRY_NEVER;
		return 0;
	}
	if (now < not_after - EXPIRY_WARN_SECS) {
		*next = not_after - EXPIRY_WARN_SECS;
		return 0;
	}
	*next = now + EXPIRY_REPEAT_SECS;
	/* The moment it ends gets its own "has expired". */
	if (now < not_after && not_after < *next)
		*next = not_after;
	return 1;
}
