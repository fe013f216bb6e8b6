/*
 * api_est.c - EST (RFC 7030) beside the IRP on the same port: the same
 * CA, enrolment policy, approval, limits and audit as /v1/enroll and
 * /v1/renew, in EST's bodies (a base64 PKCS#10 in, a base64 PKCS#7
 * certs-only out).  A secret comes as HTTP Basic userid:PASSWORD, or
 * userid:CODE with an enrolment code; a client certificate makes a
 * simpleenroll a re-enrolment.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"

/* 200: the PEM certificates as base64 PKCS#7 certs-only. */
static void
certs_reply(struct http_resp *resp, const char *const *pems, size_t n)
{
	struct ca_err ce;
	size_t len;
	char *b64;

	if (ca_est_certs(pems, n, &b64, &len, &ce) == -1) {
		http_error(resp, 500, "internal_error", "%s", ce.msg);
		return;
	}
	http_blob(resp, 200, "application/pkcs7-mime; smime-type=certs-only",
	    b64, len);
	resp->base64 = 1;
	free(b64);
}

void
api_est_cacerts(struct http_req *req, struct http_resp *resp)
{
	const char *pem = ca_cert_pem(req->reg->ca);

	certs_reply(resp, &pem, 1);
}

/* No attributes are asked of a CSR (RFC 7030, 4.5.2). */
void
api_est_csrattrs(struct http_req *req, struct http_resp *resp)
{
	(void)req;
	http_blob(resp, 204, "application/csrattrs", "", 0);
}

/* The body as a PEM CSR (free()); who: the identity its subject names. */
static char *
csr_of(struct http_req *req, struct http_resp *resp, char *who, size_t len)
{
	struct ca_err ce;
	char *pem;

	if (ca_est_csr((const char *)req->body, req->body_len, &pem, who, len,
		&ce) == -1) {
		http_error(resp, 400, "invalid_csr", "%s", ce.msg);
		return NULL;
	}
	return pem;
}

/*
 * A CSR that names someone (who) names the user it is for: the
 * certificate would name the user anyway, but such a CSR is a mistake
 * or an attempt.
 */
static int
for_user(const char *who, const char *userid, struct http_resp *resp)
{
	if (who[0] != '\0' && strcasecmp(who, userid) != 0) {
		http_error(resp, 403, "csr_for_someone_else",
		    "the CSR's subject names someone other than %s", userid);
		return -1;
	}
	return 0;
}

/* The answer to a certificate issued through the group commit. */
static void
est_issued(struct http_req *req, struct http_resp *resp,
    const struct reg_issuing *is)
{
	const char *pem = is->is.cert_pem;
	struct reg_err e;

	if (reg_issue_end(req->reg, is, &e) == -1)
		http_reg_error(resp, &e);
	else
		certs_reply(resp, &pem, 1);
}

/* Issue for req->who.user at once, its record with others' (api_write). */
static void
est_issue(struct http_req *req, struct http_resp *resp, const char *pem,
    const unsigned char *code_hash)
{
	struct reg_issuing *is;
	struct reg_actor who;
	struct reg_err e;

	if ((is = malloc(sizeof(*is))) == NULL) {
		http_error(resp, 500, "internal_error", "out of memory");
		return;
	}
	if (reg_issue_begin(req->reg, &req->who.user, pem, strlen(pem),
		api_actor(req, &who), code_hash, is, &e) == -1) {
		reg_issuing_free(is);
		http_reg_error(resp, &e);
		return;
	}
	if (api_write(req, resp, &is->job, is, reg_issuing_free) == 1) {
		est_issued(req, resp, is);
		reg_issuing_free(is);
	}
}

