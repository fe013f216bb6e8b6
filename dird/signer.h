/*
 * signer.h - the process that holds dird's CA key (privilege
 * separation, as OpenSMTPD does it).
 *
 * dird forks it at start, before it opens a listener, a database
 * connection or a thread; it reads the CA key, closes everything else,
 * fences itself in (signer.c says how) and signs what ca_signer_serve
 * lets through, for as long as dird holds the other end of its socket.
 * dird itself never reads the key: its CA signs through the
 * ca_signer this returns (ca_signer.h).
 */
#ifndef SIGNER_H
#define SIGNER_H

#include <sys/types.h>

#include <stddef.h>

#include "ca_signer.h"

/*
 * Start the signer process for the CA in datadir (absolute): a signer
 * that asks it, and its pid in *pid.  NULL with errbuf filled when the
 * key could not be loaded (the process has exited then).
 */
struct ca_signer *signer_start(const char *datadir, pid_t *pid, char *errbuf,
    size_t errlen);

/*
 * Once its ca_signer is freed (end of stream), wait for the process to
 * exit; log how it ended if not normally.
 */
void signer_wait(pid_t pid);

#endif
