/*
 * expiry.h - when dchat tells its user that the certificate ends.
 *
 * Peers and the registry refuse an expired certificate, and dchat may run
 * for weeks: the warning comes when the last EXPIRY_WARN_SECS begin, then
 * once a day, at the moment of expiry, and daily after it.
 */
#ifndef EXPIRY_H
#define EXPIRY_H

#include <stdint.h>
#include <time.h>

#define EXPIRY_WARN_SECS (14 * 86400)
#define EXPIRY_REPEAT_SECS 86400
#define EXPIRY_NEVER ((time_t)INT64_MAX)

/*
 * 1 when a warning about a certificate valid until not_after (0: unknown)
 * is due at now; *next is when to ask again.
 */
int expiry_due(time_t now, time_t not_after, time_t *next);

#endif
