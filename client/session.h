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
 * Everything the user should see is reported as an event (event.h): its
 * kind and its JSON object, through env->event (which takes the object).
 */
#ifndef SESSION_H
#define SESSION_H

#include <poll.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "admit.h"
#include "event.h"
#include "peertls.h"

enum sess_state {
	SS_HANDSHAKE,	/* TLS handshake in progress */
	SS_HELLO,	/* waiting for the peer's capabilities and User_Info */
	SS_RINGING,	/* listener: caller known, waiting for our user */
	SS_OPEN,
	SS_CLOSING,	/* bye queued: flush, shut down */
	SS_DEAD,
};

/* Opaque: what the rest of dchat reads of one goes through the
 * accessors below. */
struct session;

struct session_env {
	void (*event)(void *arg, struct session *s, enum ev_kind kind,
	    json_t *ev);
	void *arg;
	const char *userid;	   /* ours, for User_Info */
	const char *name;
	const char *downloads;	   /* where accepted files go */
	const char *mail_tmp;	   /* where mail handed over directly lands */
	/*
	 * Whether mail from userid may be handed over directly now (a
	 * limit per sender); refused, the sender leaves it at the
	 * registry, whose quotas hold.  NULL: always.
	 */
	int (*mail_admit)(void *arg, const char *userid);
	int auto_accept_calls;
	int auto_accept_files;
};

/*
 * How a session came about: given to session_new (copied) and read back
 * with session_origin.
 */
struct session_origin {
	int dialer;	    /* 1: we called; 0: a caller came in */
	const char *target; /* dialer: whom we called ("" for a caller) */
	const char *addr;   /* "ip port" we dialed / that called us */
	int from_cache;	    /* dialer: that address came from the contacts */
	int mail_only;	    /* dialer: only to hand over mail (no ringing) */
	unsigned char src[ADMIT_KEY_LEN]; /* caller: its source (admit.h) */
};

/*
 * A session on the connected socket fd, which it takes (closed on
 * failure too), its TLS from pt: its handshake is started by the first
 * session_io.  NULL when out of memory.
 */
struct session *session_new(int id, int fd, struct peertls *pt,
    const struct session_origin *origin, const struct session_env *env);
/* SSL_free, close and free; emits nothing.  NULL is a no-op. */
void session_free(struct session *s);

/*
 * What the loop and the face read of a session.  The strings and the
 * peer are the session's, valid until it is freed; the peer is all
 * empty until the handshake names it.
 */
int session_id(const struct session *s);
enum sess_state session_state(const struct session *s);
const struct session_origin *session_origin(const struct session *s);
const struct pt_peer *session_peer(const struct session *s);
/* 1 once, the first time it is asked after the handshake named the peer. */
int session_take_identified(struct session *s);

/* The owner's list of sessions (run.c keeps one), linked through them. */
struct session *session_next(const struct session *s);
void session_set_next(struct session *s, struct session *next);

/* What poll() must watch for this session now, into p. */
void session_pollfd(const struct session *s, struct pollfd *p);
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
/*
 * Hand S/MIME mail (mail.h), sealed at path, to the peer directly: a
 * file transfer the peer takes without asking and checks as mail, if it
 * agreed to the "mail" capability.  Confirmed as a file is.
 */
int session_mail_offer(struct session *s, const char *path, uint64_t *id,
    char *err, size_t errlen);
int session_file_accept(struct session *s, uint64_t id, const char *dest,
    char *err, size_t errlen);
int session_file_reject(struct session *s, uint64_t id, char *err,
    size_t errlen);
int session_contact_request(struct session *s, const char *note, char *err,
    size_t errlen);
/*
 * Something to say as soon as the session opens (copied): a contact
 * request when the peer takes only that from us, else a first message.
 * A failure to send it is reported as an error event.
 */
void session_set_note(struct session *s, const char *note);
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
