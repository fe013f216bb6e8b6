/*
 * limit.h - counts of failed attempts per key (a source address, a user)
 * in a table of fixed size, for the limiter of auth.c.
 *
 * The table is a count-min sketch: LIMIT_ROWS rows of `width` slots, each
 * row indexed by its own part of a keyed hash (SipHash-2-4 with a key
 * drawn at random per process, so nobody outside can choose keys that
 * meet in a slot).  A failure adds one to the key's slot in every row; a
 * slot counts every key that lands on it and is never handed over to
 * another key, so a collision can only add to a count.  A key's count is
 * the smallest of its slots: never less than its own failures.  Each slot
 * has its own window: the first failure after the window is over starts
 * it again at zero.
 */
#ifndef LIMIT_H
#define LIMIT_H

#include <stddef.h>
#include <time.h>

#define LIMIT_ROWS 3
#define LIMIT_KEY_LEN 16	/* SipHash key, bytes */
#define LIMIT_WIDTH_MAX (1u << 24)
#define LIMIT_SOURCE_MAX 64	/* limit_source_key's output with its NUL */

struct limit;

/*
 * A table of LIMIT_ROWS x width slots (1 to LIMIT_WIDTH_MAX) over which
 * `max` failures (1 or more) in `window` seconds (1 or more) are too many.
 * key is the hash key; NULL draws one at random (what dird does: a given
 * key is for tests, which need to know where keys land).  NULL on error,
 * with a sentence in errbuf.
 */
struct limit *limit_new(size_t width, int max, int window,
    const unsigned char *key, char *errbuf, size_t errlen);
void limit_free(struct limit *l);

/* Seconds on a clock that no one can set back: the `now` of the rest. */
time_t limit_now(void);

/*
 * One more failure of the key kind:value (kind names the space of values,
 * e.g. "src" or "user"), at `now` on a clock that does not go back.
 */
void limit_hit(struct limit *l, const char *kind, const char *value,
    time_t now);

/* 1 when kind:value has `max` or more failures in the window at now. */
int limit_over(struct limit *l, const char *kind, const char *value,
    time_t now);

/*
 * The slot of kind:value in each row (what tests need to make keys meet).
 * 0, or -1 when OpenSSL fails.
 */
int limit_where(struct limit *l, const char *kind, const char *value,
    size_t idx[LIMIT_ROWS]);

/*
 * The key of a source address as counted: an IPv4 address (also written
 * as IPv4-mapped IPv6) stands for itself, an IPv6 address for its /64,
 * which one subscriber usually holds whole (e.g. "2001:db8::1" and
 * "2001:db8::ffff" both give "2001:db8::/64").  Text that is no address
 * (an empty source) is its own key.  0, or -1 when out (len bytes) is too
 * small.
 */
int limit_source_key(const char *source, char *out, size_t len);

#endif
