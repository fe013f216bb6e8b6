/*
 * pgembed.c - run a private PostgreSQL cluster with initdb and pg_ctl.
 *
 * The tools are run with fork/exec and an argument vector (never a
 * shell).  Their output goes to DATA/pg-tools.log so that a failure can
 * point the user at it.
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pgembed.h"

#define PG_DBNAME "dir"
#define PG_SUPERUSER "dir"

struct pgembed {
	char datadir[PATH_MAX - 64]; /* room for the names appended below */
	char pgdata[PATH_MAX];
	char sockdir[PATH_MAX];
	char logpath[PATH_MAX];
	char bindir[PATH_MAX];
	char conninfo[PATH_MAX + 64];
	uid_t uid; /* the user the cluster runs as */
	gid_t gid;
	int drop;    /* we are root: run the tools as uid/gid */
	int started; /* this process started the server */
};

/*
 * Where initdb lives: $DIR_PG_BINDIR, else the newest
 * /usr/lib/postgresql/N/bin (Debian keeps it off PATH), else PATH.
 */
static void
find_bindir(struct pgembed *pg)
{
	const char *env = getenv("DIR_PG_BINDIR");
	struct dirent *de;
	DIR *d;
	long best = -1, v;
	char path[PATH_MAX];

	pg->bindir[0] = '\0';
	if (env != NULL && *env != '\0') {
		snprintf(pg->bindir, sizeof(pg->bindir), "%s", env);
		return;
	}
	if ((d = opendir("/usr/lib/postgresql")) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		char *end;

		v = strtol(de->d_name, &end, 10);
		if (*end != '\0' || v <= best)
			continue;
		snprintf(path, sizeof(path), "/usr/lib/postgresql/%s/bin/initdb",
		    de->d_name);
		if (access(path, X_OK) == 0) {
			best = v;
			snprintf(pg->bindir, sizeof(pg->bindir),
			    "/usr/lib/postgresql/%s/bin", de->d_name);
		}
	}
	closedir(d);
}

static void
tool_path(const struct pgembed *pg, const char *tool, char *buf, size_t len)
{
	if (pg->bindir[0] != '\0')
		snprintf(buf, len, "%s/%s", pg->bindir, tool);
	else
		snprintf(buf, len, "%s", tool);
}

/*
 * Run argv as the cluster's user with output appended to the tools log;
 * returns the exit status, or -1 if it could not run.  `detach` puts the
 * child in its own session so the postmaster it leaves behind does not
 * get our terminal's signals.
 */
