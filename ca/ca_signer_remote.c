/*
 * ca_signer_remote.c - a signer in another process, over a stream socket
 * (ca_signer.h describes the messages), and the loop that process runs.
 *
 * The two ends share several sockets ("channels"), each carrying one
 * request at a time under its own lock: threads that sign at once take
 * different channels, and the signer, woken once, answers every request
 * waiting on any of them.  With a single channel every signature would
 * pay for two wake-ups while the other threads wait behind its lock,
 * which on a busy machine halves the rate of enrolments.  A request
 * waits at most CA_SIGNER_WAIT_MS for its answer.  Once the other end
 * is gone or out of step on any channel, every later request fails at
 * once with CA_ERR_UNAVAILABLE: the streams can not be trusted to line
 * up again.
 */
#include <sys/socket.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ca_internal.h"

/* How long an answer may take: a signature, even of a long CRL, is quick. */
#define CA_SIGNER_WAIT_MS 60000
#define CA_SPKI_MAX 8192

/* An ERROR's payload: the code, then the message without its NUL. */
#define ERRMSG_MAX (sizeof(((struct ca_err *)0)->msg) - 1)

struct channel {
	int fd;
	pthread_mutex_t lock; /* one request at a time on fd */
};

struct remote {
	struct channel ch[CA_SIGNER_CHANNELS_MAX];
	size_t n;
	unsigned int next;     /* where the next request starts looking */
	pthread_mutex_t state; /* guards dead and why */
	int dead;	       /* gone or out of step */
	char why[128];	       /* ... and how */
};

