/*
 * inbox.c - messages that wait for a user (inbox.h says what is checked).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca.h"
#include "inbox.h"
#include "irp.h"
#include "irp_wire.h"

#define MIB (1024LL * 1024)

/* Only a user, by the certificate it presented, posts or reads mail. */
static int
by_certificate(const struct reg_actor *who, struct reg_err *e)
{
	if (who->by == REG_BY_CERT && who->user_id > 0 && who->userid != NULL)
		return 0;
	reg_seterr(e, 403, "forbidden",
	    "the inbox is reached with a user's certificate");
	return -1;
}

/*
 * Who posts: a user of ours by certificate, or another domain's registry
 * (admitted by its federation rule) for a user of that very domain; a
 * registry speaks for its own users only.  *sender is the user id as
 * recorded (normalised).
 */
static int
poster(const struct reg *r, const struct reg_actor *who,
    char sender[IRP_USERID_MAX + 1], struct reg_err *e)
{
	const char *why = NULL;

	if (who->by != REG_BY_REGISTRY) {
		if (by_certificate(who, e) == -1)
			return -1;
		snprintf(sender, IRP_USERID_MAX + 1, "%s", who->userid);
		return 0;
	}
	if (who->registry == NULL || who->userid == NULL) {
		reg_seterr(e, 400, "invalid_sender",
		    "a registry that relays a post names its sender "
		    "(IRP-Sender)");
		return -1;
	}
	if (irp_userid_normalize(who->userid, sender, IRP_USERID_MAX + 1,
		&why) == -1) {
		reg_seterr(e, 400, "invalid_sender", "IRP-Sender: %s", why);
		return -1;
	}
	if (strcmp(strrchr(sender, '@') + 1, who->registry) != 0 ||
	    strcmp(who->registry, r->conf.domain) == 0) {
		reg_seterr(e, 403, "forbidden",
		    "the registry of %s relays posts of its own users only, "
		    "not of %s",
		    who->registry, sender);
		return -1;
	}
	return 0;
}

/* The recipient: a user of this domain, there and enabled. */
static int
recipient(struct reg *r, struct db *db, const char *given, struct db_user *u,
    struct reg_err *e)
{
	char userid[IRP_USERID_MAX + 1];
	const char *why = NULL;
	struct db_err de;

	if (irp_userid_normalize(given, userid, sizeof(userid), &why) == -1) {
		reg_seterr(e, 400, "invalid_userid", "%s", why);
		return -1;
	}
	if (strcmp(strrchr(userid, '@') + 1, r->conf.domain) != 0) {
		reg_seterr(e, 403, "other_domain",
		    "this registry keeps mail for "
		    "%s only; %s's registry keeps it for them",
		    r->conf.domain, userid);
		return -1;
	}
	if (db_user_get(db, userid, u, &de) == -1) {
		if (de.code != DB_ERR_NOTFOUND) {
			reg_err_from_db(e, &de);
			return -1;
		}
		u->enabled = 0;
	}
	if (!u->enabled) {
		/* A disabled user is not told apart from an unknown one. */
		reg_seterr(e, 404, "unknown_user", "no user %s here", userid);
		return -1;
	}
	return 0;
}

/* The post of len bytes fits every quota; 507 over_quota if not. */
static int
quotas(const struct conf *c, const struct db_inbox_usage *u, const char *userid,
    size_t len, struct reg_err *e)
{
	long long n = (long long)len;

	if (u->user_count + 1 > c->inbox_user_count)
		reg_seterr(e, 507, "over_quota",
		    "%lld messages wait for %s "
		    "already, as many as may (inbox_user_count)",
		    (long long)u->user_count, userid);
	else if (u->user_bytes + n > c->inbox_user_mb * MIB)
		reg_seterr(e, 507, "over_quota",
		    "the inbox of %s is full: "
		    "%lld of %d MiB used, and this message has %lld bytes",
		    userid, (long long)(u->user_bytes / MIB), c->inbox_user_mb,
		    n);
	else if (u->sender_bytes + n > c->inbox_sender_mb * MIB)
		reg_seterr(e, 507, "over_quota",
		    "you have %lld MiB waiting "
		    "in inboxes here, and may have %d MiB (inbox_sender_mb)",
		    (long long)(u->sender_bytes / MIB), c->inbox_sender_mb);
	else if (u->total_bytes + n > c->inbox_total_mb * MIB)
		reg_seterr(e, 507, "over_quota",
		    "this registry's inbox is "
		    "full (inbox_total_mb)");
	else
		return 0;
	return -1;
}

/* The checks of the message itself, before the store is asked. */
static int
message_ok(const struct conf *c, const char *msg_id, const unsigned char *data,
    size_t len, struct reg_err *e)
{
	struct ca_err ce;

	if (msg_id == NULL || !irp_msgid_ok(msg_id)) {
		reg_seterr(e, 400, "invalid_message_id",
		    "IRP-Message-Id: 1 to "
		    "128 of A-Z a-z 0-9 . _ @ < > + -, the sender's id of the "
		    "message");
		return -1;
	}
	if (len == 0) {
		reg_seterr(e, 400, "empty_body",
		    "send the message as the body");
		return -1;
	}
	if (len > (size_t)c->inbox_msg_max) {
		reg_seterr(e, 413, "body_too_large",
		    "a message has at most %d "
		    "bytes",
		    c->inbox_msg_max);
		return -1;
	}
	if (ca_cms_check(data, len, &ce) == -1) {
		reg_seterr(e, 400, "not_encrypted",
		    "the inbox keeps S/MIME "
		    "messages encrypted to their recipient: %s",
		    ce.msg);
		return -1;
	}
	return 0;
}

