/*
 * inbox.h - what waits for a user who was away (schema 006): S/MIME
 * messages, signed by their sender and encrypted to the recipient's
 * devices before they get here, kept as opaque bytes within the
 * administrator's quotas (dird.conf: inbox_msg_max, inbox_user_mb,
 * inbox_user_count, inbox_sender_mb, inbox_total_mb, inbox_ttl).  Part
 * of the service layer, beside reg.h: the rules are here, the API and
 * dirctl only carry them.
 *
 * The registry reads none of it; it checks only that a message is an
 * encrypted S/MIME message, so that nothing is kept in clear by mistake,
 * and records who posted it (the sender as its certificate proved), which
 * the recipient checks the signature inside against.
 */
#ifndef INBOX_H
#define INBOX_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "reg.h"

/*
 * who (a user, by the certificate it presented, or another domain's
 * registry for one of its users, who->userid: federation) leaves data
 * for userid, under msg_id (the sender's id of the message: a second post of it is
 * 409 duplicate_message).  Refused: another domain's user (403
 * other_domain), an unknown or disabled user (404 unknown_user), a
 * message id that is none (400 invalid_message_id), an empty or
 * oversized body (400 empty_body, 413 body_too_large), anything but an
 * encrypted S/MIME message (400 not_encrypted), and whatever would go
 * over a quota (507 over_quota, saying which), a registry that names
 * no sender or one not of its domain (400 invalid_sender, 403
 * forbidden).  Audited as "inbox.post" by the sender.  *out describes
 * what was stored.
 */
int inbox_post(struct reg *r, struct db *db, const struct reg_actor *who,
    const char *userid, const char *msg_id, const unsigned char *data,
    size_t len, struct db_inbox_msg *out, struct reg_err *e) REG_WUR;

/*
 * The checks of a post that goes on to another domain's registry (fed.h,
 * fed_post): who by certificate, the message id, the size, an encrypted
 * S/MIME body.  The other registry checks its recipient and quotas.
 */
int inbox_outgoing(struct reg *r, const struct reg_actor *who,
    const char *msg_id, const unsigned char *data, size_t len,
    struct reg_err *e) REG_WUR;

/* What waits for who (by certificate), oldest first; cb non-zero stops. */
int inbox_list(struct reg *r, struct db *db, const struct reg_actor *who,
    int (*cb)(const struct db_inbox_msg *, void *), void *arg,
    struct reg_err *e) REG_WUR;

/* How many messages wait for who, and the highest id among them (0). */
int inbox_state(struct reg *r, struct db *db, const struct reg_actor *who,
    int64_t *count, int64_t *newest, struct reg_err *e) REG_WUR;

/* Message id of who: *data new (free()); 404 no_message. */
int inbox_get(struct reg *r, struct db *db, const struct reg_actor *who,
    int64_t id, unsigned char **data, size_t *len, struct reg_err *e) REG_WUR;

/* Drop message id of who, once fetched; 404 no_message.  Audited. */
int inbox_delete(struct reg *r, struct db *db, const struct reg_actor *who,
    int64_t id, struct reg_err *e) REG_WUR;

#endif
