/*
 * test_frame.c - the PeerTLS frame decoder, table-driven.
 *
 * Every case is an input byte string and the expected outcome: a complete
 * frame (kind, payload length, bytes used), "need more", or a refusal.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "tap.h"

struct tcase {
	const char *name;
	const unsigned char *in;
	size_t len;
	size_t max;
	enum frame_result want;
	char kind;	 /* FRAME_OK: expected kind */
	size_t plen;	 /* FRAME_OK: expected payload length */
	const char *why; /* FRAME_BAD: expected reason */
};

static const unsigned char j_ok[] = { 0, 0, 0, 2, 'J', '{', '}' };
static const unsigned char j_ok_trailing[] = { 0, 0, 0, 2, 'J', '{', '}', 0,
	0, 0, 1, 'D', 'x' };
static const unsigned char d_one[] = { 0, 0, 0, 1, 'D', 0xff };
static const unsigned char hdr_only[] = { 0, 0, 0, 2, 'J' };
static const unsigned char short_payload[] = { 0, 0, 0, 3, 'J', '{', '}' };
static const unsigned char short_hdr[] = { 0, 0, 0 };
static const unsigned char zero_len[] = { 0, 0, 0, 0, 'J' };
static const unsigned char zero_len_d[] = { 0, 0, 0, 0, 'D' };
static const unsigned char unknown[] = { 0, 0, 0, 1, 'X', 'a' };
static const unsigned char kind_nul[] = { 0, 0, 0, 1, 0, 'a' };
static const unsigned char lower_j[] = { 0, 0, 0, 1, 'j', 'a' };
static const unsigned char huge[] = { 0xff, 0xff, 0xff, 0xff, 'D' };
static const unsigned char over_max[] = { 0x00, 0x10, 0x00, 0x01, 'D' };
static const unsigned char at_max_hdr[] = { 0x00, 0x10, 0x00, 0x00, 'D' };
static const unsigned char over_small[] = { 0, 0, 0, 9, 'J', '1' };
static const unsigned char sign_bit[] = { 0x80, 0, 0, 1, 'J', '{' };

static const struct tcase cases[] = {
	{ "json frame", j_ok, sizeof(j_ok), FRAME_MAX, FRAME_OK, 'J', 2, 0 },
	{ "json frame followed by another", j_ok_trailing,
	    sizeof(j_ok_trailing), FRAME_MAX, FRAME_OK, 'J', 2, 0 },
	{ "one data byte", d_one, sizeof(d_one), FRAME_MAX, FRAME_OK, 'D', 1,
	    0 },
	{ "empty input", j_ok, 0, FRAME_MAX, FRAME_MORE, 0, 0, 0 },
	{ "truncated header", short_hdr, sizeof(short_hdr), FRAME_MAX,
	    FRAME_MORE, 0, 0, 0 },
	{ "header without payload", hdr_only, sizeof(hdr_only), FRAME_MAX,
	    FRAME_MORE, 0, 0, 0 },
	{ "truncated payload", short_payload, sizeof(short_payload),
	    FRAME_MAX, FRAME_MORE, 0, 0, 0 },
	{ "zero length json", zero_len, sizeof(zero_len), FRAME_MAX,
	    FRAME_BAD, 0, 0, "empty frame" },
	{ "zero length data", zero_len_d, sizeof(zero_len_d), FRAME_MAX,
	    FRAME_BAD, 0, 0, "empty frame" },
	{ "unknown kind", unknown, sizeof(unknown), FRAME_MAX, FRAME_BAD, 0,
	    0, "unknown frame kind" },
	{ "kind NUL", kind_nul, sizeof(kind_nul), FRAME_MAX, FRAME_BAD, 0, 0,
	    "unknown frame kind" },
	{ "kind is case-sensitive", lower_j, sizeof(lower_j), FRAME_MAX,
	    FRAME_BAD, 0, 0, "unknown frame kind" },
	{ "length 2^32-1 refused at once", huge, sizeof(huge), FRAME_MAX,
	    FRAME_BAD, 0, 0, "frame too large" },
	{ "length FRAME_MAX+1", over_max, sizeof(over_max), FRAME_MAX,
	    FRAME_BAD, 0, 0, "frame too large" },
	{ "length FRAME_MAX waits for payload", at_max_hdr,
	    sizeof(at_max_hdr), FRAME_MAX, FRAME_MORE, 0, 0, 0 },
	{ "max above FRAME_MAX is clamped", over_max, sizeof(over_max),
	    (size_t)FRAME_MAX * 4, FRAME_BAD, 0, 0, "frame too large" },
	{ "caller's smaller limit", over_small, sizeof(over_small), 8,
	    FRAME_BAD, 0, 0, "frame too large" },
	{ "length with the sign bit", sign_bit, sizeof(sign_bit), FRAME_MAX,
	    FRAME_BAD, 0, 0, "frame too large" },
};

/* Decode one case and compare everything the outcome promises. */
static void
check_case(const struct tcase *c)
{
	struct frame f;
	const char *why = NULL;
	enum frame_result r;
	int ok;

	memset(&f, 0, sizeof(f));
	r = frame_decode(c->in, c->len, c->max, &f, &why);
	ok = r == c->want;
	if (ok && r == FRAME_OK)
		ok = (int)f.kind == c->kind && f.len == c->plen &&
		    f.used == FRAME_HDR + c->plen &&
		    f.payload == c->in + FRAME_HDR;
	if (ok && r == FRAME_BAD)
		ok = why != NULL && strcmp(why, c->why) == 0;
	check(ok, c->name);
	if (!ok)
		diag("got %d (%s), kind 0x%02x, len %zu, used %zu", (int)r,
		    why != NULL ? why : "no reason", (unsigned int)f.kind,
		    f.len, f.used);
}

int
main(void)
{
	unsigned char hdr[FRAME_HDR], *big;
	struct frame f;
	const char *why;
	enum frame_result r;
	size_t i;
	int ok;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_case(&cases[i]);

	/* Every strict prefix of a valid frame asks for more, never more. */
	ok = 1;
	for (i = 0; i < sizeof(j_ok); i++)
		ok &= frame_decode(j_ok, i, FRAME_MAX, &f, &why) == FRAME_MORE;
	check(ok, "every prefix needs more");

	/* The encoder round-trips through the decoder at the size limit. */
	if ((big = calloc(1, FRAME_HDR + FRAME_MAX)) == NULL)
		return 1;
	frame_header(big, FRAME_DATA, FRAME_MAX);
	r = frame_decode(big, FRAME_HDR + FRAME_MAX, FRAME_MAX, &f, &why);
	check(r == FRAME_OK && f.kind == FRAME_DATA && f.len == FRAME_MAX &&
	    f.used == FRAME_HDR + FRAME_MAX && f.payload == big + FRAME_HDR,
	    "FRAME_MAX payload round trip");
	free(big);

	frame_header(hdr, FRAME_JSON, 0x01020304);
	check(hdr[0] == 1 && hdr[1] == 2 && hdr[2] == 3 && hdr[3] == 4 &&
	    hdr[4] == 'J', "header is big-endian");

	return tap_done();
}
