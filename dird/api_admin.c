/*
 * api_admin.c - revocation (own certificate or admin) and the admin
 * endpoints: users, enrolment codes, server-side key generation.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "api.h"
#include "irp.h"

int
api_parse_revoke(json_t *body, int *reason, struct http_resp *resp)
{
	static const char *const keys[] = { "reason", NULL };
	const char *reason_s;

	*reason = 0;
	if (api_only_keys(body, keys, resp) == -1)
		return -1;
	reason_s = api_string(body, "reason", 64, 0, resp);
	if (reason_s == NULL && resp->status != 0)
		return -1;
	if (reason_s != NULL && (*reason = ca_reason_parse(reason_s)) < 0) {
		http_error(resp, 400, "invalid_reason",
		    "unknown revocation reason \"%.64s\"", reason_s);
		return -1;
	}
	return 0;
}

void
api_revoke(struct http_req *req, struct http_resp *resp)
{
	char serial[IRP_SERIAL_MAX + 1];
	struct reg_actor who;
	struct reg_err e;
	int reason;

	if (api_parse_revoke(req->json, &reason, resp) == -1)
		return;
	if (irp_serial_normalize(req->param, serial, sizeof(serial)) == -1) {
		http_error(resp, 400, "invalid_serial",
		    "a serial is 1 to 40 hex digits");
		return;
	}
	if (reg_revoke(req->reg, req->db, serial, reason,
		api_actor(req, &who), &e) == -1) {
		http_reg_error(resp, &e);
		return;
	}
	http_json(resp, 200, json_pack("{s:s,s:s,s:s}", "serial", serial,
				 "status", "revoked", "reason",
				 ca_reason_name(reason) ? ca_reason_name(reason) :
							  "unspecified"));
}

static int
user_json(const struct db_user *u, void *arg)
{
	char t[IRP_TIME_LEN];

	irp_time(u->created_at, t);
	json_array_append_new(arg, json_pack("{s:s,s:s,s:s?,s:s,s:b,s:s}",
				       "userid", u->userid, "name", u->name,
				       "email", u->email[0] ? u->email : NULL,
				       "role", u->is_admin ? "admin" : "user",
				       "enabled", u->enabled, "created_at", t));
	return 0;
}

void
api_admin_users(struct http_req *req, struct http_resp *resp)
{
	json_t *arr = json_array();
	struct db_err de;

	if (db_user_list(req->db, user_json, arr, &de) == -1) {
		json_decref(arr);
		http_db_error(resp, &de);
		return;
	}
	http_json(resp, 200, json_pack("{s:o}", "users", arr));
}

int
api_parse_user_add(json_t *body, struct reg_user_new *nu,
    struct http_resp *resp)
{
	static const char *const keys[] = { "userid", "name", "email", "role",
		"password", NULL };
	const char *role;

	memset(nu, 0, sizeof(*nu));
	/* Generous bounds on the wire; reg_user_add has the real ones. */
	if (api_only_keys(body, keys, resp) == -1 ||
	    (nu->userid = api_string(body, "userid", 1024, 1, resp)) == NULL ||
	    (nu->name = api_string(body, "name", 1024, 1, resp)) == NULL)
		return -1;
	nu->email = api_string(body, "email", 1024, 0, resp);
	if (resp->status)
		return -1;
	role = api_string(body, "role", 16, 0, resp);
	if (resp->status)
		return -1;
	nu->password = api_string(body, "password", 1024, 0, resp);
	if (resp->status)
		return -1;
	if (role != NULL && strcmp(role, "user") && strcmp(role, "admin")) {
		http_error(resp, 400, "invalid_value",
		    "role is \"user\" or \"admin\"");
		return -1;
	}
	nu->admin = role != NULL && strcmp(role, "admin") == 0;
	return 0;
}

void
api_admin_user_add(struct http_req *req, struct http_resp *resp)
{
	char userid[IRP_USERID_MAX + 1];
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
	http_json(resp, 201, json_pack("{s:s,s:s,s:s?,s:s}", "userid", userid,
				 "name", nu.name, "email", nu.email, "role",
				 nu.admin ? "admin" : "user"));
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
	http_json(resp, 200, json_pack("{s:s,s:b}", "userid", userid,
				 "enabled", enabled));
}

static int
serial_json(const char *serial, void *arg)
{
	return json_array_append_new(arg, json_string(serial));
}

/* Every certificate of a user at once: a stolen device and its renewals. */
void
api_admin_user_revoke(struct http_req *req, struct http_resp *resp)
{
	char userid[IRP_USERID_MAX + 1];
	struct reg_actor who;
	struct reg_err e;
	json_t *serials;
	int reason, n;

	if (param_userid(req, userid, sizeof(userid), resp) == -1 ||
	    api_parse_revoke(req->json, &reason, resp) == -1)
		return;
	if ((serials = json_array()) == NULL) {
		http_error(resp, 500, "internal_error", "out of memory");
		return;
	}
	if (reg_revoke_user(req->reg, req->db, userid, reason,
		api_actor(req, &who), serial_json, serials, &n, &e) == -1) {
		json_decref(serials);
		http_reg_error(resp, &e);
		return;
	}
	http_json(resp, 200, json_pack("{s:s,s:o,s:s}", "userid", userid,
				 "revoked", serials, "reason",
				 ca_reason_name(reason) ? ca_reason_name(reason) :
							  "unspecified"));
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
	static const char *const keys[] = { "ttl", NULL };
	json_t *t;

	*ttl = 0;
	if (api_only_keys(body, keys, resp) == -1)
		return -1;
	if ((t = json_object_get(body, "ttl")) != NULL) {
		if (!json_is_integer(t)) {
			http_error(resp, 400, "wrong_type",
			    "\"ttl\" must be an integer number of seconds");
			return -1;
		}
		/* 0 would mean "the default": say what was asked instead. */
		*ttl = json_integer_value(t) > 0 &&
			json_integer_value(t) <= INT_MAX ?
		    (int)json_integer_value(t) : -1;
	}
	return 0;
}

void
api_admin_code(struct http_req *req, struct http_resp *resp)
{
	char userid[IRP_USERID_MAX + 1], code[REG_CODE_LEN + 1];
	char exp[IRP_TIME_LEN];
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
	irp_time(expires, exp);
	http_json(resp, 201, json_pack("{s:s,s:s,s:s}", "userid", userid,
				 "code", code, "expires_at", exp));
	OPENSSL_cleanse(code, sizeof(code));
}

const char *
api_parse_p12(json_t *body, struct http_resp *resp)
{
	static const char *const keys[] = { "passphrase", NULL };
	const char *pass;

	if (api_only_keys(body, keys, resp) == -1 ||
	    (pass = api_string(body, "passphrase", 1024, 1, resp)) == NULL)
		return NULL;
	if (strlen(pass) < 8) {
		http_error(resp, 400, "weak_passphrase",
		    "the passphrase needs at least 8 characters");
		return NULL;
	}
	return pass;
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
