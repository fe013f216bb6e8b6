/*
 * api_backup.c - the user's PKCS#12 backup, stored as given: the rules
 * are reg_backup_put's and reg_backup_get's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

static void
hex(const unsigned char *in, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", in[i]);
}

void
api_backup_put(struct http_req *req, struct http_resp *resp)
{
	unsigned char md[32];
	struct irp_backup_stored st;
	struct reg_actor who;
	struct reg_err e;

	if (reg_backup_put(req->reg, req->db, api_actor(req, &who), req->body,
		req->body_len, md, &e) == -1) {
		http_reg_error(resp, &e);
		return;
	}
	hex(md, 32, st.sha256);
	irp_time(time(NULL), st.updated_at);
	st.size = (long long)req->body_len;
	http_json(resp, 200, irp_backup_stored_build(&st));
}

/*
 * A new device has no certificate yet: it may fetch the backup with a
 * one-time code or the user's password instead.
 */
void
api_backup_get(struct http_req *req, struct http_resp *resp)
{
	unsigned char *data = NULL;
	size_t len;
	struct reg_actor who;
	struct reg_err e;

	if (api_begin(req, resp) == -1)
		return;
	if (auth_has_secret(req)) {
		if (auth_secret(req->reg->auth, req,
			AUTH_ALLOW_CODE | AUTH_ALLOW_PASSWORD, &e) == -1) {
			http_reg_error(resp, &e);
			db_rollback(req->db);
			return;
		}
	} else if (auth_cert(req->reg->auth, req, &e) == -1) {
		http_reg_error(resp, &e);
		db_rollback(req->db);
		return;
	}
	/* The code consumed above and the audit row commit together. */
	if (reg_backup_get(req->reg, req->db, api_actor(req, &who), &data,
		&len, &e) == -1) {
		http_reg_error(resp, &e);
		return;
	}
	http_blob(resp, 200, "application/x-pkcs12", data, len);
	free(data);
}
