/*
 * commit.c - group commit of writes (commit.h).
 *
 * Jobs queue in arrival order.  The thread takes the first and, within
 * the window, more, up to batch_max; a job for a certificate the batch
 * already holds stays queued for the next one, since one statement may
 * not write a row twice (and a second revocation of one certificate
 * would fail the batch).  The done callbacks run after the statement
 * returned, that is after PostgreSQL flushed the commit.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commit.h"
#include "log.h"

struct commit {
	struct db *db;
	int batch_max;
	int window_us;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct commit_job *head, **tail; /* the queue */
	int queued;
	int stopping;
	commit_seal_fn *seal;
	void *seal_arg;
	struct commit_stats stats;
	struct commit_job **batch; /* batch_max, the thread's */
	struct db_addr_set *sets;  /* batch_max, the thread's */
};

static void
tell(struct commit_job *job)
{
	/* After this the job may be freed by whoever waits for it. */
	job->done(job->arg);
}

/*
 * Whether batch[0..n-1] writes what j writes already: the addresses of
 * its device, or a revocation of its certificate.
 */
static int
holds(struct commit_job *const *batch, int n, const struct commit_job *j)
{
	int i;

	for (i = 0; i < n; i++) {
		if (batch[i]->kind != j->kind)
			continue;
		if (j->kind == COMMIT_ADDR &&
		    batch[i]->set.cert_id == j->set.cert_id)
			return 1;
		if (j->kind == COMMIT_REVOKE &&
		    strcmp(batch[i]->revoke.serial, j->revoke.serial) == 0)
			return 1;
	}
	return 0;
}

/* Take up to batch_max queued jobs, none for a certificate twice. */
static int
take(struct commit *c)
{
	struct commit_job **pp = &c->head, *j;
	int n = 0;

	while ((j = *pp) != NULL && n < c->batch_max) {
		if (holds(c->batch, n, j)) {
			pp = &j->next;
			continue;
		}
		*pp = j->next;
		j->next = NULL;
		c->batch[n++] = j;
		c->queued--;
	}
	/* The tail moves to the last job left, or to head when none is. */
	c->tail = &c->head;
	for (j = c->head; j != NULL; j = j->next)
		c->tail = &j->next;
	return n;
}

/* The window: wait until it ends or a batch is full. */
static void
gather(struct commit *c)
{
	struct timespec until;

	if (c->window_us <= 0)
		return;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_nsec += (long)c->window_us * 1000;
	until.tv_sec += until.tv_nsec / 1000000000;
	until.tv_nsec %= 1000000000;
	while (c->queued < c->batch_max && !c->stopping)
		if (pthread_cond_timedwait(&c->cv, &c->mu, &until) == ETIMEDOUT)
			break;
}

/* A revocation and its audit row, in the open transaction. */
static int
revoke_one(struct db *db, struct commit_job *j, struct db_err *de)
{
	struct commit_revoke *rv = &j->revoke;
	char detail[64];

	if (db_cert_revoke(db, rv->issuer, rv->serial, rv->reason, &rv->raised,
		&rv->holder, de) == -1)
		return -1;
	snprintf(detail, sizeof(detail), "reason=%s%s", rv->reason_name,
	    rv->raised ? " (raised)" : "");
	return db_audit(db, j->audit.actor, j->audit.action, j->audit.target,
	    rv->serial, j->audit.source, detail, de);
}

/*
 * jobs[0..n-1] in one transaction: the addresses in one statement (sets,
 * n of them, is where they go, and their expiry comes back), each
 * certificate, each revocation, and then one CRL for them all.  A write
 * that is one statement needs no transaction around it.
 */
static int
write_jobs(struct db *db, struct commit_job *const *jobs, int n,
    struct db_addr_set *sets, commit_seal_fn *seal, void *seal_arg,
    struct db_err *de)
{
	int i, nset = 0, nrevoke = 0;

	for (i = 0; i < n; i++)
		if (jobs[i]->kind == COMMIT_ADDR)
			sets[nset++] = jobs[i]->set;
		else if (jobs[i]->kind == COMMIT_REVOKE)
			nrevoke++;
	if (nset == n)
		return db_addr_replace_many(db, sets, (size_t)nset, de);
	if (n == 1 && jobs[0]->kind == COMMIT_CERT)
		return db_cert_record(db, &jobs[0]->cert, &jobs[0]->audit, NULL,
		    de);
	if (db_begin(db, de) == -1)
		return -1;
	if (nset > 0 && db_addr_replace_many(db, sets, (size_t)nset, de) == -1)
		goto err;
	for (i = 0; i < n; i++)
		if ((jobs[i]->kind == COMMIT_CERT &&
			db_cert_record(db, &jobs[i]->cert, &jobs[i]->audit,
			    NULL, de) == -1) ||
		    (jobs[i]->kind == COMMIT_REVOKE &&
			revoke_one(db, jobs[i], de) == -1))
			goto err;
	if (nrevoke > 0 && seal != NULL && seal(seal_arg, db, de) == -1)
		goto err;
	if (db_commit(db, de) == -1)
		goto err;
	return 0;
err:
	db_rollback(db);
	return -1;
}