int
inbox_post(struct reg *r, struct db *db, const struct reg_actor *who,
    const char *userid, const char *msg_id, const unsigned char *data,
    size_t len, struct db_inbox_msg *out, struct reg_err *e)
{
	const struct conf *c = reg_conf(r);
	struct db_inbox_usage use;
	struct db_inbox_new m;
	struct db_user u;
	struct db_err de;
	char detail[300], sender[IRP_USERID_MAX + 1];

	if (poster(r, who, sender, e) == -1 ||
	    message_ok(c, msg_id, data, len, e) == -1 ||
	    recipient(r, db, userid, &u, e) == -1)
		return -1;
	m.user_id = u.id;
	m.sender = sender;
	m.msg_id = msg_id;
	m.data = data;
	m.len = len;
	m.ttl = c->inbox_ttl;
	if (db_begin(db, &de) == -1 ||
	    db_inbox_usage(db, u.id, sender, &use, &de) == -1)
		goto dberr;
	if (quotas(c, &use, u.userid, len, e) == -1) {
		db_rollback(db);
		return -1;
	}
	if (db_inbox_put(db, &m, out, &de) == -1) {
		if (de.code == DB_ERR_CONFLICT) {
			db_rollback(db);
			reg_seterr(e, 409, "duplicate_message", "%s", de.msg);
			return -1;
		}
		goto dberr;
	}
	snprintf(detail, sizeof(detail), "id=%lld size=%zu msg_id=%s%s%s",
	    (long long)out->id, len, msg_id,
	    who->by == REG_BY_REGISTRY ? " via=" : "",
	    who->by == REG_BY_REGISTRY ? who->registry : "");
	if (db_audit(db, sender, "inbox.post", u.userid, who->serial,
		who->source, detail, &de) == -1 ||
	    db_commit(db, &de) == -1)
		goto dberr;
	return 0;
dberr:
	db_rollback(db);
	reg_err_from_db(e, &de);
	return -1;
}

int
inbox_list(struct reg *r, struct db *db, const struct reg_actor *who,
    int (*cb)(const struct db_inbox_msg *, void *), void *arg,
    struct reg_err *e)
{
	struct db_err de;

	(void)r;
	if (by_certificate(who, e) == -1)
		return -1;
	if (db_inbox_list(db, who->user_id, IRP_INBOX_MAX, cb, arg, &de) ==
	    -1) {
		reg_err_from_db(e, &de);
		return -1;
	}
	return 0;
}

int
inbox_outgoing(struct reg *r, const struct reg_actor *who, const char *msg_id,
    const unsigned char *data, size_t len, struct reg_err *e)
{
	if (by_certificate(who, e) == -1 ||
	    message_ok(reg_conf(r), msg_id, data, len, e) == -1)
		return -1;
	return 0;
}

int
inbox_state(struct reg *r, struct db *db, const struct reg_actor *who,
    int64_t *count, int64_t *newest, struct reg_err *e)
{
	struct db_err de;

	(void)r;
	*count = *newest = 0;
	if (by_certificate(who, e) == -1)
		return -1;
	if (db_inbox_state(db, who->user_id, count, newest, &de) == -1) {
		reg_err_from_db(e, &de);
		return -1;
	}
	return 0;
}

int
inbox_get(struct reg *r, struct db *db, const struct reg_actor *who, int64_t id,
    unsigned char **data, size_t *len, struct reg_err *e)
{
	struct db_err de;

	(void)r;
	if (by_certificate(who, e) == -1)
		return -1;
	if (db_inbox_get(db, who->user_id, id, data, len, &de) == -1) {
		if (de.code == DB_ERR_NOTFOUND)
			reg_seterr(e, 404, "no_message", "%s", de.msg);
		else
			reg_err_from_db(e, &de);
		return -1;
	}
	return 0;
}

int
inbox_delete(struct reg *r, struct db *db, const struct reg_actor *who,
    int64_t id, struct reg_err *e)
{
	struct db_err de;
	int64_t size = 0;
	char detail[64];

	(void)r;
	if (by_certificate(who, e) == -1)
		return -1;
	if (db_begin(db, &de) == -1 ||
	    db_inbox_delete(db, who->user_id, id, &size, &de) == -1) {
		db_rollback(db);
		if (de.code == DB_ERR_NOTFOUND)
			reg_seterr(e, 404, "no_message", "%s", de.msg);
		else
			reg_err_from_db(e, &de);
		return -1;
	}
	snprintf(detail, sizeof(detail), "id=%lld size=%lld", (long long)id,
	    (long long)size);
	if (db_audit(db, who->name, "inbox.delete", who->userid, who->serial,
		who->source, detail, &de) == -1 ||
	    db_commit(db, &de) == -1) {
		db_rollback(db);
		reg_err_from_db(e, &de);
		return -1;
	}
	return 0;
}
