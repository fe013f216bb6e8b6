/*
 * mail.h - S/MIME mail between users (RFC 5322, MIME, RFC 8551).
 *
 * Sending: the message is composed here, signed with this device's key
 * and encrypted to every certificate the registry lists for the
 * recipient (all their devices: each can read it), and left in the
 * recipient's inbox at their registry, which can read none of it.
 *
 * Receiving: what waits is fetched, opened with this device's key and
 * judged before anything of it is shown: the signature must verify, its
 * certificate must be the one of the user who posted it (as the registry
 * authenticated them), chain to the registry's CA as of the signing
 * time, and still be listed for that user (a certificate revoked since
 * is refused); a Message-ID seen before is a duplicate or a replay and
 * is dropped.  What passes is kept in the Maildir of the dchat home
 * (HOME/Maildir) in its S/MIME form, with plain From, To, Subject, Date
 * and Message-ID headers in front, so that mail programs that do S/MIME
 * open it; what fails is kept apart (HOME/Maildir/.Rejected) with the
 * reason, never shown as mail.  Either way it is then deleted at the
 * registry.
 */
#ifndef MAIL_H
#define MAIL_H

#include <stddef.h>
#include <time.h>

#include "irp_client.h"
#include "keystore.h"

#define MAIL_ATTACH_MAX 16
#define MAIL_MAX (16 * 1024 * 1024) /* one message, sealed */
#define MAIL_HDR_MAX 256	    /* a header's value, as kept */

/*
 * What a message carries, in its signed X-DChat-Kind header: mail
 * (none), or a chat message or a file that could not be delivered live
 * and waited at the registry ("delivered later").
 */
#define MAIL_KIND_CHAT "chat"
#define MAIL_KIND_FILE "file"

struct mail_draft {
	const char *from, *to, *subject;
	const char *kind;	   /* NULL, MAIL_KIND_CHAT or MAIL_KIND_FILE */
	const unsigned char *text; /* UTF-8 */
	size_t text_len;
	const char *attach[MAIL_ATTACH_MAX]; /* paths */
	size_t nattach;
};

/*
 * An RFC 5322 message with MIME parts: the text, then each attachment
 * (base64, with its file name).  msgid gets the Message-ID without its
 * angle brackets (also the inbox's message id).  *out new (free()); 0,
 * or -1 with a sentence in err.
 */
int mail_compose(const struct mail_draft *d, char msgid[IRP_MSGID_MAX],
    char **out, size_t *len, char *err, size_t errlen);

/*
 * Seal msg for every certificate the registry lists for to, signed with
 * the identity in ks: *sealed new (free()).  0, or -1 with err.
 */
int mail_seal(struct irp_client *c, const struct keystore *ks, const char *to,
    const char *msg, size_t len, unsigned char **sealed, size_t *slen,
    char *err, size_t errlen);
/* Leave sealed mail in to's inbox under msgid; *stored as kept there. */
int mail_post(struct irp_client *c, const char *to, const char *msgid,
    const unsigned char *sealed, size_t slen, struct irp_inbox_item *stored,
    char *err, size_t errlen);

/*
 * mail_seal and mail_post in one.  Seal msg for every certificate the
 * registry lists for to, signed with
 * the identity in ks, and leave it in to's inbox; *stored says what the
 * registry keeps.  0, or -1 with a sentence in err.
 */
int mail_send(struct irp_client *c, const struct keystore *ks, const char *to,
    const char *msg, size_t len, const char *msgid,
    struct irp_inbox_item *stored, char *err, size_t errlen);

/* Make the Maildir of the home (and its .Rejected): 0, or -1. */
int mail_dirs(const struct keystore *ks);

struct mail_tally {
	int kept;	/* verified, in the Maildir */
	int rejected;	/* failed a check: in .Rejected with why */
	int duplicates; /* a Message-ID seen before: dropped */
	int left;	/* could not be fetched or kept: still waiting */
};

/*
 * Fetch what waits at the registry into the Maildir, judged as above,
 * and delete at the registry what was kept, rejected or a duplicate.
 * seen (may be NULL) hears of each message kept or rejected, as the
 * Maildir now lists it.  0 (see *t), or -1 with a sentence in err when
 * the inbox could not be listed.
 */
struct mail_entry;
typedef void mail_seen_fn(void *arg, const struct mail_entry *e);
int mail_fetch(struct irp_client *c, const struct keystore *ks,
    struct mail_tally *t, mail_seen_fn *seen, void *arg, char *err,
    size_t errlen);

/*
 * Mail handed over directly by sender (authenticated by PeerTLS): judged
 * and kept as mail_fetch does with what waited at the registry.  0, or
 * -1 with err when it could not be kept.
 */
int mail_accept(struct irp_client *c, const struct keystore *ks,
    const char *sender, const unsigned char *data, size_t len,
    struct mail_tally *t, mail_seen_fn *seen, void *arg, char *err,
    size_t errlen);

/* One message of the Maildir, as its outer headers say. */
struct mail_entry {
	char path[KS_PATH_MAX];
	char from[MAIL_HDR_MAX], to[MAIL_HDR_MAX], subject[MAIL_HDR_MAX];
	char date[MAIL_HDR_MAX], msgid[MAIL_HDR_MAX];
	char rejected[MAIL_HDR_MAX]; /* why, for a rejected one; else "" */
	char kind[16];		     /* "", MAIL_KIND_CHAT or MAIL_KIND_FILE */
	time_t when;		     /* when it was kept */
};

/* The messages kept, oldest first, rejected ones too: *out new. */
int mail_list(const struct keystore *ks, struct mail_entry **out, size_t *n,
    char *err, size_t errlen);

/*
 * The message of e as its sender wrote it (opened again with this
 * device's key): *out new, NUL-terminated.  0, or -1 with err.
 */
int mail_read(const struct keystore *ks, const struct mail_entry *e, char **out,
    size_t *len, char *err, size_t errlen);

/*
 * The text of msg (a message as mail_compose writes it: its first
 * text/plain part): *text new, NUL-terminated.  0, or -1.
 */
int mail_text_of(const char *msg, size_t len, char **text, size_t *tlen);

/*
 * The first attachment of msg: its name, made safe for a file name
 * (name holds at least 128 bytes), and its bytes (*data new).  0, or -1
 * when there is none or it is not base64.
 */
int mail_attachment_of(const char *msg, size_t len, char *name, size_t namelen,
    unsigned char **data, size_t *dlen);

#endif
