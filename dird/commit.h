/*
 * commit.h - group commit: the writes of many requests (address
 * refreshes, renewed certificates) in one transaction and one WAL flush;
 * all address writes of a group in one statement.
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
 *
 * A renewal's certificate is signed before it comes here: only its
 * record (and its audit row) waits for the group.
 */
#ifndef COMMIT_H
#define COMMIT_H

#include "db.h"

struct commit;

/* Called once per job, on commit's thread, after its commit. */
typedef void commit_done_fn(void *arg);

enum commit_kind {
	COMMIT_ADDR, /* a device's addresses: set */
	COMMIT_CERT, /* a certificate and its audit row: cert, audit */
};

/*
 * One request's write: the caller fills kind, what it writes and
 * done/arg (the strings cert and audit point at are the caller's), and
 * must not touch the job from commit_submit until done(arg) is called;
 * then rv is 0 (set.expires_at filled) or -1 with err.
 */
struct commit_job {
	enum commit_kind kind;
	struct db_addr_set set;
	struct db_addr addrs[DB_ADDR_SET_MAX]; /* what set.addrs may point at */
	struct db_cert_new cert;
	struct db_audit_row audit;
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
 * Commit job's write with others.  Once commit_stop began, done is
 * called at once with err saying the registry is stopping.
 */
void commit_submit(struct commit *c, struct commit_job *job);
void commit_stats(struct commit *c, struct commit_stats *st);
/* Write job alone on db, at once (no group commit); sets rv and err. */
void commit_now(struct db *db, struct commit_job *job);
/*
 * Commit what was submitted and stop the thread; later jobs fail at once
 * (commit_submit).  Every done callback has been called when it returns.
 */
void commit_stop(struct commit *c);
/* commit_stop, then free c. */
void commit_free(struct commit *c);

#endif
