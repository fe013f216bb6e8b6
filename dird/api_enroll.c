/*
 * api_enroll.c - a first certificate (code or password) and renewals.
 */
#include <stdlib.h>
#include <string.h>

#include "api.h"

const char *
api_parse_csr(json_t *body, struct http_resp *resp)
{
	struct irp_csr_req r;
	struct irp_err e;

	if (irp_csr_req_parse(body, &r, &e) == -1) {
		api_wire_error(resp, &e);
		return NULL;
	}
	return r.csr;
}

/*
 * Issue for req->who.user (as read by its authentication), in the open
 * transaction if there is one; reply.  The audit action (enroll.code,
 * enroll.password, renew) follows from how the caller proved itself.
 */
static void
issue_and_reply(struct http_req *req, struct http_resp *resp)
{
	struct reg_actor who;
	struct ca_issued is;
	struct reg_err e;
	const char *csr;

	if ((csr = api_parse_csr(req->json, resp)) == NULL) {
		db_rollback(req->db);
		return;
	}
	/* reg_issue_for commits the transaction of the code, if any. */
	if (reg_issue_for(req->reg, req->db, &req->who.user, csr,
		strlen(csr), api_actor(req, &who), &is, &e) == -1) {
		http_reg_error(resp, &e);
		return;
	}
	http_json(resp, 201, api_issued_json(req, &is));
	ca_issued_clear(&is);
}

void
api_enroll(struct http_req *req, struct http_resp *resp)
{
	struct reg_err e;

	/*
	 * The code is consumed in the same transaction as the issue: a bad
	 * CSR rolls back and leaves the code usable.
	 */
	if (api_begin(req, resp) == -1)
		return;
	if (auth_secret(req->reg->auth, req,
		AUTH_ALLOW_CODE | AUTH_ALLOW_PASSWORD, &e) == -1) {
		http_reg_error(resp, &e);
		db_rollback(req->db);
		return;
	}
	issue_and_reply(req, resp);
}

/* The answer to a renewal whose record was written. */
static void
renewed(struct http_req *req, struct http_resp *resp,
    const struct reg_renewal *rn)
{
	struct reg_err e;

	if (reg_renew_end(req->reg, rn, &e) == -1)
		http_reg_error(resp, &e);
	else
		http_json(resp, 201, api_issued_json(req, &rn->is));
}

/*
 * Signed here; with group commit (commit.h) the record of the
 * certificate and its audit row then join others' while the connection
 * sleeps (api_write), and the handler is called again with it done.
 * No transaction of the request's own: the caller's record is the one
 * its certificate was just checked against.
 */
void
api_renew(struct http_req *req, struct http_resp *resp)
{
	struct reg_renewal *rn = req->later;
	struct reg_actor who;
	struct reg_err e;
	const char *csr;

	if (rn != NULL) {
		renewed(req, resp, rn);
		return;
	}
	if ((csr = api_parse_csr(req->json, resp)) == NULL)
		return;
	if ((rn = malloc(sizeof(*rn))) == NULL) {
		http_error(resp, 500, "internal_error", "out of memory");
		return;
	}
	if (reg_renew_begin(req->reg, &req->who.user, csr, strlen(csr),
		api_actor(req, &who), rn, &e) == -1) {
		reg_renewal_free(rn);
		http_reg_error(resp, &e);
		return;
	}
	if (api_write(req, resp, &rn->job, rn, reg_renewal_free) == 1) {
		renewed(req, resp, rn);
		reg_renewal_free(rn);
	}
}
