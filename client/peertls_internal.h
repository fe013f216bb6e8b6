/*
 * peertls_internal.h - the readers of what the other side and the
 * registry send, inside peertls.c, for the verify callback and for the
 * fuzz target tests/fuzz/fuzz_peer.c, which runs them without a network
 * or a handshake.  Not for the rest of dchat: use peertls.h.
 */
#ifndef PEERTLS_INTERNAL_H
#define PEERTLS_INTERNAL_H

#include <stddef.h>
#include <time.h>

#include <openssl/ocsp.h>
#include <openssl/x509.h>

#include "peertls.h"

/* An OCSP answer about one certificate is far smaller. */
#define PT_OCSP_MAX (64 * 1024)
/* A cached CRL: as large as irp_crl_get takes from the registry. */
#define PT_CRL_MAX (16 * 1024 * 1024)

/* The subject's UID of x as UTF-8, or "" (none, too long, a NUL). */
void pt_cert_uid(X509 *x, char *out, size_t len);
/* The domain of a user id (after its last '@'), lower case; "" if none. */
void pt_uid_domain(const char *uid, char *out, size_t len);
/*
 * 1 when uid is of another domain than ours (the UID of our own
 * certificate): its chain is then checked against the CA our registry
 * vouches for that domain, not against ca.pem.
 */
int pt_foreign(const struct peertls *pt, const char *uid);
/* The serial of x in the form the registry prints, or "". */
void pt_cert_serial(X509 *x, char out[41]);
/*
 * What pt_peer_info tells of the certificate x: out's userid, name,
 * issuer, serial, fingerprint and not_after (the rest is untouched).
 * 0, or -1 when x can not be read.
 */
int pt_cert_describe(X509 *x, struct pt_peer *out);

/*
 * The cached CRL of len bytes at der: *crl (X509_CRL_free) and its
 * lastUpdate and nextUpdate (0 when absent or unreadable).  0, or -1
 * with the reason in OpenSSL's error queue.
 */
int pt_crl_parse(const unsigned char *der, size_t len, X509_CRL **crl,
    time_t *last, time_t *next);

/*
 * Judge the registry's DER answer (len bytes at der) to req, our request
 * about the certificate id, of issuer, with the given serial.  1 good
 * (kept in pt's cache of good answers), 0 revoked or unknown to the
 * registry (pc->reason says which), -1 when the answer is not usable
 * (pc->rev_why says why).  Anything not signed by the pinned CA's key
 * for this request is -1.
 */
int pt_ocsp_judge(struct peertls *pt, struct pt_conn *pc,
    const unsigned char *der, size_t len, OCSP_REQUEST *req,
    OCSP_CERTID *id, X509 *issuer, const char *serial);

#endif
