/*
 * watch.h - hearing at once from the registry: a thread that waits at
 * GET /v1/me/events (a long poll, docs/irp.md "Events") with the
 * device's certificate, and tells the main loop through a descriptor it
 * can poll.  The main loop does the work (fetching mail); this thread
 * only listens, on a connection of its own, so that a request that
 * waits a minute never holds up the loop's own calls to the registry.
 */
#ifndef WATCH_H
#define WATCH_H

#include <stddef.h>

#include "keystore.h"

/* What was heard (watch_take). */
#define WATCH_MAIL 1 /* mail waits at the registry */

/* How long one request waits at the registry, seconds. */
#define WATCH_WAIT 50

struct watch;

/*
 * Start listening for the home ks (which must stay as it is while the
 * watch runs).  NULL with err filled (no thread or pipe).
 */
struct watch *watch_start(const struct keystore *ks, char *err, size_t errlen);
/* Readable when something was heard. */
int watch_fd(const struct watch *w);
/* What was heard since the last call (WATCH_ bits); 0 when nothing. */
int watch_take(struct watch *w);
/*
 * Why the last request failed, "" once one succeeded again; a changed
 * reason is reported once by the caller.  Copied into buf.
 */
void watch_trouble(struct watch *w, char *buf, size_t len);
/* End the thread (within about a second) and free. */
void watch_stop(struct watch *w);

#endif
