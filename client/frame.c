/*
 * frame.c - PeerTLS frame decoder and header encoder.
 */
#include "frame.h"

enum frame_result
frame_decode(const unsigned char *buf, size_t len, size_t max, struct frame *f,
    const char **why)
{
	uint32_t n;

	*why = NULL;
	if (max > FRAME_MAX)
		max = FRAME_MAX;
	if (len < FRAME_HDR)
		return FRAME_MORE;
	n = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 |
	    (uint32_t)buf[2] << 8 | (uint32_t)buf[3];
	if (buf[4] != FRAME_JSON && buf[4] != FRAME_DATA) {
		*why = "unknown frame kind";
		return FRAME_BAD;
	}
	if (n == 0) {
		*why = "empty frame";
		return FRAME_BAD;
	}
	if (n > max) {
		*why = "frame too large";
		return FRAME_BAD;
	}
	/* n <= FRAME_MAX, so FRAME_HDR + n can not overflow. */
	if (len - FRAME_HDR < n)
		return FRAME_MORE;
	f->kind = (enum frame_kind)buf[4];
	f->payload = buf + FRAME_HDR;
	f->len = n;
	f->used = FRAME_HDR + (size_t)n;
	return FRAME_OK;
}

void
frame_header(unsigned char hdr[FRAME_HDR], enum frame_kind kind, uint32_t len)
{
	hdr[0] = (unsigned char)(len >> 24);
	hdr[1] = (unsigned char)(len >> 16);
	hdr[2] = (unsigned char)(len >> 8);
	hdr[3] = (unsigned char)len;
	hdr[4] = (unsigned char)kind;
}
