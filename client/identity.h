/*
 * identity.h - this device's key and certificate, new from the registry:
 * at enrolment (dchat init), and at each renewal (dchat renew, and
 * dchat run by itself, see expiry.h).
 *
 * The key is made here and never leaves the machine; the registry sees
 * a CSR.  Asking and storing are apart so that a renewal can take the
 * old certificate's addresses off the registry in between, while that
 * certificate is still the one on disk.
 */
#ifndef IDENTITY_H
#define IDENTITY_H

#include <stddef.h>

#include "ca.h"
#include "irp_client.h"
#include "keystore.h"

struct identity {
	char *key;  /* PEM, unencrypted: identity_clear wipes it */
	char *cert; /* PEM */
	struct ca_cert_info info;
};

/*
 * How the registry is told who asks for a certificate: a one-time code,
 * else the user's password (HTTP Basic), else (both NULL) the
 * certificate the client presents, for a renewal.
 */
struct identity_proof {
	const char *code;
	const char *password;
};

/*
 * A new key, certified by the registry for uid: enrolment with what
 * proof names, or renewal authenticated by the certificate c presents
 * when proof is NULL.  The certificate must name uid and match the key.
 * 0, or -1 with a sentence in err.
 */
int identity_request(struct irp_client *c, const char *uid,
    const struct identity_proof *proof, struct identity *id, char *err,
    size_t errlen) __attribute__((warn_unused_result));

/* Store key and certificate as one (ks_store_identity). */
int identity_store(const struct keystore *ks, const struct identity *id,
    char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * When the registry escrows keys (GET /v1/escrow): deposit id's key,
 * encrypted to the escrow officer (only the officer's key opens it),
 * through c, which must present id's certificate already.  officer gets
 * the fingerprint of the officer's certificate when it was, "" when
 * the registry escrows nothing.  0, or -1 with a sentence in err.
 */
int identity_escrow(struct irp_client *c, const struct identity *id,
    char officer[65], char *err, size_t errlen)
    __attribute__((warn_unused_result));

void identity_clear(struct identity *id);

#endif
