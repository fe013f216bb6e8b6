/*
 * dird - the Domain Identity Registry server.
 *
 * Reads top to bottom: options, logging, the CA signer process (it holds
 * the CA key, signer.h), configuration, the CA and the database
 * (embedded cluster or DSN, migrations), the listeners, then the
 * main thread waits for signals: SIGTERM/SIGINT drain and exit (a second
 * one exits at once), SIGHUP reads dird.conf again and puts the settings
 * that may change while running in force.
 */
#include <errno.h>
#include <limits.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commit.h"
#include "fed.h"
#include "http.h"
#include "log.h"
#include "push.h"
#include "reg.h"
#include "sdnotify.h"
#include "signer.h"

/*
 * How long SIGTERM waits for the requests in flight: well within what a
 * service manager allows for a stop (the unit's TimeoutStopSec is 90),
 * with time left to stop the embedded PostgreSQL.
 */
#define DRAIN_SECS 30

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: dird --data DIR [--dsn CONNINFO] [--listen ADDR:PORT]...\n"
	    "            [--workers N] [--set KEY=VALUE]... [--check]\n"
	    "            [--debug] [--syslog]\n"
	    "\n"
	    "  --data DIR        data directory made by 'dirctl init'\n"
	    "  --dsn CONNINFO    use this PostgreSQL instead of the embedded "
	    "one\n"
	    "                    (default: $DIR_DSN, then dird.conf's dsn)\n"
	    "  --listen A:P      listen address (repeatable; default "
	    "[::]:4604)\n"
	    "  --workers N       worker threads (database connections)\n"
	    "  --set KEY=VALUE   override any dird.conf setting\n"
	    "  --check           validate the configuration and exit\n"
	    "  --debug           log every request\n"
	    "  --syslog          log to syslog instead of stderr\n");
}

/*
 * A setting from the command line: --listen and --workers name their key,
 * --set gives KEY=VALUE.  Both point into argv, so nothing is allocated
 * and no exit path has anything to free.
 */
struct opt_set {
	const char *key; /* NULL: arg is KEY=VALUE */
	const char *arg;
};

/* Apply one command-line setting to the configuration. */
static int
set_kv(struct conf *c, const struct opt_set *o, int *listen_seen)
{
	char key[64], err[256];
	const char *eq = strchr(o->arg, '='), *value = o->arg;

	if (o->key != NULL) {
		snprintf(key, sizeof(key), "%s", o->key);
	} else if (eq == NULL || (size_t)(eq - o->arg) >= sizeof(key)) {
		fprintf(stderr, "dird: --set wants KEY=VALUE, not '%s'\n",
		    o->arg);
		return -1;
	} else {
		memcpy(key, o->arg, (size_t)(eq - o->arg));
		key[eq - o->arg] = '\0';
		value = eq + 1;
	}
	/* The first --listen replaces the configured addresses. */
	if (strcmp(key, "listen") == 0 && !*listen_seen) {
		c->nlisten = 0;
		*listen_seen = 1;
	}
	if (conf_set(c, key, value, err, sizeof(err)) == -1) {
		fprintf(stderr, "dird: %s\n", err);
		return -1;
	}
	return 0;
}

/*
 * The group committer of writes, with a database connection of
 * its own, unless commit_batch = 1 (each write commits alone).
 */
static int
start_commit(struct reg *r, char *errbuf, size_t errlen)
{
	struct db_err de;
	struct db *db;

	if (r->conf.commit_batch <= 1)
		return 0;
	if ((db = reg_db(r, &de)) == NULL) {
		snprintf(errbuf, errlen, "group commit: %s", de.msg);
		return -1;
	}
	r->commit = commit_new(db, r->conf.commit_batch,
	    r->conf.commit_window_us, reg_crl_seal, r, errbuf, errlen);
	return r->commit == NULL ? -1 : 0;
}

static void
restart_only(const char *key, void *arg)
{
	(void)arg;
	log_warnx("SIGHUP: %s changes only when dird is restarted; the "
	    "value in use stays", key);
}