/* Write all of buf; MSG_NOSIGNAL, as a library must not raise SIGPIPE. */
static int
send_all(int fd, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Read len bytes, waiting at most ms milliseconds for each part (-1:
 * forever).  0: done; 1: the other end closed before the first byte;
 * -1: errno says (ETIMEDOUT, or EPIPE for a message cut short).
 */
static int
recv_all(int fd, void *buf, size_t len, int ms)
{
	unsigned char *p = buf;
	struct pollfd pfd = { fd, POLLIN, 0 };
	size_t got = 0;
	ssize_t n;
	int r;

	while (got < len) {
		if ((r = poll(&pfd, 1, ms)) == -1 && errno == EINTR)
			continue;
		if (r == -1)
			return -1;
		if (r == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		n = recv(fd, p + got, len - got, 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (n == 0) {
			if (got == 0)
				return 1;
			errno = EPIPE;
			return -1;
		}
		got += (size_t)n;
	}
	return 0;
}

static int
msg_send(int fd, enum ca_signer_msg type, const void *a, size_t alen,
    const void *b, size_t blen)
{
	struct ca_signer_hdr h;

	h.type = (unsigned int)type;
	h.len = (unsigned int)(alen + blen);
	if (send_all(fd, &h, sizeof(h)) == -1 ||
	    (alen > 0 && send_all(fd, a, alen) == -1) ||
	    (blen > 0 && send_all(fd, b, blen) == -1))
		return -1;
	return 0;
}

static int
send_error(int fd, const struct ca_err *e)
{
	uint32_t code = (uint32_t)e->code;
	size_t n = strnlen(e->msg, ERRMSG_MAX);

	return msg_send(fd, CA_SIGNER_ERROR, &code, sizeof(code), e->msg, n);
}

int
ca_signer_refuse(int fd, const struct ca_err *why)
{
	return send_error(fd, why);
}

/* An ERROR's payload (len bytes, read already) as *err. */
static void
error_from(const unsigned char *buf, size_t len, struct ca_err *err)
{
	uint32_t code;
	size_t n = len - sizeof(code);

	memcpy(&code, buf, sizeof(code));
	if (code == CA_ERR_NONE || code > CA_ERR_UNAVAILABLE)
		code = CA_ERR_CRYPTO;
	if (err == NULL)
		return;
	err->code = (enum ca_errcode)code;
	memcpy(err->msg, buf + sizeof(code), n);
	err->msg[n] = '\0';
}

/* ---- the serving end ---------------------------------------------------- */

/* Read and answer one request: 0, 1 at the end of the stream, or -1. */
static int
serve_one(struct ca_signer *s, int fd, struct ca_err *err)
{
	unsigned char sig[CA_SIG_MAX], *tbs = NULL;
	struct ca_signer_hdr h;
	struct ca_err e;
	size_t sig_len;
	int r, rv = -1;

	if ((r = recv_all(fd, &h, sizeof(h), -1)) == 1)
		return 1;
	if (r == -1) {
		ca_err_sys(err, CA_ERR_UNAVAILABLE, "reading a request");
		return -1;
	}
	if (h.type < CA_SIGNER_SIGN_CERT || h.type > CA_SIGNER_SIGN_OCSP ||
	    h.len == 0 || h.len > CA_TBS_MAX) {
		ca_err_set(err, CA_ERR_INVALID,
		    "a malformed request (type %u, "
		    "%u bytes): not answering again",
		    h.type, h.len);
		(void)send_error(fd, err);
		return -1;
	}
	if ((tbs = malloc(h.len)) == NULL) {
		ca_err_sys(err, CA_ERR_CRYPTO, "malloc");
		(void)send_error(fd, err);
		return -1;
	}
	/* The rest follows the header at once, or the asker is broken. */
	if (recv_all(fd, tbs, h.len, CA_SIGNER_WAIT_MS) != 0) {
		ca_err_set(err, CA_ERR_INVALID,
		    "a request cut short (%u bytes "
		    "announced)",
		    h.len);
		goto err;
	}
	if (ca_signer_sign(s,
		(enum ca_tbs)(h.type - CA_SIGNER_SIGN_CERT + CA_TBS_CERT), tbs,
		h.len, sig, &sig_len, &e) == -1)
		r = send_error(fd, &e);
	else
		r = msg_send(fd, CA_SIGNER_SIG, sig, sig_len, NULL, 0);
	if (r == -1) {
		ca_err_sys(err, CA_ERR_UNAVAILABLE, "answering a request");
		goto err;
	}
	rv = 0;
err:
	free(tbs);
	return rv;
}

int
ca_signer_serve_many(struct ca_signer *s, const int *fds, size_t n,
    struct ca_err *err)
{
	struct pollfd pfd[CA_SIGNER_CHANNELS_MAX];
	const unsigned char *spki;
	size_t spki_len, i, open = n;
	int r;

	ca_err_clear(err);
	if (n == 0 || n > CA_SIGNER_CHANNELS_MAX) {
		ca_err_set(err, CA_ERR_INVALID, "1 to %d channels",
		    CA_SIGNER_CHANNELS_MAX);
		return -1;
	}
	spki = ca_signer_spki(s, &spki_len);
	for (i = 0; i < n; i++) {
		if (msg_send(fds[i], CA_SIGNER_READY, spki, spki_len, NULL,
			0) == -1) {
			ca_err_sys(err, CA_ERR_UNAVAILABLE, "saying ready");
			return -1;
		}
		pfd[i].fd = fds[i];
		pfd[i].events = POLLIN;
	}
	/* Until the asking end has closed every channel. */
	while (open > 0) {
		if (poll(pfd, n, -1) == -1) {
			if (errno == EINTR)
				continue;
			ca_err_sys(err, CA_ERR_UNAVAILABLE, "poll");
			return -1;
		}
		for (i = 0; i < n; i++) {
			if (pfd[i].fd < 0 || pfd[i].revents == 0)
				continue;
			if ((r = serve_one(s, pfd[i].fd, err)) == -1)
				return -1;
			if (r == 1) {
				/* A negative fd is skipped by poll. */
				pfd[i].fd = -1;
				open--;
			}
		}
	}
	return 0;
}

int
ca_signer_serve(struct ca_signer *s, int fd, struct ca_err *err)
{
	return ca_signer_serve_many(s, &fd, 1, err);
}

/* ---- the asking end ----------------------------------------------------- */

/* The other end is no use any more: say so now and on every later call. */
static void
remote_dead(struct remote *rm, struct ca_err *err, const char *why)
{
	char said[sizeof(rm->why)];

	pthread_mutex_lock(&rm->state);
	if (!rm->dead)
		snprintf(rm->why, sizeof(rm->why), "%s", why);
	rm->dead = 1;
	memcpy(said, rm->why, sizeof(said));
	pthread_mutex_unlock(&rm->state);
	ca_err_set(err, CA_ERR_UNAVAILABLE,
	    "the CA signer process is not "
	    "answering (%s)",
	    said);
}

/* Whether the other end was found gone or out of step. */
static int
remote_is_dead(struct remote *rm)
{
	int dead;

	pthread_mutex_lock(&rm->state);
	dead = rm->dead;
	pthread_mutex_unlock(&rm->state);
	return dead;
}

/* Why a recv_all or send_all failed, in words. */
static const char *
io_why(int r)
{
	if (r == 1 || errno == EPIPE || errno == ECONNRESET)
		return "it has exited";
	if (errno == ETIMEDOUT)
		return "it did not answer in time";
	return strerror(errno);
}

/*
 * Read one answer into buf (max bytes): *type and *len.  -1 with the
 * signer marked dead when the answer is not one we can take.
 */
static int
remote_answer(struct remote *rm, int fd, unsigned char *buf, size_t max,
    unsigned int *type, size_t *len, struct ca_err *err)
{
	struct ca_signer_hdr h;
	int r;

	if ((r = recv_all(fd, &h, sizeof(h), CA_SIGNER_WAIT_MS)) != 0) {
		remote_dead(rm, err, io_why(r));
		return -1;
	}
	if (h.len > max ||
	    (h.type == CA_SIGNER_ERROR && h.len < sizeof(uint32_t)) ||
	    (h.type == CA_SIGNER_ERROR &&
		h.len > sizeof(uint32_t) + ERRMSG_MAX)) {
		remote_dead(rm, err, "it sent a malformed answer");
		return -1;
	}
	if ((r = recv_all(fd, buf, h.len, CA_SIGNER_WAIT_MS)) != 0) {
		remote_dead(rm, err, io_why(r));
		return -1;
	}
	*type = h.type;
	*len = h.len;
	return 0;
}

/*
 * A channel, locked: the first free one from a rotating start, or else
 * the one at the start, waited for.
 */
static struct channel *
channel_take(struct remote *rm)
{
	unsigned int start;
	size_t i;

	start = __atomic_fetch_add(&rm->next, 1, __ATOMIC_RELAXED);
	for (i = 0; i < rm->n; i++)
		if (pthread_mutex_trylock(&rm->ch[(start + i) % rm->n].lock) ==
		    0)
			return &rm->ch[(start + i) % rm->n];
	pthread_mutex_lock(&rm->ch[start % rm->n].lock);
	return &rm->ch[start % rm->n];
}

static int
remote_sign(void *impl, enum ca_tbs what, const unsigned char *tbs, size_t len,
    unsigned char *sig, size_t *sig_len, struct ca_err *err)
{
	struct remote *rm = impl;
	unsigned char buf[sizeof(uint32_t) + ERRMSG_MAX + CA_SIG_MAX];
	struct channel *c;
	unsigned int type;
	size_t n;
	int rv = -1;

	if (what < CA_TBS_CERT || what > CA_TBS_OCSP || len == 0 ||
	    len > CA_TBS_MAX) {
		ca_err_set(err, CA_ERR_INVALID,
		    "a to-be-signed object is 1 "
		    "to %d bytes of a known kind",
		    CA_TBS_MAX);
		return -1;
	}
	c = channel_take(rm);
	if (remote_is_dead(rm)) {
		remote_dead(rm, err, "");
		goto out;
	}
	if (msg_send(c->fd,
		(enum ca_signer_msg)(what - CA_TBS_CERT + CA_SIGNER_SIGN_CERT),
		tbs, len, NULL, 0) == -1) {
		remote_dead(rm, err, io_why(-1));
		goto out;
	}
	if (remote_answer(rm, c->fd, buf, sizeof(buf), &type, &n, err) == -1)
		goto out;
	if (type == CA_SIGNER_ERROR) {
		/* A refusal: the signer answered and stays in step. */
		error_from(buf, n, err);
	} else if (type == CA_SIGNER_SIG && n > 0 && n <= CA_SIG_MAX) {
		memcpy(sig, buf, n);
		*sig_len = n;
		rv = 0;
	} else {
		remote_dead(rm, err, "it sent a malformed answer");
	}
out:
	pthread_mutex_unlock(&c->lock);
	return rv;
}

static void
remote_free(void *impl)
{
	struct remote *rm = impl;
	size_t i;

	if (rm == NULL)
		return;
	/* Closing every channel is what tells the signer process to exit. */
	for (i = 0; i < rm->n; i++) {
		if (rm->ch[i].fd != -1)
			close(rm->ch[i].fd);
		pthread_mutex_destroy(&rm->ch[i].lock);
	}
	pthread_mutex_destroy(&rm->state);
	free(rm);
}

static const struct ca_signer_ops remote_ops = { remote_sign, remote_free };

/* The greeting on fd: READY with the key (into buf, *n), or why not. */
static int
greeting(struct remote *rm, int fd, unsigned char *buf, size_t max, size_t *n,
    struct ca_err *err)
{
	unsigned int type;

	if (remote_answer(rm, fd, buf, max, &type, n, err) == -1)
		return -1;
	if (type == CA_SIGNER_ERROR) {
		error_from(buf, *n, err);
		ca_err_prefix(err, "the CA signer process could not start");
		return -1;
	}
	if (type != CA_SIGNER_READY || *n == 0) {
		remote_dead(rm, err, "it did not say it was ready");
		return -1;
	}
	return 0;
}

struct ca_signer *
ca_signer_open_remote_many(const int *fds, size_t nfds, struct ca_err *err)
{
	unsigned char key[CA_SPKI_MAX], other[CA_SPKI_MAX];
	struct remote *rm;
	size_t i, n = 0, m;

	ca_err_clear(err);
	if (nfds == 0 || nfds > CA_SIGNER_CHANNELS_MAX ||
	    (rm = calloc(1, sizeof(*rm))) == NULL) {
		ca_err_set(err, CA_ERR_CRYPTO, "cannot set up %zu channels",
		    nfds);
		for (i = 0; i < nfds; i++)
			close(fds[i]);
		return NULL;
	}
	(void)pthread_mutex_init(&rm->state, NULL);
	for (i = 0; i < nfds; i++) {
		rm->ch[i].fd = fds[i];
		(void)pthread_mutex_init(&rm->ch[i].lock, NULL);
	}
	rm->n = nfds;
	/* The same key on every channel: one signer process behind them. */
	for (i = 0; i < nfds; i++) {
		if (greeting(rm, fds[i], i ? other : key, sizeof(key),
			i ? &m : &n, err) == -1)
			goto err;
		if (i > 0 && (m != n || memcmp(key, other, n) != 0)) {
			remote_dead(rm, err,
			    "its channels name different keys");
			goto err;
		}
	}
	return ca_signer_new(&remote_ops, rm, key, n, err);
err:
	remote_free(rm);
	return NULL;
}

struct ca_signer *
ca_signer_open_remote(int fd, struct ca_err *err)
{
	return ca_signer_open_remote_many(&fd, 1, err);
}
