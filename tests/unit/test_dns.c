/*
 * test_dns.c - the order in which a domain's registries are tried
 * (irp_srv_order, RFC 2782): by priority, then drawn by weight.  The
 * DNS queries themselves are tested against a real name server in
 * tests/integration/test_dns.py, through tests/unit/dnsq.
 *
 * TAP through tap.h.
 */
#include <stdio.h>
#include <string.h>

#include "irp_dns.h"
#include "tap.h"

/* A generator that returns the numbers it is given, in turn. */
struct fixed {
	const uint32_t *v;
	size_t n, i;
};

static uint32_t
fixed_next(void *arg)
{
	struct fixed *f = arg;

	return f->v[f->i++ % f->n];
}

/* xorshift: a reproducible uniform stream for the counting test. */
static uint32_t
xorshift(void *arg)
{
	uint32_t *x = arg;

	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

static void
set(struct irp_srv *s, const char *host, uint16_t prio, uint16_t weight)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->host, sizeof(s->host), "%s", host);
	s->priority = prio;
	s->weight = weight;
	s->port = 4604;
}

static void
test_priority(void)
{
	static const uint32_t zero[] = { 0 };
	struct fixed f = { zero, 1, 0 };
	struct irp_srv s[4];

	set(&s[0], "c", 30, 5);
	set(&s[1], "a", 10, 5);
	set(&s[2], "d", 40, 5);
	set(&s[3], "b", 20, 5);
	irp_srv_order(s, 4, fixed_next, &f);
	checkf(strcmp(s[0].host, "a") == 0 && strcmp(s[1].host, "b") == 0 &&
		strcmp(s[2].host, "c") == 0 && strcmp(s[3].host, "d") == 0,
	    "ascending priority whatever the weights: %s %s %s %s", s[0].host,
	    s[1].host, s[2].host, s[3].host);
}

/* The draw picks the first record whose running sum reaches it. */
static void
test_draw(void)
{
	static const uint32_t picks[] = { 7, 0, 0 };
	struct fixed f = { picks, 3, 0 };
	struct irp_srv s[3];

	set(&s[0], "w5", 10, 5);
	set(&s[1], "w0", 10, 0);
	set(&s[2], "w10", 10, 10);
	/* Zero weight first: w0 (0), w5 (5), w10 (15); 7 falls in w10. */
	irp_srv_order(s, 3, fixed_next, &f);
	checkf(strcmp(s[0].host, "w10") == 0, "a draw of 7 of 15 picks w10: %s",
	    s[0].host);
	checkf(strcmp(s[1].host, "w0") == 0,
	    "then a draw of 0 picks the zero weight: %s", s[1].host);
	checkf(strcmp(s[2].host, "w5") == 0, "and the last is left: %s",
	    s[2].host);
}

/* Over many draws each record comes first in proportion to its weight. */
static void
test_proportion(void)
{
	uint32_t x = 2463534242u;
	struct irp_srv s[3];
	int first[3] = { 0, 0, 0 }, i, k, runs = 20000;

	for (i = 0; i < runs; i++) {
		set(&s[0], "w60", 10, 60);
		set(&s[1], "w30", 10, 30);
		set(&s[2], "w10", 10, 10);
		irp_srv_order(s, 3, xorshift, &x);
		k = s[0].weight == 60 ? 0 : s[0].weight == 30 ? 1 : 2;
		first[k]++;
	}
	/* 60/30/10 % of 20000, within 2 % of the runs (over 9 sigma). */
	checkf(first[0] > 11600 && first[0] < 12400 && first[1] > 5600 &&
		first[1] < 6400 && first[2] > 1600 && first[2] < 2400,
	    "weights 60/30/10 come first %d/%d/%d times of %d", first[0],
	    first[1], first[2], runs);
}

/* All zero: every one may come first. */
static void
test_all_zero(void)
{
	uint32_t x = 88172645u;
	struct irp_srv s[2];
	int a = 0, i;

	for (i = 0; i < 1000; i++) {
		set(&s[0], "a", 1, 0);
		set(&s[1], "b", 1, 0);
		irp_srv_order(s, 2, xorshift, &x);
		a += strcmp(s[0].host, "a") == 0;
	}
	checkf(a > 300 && a < 700,
	    "two of weight 0 share the first place: %d/1000", a);
}

int
main(void)
{
	test_priority();
	test_draw();
	test_proportion();
	test_all_zero();
	/* The default generator runs too. */
	{
		struct irp_srv s[2];

		set(&s[0], "b", 2, 1);
		set(&s[1], "a", 1, 1);
		irp_srv_order(s, 2, NULL, NULL);
		check(strcmp(s[0].host, "a") == 0,
		    "OpenSSL's generator orders too");
	}
	return tap_done();
}
