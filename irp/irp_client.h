/*
 * irp_client.h - the client side of the Identity Registry Protocol.
 *
 * HTTPS with JSON bodies to one dird (TCP 4604), over libcurl.  A client
 * pins the registry's CA (never the system trust store), may present a
 * user certificate, and keeps one connection alive across calls because
 * dird does not resume TLS sessions.
 *
 * Every fallible call returns 0 / -1 (or a pointer / NULL) and fills the
 * caller's struct irp_err: the registry's own error object when it sent
 * one ("the registry says: ..."), otherwise a transport error with advice.
 * Nothing here prints, exits or aborts.
 *
 * Thread safety: one struct irp_client per thread.
 */
#ifndef IRP_CLIENT_H
#define IRP_CLIENT_H

#include <stdatomic.h>
#include <stddef.h>
#include <time.h>

#include "irp.h"
#include "irp_wire.h"

/* Limits on what the client accepts from the registry. */
#define IRP_BODY_MAX (1024 * 1024)
#define IRP_BACKUP_MAX (256 * 1024)

struct irp_client;

/*
 * A client for server ("https://host:4604", no trailing path).  ca_path
 * names the pinned CA certificate (PEM); it is required: an unpinned
 * client is not offered.  cert_path/key_path (both or neither) are the
 * user's certificate and key for the calls that need them.  The strings
 * are copied.
 */
struct irp_client *irp_client_new(const char *server, const char *ca_path,
    const char *cert_path, const char *key_path, struct irp_err *err) IRP_WUR;
void irp_client_free(struct irp_client *c);
/*
 * Drop the kept-alive connection, so the next request opens a new one.
 * For when the local addresses changed: the old connection may use an
 * address that is gone.  0, or -1 (out of memory; the old one stays).
 */
int irp_client_reconnect(struct irp_client *c) IRP_WUR;
/*
 * Resolve the server's host name now with dns (irp_dns.h) and connect
 * to those addresses from here on, instead of asking the system's
 * resolver; the name is still what the server's certificate must
 * carry.  For a registry found through a DNS server of one's choosing.
 */
struct irp_dns;
int irp_client_use_dns(struct irp_client *c, struct irp_dns *dns,
    struct irp_err *err) IRP_WUR;

/*
 * Bootstrap: fetch GET /v1/ca from server WITHOUT verifying the server
 * (there is no trust yet), and accept it only if the SHA-256 of its DER
 * equals expected_sha256_hex (64 hex digits; ':' and case are ignored).
 * The connection is used for nothing else.  dns: as irp_client_use_dns,
 * or NULL for the system's resolver.  On success *pem is a new
 * NUL-terminated buffer (free()).
 */
int irp_fetch_ca(const char *server, struct irp_dns *dns,
    const char *expected_sha256_hex, char **pem, struct irp_err *err) IRP_WUR;

/*
 * irp_fetch_ca without a fingerprint: the DER of the one certificate
 * GET /v1/ca returned (*der new, free()), for a caller that judges it
 * by other means (a registry checking another domain's CA against its
 * pin or a DANE record).  Nothing about it is trusted yet.  timeout:
 * seconds for the call (0: 120).
 */
int irp_fetch_ca_der(const char *server, struct irp_dns *dns, int timeout,
    unsigned char **der, size_t *der_len, struct irp_err *err) IRP_WUR;

/* The longest a whole call may take, in seconds (0: 120). */
void irp_client_set_timeout(struct irp_client *c, int seconds);
/* irp_client_new with the pinned CA given as PEM text (copied). */
struct irp_client *irp_client_new_pem(const char *server, const char *ca_pem,
    const char *cert_path, const char *key_path, struct irp_err *err) IRP_WUR;
/*
 * This client is a registry asking another on its users' behalf
 * (federation): every request says "IRP-Domain: domain", and the TLS
 * client certificate (the registry's server certificate) is followed
 * by chain_pem (its CA; NULL: none), which the other side judges by its
 * own rule for domain.  0, or -1.
 */
int irp_client_as_registry(struct irp_client *c, const char *domain,
    const char *chain_pem, struct irp_err *err) IRP_WUR;

/*
 * An enrolment the registry keeps for an administrator's approval (202)
 * is waited for: before each wait of secs seconds (the registry's
 * Retry-After) fn (if set) is told the request's token and when it
 * lapses; -1 from it stops the wait (an error).  irp_client_set_stop's
 * flag stops it too.
 */
typedef int irp_pending_fn(void *arg, const char *token, int secs,
    const char *expires_at);
void irp_client_on_pending(struct irp_client *c, irp_pending_fn *fn,
    void *arg);

/*
 * GET /v1/escrow: 1 and the escrow officer's certificate (*pem: free())
 * and fingerprint when the registry escrows keys, 0 when it does not.
 */
int irp_escrow_officer(struct irp_client *c, char **pem, char fp[65],
    struct irp_err *err) IRP_WUR;
/*
 * PUT /v1/me/escrow: the key of the client certificate, encrypted to the
 * officer fp (an S/MIME message, ca_cms_envelope).
 */
int irp_escrow_put(struct irp_client *c, const char *fp,
    const unsigned char *cms, size_t len, struct irp_err *err) IRP_WUR;

/* POST /v1/enroll with a one-time code (sent as Bearer). */
int irp_enroll(struct irp_client *c, const char *code, const char *csr_pem,
    struct irp_cert *out, struct irp_err *err) IRP_WUR;
