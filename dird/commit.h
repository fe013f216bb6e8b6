/*
 * commit.h - group commit: the writes of many requests (address
 * refreshes, issued certificates, revocations) in one transaction and
 * one WAL flush; all address writes of a group in one statement, and
 * one new CRL for all its revocations.
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
 * A certificate is signed before it comes here: only its record (and
 * its audit row, and the code it consumes) waits for the group.  A
 * revocation's CRL is signed here, by the caller's seal function, once
 * for the whole group.
 */
#ifndef COMMIT_H
#define COMMIT_H

#include "db.h"

struct commit;

/* Called once per job, on commit's thread, after its commit. */
typedef void commit_done_fn(void *arg);

/*
 * In the transaction of a write that holds revocations, after them and
 * before its commit: the new CRL.  0, or -1 with err (the write fails).
 */
typedef int commit_seal_fn(void *arg, struct db *db, struct db_err *err);

enum commit_kind {
	COMMIT_ADDR,   /* a device's addresses: set */
	COMMIT_CERT,   /* a certificate and its audit row: cert, audit */
	COMMIT_REVOKE, /* a revocation and its audit row: revoke, audit */
};

/*
 * A revocation (db_cert_revoke); the audit row gets "reason=NAME", and
 * " (raised)" when it raised an earlier one.  raised and holder are
 * filled by the write.
 */
struct commit_revoke {
	const char *issuer, *serial, *reason_name;
	int reason;
	int raised;
	int64_t holder;
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
	struct commit_revoke revoke;
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
 * microseconds for more after its first (0: take what is there), and
 * seal(seal_arg) for those with revocations.  NULL with errbuf filled.
 */
struct commit *commit_new(struct db *db, int batch_max, int window_us,
    commit_seal_fn *seal, void *seal_arg, char *errbuf, size_t errlen);
/*
 * Commit job's write with others.  Once commit_stop began, done is
 * called at once with err saying the registry is stopping.
 */
void commit_submit(struct commit *c, struct commit_job *job);
void commit_stats(struct commit *c, struct commit_stats *st);
/*
 * Write job alone on db, at once (no group commit), a revocation with
 * seal(seal_arg); sets rv and err.
 */
void commit_now(struct db *db, struct commit_job *job, commit_seal_fn *seal,
    void *seal_arg);
/*
 * Commit what was submitted and stop the thread; later jobs fail at once
 * (commit_submit).  Every done callback has been called when it returns.
 */
void commit_stop(struct commit *c);
/* commit_stop, then free c. */
void commit_free(struct commit *c);

#endif
