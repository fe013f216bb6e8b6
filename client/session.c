/*
 * session.c - the PeerTLS session state machine (see session.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "frame.h"
#include "irp.h"
#include "msg.h"
#include "rxfile.h"
#include "session.h"

#define IN_CAP (FRAME_HDR + FRAME_MAX)
/* A peer that stops reading can not make us buffer without end. */
#define OUT_MAX (16 * 1024 * 1024)
/* File data is queued, once the queue is empty, up to this much. */
#define OUT_FILE_LOW (512 * 1024)
/* Given to SSL_write at a time, and the buffer of records written. */
#define WRITE_CHUNK (256 * 1024)
/* Read from the socket at a time: four records and their overhead. */
#define READ_AHEAD (4 * (16384 + 256))
#define HANDSHAKE_SECS 15
/*
 * For a caller: anyone can open a connection and send nothing, so the
 * time its slot is held without a word counts.  Two round trips of TLS
 * 1.3 fit easily even on a slow mobile link (a 2 s round trip); an idle
 * connection is gone sooner, and an attacker who keeps opening new ones
 * is bounded by admit.h anyway.
 */
#define HANDSHAKE_IN_SECS 10
#define RING_SECS 120
#define CLOSING_SECS 5
#define TEXT_MAX (64 * 1024)

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
	int mail; /* S/MIME mail handed over (mail.h), not a file */
	char tmp[4200];
	char path[4200];
	int path_made, tmp_made;
	dev_t path_dev, tmp_dev;
	ino_t path_ino, tmp_ino;
	struct rxfile *rx; /* hashes what is written to tmp */
};

struct session {
	struct session *next;
	int id;
	int fd;
	SSL *ssl;
	struct pt_conn pc;
	enum sess_state st;
	const struct session_env *env;
	struct pt_peer peer;
	int identified;	     /* handshake done: peer known (taken once) */
	int restricted;
	int got_caps, got_info;
	unsigned int caps; /* agreed: CAP_* of session.c */
	unsigned char *in;
	size_t inlen;
	unsigned char *out;
	size_t outlen, outoff, outcap;
	int ssl_wants_write;
	int read_more; /* read_in stopped before OpenSSL ran out of input */
	int shut_sent;
	int ever_open;
	time_t deadline; /* for the current state; 0 = none */
	uint64_t next_id;
	struct xfer_out xo;
	struct xfer_in xi;
	struct session_origin origin; /* its strings point to these: */
	char target[256];
	char addr[80];
	/* a contact request (or first message) to send once connected */
	char note[1001];
	int has_note;
};

static void close_now(struct session *s, const char *reason);

const char *
session_state_name(enum sess_state st)
{
	switch (st) {
	case SS_HANDSHAKE: return "handshake";
	case SS_HELLO: return "hello";
	case SS_RINGING: return "ringing";
	case SS_OPEN: return "open";
	case SS_CLOSING: return "closing";
	case SS_DEAD: return "closed";
	}
	return "?";
}

/* Report an event to the user; the object gets "event" and "session". */
static void
emit(struct session *s, enum ev_kind kind, json_t *ev)
{
	if (ev == NULL && (ev = json_object()) == NULL)
		return;
	json_object_set_new(ev, "event", json_string(ev_name(kind)));
	json_object_set_new(ev, "session", json_integer(s->id));
	s->env->event(s->env->arg, s, kind, ev);
}

static json_t *
peer_json(const struct session *s)
{
	const struct pt_peer *p = &s->peer;
	char na[IRP_TIME_LEN];

	irp_time(p->not_after, na);
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}",
	    "userid", p->userid, "name", p->name, "domain", p->domain,
	    "trust", p->trust, "issuer", p->issuer, "serial", p->serial,
	    "fingerprint", p->fingerprint, "not_after", na, "revocation",
	    p->revocation, "revocation_note", p->revocation_note, "code",
	    p->code);
}

struct session *
session_new(int id, int fd, struct peertls *pt,
    const struct session_origin *origin, const struct session_env *env)
{
	struct session *s;

	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->in = malloc(IN_CAP)) == NULL) {
		free(s);
		close(fd);
		return NULL;
	}
	s->id = id;
	s->fd = fd;
	s->env = env;
	s->st = SS_HANDSHAKE;
	s->origin = *origin;
	snprintf(s->target, sizeof(s->target), "%s",
	    origin->target ? origin->target : "");
	snprintf(s->addr, sizeof(s->addr), "%s",
	    origin->addr ? origin->addr : "");
	s->origin.target = s->target;
	s->origin.addr = s->addr;
	s->deadline = time(NULL) + (origin->dialer ? HANDSHAKE_SECS :
	    HANDSHAKE_IN_SECS);
	s->next_id = 1;
	s->xo.fd = s->xi.fd = -1;
	if ((s->ssl = pt_ssl_new(pt, fd, origin->dialer ? s->target : NULL,
	    &s->pc)) == NULL) {
		session_free(s);
		return NULL;
	}
	/*
	 * Read ahead: else OpenSSL reads each record with two read(2)s,
	 * its header and then its body, 26 000 of them for 200 MiB of
	 * file.  Up to READ_AHEAD bytes at a time instead; no more, as
	 * OpenSSL moves what is left in its buffer to the front before
	 * each record it takes from there.  Records read ahead are out of
	 * poll()'s sight: see read_more.
	 */
	SSL_set_read_ahead(s->ssl, 1);
	SSL_set_default_read_buffer_len(s->ssl, READ_AHEAD);
	return s;
}

int
session_id(const struct session *s)
{
	return s->id;
}

enum sess_state
session_state(const struct session *s)
{
	return s->st;
}

const struct session_origin *
session_origin(const struct session *s)
{
	return &s->origin;
}

const struct pt_peer *
session_peer(const struct session *s)
{
	return &s->peer;
}

int
session_take_identified(struct session *s)
{
	int was = s->identified;

	s->identified = 0;
	return was;
}

struct session *
session_next(const struct session *s)
{
	return s->next;
}

void
session_set_next(struct session *s, struct session *next)
{
	s->next = next;
}

/* Remove path if it is still the file we created there. */
static void
unlink_ours(const char *path, dev_t dev, ino_t ino)
{
	struct stat st;

	if (lstat(path, &st) == 0 && st.st_dev == dev && st.st_ino == ino)
		(void)unlink(path);
}

static void
xfer_in_abort(struct session *s)
{
	if (!s->xi.active)
		return;
	rxfile_free(s->xi.rx);
	if (s->xi.fd != -1)
		close(s->xi.fd);
	if (s->xi.tmp_made)
		unlink_ours(s->xi.tmp, s->xi.tmp_dev, s->xi.tmp_ino);
	if (s->xi.path_made)
		unlink_ours(s->xi.path, s->xi.path_dev, s->xi.path_ino);
	memset(&s->xi, 0, sizeof(s->xi));
	s->xi.fd = -1;
}

static void
xfer_out_end(struct session *s)
{
	if (s->xo.fd != -1)
		close(s->xo.fd);
	memset(&s->xo, 0, sizeof(s->xo));
	s->xo.fd = -1;
}

