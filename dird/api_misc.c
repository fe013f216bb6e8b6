/*
 * api_misc.c - CA and CRL download, liveness, metrics.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "commit.h"
#include "push.h"

const char *const *http_route_names(size_t *n);

void
api_ca(struct http_req *req, struct http_resp *resp)
{
	const char *pem = ca_cert_pem(req->reg->ca);

	http_blob(resp, 200, "application/x-pem-file", pem, strlen(pem));
}

/*
 * The stored CRL while it has more than half of its life left; else a new
 * one (which also covers "regenerated before nextUpdate").
 */
void
api_crl(struct http_req *req, struct http_resp *resp)
{
	struct reg *r = req->reg;
	struct reg_err e;
	struct db_err de;
	unsigned char *der = NULL;
	size_t len = 0;
	time_t next;

	if (db_crl_get(req->db, ca_fingerprint(r->ca), &der, &len, &next,
		&de) == 0 &&
	    next - time(NULL) > (time_t)reg_conf(r)->crl_days * 86400 / 2) {
		http_blob(resp, 200, "application/pkix-crl", der, len);
		free(der);
		return;
	}
	free(der);
	der = NULL;
	if (de.code == DB_ERR_UNAVAILABLE) {
		http_db_error(resp, &de);
		return;
	}
	if (api_begin(req, resp) == -1)
		return;
	if (reg_crl_build(r, req->db, &der, &len, &e) == -1) {
		db_rollback(req->db);
		http_reg_error(resp, &e);
		return;
	}
	if (api_commit(req, resp) == 0)
		http_blob(resp, 200, "application/pkix-crl", der, len);
	free(der);
}

void
api_healthz(struct http_req *req, struct http_resp *resp)
{
	struct db_err de;

	if (db_ping(req->db, &de) == -1) {
		http_error(resp, 503, "database_unavailable",
		    "the database is unreachable");
		return;
	}
	http_json(resp, 200, irp_health_build(&(struct irp_health){ "ok" }));
}

void
api_metrics(struct http_req *req, struct http_resp *resp)
{
	const char *const *names;
	struct cache_stats cs;
	struct commit_stats ms;
	struct db_err de;
	size_t n, len;
	long online = -1;
	char *text;

	if (db_online_users(req->db, &online, &de) == -1)
		online = -1;
	names = http_route_names(&n);
	if (req->reg->cache != NULL)
		cache_stats(req->reg->cache, &cs);
	if (req->reg->commit != NULL)
		commit_stats(req->reg->commit, &ms);
	if ((text = metrics_render(req->reg->metrics, names, n, online,
		 req->reg->push != NULL ? push_waiting(req->reg->push) : -1,
		 req->reg->cache != NULL ? &cs : NULL,
		 req->reg->commit != NULL ? &ms : NULL, &len)) == NULL) {
		http_error(resp, 500, "internal_error", "out of memory");
		return;
	}
	free(resp->body);
	resp->status = 200;
	resp->ctype = "text/plain; version=0.0.4";
	resp->body = (unsigned char *)text;
	resp->len = len;
}