/* What write_jobs gave the addresses of jobs[0..n-1], back to them. */
static void
expiry_back(struct commit_job *const *jobs, int n,
    const struct db_addr_set *sets)
{
	int i, k;

	for (i = 0, k = 0; i < n; i++)
		if (jobs[i]->kind == COMMIT_ADDR)
			jobs[i]->set.expires_at = sets[k++].expires_at;
}

void
commit_now(struct db *db, struct commit_job *j, commit_seal_fn *seal,
    void *seal_arg)
{
	struct db_addr_set set;

	j->rv = write_jobs(db, &j, 1, &set, seal, seal_arg, &j->err);
	if (j->rv == 0)
		expiry_back(&j, 1, &set);
}

/* Write batch[0..n-1]: together, or one by one when together failed. */
static void
run(struct commit *c, int n)
{
	struct db_err de;
	int i, retried = 0;

	if (write_jobs(c->db, c->batch, n, c->sets, c->seal, c->seal_arg,
		&de) == 0) {
		expiry_back(c->batch, n, c->sets);
		for (i = 0; i < n; i++)
			c->batch[i]->rv = 0;
	} else if (n == 1 || de.code == DB_ERR_UNAVAILABLE) {
		/* Alone already, or alone it would fail the same way. */
		for (i = 0; i < n; i++) {
			c->batch[i]->rv = -1;
			c->batch[i]->err = de;
		}
	} else {
		log_info("group commit: a batch of %d failed (%s); each is "
			 "tried alone",
		    n, de.msg);
		for (i = 0; i < n; i++)
			commit_now(c->db, c->batch[i], c->seal, c->seal_arg);
		retried = n;
	}
	pthread_mutex_lock(&c->mu);
	c->stats.batches++;
	c->stats.jobs += (unsigned long)n;
	c->stats.retried += (unsigned long)retried;
	pthread_mutex_unlock(&c->mu);
	for (i = 0; i < n; i++)
		tell(c->batch[i]);
}

static void *
commit_main(void *arg)
{
	struct commit *c = arg;
	int n;

	for (;;) {
		pthread_mutex_lock(&c->mu);
		while (c->head == NULL && !c->stopping)
			pthread_cond_wait(&c->cv, &c->mu);
		if (c->head == NULL) {
			pthread_mutex_unlock(&c->mu);
			break;
		}
		gather(c);
		n = take(c);
		pthread_mutex_unlock(&c->mu);
		run(c, n);
	}
	return NULL;
}

struct commit *
commit_new(struct db *db, int batch_max, int window_us, commit_seal_fn *seal,
    void *seal_arg, char *errbuf, size_t errlen)
{
	struct commit *c;
	pthread_condattr_t ca;

	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->batch = calloc((size_t)batch_max, sizeof(*c->batch))) == NULL ||
	    (c->sets = calloc((size_t)batch_max, sizeof(*c->sets))) == NULL) {
		snprintf(errbuf, errlen, "out of memory");
		goto err;
	}
	c->db = db;
	c->batch_max = batch_max;
	c->window_us = window_us;
	c->seal = seal;
	c->seal_arg = seal_arg;
	c->tail = &c->head;
	pthread_mutex_init(&c->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&c->thread, NULL, commit_main, c) != 0) {
		snprintf(errbuf, errlen,
		    "cannot start the group commit "
		    "thread");
		pthread_cond_destroy(&c->cv);
		pthread_mutex_destroy(&c->mu);
		goto err;
	}
	return c;
err:
	if (c != NULL) {
		free(c->batch);
		free(c->sets);
		free(c);
	}
	db_free(db);
	return NULL;
}

void
commit_submit(struct commit *c, struct commit_job *job)
{
	job->next = NULL;
	pthread_mutex_lock(&c->mu);
	if (c->stopping) {
		pthread_mutex_unlock(&c->mu);
		job->rv = -1;
		memset(&job->err, 0, sizeof(job->err));
		job->err.code = DB_ERR_UNAVAILABLE;
		snprintf(job->err.msg, sizeof(job->err.msg),
		    "the registry is "
		    "stopping");
		tell(job);
		return;
	}
	*c->tail = job;
	c->tail = &job->next;
	c->queued++;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

void
commit_stats(struct commit *c, struct commit_stats *st)
{
	pthread_mutex_lock(&c->mu);
	*st = c->stats;
	st->queued = (unsigned long)c->queued;
	pthread_mutex_unlock(&c->mu);
}

void
commit_stop(struct commit *c)
{
	int running;

	if (c == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	running = !c->stopping;
	c->stopping = 1;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	if (running)
		pthread_join(c->thread, NULL);
}

void
commit_free(struct commit *c)
{
	if (c == NULL)
		return;
	commit_stop(c);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	db_free(c->db);
	free(c->batch);
	free(c->sets);
	free(c);
}