void
session_free(struct session *s)
{
	if (s == NULL)
		return;
	xfer_in_abort(s);
	xfer_out_end(s);
	SSL_free(s->ssl);
	if (s->fd != -1)
		close(s->fd);
	free(s->in);
	free(s->out);
	free(s);
}

/*
 * Room for a frame of up to len payload bytes at the end of the output
 * queue: where its payload goes (queue_commit then adds it), or NULL
 * (the session may have been closed).
 */
static unsigned char *
queue_room(struct session *s, size_t len)
{
	size_t need, ncap;
	unsigned char *n;

	if (len == 0 || len > FRAME_MAX)
		return NULL;
	if (s->outoff > 0 && s->outoff == s->outlen)
		s->outoff = s->outlen = 0;
	need = s->outlen + FRAME_HDR + len;
	if (need - s->outoff > OUT_MAX) {
		close_now(s, "the peer is not reading");
		return NULL;
	}
	if (need > s->outcap && s->outoff > 0) {
		/* Reclaim what was sent before growing. */
		memmove(s->out, s->out + s->outoff, s->outlen - s->outoff);
		s->outlen -= s->outoff;
		s->outoff = 0;
		need = s->outlen + FRAME_HDR + len;
	}
	if (need > s->outcap) {
		ncap = s->outcap ? s->outcap : 64 * 1024;
		while (ncap < need)
			ncap *= 2;
		if ((n = realloc(s->out, ncap)) == NULL)
			return NULL;
		s->out = n;
		s->outcap = ncap;
	}
	return s->out + s->outlen + FRAME_HDR;
}

/* Queue the frame queue_room made room for, with len payload bytes. */
static void
queue_commit(struct session *s, enum frame_kind kind, size_t len)
{
	frame_header(s->out + s->outlen, kind, (uint32_t)len);
	s->outlen += FRAME_HDR + len;
}

/* Append one frame to the output queue. */
static int
queue_frame(struct session *s, enum frame_kind kind, const void *p,
    size_t len)
{
	unsigned char *room;

	if ((room = queue_room(s, len)) == NULL)
		return -1;
	memcpy(room, p, len);
	queue_commit(s, kind, len);
	return 0;
}

/* Queue a JSON message; takes ownership of msg. */
static int
send_msg(struct session *s, json_t *msg)
{
	char *txt;
	int rv;

	if (msg == NULL)
		return -1;
	txt = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	if (txt == NULL)
		return -1;
	rv = queue_frame(s, FRAME_JSON, txt, strlen(txt));
	free(txt);
	return rv;
}

/* Drop the connection at once, telling the user why. */
static void
close_now(struct session *s, const char *reason)
{
	if (s->st == SS_DEAD)
		return;
	if (s->st == SS_CLOSING) {
		/* "closed" was already reported. */
		s->st = SS_DEAD;
		return;
	}
	xfer_in_abort(s);
	xfer_out_end(s);
	if (s->ever_open || s->st == SS_RINGING)
		emit(s, EV_CLOSED, json_pack("{s:s}", "reason", reason));
	else if (s->origin.dialer)
		emit(s, EV_CALL_FAILED, json_pack("{s:s,s:s}", "user",
		    s->target, "reason", reason));
	else
		emit(s, EV_REFUSED, json_pack("{s:s,s:s,s:s}", "peer",
		    s->peer.userid[0] ? s->peer.userid : s->pc.peer_uid[0] ?
		    s->pc.peer_uid : "(unknown)", "addr",
		    s->addr, "reason", reason));
	s->st = SS_DEAD;
}

void
session_close(struct session *s, const char *reason)
{
	if (s->st == SS_DEAD || s->st == SS_CLOSING)
		return;
	if (s->st == SS_HANDSHAKE) {
		close_now(s, reason);
		return;
	}
	(void)send_msg(s, json_pack("{s:s,s:s}", "type", "bye", "reason",
	    reason));
	close_now(s, reason);
	/* Keep the connection until the bye is flushed. */
	s->st = SS_CLOSING;
	s->deadline = time(NULL) + CLOSING_SECS;
}

void
session_evict(struct session *s, const char *reason)
{
	if (s->st != SS_HANDSHAKE)
		return;
	close_now(s, reason);
	/* The newcomer needs the descriptor now, not when the session is
	 * freed at the end of the loop turn. */
	SSL_free(s->ssl);
	s->ssl = NULL;
	if (s->fd != -1)
		close(s->fd);
	s->fd = -1;
}

/* A protocol violation by the peer: say why, then end. */
static void
violation(struct session *s, const char *why)
{
	char r[300];

	snprintf(r, sizeof(r), "protocol error: %s", why);
	session_close(s, r);
}

/*
 * The name is the one in the certificate this session presented: the
 * other side checks the two agree, and a renewal since the handshake may
 * have brought a certificate with another name.
 */
static int
send_user_info(struct session *s)
{
	char name[256];

	if (pt_own_name(s->ssl, name, sizeof(name)) == -1)
		snprintf(name, sizeof(name), "%s", s->env->name);
	return send_msg(s, json_pack("{s:s,s:s,s:s}", "type", "User_Info",
	    "userid", s->env->userid, "name", name));
}

/*
 * The capabilities of docs/peertls.md.  A session uses only those both
 * sides named: the offer's intersected with this table.
 */
enum { CAP_CHAT = 1, CAP_FILE = 2, CAP_CONTACT_REQUEST = 4, CAP_MAIL = 8 };
#define CAP_ALL (CAP_CHAT | CAP_FILE | CAP_CONTACT_REQUEST | CAP_MAIL)
#define CAPS_MAX 16 /* entries a list may have */
#define PEERTLS_VERSION 1

static const char *const cap_names[] = { "chat", "file", "contact_request",
	"mail" };

/* A list of names into a mask; names this peer does not know are left
 * out (a later version may offer more).  -1 when it is no such list. */
static int
caps_parse(json_t *arr, unsigned int *mask)
{
	size_t i, j;
	json_t *v;

	*mask = 0;
	if (!json_is_array(arr) || json_array_size(arr) > CAPS_MAX)
		return -1;
	json_array_foreach(arr, i, v) {
		if (!json_is_string(v))
			return -1;
		for (j = 0; j < sizeof(cap_names) / sizeof(cap_names[0]); j++)
			if (strcmp(json_string_value(v), cap_names[j]) == 0)
				*mask |= 1u << j;
	}
	return 0;
}

static json_t *
caps_json(unsigned int mask)
{
	json_t *arr = json_array();
	size_t j;

	for (j = 0; arr != NULL &&
	    j < sizeof(cap_names) / sizeof(cap_names[0]); j++)
		if (mask & (1u << j))
			json_array_append_new(arr, json_string(cap_names[j]));
	return arr;
}

