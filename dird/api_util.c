/*
 * api_util.c - helpers shared by the request handlers.
 */
#include <stdio.h>
#include <string.h>

#include "api.h"

void
api_wire_error(struct http_resp *resp, const struct irp_err *e)
{
	http_error(resp, e->status, e->code, "%s", e->msg);
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

int
api_write(struct http_req *req, struct http_resp *resp,
    struct commit_job *job, void *state, void (*free_state)(void *))
{
	if (req->reg->commit == NULL) {
		reg_write(req->reg, req->db, job);
		return 1;
	}
	job->done = http_wake;
	job->arg = req->conn;
	http_later(req, resp, state, free_state);
	/* Last: the committer may wake the connection before it returns. */
	reg_write(req->reg, NULL, job);
	return 0;
}

void
api_request_closed(struct http_resp *resp, const struct db_request *q)
{
	if (strcmp(q->status, "rejected") == 0)
		http_error(resp, 403, "request_rejected", "an administrator "
		    "rejected this enrolment request%s%s", q->reason[0] ? ": " :
		    "", q->reason);
	else
		http_error(resp, 410, "request_expired", "the enrolment "
		    "request expired before an administrator decided on it; "
		    "ask for a new enrolment code");
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
	case AUTH_REGISTRY:
		/* It acts for one of its users only where a handler names
		 * that user (a relayed post to an inbox). */
		who->by = REG_BY_REGISTRY;
		who->registry = req->who.registry;
		who->name = req->who.registry;
		break;
	case AUTH_NONE:
		break;
	}
	return who;
}

json_t *
api_issued_json(struct http_req *req, const char *userid,
    const struct ca_issued *is)
{
	/* The PEMs are only read by the builder. */
	struct irp_cert c = { .cert_pem = is->cert_pem,
		.chain_pem = (char *)ca_cert_pem(req->reg->ca) };

	irp_time(is->not_after, c.not_after);
	if (irp_copy(c.userid, sizeof(c.userid), userid) == -1 ||
	    irp_copy(c.serial, sizeof(c.serial), is->serial) == -1 ||
	    irp_copy(c.fingerprint, sizeof(c.fingerprint), is->fingerprint) ==
	    -1)
		return NULL;
	return irp_cert_build(&c);
}
