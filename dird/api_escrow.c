/*
 * api_escrow.c - key escrow: the escrow officer's certificate, and a
 * device's deposit of its key encrypted to it (reg.h, key escrow).
 */
#include <stdlib.h>
#include <string.h>

#include "api.h"

/* GET /v1/escrow: whom to encrypt to, or 404 escrow_off. */
void
api_escrow_get(struct http_req *req, struct http_resp *resp)
{
	char fp[DB_FP_MAX], *pem = NULL;
	struct reg_err e;

	if (reg_escrow_officer(req->reg, req->db, &pem, fp, &e) == -1) {
		http_reg_error(resp, &e);
		return;
	}
	http_json(resp, 200,
	    json_pack("{s:s,s:s}", "certificate", pem, "fingerprint", fp));
	free(pem);
}

/*
 * PUT /v1/me/escrow?officer=FP: the key of the certificate presented,
 * encrypted to the officer FP (as GET /v1/escrow named it).
 */
void
api_escrow_put(struct http_req *req, struct http_resp *resp)
{
	const char *fp = http_query(req, "officer");
	struct reg_actor who;
	struct reg_err e;

	if (fp == NULL || strlen(fp) != DB_FP_MAX - 1) {
		http_error(resp, 400, "invalid_value",
		    "name the escrow officer the key is encrypted to: "
		    "?officer=FINGERPRINT (as GET /v1/escrow gives it)");
		return;
	}
	if (reg_escrow_deposit(req->reg, req->db, api_actor(req, &who), fp,
		req->body, req->body_len, &e) == -1) {
		http_reg_error(resp, &e);
		return;
	}
	http_json(resp, 201,
	    json_pack("{s:b,s:s}", "escrowed", 1, "fingerprint", fp));
}

/* GET /v1/me/escrow: whether the key of this certificate is escrowed. */
void
api_escrow_status(struct http_req *req, struct http_resp *resp)
{
	char fp[DB_FP_MAX];
	struct db_err de;

	if (db_escrow_has(req->db, req->who.cert_id, fp, &de) == -1) {
		http_db_error(resp, &de);
		return;
	}
	if (fp[0] == '\0')
		http_json(resp, 200, json_pack("{s:b}", "escrowed", 0));
	else
		http_json(resp, 200,
		    json_pack("{s:b,s:s}", "escrowed", 1, "fingerprint", fp));
}
