/*
 * ca_signer_remote.c - a signer in another process, over a stream socket
 * (ca_signer.h describes the messages), and the loop that process runs.
 *
 * The asking end sends one request at a time under a lock, so that
 * threads can share it; a request waits at most CA_SIGNER_WAIT_MS for
 * its answer.  Once the other end is gone or out of step, every later
 * request fails at once with CA_ERR_UNAVAILABLE: the stream can not be
 * trusted to line up again.
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

struct remote {
	int fd;
	pthread_mutex_t lock;
	int dead;      /* gone or out of step */
	char why[128]; /* ... and how */
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
ca_signer_serve(struct ca_signer *s, int fd, struct ca_err *err)
{
	const unsigned char *spki;
	size_t spki_len;
	int r;

	ca_err_clear(err);
	spki = ca_signer_spki(s, &spki_len);
	if (msg_send(fd, CA_SIGNER_READY, spki, spki_len, NULL, 0) == -1) {
		ca_err_sys(err, CA_ERR_UNAVAILABLE, "saying ready");
		return -1;
	}
	while ((r = serve_one(s, fd, err)) == 0)
		;
	return r == 1 ? 0 : -1;
}

/* ---- the asking end ----------------------------------------------------- */

/* The other end is no use any more: say so now and on every later call. */
static void
remote_dead(struct remote *rm, struct ca_err *err, const char *why)
{
	if (!rm->dead)
		snprintf(rm->why, sizeof(rm->why), "%s", why);
	rm->dead = 1;
	ca_err_set(err, CA_ERR_UNAVAILABLE,
	    "the CA signer process is not "
	    "answering (%s)",
	    rm->why);
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
remote_answer(struct remote *rm, unsigned char *buf, size_t max,
    unsigned int *type, size_t *len, struct ca_err *err)
{
	struct ca_signer_hdr h;
	int r;

	if ((r = recv_all(rm->fd, &h, sizeof(h), CA_SIGNER_WAIT_MS)) != 0) {
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
	if ((r = recv_all(rm->fd, buf, h.len, CA_SIGNER_WAIT_MS)) != 0) {
		remote_dead(rm, err, io_why(r));
		return -1;
	}
	*type = h.type;
	*len = h.len;
	return 0;
}

static int
remote_sign(void *impl, enum ca_tbs what, const unsigned char *tbs, size_t len,
    unsigned char *sig, size_t *sig_len, struct ca_err *err)
{
	struct remote *rm = impl;
	unsigned char buf[sizeof(uint32_t) + ERRMSG_MAX + CA_SIG_MAX];
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
	pthread_mutex_lock(&rm->lock);
	if (rm->dead) {
		remote_dead(rm, err, rm->why);
		goto out;
	}
	if (msg_send(rm->fd,
		(enum ca_signer_msg)(what - CA_TBS_CERT + CA_SIGNER_SIGN_CERT),
		tbs, len, NULL, 0) == -1) {
		remote_dead(rm, err, io_why(-1));
		goto out;
	}
	if (remote_answer(rm, buf, sizeof(buf), &type, &n, err) == -1)
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
	pthread_mutex_unlock(&rm->lock);
	return rv;
}

static void
remote_free(void *impl)
{
	struct remote *rm = impl;

	if (rm == NULL)
		return;
	/* Closing is what tells the signer process to exit. */
	if (rm->fd != -1)
		close(rm->fd);
	pthread_mutex_destroy(&rm->lock);
	free(rm);
}

static const struct ca_signer_ops remote_ops = { remote_sign, remote_free };

struct ca_signer *
ca_signer_open_remote(int fd, struct ca_err *err)
{
	unsigned char buf[CA_SPKI_MAX];
	struct remote *rm;
	unsigned int type;
	size_t n;

	ca_err_clear(err);
	if ((rm = calloc(1, sizeof(*rm))) == NULL) {
		ca_err_sys(err, CA_ERR_CRYPTO, "calloc");
		close(fd);
		return NULL;
	}
	rm->fd = fd;
	if (pthread_mutex_init(&rm->lock, NULL) != 0) {
		ca_err_set(err, CA_ERR_CRYPTO, "cannot make a lock");
		close(fd);
		free(rm);
		return NULL;
	}
	/* The greeting: READY with the key, or why the key did not load. */
	if (remote_answer(rm, buf, sizeof(buf), &type, &n, err) == -1)
		goto err;
	if (type == CA_SIGNER_ERROR) {
		error_from(buf, n, err);
		ca_err_prefix(err, "the CA signer process could not start");
		goto err;
	}
	if (type != CA_SIGNER_READY || n == 0) {
		remote_dead(rm, err, "it did not say it was ready");
		goto err;
	}
	return ca_signer_new(&remote_ops, rm, buf, n, err);
err:
	remote_free(rm);
	return NULL;
}