/*
 * From now on the records OpenSSL writes gather in a buffer of
 * WRITE_CHUNK bytes before they go to the socket: else each record (16
 * KiB at most) is a write(2) of its own, 13 000 of them for 200 MiB of
 * file, each a small packet for both ends to handle.  flush_records
 * empties the buffer whenever the output queue is, so nothing is held
 * back in it.
 */
static int
buffer_records(struct session *s)
{
	BIO *sock = SSL_get_wbio(s->ssl), *buf;

	if ((buf = BIO_new(BIO_f_buffer())) == NULL)
		return -1;
	if (BIO_set_write_buffer_size(buf, WRITE_CHUNK) != 1 ||
	    BIO_up_ref(sock) != 1) {
		BIO_free(buf);
		return -1;
	}
	SSL_set0_wbio(s->ssl, BIO_push(buf, sock));
	return 0;
}

/* Handshake finished: check what we learned, say hello. */
static void
handshake_done(struct session *s)
{
	char err[256];

	if (pt_peer_info(s->ssl, &s->pc, &s->peer, err, sizeof(err)) == -1) {
		close_now(s, err);
		return;
	}
	if (buffer_records(s) == -1) {
		close_now(s, "out of memory");
		return;
	}
	s->restricted = s->pc.restricted;
	s->identified = 1;
	s->st = SS_HELLO;
	s->deadline = time(NULL) + HANDSHAKE_SECS;
	if (s->origin.dialer) {
		if (send_msg(s, json_pack("{s:s,s:i,s:o}", "type",
		    "Capabilities_Offer", "version", PEERTLS_VERSION, "caps",
		    caps_json(s->origin.mail_only ? CAP_MAIL : CAP_ALL))) ==
		    -1 || send_user_info(s) == -1)
			close_now(s, "out of memory");
	}
}

void
session_set_note(struct session *s, const char *note)
{
	snprintf(s->note, sizeof(s->note), "%s", note);
	s->has_note = 1;
}

/* What session_set_note left for the peer, now that it can be said. */
static void
send_note(struct session *s)
{
	char err[256];
	uint64_t id;
	int rc;

	s->has_note = 0;
	rc = s->restricted ?
	    session_contact_request(s, s->note, err, sizeof(err)) :
	    session_chat(s, s->note, &id, err, sizeof(err));
	if (rc == -1)
		emit(s, EV_ERROR, json_pack("{s:s}", "message", err));
}

static void
become_open(struct session *s)
{
	json_t *ev;

	s->st = SS_OPEN;
	s->deadline = 0;
	s->ever_open = 1;
	if (s->has_note)
		send_note(s);
	ev = json_pack("{s:s,s:o,s:b,s:s}", "direction",
	    s->origin.dialer ? "out" : "in", "peer", peer_json(s), "restricted",
	    s->restricted, "addr", s->addr);
	emit(s, EV_CONNECTED, ev);
}

int
session_accept(struct session *s, char *err, size_t errlen)
{
	if (s->st != SS_RINGING) {
		snprintf(err, errlen, "session %d is not ringing", s->id);
		return -1;
	}
	/* What was agreed when the offer came: this peer's answer. */
	if (send_msg(s, json_pack("{s:s,s:o}", "type",
	    "Capabilities_Accept", "caps", caps_json(s->caps))) == -1 ||
	    send_user_info(s) == -1) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	become_open(s);
	return 0;
}

/* User_Info must name the same person as the certificate. */
static int
check_user_info(struct session *s, json_t *m)
{
	const char *uid = json_string_value(json_object_get(m, "userid"));
	const char *name = json_string_value(json_object_get(m, "name"));

	if (uid == NULL || name == NULL) {
		violation(s, "User_Info without userid and name");
		return -1;
	}
	if (strcasecmp(uid, s->peer.userid) != 0 ||
	    strcmp(name, s->peer.name) != 0) {
		session_close(s, "User_Info does not match the certificate");
		return -1;
	}
	return 0;
}

/* The listener's side: what it will use of an offer, or -1 (closed). */
static int
caps_offered(struct session *s, json_t *m)
{
	json_t *ver = json_object_get(m, "version");
	unsigned int offered;

	if (!json_is_integer(ver) ||
	    caps_parse(json_object_get(m, "caps"), &offered) == -1) {
		violation(s, "Capabilities_Offer needs \"version\" (an "
		    "integer) and \"caps\" (a list of names)");
		return -1;
	}
	if (json_integer_value(ver) != PEERTLS_VERSION) {
		char why[96];

		snprintf(why, sizeof(why), "protocol version %"
		    JSON_INTEGER_FORMAT " is not spoken here (only %d)",
		    json_integer_value(ver), PEERTLS_VERSION);
		session_close(s, why);
		return -1;
	}
	if (s->restricted) {
		/* Not on the allow list: a contact request, or nothing. */
		if (!(offered & CAP_CONTACT_REQUEST)) {
			session_close(s, "not on the allow list");
			return -1;
		}
		s->caps = CAP_CONTACT_REQUEST;
		return 0;
	}
	if (offered == CAP_MAIL) {
		/*
		 * A caller that only hands over mail: nobody need pick up,
		 * as for a contact request; the mail is checked as mail.
		 */
		s->caps = CAP_MAIL;
		return 0;
	}
	if (!(offered & CAP_CHAT)) {
		session_close(s, "no common capabilities");
		return -1;
	}
	s->caps = offered & (CAP_CHAT | CAP_FILE | CAP_MAIL);
	return 0;
}

/* The dialer's side: what the listener agreed to, or -1 (closed). */
static int
caps_accepted(struct session *s, json_t *m)
{
	unsigned int agreed;

	if (caps_parse(json_object_get(m, "caps"), &agreed) == -1) {
		violation(s, "Capabilities_Accept without caps");
		return -1;
	}
	if (agreed & ~CAP_ALL || agreed == 0 ||
	    (agreed & CAP_CONTACT_REQUEST && agreed != CAP_CONTACT_REQUEST)) {
		session_close(s, "no common capabilities");
		return -1;
	}
	s->caps = agreed;
	/* The listener admitted us for a contact request only. */
	s->restricted = agreed == CAP_CONTACT_REQUEST;
	return 0;
}

/* Both hellos are in: the dialer is through, the listener rings. */
static void
hello_done(struct session *s)
{
	char err[128];

	if (!s->got_caps || !s->got_info)
		return;
	if (s->origin.dialer) {
		become_open(s);
	} else if (s->restricted || s->caps == CAP_MAIL) {
		/* No ringing: a contact request, or mail, needs no one to
		 * pick up. */
		if (send_msg(s, json_pack("{s:s,s:o}", "type",
		    "Capabilities_Accept", "caps", caps_json(s->caps))) == -1 ||
		    send_user_info(s) == -1) {
			close_now(s, "out of memory");
			return;
		}
		become_open(s);
	} else {
		s->st = SS_RINGING;
		s->deadline = time(NULL) + RING_SECS;
		emit(s, EV_INCOMING, json_pack("{s:o,s:s}", "peer",
		    peer_json(s), "addr", s->addr));
		if (s->env->auto_accept_calls)
			(void)session_accept(s, err, sizeof(err));
	}
}

