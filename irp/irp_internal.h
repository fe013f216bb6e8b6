/*
 * irp_internal.h - what irp_client.c and irp_parse.c share; not installed,
 * not for callers of the library.
 *
 * The parsers turn the registry's reply bodies into the structs of
 * irp_wire.h (through its irp_*_parse functions).  They are apart from the libcurl code so that tests
 * (tests/fuzz/fuzz_irp_reply.c) reach them without a network: a hostile
 * or impersonated registry controls every byte they see.
 *
 * json/len is a body as received (len bytes; no NUL needed).  Each returns
 * 0, or -1 with err filled (status 200, code "bad_response" when the body
 * is malformed, with a sentence naming what; status 0, code "memory"
 * when out of memory).  On -1
 * nothing is left allocated.
 */
#ifndef IRP_INTERNAL_H
#define IRP_INTERNAL_H

#include <stddef.h>

#include "irp_client.h"

/* Fill err (may be NULL): the one way the library reports an error. */
void irp_seterr(struct irp_err *err, int status, const char *code,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* The answer of /v1/enroll and /v1/renew; free with irp_cert_clear(). */
int irp_parse_cert(const char *json, size_t len, struct irp_cert *out,
    struct irp_err *err) IRP_WUR;
/* The answer of GET /v1/me; free its lists with irp_me_clear(). */
int irp_parse_me(const char *json, size_t len, struct irp_me *out,
    struct irp_err *err) IRP_WUR;
/* The answer of GET /v1/users/X; *out is new (irp_user_free()). */
int irp_parse_user(const char *json, size_t len, struct irp_user **out,
    struct irp_err *err) IRP_WUR;
/*
 * The answer of PUT /v1/me/addresses: *granted_ttl (may be NULL) and
 * expires_at (may be NULL, IRP_TIME_MAX bytes) as irp_addresses_put()
 * documents them.
 */
int irp_parse_addresses_put(const char *json, size_t len, int *granted_ttl,
    char *expires_at, struct irp_err *err) IRP_WUR;
/* The answer of DELETE /v1/me/addresses; *deleted may be NULL. */
int irp_parse_addresses_delete(const char *json, size_t len, int *deleted,
    struct irp_err *err) IRP_WUR;
/* The answers of POST /v1/users/X/inbox and GET /v1/me/inbox. */
int irp_parse_inbox_item(const char *json, size_t len,
    struct irp_inbox_item *out, struct irp_err *err) IRP_WUR;
int irp_parse_inbox(const char *json, size_t len, struct irp_inbox *out,
    struct irp_err *err) IRP_WUR;
/* The answer of GET /v1/me/events. */
int irp_parse_events(const char *json, size_t len, struct irp_events *out,
    struct irp_err *err) IRP_WUR;
/* The answer of PUT /v1/me/backup. */
int irp_parse_backup_put(const char *json, size_t len,
    struct irp_backup_stored *out, struct irp_err *err) IRP_WUR;
/*
 * An answer with an unexpected HTTP status: fill err with the registry's
 * error object when the body holds one, else with the status alone.
 */
void irp_parse_error(const char *json, size_t len, long status,
    struct irp_err *err);

#endif
