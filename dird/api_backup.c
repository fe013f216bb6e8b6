/*
 * api_backup.c - the user's PKCS#12 backup, stored as given.
 *
 * The server never sees the passphrase; it only checks that the upload is
 * a PKCS#12 with a MAC, so that a truncated or wrong file is refused at
 * once rather than discovered on a new device.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

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
	unsigned int mdlen = 32;
	char detail[48];
	struct irp_backup_stored st;
	struct ca_err ce;
	struct db_err de;

	if (req->body_len == 0) {
		http_error(resp, 400, "empty_body",
		    "send the PKCS#12 file as the body");
		return;
	}
	if (ca_p12_check(req->body, req->body_len, &ce) == -1) {
		http_error(resp, 400, "invalid_pkcs12", "%s", ce.msg);
		return;
	}
	EVP_Digest(req->body, req->body_len, md, &mdlen, EVP_sha256(), NULL);
	hex(md, 32, st.sha256);
	snprintf(detail, sizeof(detail), "size=%zu", req->body_len);
	if (api_begin(req, resp) == -1)
		return;
	if (db_backup_put(req->db, req->who.user.id, req->body, req->body_len,
		md, &de) == -1) {
		db_rollback(req->db);
		http_db_error(resp, &de);
		return;
	}
	if (api_audit(req, "backup.store", req->who.user.userid,
		req->who.serial, detail, resp) == -1) {
		db_rollback(req->db);
		return;
	}
	if (api_commit(req, resp) == -1)
		return;
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
	time_t when;
	struct db_err de;
	struct reg_err e;

	if (api_begin(req, resp) == -1)
		return;
	if (auth_has_secret(req)) {
		if (auth_secret(req->env->auth, req,
			AUTH_ALLOW_CODE | AUTH_ALLOW_PASSWORD, &e) == -1) {
			http_reg_error(resp, &e);
			db_rollback(req->db);
			return;
		}
	} else if (auth_cert(req->env->auth, req, &e) == -1) {
		http_reg_error(resp, &e);
		db_rollback(req->db);
		return;
	}
	if (db_backup_get(req->db, req->who.user.id, &data, &len, &when,
		&de) == -1) {
		db_rollback(req->db);
		if (de.code == DB_ERR_NOTFOUND)
			http_error(resp, 404, "no_backup",
			    "%s has no backup stored", req->who.user.userid);
		else
			http_db_error(resp, &de);
		return;
	}
	if (api_audit(req, "backup.fetch", req->who.user.userid,
		req->who.kind == AUTH_CERT ? req->who.serial : NULL,
		req->who.kind == AUTH_CERT ? "by=certificate" :
		(req->who.kind == AUTH_CODE ? "by=code" : "by=password"),
		resp) == -1 ||
	    api_commit(req, resp) == -1) {
		db_rollback(req->db);
		free(data);
		return;
	}
	http_blob(resp, 200, "application/x-pkcs12", data, len);
	free(data);
}