/* Each hello message comes once. */
static int
again(struct session *s, int seen)
{
	if (seen)
		violation(s, "unexpected message before the session opened");
	return seen;
}

static void
on_user_info(struct session *s, json_t *m)
{
	if (again(s, s->got_info) || check_user_info(s, m) == -1)
		return;
	s->got_info = 1;
	hello_done(s);
}

static void
on_caps_offer(struct session *s, json_t *m)
{
	if (again(s, s->got_caps) || caps_offered(s, m) == -1)
		return;
	s->got_caps = 1;
	hello_done(s);
}

static void
on_caps_accept(struct session *s, json_t *m)
{
	if (again(s, s->got_caps) || caps_accepted(s, m) == -1)
		return;
	s->got_caps = 1;
	hello_done(s);
}

static void
on_bye(struct session *s, json_t *m)
{
	const char *r = json_string_value(json_object_get(m, "reason"));
	char buf[300];

	if (s->st == SS_RINGING) {
		close_now(s, "the caller hung up");
		return;
	}
	snprintf(buf, sizeof(buf), "the peer said bye: %s",
	    r ? r : "no reason");
	close_now(s, buf);
}

/*
 * Mail handed over directly: taken without asking (it is checked as mail
 * once here, mail.h), within MSG_MAIL_SIZE_MAX, into env->mail_tmp.
 */
static void
on_mail_offer(struct session *s, const struct msg_file_offer *fo)
{
	char path[4200], err[256], r[9];
	unsigned char rb[4];
	int i;

	if (!(s->caps & CAP_MAIL) || s->xi.active || s->env->mail_tmp == NULL ||
	    fo->size > MSG_MAIL_SIZE_MAX) {
		(void)send_msg(s, json_pack("{s:s,s:I,s:s}", "type",
		    "file_reject", "id", (json_int_t)fo->id, "reason",
		    s->xi.active		 ? "busy with another file" :
		    fo->size > MSG_MAIL_SIZE_MAX ? "mail too large" :
						   "no mail taken here"));
		return;
	}
	if (s->env->mail_admit != NULL &&
	    s->env->mail_admit(s->env->arg, s->peer.userid) == -1) {
		(void)send_msg(s, json_pack("{s:s,s:I,s:s}", "type",
		    "file_reject", "id", (json_int_t)fo->id, "reason",
		    "too much mail from you just now: leave it at the "
		    "registry"));
		return;
	}
	s->xi.active = 1;
	s->xi.mail = 1;
	s->xi.id = fo->id;
	s->xi.size = fo->size;
	snprintf(s->xi.name, sizeof(s->xi.name), "mail");
	memcpy(s->xi.sha256, fo->sha256, 65);
	s->xi.fd = -1;
	if (RAND_bytes(rb, sizeof(rb)) != 1)
		memset(rb, 0, sizeof(rb));
	for (i = 0; i < 4; i++)
		snprintf(r + 2 * i, 3, "%02x", rb[i]);
	snprintf(path, sizeof(path), "%s/peer-%d-%" PRIu64 "-%s.p7m",
	    s->env->mail_tmp, s->id, fo->id, r);
	if (session_file_accept(s, fo->id, path, err, sizeof(err)) == -1) {
		/* Said no at once: the sender leaves it at the registry. */
		emit(s, EV_ERROR, json_pack("{s:s}", "message", err));
		(void)send_msg(s, json_pack("{s:s,s:I,s:s}", "type",
		    "file_reject", "id", (json_int_t)fo->id, "reason",
		    "mail can not be kept here now"));
		xfer_in_abort(s);
	}
}

static void
on_file_offer(struct session *s, json_t *m)
{
	struct msg_file_offer fo;
	char clean[256], err[256];
	const char *why;

	if (msg_file_offer(m, &fo, &why) == -1) {
		violation(s, why);
		return;
	}
	if (json_is_true(json_object_get(m, "mail"))) {
		on_mail_offer(s, &fo);
		return;
	}
	if (!(s->caps & CAP_FILE) || s->xi.active ||
	    msg_safe_name(fo.name, clean, sizeof(clean)) == -1) {
		(void)send_msg(s, json_pack("{s:s,s:I,s:s}", "type",
		    "file_reject", "id", (json_int_t)fo.id, "reason",
		    s->xi.active ? "busy with another file" :
		    "file name refused"));
		return;
	}
	s->xi.active = 1;
	s->xi.id = fo.id;
	s->xi.size = fo.size;
	snprintf(s->xi.name, sizeof(s->xi.name), "%s", clean);
	memcpy(s->xi.sha256, fo.sha256, 65);
	s->xi.fd = -1;
	emit(s, EV_FILE_OFFER, json_pack("{s:I,s:s,s:I,s:s}", "id",
	    (json_int_t)fo.id, "name", clean, "size", (json_int_t)s->xi.size,
	    "sha256", fo.sha256));
	if (s->env->auto_accept_files &&
	    session_file_accept(s, fo.id, NULL, err, sizeof(err)) == -1)
		emit(s, EV_ERROR, json_pack("{s:s}", "message", err));
}

/* The whole file is there: onto the disk, then over the placeholder. */
static int
xfer_in_store(struct xfer_in *xi)
{
	int fd = xi->fd, e;

	xi->fd = -1; /* closed below, whatever happens */
	if (fsync(fd) == -1) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	if (close(fd) == -1)
		return -1;
	return rename(xi->tmp, xi->path);
}

static void
on_file_done(struct session *s, uint64_t id)
{
	char hex[65], reason[128] = "";
	int ok = 0;

	if (!s->xi.active || !s->xi.accepted || s->xi.id != id) {
		violation(s, "file_done for no transfer");
		return;
	}
	if (rxfile_sha256(s->xi.rx, hex, reason, sizeof(reason)) == 0) {
		if (s->xi.got != s->xi.size)
			snprintf(reason, sizeof(reason), "size mismatch");
		else if (strcmp(hex, s->xi.sha256) != 0)
			snprintf(reason, sizeof(reason), "sha256 mismatch");
		else if (xfer_in_store(&s->xi) == -1)
			snprintf(reason, sizeof(reason), "cannot store: %s",
			    strerror(errno));
		else
			ok = 1;
	}
	if (ok) {
		emit(s, EV_FILE_RECEIVED, json_pack("{s:I,s:s,s:I,s:s,s:b}",
		    "id", (json_int_t)id, "path", s->xi.path, "size",
		    (json_int_t)s->xi.size, "sha256", s->xi.sha256, "mail",
		    s->xi.mail));
		(void)send_msg(s, json_pack("{s:s,s:I,s:b}", "type",
		    "file_received", "id", (json_int_t)id, "ok", 1));
		rxfile_free(s->xi.rx);
		memset(&s->xi, 0, sizeof(s->xi));
		s->xi.fd = -1;
	} else {
		emit(s, EV_FILE_FAILED, json_pack("{s:I,s:s}", "id",
		    (json_int_t)id, "reason", reason));
		(void)send_msg(s, json_pack("{s:s,s:I,s:b,s:s}", "type",
		    "file_received", "id", (json_int_t)id, "ok", 0, "reason",
		    reason));
		xfer_in_abort(s);
	}
}

