/*
 * api_admin.c - revocation (own certificate or admin) and the admin
 * endpoints: users, enrolment codes, server-side key generation.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "api.h"
#include "irp.h"

int
api_parse_revoke(json_t *body, int *reason, struct http_resp *resp)
{
	struct irp_revoke_req r;
	struct irp_err e;

	*reason = 0;
	if (irp_revoke_req_parse(body, &r, &e) == -1) {
		api_wire_error(resp, &e);
		return -1;
	}
	if (r.reason != NULL && (*reason = ca_reason_parse(r.reason)) < 0) {
		http_error(resp, 400, "invalid_reason",
		    "unknown revocation reason \"%.64s\"", r.reason);
		return -1;
	}
	return 0;
}

/* The answer to a revocation whose write is done. */
static void
revoked(struct http_req *req, struct http_resp *resp,
    const struct reg_revocation *rv)
{
	struct irp_revoked out = { .status = IRP_CERT_REVOKED };
	const char *name = ca_reason_name(rv->reason);
	struct reg_err e;

	if (reg_revoke_end(req->reg, rv, &e) == -1) {
		http_reg_error(resp, &e);
		return;
	}
	if (irp_copy(out.serial, sizeof(out.serial), rv->serial) == -1 ||
	    irp_copy(out.reason, sizeof(out.reason), name ? name :
	    "unspecified") == -1)
		http_error(resp, 500, "internal_error", "unknown reason");
	else
		http_json(resp, 200, irp_revoked_build(&out));
}

/*
 * With group commit (commit.h) the revocation joins others' while the
 * connection sleeps (api_write), with one new CRL for them all.
 */
void
api_revoke(struct http_req *req, struct http_resp *resp)
{
	struct reg_revocation *rv = req->later;
	char serial[IRP_SERIAL_MAX + 1];
	struct reg_actor who;
	struct reg_err e;
	int reason;

	if (rv != NULL) {
		revoked(req, resp, rv);
		return;
	}
	if (api_parse_revoke(req->json, &reason, resp) == -1)
		return;
	if (irp_serial_normalize(req->param, serial, sizeof(serial)) == -1) {
		http_error(resp, 400, "invalid_serial",
		    "a serial is 1 to 40 hex digits");
		return;
	}
	if ((rv = malloc(sizeof(*rv))) == NULL) {
		http_error(resp, 500, "internal_error", "out of memory");
		return;
	}
	if (reg_revoke_begin(req->reg, req->db, serial, reason,
		api_actor(req, &who), rv, &e) == -1) {
		free(rv);
		http_reg_error(resp, &e);
		return;
	}
	if (api_write(req, resp, &rv->job, rv, free) == 1) {
		revoked(req, resp, rv);
		free(rv);
	}
}

/* The list so far; db_user_list stops quietly, so failing is noted. */
struct users {
	struct irp_user_list l;
	int failed;
};

static int
user_json(const struct db_user *u, void *arg)
{
	struct irp_user_info ui = { .enabled = u->enabled };
	struct users *us = arg;

	irp_time(u->created_at, ui.created_at);
	if (irp_copy(ui.userid, sizeof(ui.userid), u->userid) == -1 ||
	    irp_copy(ui.name, sizeof(ui.name), u->name) == -1 ||
	    irp_copy(ui.email, sizeof(ui.email), u->email) == -1 ||
	    irp_copy(ui.role, sizeof(ui.role), u->is_admin ? IRP_ROLE_ADMIN :
		IRP_ROLE_USER) == -1 ||
	    irp_user_list_add(&us->l, &ui) == -1) {
		us->failed = 1;
		return -1;
	}
	return 0;
}

