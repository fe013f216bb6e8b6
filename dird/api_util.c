/*
 * api_util.c - helpers shared by the request handlers.
 */
#include <stdio.h>
#include <string.h>

#include "api.h"

int
api_only_keys(json_t *obj, const char *const *allowed, struct http_resp *resp)
{
	const char *key;
	json_t *val;
	size_t i;

	json_object_foreach(obj, key, val) {
		for (i = 0; allowed[i] != NULL; i++)
			if (strcmp(key, allowed[i]) == 0)
				break;
		if (allowed[i] == NULL) {
			http_error(resp, 400, "unknown_field",
			    "unknown field \"%.64s\"", key);
			return -1;
		}
	}
	return 0;
}

const char *
api_string(json_t *obj, const char *key, size_t max, int required,
    struct http_resp *resp)
{
	json_t *v = json_object_get(obj, key);
	const char *s;

	if (v == NULL || json_is_null(v)) {
		if (required)
			http_error(resp, 400, "missing_field",
			    "the field \"%s\" is required", key);
		return NULL;
	}
	if (!json_is_string(v)) {
		http_error(resp, 400, "wrong_type",
		    "the field \"%s\" must be a string", key);
		return NULL;
	}
	s = json_string_value(v);
	/* jansson keeps embedded NULs; we never accept them. */
	if (json_string_length(v) != strlen(s)) {
		http_error(resp, 400, "invalid_value",
		    "the field \"%s\" contains a NUL character", key);
		return NULL;
	}
	if (json_string_length(v) > max) {
		http_error(resp, 400, "too_long",
		    "the field \"%s\" is longer than %zu bytes", key, max);
		return NULL;
	}
	return s;
}

int
api_begin(struct http_req *req, struct http_resp *resp)
{
	struct db_err de;

	if (db_begin(req->db, &de) == -1) {
		http_db_error(resp, &de);
		return -1;
	}
	return 0;
}

int
api_commit(struct http_req *req, struct http_resp *resp)
{
	struct db_err de;

	if (db_commit(req->db, &de) == -1) {
		db_rollback(req->db);
		http_db_error(resp, &de);
		return -1;
	}
	return 0;
}

const struct reg_actor *
api_actor(const struct http_req *req, struct reg_actor *who)
{
	const struct db_user *u = &req->who.user;

	memset(who, 0, sizeof(*who));
	who->name = u->userid[0] ? u->userid : "anonymous";
	who->source = req->source[0] ? req->source : NULL;
	who->userid = u->userid[0] ? u->userid : NULL;
	who->admin = u->userid[0] && u->is_admin;
	who->user_id = u->userid[0] ? u->id : 0;
	switch (req->who.kind) {
	case AUTH_CERT:
		who->by = REG_BY_CERT;
		who->cert_id = req->who.cert_id;
		who->serial = req->who.serial;
		break;
	case AUTH_CODE:
		who->by = REG_BY_CODE;
		break;
	case AUTH_PASSWORD:
		who->by = REG_BY_PASSWORD;
		break;
	case AUTH_NONE:
		break;
	}
	return who;
}

json_t *
api_issued_json(struct http_req *req, const struct ca_issued *is)
{
	char na[IRP_TIME_LEN];

	irp_time(is->not_after, na);
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "userid",
	    req->who.user.userid, "certificate", is->cert_pem, "chain",
	    ca_cert_pem(req->reg->ca), "serial", is->serial,
	    "fingerprint", is->fingerprint, "not_after", na);
}
