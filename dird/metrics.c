/*
 * metrics.c - counters for /metrics.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

/* The statuses dird answers with; anything else counts as "other". */
static const int statuses[] = { 200, 201, 204, 400, 401, 403, 404, 405, 409,
	413, 415, 429, 500, 502, 503, 507 };
#define NSTATUS (sizeof(statuses) / sizeof(statuses[0]) + 1)
#define NFED 6	 /* fed_results */
#define NINBOX 5 /* inbox_results */

static const double buckets[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5 };
#define NBUCKETS (sizeof(buckets) / sizeof(buckets[0]))

struct metrics {
	atomic_ulong requests[METRICS_ROUTES_MAX][NSTATUS];
	atomic_ulong hist[NBUCKETS + 1];
	atomic_ullong sum_us;
	atomic_ulong count;
	atomic_ulong auth_failures;
	atomic_ulong db_errors;
	atomic_ulong fed[2][NFED]; /* [incoming][result] */
	atomic_ulong inbox[NINBOX];
};

/* Posts to an inbox by result (metrics_inbox); the last is "refused". */
static const char *const inbox_results[NINBOX] = { "stored", "forwarded",
	"duplicate", "over_quota", "refused" };

/* Federated lookups by direction and result (metrics_fed). */
static const char *const fed_results[NFED] = { "ok", "cached", "refused",
	"limited", "error", "stale" };

struct metrics *
metrics_new(void)
{
	return calloc(1, sizeof(struct metrics));
}

void
metrics_free(struct metrics *m)
{
	free(m);
}

static size_t
status_index(int status)
{
	size_t i;

	for (i = 0; i < NSTATUS - 1; i++)
		if (statuses[i] == status)
			return i;
	return NSTATUS - 1;
}

void
metrics_request(struct metrics *m, size_t route, int status, double seconds)
{
	size_t b;

	if (route >= METRICS_ROUTES_MAX)
		route = METRICS_ROUTES_MAX - 1;
	atomic_fetch_add(&m->requests[route][status_index(status)], 1);
	if (seconds < 0)
		return;
	for (b = 0; b < NBUCKETS && seconds > buckets[b]; b++)
		;
	atomic_fetch_add(&m->hist[b], 1);
	atomic_fetch_add(&m->sum_us, (unsigned long long)(seconds * 1e6));
	atomic_fetch_add(&m->count, 1);
}

void
metrics_auth_failure(struct metrics *m)
{
	atomic_fetch_add(&m->auth_failures, 1);
}

void
metrics_db_error(struct metrics *m)
{
	atomic_fetch_add(&m->db_errors, 1);
}

void
metrics_fed(struct metrics *m, int incoming, const char *result)
{
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < NFED - 1; i++)
		if (strcmp(fed_results[i], result) == 0)
			break;
	atomic_fetch_add(&m->fed[incoming != 0][i], 1);
}

void
metrics_inbox(struct metrics *m, const char *result)
{
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < NINBOX - 1; i++)
		if (strcmp(inbox_results[i], result) == 0)
			break;
	atomic_fetch_add(&m->inbox[i], 1);
}

struct buf {
	char *p;
	size_t len, cap;
	int failed;
};

static void __attribute__((format(printf, 2, 3)))
put(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->failed = 1;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		char *np = realloc(b->p, b->cap * 2 + (size_t)n);
		if (np == NULL) {
			b->failed = 1;
			return;
		}
		b->p = np;
		b->cap = b->cap * 2 + (size_t)n;
	}
}

