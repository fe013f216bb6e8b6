/*
 * rxfile.c - hashing and syncing a file being received on helper
 * threads (rxfile.h).
 *
 * Two helpers, so that hashing and waiting for the disk overlap: one
 * thread doing both, one after the other, fell behind the network.  The
 * hasher reads back and hashes what the loop wrote; the syncer, each
 * time RX_SYNC more is written, fdatasyncs.  They share with the loop
 * only what is under the lock: how much is written (avail), how far
 * each helper got when it last waited, whether the loop wants the
 * result or wants them to stop, and what went wrong.  The hash itself
 * is the hasher's until it is joined.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "rxfile.h"

/* Read back and hashed in pieces this large: they stay in the cache. */
#define RX_PIECE (128 * 1024)
/*
 * A waiting hasher is woken once this much more is written, not for
 * every frame: fewer wake-ups, and still far ahead of the end.
 */
#define RX_WAKE (1024 * 1024)
/*
 * What is written is synced to the disk in steps of this much: the
 * fsync before the rename then finds at most this much to do, not the
 * whole file (a flush takes time in proportion to what it flushes).
 */
#define RX_SYNC (16 * 1024 * 1024)

/* What a helper could not do. */
enum rx_fail {
	RX_OK,
	RX_READ_FAILED, /* read back, or hash */
	RX_SYNC_FAILED,
};

/* One helper, as the loop sees it. */
struct rx_helper {
	pthread_t thread;
	int running;
	pthread_cond_t cond;
	int idle;      /* it waits for more to be written */
	uint64_t at;   /* how far it got, as of when it waits */
	uint64_t wake; /* wake it once this much more is written */
};

struct rxfile {
	int fd; /* the helpers' own */
	pthread_mutex_t lock;
	struct rx_helper hasher, syncer;
	uint64_t avail; /* written by the loop */
	int finish;	/* the loop wants the hash of all that is written */
	int stop;	/* the loop gives up on the file */
	enum rx_fail failed;
	int err; /* its errno */
	EVP_MD_CTX *md;
	unsigned char *buf;
};

/* Hash [*done, upto) of the file; 0, or an errno. */
static int
hash_range(struct rxfile *r, uint64_t *done, uint64_t upto)
{
	ssize_t n;
	size_t want;

	while (*done < upto) {
		want = upto - *done < RX_PIECE ? (size_t)(upto - *done) :
						 RX_PIECE;
		n = pread(r->fd, r->buf, want, (off_t)*done);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return errno;
		/* The loop wrote it before saying so: it can not be short. */
		if (n == 0)
			return EIO;
		if (EVP_DigestUpdate(r->md, r->buf, (size_t)n) != 1)
			return ENOMEM;
		*done += (uint64_t)n;
	}
	return 0;
}

/*
 * Under the lock: wait until at least need more than at is written, or
 * the loop wants something else.  How much is written then, or 0 when
 * the helper is to end.  A finishing hasher takes what is left; a
 * syncer leaves that to the loop's fsync.
 */
static uint64_t
wait_for(struct rxfile *r, struct rx_helper *h, uint64_t at, uint64_t need,
    int last)
{
	while (!r->stop && !r->finish && r->avail - at < need) {
		h->at = at;
		h->wake = need;
		h->idle = 1;
		pthread_cond_wait(&h->cond, &r->lock);
		h->idle = 0;
	}
	if (r->stop || r->failed != RX_OK || r->avail == at ||
	    (r->finish && !last))
		return 0;
	return r->avail;
}

static void
fail(struct rxfile *r, enum rx_fail what, int e)
{
	pthread_mutex_lock(&r->lock);
	if (r->failed == RX_OK) {
		r->failed = what;
		r->err = e;
	}
	pthread_mutex_unlock(&r->lock);
}

static void *
hasher_main(void *arg)
{
	struct rxfile *r = arg;
	uint64_t done = 0, upto;
	int e;

	for (;;) {
		pthread_mutex_lock(&r->lock);
		upto = wait_for(r, &r->hasher, done, RX_WAKE, 1);
		pthread_mutex_unlock(&r->lock);
		if (upto == 0)
			break;
		if ((e = hash_range(r, &done, upto)) != 0) {
			fail(r, RX_READ_FAILED, e);
			break;
		}
	}
	return NULL;
}

