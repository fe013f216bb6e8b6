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

/* The answer to an issue whose record was written. */
static void
issued(struct http_req *req, struct http_resp *resp,
    const struct reg_issuing *is)
{
	struct reg_err e;

	if (reg_issue_end(req->reg, is, &e) == -1)
		http_reg_error(resp, &e);
	else
		http_json(resp, 201, api_issued_json(req, is->target, &is->is));
}

/*
 * Issue for req->who.user (as read by its authentication), signed here;
 * with group commit (commit.h) the record of the certificate and its
 * audit row (and the consumption of the code it was asked for with)
 * then join others' while the connection sleeps (api_write), and the
 * handler is called again with it done.  No transaction of the
 * request's own: the record is one statement, which consumes the code
 * or writes nothing, and a CSR refused before it leaves the code
 * usable.  The audit action (enroll.code, enroll.password, renew)
 * follows from how the caller proved itself.
 */
static void
issue(struct http_req *req, struct http_resp *resp)
{
	struct reg_issuing *is;
	struct reg_actor who;
	struct reg_err e;
	const char *csr;

	if ((csr = api_parse_csr(req->json, resp)) == NULL)
		return;
	if ((is = malloc(sizeof(*is))) == NULL) {
		http_error(resp, 500, "internal_error", "out of memory");
		return;
	}
	if (reg_issue_begin(req->reg, &req->who.user, csr, strlen(csr),
		api_actor(req, &who), req->who.kind == AUTH_CODE ?
		req->who.code_hash : NULL, is, &e) == -1) {
		reg_issuing_free(is);
		http_reg_error(resp, &e);
		return;
	}
	if (api_write(req, resp, &is->job, is, reg_issuing_free) == 1) {
		issued(req, resp, is);
		reg_issuing_free(is);
	}
}

void
api_enroll(struct http_req *req, struct http_resp *resp)
{
	struct reg_err e;

	if (req->later != NULL) {
		issued(req, resp, req->later);
		return;
	}
	if (auth_secret(req->reg->auth, req, AUTH_ALLOW_CODE |
		AUTH_ALLOW_PASSWORD | AUTH_CODE_LATER, &e) == -1) {
		http_reg_error(resp, &e);
		return;
	}
	issue(req, resp);
}

/* The caller presented its certificate (RA_CERT): a renewal. */
void
api_renew(struct http_req *req, struct http_resp *resp)
{
	if (req->later != NULL) {
		issued(req, resp, req->later);
		return;
	}
	issue(req, resp);
}
