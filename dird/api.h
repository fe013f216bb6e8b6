/*
 * api.h - the IRP request handlers (api_*.c), called by http.c's route
 * table after the route's authentication succeeded.  Each fills resp.
 */
#ifndef API_H
#define API_H

#include "http.h"
#include "irp.h"
#include "irp_wire.h"

typedef void api_fn(struct http_req *req, struct http_resp *resp);

/* api_misc.c */
api_fn api_ca, api_crl, api_healthz, api_metrics;
/* api_ocsp.c */
api_fn api_ocsp_post, api_ocsp_get;
/*
 * The DER of an OCSP request sent by GET (base64, RFC 5019): whole
 * quads, padding only at the end, at most cap bytes.  0 or -1.  Pure, so
 * it is fuzzed (tests/fuzz/fuzz_request.c).
 */
#define HTTP_OCSP_GET_MAX 768
int api_ocsp_b64(const char *b64, unsigned char *der, size_t cap,
    size_t *len);
/* api_enroll.c */
api_fn api_enroll, api_renew, api_request_poll;
/* api_me.c */
api_fn api_me, api_addr_put, api_addr_del, api_user_get;
/* api_backup.c */
api_fn api_backup_put, api_backup_get;
/* api_inbox.c */
api_fn api_inbox_post, api_inbox_list, api_inbox_get, api_inbox_delete;
/* api_events.c */
api_fn api_events;
/* api_est.c: EST, RFC 7030 */
api_fn api_est_cacerts, api_est_csrattrs, api_est_enroll, api_est_reenroll;
/* api_escrow.c */
api_fn api_escrow_get, api_escrow_put, api_escrow_status;
/* api_admin.c */
api_fn api_revoke, api_admin_users, api_admin_user_add,
    api_admin_user_disable, api_admin_user_enable, api_admin_user_revoke,
    api_admin_code,
    api_admin_p12, api_admin_requests, api_admin_request_approve,
    api_admin_request_reject, api_admin_certs, api_admin_audit;
/* The web console under /admin/ (api_console.c). */
api_fn api_console;

/* Shared by handlers (api_util.c). */

/*
 * A request body refused by its irp_*_parse: the 400 with the code and
 * sentence of e.
 */
void api_wire_error(struct http_resp *resp, const struct irp_err *e);
/* Begin a transaction or fill resp (503/500). */
int api_begin(struct http_req *req, struct http_resp *resp);
/* Commit, or roll back and fill resp. */
int api_commit(struct http_req *req, struct http_resp *resp);
/*
 * The authenticated user of req as reg_* sees who acts (how it proved
 * itself, and with a certificate which); returns who.
 */
const struct reg_actor *api_actor(const struct http_req *req,
    struct reg_actor *who);
/*
 * Write job (made by a reg_*_begin) and let the handler answer once it
 * is committed.  With group commit (commit.h) the job joins others on
 * the committer's thread while the connection sleeps: 0, and the
 * handler is called again with req->later = state (free_state frees it
 * after the reply).  Without, it is written here on the request's
 * connection: 1, and the handler answers at once (state stays the
 * caller's).
 */
int api_write(struct http_req *req, struct http_resp *resp,
    struct commit_job *job, void *state, void (*free_state)(void *));
/*
 * The answer about an enrolment request that is neither pending nor
 * approved: 403 request_rejected (with the reason) or 410
 * request_expired; the same for the IRP's poll and EST's repeat.
 */
void api_request_closed(struct http_resp *resp, const struct db_request *q);
/*
 * The answer to an enrolment or renewal (irp_cert_build) for a
 * certificate issued to userid; NULL when out of memory.
 */
json_t *api_issued_json(struct http_req *req, const char *userid,
    const struct ca_issued *is);

/*
 * Checks of request bodies and path parameters, split from the handlers
 * so that they are pure (no database, no connection) and can be fuzzed
 * (tests/fuzz/fuzz_request.c).  Each fills resp with a 400 and returns
 * -1 (or NULL) when the input is refused.  Strings returned are borrowed
 * from body.
 */

/*
 * An IP literal as users write them: IPv4 dotted quad or IPv6, no zone,
 * no prefix.  Written back in canonical form (v4-mapped as IPv4).  0/-1.
 */
int api_parse_ip(const char *s, char *out, size_t len);
/*
 * PUT /v1/me/addresses {"addresses":[{"ip","port"}],"ttl":N}: 1 to
 * IRP_ADDR_MAX entries into addrs (which holds at least IRP_ADDR_MAX),
 * their number in *n, and the TTL asked for in *ttl when *has_ttl
 * (reg_addr_begin decides what is kept).
 */
int api_parse_addresses(json_t *body, struct db_addr *addrs, size_t *n,
    long long *ttl, int *has_ttl, struct http_resp *resp);
/* POST /v1/enroll and /v1/renew {"csr": PEM}: the PEM (not yet checked). */
const char *api_parse_csr(json_t *body, struct http_resp *resp);
/* Revocation {"reason"?}: the CRL reason code, 0 when absent. */
int api_parse_revoke(json_t *body, int *reason, struct http_resp *resp);
/*
 * POST /v1/admin/users: the fields as the wire carries them (keys, types,
 * role names); what they may hold is reg_user_add's to say.
 */
int api_parse_user_add(json_t *body, struct reg_user_new *nu,
    struct http_resp *resp);
/*
 * Enrolment code {"ttl"?}: 0 when absent (the configured default), else
 * the number given, -1 when it is no int (reg_code_new judges the range).
 */
int api_parse_code(json_t *body, int *ttl, struct http_resp *resp);
/* Server-side key {"passphrase"} of at least 8 characters. */
const char *api_parse_p12(json_t *body, struct http_resp *resp);

#endif