char *
metrics_render(struct metrics *m, const char *const *route_names,
    size_t nroutes, long online, int waiting, const struct cache_stats *cache,
    const struct commit_stats *commit, size_t *len)
{
	struct buf b = { malloc(8192), 0, 8192, 0 };
	unsigned long cum = 0, v;
	size_t r, s;

	if (b.p == NULL)
		return NULL;
	put(&b, "# HELP dird_requests_total HTTP requests by endpoint and "
		"status.\n# TYPE dird_requests_total counter\n");
	for (r = 0; r < nroutes && r < METRICS_ROUTES_MAX; r++)
		for (s = 0; s < NSTATUS; s++) {
			if ((v = atomic_load(&m->requests[r][s])) == 0)
				continue;
			if (s < NSTATUS - 1)
				put(&b, "dird_requests_total{endpoint=\"%s\","
					"status=\"%d\"} %lu\n",
				    route_names[r], statuses[s], v);
			else
				put(&b, "dird_requests_total{endpoint=\"%s\","
					"status=\"other\"} %lu\n",
				    route_names[r], v);
		}
	put(&b, "# HELP dird_request_duration_seconds Time to answer a "
		"request.\n# TYPE dird_request_duration_seconds histogram\n");
	for (s = 0; s <= NBUCKETS; s++) {
		cum += atomic_load(&m->hist[s]);
		if (s < NBUCKETS)
			put(&b, "dird_request_duration_seconds_bucket{le=\"%g\"} "
				"%lu\n", buckets[s], cum);
		else
			put(&b, "dird_request_duration_seconds_bucket{le=\"+Inf\"}"
				" %lu\n", cum);
	}
	put(&b, "dird_request_duration_seconds_sum %.6f\n"
		"dird_request_duration_seconds_count %lu\n",
	    (double)atomic_load(&m->sum_us) / 1e6, atomic_load(&m->count));
	put(&b, "# HELP dird_auth_failures_total Failed authentications.\n"
		"# TYPE dird_auth_failures_total counter\n"
		"dird_auth_failures_total %lu\n",
	    atomic_load(&m->auth_failures));
	put(&b, "# HELP dird_db_errors_total Database errors.\n"
		"# TYPE dird_db_errors_total counter\n"
		"dird_db_errors_total %lu\n", atomic_load(&m->db_errors));
	put(&b, "# HELP dird_federation_queries_total Lookups of other "
		"domains' users (out) and other registries' lookups here (in).\n"
		"# TYPE dird_federation_queries_total counter\n");
	for (s = 0; s < 2 * NFED; s++)
		put(&b, "dird_federation_queries_total{direction=\"%s\","
			"result=\"%s\"} %lu\n", s / NFED ? "in" : "out",
		    fed_results[s % NFED],
		    atomic_load(&m->fed[s / NFED][s % NFED]));
	put(&b, "# HELP dird_inbox_posts_total Messages posted to users' "
		"inboxes, by what became of them.\n"
		"# TYPE dird_inbox_posts_total counter\n");
	for (s = 0; s < NINBOX; s++)
		put(&b, "dird_inbox_posts_total{result=\"%s\"} %lu\n",
		    inbox_results[s], atomic_load(&m->inbox[s]));
	if (online >= 0)
		put(&b, "# HELP dird_online_users Users with an unexpired "
			"address.\n# TYPE dird_online_users gauge\n"
			"dird_online_users %ld\n", online);
	if (waiting >= 0)
		put(&b, "# HELP dird_push_waiting Requests for events that "
			"wait (long polls of running clients).\n"
			"# TYPE dird_push_waiting gauge\n"
			"dird_push_waiting %d\n", waiting);
	if (cache != NULL)
		put(&b, "# HELP dird_cache_hits_total Lookups and certificate "
			"checks answered from the cache.\n"
			"# TYPE dird_cache_hits_total counter\n"
			"dird_cache_hits_total %lu\n"
			"# HELP dird_cache_misses_total Lookups and certificate "
			"checks that read the database.\n"
			"# TYPE dird_cache_misses_total counter\n"
			"dird_cache_misses_total %lu\n"
			"# HELP dird_cache_invalidations_total Changes that "
			"dropped cached answers.\n"
			"# TYPE dird_cache_invalidations_total counter\n"
			"dird_cache_invalidations_total %lu\n"
			"# HELP dird_cache_serving 1 while the cache is in use "
			"(its change listener is connected).\n"
			"# TYPE dird_cache_serving gauge\n"
			"dird_cache_serving %d\n",
		    cache->hits, cache->misses, cache->drops, cache->serving);
	if (commit != NULL)
		put(&b, "# HELP dird_commit_batches_total Group commits of "
			"address writes.\n"
			"# TYPE dird_commit_batches_total counter\n"
			"dird_commit_batches_total %lu\n"
			"# HELP dird_commit_writes_total Address writes they "
			"committed.\n"
			"# TYPE dird_commit_writes_total counter\n"
			"dird_commit_writes_total %lu\n"
			"# HELP dird_commit_retried_total Writes tried again "
			"alone because their group failed.\n"
			"# TYPE dird_commit_retried_total counter\n"
			"dird_commit_retried_total %lu\n"
			"# HELP dird_commit_queued Address writes waiting for "
			"their group.\n"
			"# TYPE dird_commit_queued gauge\n"
			"dird_commit_queued %lu\n",
		    commit->batches, commit->jobs, commit->retried,
		    commit->queued);
	if (b.failed) {
		free(b.p);
		return NULL;
	}
	*len = b.len;
	return b.p;
}
