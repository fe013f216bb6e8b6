/*
 * test_limit.c - dird's table of failed attempts (dird/limit.c): a key
 * that lands on another's slots adds to that count and never resets it;
 * windows; where keys land depends on the hash key; the key of a source
 * address (IPv4 per address, IPv6 per /64).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "limit.h"
#include "tap.h"

#define MAX 5
#define WINDOW 300
#define T0 1000
#define WIDTH 4096

static const unsigned char KEY[LIMIT_KEY_LEN] = "0123456789abcdef";

static struct limit *
table(size_t width, const unsigned char *key)
{
	char err[200];
	struct limit *l = limit_new(width, MAX, WINDOW, key, err, sizeof(err));

	/* Every test needs its table: without one, end the run failed. */
	if (l == NULL) {
		checkf(0, "limit_new: %s", err);
		exit(tap_done());
	}
	return l;
}

/*
 * A user id that shares the victim's slot in row `row` and no other:
 * found by trying names, which only a caller who knows the hash key can.
 */
static int
collider(struct limit *l, const char *victim, size_t row, char *out,
    size_t len)
{
	size_t v[LIMIT_ROWS], c[LIMIT_ROWS], r;
	int i, others;

	if (limit_where(l, "user", victim, v) == -1)
		return -1;
	for (i = 0; i < 64 * WIDTH; i++) {
		snprintf(out, len, "c%zu-%d@example.org", row, i);
		if (limit_where(l, "user", out, c) == -1)
			return -1;
		for (others = 0, r = 0; r < LIMIT_ROWS; r++)
			others += r != row && c[r] == v[r];
		if (c[row] == v[row] && others == 0)
			return 0;
	}
	return -1;
}

static void
test_args(void)
{
	char err[200];

	err[0] = '\0';
	check(limit_new(0, MAX, WINDOW, KEY, err, sizeof(err)) == NULL &&
	    err[0] != '\0', "a table of width 0 is refused with a reason");
	check(limit_new(WIDTH, 0, WINDOW, KEY, err, sizeof(err)) == NULL,
	    "a limit of 0 is refused");
	check(limit_new(WIDTH, MAX, 0, KEY, err, sizeof(err)) == NULL,
	    "a window of 0 is refused");
}

static void
test_count(void)
{
	struct limit *l = table(WIDTH, KEY);
	int i;

	for (i = 0; i < MAX - 1; i++)
		limit_hit(l, "user", "ann@example.org", T0);
	check(!limit_over(l, "user", "ann@example.org", T0),
	    "max - 1 failures: not over");
	limit_hit(l, "user", "ann@example.org", T0);
	check(limit_over(l, "user", "ann@example.org", T0),
	    "max failures: over");
	check(!limit_over(l, "user", "bob@example.org", T0),
	    "another key is not over");
	check(!limit_over(l, "src", "ann@example.org", T0),
	    "the same value of another kind is another key");
	check(limit_over(l, "user", "ann@example.org", T0 + WINDOW - 1),
	    "still over at the end of the window");
	check(!limit_over(l, "user", "ann@example.org", T0 + WINDOW),
	    "not over once the window is over");
	limit_hit(l, "user", "ann@example.org", T0 + WINDOW);
	check(!limit_over(l, "user", "ann@example.org", T0 + WINDOW),
	    "a failure after the window starts a new count at 1");
	limit_free(l);
}

/* Width 1: every key lands on the same slots, as the worst collision. */
static void
test_all_collide(void)
{
	struct limit *l = table(1, KEY);
	char other[64];
	int i;

	for (i = 0; i < MAX - 1; i++) {
		limit_hit(l, "user", "victim@example.org", T0);
		snprintf(other, sizeof(other), "other%d@example.org", i);
		limit_hit(l, "user", other, T0);
		limit_hit(l, "src", "192.0.2.1", T0);
	}
	check(limit_over(l, "user", "victim@example.org", T0),
	    "width 1: other keys between the victim's failures add to its "
	    "count, they do not reset it");
	check(limit_over(l, "user", "nobody@example.org", T0),
	    "width 1: a collision makes the limit stricter, never looser");
	limit_free(l);
}

/*
 * The attack on the old table: keys chosen to land on the victim's slots
 * failing between its guesses.  Here one for each row, so that every
 * slot the victim has is shared.
 */
