/*
 * irp.h - the Identity Registry Protocol: what server and clients share.
 *
 * User id rules, the error object, and (in irp_client.h) the client side.
 * Plain C types only.
 */
#ifndef IRP_H
#define IRP_H

#include <stddef.h>

#define IRP_PORT 4604
#define IRP_PEER_PORT 4605
/*
 * Plain HTTP for what relying parties fetch by the URLs in certificates:
 * the CA certificate, the CRL and OCSP (signed objects, served without
 * TLS as RFC 5019 and RFC 5280 expect them).
 */
#define IRP_HTTP_PORT 4606
#define IRP_USERID_MAX 254
#define IRP_ADDR_MAX 16

/*
 * Check a user id (an e-mail-like "local@domain") and copy it to out in
 * lower case.  0 when valid; -1 with a reason in why (may be NULL).
 */
int irp_userid_normalize(const char *in, char *out, size_t outlen,
    const char **why) __attribute__((warn_unused_result));

#endif