/* A request kept for approval, as EST says where it stands. */
static void
request_reply(struct http_req *req, struct http_resp *resp,
    const struct db_request *q, const struct ca_issued *is)
{
	static const char wait[] = "waiting for an administrator's approval\n";
	const char *pem = is->cert_pem;

	if (strcmp(q->status, "approved") == 0)
		certs_reply(resp, &pem, 1);
	else if (strcmp(q->status, "pending") == 0) {
		http_blob(resp, 202, "text/plain", wait, sizeof(wait) - 1);
		resp->retry_after = reg_conf(req->reg)->request_poll;
	} else
		api_request_closed(resp, q);
}

/* Under the policy approve: the request made before, or a new one. */
static void
est_request(struct http_req *req, struct http_resp *resp, const char *pem,
    const unsigned char *code_hash)
{
	char token[IRP_TOKEN_LEN + 1];
	struct db_request q;
	struct ca_issued is;
	struct reg_actor who;
	struct reg_err e;
	time_t expires;

	/* A repeat (RFC 7030, 4.2.3) by password finds its request. */
	if (code_hash == NULL &&
	    reg_request_for_csr(req->reg, req->db, req->who.user.id, pem, NULL,
		&q, &is, &e) == 0 &&
	    strcmp(q.status, "expired") != 0 &&
	    strcmp(q.status, "rejected") != 0) {
		request_reply(req, resp, &q, &is);
		ca_issued_clear(&is);
		return;
	}
	if (reg_request_submit(req->reg, req->db, &req->who.user, pem,
		strlen(pem), api_actor(req, &who), code_hash, token, &expires,
		&e) == -1) {
		http_reg_error(resp, &e);
		return;
	}
	/* EST has no token: the client repeats its request instead. */
	memset(token, 0, sizeof(token));
	memset(&q, 0, sizeof(q));
	snprintf(q.status, sizeof(q.status), "pending");
	memset(&is, 0, sizeof(is));
	request_reply(req, resp, &q, &is);
}

void
api_est_enroll(struct http_req *req, struct http_resp *resp)
{
	unsigned char code[32];
	char who[256], *pem;
	struct db_request q;
	struct ca_issued is;
	struct reg_err e;
	int approve, by_code;

	if (req->later != NULL) {
		est_issued(req, resp, req->later);
		return;
	}
	if ((pem = csr_of(req, resp, who, sizeof(who))) == NULL)
		return;
	/* A certificate, and no secret: the user it names re-enrols. */
	if (req->peer_der != NULL && !auth_has_secret(req)) {
		if (auth_cert(req->reg->auth, req, &e) == -1)
			http_reg_error(resp, &e);
		else if (for_user(who, req->who.user.userid, resp) == 0)
			est_issue(req, resp, pem, NULL);
		goto out;
	}
	/* The repeat of a request its code was spent on. */
	by_code = auth_basic_code_hash(req, code);
	if (by_code &&
	    reg_request_for_csr(req->reg, req->db, 0, pem, code, &q, &is, &e) ==
		0) {
		request_reply(req, resp, &q, &is);
		ca_issued_clear(&is);
		goto out;
	}
	if (auth_secret(req->reg->auth, req,
		AUTH_ALLOW_PASSWORD | AUTH_BASIC_CODE | AUTH_CODE_LATER,
		&e) == -1 ||
	    reg_enrol_approve(req->reg, req->db, &req->who.user, &approve,
		&e) == -1) {
		http_reg_error(resp, &e);
		goto out;
	}
	if (for_user(who, req->who.user.userid, resp) == -1)
		goto out;
	if (approve)
		est_request(req, resp, pem,
		    by_code ? req->who.code_hash : NULL);
	else
		est_issue(req, resp, pem, by_code ? req->who.code_hash : NULL);
out:
	free(pem);
}

void
api_est_reenroll(struct http_req *req, struct http_resp *resp)
{
	char who[256], *pem;

	if (req->later != NULL) {
		est_issued(req, resp, req->later);
		return;
	}
	if ((pem = csr_of(req, resp, who, sizeof(who))) == NULL)
		return;
	if (for_user(who, req->who.user.userid, resp) == 0)
		est_issue(req, resp, pem, NULL);
	free(pem);
}
