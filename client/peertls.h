/*
 * peertls.h - mutually authenticated TLS 1.3 between two dchat peers.
 *
 * Both sides present their user certificate and verify the other's: it
 * must chain to the DIR CA in ca.pem, be in its validity period, and not
 * be listed in the DIR's CRL (X509_V_FLAG_CRL_CHECK).  ALPN "dchat/1".
 * Certificate-only: no session tickets, no PSK, no 0-RTT, so nothing can
 * be replayed or reflected (the PSK "Selfie" attack needs a PSK).
 *
 * Checked in the verify callback, so a refused peer never completes the
 * handshake and never sends a message:
 *   - a peer presenting our own certificate is refused;
 *   - the dialer refuses any UID but the one it called ("identity
 *     mismatch");
 *   - the listener applies the deny list, then the allow list (an empty
 *     allow list admits anyone the DIR CA vouches for).  A valid caller
 *     not on a non-empty allow list is admitted "restricted" when contact
 *     requests are enabled: it may leave one request and nothing else.
 *
 * When the DIR is unreachable: the cached CRL keeps being enforced.  Once
 * its nextUpdate has passed we still accept certificates it does not
 * list (chat between two peers must not depend on the registry being up),
 * but the peer is shown with revocation status "stale" so the user knows
 * revocations newer than the cache are not seen.  Without any CRL (never
 * fetched) every handshake fails: we do not guess.
 */
#ifndef PEERTLS_H
#define PEERTLS_H

#include <stddef.h>
#include <time.h>

#include <openssl/ssl.h>

#include "keystore.h"

#define PT_ALPN "dchat/1"
#define PT_REASON_MAX 256

struct peertls;

/* What the verify callback decided about one connection. */
struct pt_conn {
	struct peertls *pt;
	char expect[256];	   /* dialer: the user id called; "" listening */
	char peer_uid[256];	   /* the UID the peer presented, once seen */
	char reason[PT_REASON_MAX]; /* why it was refused */
	int restricted;		   /* admitted for a contact request only */
	int crl_stale;		   /* verified against an expired CRL */
};

/* Who is on the other end, after the handshake. */
struct pt_peer {
	char userid[256];
	char name[256];
	char issuer[512];
	char serial[41];
	char fingerprint[65];
	time_t not_after;
	char revocation[32]; /* "good" or "stale CRL" */
	char code[16];	     /* verification code, "123 456" */
};

/*
 * Load our key and certificate, the CA and the CRL from ks.  allow/deny
 * are borrowed and consulted live, so list changes apply to the next
 * handshake.  err gets a sentence on failure.
 */
struct peertls *pt_new(const struct keystore *ks, const struct ks_list *allow,
    const struct ks_list *deny, int contact_requests, char *err,
    size_t errlen);
void pt_free(struct peertls *pt);

/* Reload the CRL from ks (after a refresh); 0 or -1 (the old one stays). */
int pt_reload_crl(struct peertls *pt, char *err, size_t errlen);
/* nextUpdate of the loaded CRL (0 if unknown). */
time_t pt_crl_next_update(const struct peertls *pt);

/*
 * A new SSL on the connected socket fd: TLS client when expect is a user
 * id (we dialed), TLS server when expect is NULL.  pc is filled by the
 * verify callback and must outlive the SSL.
 */
SSL *pt_ssl_new(struct peertls *pt, int fd, const char *expect,
    struct pt_conn *pc);

/* After a completed handshake: check ALPN and describe the peer. */
int pt_peer_info(SSL *ssl, const struct pt_conn *pc, struct pt_peer *out,
    char *err, size_t errlen);

/* The last OpenSSL error as a sentence (drains the queue). */
void pt_ssl_error(char *buf, size_t len, const char *what);

#endif
