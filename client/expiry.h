/*
 * expiry.h - when dchat renews its certificate, and when it tells its
 * user that the certificate ends.
 *
 * dchat run renews once two thirds of the certificate's lifetime have
 * passed: a week-long certificate with more than two days to spare, a
 * year-long one four months before its end, so that a registry that is
 * down for a while costs nothing.  A failed attempt is tried again after
 * RENEW_RETRY_MIN seconds, then twice as long each time up to
 * RENEW_RETRY_MAX, each wait cut by up to a quarter at random so that
 * the peers of a registry that was down do not all come back at once.
 *
 * Peers and the registry refuse an expired certificate, and dchat may run
 * for weeks: once the renewal is overdue (it failed) and the last
 * EXPIRY_WARN_SECS have begun, the user is warned, then once a day, at
 * the moment of expiry, and daily after it.
 */
#ifndef EXPIRY_H
#define EXPIRY_H

#include <stdint.h>
#include <time.h>

#define EXPIRY_WARN_SECS (14 * 86400)
#define EXPIRY_REPEAT_SECS 86400
#define EXPIRY_NEVER ((time_t)INT64_MAX)

#define RENEW_RETRY_MIN 60
#define RENEW_RETRY_MAX 3600

/*
 * When a certificate valid from not_before to not_after is renewed: two
 * thirds into its lifetime (not_before for one that ends before it
 * begins).
 */
time_t renew_due(time_t not_before, time_t not_after);

/*
 * Seconds to wait after the failures'th failed attempt in a row (1 for
 * the first): RENEW_RETRY_MIN doubled each time, at most RENEW_RETRY_MAX,
 * less up to a quarter of it chosen by rnd (random bits).
 */
time_t renew_backoff(int failures, uint32_t rnd);

/*
 * 1 when a warning about a certificate valid until not_after (0: unknown)
 * and due for renewal at renew_at is due at now; *next is when to ask
 * again.
 */
int expiry_due(time_t now, time_t renew_at, time_t not_after, time_t *next);

#endif