/* POST /v1/enroll with the user's password (HTTP Basic userid:password). */
int irp_enroll_password(struct irp_client *c, const char *userid,
    const char *password, const char *csr_pem, struct irp_cert *out,
    struct irp_err *err) IRP_WUR;
/* POST /v1/renew with the client certificate. */
int irp_renew(struct irp_client *c, const char *csr_pem, struct irp_cert *out,
    struct irp_err *err) IRP_WUR;

/* GET /v1/me.  On success *out holds lists: irp_me_clear(). */
int irp_me(struct irp_client *c, struct irp_me *out, struct irp_err *err)
    IRP_WUR;

/*
 * PUT /v1/me/addresses: replace this certificate's addresses (1..16) for
 * ttl seconds.  The registry clamps the TTL to its own range:
 * *granted_ttl (may be NULL) receives the TTL it applied (0 if it did not
 * say), *expires_at (may be NULL, IRP_TIME_MAX bytes) its expiry.
 */
int irp_addresses_put(struct irp_client *c, const struct irp_addr_req *addr,
    size_t n, int ttl, int *granted_ttl, char *expires_at,
    struct irp_err *err) IRP_WUR;
/* DELETE /v1/me/addresses; *deleted (may be NULL) counts what went. */
int irp_addresses_delete(struct irp_client *c, int *deleted,
    struct irp_err *err) IRP_WUR;

/* GET /v1/users/{userid}.  On success *out is new (irp_user_free()). */
int irp_lookup(struct irp_client *c, const char *userid,
    struct irp_user **out, struct irp_err *err) IRP_WUR;
/*
 * irp_lookup with "Cache-Control: no-cache": the registry answers afresh
 * (for a user of another domain it asks that domain's registry again,
 * so a certificate revoked a moment ago is no longer listed), within
 * IRP_LOOKUP_TIMEOUT seconds, since a peer checks a caller with it
 * during a handshake.
 */
#define IRP_LOOKUP_TIMEOUT 5L
int irp_lookup_fresh(struct irp_client *c, const char *userid,
    struct irp_user **out, struct irp_err *err) IRP_WUR;

/* PUT /v1/me/backup: a PKCS#12 (DER), stored as given. */
int irp_backup_put(struct irp_client *c, const unsigned char *p12, size_t len,
    struct irp_err *err) IRP_WUR;
/*
 * GET /v1/me/backup.  With secret == NULL the client certificate
 * authenticates; otherwise secret is a one-time code (sent as Bearer) or,
 * when userid is not NULL, a password (HTTP Basic userid:secret).
 * *p12 is a new buffer (free()).
 */
int irp_backup_get(struct irp_client *c, const char *userid,
    const char *secret, unsigned char **p12, size_t *len,
    struct irp_err *err) IRP_WUR;

/*
 * POST /ocsp: ask the registry about certificates (req: a DER OCSP
 * request); *resp is the DER answer, new (free()), not checked here.
 * At most IRP_OCSP_TIMEOUT seconds: it is asked during a handshake.
 */
#define IRP_OCSP_MAX (64 * 1024)
#define IRP_OCSP_TIMEOUT 5L
/*
 * The inbox (docs/irp.md): leave an encrypted S/MIME message for userid
 * under the sender's msg_id (*out: what the registry stored); list what
 * waits for us; fetch one (at most max bytes, *msg new, free()); delete
 * one once it is safely kept.
 */
int irp_inbox_post(struct irp_client *c, const char *userid,
    const char *msg_id, const unsigned char *msg, size_t len,
    struct irp_inbox_item *out, struct irp_err *err) IRP_WUR;
/*
 * The same, posted by a registry (irp_client_as_registry) on behalf of
 * sender, one of its users (header IRP-Sender): federation.
 */
int irp_inbox_relay(struct irp_client *c, const char *userid,
    const char *sender, const char *msg_id, const unsigned char *msg,
    size_t len, struct irp_inbox_item *out, struct irp_err *err) IRP_WUR;
int irp_inbox_list(struct irp_client *c, struct irp_inbox *out,
    struct irp_err *err) IRP_WUR;
int irp_inbox_get(struct irp_client *c, long long id, size_t max,
    unsigned char **msg, size_t *len, struct irp_err *err) IRP_WUR;
int irp_inbox_delete(struct irp_client *c, long long id,
    struct irp_err *err) IRP_WUR;

/*
 * What happened for us since cursor (NULL: tell what is now), waiting
 * up to wait seconds for something to (a long poll, docs/irp.md
 * "Events").  The call's timeout is wait plus the usual margin.
 */
int irp_events(struct irp_client *c, const char *cursor, int wait,
    struct irp_events *out, struct irp_err *err) IRP_WUR;
/*
 * Give up any call in progress, and every later one, once *stop is
 * non-zero (another thread sets it): for a thread that waits in
 * irp_events and must end.  NULL: never.
 */
void irp_client_set_stop(struct irp_client *c, const atomic_int *stop);

int irp_ocsp(struct irp_client *c, const unsigned char *req, size_t req_len,
    unsigned char **resp, size_t *resp_len, struct irp_err *err) IRP_WUR;

/* GET /v1/crl: the current CRL as DER; *der is new (free()). */
int irp_crl_get(struct irp_client *c, unsigned char **der, size_t *len,
    struct irp_err *err) IRP_WUR;

#endif
