/*
 * msg.h - checks of one decoded PeerTLS message (the payload of a 'J'
 * frame).
 *
 * Pure functions on the bytes and on jansson values: no session, no
 * sockets, no state, so what a peer can send is unit-tested and fuzzed
 * on its own (tests/fuzz/fuzz_msg.c).  session.c decides, by the state
 * of the session, what a valid message means.  Thread-safe.
 */
#ifndef MSG_H
#define MSG_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* The largest file a peer may offer. */
#define MSG_FILE_SIZE_MAX ((uint64_t)1 << 40)
/* The largest S/MIME mail a peer may hand over directly (mail.h). */
#define MSG_MAIL_SIZE_MAX ((uint64_t)16 * 1024 * 1024)

/*
 * Parse a 'J' payload: one JSON object (no duplicate keys) with a string
 * member "type".  Returns a new reference (json_decref it) and points
 * *type into it; NULL with a reason in *why when the peer broke the
 * protocol.
 */
json_t *msg_decode(const unsigned char *p, size_t len, const char **type,
    const char **why) __attribute__((warn_unused_result));

/* The "id" of message m: an integer of at least 1.  0 or -1. */
int msg_id(json_t *m, uint64_t *id) __attribute__((warn_unused_result));

/*
 * Reduce a file name from a peer to a safe base name in out[len]: the
 * part after the last '/', not empty, not starting with '.', control
 * characters and '\' replaced by '_'.  0, or -1 when it can not be made
 * safe (or does not fit).
 */
int msg_safe_name(const char *in, char *out, size_t len)
    __attribute__((warn_unused_result));

/* The fields of a file_offer; the strings are borrowed from the message. */
struct msg_file_offer {
	uint64_t id;
	const char *name;   /* as sent: pass it through msg_safe_name */
	const char *sha256; /* 64 lower-case hex digits */
	uint64_t size;	    /* at most MSG_FILE_SIZE_MAX */
};

/*
 * Check a file_offer {"id","name","size","sha256"} and fill fo.  -1 with
 * a reason in *why when it is malformed (a protocol violation).
 */
int msg_file_offer(json_t *m, struct msg_file_offer *fo, const char **why)
    __attribute__((warn_unused_result));

#endif
