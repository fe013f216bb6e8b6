/*
 * cache.h - answers that dird can give again without the database:
 * lookups (GET /v1/users/X) and the database half of a certificate check.
 *
 * An entry belongs to one user and is dropped when anything of that user
 * it answers from changes (a lookup: the user, certificates, addresses; a
 * certificate check: the user and certificate status, not addresses or
 * the arrival of a new certificate): at once for writes made through
 * this dird (reg.c's reg_changed calls cache_changed after the commit,
 * before the write is acknowledged), and, for any change of the user,
 * through PostgreSQL NOTIFY for writes made elsewhere (dirctl, another
 * dird, SQL), which a thread of this module listens for.  While that listener is not
 * connected, nothing is served from the cache; when it connects again,
 * everything is dropped.  An entry also ends at its own deadline (the
 * first address or certificate in it to expire).
 *
 * A reader that fills an entry takes a ticket before it reads the
 * database; the entry is refused when its user changed after the ticket,
 * so a slow reader can not store what a faster writer already replaced.
 *
 * All functions are thread-safe.
 */
#ifndef CACHE_H
#define CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* What an entry answers, which decides the changes that drop it. */
enum cache_kind {
	CACHE_LOOKUP,	/* GET /v1/users/X */
	CACHE_CERT	/* the database half of a certificate check */
};

/* The largest value kept; bigger answers are always read afresh. */
#define CACHE_VALUE_MAX 16384

struct cache;

struct cache_stats {
	unsigned long hits, misses, stores, drops;
	int serving; /* the listener is connected and entries are used */
};

/*
 * A cache of `entries` slots (rounded up to a power of two), disabled
 * until cache_serve(c, 1) or the listener turns it on.  NULL when out of
 * memory.
 */
struct cache *cache_new(size_t entries);
/* Stops the listener first; NULL is a no-op. */
void cache_free(struct cache *c);

/* Use entries (on = 1) or not; either way everything held is dropped. */
void cache_serve(struct cache *c, int on);

/* Taken before reading what cache_put will store. */
uint64_t cache_ticket(struct cache *c);
/*
 * 1 with a malloc'd copy of the value in *val (the caller frees) and its
 * length in *len; 0 when there is no fresh entry for key (or no memory).
 */
int cache_get(struct cache *c, const void *key, size_t keylen, time_t now,
    void **val, size_t *len);
/*
 * Keep a copy of val, a `kind` answer, under key for user_id until
 * valid_until, unless what it answers from changed since ticket, the
 * cache is not serving, or len is over CACHE_VALUE_MAX.  The slot's
 * previous entry goes.
 */
void cache_put(struct cache *c, enum cache_kind kind, const void *key,
    size_t keylen, int64_t user_id, time_t valid_until, uint64_t ticket,
    const void *val, size_t len);
/*
 * user_id's data changed (0: anyone's); listing = 1 when only what
 * lookups read changed.  A db_change_fn for db_read_changes; reg.c
 * calls it for this process's own writes.
 */
void cache_changed(void *c, int64_t user_id, int listing);

void cache_stats(struct cache *c, struct cache_stats *st);

/*
 * Connect to conninfo, LISTEN for changes, and start the thread that
 * keeps the cache serving while that connection lives (it reconnects
 * every second after a loss).  exclusive (cache = local): also claim to
 * be the only such dird on the database; 1 when another live dird holds
 * the claim (then nothing was started).  -1 with a message on failure.
 */
int cache_listen(struct cache *c, const char *conninfo, int exclusive,
    char *errbuf, size_t errlen) __attribute__((warn_unused_result));

#endif
