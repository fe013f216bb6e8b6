/*
 * expiry.c - when dchat renews its certificate, and when it tells its
 * user that the certificate ends.
 */
#include "expiry.h"

time_t
renew_due(time_t not_before, time_t not_after)
{
	if (not_after <= not_before)
		return not_before;
	return not_before + (not_after - not_before) / 3 * 2;
}

time_t
renew_backoff(int failures, uint32_t rnd)
{
	time_t wait = RENEW_RETRY_MIN;

	while (--failures > 0 && wait < RENEW_RETRY_MAX)
		wait *= 2;
	if (wait > RENEW_RETRY_MAX)
		wait = RENEW_RETRY_MAX;
	return wait - (time_t)(rnd % (uint32_t)(wait / 4 + 1));
}

int
expiry_due(time_t now, time_t renew_at, time_t not_after, time_t *next)
{
	time_t start;

	if (not_after == 0) {
		*next = EXPIRY_NEVER;
		return 0;
	}
	/* Before the renewal is due there is nothing to warn of: it will
	 * be renewed.  After that, only when the last days begin. */
	start = not_after - EXPIRY_WARN_SECS;
	if (start < renew_at)
		start = renew_at;
	if (now < start) {
		*next = start;
		return 0;
	}
	*next = now + EXPIRY_REPEAT_SECS;
	/* The moment it ends gets its own "has expired". */
	if (now < not_after && not_after < *next)
		*next = not_after;
	return 1;
}
