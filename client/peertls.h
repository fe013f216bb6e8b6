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
 * Revocation, online first: for every new session the other side's
 * certificate is also checked with the registry's OCSP responder (through
 * the function given to pt_set_ocsp), in the verify callback, so a
 * certificate revoked a moment ago (or of a user just disabled) is
 * refused in that very handshake.  The answer must be signed by the
 * pinned CA, be current, and echo our nonce.  When the registry can not
 * be asked (or answers nothing usable), the peer is not refused for it
 * (chat between two peers must not depend on the registry being up), and
 * the session shows how its status was judged instead:
 *   "good"     the registry said so now;
 *   "cached"   a good answer of the registry that is still valid;
 *   "crl"      the cached CRL, within its validity;
 *   "unknown"  the cached CRL is past its nextUpdate: revocations since
 *              then are not seen ("revocation status unknown since T").
 * The cached CRL is enforced throughout: a certificate it lists is
 * refused, expired or not.  Without any CRL (never fetched) every
 * handshake fails: we do not guess.
 *
 * A peer of another domain (the domain of its certificate's UID is not
 * ours) is checked by what our own registry vouches for (pt_set_vouch),
 * asked afresh in the verify callback of that very handshake: its chain
 * against that domain's CA as our registry accepted it (pinned by its
 * administrator, or by DANE), never against ours, and its certificate
 * must be one the lookup lists for that user (a revoked one is not
 * listed).  Without an answer of our registry such a peer is refused:
 * there is nothing else to check it by.  Its revocation status reads
 *   "lookup"   the registry's fresh lookup listed the certificate.
 * The identity, deny and allow checks above come first, as for anyone,
 * so that a caller refused by them costs our registry no question.  A
 * peer of our own domain is checked as before, against ca.pem and the
 * CRL; a certificate naming our domain issued by another CA is refused,
 * and so is one naming another domain issued by ours.
 */
#ifndef PEERTLS_H
#define PEERTLS_H

#include <stddef.h>
#include <time.h>

#include <openssl/ssl.h>

#include "keystore.h"

#define PT_ALPN "dchat/1"
#define PT_REASON_MAX 512

struct peertls;

/* What the verify callback decided about one connection. */
enum pt_rev {
	PT_REV_ONLINE,	/* the registry answered "good" for this session */
	PT_REV_CACHED,	/* an earlier "good" of the registry, still valid */
	PT_REV_CRL,	/* the registry was not asked: the cached CRL */
	PT_REV_UNKNOWN,	/* neither: the CRL is past its nextUpdate */
	PT_REV_LOOKUP,	/* another domain's peer: listed by a fresh lookup */
};

/* A domain, as in a user id after the '@'. */
#define PT_DOMAIN_MAX 254
/* The basis on which the peer's CA is trusted. */
#define PT_TRUST_OWN "own" /* our own registry's CA (ca.pem) */
#define PT_TRUST_MAX 16

struct pt_conn {
	struct peertls *pt;
	char expect[256];	   /* dialer: the user id called; "" listening */
	char peer_uid[256];	   /* the UID the peer presented, once seen */
	char reason[PT_REASON_MAX]; /* why it was refused */
	int restricted;		   /* admitted for a contact request only */
	int crl_stale;		   /* verified against an expired CRL */
	enum pt_rev rev;	   /* how revocation was judged */
	time_t rev_time;	   /* CACHED/CRL: as of; UNKNOWN: since */
	char rev_why[128];	   /* why the registry was not asked */
	char domain[PT_DOMAIN_MAX]; /* the peer's domain, once seen */
	char trust[PT_TRUST_MAX];   /* "own", else as our registry vouches */
	int foreign;		   /* the peer is of another domain */
	int listed;		   /* foreign: the lookup lists its certificate */
	time_t checked;		   /* foreign: when its registry said so */
};

/* Who is on the other end, after the handshake. */
struct pt_peer {
	char userid[256];
	char name[256];
	char issuer[512];
	char serial[41];
	char fingerprint[65];
	time_t not_after;
	char domain[PT_DOMAIN_MAX]; /* after the '@' of userid */
	char trust[PT_TRUST_MAX];   /* "own", "pinned" or "dane" */
	char revocation[16]; /* "good", "cached", "crl", "unknown", "lookup" */
	char revocation_note[256]; /* the same, as a sentence */
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

/*
 * How to ask the registry: fn sends a DER OCSP request and gives back the
 * DER answer (*resp, free()), 0; or -1 when the registry can not be
 * asked now, with a short reason in why.  Without it, revocation is
 * judged by the CRL alone.
 */
typedef int pt_ocsp_fn(void *arg, const unsigned char *req, size_t len,
    unsigned char **resp, size_t *resp_len, char *why, size_t whylen);
void pt_set_ocsp(struct peertls *pt, pt_ocsp_fn *fn, void *arg);

/*
 * How to ask our registry about userid, a user of another domain, whose
 * certificate has the SHA-256 fingerprint (64 hex digits): fn asks it
 * afresh and gives back that domain's CA as the registry vouches for it
 * (*ca, a new reference: X509_free), the basis of that trust ("pinned",
 * "dane") in trust, and in *listed whether the lookup lists this very
 * certificate for userid, and in *checked when the registry of userid's
 * domain gave that answer (0: not said); 0.  Also 0 when an earlier
 * answer stands in (our registry can not be asked, or it could not ask
 * the other one): then why says so as a sentence, "" otherwise.  -1 when the registry can not
 * be asked or
 * refuses, with a short reason in why.  Without it every peer of another
 * domain is refused.
 */
typedef int pt_vouch_fn(void *arg, const char *userid,
    const char *fingerprint, X509 **ca, char *trust, size_t trustlen,
    int *listed, time_t *checked, char *why, size_t whylen);
/*
 * Before fn is asked: the CA a certificate of domain must already chain
 * to (a new reference), or NULL to ask fn without that check.  So that
 * a stranger presenting made-up certificates of a trusted domain can
 * not make us ask our registry in every handshake (each lookup counts
 * against our federation_rate there).  May be NULL.
 */
typedef X509 *pt_vouch_gate_fn(void *arg, const char *domain);
void pt_set_vouch(struct peertls *pt, pt_vouch_fn *fn,
    pt_vouch_gate_fn *gate, void *arg);

/*
 * Our key and certificate changed on disk (a renewal): load them, with
 * the CA and the CRL, into a new context for the sessions to come;
 * sessions under way keep the one they began with.  Refused unless the
 * certificate still names userid.  The caller holds the lock (ks_lock)
 * here and around pt_new.  0, or -1 with a sentence in err (the old
 * context stays).
 */
int pt_reload_identity(struct peertls *pt, const char *userid, char *err,
    size_t errlen);
/* What our certificate in use says (ca.h); 0 or -1. */
struct ca_cert_info;
int pt_own_info(const struct peertls *pt, struct ca_cert_info *info);

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

/*
 * The name (CN) in the certificate ssl presents to the other side: the
 * one it began with, even after a renewal changed ours.  0, or -1.
 */
int pt_own_name(SSL *ssl, char *name, size_t len);

/* After a completed handshake: check ALPN and describe the peer. */
int pt_peer_info(SSL *ssl, const struct pt_conn *pc, struct pt_peer *out,
    char *err, size_t errlen);

/* The last OpenSSL error as a sentence (drains the queue). */
void pt_ssl_error(char *buf, size_t len, const char *what);

#endif