void
api_admin_users(struct http_req *req, struct http_resp *resp)
{
	struct users us = { { 0, NULL }, 0 };
	struct db_err de;

	if (db_user_list(req->db, user_json, &us, &de) == -1) {
		irp_user_list_clear(&us.l);
		http_db_error(resp, &de);
		return;
	}
	if (us.failed)
		http_error(resp, 500, "internal_error", "out of memory");
	else
		http_json(resp, 200, irp_user_list_build(&us.l));
	irp_user_list_clear(&us.l);
}

int
api_parse_user_add(json_t *body, struct reg_user_new *nu,
    struct http_resp *resp)
{
	struct irp_user_add_req r;
	struct irp_err e;

	memset(nu, 0, sizeof(*nu));
	/* Generous bounds on the wire; reg_user_add has the real ones. */
	if (irp_user_add_req_parse(body, &r, &e) == -1) {
		api_wire_error(resp, &e);
		return -1;
	}
	nu->userid = r.userid;
	nu->name = r.name;
	nu->email = r.email;
	nu->password = r.password;
	nu->admin = r.role != NULL && strcmp(r.role, IRP_ROLE_ADMIN) == 0;
	return 0;
}

void
api_admin_user_add(struct http_req *req, struct http_resp *resp)
{
	char userid[IRP_USERID_MAX + 1];
	struct irp_user_info out = { 0 };
	struct reg_user_new nu;
	struct reg_actor who;
	struct reg_err e;

	if (api_parse_user_add(req->json, &nu, resp) == -1)
		return;
	if (reg_user_add(req->reg, req->db, &nu, api_actor(req, &who),
		userid, &e) == -1) {
		http_reg_error(resp, &e);
		return;
	}
	snprintf(resp->location, sizeof(resp->location), "/v1/users/%s",
	    userid);
	if (irp_copy(out.userid, sizeof(out.userid), userid) == -1 ||
	    irp_copy(out.name, sizeof(out.name), nu.name) == -1 ||
	    irp_copy(out.email, sizeof(out.email), nu.email) == -1 ||
	    irp_copy(out.role, sizeof(out.role), nu.admin ? IRP_ROLE_ADMIN :
		IRP_ROLE_USER) == -1)
		http_error(resp, 500, "internal_error",
		    "the new user does not fit the answer");
	else
		http_json(resp, 201, irp_user_added_build(&out));
}

static int
param_userid(struct http_req *req, char *userid, size_t len,
    struct http_resp *resp)
{
	const char *why;

	if (irp_userid_normalize(req->param, userid, len, &why) == -1) {
		http_error(resp, 400, "invalid_userid", "%s", why);
		return -1;
	}
	return 0;
}

static void
set_enabled(struct http_req *req, struct http_resp *resp, int enabled)
{
	struct irp_user_enabled out = { .enabled = enabled };
	char userid[IRP_USERID_MAX + 1];
	struct reg_actor who;
	struct reg_err e;

	if (param_userid(req, userid, sizeof(userid), resp) == -1)
		return;
	if (reg_user_set_enabled(req->reg, req->db, userid, enabled,
		api_actor(req, &who), &e) == -1) {
		http_reg_error(resp, &e);
		return;
	}
	memcpy(out.userid, userid, sizeof(userid));
	http_json(resp, 200, irp_user_enabled_build(&out));
}

static int
serial_json(const char *serial, void *arg)
{
	return irp_user_revoked_add(arg, serial);
}

/* Every certificate of a user at once: a stolen device and its renewals. */
void
api_admin_user_revoke(struct http_req *req, struct http_resp *resp)
{
	struct irp_user_revoked out = { 0 };
	char userid[IRP_USERID_MAX + 1];
	struct reg_actor who;
	struct reg_err e;
	int reason, n;

	if (param_userid(req, userid, sizeof(userid), resp) == -1 ||
	    api_parse_revoke(req->json, &reason, resp) == -1)
		return;
	if (reg_revoke_user(req->reg, req->db, userid, reason,
		api_actor(req, &who), serial_json, &out, &n, &e) == -1) {
		irp_user_revoked_clear(&out);
		http_reg_error(resp, &e);
		return;
	}
	memcpy(out.userid, userid, sizeof(userid));
	if (irp_copy(out.reason, sizeof(out.reason), ca_reason_name(reason) ?
		ca_reason_name(reason) : "unspecified") == -1)
		http_error(resp, 500, "internal_error", "unknown reason");
	else
		http_json(resp, 200, irp_user_revoked_build(&out));
	irp_user_revoked_clear(&out);
}

