/*
 * signer.c - the process that holds dird's CA key (signer.h).
 *
 * What fences it in, on Linux, once the key is loaded:
 *  - every descriptor but standard input, output and error, the sockets
 *    to dird and (with --syslog) the log's is closed, and RLIMIT_NOFILE
 *    says no more may be opened: no file, no socket;
 *  - PR_SET_DUMPABLE 0: no core file, and no process of the same user
 *    (a dird that was taken over, say) may ptrace it or read its
 *    memory through /proc; RLIMIT_CORE 0 as well;
 *  - PR_SET_NO_NEW_PRIVS, and RLIMIT_NPROC 0: it can not gain
 *    privileges by exec, nor start a process (root is exempt from
 *    RLIMIT_NPROC; run dird as its own user);
 *  - it ignores SIGINT, SIGTERM and SIGHUP: it ends when dird closes
 *    its ends of the sockets, also when dird is killed.
 *  - a seccomp filter (sandbox.c): reading and writing what it holds,
 *    memory that is never executable, random bytes; no file, socket,
 *    process or other system call.  A platform without seccomp runs
 *    the signer without, and dird says so at start.
 * All the signer reads are the messages ca_signer_serve checks.
 *
 * Under AddressSanitizer the leak check at exit opens files in /proc and
 * starts a tracer thread, so these limits leave it room there, and
 * there is no seccomp filter.
 */
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "log.h"
#include "reg.h"
#include "sandbox.h"
#include "signer.h"

/*
 * The channels to dird (ca_signer_open_remote_many): enough for the
 * request threads of a registry to sign at once without waiting for
 * each other.  In the signer process they are descriptors SIGNER_FD on.
 */
#define SIGNER_CHANNELS 8
#define SIGNER_FD 3

#if defined(__SANITIZE_ADDRESS__)
#define SIGNER_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SIGNER_SANITIZED 1
#endif
#endif
#ifndef SIGNER_SANITIZED
#define SIGNER_SANITIZED 0
#endif

static int
set_limit(int resource, rlim_t n)
{
	struct rlimit rl = { n, n };

	return setrlimit(resource, &rl);
}

/* Close every descriptor above fd; the socket was moved to fd already. */
static void
close_above(int fd)
{
	long max, i;

	if (close_range((unsigned int)fd + 1, ~0U, 0) == 0)
		return;
	/* An older kernel: one by one. */
	if ((max = sysconf(_SC_OPEN_MAX)) < 0 || max > 65536)
		max = 65536;
	for (i = fd + 1; i < max; i++)
		(void)close((int)i);
}

/* The highest descriptor open now. */
static int
highest_fd(void)
{
	int fd;

	for (fd = 64; fd > 0; fd--)
		if (fcntl(fd, F_GETFD) != -1)
			return fd;
	return 0;
}

/* What signer.c's comment at the top says; -1 with errno. */
static int
sandbox(void)
{
	rlim_t nofile = (rlim_t)highest_fd() + 1;

	if (SIGNER_SANITIZED)
		nofile += 16;
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1 ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 ||
	    set_limit(RLIMIT_CORE, 0) == -1 ||
	    set_limit(RLIMIT_NOFILE, nofile) == -1)
		return -1;
	if (SIGNER_SANITIZED)
		return 0;
	if (set_limit(RLIMIT_NPROC, 0) == -1)
		return -1;
	switch (sandbox_seccomp()) {
	case -1:
		return -1;
	case 1:
		log_warnx("signer: this platform offers no seccomp filter; "
			  "the CA signer process runs without one");
		break;
	}
	return 0;
}

/*
 * Move the channels to SIGNER_FD, SIGNER_FD + 1, ...: first above that
 * range, so that no dup2 lands on a channel not yet moved.
 */
static int
move_channels(const int *fds)
{
	int tmp[SIGNER_CHANNELS];
	size_t i;

	for (i = 0; i < SIGNER_CHANNELS; i++)
		if ((tmp[i] = fcntl(fds[i], F_DUPFD,
			 SIGNER_FD + SIGNER_CHANNELS)) == -1)
			return -1;
	for (i = 0; i < SIGNER_CHANNELS; i++)
		close(fds[i]);
	for (i = 0; i < SIGNER_CHANNELS; i++) {
		if (dup2(tmp[i], SIGNER_FD + (int)i) == -1)
			return -1;
		close(tmp[i]);
	}
	return 0;
}

