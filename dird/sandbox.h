/*
 * sandbox.h - a seccomp filter for the CA signer process: once the key
 * is loaded, the process may read and write the descriptors it holds,
 * manage its memory (never executable) and draw random bytes; opening a
 * file or a socket fails with EACCES, and any other system call kills
 * it.
 */
#ifndef SANDBOX_H
#define SANDBOX_H

/*
 * Install the filter on the calling thread (the signer has one).
 * PR_SET_NO_NEW_PRIVS must be set first.  0 when installed; 1 when this
 * platform has no filter to offer (an architecture the filter does not
 * know, a kernel without seccomp): the caller goes on without; -1 with
 * errno for a failure.
 */
int sandbox_seccomp(void);

#endif
