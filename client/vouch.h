/*
 * vouch.h - what one's own registry vouches for about users of other
 * domains (federation): per domain, that domain's CA as the registry
 * accepted it and the basis of that trust ("pinned": its administrator
 * named the CA's SHA-256; "dane": DNSSEC-signed TLSA records); per user,
 * the certificates (SHA-256 of their DER) its last lookup listed.
 *
 * PeerTLS checks a peer of another domain by these (pt_set_vouch): the
 * chain against the domain's CA, the certificate against the user's
 * list.  The registry is asked afresh (irp_lookup_fresh) for every such
 * handshake, so that a certificate revoked a moment ago is refused: what
 * is kept here is the last answer, not a cache to answer from.
 *
 * Not thread-safe: dchat's loop is single-threaded.
 */
#ifndef VOUCH_H
#define VOUCH_H

#include <stddef.h>
#include <time.h>

#include <openssl/x509.h>

#include "irp_client.h"

/* Domains and users kept; the one asked about least recently goes. */
#define VOUCH_DOMAINS 32
#define VOUCH_USERS 64
/* A registry that did not answer is not asked again for this long: the
 * handshake that asks blocks dchat's loop while it waits. */
#define VOUCH_RETRY_SECS 30
/*
 * While our registry can not be asked, the last answer about a user
 * stands in for this long after we had it (as dird's own default
 * federation_stale_max does for another registry): a call to a user
 * just spoken with survives a registry restart, a revocation older
 * than that can not be outlived by an outage.
 */
#define VOUCH_STALE_SECS 600
#define VOUCH_FP_LEN 65 /* SHA-256, 64 lower-case hex digits + NUL */

struct vouch;

/* NULL when out of memory. */
struct vouch *vouch_new(void);
void vouch_free(struct vouch *v);

/*
 * Ask the registry c afresh about userid (of another domain than c's)
 * and keep what it says (vouch_put).  0, or -1 with a sentence in err:
 * the registry's refusal, that it can not be reached (and then, for
 * VOUCH_RETRY_SECS, that it could not be), or what was wrong with its
 * answer.  1 when it can not be reached but an answer about userid had
 * at most VOUCH_STALE_SECS ago is kept: that one stands in, and err says
 * why it was not asked.
 */
int vouch_fetch(struct vouch *v, struct irp_client *c, const char *userid,
    char *err, size_t errlen);

/*
 * Keep u, the registry's answer to a lookup of userid: it must be that
 * user, vouched for by a registry of userid's domain ("registry" in the
 * answer), with one CA certificate whose SHA-256 is the one the answer
 * names, trusted by a basis this module knows.  The domain's CA and the
 * user's certificates replace what was kept of them.  0, or -1 with a
 * sentence in err (nothing kept).
 */
int vouch_put(struct vouch *v, const char *userid, const struct irp_user *u,
    char *err, size_t errlen);

/*
 * The CA of domain as last vouched for (borrowed from v, valid until the
 * next vouch_put or vouch_fetch) and in *trust the basis ("pinned",
 * "dane"); NULL when none is kept.
 */
X509 *vouch_ca(const struct vouch *v, const char *domain, const char **trust);

/*
 * The CA a certificate of domain must chain to before the registry is
 * asked about its user (pt_vouch_gate_fn): the one kept, a new
 * reference.  NULL when none is kept, and once every VOUCH_RETRY_SECS
 * per domain (that domain's CA may have been replaced: the lookup that
 * follows tells).
 */
X509 *vouch_gate(struct vouch *v, const char *domain);

/*
 * 1 when the last lookup of userid listed the certificate with SHA-256
 * fingerprint (hex, either case), else 0.
 */
int vouch_listed(const struct vouch *v, const char *userid,
    const char *fingerprint);

/*
 * When the registry of userid's domain gave the last answer kept about
 * userid (its "checked_at": our registry may stand in with an earlier
 * answer while that one can not be reached), or when not said, when we
 * had it; 0 when nothing is kept.
 */
time_t vouch_checked(const struct vouch *v, const char *userid);

/*
 * 1 when the last answer about userid was an earlier one of its domain's
 * registry, that ours stood in with because it could not ask it now;
 * why gets that as a sentence.  0 otherwise.
 */
int vouch_stale(const struct vouch *v, const char *userid, char *why,
    size_t whylen);

/*
 * The status of a certificate (PEM) of a user of domain, checked
 * against the CA kept for domain: "valid", "expired", "invalid: why" or
 * "unknown" (no CA kept, or no certificate).  Revocation is not judged
 * here: the registry lists no revoked certificate.
 */
void vouch_cert_status(const struct vouch *v, const char *domain,
    const char *pem, char *buf, size_t len);

#endif
