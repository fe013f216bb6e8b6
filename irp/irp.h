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
/* A person's display name and e-mail address, in bytes (the schema's). */
#define IRP_NAME_MAX 128
#define IRP_EMAIL_MAX 254

/*
 * Check a user id (an e-mail-like "local@domain") and copy it to out in
 * lower case.  0 when valid; -1 with a reason in why (may be NULL).
 */
int irp_userid_normalize(const char *in, char *out, size_t outlen,
    const char **why) __attribute__((warn_unused_result));

/*
 * Check a domain (the part of a user id after '@': DNS labels of
 * letters, digits and '-') and copy it to out in lower case.  0 when
 * valid; -1 with a reason in why (may be NULL).
 */
int irp_domain_normalize(const char *in, char *out, size_t outlen,
    const char **why) __attribute__((warn_unused_result));

/*
 * 1 if email has the shape the registry stores (3 to IRP_EMAIL_MAX
 * bytes, one '@' with something on each side, no white space), else 0.
 */
int irp_email_ok(const char *email);

/* A certificate serial: 1 to IRP_SERIAL_MAX hex digits. */
#define IRP_SERIAL_MAX 40
/*
 * Check a serial as a person or a URL writes it and copy it to out as
 * the registry stores and answers it: lower case, no leading zeros.
 * 0 when valid, -1 otherwise (out untouched).
 */
int irp_serial_normalize(const char *in, char *out, size_t outlen)
    __attribute__((warn_unused_result));

/* The token of an enrolment request: 64 lower-case hex digits. */
#define IRP_TOKEN_LEN 64
/* Whether s is one. */
int irp_token_ok(const char *s);

/* Every time in the protocol: RFC 3339 in UTC, "2026-12-05T08:00:00Z". */
#define IRP_TIME_LEN 21 /* with the NUL */
void irp_time(long long t, char buf[IRP_TIME_LEN]);
/* The inverse, for exactly that form: 0, or -1 for anything else. */
int irp_time_parse(const char *s, long long *t)
    __attribute__((warn_unused_result));

#endif
