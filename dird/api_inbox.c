/*
 * api_inbox.c - messages that wait for a user: the rules are inbox.c's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "fed.h"
#include "inbox.h"
#include "metrics.h"

/* A message's number in the path: a positive decimal, nothing else. */
static int
msg_number(const char *s, int64_t *id)
{
	char *end;
	long long v;

	if (s == NULL || *s < '1' || *s > '9' || strlen(s) > 18)
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 1)
		return -1;
	*id = v;
	return 0;
}

static void
item(const struct db_inbox_msg *m, struct irp_inbox_item *it)
{
	memset(it, 0, sizeof(*it));
	it->id = m->id;
	snprintf(it->sender, sizeof(it->sender), "%s", m->sender);
	snprintf(it->msg_id, sizeof(it->msg_id), "%s", m->msg_id);
	it->size = m->size;
	irp_time(m->stored_at, it->stored_at);
	irp_time(m->expires_at, it->expires_at);
}

/*
 * A post for a user of another domain goes on to that domain's registry
 * (fed.h): 1 when userid is one (resp filled), 0 when it is ours.
 */
static int
post_foreign(struct http_req *req, const struct reg_actor *who,
    struct http_resp *resp)
{
	char userid[IRP_USERID_MAX + 1];
	struct irp_inbox_item it;
	const char *why;
	struct reg_err e;

	if (irp_userid_normalize(req->param, userid, sizeof(userid), &why) ==
		-1 ||
	    strcmp(strrchr(userid, '@') + 1, req->reg->conf.domain) == 0 ||
	    who->by == REG_BY_REGISTRY)
		return 0; /* inbox_post says what is wrong */
	if (inbox_outgoing(req->reg, who, req->msg_id, req->body, req->body_len,
		&e) == -1 ||
	    fed_post(req->reg->fed, req->db, who, userid, req->msg_id,
		req->body, req->body_len, &it, &e) == -1) {
		metrics_inbox(req->reg->metrics, "refused");
		http_reg_error(resp, &e);
		return 1;
	}
	metrics_inbox(req->reg->metrics, "forwarded");
	http_json(resp, 201, irp_inbox_item_build(&it));
	return 1;
}

void
api_inbox_post(struct http_req *req, struct http_resp *resp)
{
	struct irp_inbox_item it;
	struct db_inbox_msg m;
	struct reg_actor who;
	struct reg_err e;

	api_actor(req, &who);
	/* Another registry names the sender it relays for. */
	if (who.by == REG_BY_REGISTRY)
		who.userid = req->sender;
	if (post_foreign(req, &who, resp))
		return;
	if (inbox_post(req->reg, req->db, &who, req->param, req->msg_id,
		req->body, req->body_len, &m, &e) == -1) {
		metrics_inbox(req->reg->metrics,
		    e.status == 409	? "duplicate" :
			e.status == 507 ? "over_quota" :
					  "refused");
		http_reg_error(resp, &e);
		return;
	}
	metrics_inbox(req->reg->metrics, "stored");
	item(&m, &it);
	http_json(resp, 201, irp_inbox_item_build(&it));
}

static int
list_add(const struct db_inbox_msg *m, void *arg)
{
	struct irp_inbox_item it;

	item(m, &it);
	return irp_inbox_add(arg, &it) == -1 ? -1 : 0;
}

void
api_inbox_list(struct http_req *req, struct http_resp *resp)
{
	struct irp_inbox l = { 0, NULL };
	struct reg_actor who;
	struct reg_err e;

	if (inbox_list(req->reg, req->db, api_actor(req, &who), list_add, &l,
		&e) == -1) {
		irp_inbox_clear(&l);
		http_reg_error(resp, &e);
		return;
	}
	http_json(resp, 200, irp_inbox_build(&l));
	irp_inbox_clear(&l);
}

void
api_inbox_get(struct http_req *req, struct http_resp *resp)
{
	unsigned char *data = NULL;
	struct reg_actor who;
	struct reg_err e;
	size_t len = 0;
	int64_t id;

	if (msg_number(req->param, &id) == -1) {
		http_error(resp, 404, "no_message", "no such message here");
		return;
	}
	if (inbox_get(req->reg, req->db, api_actor(req, &who), id, &data, &len,
		&e) == -1) {
		http_reg_error(resp, &e);
		return;
	}
	http_blob(resp, 200, "application/pkcs7-mime", data, len);
	free(data);
}

void
api_inbox_delete(struct http_req *req, struct http_resp *resp)
{
	struct reg_actor who;
	struct reg_err e;
	int64_t id;

	if (msg_number(req->param, &id) == -1) {
		http_error(resp, 404, "no_message", "no such message here");
		return;
	}
	if (inbox_delete(req->reg, req->db, api_actor(req, &who), id, &e) ==
	    -1) {
		http_reg_error(resp, &e);
		return;
	}
	http_json(resp, 200, json_pack("{s:I}", "deleted", (json_int_t)id));
}