/* A caller not on the allow list: one request, then done. */
static void
on_contact_request(struct session *s, json_t *m)
{
	const char *note = json_string_value(json_object_get(m, "note"));

	if (note == NULL || strlen(note) > 1000) {
		session_close(s, "only a contact request is allowed");
		return;
	}
	emit(s, EV_CONTACT_REQUEST, json_pack("{s:s,s:s,s:s}", "userid",
	    s->peer.userid, "name", s->peer.name, "note", note));
	session_close(s, "contact request recorded");
}

static void
on_chat(struct session *s, json_t *m)
{
	const char *text = json_string_value(json_object_get(m, "text"));
	uint64_t id;

	if (msg_id(m, &id) == -1 || text == NULL) {
		violation(s, "malformed chat");
		return;
	}
	emit(s, EV_MESSAGE, json_pack("{s:s,s:I,s:s}", "from", s->peer.userid,
	    "id", (json_int_t)id, "text", text));
	(void)send_msg(s, json_pack("{s:s,s:I}", "type", "ack", "id",
	    (json_int_t)id));
}

static void
on_ack(struct session *s, json_t *m)
{
	uint64_t id;

	if (msg_id(m, &id) == -1)
		violation(s, "malformed ack");
	else
		emit(s, EV_ACK, json_pack("{s:I}", "id", (json_int_t)id));
}

static void
on_ping(struct session *s, json_t *m)
{
	uint64_t id;

	if (msg_id(m, &id) == -1)
		violation(s, "malformed ping");
	else
		(void)send_msg(s, json_pack("{s:s,s:I}", "type", "pong", "id",
		    (json_int_t)id));
}

static void
on_pong(struct session *s, json_t *m)
{
	uint64_t id;

	if (msg_id(m, &id) == -1)
		violation(s, "malformed pong");
	else
		emit(s, EV_PONG, json_pack("{s:I}", "id", (json_int_t)id));
}

static void
on_file_accept(struct session *s, json_t *m)
{
	uint64_t id;

	if (msg_id(m, &id) == -1 || !s->xo.active || s->xo.id != id ||
	    s->xo.accepted) {
		violation(s, "file_accept for no offer");
		return;
	}
	s->xo.accepted = 1;
	emit(s, EV_FILE_ACCEPTED, json_pack("{s:I}", "id", (json_int_t)id));
}

static void
on_file_reject(struct session *s, json_t *m)
{
	const char *r = json_string_value(json_object_get(m, "reason"));
	uint64_t id;

	if (msg_id(m, &id) == -1 || !s->xo.active || s->xo.id != id) {
		violation(s, "file_reject for no offer");
		return;
	}
	emit(s, EV_FILE_REJECTED, json_pack("{s:I,s:s}", "id", (json_int_t)id,
	    "reason", r ? r : ""));
	xfer_out_end(s);
}

static void
on_file_done_msg(struct session *s, json_t *m)
{
	uint64_t id;

	if (msg_id(m, &id) == -1)
		violation(s, "malformed file_done");
	else
		on_file_done(s, id);
}

static void
on_file_received(struct session *s, json_t *m)
{
	const char *r = json_string_value(json_object_get(m, "reason"));
	int ok = json_is_true(json_object_get(m, "ok"));
	uint64_t id;

	if (msg_id(m, &id) == -1 || !s->xo.active || s->xo.id != id ||
	    !s->xo.done_sent) {
		violation(s, "file_received for no transfer");
		return;
	}
	emit(s, ok ? EV_FILE_DELIVERED : EV_FILE_FAILED, json_pack("{s:I,s:s}",
	    "id", (json_int_t)id, "reason", ok ? "" : (r ? r : "refused")));
	xfer_out_end(s);
}

/*
 * The messages of docs/peertls.md and when each may come: in the hello
 * (to the listener, to the dialer, or to either, once), while ringing,
 * on an open session, or on the one a restricted caller opened.
 */
enum {
	W_HELLO_L = 1,	/* hello, to the listener */
	W_HELLO_D = 2,	/* hello, to the dialer */
	W_RINGING = 4,
	W_OPEN = 8,	/* an open session, not a restricted caller's */
	W_CONTACT = 16, /* a restricted caller's open session */
	W_MAIL = 32,	/* a caller's that only hands over mail */
};
#define W_HELLO (W_HELLO_L | W_HELLO_D)
#define W_ANY (W_HELLO | W_RINGING | W_OPEN | W_CONTACT | W_MAIL)

static const struct {
	const char *type;
	unsigned int when;
	void (*on)(struct session *, json_t *);
} msg_table[] = {
	{ "Capabilities_Offer", W_HELLO_L, on_caps_offer },
	{ "Capabilities_Accept", W_HELLO_D, on_caps_accept },
	{ "User_Info", W_HELLO, on_user_info },
	{ "bye", W_ANY, on_bye },
	{ "contact_request", W_CONTACT, on_contact_request },
	{ "chat", W_OPEN, on_chat },
	{ "ack", W_OPEN, on_ack },
	{ "ping", W_OPEN, on_ping },
	{ "pong", W_OPEN, on_pong },
	{ "file_offer", W_OPEN | W_MAIL, on_file_offer },
	{ "file_accept", W_OPEN, on_file_accept },
	{ "file_reject", W_OPEN, on_file_reject },
	{ "file_done", W_OPEN | W_MAIL, on_file_done_msg },
	{ "file_received", W_OPEN, on_file_received },
};

/* Where s is, as msg_table's `when` names it. */
static unsigned int
where(const struct session *s)
{
	switch (s->st) {
	case SS_HELLO:
		return s->origin.dialer ? W_HELLO_D : W_HELLO_L;
	case SS_RINGING:
		return W_RINGING;
	case SS_OPEN:
		if (!s->origin.dialer && s->restricted)
			return W_CONTACT;
		/* Nobody picked up a mail-only call: mail, and nothing else. */
		if (!s->origin.dialer && s->caps == CAP_MAIL)
			return W_MAIL;
		return W_OPEN;
	default:
		return 0;
	}
}

/* What a message out of place means, by where it came. */
static void
out_of_place(struct session *s, unsigned int w)
{
	if (w & W_HELLO)
		violation(s, "unexpected message before the session opened");
	else if (w == W_RINGING)
		violation(s, "a message before the call was accepted");
	else if (w == W_CONTACT)
		session_close(s, "only a contact request is allowed");
	else if (w == W_MAIL)
		session_close(s, "only mail is taken on a call nobody picked "
		    "up");
	else
		violation(s, "unknown message type");
}

