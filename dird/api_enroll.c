/*
 * api_enroll.c - a first certificate (code or password) and renewals.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

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

/* 202: the request waits for a decision at GET /v1/requests/TOKEN. */
static void
pending(struct http_req *req, struct http_resp *resp, const char *token,
    time_t expires)
{
	struct irp_pending p = { .status = "pending" };

	if (irp_copy(p.request, sizeof(p.request), token) == -1) {
		http_error(resp, 500, "internal_error", "bad request token");
		return;
	}
	irp_time(expires, p.expires_at);
	resp->retry_after = reg_conf(req->reg)->request_poll;
	http_json(resp, 202, irp_pending_build(&p));
	OPENSSL_cleanse(p.request, sizeof(p.request));
}

/* Under the policy approve: the CSR kept for an administrator. */
static void
submit(struct http_req *req, struct http_resp *resp)
{
	char token[IRP_TOKEN_LEN + 1];
	struct reg_actor who;
	struct reg_err e;
	const char *csr;
	time_t expires;

	if ((csr = api_parse_csr(req->json, resp)) == NULL)
		return;
	if (reg_request_submit(req->reg, req->db, &req->who.user, csr,
		strlen(csr), api_actor(req, &who), req->who.kind == AUTH_CODE ?
		req->who.code_hash : NULL, token, &expires, &e) == -1) {
		http_reg_error(resp, &e);
		return;
	}
	pending(req, resp, token, expires);
	OPENSSL_cleanse(token, sizeof(token));
}

void
api_enroll(struct http_req *req, struct http_resp *resp)
{
	struct reg_err e;
	int approve;

	if (req->later != NULL) {
		issued(req, resp, req->later);
		return;
	}
	if (auth_secret(req->reg->auth, req, AUTH_ALLOW_CODE |
		AUTH_ALLOW_PASSWORD | AUTH_CODE_LATER, &e) == -1 ||
	    reg_enrol_approve(req->reg, req->db, &req->who.user, &approve,
		&e) == -1) {
		http_reg_error(resp, &e);
		return;
	}
	if (approve)
		submit(req, resp);
	else
		issue(req, resp);
}

/*
 * A client's poll of its request: the token is the only credential (a
 * secret of 256 bits; what it gives is a certificate, which is public,
 * or why there is none).
 */
void
api_request_poll(struct http_req *req, struct http_resp *resp)
{
	struct db_request q;
	struct ca_issued is;
	struct reg_err e;

	if (reg_request_poll(req->reg, req->db, req->param, &q, &is,
		&e) == -1) {
		http_reg_error(resp, &e);
		return;
	}
	if (strcmp(q.status, "approved") == 0) {
		http_json(resp, 200, api_issued_json(req, q.userid, &is));
		ca_issued_clear(&is);
	} else if (strcmp(q.status, "pending") == 0)
		pending(req, resp, req->param, q.expires_at);
	else
		api_request_closed(resp, &q);
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
