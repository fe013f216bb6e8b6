/*
 * session.h - one PeerTLS session: handshake, messages, file transfer.
 *
 * The protocol, after the TLS 1.3 handshake (every message is one 'J'
 * frame holding a JSON object with a "type"):
 *
 *   dialer   -> Capabilities_Offer {"version":1,"caps":["chat","file",
 *               "contact_request"]}, User_Info {"userid","name"}
 *   listener -> (once its user accepts the call, or at once for a
 *               restricted caller) Capabilities_Accept {"caps":[...]},
 *               User_Info.  User_Info must match the certificate's UID
 *               and CN, or the session ends.
 *   either   -> chat {"id","text"}            answered by ack {"id"}
 *               ping {"id"}                   answered by pong {"id"}
 *               file_offer {"id","name","size","sha256"}
 *                   answered by file_accept {"id"} or file_reject {"id",
 *                   "reason"}; after file_accept the offerer sends the
 *                   content as 'D' frames, then file_done {"id"}; the
 *                   receiver checks size and SHA-256 and answers
 *                   file_received {"id","ok","reason"}.  One transfer per
 *                   direction at a time, so 'D' frames need no id.
 *               contact_request {"note"} (only from a restricted caller)
 *               bye {"reason"}
 *
 * Anything else (a bad frame, bad JSON, a message out of order, data that
 * was not asked for) ends the session with a bye naming the reason.
 *
 * Sessions are non-blocking and driven by the caller's poll() loop.
 * Everything the user should see is reported as a JSON event object
 * through env->event (which takes ownership).
 */
#ifndef SESSION_H
#define SESSION_H

#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <jansson.h>
#include <openssl/ssl.h>

#include "admit.h"
#include "peertls.h"

enum sess_state {
	SS_HANDSHAKE,	/* TLS handshake in progress */
	SS_HELLO,	/* waiting for the peer's capabilities and User_Info */
	SS_RINGING,	/* listener: caller known, waiting for our user */
	SS_OPEN,
	SS_CLOSING,	/* bye queued: flush, shut down */
	SS_DEAD,
};

struct session;

struct session_env {
	void (*event)(void *arg, struct session *s, json_t *ev);
	void *arg;
	const char *userid;	   /* ours, for User_Info */
	const char *name;
	const char *downloads;	   /* where accepted files go */
	int auto_accept_calls;
	int auto_accept_files;
};

struct xfer_out {
	int active;
	int accepted;
	int done_sent;
	uint64_t id;
	int fd;
	uint64_t size, sent;
	char name[256];
};

/*
 * A file being received goes to tmp (path + ".part"), then is renamed
 * over an empty placeholder at path.  Both are created by us (O_EXCL), so
 * no existing file, no other transfer and no planted symbolic link is
 * ever written through; made tells which exist, so a failure removes
 * them (and only them: dev and ino say which file is ours).
 */
struct xfer_in {
	int active;
	int accepted;
	uint64_t id;
	int fd;
	uint64_t size, got;
	char name[256];
	char sha256[65];
	char tmp[4200];
	char path[4200];
	int path_made, tmp_made;
	dev_t path_dev, tmp_dev;
	ino_t path_ino, tmp_ino;
	void *md; /* EVP_MD_CTX */
};

struct session {
	struct session *next;
	int id;
	int fd;
	SSL *ssl;
	struct pt_conn pc;
	int dialer;
	enum sess_state st;
	const struct session_env *env;
	struct pt_peer peer;
	int identified;	     /* handshake done: peer known (app clears) */
	int restricted;
	int got_caps, got_info;
	unsigned int caps; /* agreed: CAP_* of session.c */
	unsigned char *in;
	size_t inlen;
	unsigned char *out;
	size_t outlen, outoff, outcap;
	int ssl_wants_write;
	int shut_sent;
	int ever_open;
	time_t deadline; /* for the current state; 0 = none */
	uint64_t next_id;
	struct xfer_out xo;
	struct xfer_in xi;
	/* dialer: whom we called and whether the address came from cache */
	char target[256];
	int from_cache;
	char addr[80]; /* "ip port" we dialed / that called us */
	unsigned char src[ADMIT_KEY_LEN]; /* listener: the caller's source */
	/* a contact request (or first message) to send once connected */
	char note[1001];
	int has_note;
};

struct session *session_new(int id, int fd, SSL *ssl, int dialer,
    const char *target, const struct session_env *env);
/* SSL_free, close and free; emits nothing. */
void session_free(struct session *s);

/* poll() events this session needs now. */
short session_pollevents(struct session *s);
/* Whether OpenSSL holds decrypted bytes poll() can not see. */
int session_has_pending(struct session *s);
/* Drive I/O after poll() reported revents (may be 0). */
void session_io(struct session *s, short revents);
/* Deadlines; call about once per second. */
void session_tick(struct session *s, time_t now);

/* User commands: 0, or -1 with a reason in err. */
int session_accept(struct session *s, char *err, size_t errlen);
int session_chat(struct session *s, const char *text, uint64_t *id,
    char *err, size_t errlen);
int session_ping(struct session *s, uint64_t *id, char *err, size_t errlen);
int session_file_offer(struct session *s, const char *path, uint64_t *id,
    char *err, size_t errlen);
int session_file_accept(struct session *s, uint64_t id, const char *dest,
    char *err, size_t errlen);
int session_file_reject(struct session *s, uint64_t id, char *err,
    size_t errlen);
int session_contact_request(struct session *s, const char *note, char *err,
    size_t errlen);
/* End the session with a bye carrying reason (also: reject a call). */
void session_close(struct session *s, const char *reason);
/*
 * Drop a connection still in its TLS handshake to make room for another:
 * reported as refused with reason, its descriptor closed at once (the
 * session itself stays, dead, until the caller frees it).
 */
void session_evict(struct session *s, const char *reason);

const char *session_state_name(enum sess_state st);

#endif
