/*
 * frame.h - the PeerTLS framing: u32 length (big-endian) | u8 kind | payload.
 *
 * length counts the payload only.  Kind 'J' carries one JSON message, kind
 * 'D' one chunk of a file stream.  Pure functions, no I/O, so the decoder
 * can be tested (and fuzzed) without sockets.
 */
#ifndef FRAME_H
#define FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FRAME_HDR 5
/* Largest payload accepted: bounds the memory one peer can make us hold. */
#define FRAME_MAX (1024 * 1024)
/* File data is sent in chunks of this size. */
#define FRAME_DATA_CHUNK (64 * 1024)

enum frame_kind {
	FRAME_JSON = 'J',
	FRAME_DATA = 'D',
};

enum frame_result {
	FRAME_BAD = -1,	 /* malformed: end the session, *why says why */
	FRAME_MORE = 0,	 /* a prefix of a valid frame: read more */
	FRAME_OK = 1,	 /* one complete frame */
};

struct frame {
	enum frame_kind kind;
	const unsigned char *payload; /* points into the input buffer */
	size_t len;		      /* payload bytes */
	size_t used;		      /* bytes of input this frame took */
};

/*
 * Decode the first frame of buf[0..len).  max is the largest payload
 * allowed (<= FRAME_MAX).  An oversized length or unknown kind is refused
 * as soon as the header is complete, before any payload is waited for.
 * Zero-length frames are refused: no kind has an empty message.
 */
enum frame_result frame_decode(const unsigned char *buf, size_t len,
    size_t max, struct frame *f, const char **why);

/* Write the 5-byte header of a frame of kind with len payload bytes. */
void frame_header(unsigned char hdr[FRAME_HDR], enum frame_kind kind,
    uint32_t len);

#endif
