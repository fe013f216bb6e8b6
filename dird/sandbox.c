/*
 * sandbox.c - the CA signer's seccomp filter (sandbox.h).
 *
 * The signer's work, once its key is loaded, is a loop: read a request
 * from its socket, sign with OpenSSL, write the answer, now and then a
 * line of log.  The filter allows what that loop and the C library's
 * memory management need and nothing else, in the manner of OpenSSH's
 * seccomp sandbox: the calls a library may try on a path the signer
 * does not need (opening a file, a socket for syslog to reconnect, a
 * terminal check) fail with an errno, so that code goes on with an
 * error; every other call ends the process with SIGSYS.  Memory may
 * not be made executable, so code brought in as data cannot run.
 *
 * Written as classic BPF with the kernel's own headers: the filter is
 * short, and a library (libseccomp) would be one more thing to trust in
 * the process that holds the key.
 */
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include <errno.h>
#include <stddef.h>

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include "sandbox.h"

#if defined(__x86_64__)
#define SB_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SB_ARCH AUDIT_ARCH_AARCH64
#endif

#ifdef SB_ARCH

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define SB_ARG_LO(n) (offsetof(struct seccomp_data, args[n]))
#else
#define SB_ARG_LO(n) (offsetof(struct seccomp_data, args[n]) + 4)
#endif

#define SB_RET(what) BPF_STMT(BPF_RET | BPF_K, (what))
#define SB_IF(nr, what) \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), SB_RET(what)
#define SB_ALLOW(nr) SB_IF(nr, SECCOMP_RET_ALLOW)
#define SB_DENY(nr, e) SB_IF(nr, SECCOMP_RET_ERRNO | ((e)&SECCOMP_RET_DATA))
/* nr is allowed when its third argument (the protection) lacks PROT_EXEC. */
#define SB_NOEXEC(nr)                                              \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 4),           \
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SB_ARG_LO(2)),      \
	    BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, PROT_EXEC, 0, 1), \
	    SB_RET(SECCOMP_RET_KILL_PROCESS), SB_RET(SECCOMP_RET_ALLOW)

static const struct sock_filter sb_filter[] = {
	/* A call through another architecture's table (x86's int 0x80). */
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SB_ARCH, 1, 0),
	SB_RET(SECCOMP_RET_KILL_PROCESS),
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
#ifdef __x86_64__
	/* The x32 ABI shares the architecture value: its numbers are not ours. */
	BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1),
	SB_RET(SECCOMP_RET_KILL_PROCESS),
#endif
	/* The request loop. */
	SB_ALLOW(__NR_read),
	SB_ALLOW(__NR_write),
	SB_ALLOW(__NR_readv),
	SB_ALLOW(__NR_writev),
	SB_ALLOW(__NR_recvfrom),
	SB_ALLOW(__NR_sendto),
	SB_ALLOW(__NR_recvmsg),
	SB_ALLOW(__NR_sendmsg),
	SB_ALLOW(__NR_close),
#ifdef __NR_poll
	SB_ALLOW(__NR_poll),
#endif
	SB_ALLOW(__NR_ppoll),
	SB_ALLOW(__NR_getrandom),
	/* Memory, locks, time and the process's own end. */
	SB_ALLOW(__NR_brk),
	SB_NOEXEC(__NR_mmap),
	SB_NOEXEC(__NR_mprotect),
	SB_ALLOW(__NR_munmap),
	SB_ALLOW(__NR_mremap),
	SB_ALLOW(__NR_madvise),
	SB_ALLOW(__NR_futex),
	SB_ALLOW(__NR_sched_yield),
	SB_ALLOW(__NR_clock_gettime),
	SB_ALLOW(__NR_gettimeofday),
	SB_ALLOW(__NR_getpid),
	SB_ALLOW(__NR_gettid),
	SB_ALLOW(__NR_lseek),
	SB_ALLOW(__NR_fstat),
	SB_ALLOW(__NR_rt_sigprocmask),
	SB_ALLOW(__NR_rt_sigreturn),
	/* Sanitizer runtimes set up and take down a signal stack. */
	SB_ALLOW(__NR_sigaltstack),
	SB_ALLOW(__NR_restart_syscall),
	/* abort(3) raises SIGABRT on itself. */
	SB_ALLOW(__NR_tgkill),
	SB_ALLOW(__NR_exit),
	SB_ALLOW(__NR_exit_group),
/* Tried by library code on paths the signer does not need. */
#ifdef __NR_open
	SB_DENY(__NR_open, EACCES),
#endif
	SB_DENY(__NR_openat, EACCES),
#ifdef __NR_openat2
	SB_DENY(__NR_openat2, EACCES),
#endif
	SB_DENY(__NR_newfstatat, EACCES),
	SB_DENY(__NR_socket, EACCES),
	SB_DENY(__NR_connect, EACCES),
	SB_DENY(__NR_ioctl, ENOTTY),
	SB_RET(SECCOMP_RET_KILL_PROCESS),
};

int
sandbox_seccomp(void)
{
	struct sock_fprog prog = {
		.len =
		    (unsigned short)(sizeof(sb_filter) / sizeof(sb_filter[0])),
		.filter = (struct sock_filter *)sb_filter,
	};

	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) == 0)
		return 0;
	/* A kernel built without seccomp filters. */
	if (errno == EINVAL)
		return 1;
	return -1;
}

#else /* no SB_ARCH */

int
sandbox_seccomp(void)
{
	return 1;
}

#endif