/* Say why on every channel: dird reads the first. */
static void
refuse_all(const struct ca_err *e)
{
	int i;

	for (i = 0; i < SIGNER_CHANNELS; i++)
		(void)ca_signer_refuse(SIGNER_FD + i, e);
}

/* The signer process: never returns. */
static void __attribute__((noreturn))
signer_main(const char *datadir, const int *fds)
{
	char key[PATH_MAX + 16], cert[PATH_MAX + 16];
	int chan[SIGNER_CHANNELS], rv = 1, i;
	unsigned char seed[1];
	struct ca_signer *s = NULL;
	struct ca_err e;

	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	(void)prctl(PR_SET_NAME, "dird-signer", 0, 0, 0);
	log_detach();
	if (move_channels(fds) == -1) {
		log_warn("signer: moving its sockets");
		exit(1);
	}
	close_above(SIGNER_FD + SIGNER_CHANNELS - 1);
	log_reopen();
	for (i = 0; i < SIGNER_CHANNELS; i++)
		chan[i] = SIGNER_FD + i;

	snprintf(key, sizeof(key), "%s/%s", datadir, REG_CA_KEY);
	snprintf(cert, sizeof(cert), "%s/%s", datadir, REG_CA_CERT);
	if ((s = ca_signer_open_key(key, cert, &e)) == NULL) {
		refuse_all(&e);
		exit(1);
	}
	/*
	 * Seed the random generator (ECDSA needs it for every signature)
	 * while files may still be opened, in case it wants one.
	 */
	if (RAND_priv_bytes(seed, sizeof(seed)) != 1 || sandbox() == -1) {
		e.code = CA_ERR_CRYPTO;
		snprintf(e.msg, sizeof(e.msg),
		    "the CA signer process cannot "
		    "fence itself in: %s",
		    strerror(errno));
		refuse_all(&e);
		goto out;
	}
	if (ca_signer_serve_many(s, chan, SIGNER_CHANNELS, &e) == -1)
		log_warnx("signer: %s", e.msg);
	else
		rv = 0;
out:
	ca_signer_free(s);
	for (i = 0; i < SIGNER_CHANNELS; i++)
		close(chan[i]);
	exit(rv);
}

/* Close both ends of the first n socket pairs. */
static void
close_pairs(int (*sv)[2], size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		close(sv[i][0]);
		close(sv[i][1]);
	}
}

struct ca_signer *
signer_start(const char *datadir, pid_t *pid, char *errbuf, size_t errlen)
{
	int sv[SIGNER_CHANNELS][2], mine[SIGNER_CHANNELS],
	    theirs[SIGNER_CHANNELS];
	struct ca_signer *s;
	struct ca_err e;
	size_t i;

	/*
	 * Close-on-exec: the programs dird runs later (PostgreSQL) must not
	 * hold the sockets, or the signer would not see dird go.
	 */
	for (i = 0; i < SIGNER_CHANNELS; i++) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv[i]) ==
		    -1) {
			snprintf(errbuf, errlen,
			    "cannot start the CA signer: socketpair: %s",
			    strerror(errno));
			close_pairs(sv, i);
			return NULL;
		}
		mine[i] = sv[i][0];
		theirs[i] = sv[i][1];
	}
	/* Nothing buffered may be written twice. */
	fflush(stdout);
	fflush(stderr);
	if ((*pid = fork()) == -1) {
		snprintf(errbuf, errlen, "cannot start the CA signer: fork: %s",
		    strerror(errno));
		close_pairs(sv, SIGNER_CHANNELS);
		return NULL;
	}
	if (*pid == 0) {
		for (i = 0; i < SIGNER_CHANNELS; i++)
			close(mine[i]);
		signer_main(datadir, theirs);
	}
	for (i = 0; i < SIGNER_CHANNELS; i++)
		close(theirs[i]);
	if ((s = ca_signer_open_remote_many(mine, SIGNER_CHANNELS, &e)) ==
	    NULL) {
		snprintf(errbuf, errlen, "cannot load the CA: %s", e.msg);
		signer_wait(*pid);
		return NULL;
	}
	return s;
}

void
signer_wait(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) == -1)
		if (errno != EINTR)
			return;
	if (WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS)
		log_warnx("the CA signer process was killed by signal %d: "
			  "it made a system call its seccomp filter forbids",
		    WTERMSIG(st));
	else if (WIFSIGNALED(st))
		log_warnx("the CA signer process was killed by signal %d",
		    WTERMSIG(st));
}