static void
on_json(struct session *s, const unsigned char *p, size_t len)
{
	const char *type, *why;
	unsigned int w;
	size_t i;
	json_t *m;

	if ((m = msg_decode(p, len, &type, &why)) == NULL) {
		violation(s, why);
		return;
	}
	w = where(s);
	for (i = 0; i < sizeof(msg_table) / sizeof(msg_table[0]); i++)
		if (strcmp(type, msg_table[i].type) == 0)
			break;
	if (i < sizeof(msg_table) / sizeof(msg_table[0]) &&
	    (msg_table[i].when & w))
		msg_table[i].on(s, m);
	else if (w != 0)
		out_of_place(s, w);
	json_decref(m);
}

static void
on_data(struct session *s, const unsigned char *p, size_t len)
{
	const char *why = NULL;
	ssize_t w;

	if (s->st != SS_OPEN || !s->xi.active || !s->xi.accepted)
		why = "file data that was not asked for";
	else if (len > s->xi.size - s->xi.got)
		why = "more file data than offered";
	if (why) {
		violation(s, why);
		return;
	}
	while (len > 0) {
		if ((w = write(s->xi.fd, p, len)) == -1) {
			char r[200];

			if (errno == EINTR)
				continue;
			snprintf(r, sizeof(r), "cannot write the file: %s",
			    strerror(errno));
			(void)send_msg(s, json_pack("{s:s,s:I,s:b,s:s}", "type",
			    "file_received", "id", (json_int_t)s->xi.id, "ok",
			    0, "reason", "receiver could not store it"));
			session_close(s, r);
			return;
		}
		p += w;
		len -= (size_t)w;
		s->xi.got += (uint64_t)w;
	}
	rxfile_wrote(s->xi.rx, s->xi.got);
}

/* Decode and handle every complete frame in the input buffer. */
static void
process_input(struct session *s)
{
	struct frame f;
	const char *why;
	size_t off = 0;
	enum frame_result r;

	while (s->st == SS_HELLO || s->st == SS_OPEN || s->st == SS_RINGING) {
		r = frame_decode(s->in + off, s->inlen - off, FRAME_MAX, &f,
		    &why);
		if (r == FRAME_MORE)
			break;
		if (r == FRAME_BAD) {
			violation(s, why);
			break;
		}
		off += f.used;
		if (f.kind == FRAME_JSON)
			on_json(s, f.payload, f.len);
		else
			on_data(s, f.payload, f.len);
	}
	if (s->st == SS_CLOSING || s->st == SS_DEAD) {
		s->inlen = 0; /* nothing more will be read */
		return;
	}
	if (off > 0) {
		memmove(s->in, s->in + off, s->inlen - off);
		s->inlen -= off;
	}
}

/* An SSL error as the reason a session ended. */
/* "the peer refused the connection", with OpenSSL's or the system's
 * detail when there is one. */
static void
refused_reason(char *buf, size_t len)
{
	int saved = errno;
	char why[PT_REASON_MAX];

	if (ERR_peek_error() != 0) {
		pt_ssl_error(why, sizeof(why), "TLS");
		snprintf(buf, len, "the peer refused the connection (%s)", why);
	} else if (saved != 0)
		snprintf(buf, len, "the peer refused the connection (%s)",
		    strerror(saved));
	else
		snprintf(buf, len, "the peer refused the connection");
}

/* The connection failed with e (SSL_get_error) while doing what. */
static void
ssl_failed(struct session *s, int e, const char *what)
{
	char buf[PT_REASON_MAX + 64];

	if (s->pc.reason[0]) {
		/* Our verify callback said why. */
		ERR_clear_error();
		close_now(s, s->pc.reason);
		return;
	}
	if (s->origin.dialer && s->st == SS_HELLO) {
		/* TLS 1.3: our handshake ended before the listener judged our
		 * certificate.  If it refuses, its alert may be lost to a TCP
		 * reset caused by our first frames, so any failure before it
		 * said a word is its refusal. */
		refused_reason(buf, sizeof(buf));
		close_now(s, buf);
		return;
	}
	if (e == SSL_ERROR_ZERO_RETURN) {
		close_now(s, "the peer closed the connection");
		return;
	}
	if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
		snprintf(buf, sizeof(buf), "%s: connection %s", what,
		    errno ? strerror(errno) : "closed by the peer");
		close_now(s, buf);
		return;
	}
	pt_ssl_error(buf, sizeof(buf), what);
	close_now(s, buf);
}

static void
ssl_fail(struct session *s, int ret, const char *what)
{
	ssl_failed(s, SSL_get_error(s->ssl, ret), what);
}

