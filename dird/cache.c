/*
 * cache.c - the answer cache and the thread that keeps it correct.
 *
 * The table is set-associative: a key belongs to one set of CACHE_WAYS
 * slots (FNV-1a of the key), and a new entry takes a free or stale slot
 * of its set, else the one filled longest ago.  Memory is bounded by the
 * slot count times CACHE_VALUE_MAX, no eviction list is needed, and a
 * table with twice as many slots as keys holds practically all of them
 * (a direct-mapped one, one slot per key, kept only about 80%).
 *
 * Changes are tracked by a sequence number, not by finding entries: a
 * change of user U bumps `seq` and writes it into changed_at[U mod
 * the user slots] (listed_at[] for a change that only lookups read); an
 * entry is fresh only while the numbers it depends on are not above the
 * ticket it was filled with.  Dropping a user is O(1) however many
 * entries it has; two users sharing a slot only cost extra misses, so
 * there are as many user slots as entry slots: with every online device
 * refreshing its addresses every few minutes, a few thousand user slots
 * shared by a million users would drop each lookup within a second.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "db.h"
#include "log.h"

#define CACHE_WAYS 8
#define CACHE_USER_SLOTS_MIN 4096

struct entry {
	uint64_t hash;
	unsigned char *key;
	size_t keylen;
	unsigned char *val;
	size_t len;
	int64_t user_id;
	uint64_t ticket;
	time_t valid_until;
	enum cache_kind kind;
	uint64_t filled; /* when, in puts: the oldest of a full set goes */
};

struct cache {
	pthread_mutex_t lock;
	struct entry *slots;
	size_t mask;
	int serving;
	uint64_t seq;
	uint64_t flushed_at; /* entries filled before this are void */
	uint64_t *changed_at;	/* any change of the user */
	uint64_t *listed_at;	/* what only lookups read */
	size_t umask;		/* user slots - 1 */
	uint64_t puts;
	unsigned long hits, misses, stores, drops;

	/* the listener */
	pthread_t thread;
	int running;
	int stop_pipe[2];
	char *conninfo;
	int exclusive;	 /* cache = local: hold the only-one claim */
	struct db *first; /* connected by cache_listen, for the thread */
};