static int
run_tool(const struct pgembed *pg, char *const argv[], int detach)
{
	sigset_t none;
	pid_t pid;
	int fd, status;

	fd = open(pg->logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
	    0600);
	if (fd == -1)
		return -1;
	if ((pid = fork()) == -1) {
		close(fd);
		return -1;
	}
	if (pid == 0) {
		/* dird blocks signals in all threads: undo that for the child. */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		if (detach)
			setsid();
		if (dup2(fd, STDOUT_FILENO) == -1 ||
		    dup2(fd, STDERR_FILENO) == -1)
			_exit(126);
		if (pg->drop && (setgroups(0, NULL) == -1 ||
				    setgid(pg->gid) == -1 ||
				    setuid(pg->uid) == -1)) {
			dprintf(STDERR_FILENO, "cannot switch user: %s\n",
			    strerror(errno));
			_exit(126);
		}
		if (chdir(pg->datadir) == -1) {
			dprintf(STDERR_FILENO,
			    "%s is not reachable by the PostgreSQL user "
			    "(uid %d): %s\n",
			    pg->datadir, (int)getuid(), strerror(errno));
			_exit(126);
		}
		execv(argv[0], argv);
		execvp(argv[0], argv);
		dprintf(STDERR_FILENO, "%s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(fd);
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static int
make_dir(const struct pgembed *pg, const char *path, char *errbuf,
    size_t errlen)
{
	if (mkdir(path, 0700) == -1 && errno != EEXIST) {
		snprintf(errbuf, errlen, "cannot create %s: %s", path,
		    strerror(errno));
		return -1;
	}
	if (pg->drop && chown(path, pg->uid, pg->gid) == -1) {
		snprintf(errbuf, errlen, "cannot hand %s to the PostgreSQL "
		    "user: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* When root, pick the unprivileged user that will own the cluster. */
static int
pick_user(struct pgembed *pg, char *errbuf, size_t errlen)
{
	const char *name = getenv("DIR_PG_USER");
	struct passwd *pw;

	if (geteuid() != 0) {
		pg->uid = geteuid();
		pg->gid = getegid();
		return 0;
	}
	if (name == NULL || *name == '\0')
		name = "postgres";
	if ((pw = getpwnam(name)) == NULL || pw->pw_uid == 0) {
		snprintf(errbuf, errlen, "PostgreSQL refuses to run as root and "
		    "there is no unprivileged user '%s' to run it as; set "
		    "DIR_PG_USER or run as another user", name);
		return -1;
	}
	pg->uid = pw->pw_uid;
	pg->gid = pw->pw_gid;
	pg->drop = 1;
	/* The cluster's user must be able to reach DATA/pg. */
	if (chmod(pg->datadir, 0711) == -1) {
		snprintf(errbuf, errlen, "%s: %s", pg->datadir, strerror(errno));
		return -1;
	}
	return 0;
}

static int
cluster_init(struct pgembed *pg, char *errbuf, size_t errlen)
{
	char initdb[PATH_MAX], marker[PATH_MAX + 16];
	char *argv[16];
	int n = 0, rc;

	snprintf(marker, sizeof(marker), "%s/PG_VERSION", pg->pgdata);
	if (access(marker, F_OK) == 0)
		return 0;
	if (make_dir(pg, pg->pgdata, errbuf, errlen) == -1)
		return -1;
	tool_path(pg, "initdb", initdb, sizeof(initdb));
	argv[n++] = initdb;
	argv[n++] = "-D";
	argv[n++] = pg->pgdata;
	argv[n++] = "-U";
	argv[n++] = PG_SUPERUSER;
	/* Only the 0700 socket directory leads here; see pgembed.h. */
	argv[n++] = "-A";
	argv[n++] = "trust";
	argv[n++] = "-E";
	argv[n++] = "UTF8";
	argv[n++] = "--no-locale";
	if (getenv("DIR_PG_NOSYNC") != NULL)
		argv[n++] = "--no-sync";
	argv[n] = NULL;
	if ((rc = run_tool(pg, argv, 0)) != 0) {
		snprintf(errbuf, errlen, "initdb failed (status %d); see %s",
		    rc, pg->logpath);
		return -1;
	}
	return 1; /* new cluster: the database must be created */
}

static int
cluster_running(const struct pgembed *pg)
{
	char pgctl[PATH_MAX];
	char *argv[] = { pgctl, "status", "-D", (char *)pg->pgdata, NULL };

	tool_path(pg, "pg_ctl", pgctl, sizeof(pgctl));
	return run_tool(pg, argv, 0) == 0;
}

static int
cluster_start(struct pgembed *pg, char *errbuf, size_t errlen)
{
	char pgctl[PATH_MAX], opts[PATH_MAX + 256], log[PATH_MAX + 16];
	char *argv[] = { pgctl, "start", "-w", "-t", "60", "-D", pg->pgdata,
		"-l", log, "-o", opts, NULL };
	int rc;

	tool_path(pg, "pg_ctl", pgctl, sizeof(pgctl));
	snprintf(log, sizeof(log), "%s/server.log", pg->pgdata);
	snprintf(opts, sizeof(opts),
	    "-c listen_addresses='' -c unix_socket_directories='%s' "
	    "-c unix_socket_permissions=0700",
	    pg->sockdir);
	if ((rc = run_tool(pg, argv, 1)) != 0) {
		snprintf(errbuf, errlen, "PostgreSQL did not start (pg_ctl "
		    "status %d); see %s and %s", rc, pg->logpath, log);
		return -1;
	}
	pg->started = 1;
	return 0;
}

static int
cluster_createdb(struct pgembed *pg, char *errbuf, size_t errlen)
{
	char createdb[PATH_MAX];
	char *argv[] = { createdb, "-h", pg->sockdir, "-U", PG_SUPERUSER,
		PG_DBNAME, NULL };
	int rc;

	tool_path(pg, "createdb", createdb, sizeof(createdb));
	if ((rc = run_tool(pg, argv, 0)) != 0) {
		snprintf(errbuf, errlen, "createdb failed (status %d); see %s",
		    rc, pg->logpath);
		return -1;
	}
	return 0;
}

struct pgembed *
pgembed_start(const char *datadir, char *errbuf, size_t errlen)
{
	struct pgembed *pg;
	int fresh;

	if ((pg = calloc(1, sizeof(*pg))) == NULL) {
		snprintf(errbuf, errlen, "out of memory");
		return NULL;
	}
	{
		char real[PATH_MAX];

		if (realpath(datadir, real) == NULL) {
			snprintf(errbuf, errlen, "data directory %s: %s",
			    datadir, strerror(errno));
			goto err;
		}
		if (strlen(real) >= sizeof(pg->datadir)) {
			snprintf(errbuf, errlen, "data directory path is too "
			    "long");
			goto err;
		}
		memcpy(pg->datadir, real, strlen(real) + 1);
	}
	snprintf(pg->pgdata, sizeof(pg->pgdata), "%s/pg", pg->datadir);
	snprintf(pg->sockdir, sizeof(pg->sockdir), "%s/run", pg->datadir);
	snprintf(pg->logpath, sizeof(pg->logpath), "%s/pg-tools.log",
	    pg->datadir);
	/* sun_path holds 107 bytes; the socket is SOCKDIR/.s.PGSQL.5432. */
	if (strlen(pg->sockdir) + sizeof("/.s.PGSQL.5432") > 107) {
		snprintf(errbuf, errlen, "data directory path %s is too long "
		    "for a Unix socket; use a shorter one", pg->datadir);
		goto err;
	}
	find_bindir(pg);
	if (pick_user(pg, errbuf, errlen) == -1)
		goto err;
	if ((fresh = cluster_init(pg, errbuf, errlen)) == -1)
		goto err;
	if (make_dir(pg, pg->sockdir, errbuf, errlen) == -1)
		goto err;
	if (!cluster_running(pg) && cluster_start(pg, errbuf, errlen) == -1)
		goto err;
	if (fresh && cluster_createdb(pg, errbuf, errlen) == -1) {
		(void)pgembed_stop(pg);
		return NULL;
	}
	snprintf(pg->conninfo, sizeof(pg->conninfo),
	    "host=%s dbname=" PG_DBNAME " user=" PG_SUPERUSER, pg->sockdir);
	return pg;
err:
	free(pg);
	return NULL;
}

const char *
pgembed_conninfo(const struct pgembed *pg)
{
	return pg->conninfo;
}

int
pgembed_stop(struct pgembed *pg)
{
	char pgctl[PATH_MAX];
	char *argv[] = { pgctl, "stop", "-w", "-t", "60", "-m", "fast", "-D",
		NULL, NULL };
	int rv = 0;

	if (pg == NULL)
		return 0;
	if (pg->started) {
		argv[8] = pg->pgdata;
		tool_path(pg, "pg_ctl", pgctl, sizeof(pgctl));
		if (run_tool(pg, argv, 0) != 0)
			rv = -1;
	}
	free(pg);
	return rv;
}