static void
test_chosen_colliders(void)
{
	struct limit *l = table(WIDTH, KEY);
	char c[LIMIT_ROWS][64];
	size_t r;
	int i, found = 1, over_early = 0;

	for (r = 0; r < LIMIT_ROWS; r++)
		found &= collider(l, "victim@example.org", r, c[r],
		    sizeof(c[r])) == 0;
	check(found, "a colliding user id found for each row (key known)");
	for (i = 0; i < MAX; i++) {
		over_early |= limit_over(l, "user", "victim@example.org", T0);
		limit_hit(l, "user", "victim@example.org", T0);
		for (r = 0; r < LIMIT_ROWS; r++)
			limit_hit(l, "user", c[r], T0);
	}
	/* Each slot of the victim holds its 5 and one collider's 5. */
	check(over_early, "colliders make the victim's limit stricter");
	check(limit_over(l, "user", "victim@example.org", T0),
	    "colliders between failures do not reset the victim's count");
	for (r = 0; r < LIMIT_ROWS; r++)
		check(limit_over(l, "user", c[r], T0),
		    "a collider's own failures count for it");
	check(!limit_over(l, "user", "bystander@example.org", T0),
	    "a key on none of those slots is not over");
	limit_free(l);
}

/* A random key per table: nobody can tell where a key lands. */
static void
test_keys(void)
{
	struct limit *a = table(WIDTH, KEY), *b = table(WIDTH, KEY);
	struct limit *x = table(WIDTH, NULL), *y = table(WIDTH, NULL);
	size_t ia[LIMIT_ROWS], ib[LIMIT_ROWS], ix[LIMIT_ROWS], iy[LIMIT_ROWS];
	char name[64];
	int i, same = 1, differ = 0, spread = 0;

	for (i = 0; i < 16; i++) {
		snprintf(name, sizeof(name), "u%d@example.org", i);
		if (limit_where(a, "user", name, ia) == -1 ||
		    limit_where(b, "user", name, ib) == -1 ||
		    limit_where(x, "user", name, ix) == -1 ||
		    limit_where(y, "user", name, iy) == -1) {
			check(0, "limit_where");
			goto out;
		}
		same &= memcmp(ia, ib, sizeof(ia)) == 0;
		differ += memcmp(ix, iy, sizeof(ix)) != 0;
		spread += ia[0] != ia[1] || ia[1] != ia[2];
	}
	check(same, "one hash key, one place for every key");
	/* 16 equal places by chance: about 2^-576. */
	check(differ > 0, "two tables with random keys place keys apart");
	check(spread > 0, "the rows are indexed by different hashes");
out:
	limit_free(a);
	limit_free(b);
	limit_free(x);
	limit_free(y);
}

static int
source_is(const char *src, const char *want)
{
	char key[LIMIT_SOURCE_MAX];

	if (limit_source_key(src, key, sizeof(key)) == -1)
		return want == NULL;
	return want != NULL && strcmp(key, want) == 0;
}

static void
test_source_key(void)
{
	char a[LIMIT_SOURCE_MAX], b[LIMIT_SOURCE_MAX], small[8];

	check(limit_source_key("2001:db8::1", a, sizeof(a)) == 0 &&
	    limit_source_key("2001:db8::ffff", b, sizeof(b)) == 0 &&
	    strcmp(a, b) == 0, "IPv6: two sources in one /64 share a key");
	check(limit_source_key("2001:db8:0:1::1", b, sizeof(b)) == 0 &&
	    strcmp(a, b) != 0, "IPv6: another /64, another key");
	check(source_is("2001:db8::1", "2001:db8::/64"), "IPv6 key text");
	check(source_is("2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff",
		  "2001:db8:aaaa:bbbb::/64"), "IPv6: the low 64 bits go");
	check(source_is("2001:DB8:0:0:1::1", "2001:db8::/64"),
	    "IPv6: any spelling of one /64 gives one key");
	check(source_is("::1", "::/64"), "IPv6 loopback");
	check(source_is("192.0.2.1", "192.0.2.1") &&
	    source_is("192.0.2.2", "192.0.2.2"),
	    "IPv4: each address is its own key");
	check(source_is("::ffff:192.0.2.1", "192.0.2.1"),
	    "IPv4-mapped IPv6 is the IPv4 address");
	check(source_is("", ""), "no address: the empty key");
	check(source_is("fe80::1%eth0", "fe80::1%eth0"),
	    "text that is no address is its own key");
	check(limit_source_key("2001:db8::1", small, sizeof(small)) == -1 &&
	    limit_source_key("192.0.2.1", a, 0) == -1,
	    "a buffer too small is refused");
	check(source_is("x" "0123456789012345678901234567890123456789"
		  "0123456789", NULL), "text longer than an address is refused");
}

int
main(void)
{
	test_args();
	test_count();
	test_all_collide();
	test_chosen_colliders();
	test_keys();
	test_source_key();
	return tap_done();
}
