/*
 * fuzz_frame.c - the PeerTLS frame decoder, driven the way session.c
 * drives it: decode frames one after another out of one input buffer,
 * under the protocol's limit and under a small one.
 */
#include "frame.h"
#include "fuzz.h"

static void
decode_all(const uint8_t *data, size_t size, size_t max)
{
	const size_t lim = max < FRAME_MAX ? max : FRAME_MAX;
	unsigned char hdr[FRAME_HDR];
	enum frame_result r;
	const char *why;
	struct frame f;
	size_t off = 0;

	for (;;) {
		r = frame_decode(data + off, size - off, max, &f, &why);
		if (r == FRAME_MORE) {
			FUZZ_CHECK(why == NULL);
			return;
		}
		if (r == FRAME_BAD) {
			FUZZ_CHECK(why != NULL && size - off >= FRAME_HDR);
			return;
		}
		FUZZ_CHECK(r == FRAME_OK && why == NULL);
		FUZZ_CHECK(f.kind == FRAME_JSON || f.kind == FRAME_DATA);
		FUZZ_CHECK(f.len >= 1 && f.len <= lim);
		FUZZ_CHECK(f.used == FRAME_HDR + f.len && f.used <= size - off);
		FUZZ_CHECK(f.payload == data + off + FRAME_HDR);
		/* The encoder writes back the header that was read. */
		frame_header(hdr, f.kind, (uint32_t)f.len);
		FUZZ_CHECK(memcmp(hdr, data + off, FRAME_HDR) == 0);
		off += f.used;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	decode_all(data, size, FRAME_MAX);
	decode_all(data, size, 64);
	/* A limit above FRAME_MAX is capped, never trusted. */
	decode_all(data, size, (size_t)-1);
	return 0;
}