void
api_admin_user_disable(struct http_req *req, struct http_resp *resp)
{
	set_enabled(req, resp, 0);
}

void
api_admin_user_enable(struct http_req *req, struct http_resp *resp)
{
	set_enabled(req, resp, 1);
}

int
api_parse_code(json_t *body, int *ttl, struct http_resp *resp)
{
	struct irp_code_req r;
	struct irp_err e;

	*ttl = 0;
	if (irp_code_req_parse(body, &r, &e) == -1) {
		api_wire_error(resp, &e);
		return -1;
	}
	/* 0 would mean "the default": say what was asked instead. */
	if (r.has_ttl)
		*ttl = r.ttl > 0 && r.ttl <= INT_MAX ? (int)r.ttl : -1;
	return 0;
}

void
api_admin_code(struct http_req *req, struct http_resp *resp)
{
	char userid[IRP_USERID_MAX + 1], code[REG_CODE_LEN + 1];
	struct irp_code out;
	struct reg_actor who;
	struct reg_err e;
	long long expires;
	int ttl;

	if (param_userid(req, userid, sizeof(userid), resp) == -1 ||
	    api_parse_code(req->json, &ttl, resp) == -1)
		return;
	if (reg_code_new(req->reg, req->db, userid, ttl,
		api_actor(req, &who), code, &expires, &e) == -1) {
		http_reg_error(resp, &e);
		return;
	}
	memcpy(out.userid, userid, sizeof(userid));
	irp_time(expires, out.expires_at);
	if (irp_copy(out.code, sizeof(out.code), code) == -1)
		http_error(resp, 500, "internal_error",
		    "the code does not fit the answer");
	else
		http_json(resp, 201, irp_code_build(&out));
	OPENSSL_cleanse(code, sizeof(code));
	OPENSSL_cleanse(&out, sizeof(out));
}

const char *
api_parse_p12(json_t *body, struct http_resp *resp)
{
	struct irp_p12_req r;
	struct irp_err e;

	if (irp_p12_req_parse(body, &r, &e) == -1) {
		api_wire_error(resp, &e);
		return NULL;
	}
	return r.passphrase;
}

/* Centralized PKI: the server makes the key and returns a PKCS#12. */
void
api_admin_p12(struct http_req *req, struct http_resp *resp)
{
	char userid[IRP_USERID_MAX + 1];
	const char *pass;
	unsigned char *p12 = NULL;
	size_t len = 0;
	struct reg_actor who;
	struct ca_issued is;
	struct reg_err e;

	if (param_userid(req, userid, sizeof(userid), resp) == -1 ||
	    (pass = api_parse_p12(req->json, resp)) == NULL)
		return;
	if (reg_issue_p12(req->reg, req->db, userid, pass,
		api_actor(req, &who), &p12, &len, &is, &e) == -1) {
		http_reg_error(resp, &e);
		return;
	}
	http_blob(resp, 201, "application/x-pkcs12", p12, len);
	OPENSSL_cleanse(p12, len);
	free(p12);
	ca_issued_clear(&is);
}

/*
 * A list read into arr was cut short: by the store (de), or by a callback
 * out of memory (de untouched: DB_OK).
 */
static void
list_failed(struct http_resp *resp, json_t *arr, const struct db_err *de)
{
	json_decref(arr);
	if (de->code != DB_OK)
		http_db_error(resp, de);
	else
		http_error(resp, 500, "internal_error", "out of memory");
}

