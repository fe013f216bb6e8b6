/*
 * push.c - requests that wait for their user to be announced (push.h).
 *
 * Waiters hang in buckets by user id; each bucket also remembers the
 * ticket of its last announcement, so that a request that read "nothing
 * new" just before an announcement does not go to sleep past it.  Two
 * users of one bucket only make the second answer at once with nothing
 * new (one extra read): a wake is for the very user announced.
 *
 * One thread listens on a connection of its own and, at the same turn,
 * wakes the waiters whose deadline passed.  Wake callbacks are called
 * with no lock held: http.c's resumes libmicrohttpd's connection, which
 * takes locks of its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "log.h"
#include "push.h"

#define PUSH_BUCKETS 1024
/* How late a deadline may be noticed, and how often a lost listener
 * connection is tried again, in milliseconds. */
#define PUSH_TICK_MS 250
#define PUSH_RETRY_MS 1000

struct waiter {
	struct waiter *next;
	int64_t user_id;
	int64_t deadline; /* push_clock() */
	push_wake_fn *wake;
	void *arg;
};

struct push {
	pthread_mutex_t lock;
	struct waiter *bucket[PUSH_BUCKETS];
	uint64_t announced[PUSH_BUCKETS]; /* ticket of the last announcement */
	uint64_t all_at;		  /* ... of one for every user */
	uint64_t seq;
	int waiting, waiters_max, user_max;
	int stopping;

	char *conninfo;
	int stop_pipe[2];
	pthread_t thread;
	int running;
};

static size_t
bucket_of(int64_t user_id)
{
	return (uint64_t)user_id % PUSH_BUCKETS;
}

int64_t
push_clock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Call every waiter of list, and free them. */
static void
wake_list(struct waiter *list)
{
	struct waiter *w;

	while ((w = list) != NULL) {
		list = w->next;
		w->wake(w->arg);
		free(w);
	}
}

/*
 * Move the waiters of bucket b that match (user_id, or every one when
 * user_id is 0, or those past now when now is not 0) onto *out.
 * Called locked.
 */
static void
take(struct push *p, size_t b, int64_t user_id, int64_t now,
    struct waiter **out)
{
	struct waiter **pw = &p->bucket[b], *w;

	while ((w = *pw) != NULL) {
		if ((now != 0 && w->deadline > now) ||
		    (user_id != 0 && w->user_id != user_id)) {
			pw = &w->next;
			continue;
		}
		*pw = w->next;
		w->next = *out;
		*out = w;
		p->waiting--;
	}
}

/* user_id (0: everyone) was announced: wake its waiters. */
static void
announce(void *arg, int64_t user_id, int listing)
{
	struct push *p = arg;
	struct waiter *woken = NULL;
	size_t b;

	(void)listing;
	pthread_mutex_lock(&p->lock);
	p->seq++;
	if (user_id > 0) {
		b = bucket_of(user_id);
		p->announced[b] = p->seq;
		take(p, b, user_id, 0, &woken);
	} else {
		p->all_at = p->seq;
		for (b = 0; b < PUSH_BUCKETS; b++)
			take(p, b, 0, 0, &woken);
	}
	pthread_mutex_unlock(&p->lock);
	wake_list(woken);
}

static void
expire(struct push *p)
{
	struct waiter *woken = NULL;
	int64_t now = push_clock();
	size_t b;

	pthread_mutex_lock(&p->lock);
	if (p->waiting > 0)
		for (b = 0; b < PUSH_BUCKETS; b++)
			take(p, b, 0, now, &woken);
	pthread_mutex_unlock(&p->lock);
	wake_list(woken);
}

/* Up to ms for fd (when >= 0) or the stop pipe: 1 to stop. */
static int
wait_for(struct push *p, int fd, int ms, int *ready)
{
	struct pollfd pf[2] = { { p->stop_pipe[0], POLLIN, 0 },
		{ fd, POLLIN, 0 } };

	*ready = 0;
	if (poll(pf, fd >= 0 ? 2 : 1, ms) == -1)
		return 0;
	if (pf[0].revents != 0)
		return 1;
	*ready = fd >= 0 && pf[1].revents != 0;
	return 0;
}

