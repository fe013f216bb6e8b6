/*
 * push.h - telling a running dchat at once: requests that wait (a long
 * poll, GET /v1/me/events) until something happens to their user.
 *
 * What happens is announced by the database: schema 007's trigger sends
 * NOTIFY dir_push with the user's id when mail is stored for them, by
 * whichever dird (or SQL) stored it, and push's own listener connection
 * wakes the requests of that user that wait here.  A request that waits
 * holds no thread and no database connection: http.c suspends it, and
 * push calls back to resume it when its user was announced, when its
 * deadline passed or when dird stops.  Knows nothing of HTTP.
 */
#ifndef PUSH_H
#define PUSH_H

#include <stddef.h>
#include <stdint.h>

struct push;

/* Called once per waiter, from push's thread or the caller's. */
typedef void push_wake_fn(void *arg);

/*
 * A push for the database at conninfo, with at most waiters_max waiting
 * requests in all and user_max per user; its listener starts at once and
 * reconnects on its own.  NULL with errbuf filled.
 */
struct push *push_new(const char *conninfo, int waiters_max, int user_max,
    char *errbuf, size_t errlen);
/* Wake every waiter and stop; waiters the caller holds are woken first. */
void push_free(struct push *p);

/*
 * A ticket to take before reading what a waiter would wait for: an
 * announcement made after it is not missed by push_wait.
 */
uint64_t push_ticket(struct push *p);

/*
 * Let user_id's request wait until deadline (CLOCK_MONOTONIC, in
 * milliseconds, push_clock):
 * wake(arg) is called exactly once, later.  0: it waits.  1: do not
 * wait (user_id was announced since ticket, or push is stopping): wake
 * is not called.  -1: too many wait (waiters_max in all, or user_max of
 * this user); wake is not called.
 */
int push_wait(struct push *p, int64_t user_id, uint64_t ticket,
    int64_t deadline, push_wake_fn *wake, void *arg);

/* The clock of deadlines: CLOCK_MONOTONIC in milliseconds. */
int64_t push_clock(void);

/* Wake every waiter now and refuse new ones (dird is stopping). */
void push_stop(struct push *p);

/* How many requests wait now (for /metrics). */
int push_waiting(struct push *p);

#endif
