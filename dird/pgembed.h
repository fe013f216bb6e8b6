/*
 * pgembed.h - the private PostgreSQL cluster under a data directory.
 *
 * With no DSN configured, dird and dirctl keep their database in DATA/pg,
 * created with the system's initdb on first use and run with pg_ctl on a
 * Unix socket in DATA/run only (no TCP).  The socket directory is mode
 * 0700, which is what makes "trust" authentication safe here.
 *
 * PostgreSQL refuses to run as root: when we are root, the cluster runs
 * as the user named by $DIR_PG_USER (default "postgres").
 */
#ifndef PGEMBED_H
#define PGEMBED_H

#include <stddef.h>

struct pgembed;

/*
 * Make sure the cluster under datadir exists and runs; start it if it is
 * not running (then pgembed_stop() stops it again).  On failure NULL and
 * a message in errbuf.
 */
struct pgembed *pgembed_start(const char *datadir, char *errbuf,
    size_t errlen) __attribute__((warn_unused_result));

/* libpq conninfo for the cluster's database; borrowed. */
const char *pgembed_conninfo(const struct pgembed *pg);

/* Stop the cluster if this process started it, and free pg. */
int pgembed_stop(struct pgembed *pg);

#endif