static struct db *
listen_connect(struct push *p, int *warned)
{
	struct db_err de;
	struct db *db;

	if ((db = db_connect(p->conninfo, &de)) != NULL &&
	    db_listen_push(db, &de) == 0) {
		if (*warned)
			log_info("push: listening again");
		*warned = 0;
		/* What was announced while nobody listened is unknown. */
		announce(p, 0, 0);
		return db;
	}
	db_free(db);
	if (!*warned)
		log_warnx("push: cannot listen (%s); waiting requests are "
			  "answered at their deadline until it is back",
		    de.msg);
	*warned = 1;
	return NULL;
}

static void *
listen_main(void *arg)
{
	struct push *p = arg;
	struct db *db = NULL;
	struct db_err de;
	int fd, ready, warned = 0;

	for (;;) {
		if (db == NULL && (db = listen_connect(p, &warned)) == NULL) {
			if (wait_for(p, -1, PUSH_RETRY_MS, &ready) == 1)
				break;
			expire(p);
			continue;
		}
		fd = db_socket(db);
		if (wait_for(p, fd, PUSH_TICK_MS, &ready) == 1)
			break;
		if (fd == -1 ||
		    (ready && db_read_changes(db, announce, p, &de) == -1)) {
			log_warnx("push: the listening connection was lost");
			warned = 1;
			db_free(db);
			db = NULL;
		}
		expire(p);
	}
	db_free(db);
	return NULL;
}

struct push *
push_new(const char *conninfo, int waiters_max, int user_max, char *errbuf,
    size_t errlen)
{
	struct push *p;

	if ((p = calloc(1, sizeof(*p))) == NULL) {
		snprintf(errbuf, errlen, "push: out of memory");
		return NULL;
	}
	p->stop_pipe[0] = p->stop_pipe[1] = -1;
	pthread_mutex_init(&p->lock, NULL);
	p->waiters_max = waiters_max;
	p->user_max = user_max;
	if ((p->conninfo = strdup(conninfo)) == NULL ||
	    pipe2(p->stop_pipe, O_CLOEXEC) == -1) {
		snprintf(errbuf, errlen, "push: %s", strerror(errno));
		goto err;
	}
	if ((errno = pthread_create(&p->thread, NULL, listen_main, p)) != 0) {
		snprintf(errbuf, errlen, "push: cannot start the listener: %s",
		    strerror(errno));
		goto err;
	}
	p->running = 1;
	return p;
err:
	push_free(p);
	return NULL;
}

void
push_stop(struct push *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = 1;
	pthread_mutex_unlock(&p->lock);
	announce(p, 0, 0);
}

void
push_free(struct push *p)
{
	if (p == NULL)
		return;
	push_stop(p);
	if (p->running) {
		(void)write(p->stop_pipe[1], "x", 1);
		pthread_join(p->thread, NULL);
	}
	if (p->stop_pipe[0] != -1) {
		close(p->stop_pipe[0]);
		close(p->stop_pipe[1]);
	}
	pthread_mutex_destroy(&p->lock);
	free(p->conninfo);
	free(p);
}

uint64_t
push_ticket(struct push *p)
{
	uint64_t t;

	pthread_mutex_lock(&p->lock);
	t = p->seq;
	pthread_mutex_unlock(&p->lock);
	return t;
}

int
push_wait(struct push *p, int64_t user_id, uint64_t ticket, int64_t deadline,
    push_wake_fn *wake, void *arg)
{
	struct waiter *w;
	size_t b = bucket_of(user_id);
	int mine = 0, rv = 0;

	pthread_mutex_lock(&p->lock);
	if (p->stopping || p->announced[b] > ticket || p->all_at > ticket) {
		rv = 1;
		goto out;
	}
	for (w = p->bucket[b]; w != NULL; w = w->next)
		mine += w->user_id == user_id;
	if (p->waiting >= p->waiters_max || mine >= p->user_max ||
	    (w = malloc(sizeof(*w))) == NULL) {
		rv = -1;
		goto out;
	}
	w->user_id = user_id;
	w->deadline = deadline;
	w->wake = wake;
	w->arg = arg;
	w->next = p->bucket[b];
	p->bucket[b] = w;
	p->waiting++;
out:
	pthread_mutex_unlock(&p->lock);
	return rv;
}

int
push_waiting(struct push *p)
{
	int n;

	pthread_mutex_lock(&p->lock);
	n = p->waiting;
	pthread_mutex_unlock(&p->lock);
	return n;
}
