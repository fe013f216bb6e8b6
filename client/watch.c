/*
 * watch.c - the thread that waits for events at the registry (watch.h).
 *
 * The thread owns its registry client; the loop reads only the pipe and
 * the trouble string (under the lock).  When a request fails the thread
 * drops its connection and waits 2, 4, ... up to 60 s (a refusal for
 * too many waiting requests: 30 s) before it asks again, so that a
 * registry that is down is not hammered; stopping interrupts any wait.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "registry.h"
#include "watch.h"

#define WATCH_BACKOFF_MAX 60
/*
 * Seconds between two requests that brought nothing new: a registry
 * that does not hold requests (push_wait_max = 0) answers at once, and
 * is not asked again at once.
 */
#define WATCH_QUIET_MIN 10

struct watch {
	const struct keystore *ks;
	pthread_t thread;
	int running;
	atomic_int stop;
	int heard[2]; /* the thread writes what it heard, the loop reads */
	int wake[2];  /* written to end a pause at once */
	pthread_mutex_t lock;
	char trouble[300];
};

/* Up to secs, or until stopped: 1 when stopped. */
static int
pause_for(struct watch *w, int secs)
{
	struct pollfd p = { w->wake[0], POLLIN, 0 };

	(void)poll(&p, 1, secs * 1000);
	return atomic_load(&w->stop);
}

static void
set_trouble(struct watch *w, const char *msg)
{
	pthread_mutex_lock(&w->lock);
	snprintf(w->trouble, sizeof(w->trouble), "%s", msg);
	pthread_mutex_unlock(&w->lock);
}

static void
tell(struct watch *w, char what)
{
	/* A full pipe already says it: nothing is lost. */
	(void)write(w->heard[1], &what, 1);
}

static void *
watch_main(void *arg)
{
	struct watch *w = arg;
	struct irp_client *c = NULL;
	struct irp_events ev;
	struct irp_err err;
	char cursor[IRP_CURSOR_MAX] = "";
	int backoff = 0, quick;
	time_t asked;

	while (!atomic_load(&w->stop)) {
		asked = time(NULL);
		if (c == NULL && (c = registry_open(w->ks, 1, &err)) != NULL)
			irp_client_set_stop(c, &w->stop);
		if (c == NULL ||
		    irp_events(c, cursor[0] ? cursor : NULL, WATCH_WAIT, &ev,
			&err) == -1) {
			if (atomic_load(&w->stop))
				break;
			set_trouble(w, err.msg);
			irp_client_free(c);
			c = NULL;
			backoff = backoff == 0 ? 2 : backoff * 2;
			if (backoff > WATCH_BACKOFF_MAX)
				backoff = WATCH_BACKOFF_MAX;
			if (pause_for(w, err.status == 429 ? 30 : backoff))
				break;
			continue;
		}
		backoff = 0;
		set_trouble(w, "");
		quick = cursor[0] != '\0' && ev.mail_waiting == 0 &&
		    time(NULL) - asked < WATCH_QUIET_MIN;
		if (ev.mail_waiting > 0)
			tell(w, 'm');
		snprintf(cursor, sizeof(cursor), "%s", ev.cursor);
		if (quick &&
		    pause_for(w, WATCH_QUIET_MIN - (int)(time(NULL) - asked)))
			break;
	}
	irp_client_free(c);
	return NULL;
}

struct watch *
watch_start(const struct keystore *ks, char *err, size_t errlen)
{
	struct watch *w;

	if ((w = calloc(1, sizeof(*w))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	w->ks = ks;
	w->heard[0] = w->heard[1] = w->wake[0] = w->wake[1] = -1;
	pthread_mutex_init(&w->lock, NULL);
	if (pipe2(w->heard, O_CLOEXEC | O_NONBLOCK) == -1 ||
	    pipe2(w->wake, O_CLOEXEC) == -1) {
		snprintf(err, errlen, "cannot make a pipe: %s",
		    strerror(errno));
		goto err;
	}
	if ((errno = pthread_create(&w->thread, NULL, watch_main, w)) != 0) {
		snprintf(err, errlen, "cannot start a thread: %s",
		    strerror(errno));
		goto err;
	}
	w->running = 1;
	return w;
err:
	watch_stop(w);
	return NULL;
}

int
watch_fd(const struct watch *w)
{
	return w->heard[0];
}

int
watch_take(struct watch *w)
{
	char buf[64];
	ssize_t n, i;
	int what = 0;

	while ((n = read(w->heard[0], buf, sizeof(buf))) > 0)
		for (i = 0; i < n; i++)
			if (buf[i] == 'm')
				what |= WATCH_MAIL;
	return what;
}

void
watch_trouble(struct watch *w, char *buf, size_t len)
{
	pthread_mutex_lock(&w->lock);
	snprintf(buf, len, "%s", w->trouble);
	pthread_mutex_unlock(&w->lock);
}

void
watch_stop(struct watch *w)
{
	int i;

	if (w == NULL)
		return;
	if (w->running) {
		atomic_store(&w->stop, 1);
		(void)write(w->wake[1], "x", 1);
		pthread_join(w->thread, NULL);
	}
	for (i = 0; i < 2; i++) {
		if (w->heard[i] != -1)
			close(w->heard[i]);
		if (w->wake[i] != -1)
			close(w->wake[i]);
	}
	pthread_mutex_destroy(&w->lock);
	free(w);
}