/*
 * SIGHUP: dird.conf as it is now, with the command line's settings over
 * it as at start.  A file with any error changes nothing (the old
 * configuration stays whole, and the log says why); of a good one, the
 * settings read per request take effect for the next request.
 */
static void
reload(struct reg *r, const struct opt_set *sets, int nsets)
{
	char path[PATH_MAX + 16], errbuf[512];
	struct conf fresh;
	int i, n, listen_seen = 0;

	conf_defaults(&fresh);
	reg_path(r, REG_CONF, path, sizeof(path));
	if (conf_load(path, &fresh, errbuf, sizeof(errbuf)) == -1) {
		log_warnx("SIGHUP: %s; the configuration in use stays", errbuf);
		return;
	}
	/* They were checked at start: they apply as they did then. */
	for (i = 0; i < nsets; i++)
		if (set_kv(&fresh, &sets[i], &listen_seen) == -1) {
			log_warnx("SIGHUP: a command-line setting no longer "
			    "fits; the configuration in use stays");
			return;
		}
	if ((n = reg_reload(r, &fresh, restart_only, NULL)) == -1)
		log_warnx("SIGHUP: out of memory; the configuration in use "
		    "stays");
	else
		log_info("SIGHUP: configuration read again, %d setting%s "
		    "changed", n, n == 1 ? "" : "s");
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "data", required_argument, NULL, 'D' },
		{ "dsn", required_argument, NULL, 'd' },
		{ "listen", required_argument, NULL, 'l' },
		{ "workers", required_argument, NULL, 'w' },
		{ "set", required_argument, NULL, 's' },
		{ "check", no_argument, NULL, 'n' },
		{ "debug", no_argument, NULL, 'v' },
		{ "syslog", no_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *data = getenv("DIR_DATA"), *dsn = getenv("DIR_DSN");
	struct opt_set sets[64];
	struct conf probe;
	int nsets = 0, check = 0, debug = 0, use_syslog = 0, ch, sig, i;
	int listen_seen = 0, stopping = 0;
	pid_t signer_pid;
	char errbuf[512], datadir[PATH_MAX];
	struct ca_signer *signer;
	struct http_server *srv;
	struct reg reg;
	sigset_t sigs;

	while ((ch = getopt_long(argc, argv, "D:d:l:w:s:nvShV", lo, NULL)) !=
	    -1) {
		switch (ch) {
		case 'D':
			data = optarg;
			break;
		case 'd':
			dsn = optarg;
			break;
		case 'l':
		case 'w':
		case 's':
			if (nsets == (int)(sizeof(sets) / sizeof(sets[0]))) {
				fprintf(stderr, "dird: too many options\n");
				return 2;
			}
			sets[nsets].key = ch == 's' ? NULL :
			    ch == 'l' ? "listen" : "workers";
			sets[nsets].arg = optarg;
			nsets++;
			break;
		case 'n':
			check = 1;
			break;
		case 'v':
			debug = 1;
			break;
		case 'S':
			use_syslog = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("dird %s\n", DIR_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || data == NULL) {
		usage(stderr);
		return 2;
	}
	/* A bad value on the command line is a usage error, found before
	 * anything is opened: try every setting on the defaults. */
	conf_defaults(&probe);
	for (i = 0; i < nsets; i++)
		if (set_kv(&probe, &sets[i], &listen_seen) == -1)
			return 2;
	listen_seen = 0;

	/* Logging first, so that every later failure is reported. */
	log_init(debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO, use_syslog);

	/*
	 * Block the signals we handle before any thread exists, so that only
	 * the main thread's sigwait() sees them.
	 */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* Configuration, CA and database (migrations applied here). */
	if (check) {
		struct conf c;
		char path[PATH_MAX + 16];

		conf_defaults(&c);
		snprintf(path, sizeof(path), "%s/%s", data, REG_CONF);
		if (conf_load(path, &c, errbuf, sizeof(errbuf)) == -1) {
			fprintf(stderr, "dird: %s\n", errbuf);
			return 1;
		}
		for (i = 0; i < nsets; i++)
			if (set_kv(&c, &sets[i], &listen_seen) == -1)
				return 1;
		printf("dird: configuration OK\n");
		return 0;
	}
	/*
	 * The CA key's own process, before a thread, a listener or a
	 * database connection exists: the key is read there, never here.
	 */
	if (reg_datadir(data, datadir, errbuf, sizeof(errbuf)) == -1 ||
	    (signer = signer_start(datadir, &signer_pid, errbuf,
	    sizeof(errbuf))) == NULL)
		fatalx("%s", errbuf);
	if (reg_open(&reg, datadir, dsn, signer, errbuf, sizeof(errbuf)) == -1)
		fatalx("%s", errbuf);
	log_info("CA key: in signer process %ld", (long)signer_pid);
	for (i = 0; i < nsets; i++)
		if (set_kv(&reg.conf, &sets[i], &listen_seen) == -1) {
			reg_close(&reg);
			return 1;
		}
	log_info("database: %s", reg.pg ? "embedded" : "external");

	/*
	 * What the requests use besides, all in the one environment: the
	 * metrics, the authenticator, the answer cache (reg.c chooses its
	 * mode and starts its listener); then the listeners.
	 */
	if ((reg.metrics = metrics_new()) == NULL) {
		reg_close(&reg);
		fatalx("out of memory");
	}
	if ((reg.auth = auth_new(&reg.conf, errbuf, sizeof(errbuf))) == NULL) {
		metrics_free(reg.metrics);
		reg_close(&reg);
		fatalx("%s", errbuf);
	}
	if ((reg.fed = fed_new(&reg, errbuf, sizeof(errbuf))) == NULL ||
	    (reg.push = push_new(reg.conninfo, reg.conf.push_waiters,
		 reg.conf.push_user_waiters, errbuf, sizeof(errbuf))) == NULL ||
	    reg_cache_start(&reg, errbuf, sizeof(errbuf)) == -1 ||
	    start_commit(&reg, errbuf, sizeof(errbuf)) == -1 ||
	    (srv = http_start(&reg, errbuf, sizeof(errbuf))) == NULL) {
		log_warnx("%s", errbuf);
		commit_free(reg.commit);
		push_free(reg.push);
		fed_free(reg.fed);
		auth_free(reg.auth);
		metrics_free(reg.metrics);
		reg_close(&reg);
		return 1;
	}
	log_info("dird %s ready for %s (CA %s)", DIR_VERSION,
	    reg.conf.domain, ca_fingerprint(reg.ca));
	if (sdnotify("READY=1") == -1)
		log_warn("cannot notify the service manager");

	/* Signals are events for this thread. */
	for (;;) {
		if (sigwait(&sigs, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			reload(&reg, sets, nsets);
			continue;
		}
		if (stopping)
			break;
		stopping = 1;
		log_info("%s: finishing requests and stopping",
		    sig == SIGTERM ? "SIGTERM" : "SIGINT");
		/* A second signal during the drain ends the process at once. */
		pthread_sigmask(SIG_UNBLOCK, &sigs, NULL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		break;
	}
	(void)sdnotify("STOPPING=1");
	if ((i = http_drain(srv, DRAIN_SECS)) > 0)
		log_warnx("%d request%s still in flight after %d s; stopping "
		    "anyway", i, i == 1 ? "" : "s", DRAIN_SECS);
	/*
	 * Every write it holds committed (or failed) and its request woken,
	 * before the listeners stop: libmicrohttpd may not be stopped with a
	 * connection asleep.  A write that comes later fails at once.
	 */
	commit_stop(reg.commit);
	http_stop(srv);
	commit_free(reg.commit);
	push_free(reg.push);
	fed_free(reg.fed);
	auth_free(reg.auth);
	metrics_free(reg.metrics);
	reg_close(&reg);	/* and the cache */	/* the signer process sees its end of stream */
	signer_wait(signer_pid);
	log_info("stopped");
	return 0;
}
