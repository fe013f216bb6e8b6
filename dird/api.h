/*
 * api.h - the IRP request handlers (api_*.c), called by http.c's route
 * table after the route's authentication succeeded.  Each fills resp.
 */
#ifndef API_H
#define API_H

#include "http.h"

typedef void api_fn(struct http_req *req, struct http_resp *resp);

/* api_misc.c */
api_fn api_ca, api_crl, api_healthz, api_metrics;
/* api_enroll.c */
api_fn api_enroll, api_renew;
/* api_me.c */
api_fn api_me, api_addr_put, api_addr_del, api_user_get;
/* api_backup.c */
api_fn api_backup_put, api_backup_get;
/* api_admin.c */
api_fn api_revoke, api_admin_users, api_admin_user_add,
    api_admin_user_disable, api_admin_user_enable, api_admin_code,
    api_admin_p12;

/* Shared by handlers (api_util.c). */

/*
 * Check that obj is an object whose keys are all in `allowed` (NULL
 * terminated); else fill resp with 400 and return -1.
 */
int api_only_keys(json_t *obj, const char *const *allowed,
    struct http_resp *resp);
/* A required string member of at most max bytes, without NUL. */
const char *api_string(json_t *obj, const char *key, size_t max, int required,
    struct http_resp *resp);
/* Begin a transaction or fill resp (503/500). */
int api_begin(struct http_req *req, struct http_resp *resp);
/* Commit, or roll back and fill resp. */
int api_commit(struct http_req *req, struct http_resp *resp);
/* Audit row with the caller as actor; fills resp on failure. */
int api_audit(struct http_req *req, const char *action, const char *target,
    const char *serial, const char *detail, struct http_resp *resp);
/* {"certificate","chain","serial","not_after"} for an issued cert. */
json_t *api_issued_json(struct http_req *req, const struct ca_issued *is);

#endif
