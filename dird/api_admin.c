/*
 * api_admin.c - revocation (own certificate or admin) and the admin
 * endpoints: users, enrolment codes, server-side key generation.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "api.h"
#include "irp.h"

int
api_norm_serial(const char *in, char *out, size_t len)
{
	size_t i = 0, j = 0;

	if (*in == '\0' || strlen(in) > 40)
		return -1;
	for (i = 0; in[i] != '\0'; i++)
		if (!isxdigit((unsigned char)in[i]))
			return -1;
	i = 0;
	while (in[i] == '0' && in[i + 1] != '\0')
		i++;
	for (; in[i] != '\0' && j + 1 < len; i++)
		out[j++] = (char)tolower((unsigned char)in[i]);
	out[j] = '\0';
	return 0;
}

/* Whose certificate is serial?  (the user id, or -1 with resp) */
struct owner {
	char userid[DB_USERID_MAX];
};

static int
owner_cb(const struct db_cert *c, void *arg)
{
	struct owner *o = arg;

	snprintf(o->userid, sizeof(o->userid), "%s", c->userid);
	return 0;
}

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
	char serial[DB_SERIAL_MAX];
	struct owner o = { "" };
	struct db_err de;
	struct reg_err e;
	int reason;

	if (api_parse_revoke(req->json, &reason, resp) == -1)
		return;
	if (api_norm_serial(req->param, serial, sizeof(serial)) == -1) {
		http_error(resp, 400, "invalid_serial",
		    "a serial is 1 to 40 hex digits");
		return;
	}
	if (db_cert_get(req->db, ca_fingerprint(req->env->reg->ca), serial,
		owner_cb, &o, &de) == -1) {
		if (de.code == DB_ERR_NOTFOUND)
			http_error(resp, 404, "unknown_certificate",
			    "no certificate with serial %s", serial);
		else
			http_db_error(resp, &de);
		return;
	}
	if (strcmp(o.userid, req->who.user.userid) != 0 &&
	    !req->who.user.is_admin) {
		http_error(resp, 403, "forbidden",
		    "you may only revoke your own certificates");
		return;
	}
	if (reg_revoke(req->env->reg, req->db, serial, reason,
		req->who.user.is_admin, req->who.user.userid,
		req->source[0] ? req->source : NULL, &e) == -1) {
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
	char t[32];

	http_time(u->created_at, t, sizeof(t));
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
api_parse_user_add(json_t *body, struct api_user_add *ua,
    struct http_resp *resp)
{
	static const char *const keys[] = { "userid", "name", "email", "role",
		"password", NULL };
	const char *uid, *why;

	if (api_only_keys(body, keys, resp) == -1 ||
	    (uid = api_string(body, "userid", 254, 1, resp)) == NULL ||
	    (ua->name = api_string(body, "name", 64, 1, resp)) == NULL)
		return -1;
	ua->email = api_string(body, "email", 128, 0, resp);
	if (resp->status)
		return -1;
	ua->role = api_string(body, "role", 16, 0, resp);
	if (resp->status)
		return -1;
	ua->password = api_string(body, "password", 1024, 0, resp);
	if (resp->status)
		return -1;
	/* An empty password would let "userid:" in as that user. */
	if (ua->password != NULL && strlen(ua->password) < REG_PASSWORD_MIN) {
		http_error(resp, 400, "weak_password",
		    "the password needs at least 8 characters");
		return -1;
	}
	if (irp_userid_normalize(uid, ua->userid, sizeof(ua->userid),
		&why) == -1) {
		http_error(resp, 400, "invalid_userid", "%s", why);
		return -1;
	}
	if (!ca_name_ok(ua->name)) {
		http_error(resp, 400, "invalid_value", "the name must not be "
		    "empty or hold control characters or direction overrides");
		return -1;
	}
	if (ua->role != NULL && strcmp(ua->role, "user") &&
	    strcmp(ua->role, "admin")) {
		http_error(resp, 400, "invalid_value",
		    "role is \"user\" or \"admin\"");
		return -1;
	}
	return 0;
}

void
api_admin_user_add(struct http_req *req, struct http_resp *resp)
{
	char hash[REG_PWHASH_MAX] = "";
	struct api_user_add ua;
	const char *userid, *name, *email, *role, *pw;
	struct db_err de;
	struct reg_err e;
	json_t *out;

	if (api_parse_user_add(req->json, &ua, resp) == -1)
		return;
	userid = ua.userid;
	name = ua.name;
	email = ua.email;
	role = ua.role;
	pw = ua.password;
	if (pw != NULL && reg_password_hash(pw, hash, sizeof(hash), &e) == -1) {
		http_reg_error(resp, &e);
		return;
	}
	if (api_begin(req, resp) == -1)
		goto out;
	if (db_user_add(req->db, userid, name, email,
		role != NULL && strcmp(role, "admin") == 0,
		hash[0] ? hash : NULL, NULL, &de) == -1) {
		db_rollback(req->db);
		http_db_error(resp, &de);
		goto out;
	}
	if (api_audit(req, "admin.user_add", userid, NULL,
		role ? role : "user", resp) == -1 ||
	    api_commit(req, resp) == -1) {
		db_rollback(req->db);
		goto out;
	}
	out = json_pack("{s:s,s:s,s:s?,s:s}", "userid", userid, "name", name,
	    "email", email, "role", role ? role : "user");
	snprintf(resp->location, sizeof(resp->location), "/v1/users/%s",
	    userid);
	http_json(resp, 201, out);
out:
	OPENSSL_cleanse(hash, sizeof(hash));
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
	struct reg_err e;

	if (param_userid(req, userid, sizeof(userid), resp) == -1)
		return;
	if (reg_user_set_enabled(req->env->reg, req->db, userid, enabled,
		req->who.user.userid, enabled ? "admin.user_enable" :
		"admin.user_disable", req->source[0] ? req->source : NULL,
		&e) == -1) {
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
	if (reg_revoke_user(req->env->reg, req->db, userid, reason,
		req->who.user.userid, req->source[0] ? req->source : NULL,
		serial_json, serials, &n, &e) == -1) {
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
		if (json_integer_value(t) < 60 ||
		    json_integer_value(t) > 30 * 86400) {
			http_error(resp, 400, "invalid_value",
			    "ttl is an integer from 60 to 2592000 seconds");
			return -1;
		}
		*ttl = (int)json_integer_value(t);
	}
	return 0;
}

void
api_admin_code(struct http_req *req, struct http_resp *resp)
{
	char userid[IRP_USERID_MAX + 1], code[REG_CODE_LEN + 1], exp[32];
	struct reg_err e;
	int ttl;

	if (param_userid(req, userid, sizeof(userid), resp) == -1 ||
	    api_parse_code(req->json, &ttl, resp) == -1)
		return;
	if (ttl == 0)
		ttl = req->env->reg->conf.code_ttl;
	if (api_begin(req, resp) == -1)
		return;
	if (reg_code_new(req->env->reg, req->db, userid, ttl,
		req->who.user.userid, code, &e) == -1) {
		db_rollback(req->db);
		http_reg_error(resp, &e);
		return;
	}
	if (api_commit(req, resp) == 0) {
		http_time(time(NULL) + ttl, exp, sizeof(exp));
		http_json(resp, 201, json_pack("{s:s,s:s,s:s}", "userid", userid,
					 "code", code, "expires_at", exp));
	}
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
	struct ca_issued is;
	struct reg_err e;

	if (param_userid(req, userid, sizeof(userid), resp) == -1 ||
	    (pass = api_parse_p12(req->json, resp)) == NULL)
		return;
	if (api_begin(req, resp) == -1)
		return;
	if (reg_issue_p12(req->env->reg, req->db, userid, pass,
		req->who.user.userid, req->source[0] ? req->source : NULL,
		&p12, &len, &is, &e) == -1) {
		db_rollback(req->db);
		http_reg_error(resp, &e);
		return;
	}
	if (api_commit(req, resp) == 0)
		http_blob(resp, 201, "application/x-pkcs12", p12, len);
	OPENSSL_cleanse(p12, len);
	free(p12);
	ca_issued_clear(&is);
}
