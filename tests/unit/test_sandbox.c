/*
 * test_sandbox.c - the CA signer's seccomp filter (dird/sandbox.c) lets
 * the signer's work through and stops the rest: each case runs in a
 * child that installs the filter as the signer does, then tries one
 * thing; the parent reads how the child ended.
 *
 * TAP through tap.h.  Under valgrind, which runs the program's system
 * calls as its own and maps executable memory for it, a filter cannot
 * be installed: the program says so and skips.
 */
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/evp.h>

#include "sandbox.h"
#include "tap.h"

/* How a child ends: its exit status, or 128 + the signal that ended it. */
static int
outcome(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) == -1)
		if (errno != EINTR)
			return -1;
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return WEXITSTATUS(st);
}

/*
 * Run fn in a child under the filter.  fn returns 0 for what was
 * expected of it; 99 means the filter could not be installed.
 */
static int
sandboxed(int (*fn)(void *), void *arg)
{
	pid_t pid;

	fflush(stdout);
	if ((pid = fork()) == -1)
		return -1;
	if (pid == 0) {
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 ||
		    sandbox_seccomp() != 0)
			_exit(99);
		_exit(fn(arg));
	}
	return outcome(pid);
}

/* The signer's work: a signature by a key made before the filter. */
static int
sign_one(void *arg)
{
	unsigned char sig[128], tbs[64] = "to be signed";
	size_t len = sizeof(sig);
	EVP_MD_CTX *md;
	int ok;

	if ((md = EVP_MD_CTX_new()) == NULL)
		return 1;
	ok = EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, arg) == 1 &&
	    EVP_DigestSign(md, sig, &len, tbs, sizeof(tbs)) == 1;
	EVP_MD_CTX_free(md);
	return ok ? 0 : 1;
}

/* Memory, random bytes and a socket it holds all work. */
static int
work_as_usual(void *arg)
{
	int *sv = arg;
	unsigned char rnd[32], buf[4];
	char *big;
	void *p;

	if ((big = malloc(8 << 20)) == NULL)
		return 1;
	memset(big, 1, 8 << 20);
	free(big);
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || munmap(p, 4096) == -1)
		return 2;
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return 3;
	if (send(sv[1], "ping", 4, 0) != 4 || recv(sv[0], buf, 4, 0) != 4 ||
	    memcmp(buf, "ping", 4) != 0)
		return 4;
	return 0;
}

static int
open_file(void *arg)
{
	(void)arg;
	return open("/etc/hostname", O_RDONLY) == -1 && errno == EACCES ? 0 : 1;
}

static int
open_socket(void *arg)
{
	(void)arg;
	return socket(AF_INET, SOCK_STREAM, 0) == -1 && errno == EACCES ? 0 : 1;
}

static int
map_exec(void *arg)
{
	(void)arg;
	(void)mmap(NULL, 4096, PROT_READ | PROT_EXEC,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return 0;
}

static int
protect_exec(void *arg)
{
	void *p;

	(void)arg;
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 1;
	(void)mprotect(p, 4096, PROT_READ | PROT_EXEC);
	return 0;
}

static int
start_process(void *arg)
{
	(void)arg;
	(void)fork();
	return 0;
}

static int
run_program(void *arg)
{
	char *argv[] = { "true", NULL };

	(void)arg;
	(void)execv("/bin/true", argv);
	return 0;
}

/* arg: the parent's pid, read before the filter (getppid is not allowed). */
static int
signal_parent(void *arg)
{
	(void)kill(*(pid_t *)arg, 0);
	return 0;
}

static int
under_valgrind(void)
{
	const char *p = getenv("LD_PRELOAD");

	return p != NULL && strstr(p, "vgpreload") != NULL;
}

int
main(void)
{
	static const struct {
		const char *what;
		int (*fn)(void *);
	} killed[] = {
		{ "mapping executable memory", map_exec },
		{ "making memory executable", protect_exec },
		{ "starting a process", start_process },
		{ "running a program", run_program },
		{ "signalling another process", signal_parent },
	};
	pid_t self = getpid();
	EVP_PKEY *key;
	size_t i;
	int sv[2], r;

	if (under_valgrind()) {
		printf("1..0 # SKIP valgrind cannot run a seccomp filter\n");
		return 0;
	}
	r = sandboxed(open_file, NULL);
	if (r == 99) {
		diag("this platform has no seccomp filter to test");
		printf("1..0 # SKIP no seccomp filter on this platform\n");
		return 0;
	}
	checkf(r == 0, "opening a file fails with EACCES (%d)", r);
	r = sandboxed(open_socket, NULL);
	checkf(r == 0, "opening a socket fails with EACCES (%d)", r);

	if ((key = EVP_EC_gen("P-256")) == NULL ||
	    socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1) {
		check(0, "a key and a socketpair to work with");
		return tap_done();
	}
	r = sandboxed(work_as_usual, sv);
	checkf(r == 0, "memory, random bytes and its socket work (%d)", r);
	r = sandboxed(sign_one, key);
	checkf(r == 0, "an ECDSA signature works (%d)", r);
	EVP_PKEY_free(key);
	close(sv[0]);
	close(sv[1]);

	for (i = 0; i < sizeof(killed) / sizeof(killed[0]); i++) {
		r = sandboxed(killed[i].fn, &self);
		checkf(r == 128 + SIGSYS, "%s kills it with SIGSYS (%d)",
		    killed[i].what, r);
	}
	return tap_done();
}
