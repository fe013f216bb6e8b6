/*
 * metrics.h - Prometheus text metrics: requests by endpoint and status,
 * a latency histogram, authentication failures, database errors.
 * Counters are atomics: no lock on the request path.
 */
#ifndef METRICS_H
#define METRICS_H

#include <stddef.h>

#include "cache.h"
#include "commit.h"

#define METRICS_ROUTES_MAX 48

struct metrics;

struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);
/* A request answered; seconds < 0 leaves it out of the latency
 * histogram (a long poll, which waits by design). */
void metrics_request(struct metrics *m, size_t route, int status,
    double seconds);
void metrics_auth_failure(struct metrics *m);
void metrics_db_error(struct metrics *m);
/*
 * One federated lookup (fed.h): incoming 0 for one this registry made,
 * 1 for one it answered; result "ok", "cached", "refused", "limited" or
 * "error".  m may be NULL (dirctl).
 */
void metrics_fed(struct metrics *m, int incoming, const char *result);
/*
 * A post to an inbox that reached its handler: stored, forwarded (to
 * another domain's registry), duplicate, over_quota or refused (an
 * oversized body is refused before, by http.c).
 */
void metrics_inbox(struct metrics *m, const char *result);
/*
 * The exposition text (new buffer, free()); online < 0, waiting < 0,
 * cache NULL and commit NULL leave those figures out.
 */
char *metrics_render(struct metrics *m, const char *const *route_names,
    size_t nroutes, long online, int waiting,
    const struct cache_stats *cache, const struct commit_stats *commit,
    size_t *len);

#endif