/* A request as the admin API shows it. */
static json_t *
request_json(const struct db_request *q)
{
	struct irp_request r = { .id = (long long)q->id };

	if (irp_copy(r.userid, sizeof(r.userid), q->userid) == -1 ||
	    irp_copy(r.proof, sizeof(r.proof), q->proof) == -1 ||
	    irp_copy(r.source, sizeof(r.source), q->source) == -1 ||
	    irp_copy(r.status, sizeof(r.status), q->status) == -1 ||
	    irp_copy(r.decided_by, sizeof(r.decided_by), q->decided_by) ==
	    -1 ||
	    irp_copy(r.reason, sizeof(r.reason), q->reason) == -1 ||
	    irp_copy(r.serial, sizeof(r.serial), q->serial) == -1)
		return NULL;
	irp_time(q->created_at, r.created_at);
	irp_time(q->expires_at, r.expires_at);
	if (q->decided_at != 0)
		irp_time(q->decided_at, r.decided_at);
	return irp_request_build(&r);
}

static int
request_add(const struct db_request *q, void *arg)
{
	json_t *o = request_json(q);

	return o == NULL || json_array_append_new(arg, o) == -1 ? -1 : 0;
}

/* ?all=1: every request, decided and expired ones too. */
void
api_admin_requests(struct http_req *req, struct http_resp *resp)
{
	const char *all = http_query(req, "all");
	struct db_err de;
	json_t *arr;

	if ((arr = json_array()) == NULL) {
		http_error(resp, 500, "internal_error", "out of memory");
		return;
	}
	de.code = DB_OK;
	if (db_request_list(req->db, all != NULL && strcmp(all, "1") == 0,
		request_add, arr, &de) == -1) {
		list_failed(resp, arr, &de);
		return;
	}
	http_json(resp, 200, json_pack("{s:o}", "requests", arr));
}

/* The request id in the path, or -1 after a 400. */
static int64_t
param_request(struct http_req *req, struct http_resp *resp)
{
	long long id;
	char *end;

	errno = 0;
	id = strtoll(req->param, &end, 10);
	if (req->param[0] < '1' || req->param[0] > '9' || *end != '\0' ||
	    errno != 0 || id <= 0) {
		http_error(resp, 400, "invalid_request_id",
		    "a request id is a positive number");
		return -1;
	}
	return (int64_t)id;
}

void
api_admin_request_approve(struct http_req *req, struct http_resp *resp)
{
	struct db_request q;
	struct reg_actor who;
	struct reg_err e;
	int64_t id;

	if ((id = param_request(req, resp)) == -1)
		return;
	if (reg_request_approve(req->reg, req->db, id, api_actor(req, &who),
		&q, &e) == -1) {
		http_reg_error(resp, &e);
		return;
	}
	/* As stored now: decided, by whom, what it issued. */
	db_request_clear(&q);
	if (db_request_by_id(req->db, id, &q, NULL) == 0) {
		db_request_clear(&q);
		http_json(resp, 200, request_json(&q));
	} else
		http_json(resp, 200, json_pack("{s:I,s:s}", "id",
		    (json_int_t)id, "status", "approved"));
}

void
api_admin_request_reject(struct http_req *req, struct http_resp *resp)
{
	struct db_request q;
	struct reg_actor who;
	struct reg_err e;
	const char *reason = NULL;
	json_t *v;
	int64_t id;

	if ((id = param_request(req, resp)) == -1)
		return;
	v = json_object_get(req->json, "reason");
	if (v != NULL && !json_is_string(v)) {
		http_error(resp, 400, "wrong_type",
		    "the field \"reason\" must be a string");
		return;
	}
	if (v != NULL)
		reason = json_string_value(v);
	if (reg_request_reject(req->reg, req->db, id, reason,
		api_actor(req, &who), &e) == -1) {
		http_reg_error(resp, &e);
		return;
	}
	if (db_request_by_id(req->db, id, &q, NULL) == 0) {
		db_request_clear(&q);
		http_json(resp, 200, request_json(&q));
	} else
		http_json(resp, 200, json_pack("{s:I,s:s}", "id",
		    (json_int_t)id, "status", "rejected"));
}