/*
 * The descriptor shares its file description with the loop's: an error
 * fdatasync reports would not be reported again to the loop's fsync, so
 * it fails the transfer.
 */
static void *
syncer_main(void *arg)
{
	struct rxfile *r = arg;
	uint64_t synced = 0, upto;

	for (;;) {
		pthread_mutex_lock(&r->lock);
		upto = wait_for(r, &r->syncer, synced, RX_SYNC, 0);
		pthread_mutex_unlock(&r->lock);
		if (upto == 0)
			break;
		if (fdatasync(r->fd) == -1) {
			fail(r, RX_SYNC_FAILED, errno);
			break;
		}
		synced = upto;
	}
	return NULL;
}

/* Start a helper with every signal blocked: they are the loop's. */
static int
start(struct rx_helper *h, void *(*fn)(void *), struct rxfile *r)
{
	sigset_t all, old;
	int e;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	e = pthread_create(&h->thread, NULL, fn, r);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	h->running = e == 0;
	return e;
}

struct rxfile *
rxfile_start(int fd, char *err, size_t errlen)
{
	struct rxfile *r;
	int e;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->hasher.cond, NULL);
	pthread_cond_init(&r->syncer.cond, NULL);
	if ((r->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) == -1) {
		snprintf(err, errlen, "cannot read back the file: %s",
		    strerror(errno));
		goto err;
	}
	if ((r->buf = malloc(RX_PIECE)) == NULL ||
	    (r->md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(r->md, EVP_sha256(), NULL) != 1) {
		snprintf(err, errlen, "out of memory");
		goto err;
	}
	if ((e = start(&r->hasher, hasher_main, r)) != 0 ||
	    (e = start(&r->syncer, syncer_main, r)) != 0) {
		snprintf(err, errlen, "cannot start a thread: %s", strerror(e));
		goto err;
	}
	return r;
err:
	rxfile_free(r);
	return NULL;
}

/* Under the lock: wake h if it waits for no more than is written. */
static void
poke(struct rxfile *r, struct rx_helper *h)
{
	if (h->idle && r->avail - h->at >= h->wake)
		pthread_cond_signal(&h->cond);
}

void
rxfile_wrote(struct rxfile *r, uint64_t total)
{
	pthread_mutex_lock(&r->lock);
	r->avail = total;
	poke(r, &r->hasher);
	poke(r, &r->syncer);
	pthread_mutex_unlock(&r->lock);
}

/* Tell the helpers what the loop wants (finish or stop); join them. */
static void
end_helpers(struct rxfile *r, int stop)
{
	struct rx_helper *h[2] = { &r->hasher, &r->syncer };
	int i;

	pthread_mutex_lock(&r->lock);
	if (stop)
		r->stop = 1;
	else
		r->finish = 1;
	for (i = 0; i < 2; i++)
		pthread_cond_signal(&h[i]->cond);
	pthread_mutex_unlock(&r->lock);
	for (i = 0; i < 2; i++) {
		if (h[i]->running)
			pthread_join(h[i]->thread, NULL);
		h[i]->running = 0;
	}
}

int
rxfile_sha256(struct rxfile *r, char hex[65], char *err, size_t errlen)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;

	if (!r->hasher.running) {
		snprintf(err, errlen, "hashing failed");
		return -1;
	}
	end_helpers(r, 0);
	if (r->failed != RX_OK) {
		snprintf(err, errlen, "%s: %s",
		    r->failed == RX_SYNC_FAILED ? "cannot store" :
						  "cannot read back the file",
		    strerror(r->err));
		return -1;
	}
	if (EVP_DigestFinal_ex(r->md, md, &mdlen) != 1 || mdlen != 32) {
		snprintf(err, errlen, "hashing failed");
		return -1;
	}
	for (i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return 0;
}

void
rxfile_free(struct rxfile *r)
{
	if (r == NULL)
		return;
	end_helpers(r, 1);
	if (r->fd != -1)
		close(r->fd);
	EVP_MD_CTX_free(r->md);
	free(r->buf);
	pthread_cond_destroy(&r->hasher.cond);
	pthread_cond_destroy(&r->syncer.cond);
	pthread_mutex_destroy(&r->lock);
	free(r);
}
