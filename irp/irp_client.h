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

#include <stddef.h>
#include <time.h>

#include "irp.h"

#define IRP_WUR __attribute__((warn_unused_result))

#define IRP_FP_MAX 65	  /* SHA-256 as 64 hex digits + NUL */
#define IRP_IP_MAX 46	  /* INET6_ADDRSTRLEN */
#define IRP_TIME_MAX 40	  /* an RFC 3339 string as the registry sent it */
/* Declared addresses plus the one the registry observed. */
#define IRP_DEV_ADDR_MAX (IRP_ADDR_MAX + 2)
#define IRP_DEVICES_MAX 32
#define IRP_CERTS_MAX 64

/* Limits on what the client accepts from the registry. */
#define IRP_BODY_MAX (1024 * 1024)
#define IRP_BACKUP_MAX (256 * 1024)

struct irp_err {
	int status;	/* HTTP status, 0 when no answer came */
	char code[40];	/* the registry's error code, or "transport", ... */
	char msg[256];	/* a sentence a person can act on */
};

/* What /v1/enroll and /v1/renew return.  Free with irp_cert_clear(). */
struct irp_cert {
	char userid[IRP_USERID_MAX + 1];
	char *cert_pem;	 /* the new certificate, NUL-terminated */
	char *chain_pem; /* the CA certificate */
	char serial[IRP_SERIAL_MAX + 1];
	char fingerprint[IRP_FP_MAX];
	char not_after[IRP_TIME_MAX];
};

struct irp_address {
	char ip[IRP_IP_MAX];
	int port;
	char kind[16];			/* "declared" or "observed" */
	char updated_at[IRP_TIME_MAX];	/* "" when not sent */
	char expires_at[IRP_TIME_MAX];
};

struct irp_device {
	char serial[IRP_SERIAL_MAX + 1];
	char fingerprint[IRP_FP_MAX];
	char not_after[IRP_TIME_MAX];
	char *cert_pem; /* owned by the irp_user */
	size_t naddr;
	struct irp_address addr[IRP_DEV_ADDR_MAX];
};

/* What /v1/users/{userid} returns.  Free with irp_user_free(). */
struct irp_user {
	char userid[IRP_USERID_MAX + 1];
	char name[IRP_NAME_MAX + 1];
	char email[IRP_EMAIL_MAX + 1]; /* "" when none */
	int online;
	size_t ndev;
	struct irp_device *dev;
};

struct irp_cert_status {
	char serial[IRP_SERIAL_MAX + 1];
	char fingerprint[IRP_FP_MAX];
	char not_before[IRP_TIME_MAX];
	char not_after[IRP_TIME_MAX];
	char status[16]; /* "valid", "revoked", "expired" */
};

/* What /v1/me returns.  Plain struct, nothing to free. */
struct irp_me {
	char userid[IRP_USERID_MAX + 1];
	char name[IRP_NAME_MAX + 1];
	char email[IRP_EMAIL_MAX + 1];
	char role[32];
	char serial[IRP_SERIAL_MAX + 1]; /* the certificate that asked */
	size_t ncert;
	struct irp_cert_status cert[IRP_CERTS_MAX];
};

/* One address to register. */
struct irp_addr_req {
	char ip[IRP_IP_MAX];
	int port;
};

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
 * Bootstrap: fetch GET /v1/ca from server WITHOUT verifying the server
 * (there is no trust yet), and accept it only if the SHA-256 of its DER
 * equals expected_sha256_hex (64 hex digits; ':' and case are ignored).
 * The connection is used for nothing else.  On success *pem is a new
 * NUL-terminated buffer (free()).
 */
int irp_fetch_ca(const char *server, const char *expected_sha256_hex,
    char **pem, struct irp_err *err) IRP_WUR;

/* POST /v1/enroll with a one-time code (or password: as Bearer). */
int irp_enroll(struct irp_client *c, const char *code, const char *csr_pem,
    struct irp_cert *out, struct irp_err *err) IRP_WUR;
/* POST /v1/renew with the client certificate. */
int irp_renew(struct irp_client *c, const char *csr_pem, struct irp_cert *out,
    struct irp_err *err) IRP_WUR;
void irp_cert_clear(struct irp_cert *cert);

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
void irp_user_free(struct irp_user *u);

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
int irp_ocsp(struct irp_client *c, const unsigned char *req, size_t req_len,
    unsigned char **resp, size_t *resp_len, struct irp_err *err) IRP_WUR;

/* GET /v1/crl: the current CRL as DER; *der is new (free()). */
int irp_crl_get(struct irp_client *c, unsigned char **der, size_t *len,
    struct irp_err *err) IRP_WUR;

#endif