static uint64_t
key_hash(const void *key, size_t len)
{
	const unsigned char *p = key;
	uint64_t h = 1469598103934665603ULL;
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

/* user_id's index in changed_at[] and listed_at[]. */
static size_t
user_slot(const struct cache *c, int64_t user_id)
{
	return (uint64_t)user_id & c->umask;
}

/* The first slot of the set of hash h. */
static struct entry *
set_of(struct cache *c, uint64_t h)
{
	return &c->slots[h & c->mask & ~(size_t)(CACHE_WAYS - 1)];
}

/* Whether a `kind` answer of user_id read at ticket still holds. */
static int
user_unchanged(struct cache *c, enum cache_kind kind, int64_t user_id,
    uint64_t ticket)
{
	size_t u = user_slot(c, user_id);

	return c->changed_at[u] <= ticket &&
	    (kind == CACHE_CERT || c->listed_at[u] <= ticket);
}

struct cache *
cache_new(size_t entries)
{
	struct cache *c;
	size_t n = 1;

	while ((n < entries || n < CACHE_WAYS) && n < ((size_t)1 << 24))
		n <<= 1;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->umask = (n > CACHE_USER_SLOTS_MIN ? n : CACHE_USER_SLOTS_MIN) - 1;
	if ((c->slots = calloc(n, sizeof(*c->slots))) == NULL ||
	    (c->changed_at = calloc(c->umask + 1, sizeof(uint64_t))) == NULL ||
	    (c->listed_at = calloc(c->umask + 1, sizeof(uint64_t))) == NULL) {
		free(c->slots);
		free(c->changed_at);
		free(c);
		return NULL;
	}
	c->mask = n - 1;
	c->stop_pipe[0] = c->stop_pipe[1] = -1;
	pthread_mutex_init(&c->lock, NULL);
	return c;
}

static void
entry_clear(struct entry *e)
{
	free(e->key);
	free(e->val);
	memset(e, 0, sizeof(*e));
}

void
cache_free(struct cache *c)
{
	size_t i;

	if (c == NULL)
		return;
	if (c->running) {
		ssize_t n = write(c->stop_pipe[1], "x", 1);

		(void)n; /* a full pipe would wake the thread all the same */
		pthread_join(c->thread, NULL);
	}
	if (c->stop_pipe[0] != -1) {
		close(c->stop_pipe[0]);
		close(c->stop_pipe[1]);
	}
	db_free(c->first);
	for (i = 0; i <= c->mask; i++)
		entry_clear(&c->slots[i]);
	free(c->slots);
	free(c->changed_at);
	free(c->listed_at);
	free(c->conninfo);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

void
cache_serve(struct cache *c, int on)
{
	pthread_mutex_lock(&c->lock);
	c->serving = on;
	c->flushed_at = ++c->seq;
	pthread_mutex_unlock(&c->lock);
}

uint64_t
cache_ticket(struct cache *c)
{
	uint64_t t;

	pthread_mutex_lock(&c->lock);
	t = c->seq;
	pthread_mutex_unlock(&c->lock);
	return t;
}

/* Whether e (in use) may answer for key now; under the lock. */
static int
entry_fresh(struct cache *c, const struct entry *e, uint64_t h,
    const void *key, size_t keylen, time_t now)
{
	return e->val != NULL && e->hash == h && e->keylen == keylen &&
	    memcmp(e->key, key, keylen) == 0 && now < e->valid_until &&
	    e->ticket >= c->flushed_at &&
	    user_unchanged(c, e->kind, e->user_id, e->ticket);
}

int
cache_get(struct cache *c, const void *key, size_t keylen, time_t now,
    void **val, size_t *len)
{
	uint64_t h = key_hash(key, keylen);
	struct entry *set, *e = NULL;
	int rv = 0, i;

	pthread_mutex_lock(&c->lock);
	set = set_of(c, h);
	for (i = 0; i < CACHE_WAYS && e == NULL; i++)
		if (set[i].val != NULL && set[i].hash == h &&
		    set[i].keylen == keylen &&
		    memcmp(set[i].key, key, keylen) == 0)
			e = &set[i];
	if (e != NULL && c->serving && entry_fresh(c, e, h, key, keylen,
	    now) && (*val = malloc(e->len)) != NULL) {
		memcpy(*val, e->val, e->len);
		*len = e->len;
		rv = 1;
	}
	if (rv)
		c->hits++;
	else
		c->misses++;
	pthread_mutex_unlock(&c->lock);
	return rv;
}

/*
 * The slot of its set a new entry for key takes, under the lock: the
 * key's own, else a free one, else one a change made void, else the one
 * filled longest ago (an expired entry is that one soon enough).
 */
static struct entry *
slot_for(struct cache *c, uint64_t h, const void *key, size_t keylen)
{
	struct entry *set = set_of(c, h), *e, *pick = NULL;
	int i;

	for (i = 0; i < CACHE_WAYS; i++) {
		e = &set[i];
		if (e->val != NULL && e->hash == h && e->keylen == keylen &&
		    memcmp(e->key, key, keylen) == 0)
			return e;
	}
	for (i = 0; i < CACHE_WAYS; i++) {
		e = &set[i];
		if (e->val == NULL)
			return e;
		if (e->ticket < c->flushed_at ||
		    !user_unchanged(c, e->kind, e->user_id, e->ticket))
			return e;
		if (pick == NULL || e->filled < pick->filled)
			pick = e;
	}
	return pick;
}

void
cache_put(struct cache *c, enum cache_kind kind, const void *key,
    size_t keylen, int64_t user_id, time_t valid_until, uint64_t ticket,
    const void *val, size_t len)
{
	struct entry old = { 0 }, *e;
	unsigned char *k = NULL, *v = NULL;
	uint64_t h = key_hash(key, keylen);

	if (len == 0 || len > CACHE_VALUE_MAX || keylen == 0)
		return;
	/* Copies made before taking the lock; dropped if refused. */
	if ((k = malloc(keylen)) == NULL || (v = malloc(len)) == NULL)
		goto out;
	memcpy(k, key, keylen);
	memcpy(v, val, len);
	pthread_mutex_lock(&c->lock);
	if (c->serving && ticket >= c->flushed_at &&
	    user_unchanged(c, kind, user_id, ticket)) {
		e = slot_for(c, h, key, keylen);
		old = *e;
		e->hash = h;
		e->key = k;
		e->keylen = keylen;
		e->val = v;
		e->len = len;
		e->user_id = user_id;
		e->ticket = ticket;
		e->valid_until = valid_until;
		e->kind = kind;
		e->filled = ++c->puts;
		k = v = NULL;
		c->stores++;
	}
	pthread_mutex_unlock(&c->lock);
out:
	entry_clear(&old);
	free(k);
	free(v);
}

void
cache_changed(void *arg, int64_t user_id, int listing)
{
	struct cache *c = arg;

	pthread_mutex_lock(&c->lock);
	c->seq++;
	if (user_id == 0)
		c->flushed_at = c->seq;
	else if (listing)
		c->listed_at[user_slot(c, user_id)] = c->seq;
	else
		c->changed_at[user_slot(c, user_id)] = c->seq;
	c->drops++;
	pthread_mutex_unlock(&c->lock);
}

void
cache_stats(struct cache *c, struct cache_stats *st)
{
	pthread_mutex_lock(&c->lock);
	st->hits = c->hits;
	st->misses = c->misses;
	st->stores = c->stores;
	st->drops = c->drops;
	st->serving = c->serving;
	pthread_mutex_unlock(&c->lock);
}

/* ---- the listener ------------------------------------------------------- */

/* Wait up to ms for the database socket (fd >= 0) or the stop pipe. */
static int
wait_for(struct cache *c, int fd, int ms, int *db_ready)
{
	struct pollfd p[2] = { { c->stop_pipe[0], POLLIN, 0 },
		{ fd, POLLIN, 0 } };

	*db_ready = 0;
	if (poll(p, fd >= 0 ? 2 : 1, ms) == -1)
		return errno == EINTR ? 0 : -1;
	if (p[0].revents)
		return 1; /* stop */
	*db_ready = fd >= 0 && p[1].revents != 0;
	return 0;
}

/*
 * Drop what db hears about until the stop pipe is written (1) or the
 * connection is lost (0, de says how).
 */
static int
listen_loop(struct cache *c, struct db *db, struct db_err *de)
{
	int fd, ready;

	for (;;) {
		if ((fd = db_socket(db)) == -1) {
			snprintf(de->msg, sizeof(de->msg), "the change "
			    "listener's connection has no socket");
			return 0;
		}
		if (wait_for(c, fd, 1000, &ready) != 0)
			return 1;
		if (ready && db_read_changes(db, cache_changed, c, de) == -1)
			return 0;
	}
}

/*
 * A listening connection, with the only-one claim when exclusive: 0, or
 * 1 when another dird holds the claim, or -1 (de says why).
 */
static int
listen_connect(struct cache *c, struct db **out, struct db_err *de)
{
	struct db *db;
	int alone = 1;

	*out = NULL;
	if ((db = db_connect(c->conninfo, de)) == NULL)
		return -1;
	if (db_listen_changes(db, de) == -1 ||
	    (c->exclusive && db_listen_alone(db, &alone, de) == -1)) {
		db_free(db);
		return -1;
	}
	if (!alone) {
		db_free(db);
		return 1;
	}
	*out = db;
	return 0;
}

static void *
listen_main(void *arg)
{
	struct cache *c = arg;
	struct db *db = c->first;
	struct db_err de;
	int ready, rv, stop, warned = 0, claim_tries = 0;

	c->first = NULL;
	for (;;) {
		if (db == NULL && (rv = listen_connect(c, &db, &de)) != 0) {
			/*
			 * Our own old connection may hold the claim until
			 * PostgreSQL has ended it: a few tries.  After that,
			 * another dird claimed "local" while we were away:
			 * two caches that do not hear each other's writes.
			 * Stop caching for good.
			 */
			if (rv == 1 && ++claim_tries < 20) {
				if (wait_for(c, -1, 250, &ready) != 0)
					break;
				continue;
			}
			if (rv == 1) {
				log_warnx("cache: another dird with cache = "
				    "local now runs on this database; this one "
				    "stops caching (restart it to cache again)");
				(void)wait_for(c, -1, -1, &ready);
				break;
			}
			if (!warned)
				log_warnx("cache: cannot listen for changes "
				    "(%s); answering from the database only",
				    de.msg);
			warned = 1;
			if (wait_for(c, -1, 1000, &ready) != 0)
				break;
			continue;
		}
		/* Whatever changed while nobody listened is unknown. */
		cache_serve(c, 1);
		log_info("cache: listening for changes%s",
		    warned ? " again" : "");
		claim_tries = 0;
		stop = listen_loop(c, db, &de);
		cache_serve(c, 0);
		db_free(db);
		db = NULL;
		if (stop)
			break;
		log_warnx("cache: %s; answering from the database until it "
		    "is back", de.msg);
		warned = 1;
	}
	return NULL;
}

int
cache_listen(struct cache *c, const char *conninfo, int exclusive,
    char *errbuf, size_t errlen)
{
	struct db_err de;
	int rv, tries;

	c->exclusive = exclusive;
	if ((c->conninfo = strdup(conninfo)) == NULL ||
	    pipe2(c->stop_pipe, O_CLOEXEC) == -1) {
		snprintf(errbuf, errlen, "cache: %s", strerror(errno));
		return -1;
	}
	/*
	 * The first connection here, so that the claim is known at once.
	 * A claim held by a dird that has just died ends when PostgreSQL
	 * notices its connection closed (at once, when the kernel closed
	 * it): wait two seconds for that.
	 */
	for (tries = 0; (rv = listen_connect(c, &c->first, &de)) == 1 &&
	     tries < 20; tries++)
		(void)poll(NULL, 0, 100);
	if (rv != 0) {
		if (rv == -1)
			snprintf(errbuf, errlen, "cache: cannot listen for "
			    "changes: %s", de.msg);
		return rv;
	}
	if ((errno = pthread_create(&c->thread, NULL, listen_main, c)) != 0) {
		snprintf(errbuf, errlen, "cache: cannot start the listener: "
		    "%s", strerror(errno));
		return -1;
	}
	c->running = 1;
	return 0;
}
