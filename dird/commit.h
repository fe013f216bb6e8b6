/*
 * commit.h - group commit: the address writes of many requests in one
 * statement, one transaction and one WAL flush.
 *
 * Every online device refreshes its addresses at half its TTL, and each
 * refresh must be durable before it is acknowledged.  One commit per
 * request would make the disk's flush rate the registry's limit; here
 * the writes that arrive while a commit is under way wait for the next,
 * which takes them all (up to batch_max, after waiting window_us for
 * more).  Each job is told only after the commit that holds it returned;
 * when a batch fails, each of its jobs is tried again alone, so that one
 * bad write fails by itself.  One thread and one database connection of
 * its own; knows nothing of HTTP.
 */
#ifndef COMMIT_H
#define COMMIT_H

#include "db.h"

struct commit;

/* Called once per job, on commit's thread, after its commit. */
typedef void commit_done_fn(void *arg);

/*
 * One request's write: the caller fills set and done/arg, and must not
 * touch the job from commit_submit until done(arg) is called; then rv
 * is 0 (set.expires_at filled) or -1 with err.
 */
struct commit_job {
	struct db_addr_set set;
	struct db_addr addrs[DB_ADDR_SET_MAX]; /* what set.addrs may point at */
	int rv;
	struct db_err err;
	commit_done_fn *done;
	void *arg;
	struct commit_job *next; /* commit's */
};

struct commit_stats {
	unsigned long batches; /* statements that committed jobs */
	unsigned long jobs;    /* jobs they committed */
	unsigned long retried; /* jobs tried again alone after a batch failed */
	unsigned long queued;  /* jobs waiting for a batch now */
};

/*
 * A group committer writing through db (taken over, also on failure),
 * with batches of at most batch_max jobs, each waiting at most window_us
 * microseconds for more after its first (0: take what is there).  NULL
 * with errbuf filled.
 */
struct commit *commit_new(struct db *db, int batch_max, int window_us,
    char *errbuf, size_t errlen);
/*
 * Commit job's write with others.  Once commit_free began, done is
 * called at once with err saying the registry is stopping.
 */
void commit_submit(struct commit *c, struct commit_job *job);
void commit_stats(struct commit *c, struct commit_stats *st);
/* Commit what was submitted, then stop the thread and free c. */
void commit_free(struct commit *c);

#endif
