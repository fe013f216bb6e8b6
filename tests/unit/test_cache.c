/*
 * test_cache.c - the answer cache without a database: what is served,
 * and every reason an entry must not be.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "tap.h"

#define NOW 1000000

/* 1 when key is served with exactly want. */
static int
served(struct cache *c, const char *key, const char *want)
{
	void *val = NULL;
	size_t len = 0;
	int hit = cache_get(c, key, strlen(key), NOW, &val, &len);
	int ok = hit == 1 && len == strlen(want) && memcmp(val, want, len) == 0;

	free(val);
	return ok;
}

static int
missed(struct cache *c, const char *key)
{
	void *val = NULL;
	size_t len = 0;
	int hit = cache_get(c, key, strlen(key), NOW, &val, &len);

	free(val);
	return hit == 0;
}

/* The hash cache.c files a key under (FNV-1a). */
static uint64_t
fnv(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/* A lookup answer. */
static void
put(struct cache *c, const char *key, int64_t user, time_t until,
    uint64_t ticket, const char *val)
{
	cache_put(c, CACHE_LOOKUP, key, strlen(key), user, until, ticket, val,
	    strlen(val));
}

/* A certificate check. */
static void
put_cert(struct cache *c, const char *key, int64_t user, uint64_t ticket,
    const char *val)
{
	cache_put(c, CACHE_CERT, key, strlen(key), user, NOW + 60, ticket, val,
	    strlen(val));
}

int
main(void)
{
	struct cache *c = cache_new(16), *big_c;
	struct cache_stats st;
	static char big[CACHE_VALUE_MAX + 2];
	char k1[8], k2[8], same[8][8];
	uint64_t t;
	int i, j, n;

	if (c == NULL)
		return 2;

	/* Not serving (no listener yet): nothing is kept or given. */
	put(c, "ua", 1, NOW + 60, cache_ticket(c), "A");
	check(missed(c, "ua"), "nothing is kept before the cache serves");

	cache_serve(c, 1);
	put(c, "ua", 1, NOW + 60, cache_ticket(c), "A");
	put(c, "ub", 2, NOW + 60, cache_ticket(c), "B");
	check(served(c, "ua", "A") && served(c, "ub", "B"),
	    "entries are served, each under its own key");
	check(missed(c, "uc"), "an unknown key misses");

	/* Expiry. */
	put(c, "ux", 3, NOW, cache_ticket(c), "X");
	check(missed(c, "ux"), "an entry ends at its deadline");
	put(c, "ux", 3, NOW + 1, cache_ticket(c), "X");
	check(served(c, "ux", "X"), "and lives until then");

	/* A change of user 1 drops its entry and no other. */
	cache_changed(c, 1, 0);
	check(missed(c, "ua"), "a change of the user drops its entry");
	check(served(c, "ub", "B"), "other users' entries stay");

	/* A reader that began before the change may not store. */
	t = cache_ticket(c);
	cache_changed(c, 2, 0);
	put(c, "ub", 2, NOW + 60, t, "old B");
	check(missed(c, "ub"), "a value read before a change is refused");
	t = cache_ticket(c);
	cache_changed(c, 1, 0);
	put(c, "ub", 2, NOW + 60, t, "B2");
	check(served(c, "ub", "B2"), "a change of someone else does not refuse");

	/*
	 * A change to what only lookups read (an address, a new
	 * certificate) drops the user's lookups and keeps its certificate
	 * checks; any other change of the user drops both.
	 */
	put(c, "la", 7, NOW + 60, cache_ticket(c), "L");
	put_cert(c, "ca", 7, cache_ticket(c), "C");
	check(served(c, "la", "L") && served(c, "ca", "C"),
	    "a lookup and a certificate check of one user (own slots)");
	cache_changed(c, 7, 1);
	check(missed(c, "la") && served(c, "ca", "C"),
	    "a listing change drops lookups, not certificate checks");
	t = cache_ticket(c);
	cache_changed(c, 7, 1);
	put(c, "la", 7, NOW + 60, t, "old L");
	put_cert(c, "cb", 7, t, "C2");
	check(missed(c, "la") && served(c, "cb", "C2"),
	    "a lookup read before a listing change is refused, a check not");
	put(c, "la", 7, NOW + 60, cache_ticket(c), "L");
	check(served(c, "la", "L") && served(c, "ca", "C") &&
	    served(c, "cb", "C2"), "three entries of one user");
	cache_changed(c, 7, 0);
	check(missed(c, "la") && missed(c, "ca") && missed(c, "cb"),
	    "any other change of the user drops both kinds");
	t = cache_ticket(c);
	cache_changed(c, 7, 0);
	put_cert(c, "ca", 7, t, "old C");
	check(missed(c, "ca"), "a check read before such a change is refused");

	/* "Any user" (0) drops everything. */
	put(c, "ua", 1, NOW + 60, cache_ticket(c), "A");
	cache_changed(c, 0, 0);
	check(missed(c, "ua") && missed(c, "ub"), "a change of anyone drops all");

	/* Stop and serve again (a new listener): everything went. */
	put(c, "ua", 1, NOW + 60, cache_ticket(c), "A");
	t = cache_ticket(c);
	cache_serve(c, 0);
	check(missed(c, "ua"), "nothing is served while the listener is away");
	cache_serve(c, 1);
	check(missed(c, "ua"), "a new listener starts with nothing");
	put(c, "ua", 1, NOW + 60, t, "A");
	check(missed(c, "ua"), "a value read before the listener came back "
	    "is refused");

	/* Sizes. */
	memset(big, 'x', sizeof(big) - 1);
	put(c, "ubig", 4, NOW + 60, cache_ticket(c), big);
	check(missed(c, "ubig"), "a value over CACHE_VALUE_MAX is not kept");
	big[CACHE_VALUE_MAX] = '\0';
	put(c, "ubig", 4, NOW + 60, cache_ticket(c), big);
	check(served(c, "ubig", big), "a value of CACHE_VALUE_MAX is kept");
	put(c, "uempty", 4, NOW + 60, cache_ticket(c), "");
	check(missed(c, "uempty"), "an empty value is not kept");

	/*
	 * Sets of CACHE_WAYS (8) slots: 8 keys that share a slot of the
	 * 16 (by cache.c's FNV-1a) are all kept, where a direct-mapped
	 * table would keep only the last.
	 */
	cache_changed(c, 0, 0);
	for (i = 0, n = 0; n < 8; i++) {
		snprintf(k1, sizeof(k1), "k%d", i);
		if (fnv(k1) % 16 == 3) {
			memcpy(same[n++], k1, sizeof(k1));
			put(c, k1, 5, NOW + 60, cache_ticket(c), "one");
		}
	}
	for (i = 0, j = 0; i < 8; i++)
		j += served(c, same[i], "one");
	check(j == 8, "8 keys of one slot are all kept in a 16-slot cache");
	/* Many more than fit: the newest stay, the oldest went. */
	for (i = 8; i < 1000; i++) {
		snprintf(k1, sizeof(k1), "k%d", i);
		put(c, k1, 6, NOW + 60, cache_ticket(c), "two");
	}
	for (i = 0, j = 0; i < 1000; i++) {
		snprintf(k1, sizeof(k1), "k%d", i);
		j += served(c, k1, "two") || served(c, k1, "one");
	}
	snprintf(k1, sizeof(k1), "k%d", 0);
	snprintf(k2, sizeof(k2), "k%d", 999);
	check(j > 0 && j <= 16 && missed(c, k1) && served(c, k2, "two"),
	    "a full set gives its oldest slot to a new key; no more than "
	    "16 are kept");

	/*
	 * As many user slots as entries: in a table for 8192, users 1 and
	 * 4097 are told apart (4096 shared slots would drop both).
	 */
	if ((big_c = cache_new(8192)) == NULL)
		return 2;
	cache_serve(big_c, 1);
	put(big_c, "one", 1, NOW + 60, cache_ticket(big_c), "1");
	put(big_c, "other", 4097, NOW + 60, cache_ticket(big_c), "4097");
	cache_changed(big_c, 1, 1);
	check(missed(big_c, "one") && served(big_c, "other", "4097"),
	    "a change of one user leaves a user 4096 ids away");
	cache_free(big_c);

	cache_stats(c, &st);
	check(st.hits > 0 && st.misses > 0 && st.stores > 0 && st.drops == 9 &&
		st.serving == 1, "statistics count hits, misses, stores, drops");
	cache_free(c);
	cache_free(NULL);

	return tap_done();
}