/* One certificate of the list, with its user. */
static int
cert_add(const struct db_cert *c, void *arg)
{
	char nb[IRP_TIME_LEN], na[IRP_TIME_LEN];
	const char *status = c->revoked ? IRP_CERT_REVOKED :
	    c->not_after < time(NULL) ? IRP_CERT_EXPIRED : IRP_CERT_VALID;
	json_t *o;

	irp_time(c->not_before, nb);
	irp_time(c->not_after, na);
	o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "userid", c->userid,
	    "serial", c->serial, "fingerprint", c->fingerprint, "status",
	    status, "not_before", nb, "not_after", na);
	return o == NULL || json_array_append_new(arg, o) == -1 ? -1 : 0;
}

/* GET /v1/admin/certificates[?user=USERID]: issued certificates. */
void
api_admin_certs(struct http_req *req, struct http_resp *resp)
{
	const char *user = http_query(req, "user");
	char userid[IRP_USERID_MAX + 1];
	const char *why;
	struct db_err de;
	json_t *arr;

	if (user != NULL && *user != '\0' &&
	    irp_userid_normalize(user, userid, sizeof(userid), &why) == -1) {
		http_error(resp, 400, "invalid_userid", "%s", why);
		return;
	}
	if ((arr = json_array()) == NULL) {
		http_error(resp, 500, "internal_error", "out of memory");
		return;
	}
	de.code = DB_OK;
	if (db_cert_list(req->db, user != NULL && *user != '\0' ? userid :
		NULL, cert_add, arr, &de) == -1) {
		list_failed(resp, arr, &de);
		return;
	}
	http_json(resp, 200, json_pack("{s:o}", "certificates", arr));
}

static int
audit_add(const struct db_audit_entry *a, void *arg)
{
	char at[IRP_TIME_LEN];
	json_t *o;

	irp_time(a->at, at);
	o = json_pack("{s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "id",
	    (json_int_t)a->id, "at", at, "actor", a->actor, "action",
	    a->action, "target", a->target, "serial", a->serial, "source",
	    a->source, "detail", a->detail);
	return o == NULL || json_array_append_new(arg, o) == -1 ? -1 : 0;
}

/*
 * GET /v1/admin/audit[?limit=N]: the chain checked end to end, and the
 * latest N rows (100; at most 1000).
 */
void
api_admin_audit(struct http_req *req, struct http_resp *resp)
{
	const char *l = http_query(req, "limit");
	struct reg_audit_report rep;
	struct reg_err e;
	struct db_err de;
	json_t *arr;
	long limit = 100;
	char *end;

	if (l != NULL) {
		limit = strtol(l, &end, 10);
		if (*l == '\0' || *end != '\0' || limit < 1 || limit > 1000) {
			http_error(resp, 400, "invalid_value",
			    "limit is 1 to 1000");
			return;
		}
	}
	if (reg_audit_verify(req->reg, req->db, &rep, NULL, NULL, &e) == -1) {
		http_reg_error(resp, &e);
		return;
	}
	if ((arr = json_array()) == NULL) {
		http_error(resp, 500, "internal_error", "out of memory");
		return;
	}
	de.code = DB_OK;
	if (db_audit_recent(req->db, (int)limit, audit_add, arr, &de) == -1) {
		list_failed(resp, arr, &de);
		return;
	}
	http_json(resp, 200, json_pack("{s:b,s:I,s:I,s:o}", "intact",
	    rep.problems == 0, "rows", (json_int_t)rep.rows, "problems",
	    (json_int_t)rep.problems, "entries", arr));
}