static void
do_handshake(struct session *s)
{
	int r;

	ERR_clear_error();
	r = SSL_do_handshake(s->ssl);
	if (r == 1) {
		handshake_done(s);
		return;
	}
	switch (SSL_get_error(s->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		s->ssl_wants_write = 0;
		return;
	case SSL_ERROR_WANT_WRITE:
		s->ssl_wants_write = 1;
		return;
	default:
		ssl_fail(s, r, s->origin.dialer ? "TLS handshake with the peer failed"
		    : "TLS handshake with the caller failed");
	}
}

/*
 * Queue file data, read straight into the output queue.  Only once the
 * queue is empty, and then up to OUT_FILE_LOW: topped up after every
 * write instead, it never empties, and reclaiming its sent part before
 * it grows moved (memmove) nearly every byte once more.
 */
static void
pump_file(struct session *s)
{
	unsigned char *room;
	ssize_t r;
	size_t want;

	if (s->outoff < s->outlen)
		return;
	while (s->st == SS_OPEN && s->xo.active && s->xo.accepted &&
	    !s->xo.done_sent && s->outlen - s->outoff < OUT_FILE_LOW) {
		if (s->xo.sent == s->xo.size) {
			if (send_msg(s, json_pack("{s:s,s:I}", "type",
			    "file_done", "id", (json_int_t)s->xo.id)) == 0)
				s->xo.done_sent = 1;
			return;
		}
		want = FRAME_DATA_CHUNK;
		if (s->xo.size - s->xo.sent < want)
			want = (size_t)(s->xo.size - s->xo.sent);
		if ((room = queue_room(s, want)) == NULL)
			return;
		r = read(s->xo.fd, room, want);
		if (r <= 0) {
			if (r == -1 && errno == EINTR)
				continue;
			/* The file shrank under us: the hash will not match,
			 * so stop now and say so. */
			session_close(s, "the file being sent changed");
			return;
		}
		queue_commit(s, FRAME_DATA, (size_t)r);
		s->xo.sent += (uint64_t)r;
	}
}

/* Send what buffer_records holds back; POLLOUT when it must wait. */
static void
flush_records(struct session *s)
{
	BIO *b = SSL_get_wbio(s->ssl);

	if (BIO_wpending(b) <= 0)
		return;
	ERR_clear_error();
	errno = 0;
	if (BIO_flush(b) > 0)
		return;
	if (BIO_should_retry(b)) {
		s->ssl_wants_write = 1;
		return;
	}
	if (s->st == SS_CLOSING) {
		s->st = SS_DEAD;
		return;
	}
	ssl_failed(s, SSL_ERROR_SYSCALL, "sending failed");
}

static void
flush_out(struct session *s)
{
	size_t n;
	int r;

	while (s->outoff < s->outlen) {
		n = s->outlen - s->outoff;
		if (n > WRITE_CHUNK)
			n = WRITE_CHUNK;
		ERR_clear_error();
		errno = 0;
		r = SSL_write(s->ssl, s->out + s->outoff, (int)n);
		if (r > 0) {
			s->outoff += (size_t)r;
			if (s->st == SS_OPEN)
				pump_file(s);
			continue;
		}
		switch (SSL_get_error(s->ssl, r)) {
		case SSL_ERROR_WANT_WRITE:
		case SSL_ERROR_WANT_READ:
			return;
		default:
			if (s->st == SS_CLOSING) {
				s->st = SS_DEAD;
				return;
			}
			ssl_fail(s, r, "sending failed");
			return;
		}
	}
	s->outoff = s->outlen = 0;
	flush_records(s);
}

/*
 * SSL_read failed for good.  A listener's refusal of us (dialer, before
 * it said a word) is ssl_fail's to report; otherwise a partial frame left
 * in the buffer is what the user should hear about.
 */
static void
read_failed(struct session *s, int r)
{
	char buf[128];

	if (s->st == SS_CLOSING) {
		s->st = SS_DEAD;
		return;
	}
	if (s->inlen > 0 && !(s->origin.dialer && s->st == SS_HELLO)) {
		ERR_clear_error();
		snprintf(buf, sizeof(buf), "the connection ended in the middle "
		    "of a frame (%zu bytes of it received)", s->inlen);
		close_now(s, buf);
		return;
	}
	ssl_fail(s, r, "receiving failed");
}

static void
read_in(struct session *s)
{
	int r, rounds;

	/* Bounded, so one busy peer can not starve the others; what OpenSSL
	 * already holds is picked up via session_has_pending(). */
	s->read_more = 0;
	for (rounds = 0; rounds < 64; rounds++) {
		if (s->st != SS_HELLO && s->st != SS_OPEN &&
		    s->st != SS_RINGING && s->st != SS_CLOSING)
			return;
		if (s->inlen == IN_CAP) {
			violation(s, "input buffer full");
			return;
		}
		ERR_clear_error();
		errno = 0;
		r = SSL_read(s->ssl, s->in + s->inlen, (int)(IN_CAP - s->inlen));
		if (r <= 0) {
			switch (SSL_get_error(s->ssl, r)) {
			case SSL_ERROR_WANT_READ:
				return;
			case SSL_ERROR_WANT_WRITE:
				s->ssl_wants_write = 1;
				return;
			default:
				read_failed(s, r);
				return;
			}
		}
		if (s->st == SS_CLOSING)
			continue; /* drain and discard until the peer closes */
		s->inlen += (size_t)r;
		process_input(s);
	}
	/* Not out of input: records read ahead may wait in OpenSSL, where
	 * poll() does not see them. */
	s->read_more = 1;
}

void
session_pollfd(const struct session *s, struct pollfd *p)
{
	p->fd = s->fd;
	p->events = POLLIN;
	p->revents = 0;
	if (s->st == SS_DEAD)
		p->events = 0;
	else if (s->outoff < s->outlen || s->ssl_wants_write)
		p->events |= POLLOUT;
}

int
session_has_pending(struct session *s)
{
	/* SSL_pending, not SSL_has_pending: the latter also counts a
	 * partial record, which would make the loop spin until the rest of
	 * it arrives.  Whole records read ahead are there when read_in
	 * stopped before SSL_read wanted more from the socket. */
	return s->st != SS_DEAD && s->st != SS_HANDSHAKE &&
	    (s->read_more || SSL_pending(s->ssl) > 0);
}

void
session_io(struct session *s, short revents)
{
	s->ssl_wants_write = 0;
	if (s->st == SS_HANDSHAKE)
		do_handshake(s);
	if (s->st == SS_HANDSHAKE || s->st == SS_DEAD)
		return;
	flush_out(s);
	read_in(s);
	if (s->st == SS_OPEN)
		pump_file(s);
	if (s->st != SS_DEAD)
		flush_out(s);
	if (s->st == SS_CLOSING && s->outoff >= s->outlen &&
	    BIO_wpending(SSL_get_wbio(s->ssl)) <= 0 && !s->shut_sent) {
		/* Everything said: close_notify and a TCP half-close, then
		 * wait (bounded) for the peer to close too.  Closing at once
		 * could reset the connection and lose our bye in transit. */
		ERR_clear_error();
		(void)SSL_shutdown(s->ssl);
		(void)shutdown(s->fd, SHUT_WR);
		s->shut_sent = 1;
	}
}

void
session_tick(struct session *s, time_t now)
{
	if (s->deadline == 0 || now < s->deadline)
		return;
	switch (s->st) {
	case SS_HANDSHAKE:
	case SS_HELLO:
		close_now(s, s->origin.dialer ? "the peer did not answer in time" :
		    "the caller did not complete the handshake in time");
		break;
	case SS_RINGING:
		session_close(s, "no answer");
		break;
	case SS_CLOSING:
		s->st = SS_DEAD;
		break;
	default:
		break;
	}
}

static int
need_open(struct session *s, char *err, size_t errlen)
{
	if (s->st != SS_OPEN) {
		snprintf(err, errlen, "session %d is %s, not open", s->id,
		    session_state_name(s->st));
		return -1;
	}
	return 0;
}

int
session_chat(struct session *s, const char *text, uint64_t *id, char *err,
    size_t errlen)
{
	if (need_open(s, err, errlen) == -1)
		return -1;
	if (s->restricted) {
		snprintf(err, errlen, "the peer only accepts a contact request "
		    "from us");
		return -1;
	}
	if (strlen(text) > TEXT_MAX) {
		snprintf(err, errlen, "message too long");
		return -1;
	}
	*id = s->next_id++;
	if (send_msg(s, json_pack("{s:s,s:I,s:s}", "type", "chat", "id",
	    (json_int_t)*id, "text", text)) == -1) {
		snprintf(err, errlen, "cannot send (not UTF-8?)");
		return -1;
	}
	return 0;
}

int
session_ping(struct session *s, uint64_t *id, char *err, size_t errlen)
{
	if (need_open(s, err, errlen) == -1)
		return -1;
	*id = s->next_id++;
	if (send_msg(s, json_pack("{s:s,s:I}", "type", "ping", "id",
	    (json_int_t)*id)) == -1) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

int
session_contact_request(struct session *s, const char *note, char *err,
    size_t errlen)
{
	if (need_open(s, err, errlen) == -1)
		return -1;
	if (strlen(note) > 1000) {
		snprintf(err, errlen, "note too long (1000 bytes at most)");
		return -1;
	}
	if (send_msg(s, json_pack("{s:s,s:s}", "type", "contact_request",
	    "note", note)) == -1) {
		snprintf(err, errlen, "cannot send (not UTF-8?)");
		return -1;
	}
	return 0;
}

/* SHA-256 of an open file, as lower-case hex; rewinds it. */
static int
hash_fd(int fd, char hex[65])
{
	unsigned char buf[65536], md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	EVP_MD_CTX *c;
	ssize_t r;
	int rv = -1;

	if ((c = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1)
		goto err;
	while ((r = read(fd, buf, sizeof(buf))) != 0) {
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1 || EVP_DigestUpdate(c, buf, (size_t)r) != 1)
			goto err;
	}
	if (EVP_DigestFinal_ex(c, md, &mdlen) != 1 || mdlen != 32 ||
	    lseek(fd, 0, SEEK_SET) != 0)
		goto err;
	for (i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	rv = 0;
err:
	EVP_MD_CTX_free(c);
	return rv;
}

/* Offer the file at path: a file, or S/MIME mail (mail.h) when mail. */
static int
offer(struct session *s, const char *path, int mail, uint64_t *id, char *err,
    size_t errlen)
{
	const char *base;
	char hex[65];
	struct stat st;
	int fd;

	if (need_open(s, err, errlen) == -1)
		return -1;
	if (!(s->caps & (mail ? CAP_MAIL : CAP_FILE)) || s->restricted) {
		snprintf(err, errlen, "the peer does not take %s",
		    mail ? "mail directly" : "files");
		return -1;
	}
	if (s->xo.active) {
		snprintf(err, errlen, "a file is already being sent");
		return -1;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1 ||
	    fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    hash_fd(fd, hex) == -1) {
		snprintf(err, errlen, "cannot read %s: %s", path,
		    errno ? strerror(errno) : "not a regular file");
		if (fd != -1)
			close(fd);
		return -1;
	}
	base = strrchr(path, '/');
	base = base ? base + 1 : path;
	*id = s->next_id++;
	s->xo.active = 1;
	s->xo.id = *id;
	s->xo.fd = fd;
	s->xo.size = (uint64_t)st.st_size;
	snprintf(s->xo.name, sizeof(s->xo.name), "%s", base);
	if (send_msg(s, json_pack("{s:s,s:I,s:s,s:I,s:s,s:o*}", "type",
	    "file_offer", "id", (json_int_t)*id, "name", s->xo.name, "size",
	    (json_int_t)s->xo.size, "sha256", hex, "mail",
	    mail ? json_true() : NULL)) == -1) {
		xfer_out_end(s);
		snprintf(err, errlen, "cannot send the offer (name not UTF-8?)");
		return -1;
	}
	return 0;
}

int
session_file_offer(struct session *s, const char *path, uint64_t *id,
    char *err, size_t errlen)
{
	return offer(s, path, 0, id, err, errlen);
}

int
session_mail_offer(struct session *s, const char *path, uint64_t *id,
    char *err, size_t errlen)
{
	return offer(s, path, 1, id, err, errlen);
}

/*
 * Create path, which must not exist yet (nor be a link), mode 0600.
 * Open for reading too: the hash of a received file is taken from what
 * it holds (rxfile.h).
 */
static int
create_new(const char *path, dev_t *dev, ino_t *ino)
{
	struct stat st;
	int fd, e;

	if ((fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) == -1)
		return -1;
	if (fstat(fd, &st) == -1) {
		e = errno;
		close(fd);
		(void)unlink(path);
		errno = e;
		return -1;
	}
	*dev = st.st_dev;
	*ino = st.st_ino;
	return fd;
}

/*
 * Claim path for the incoming file: the placeholder at path and the
 * open path.part (see struct xfer_in).  0; 1 when either name is taken
 * (err says which); -1 on another error (err says why).
 */
static int
reserve(struct xfer_in *xi, const char *path, char *err, size_t errlen)
{
	const char *failed;
	int fd, e;

	if ((size_t)snprintf(xi->path, sizeof(xi->path), "%s", path) >=
	    sizeof(xi->path) || (size_t)snprintf(xi->tmp, sizeof(xi->tmp),
	    "%s.part", path) >= sizeof(xi->tmp)) {
		snprintf(err, errlen, "path too long");
		return -1;
	}
	failed = xi->path;
	if ((fd = create_new(xi->path, &xi->path_dev, &xi->path_ino)) == -1)
		goto err;
	close(fd);
	xi->path_made = 1;
	failed = xi->tmp;
	if ((xi->fd = create_new(xi->tmp, &xi->tmp_dev, &xi->tmp_ino)) == -1)
		goto err;
	xi->tmp_made = 1;
	return 0;
err:
	e = errno;
	if (xi->path_made)
		unlink_ours(xi->path, xi->path_dev, xi->path_ino);
	xi->path_made = 0;
	if (e == EEXIST)
		snprintf(err, errlen, "%s already exists; choose a path where "
		    "neither it nor its .part file exists", failed);
	else
		snprintf(err, errlen, "cannot create %s: %s", failed,
		    strerror(e));
	return e == EEXIST ? 1 : -1;
}

int
session_file_accept(struct session *s, uint64_t id, const char *dest,
    char *err, size_t errlen)
{
	char path[4200];
	int i, r;

	if (need_open(s, err, errlen) == -1)
		return -1;
	if (!s->xi.active || s->xi.id != id || s->xi.accepted) {
		snprintf(err, errlen, "no pending file %" PRIu64, id);
		return -1;
	}
	if (dest) {
		/* The user chose the name: never replace what is there. */
		if (reserve(&s->xi, dest, err, errlen) != 0)
			return -1;
	} else {
		if (mkdir(s->env->downloads, 0700) == -1 && errno != EEXIST) {
			snprintf(err, errlen, "cannot create %s: %s",
			    s->env->downloads, strerror(errno));
			return -1;
		}
		/* The first free one of name, name.1, name.2, ... */
		for (i = 0, r = 1; i < 1000 && r == 1; i++) {
			if (i == 0)
				snprintf(path, sizeof(path), "%s/%s",
				    s->env->downloads, s->xi.name);
			else
				snprintf(path, sizeof(path), "%s/%s.%d",
				    s->env->downloads, s->xi.name, i);
			r = reserve(&s->xi, path, err, errlen);
		}
		if (r == 1)
			snprintf(err, errlen, "no free name for %s in %s",
			    s->xi.name, s->env->downloads);
		if (r != 0)
			return -1;
	}
	if ((s->xi.rx = rxfile_start(s->xi.fd, err, errlen)) == NULL) {
		xfer_in_abort(s);
		return -1;
	}
	s->xi.accepted = 1;
	if (send_msg(s, json_pack("{s:s,s:I}", "type", "file_accept", "id",
	    (json_int_t)id)) == -1) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

int
session_file_reject(struct session *s, uint64_t id, char *err, size_t errlen)
{
	if (need_open(s, err, errlen) == -1)
		return -1;
	if (!s->xi.active || s->xi.id != id) {
		snprintf(err, errlen, "no pending file %" PRIu64, id);
		return -1;
	}
	xfer_in_abort(s);
	(void)send_msg(s, json_pack("{s:s,s:I,s:s}", "type", "file_reject",
	    "id", (json_int_t)id, "reason", "declined"));
	return 0;
}
