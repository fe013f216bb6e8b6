/*
 * api_events.c - GET /v1/me/events: what a running dchat hears of at
 * once (docs/irp.md, "Events").  One kind today: mail waits.  The
 * request waits (a long poll, push.h) when the asker's cursor says it
 * has heard of everything there is.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "inbox.h"
#include "push.h"

/* A decimal in 0..max, nothing else; -1 when s is none. */
static long long
decimal(const char *s, long long max)
{
	char *end;
	long long v;

	if (s == NULL || *s < '0' || *s > '9' || strlen(s) > 18)
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return -1;
	return v;
}

void
api_events(struct http_req *req, struct http_resp *resp)
{
	const char *after_s = http_query(req, "after");
	const char *wait_s = http_query(req, "wait");
	struct irp_events ev;
	struct reg_actor who;
	struct reg_err e;
	long long after = -1, wait = 0;
	int64_t count, newest;
	uint64_t ticket = 0;

	if (after_s != NULL && (after = decimal(after_s, INT64_MAX)) < 0) {
		http_error(resp, 400, "invalid_cursor",
		    "\"after\" must be the cursor of an earlier answer");
		return;
	}
	if (wait_s != NULL && (wait = decimal(wait_s, IRP_WAIT_MAX)) < 0) {
		http_error(resp, 400, "invalid_wait",
		    "\"wait\" must be seconds, 0 to %d", IRP_WAIT_MAX);
		return;
	}
	if (wait > reg_conf(req->reg)->push_wait_max)
		wait = reg_conf(req->reg)->push_wait_max;
	/* Before looking: what is announced from now on is not missed. */
	if (req->reg->push != NULL)
		ticket = push_ticket(req->reg->push);
	if (inbox_state(req->reg, req->db, api_actor(req, &who), &count,
		&newest, &e) == -1) {
		http_reg_error(resp, &e);
		return;
	}
	if (after >= 0 && newest <= after && wait > 0 && !req->waited &&
	    req->reg->push != NULL) {
		resp->wait = (int)wait;
		resp->wait_user = who.user_id;
		resp->wait_ticket = ticket;
		return;
	}
	memset(&ev, 0, sizeof(ev));
	snprintf(ev.cursor, sizeof(ev.cursor), "%lld", (long long)newest);
	if (newest > after)
		ev.mail_waiting = count;
	http_json(resp, 200, irp_events_build(&ev));
}
